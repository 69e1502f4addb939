"""Planning a rollback: from a snapshot and the host now, the batches that
put the host back, and what cannot be."""

from vif_plug_dyn.hostif import restore
from vif_plug_dyn.privsep import ops
from vif_plug_dyn.tests.unit.hostif.livestate import ADOPTED
from vif_plug_dyn.tests.unit.hostif.livestate import CREATED
from vif_plug_dyn.tests.unit.hostif.livestate import addr
from vif_plug_dyn.tests.unit.hostif.livestate import link
from vif_plug_dyn.tests.unit.hostif.livestate import state

BR = dict(alias=CREATED % 'br0', data={'stp_state': 0,
                                       'forward_delay': 0})


def test_undo_a_start():
    """br0 created and v0 adopted, configured and enslaved since the
    snapshot: br0 goes, v0 is put back and given back."""
    before = state(link('v0', 3, 'veth', alias='uplink'),
                   link('tap1', 7, 'tun', alias='vif_plug_dyn:port-1'),
                   addresses=[addr(3, '192.0.2.99', 24)])
    now = state(link('v0', 3, 'veth', alias=ADOPTED % 'br0', mtu=9000,
                     master=20, up=True, mac='02:00:00:00:00:09'),
                link('tap1', 7, 'tun', alias='vif_plug_dyn:port-1',
                     master=20),
                link('br0', 20, 'bridge', up=True, **BR),
                addresses=[addr(3, '192.0.2.99', 24),
                           addr(3, '2001:db8::1', 64)])
    assert restore.scope(before, now) == ({'v0', 'br0'}, {'tap1'})
    structure = restore.plan_structure(before, now)
    # Deleting br0 releases its ports (the driver's tap put there after
    # the snapshot leaves with it; nothing else is done to the tap).
    assert structure.ops == [
        ops.delete(['br0']),
        ops.set_link('v0', mtu=1500)]
    # After the structure phase, the host reads:
    mid = state(link('v0', 3, 'veth', alias=ADOPTED % 'br0', up=True,
                     mac='02:00:00:00:00:09'),
                link('tap1', 7, 'tun', alias='vif_plug_dyn:port-1'),
                addresses=now.addresses)
    assert restore.plan_state(before, mid).ops == [
        ops.set_link('v0', mac=before.links['v0']['mac']),
        ops.set_link('v0', up=False)]
    end = state(link('v0', 3, 'veth', alias=ADOPTED % 'br0'),
                link('tap1', 7, 'tun', alias='vif_plug_dyn:port-1'),
                addresses=now.addresses)
    assert restore.plan_finish(before, end).ops == [
        ops.del_address('v0', '2001:db8::1', 64),
        ops.release('v0', 'uplink')]


def started_bridge(**extra):
    return state(
        link('v0', 3, 'veth', alias=ADOPTED % 'br0', master=20, up=True,
             mtu=9000),
        link('v2', 4, 'veth', alias=ADOPTED % 'br0', master=20, up=True,
             mtu=9000),
        link('v5', 6, 'veth', master=20, up=True),
        link('br0', 20, 'bridge', up=True, mtu=9000,
             mac='02:00:00:00:00:20', group=7,
             alias=CREATED % 'br0', data={'stp_state': 1,
                                          'forward_delay': 400}),
        addresses=[addr(20, '198.51.100.1', 24, label='br0'),
                   addr(20, '198.51.100.2', 24, label='br0',
                        flags=['permanent', 'secondary']),
                   addr(20, '2001:db8::2', 64),
                   addr(20, '2001:db8::1', 64, flags=['nodad',
                                                      'permanent']),
                   addr(20, 'fe80::20', 64, scope=253, proto=3),
                   addr(20, '2001:db8:f::20', 64, proto=2, flags=[],
                        valid_lft=86000, preferred_lft=14000)],
        **extra)


