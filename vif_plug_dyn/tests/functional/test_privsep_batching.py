"""Batches, rollback, group deletion and input refusals, for real."""

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn.privsep import linux_net
from vif_plug_dyn.privsep import ops
from vif_plug_dyn.tests.functional import fixtures


def _statuses(results):
    return [r['status'] for r in results]


def test_one_call_builds_a_bridge_and_many_taps(host, netns):
    names = ['tb%d' % i for i in range(60)]
    results = host.apply([ops.create_bridge('brb')] + [
        ops.create_tap(n, mtu=1400, master='brb') for n in names])
    assert _statuses(results) == ['ok'] * 61
    ports = host.list_links(master='brb')
    assert sorted(p['name'] for p in ports) == sorted(names)
    assert {(p['mtu'], p['up'], p['tag']) for p in ports} == {
        (1400, True, 'fn')}
    # One link group for the whole batch, the daemon's choice.
    (group,) = {p['group'] for p in ports}
    assert host.get_link('brb')['group'] == group
    assert 2 ** 31 <= group < 2 ** 32 - 1


def test_stop_at_first_error_rolls_back(host, netns):
    before = netns.names()
    results = host.apply([ops.create_bridge('brs'),
                          ops.create_tap('ts0', master='brs'),
                          ops.create_veth('vs0', 'vs1'),
                          ops.create_tap('ts1', mtu=65535),  # > tap max
                          ops.create_tap('ts2')])
    # NOTE(vpd): ts2 only touched a device of this batch, so it was sent
    # in the same pipeline before the error came back: it ran and was
    # undone with the rest.
    assert _statuses(results) == ['rolled_back', 'rolled_back',
                                  'rolled_back', 'error', 'rolled_back']
    error = results[3]['error']
    assert error['type'] == 'NetlinkOperationFailed'
    assert error['kwargs']['errno'] == 22
    assert error['kwargs']['device'] == 'ts1'
    assert 'rollback_error' not in results[3]
    assert netns.names() == before


def test_run_raises_and_leaves_nothing(host, netns):
    before = netns.names()
    with pytest.raises(exception.NetlinkOperationFailed):
        host.run([ops.create_tap('tr0'), ops.create_tap('tr1', mtu=65535)])
    assert netns.names() == before


def test_best_effort(host, netns):
    results = host.apply([ops.create_tap('te0'),
                          ops.create_tap('te1', mtu=65535),
                          ops.create_tap('te2'),
                          ops.delete(['lo'])], stop_on_error=False)
    assert _statuses(results) == ['ok', 'error', 'ok', 'error']
    assert results[3]['error']['type'] == 'DeviceNotOwned'
    names = netns.names()
    assert {'te0', 'te2'} <= names and 'te1' not in names


def test_group_delete_removes_only_ours(host, netns):
    names = ['tg%d' % i for i in range(40)]
    host.run([ops.create_tap(n) for n in names])
    group = host.get_link(names[0])['group']
    # an operator's device (root put it there) in the batch's group, and
    # one in another group of the library's range
    netns.ip('tuntap', 'add', 'dev', 'optap', 'mode', 'tap')
    fixtures.set_link_group(netns.name, 'optap', group)
    netns.ip('tuntap', 'add', 'dev', 'optap2', 'mode', 'tap')
    netns.ip('link', 'set', 'optap2', 'group', '2147483647')
    result = host.delete(names + ['notthere'])
    assert result['deleted'] == names and result['missing'] == ['notthere']
    left = netns.names()
    assert not left & set(names)
    assert {'optap', 'optap2'} <= left
    assert host.get_link('optap')['group'] == group


def test_create_and_delete_in_one_batch(host, netns):
    results = host.apply([ops.create_tap('tx0'), ops.create_tap('tx1'),
                          ops.delete(['tx0', 'tx1']),
                          ops.create_tap('tx0')])
    assert _statuses(results) == ['ok'] * 4
    assert 'tx0' in netns.names() and 'tx1' not in netns.names()


class TestBadInput:
    @pytest.mark.parametrize('op', [
        {'op': 'create_tap', 'name': 'a/b'},
        {'op': 'create_tap', 'name': 'x' * 16},
        {'op': 'create_tap', 'name': 'ok0', 'mtu': 10},
        {'op': 'create_tap', 'name': 'ok0', 'mac': 'ff:ff:ff:ff:ff:ff'},
        {'op': 'create_macvlan', 'name': 'ok0', 'lower': 'lo',
         'mode': 'source'},
        {'op': 'create_vlan', 'name': 'ok0', 'lower': 'lo', 'vlan_id': 4095},
        {'op': 'create_tap', 'name': 'ok0', 'tag': 'a b'},
        {'op': 'create_tap', 'name': 'ok0', 'exec': '/bin/sh'},
        {'op': 'rm_rf', 'name': 'ok0'},
    ])
    def test_refused_in_the_daemon_leaving_nothing(self, host, netns, op):
        before = netns.names()
        # a good operation first: the whole batch must be refused
        with pytest.raises(exception.InvalidField):
            linux_net.apply([ops.create_tap('good0'), op])
        with pytest.raises(exception.InvalidField):
            host.apply([ops.create_tap('good0'), op])
        assert netns.names() == before

    def test_not_a_list(self, host, netns):
        with pytest.raises(exception.InvalidField):
            linux_net.apply({'op': 'create_tap', 'name': 'x'})
        with pytest.raises(exception.InvalidField):
            linux_net.apply([ops.create_tap('x')], 'yes')
        with pytest.raises(exception.InvalidField):
            linux_net.list_links(kind='tun; rm')
        assert 'x' not in netns.names()
