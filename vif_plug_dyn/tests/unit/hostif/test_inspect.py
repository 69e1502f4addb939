"""Reading live devices into the definition model (virsh iface-dumpxml)."""

import xml.etree.ElementTree as ET

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn.hostif import inspect
from vif_plug_dyn.hostif.addressing import IPAddress
from vif_plug_dyn.hostif.addressing import Protocol
from vif_plug_dyn.hostif.model import HostInterface
from vif_plug_dyn.hostif.model import MiiMon
from vif_plug_dyn.tests.unit.hostif import fixtures
from vif_plug_dyn.tests.unit.hostif.livestate import addr
from vif_plug_dyn.tests.unit.hostif.livestate import link
from vif_plug_dyn.tests.unit.hostif.livestate import state

LIVE = state(
    link('lo', 1, mtu=65536, up=True, mac='00:00:00:00:00:00'),
    link('eth0', 2, mtu=9000, up=True, mac='52:54:00:0a:00:01'),
    link('br0', 5, 'bridge', mtu=9000, up=True, operstate='up',
         data={'stp_state': 1, 'forward_delay': 1500}),
    link('eth1', 6, mac='52:54:00:0b:00:01', master=5, up=True),
    link('eth2', 9),
    link('eth2.100', 10, 'vlan', lower=9, master=5, up=True,
         data={'vlan_id': 100, 'protocol': 0x8100}),
    link('bond1', 11, 'bond', master=5, up=True,
         data={'mode': 4, 'miimon': 100, 'updelay': 0, 'downdelay': 0,
               'use_carrier': 1}),
    link('eth3', 7, 'veth', mac='52:54:00:00:00:03', master=11),
    link('eth4', 8, None, mac='52:54:00:00:00:04', master=11),
    link('bond2', 12, 'bond', data={
        'mode': 2, 'arp_interval': 1000, 'arp_targets': ['192.0.2.254'],
        'arp_validate': 3}),
    link('eth5', 13, master=12),
    link('bond3', 14, 'bond', data={'mode': 0}),
    addresses=[
        addr(1, '127.0.0.1', 8, scope=254),
        addr(2, '192.0.2.10', 24), addr(2, '198.51.100.10', 25),
        addr(2, '2001:db8::10', 64),
        addr(2, 'fe80::5054:ff:fe0a:1', 64, scope=253),
        addr(5, '203.0.113.5', 24),
        addr(6, '192.0.2.200', 24)])


def test_ethernet():
    iface = inspect.dump_live('eth0', LIVE)
    assert iface == HostInterface(
        kind='ethernet', name='eth0', mac='52:54:00:0a:00:01', mtu=9000,
        ipv4=Protocol(family='ipv4', addresses=(
            IPAddress(address='192.0.2.10', prefix=24),
            IPAddress(address='198.51.100.10', prefix=25))),
        ipv6=Protocol(family='ipv6', addresses=(
            IPAddress(address='2001:db8::10', prefix=64),)))


def test_bridge_with_vlan_and_bond_members_reads_like_its_definition():
    iface = inspect.dump_live('br0', LIVE)
    wanted = fixtures.case('bridge')
    # A live dump has no start mode nor route, and shows member MACs.
    assert iface.kind == 'bridge' and iface.mtu == 9000
    assert iface.stp is True and iface.delay == 15.0
    assert iface.ipv4 == Protocol(family='ipv4', addresses=(
        IPAddress(address='203.0.113.5', prefix=24),))
    assert [(m.kind, m.name) for m in iface.members] == [
        (m.kind, m.name) for m in wanted.members]
    vlan, bond = iface.members[1], iface.members[2]
    assert (vlan.tag, vlan.parent) == (100, 'eth2')
    assert bond.bond_mode == '802.3ad'
    assert bond.miimon == MiiMon(freq=100, updelay=0, downdelay=0,
                                 carrier='netif')
    assert [s.name for s in bond.members] == ['eth3', 'eth4']
    # Members are bare: eth1's own address is not shown.
    assert iface.members[0].ipv4 is None


def test_bond_arp_monitoring():
    iface = inspect.dump_live('bond2', LIVE)
    assert iface.bond_mode == 'balance-xor'
    assert (iface.arpmon.interval, iface.arpmon.target,
            iface.arpmon.validate) == (1000, '192.0.2.254', 'all')


def test_what_the_format_cannot_say():
    # Loopback's MTU is beyond a definition's range: left out.
    assert inspect.dump_live('lo', LIVE).mtu is None
    with pytest.raises(exception.InvalidHostInterface,
                       match='bond3.*cannot be described'):
        inspect.dump_live('bond3', LIVE)
    with pytest.raises(exception.DeviceNotFound):
        inspect.dump_live('nope', LIVE)


def test_xml_carries_link_states(tmp_path):
    text = inspect.dump_live_xml('br0', LIVE)
    root = ET.fromstring(text)
    # libvirt's schema has no <link> on a bridge; members have theirs.
    assert root.find('link') is None
    states = {e.get('name'): e.find('link').get('state')
              for e in root.iter('interface') if e.get('type')
              and e.get('type') != 'bridge'}
    assert states == {'eth1': 'up', 'eth2.100': 'up', 'bond1': 'up',
                      'eth3': 'down', 'eth4': 'down'}
    # The live dump parses back and passes libvirt's own schema.
    assert HostInterface.from_xml(text) == inspect.dump_live('br0', LIVE)
    fixtures.virt_xml_validate(tmp_path, text)