def test_undo_a_stop_recreates_the_bridge():
    before = started_bridge()
    now = state(link('v0', 3, 'veth', alias=ADOPTED % 'br0', mtu=9000),
                link('v2', 4, 'veth', alias=ADOPTED % 'br0', mtu=9000),
                link('v5', 6, 'veth', up=True))
    structure = restore.plan_structure(before, now)
    assert structure.ops == [
        ops.create_bridge('br0', mtu=9000, mac='02:00:00:00:00:20',
                          up=False, tag='hostif.br0', stp=True,
                          forward_delay=400, index=20),
        ops.set_link('v0', master='br0'),
        ops.set_link('v2', master='br0')]
    # v5 is the operator's: its membership cannot be restored.
    assert structure.unrestorable == [
        'device v5 was in br0; it is not managed by vif_plug_dyn, so its '
        'membership cannot be restored']
    mid = state(link('v0', 3, 'veth', alias=ADOPTED % 'br0', mtu=9000,
                     master=20),
                link('v2', 4, 'veth', alias=ADOPTED % 'br0', mtu=9000,
                     master=20),
                link('br0', 20, 'bridge', mtu=9000, mac='02:00:00:00:00:20',
                     group=7, alias=CREATED % 'br0',
                     data={'stp_state': 1, 'forward_delay': 400}))
    # Lower devices come up first.
    assert restore.plan_state(before, mid).ops == [
        ops.set_link('v0', up=True), ops.set_link('v2', up=True),
        ops.set_link('br0', up=True)]
    finish = restore.plan_finish(before, mid)
    # IPv4 in the snapshot's order; IPv6 reversed (the kernel puts a new
    # one first); the autoconfigured one is left to the kernel; the
    # link-local one is put back as it was.
    assert finish.ops == [
        ops.add_address('br0', '198.51.100.1', 24, label='br0', scope=0),
        ops.add_address('br0', '198.51.100.2', 24, label='br0', scope=0),
        ops.add_address('br0', 'fe80::20', 64, scope=253, proto=3),
        ops.add_address('br0', '2001:db8::1', 64, scope=0,
                        flags=['nodad']),
        ops.add_address('br0', '2001:db8::2', 64, scope=0)]


def test_a_recreated_device_gets_another_index_if_its_own_is_taken():
    before = started_bridge()
    now = state(link('v0', 3, 'veth', alias=ADOPTED % 'br0'),
                link('v2', 4, 'veth', alias=ADOPTED % 'br0'),
                link('tap9', 20, 'tun', alias='vif_plug_dyn:port-9'))
    create = restore.plan_structure(before, now).ops[0]
    assert create['op'] == 'create_bridge' and create['index'] is None


def test_changed_settings_are_put_back():
    before = started_bridge()
    links = dict(before.links)
    links['br0'] = dict(links['br0'], mtu=1500, group=0,
                        data={'stp_state': 0, 'forward_delay': 0})
    links['v2'] = dict(links['v2'], master_index=None)
    now = state(*links.values(), addresses=before.addresses[:2])
    assert restore.plan_structure(before, now).ops == [
        ops.set_link('v2', master='br0'),
        ops.set_link('br0', mtu=9000),
        # The delay before STP goes on (see hostif.stp).
        ops.set_bridge('br0', forward_delay=400),
        ops.set_bridge('br0', stp=True)]
    assert restore.plan_finish(before, now).ops == [
        ops.add_address('br0', 'fe80::20', 64, scope=253, proto=3),
        ops.add_address('br0', '2001:db8::1', 64, scope=0,
                        flags=['nodad']),
        ops.add_address('br0', '2001:db8::2', 64, scope=0)]


def test_a_device_that_differs_only_in_an_address_attribute():
    before = state(link('v0', 3, alias=ADOPTED % 'v0'),
                   addresses=[addr(3, '192.0.2.1', 24, broadcast=None)])
    now = state(link('v0', 3, alias=ADOPTED % 'v0'),
                addresses=[addr(3, '192.0.2.1', 24,
                                broadcast='192.0.2.255')])
    assert restore.plan_finish(before, now).ops == [
        ops.del_address('v0', '192.0.2.1', 24),
        ops.add_address('v0', '192.0.2.1', 24, scope=0)]


