"""The privileged batches that start and stop a definition: order of the
requests, what they carry, what is left alone."""

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn.hostif import plan as plan_mod
from vif_plug_dyn.hostif.model import HostInterface
from vif_plug_dyn.privsep import ops
from vif_plug_dyn.tests.unit.hostif import fixtures
from vif_plug_dyn.tests.unit.hostif.livestate import ADOPTED
from vif_plug_dyn.tests.unit.hostif.livestate import CREATED
from vif_plug_dyn.tests.unit.hostif.livestate import addr
from vif_plug_dyn.tests.unit.hostif.livestate import link
from vif_plug_dyn.tests.unit.hostif.livestate import state


def steps(plan):
    return {step.name: step.ops for step in plan.steps}


def nics(*names, up=False, mtu=1500):
    return [link(name, 10 + i, up=up, mtu=mtu)
            for i, name in enumerate(names)]


class TestStart:
    def test_bridge_with_vlan_and_bond_members(self):
        definition = fixtures.case('bridge')
        live = state(*nics('eth1', 'eth2', 'eth3', 'eth4'))
        plan = plan_mod.plan_start(definition, live)
        tag = 'hostif.br0'
        assert [s.name for s in plan.steps] == [
            'adopt', 'create', 'links', 'addresses', 'up']
        got = steps(plan)
        # Operator NICs named by the definition are adopted, in order.
        assert got['adopt'] == [ops.adopt(n, tag)
                                for n in ('eth1', 'eth3', 'eth4')]
        # Parent before VLAN, slaves before bond, members before bridge;
        # all created down.
        assert got['create'] == [
            ops.create_vlan('eth2.100', 'eth2', 100, up=False, tag=tag),
            ops.create_bond('bond1', mode='802.3ad', miimon=100, mtu=9000,
                            up=False, tag=tag),
            ops.create_bridge('br0', mtu=9000, up=False, tag=tag, stp=True,
                              forward_delay=1500)]
        assert got['links'] == [
            ops.set_link('eth1', mtu=9000, mac='52:54:00:0b:00:01'),
            ops.set_link('eth1', master='br0'),
            ops.set_link('eth2.100', master='br0'),
            ops.set_link('eth3', mtu=9000),
            ops.set_link('eth3', master='bond1'),
            ops.set_link('eth4', mtu=9000),
            ops.set_link('eth4', master='bond1'),
            ops.set_link('bond1', master='br0')]
        assert got['addresses'] == [ops.add_address(
            'br0', '203.0.113.5', 24, broadcast='203.0.113.255')]
        assert got['up'] == [ops.set_link(n, up=True) for n in (
            'eth1', 'eth2.100', 'eth3', 'eth4', 'bond1', 'br0')]
        assert plan.adopted == ['eth1', 'eth3', 'eth4']
        assert plan.created == ['eth2.100', 'bond1', 'br0']
        # The VLAN cannot exceed its parent's MTU; the gateway is not
        # applied live.
        assert plan.not_applied[0].startswith(
            'vlan eth2.100: MTU 9000 is more than its parent eth2 has')
        assert 'route gateway' in plan.not_applied[1]

    def test_member_vlan_follows_when_its_parent_can(self):
        live = state(*nics('eth1', 'eth2', 'eth3', 'eth4', mtu=9000))
        plan = plan_mod.plan_start(fixtures.case('bridge'), live)
        assert steps(plan)['create'][0]['mtu'] == 9000

    def test_bond_slaves_go_down_before_they_join(self):
        live = state(link('eth3', 3, up=True), link('eth4', 4))
        plan = plan_mod.plan_start(fixtures.case('bond'), live)
        got = steps(plan)
        assert got['create'] == [ops.create_bond(
            'bond0', mode='active-backup', miimon=100, updelay=200,
            downdelay=200, use_carrier=True, mtu=9000, up=False,
            tag='hostif.bond0')]
        assert got['links'] == [
            ops.set_link('eth3', mtu=9000, mac='52:54:00:0c:00:03'),
            ops.set_link('eth3', up=False),
            ops.set_link('eth3', master='bond0'),
            ops.set_link('eth4', mtu=9000),
            ops.set_link('eth4', master='bond0'),
            # The primary is set once its slaves are in.
            ops.set_bond('bond0', primary='eth3')]
        assert got['up'] == [ops.set_link(n, up=True)
                             for n in ('eth3', 'eth4', 'bond0')]
        assert 'addresses' not in got
        assert plan.not_applied == [
            'ipv4: <dhcp/> is not run by a live apply (no DHCP client is '
            'started); the host\'s network tooling does it from the '
            'persistent configuration']

    def test_bond_with_arp_monitoring(self):
        live = state(link('eth5', 5), link('eth6', 6))
        got = steps(plan_mod.plan_start(fixtures.case('bond-arpmon'), live))
        assert got['create'] == [ops.create_bond(
            'bond2', mode='balance-xor', arp_interval=1000,
            arp_targets=['192.0.2.254'], arp_validate='all', up=False,
            tag='hostif.bond2')]

    def test_vlan_on_a_nic(self):
        live = state(link('eth0', 2, up=True))
        plan = plan_mod.plan_start(fixtures.case('vlan'), live)
        got = steps(plan)
        assert 'adopt' not in got
        assert got['create'] == [ops.create_vlan(
            'eth0.42', 'eth0', 42, mtu=1496, up=False,
            tag='hostif.eth0.42')]
        assert got['addresses'] == [
            ops.add_address('eth0.42', '10.42.0.2', 16,
                            broadcast='10.42.255.255'),
            ops.add_address('eth0.42', 'fd00:42::2', 64)]
        assert got['up'] == [ops.set_link('eth0.42', up=True)]

    def test_vlan_parent_must_exist(self):
        with pytest.raises(exception.HostInterfaceDependencyMissing,
                           match='needs device eth0'):
            plan_mod.plan_start(fixtures.case('vlan'), state())

    def test_nothing_to_do_when_the_host_is_as_defined(self):
        live = state(
            link('eth0', 2, up=True, mtu=9000, mac='52:54:00:0a:00:01',
                 alias=ADOPTED % 'eth0'),
            addresses=[addr(2, '192.0.2.10', 24),
                       addr(2, '198.51.100.10', 25),
                       addr(2, '2001:db8::10', 64),
                       addr(2, 'fe80::1', 64, scope=253)])
        plan = plan_mod.plan_start(fixtures.case('ethernet-static'), live)
        assert plan.steps == [] and not plan.summary()['changed']
        assert len(plan.not_applied) == 3

    def test_only_missing_addresses_are_added(self):
        live = state(link('eth0', 2, up=True, mtu=9000,
                          mac='52:54:00:0a:00:01', alias=ADOPTED % 'eth0'),
                     addresses=[addr(2, '192.0.2.10', 24),
                                addr(2, '192.0.2.77', 24)])
        got = steps(plan_mod.plan_start(fixtures.case('ethernet-static'),
                                        live))
        assert list(got) == ['addresses']
        assert [(o['address'], o['prefix']) for o in got['addresses']] == [
            ('198.51.100.10', 25), ('2001:db8::10', 64)]

    def test_an_existing_bridge_is_reconfigured(self):
        live = state(
            link('br0', 5, 'bridge', up=True, mtu=9000,
                 alias=CREATED % 'br0',
                 data={'stp_state': 0, 'forward_delay': 0}),
            *[link(n, i, up=True, mtu=9000, master=5,
                   alias=ADOPTED % 'br0') for i, n in ((6, 'eth1'),
                                                       (7, 'eth3'),
                                                       (8, 'eth4'))],
            link('eth2', 9, mtu=9000),
            link('eth2.100', 10, 'vlan', lower=9, mtu=9000, up=True,
                 master=5, alias=CREATED % 'br0', data={'vlan_id': 100}),
            link('bond1', 11, 'bond', mtu=9000, up=True, master=5,
                 alias=CREATED % 'br0', data={'mode': 4, 'miimon': 100}))
        plan = plan_mod.plan_start(fixtures.case('bridge'), live)
        got = steps(plan)
        # eth3/eth4 are in br0, not in bond1: they move.
        assert got['links'] == [
            ops.set_link('eth1', mac='52:54:00:0b:00:01'),
            ops.set_link('eth3', up=False),
            ops.set_link('eth3', master='bond1'),
            ops.set_link('eth4', up=False),
            ops.set_link('eth4', master='bond1'),
            # The delay before STP goes on (see hostif.stp).
            ops.set_bridge('br0', forward_delay=1500),
            ops.set_bridge('br0', stp=True)]
        assert 'create' not in got and 'adopt' not in got

    @pytest.mark.parametrize('live,message', [
        (state(), 'eth0: it does not exist'),
        (state(link('eth0', 2, 'bridge')),
         'it is a bridge (kernel kind bridge), the definition says '
         'ethernet'),
        (state(link('eth0', 2, alias=ADOPTED % 'other')),
         'managed by host interface definition other'),
        (state(link('eth0', 2, 'tun', alias='vif_plug_dyn:port-1')),
         'another part of vif_plug_dyn (alias vif_plug_dyn:port-1)'),
    ])
    def test_conflicts(self, live, message):
        with pytest.raises(exception.HostInterfaceConflict) as info:
            plan_mod.plan_start(fixtures.case('ethernet-static'), live)
        assert message in str(info.value)

    def test_vlan_and_bond_mismatches(self):
        live = state(link('eth0', 2), link(
            'eth0.42', 3, 'vlan', lower=2, alias=CREATED % 'eth0.42',
            data={'vlan_id': 7}))
        with pytest.raises(exception.HostInterfaceConflict,
                           match='it is VLAN 7 on eth0'):
            plan_mod.plan_start(fixtures.case('vlan'), live)
        live = state(link('eth3', 3), link('eth4', 4), link(
            'bond0', 5, 'bond', alias=CREATED % 'bond0', data={'mode': 0}))
        with pytest.raises(exception.HostInterfaceConflict,
                           match='bond in mode 0'):
            plan_mod.plan_start(fixtures.case('bond'), live)

    def test_an_adopted_bond_gets_missing_options(self):
        live = state(link('eth3', 3, master=5, mtu=9000,
                          mac='52:54:00:0c:00:03', alias=ADOPTED % 'bond0'),
                     link('eth4', 4, master=5, mtu=9000,
                          alias=ADOPTED % 'bond0'),
                     link('bond0', 5, 'bond', mtu=9000,
                          alias=ADOPTED % 'bond0',
                          data={'mode': 1, 'miimon': 100, 'updelay': 0,
                                'downdelay': 200, 'use_carrier': 1,
                                'primary': 3}))
        got = steps(plan_mod.plan_start(fixtures.case('bond'), live))
        assert got['links'] == [ops.set_bond('bond0', updelay=200)]


