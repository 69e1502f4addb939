"""Create, configure and delete each supported device kind for real."""

import errno
import os
import random
import stat

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn.privsep import ops

MISSING = {errno.EOPNOTSUPP, errno.ENOTSUP}


def _kind(link):
    return link['linkinfo']['info_kind']


def test_bridge(host, netns):
    result = host.create_bridge('brx', mtu=1450, mac='52:54:00:aa:00:01')
    assert result['status'] == 'ok'
    link = netns.link('brx')
    assert _kind(link) == 'bridge'
    assert link['linkinfo']['info_data']['forward_delay'] == 0
    assert link['linkinfo']['info_data']['stp_state'] == 0
    assert link['mtu'] == 1450
    assert link['address'] == '52:54:00:aa:00:01'
    assert link['ifalias'] == 'vif_plug_dyn:fn'
    assert 'UP' in link['flags']
    host.set_link('brx', mtu=1400)
    assert netns.link('brx')['mtu'] == 1400
    host.delete('brx')
    assert netns.link('brx') is None


def test_tap_persistent_multiqueue_owner(host, netns):
    host.create_bridge('brt')
    host.create_tap('tapx', mtu=1400, master='brt', owner=4242,
                    multi_queue=True, mac='52:54:00:aa:00:02')
    link = netns.link('tapx')
    data = link['linkinfo']['info_data']
    assert data['type'] == 'tap' and data['persist'] is True
    assert data['multi_queue'] is True and data['pi'] is False
    assert data['user'] == 4242
    assert link['master'] == 'brt' and link['mtu'] == 1400
    assert link['address'] == '52:54:00:aa:00:02'
    assert link['ifalias'] == 'vif_plug_dyn:fn'
    # the library's own view, through a kernel-filtered dump
    ports = host.list_links(master='brt')
    assert [p['name'] for p in ports] == ['tapx']
    assert ports[0]['owned'] and ports[0]['tag'] == 'fn'
    assert [p['name'] for p in host.list_links(kind='tun')] == ['tapx']
    assert [p['name'] for p in host.list_links(kind='bridge')] == ['brt']


def test_link_changes(host, netns):
    host.run([ops.create_bridge('bra'), ops.create_bridge('brb'),
              ops.create_tap('tapc', master='bra')])
    host.set_master('tapc', 'brb')
    assert netns.link('tapc')['master'] == 'brb'
    host.set_nomaster('tapc')
    assert 'master' not in netns.link('tapc')
    host.run([ops.set_state('tapc', False)])
    assert 'UP' not in netns.link('tapc')['flags']
    host.run([ops.set_mtu('tapc', 9000), ops.set_mac('tapc',
                                                     '52:54:00:aa:00:03'),
              ops.set_alias('tapc', 'port-9'),
              ops.set_state('tapc', True)])
    link = netns.link('tapc')
    assert link['mtu'] == 9000 and link['address'] == '52:54:00:aa:00:03'
    assert link['ifalias'] == 'vif_plug_dyn:port-9'
    assert 'UP' in link['flags']
    assert host.get_link('tapc')['tag'] == 'port-9'


def test_veth(host, netns):
    host.create_bridge('brv')
    host.create_veth('va', 'vb', mtu=1400, peer_master='brv')
    a, b = netns.link('va'), netns.link('vb')
    assert _kind(a) == 'veth' and _kind(b) == 'veth'
    assert a['ifalias'] == b['ifalias'] == 'vif_plug_dyn:fn'
    assert b['master'] == 'brv' and a['mtu'] == b['mtu'] == 1400
    host.delete('va')
    assert netns.link('va') is None and netns.link('vb') is None


@pytest.mark.parametrize('mode', ['vepa', 'bridge', 'private',
                                  'passthrough'])
def test_macvlan_modes(host, netns, mode):
    netns.ip('link', 'add', 'low0', 'type', 'veth', 'peer', 'name', 'low1')
    netns.ip('link', 'set', 'low0', 'up')
    host.create_macvlan('mv0', 'low0', mode=mode)
    link = netns.link('mv0')
    assert _kind(link) == 'macvlan'
    assert link['linkinfo']['info_data']['mode'] == (
        'passthru' if mode == 'passthrough' else mode)
    assert link['link'] == 'low0'
    host.delete('mv0')
    assert netns.link('mv0') is None
    assert netns.link('low0') is not None


def test_macvtap_and_its_node(host, netns):
    netns.ip('link', 'add', 'low0', 'type', 'veth', 'peer', 'name', 'low1')
    netns.ip('link', 'set', 'low0', 'up')
    # NOTE(vpd): /dev is shared with the host and other test runs; pick an
    # ifindex no one else uses so /dev/tapN cannot clash.
    index = random.randint(100000, 2000000)
    while os.path.exists('/dev/tap%d' % index):
        index += 1
    try:
        result = host.create_macvtap('mt0', 'low0', mode='vepa',
                                     index=index)
        assert result['ifindex'] == index
        assert result['dev_node'] == '/dev/tap%d' % index
        link = netns.link('mt0')
        assert link['ifindex'] == index
        assert link['linkinfo']['info_data']['mode'] == 'vepa'
        node = os.stat(result['dev_node'])
        assert stat.S_ISCHR(node.st_mode)
        major, minor = netns.run(
            'cat', '/sys/class/net/mt0/macvtap/tap%d/dev' % index
        ).stdout.strip().split(':')
        assert (os.major(node.st_rdev), os.minor(node.st_rdev)) == (
            int(major), int(minor))
        host.delete('mt0')
        assert netns.link('mt0') is None
        assert not os.path.exists('/dev/tap%d' % index)
    finally:
        path = '/dev/tap%d' % index
        if os.path.exists(path) and stat.S_ISCHR(os.lstat(path).st_mode):
            os.unlink(path)


def test_vlan(host, netns):
    netns.ip('link', 'add', 'low0', 'type', 'veth', 'peer', 'name', 'low1')
    result = host.apply([ops.create_vlan('low0.100', 'low0', 100)])[0]
    if result['status'] == 'error' and \
            result['error']['kwargs'].get('errno') in MISSING:
        pytest.skip('kernel lacks 802.1Q VLAN support (8021q): %s' %
                    result['error']['message'])
    assert result['status'] == 'ok', result
    link = netns.link('low0.100')
    assert link['linkinfo']['info_data']['id'] == 100
    host.delete('low0.100')


def test_bond(host, netns):
    result = host.apply([ops.create_bond('bond0', mode='active-backup',
                                         miimon=100)])[0]
    if result['status'] == 'error' and \
            result['error']['kwargs'].get('errno') in MISSING:
        pytest.skip('kernel lacks bonding support: %s' %
                    result['error']['message'])
    assert result['status'] == 'ok', result
    link = netns.link('bond0')
    assert link['linkinfo']['info_data']['mode'] == 'active-backup'
    host.delete('bond0')


def test_vf_on_a_device_without_vfs_is_a_typed_kernel_error(host, netns):
    netns.ip('link', 'add', 'pf0', 'type', 'veth', 'peer', 'name', 'pf1')
    with pytest.raises(exception.NetlinkOperationFailed) as excinfo:
        host.set_vf('pf0', 0, mac='52:54:00:aa:00:04')
    assert excinfo.value.errno in (errno.EOPNOTSUPP, errno.EINVAL,
                                   errno.ENODEV)
    assert excinfo.value.kwargs['operation'] == 'set_vf'