def test_bond_slaves_go_down_to_rejoin():
    before = state(link('bond0', 5, 'bond', up=True, alias=CREATED % 'b',
                        data={'mode': 1}),
                   link('eth3', 3, up=True, master=5,
                        alias=ADOPTED % 'b'))
    now = state(link('bond0', 5, 'bond', up=True, alias=CREATED % 'b',
                     data={'mode': 1}),
                link('eth3', 3, up=True, alias=ADOPTED % 'b'))
    assert restore.plan_structure(before, now).ops == [
        ops.set_link('eth3', up=False), ops.set_link('eth3',
                                                     master='bond0')]


def test_readoption_comes_first_release_last():
    """A device given back during a transaction is adopted again before
    it is configured."""
    before = state(link('v0', 3, alias=ADOPTED % 'br0', mtu=9000))
    now = state(link('v0', 3, alias='uplink'))
    assert restore.plan_structure(before, now).ops == [
        ops.adopt('v0', 'hostif.br0'), ops.set_link('v0', mtu=9000)]


def test_stacked_devices_follow_their_lower_mtu():
    before = state(link('v0', 3, alias=ADOPTED % 'v0'),
                   link('mv0', 4, 'macvlan', lower=3),
                   link('mvt', 5, 'macvtap', lower=3,
                        alias='vif_plug_dyn:port-1'))
    now = state(link('v0', 3, alias=ADOPTED % 'v0', mtu=1000),
                link('mv0', 4, 'macvlan', lower=3, mtu=1000),
                link('mvt', 5, 'macvtap', lower=3, mtu=1000,
                     alias='vif_plug_dyn:port-1'))
    phase = restore.plan_structure(before, now)
    assert phase.ops == [ops.set_link('v0', mtu=1500),
                         ops.set_link('mvt', mtu=1500)]
    assert phase.unrestorable == [
        'the MTU of mv0 (on v0) followed its lower device to 1000; it is '
        'not managed by vif_plug_dyn, so it cannot be set back to 1500']
    assert restore.differences(before, now) == [
        'mv0: mtu is 1000, was 1500', 'mvt: mtu is 1000, was 1500',
        'v0: mtu is 1000, was 1500']


def test_vlan_recreated_after_its_lower_bond():
    vlan = dict(alias=CREATED % 'v', data={'vlan_id': 5})
    before = state(link('bond0', 5, 'bond', alias=CREATED % 'v',
                        data={'mode': 0, 'miimon': 100, 'use_carrier': 1,
                              'arp_validate': 0}),
                   link('bond0.5', 6, 'vlan', lower=5, **vlan),
                   link('eth1', 7, 'veth', alias=CREATED % 'v'))
    phase = restore.plan_structure(before, state())
    assert [(o['op'], o['name']) for o in phase.ops] == [
        ('create_bond', 'bond0'), ('create_vlan', 'bond0.5')]
    assert phase.ops[0]['miimon'] == 100 and phase.ops[0]['use_carrier']
    assert phase.unrestorable == [
        'device eth1 (kind veth) was deleted and cannot be recreated']


def test_a_vanished_adopted_device_is_reported():
    before = state(link('v0', 3, alias=ADOPTED % 'v0'))
    phase = restore.plan_structure(before, state())
    assert phase.ops == []
    assert phase.unrestorable == [
        'adopted device v0 no longer exists; the library never creates '
        'such a device']
    assert restore.differences(before, state()) == ['v0: missing']


def test_nothing_to_do_and_nothing_differs():
    before = started_bridge()
    for planner in (restore.plan_structure, restore.plan_state,
                    restore.plan_finish):
        assert planner(before, before).ops == []
    assert restore.differences(before, before) == []


def test_differences_name_what_is_left():
    before = started_bridge()
    links = dict(before.links)
    links['br0'] = dict(links['br0'], up=False)
    now = state(*links.values(), addresses=before.addresses[1:])
    assert restore.differences(before, now) == [
        "br0: up is False, was True",
        "br0: address 198.51.100.1/24 scope 0 label br0 is missing"]