class TestStop:
    def started_bridge(self):
        return state(
            link('br0', 5, 'bridge', up=True, mtu=9000,
                 alias=CREATED % 'br0'),
            link('eth1', 6, up=True, master=5, alias=ADOPTED % 'br0'),
            link('eth2', 9),
            link('eth2.100', 10, 'vlan', lower=9, up=True, master=5,
                 alias=CREATED % 'br0'),
            link('bond1', 11, 'bond', up=True, master=5,
                 alias=CREATED % 'br0'),
            link('eth3', 7, up=True, master=11, alias=ADOPTED % 'br0'),
            link('eth4', 8, up=False, master=11, alias=ADOPTED % 'br0'),
            addresses=[addr(5, '203.0.113.5', 24)])

    def test_bridge(self):
        plan = plan_mod.plan_stop(fixtures.case('bridge'),
                                  self.started_bridge())
        got = steps(plan)
        # Masters that are deleted release their members by themselves;
        # adopted devices only go down, created ones go, in one request.
        assert list(got) == ['links', 'delete']
        assert got['links'] == [ops.set_link('eth3', up=False),
                                ops.set_link('eth1', up=False)]
        assert got['delete'] == [ops.delete(['br0', 'bond1', 'eth2.100'])]
        assert plan.deleted == ['br0', 'bond1', 'eth2.100']

    def test_adopted_ethernet_keeps_other_addresses(self):
        live = state(link('eth0', 2, up=True, alias=ADOPTED % 'eth0'),
                     addresses=[addr(2, '192.0.2.10', 24),
                                addr(2, '192.0.2.77', 24),
                                addr(2, '2001:db8::10', 64)])
        got = steps(plan_mod.plan_stop(fixtures.case('ethernet-static'),
                                       live))
        assert got == {
            'addresses': [ops.del_address('eth0', '192.0.2.10', 24),
                          ops.del_address('eth0', '2001:db8::10', 64)],
            'links': [ops.set_link('eth0', up=False)]}

    def test_adopted_member_of_an_adopted_master_is_released(self):
        definition = HostInterface.from_xml(
            "<interface type='bridge' name='br9'><bridge>"
            "<interface type='ethernet' name='v0'/></bridge></interface>")
        live = state(link('br9', 2, 'bridge', up=True,
                          alias=ADOPTED % 'br9'),
                     link('v0', 3, 'veth', up=True, master=2,
                          alias=ADOPTED % 'br9'))
        assert steps(plan_mod.plan_stop(definition, live)) == {
            'links': [ops.set_link('br9', up=False),
                      ops.set_link('v0', nomaster=True),
                      ops.set_link('v0', up=False)]}

    def test_devices_it_does_not_manage_are_left_alone(self):
        live = state(link('eth0', 2, up=True, alias='uplink'),
                     addresses=[addr(2, '192.0.2.10', 24)])
        assert plan_mod.plan_stop(fixtures.case('ethernet-static'),
                                  live).steps == []
        assert plan_mod.plan_stop(fixtures.case('bridge'), state()).steps \
            == []
