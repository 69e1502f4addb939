"""Devices the library did not create are refused, for real."""

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn.privsep import ops


@pytest.fixture
def operator_bridge(netns):
    """A bridge made by the operator (``ip link add``), with a port."""
    netns.ip('link', 'add', 'br-op', 'type', 'bridge')
    netns.ip('link', 'set', 'br-op', 'mtu', '1500', 'up')
    netns.ip('tuntap', 'add', 'dev', 'op-port', 'mode', 'tap')
    netns.ip('link', 'set', 'op-port', 'master', 'br-op')
    return 'br-op'


@pytest.mark.parametrize('op', [
    ops.delete('lo'), ops.set_mtu('lo', 1500), ops.set_state('lo', False),
    ops.set_mac('lo', '52:54:00:00:00:01'), ops.set_alias('lo', 'mine')])
def test_lo_is_untouchable(host, netns, op):
    before = netns.link('lo')
    with pytest.raises(exception.DeviceNotOwned) as excinfo:
        host.run([op])
    assert excinfo.value.kwargs['device'] == 'lo'
    after = netns.link('lo')
    for key in ('mtu', 'flags', 'address', 'group'):
        assert after[key] == before[key]
    assert after.get('ifalias') == before.get('ifalias')


@pytest.mark.parametrize('op', [
    ops.delete('br-op'), ops.set_mtu('br-op', 1400),
    ops.set_state('br-op', False), ops.set_mac('br-op', '52:54:00:00:00:09'),
    ops.set_nomaster('op-port'), ops.set_master('op-port', 'br-op'),
    ops.delete(['op-port'])])
def test_operator_bridge_and_port_untouchable(host, netns, operator_bridge,
                                               op):
    with pytest.raises(exception.DeviceNotOwned):
        host.run([op])
    bridge = netns.link('br-op')
    assert bridge is not None and bridge['mtu'] == 1500
    assert 'UP' in bridge['flags']
    assert netns.link('op-port')['master'] == 'br-op'


def test_adopting_the_operator_bridge(host, netns, operator_bridge):
    host.create_tap('tap-ad', master='br-op')
    assert netns.link('tap-ad')['master'] == 'br-op'
    host.set_nomaster('tap-ad')
    host.set_master('tap-ad', 'br-op')
    assert sorted(p['name'] for p in host.list_links(master='br-op')) == [
        'op-port', 'tap-ad']
    host.delete('tap-ad')
    assert netns.link('br-op') is not None
    assert netns.link('op-port')['master'] == 'br-op'


def test_mixed_delete_refused_whole(host, netns, operator_bridge):
    host.create_tap('tap-mine')
    with pytest.raises(exception.DeviceNotOwned):
        host.delete(['tap-mine', 'br-op'])
    assert netns.link('tap-mine') is not None
    assert netns.link('br-op') is not None


def test_redirect_onto_a_foreign_device_refused(host, netns,
                                                operator_bridge):
    host.create_tap('tap-r')
    with pytest.raises(exception.DeviceNotOwned):
        host.redirect('tap-r', 'op-port')
    out = netns.run('tc', 'qdisc', 'show', 'dev', 'op-port').stdout
    assert 'clsact' not in out and 'ingress' not in out
    assert 'clsact' not in netns.run('tc', 'qdisc', 'show', 'dev',
                                     'tap-r').stdout
