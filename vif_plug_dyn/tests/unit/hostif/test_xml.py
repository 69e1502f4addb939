"""libvirt host interface XML: round trips, schema validity, errors."""

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn.hostif import addressing
from vif_plug_dyn.hostif import model
from vif_plug_dyn.hostif import xml as ifxml
from vif_plug_dyn.tests.unit.hostif import fixtures

H = model.HostInterface


@pytest.mark.parametrize('name', fixtures.cases())
def test_golden_definition_round_trip(name):
    iface = fixtures.case(name)
    dumped = iface.to_xml()
    again = H.from_xml(dumped)
    assert again == iface
    # NOTE(vpd): the dump is a fixed point: dumping what was parsed from
    # a dump gives the very same text.
    assert again.to_xml() == dumped


@pytest.mark.parametrize('name', fixtures.cases())
def test_golden_definition_dump_is_schema_valid(name, tmp_path):
    fixtures.virt_xml_validate(tmp_path, fixtures.case(name).to_xml())


def test_every_kind_is_covered_by_golden_cases():
    kinds = {fixtures.case(n).kind for n in fixtures.cases()}
    assert kinds == set(model.KINDS)


def test_round_trip_keeps_every_field():
    iface = fixtures.case('bond')
    assert iface.start_mode == 'onboot' and iface.mtu == 9000
    assert iface.bond_mode == 'active-backup'
    assert iface.miimon == model.MiiMon(freq=100, downdelay=200,
                                        updelay=200, carrier='netif')
    assert [m.name for m in iface.members] == ['eth3', 'eth4']
    assert iface.members[0].mac == '52:54:00:0c:00:03'
    assert iface.ipv4 == addressing.Protocol(family='ipv4', dhcp=True)
    bridge = fixtures.case('bridge')
    assert bridge.stp is True and bridge.delay == 15.0
    assert [m.kind for m in bridge.members] == ['ethernet', 'vlan', 'bond']
    assert bridge.members[1].tag == 100
    assert bridge.members[1].parent == 'eth2'
    static = fixtures.case('ethernet-static')
    assert [a.cidr for a in static.ipv4.addresses] == [
        '192.0.2.10/24', '198.51.100.10/25']
    assert static.ipv6.autoconf and static.ipv6.gateway == '2001:db8::1'
    dhcp = fixtures.case('ethernet-dhcp')
    assert dhcp.ipv4.peerdns is False
    assert dhcp.ipv6.autoconf and dhcp.ipv6.dhcp


def test_uuid_processing_instruction():
    named = fixtures.case('vlan-named')
    assert named.uuid == '6f1c1d2e-8f47-4b7e-9a39-2f7a8f6f0c11'
    assert '<?vif-plug-dyn uuid="6f1c1d2e-8f47-4b7e-9a39-2f7a8f6f0c11"?>' \
        in named.to_xml()
    # NOTE(vpd): a default uuid is not written, so plain definitions dump
    # exactly as libvirt would.
    assert '<?vif-plug-dyn' not in fixtures.case('vlan').to_xml()


def test_api_built_definition_dumps_schema_valid(tmp_path):
    member_bond = H(kind='bond', name='bond7', bond_mode='balance-alb',
                    miimon=model.MiiMon(freq=50, carrier='ioctl'),
                    members=(H(kind='ethernet', name='eth7'),))
    bridge = H(kind='bridge', name='br7', uuid=model.default_uuid('x'),
               start_mode='hotplug', delay=0.25,
               ipv6=addressing.Protocol(
                   family='ipv6', autoconf=True, dhcp=True, peerdns=True,
                   addresses=(addressing.IPAddress(address='fd00::7'),),
                   gateway='fd00::1'),
               members=(member_bond, H(kind='vlan', tag=4094,
                                       parent='eth8')))
    text = bridge.to_xml()
    fixtures.virt_xml_validate(tmp_path, text)
    assert H.from_xml(text) == bridge


def test_virsh_style_document_with_status_is_accepted():
    text = """<interface type='ethernet' name='enp1s0'>
      <link speed='1000' state='up'/>
      <mac address='52:54:00:AA:BB:CC'/>
      <protocol family='ipv4'>
        <ip address='192.168.122.10' prefix='24'/>
      </protocol>
    </interface>"""
    iface = H.from_xml(text)
    assert iface.mac == '52:54:00:aa:bb:cc'
    assert iface.ipv4.addresses[0].cidr == '192.168.122.10/24'
    assert '<link' not in iface.to_xml()


def test_vlan_without_name_gets_parent_dot_tag():
    iface = H.from_xml("<interface type='vlan'><vlan tag='9'>"
                       "<interface name='eth0'/></vlan></interface>")
    assert iface.name == 'eth0.9'
    assert "name=\"eth0.9\"" in iface.to_xml()


BOND2 = """<interface type='bond' name='bond0'><bond mode='%s'>%s
  <interface type='ethernet' name='eth1'/>%s</bond></interface>"""
BRIDGE1 = """<interface type='bridge' name='br0'><bridge%s>%s</bridge>
</interface>"""
P4 = "/interface/protocol[@family='ipv4']"


@pytest.mark.parametrize('text, element', [
    (BOND2 % ('active-backup', '', "<interface type='ethernet'/>"),
     '/interface/bond/interface[2]/@name'),
    (BOND2 % ('active-backup', '',
              "<interface type='ethernet' name='bad name'/>"),
     '/interface/bond/interface[2]/@name'),
    (BOND2 % ('active-backup', '',
              "<interface type='ethernet' name='eth1'/>"),
     '/interface/bond/interface[2]/@name'),
    (BOND2 % ('active-backup', '',
              "<interface type='vlan' name='v'><vlan tag='3'>"
              "<interface name='eth1'/></vlan></interface>"),
     '/interface/bond/interface[2]/@type'),
    (BOND2 % ('active-backup', '',
              "<interface type='ethernet' name='eth2'><mtu size='1500'/>"
              "</interface>"),
     '/interface/bond/interface[2]/mtu'),
    (BOND2 % ('fast', '', ''), '/interface/bond/@mode'),
    (BOND2 % ('balance-rr', "<miimon freq='x'/>", ''),
     '/interface/bond/miimon/@freq'),
    (BOND2 % ('balance-rr', "<miimon/>", ''),
     '/interface/bond/miimon/@freq'),
    (BOND2 % ('balance-rr', "<miimon freq='1' carrier='phy'/>", ''),
     '/interface/bond/miimon/@carrier'),
    (BOND2 % ('balance-rr', "<miimon freq='1'/><arpmon interval='1' "
                            "target='192.0.2.1'/>", ''),
     '/interface/bond/arpmon'),
    (BOND2 % ('802.3ad', "<arpmon interval='1' target='192.0.2.1'/>", ''),
     '/interface/bond/arpmon'),
    (BOND2 % ('balance-rr', "<arpmon interval='1' target='fe80::1'/>", ''),
     '/interface/bond/arpmon/@target'),
    (BOND2 % ('balance-rr', "<miimon freq='1'/><miimon freq='2'/>", ''),
     '/interface/bond/miimon[2]'),
    (BOND2 % ('balance-rr', "<lacp/>", ''), '/interface/bond/lacp'),
    ("<interface type='bond' name='bond0'><bond/></interface>",
     '/interface/bond/interface'),
    ("<interface type='bond' name='bond0'/>", '/interface/bond'),
    (BRIDGE1 % (" stp='yes'", ''), '/interface/bridge/@stp'),
    (BRIDGE1 % (" delay='31'", ''), '/interface/bridge/@delay'),
    (BRIDGE1 % (" delay='soon'", ''), '/interface/bridge/@delay'),
    (BRIDGE1 % (" hello='2'", ''), '/interface/bridge/@hello'),
    (BRIDGE1 % ('', "<interface type='bridge' name='br1'><bridge/>"
                    "</interface>"),
     '/interface/bridge/interface[1]/@type'),
    (BRIDGE1 % ('', "<interface type='ethernet' name='e1'>"
                    "<start mode='onboot'/></interface>"),
     '/interface/bridge/interface[1]/start'),
    (BRIDGE1 % ('', "<interface type='ethernet' name='e1'/>"
                    "<interface type='ethernet' name='e1'/>"),
     '/interface/bridge/interface[2]/@name'),
    (BRIDGE1 % ('', "<port name='e1'/>"), '/interface/bridge/port'),
    (BRIDGE1 % ('', "<interface type='bond' name='b1'><bond>"
                    "<interface type='ethernet' name='e1'/>"
                    "<interface type='ethernet' name='e 2'/>"
                    "</bond></interface>"),
     '/interface/bridge/interface[1]/bond/interface[2]/@name'),
    ("<interface type='vlan' name='v'><vlan tag='5000'>"
     "<interface name='eth0'/></vlan></interface>", '/interface/vlan/@tag'),
    ("<interface type='vlan' name='v'><vlan tag='-1'>"
     "<interface name='eth0'/></vlan></interface>", '/interface/vlan/@tag'),
    ("<interface type='vlan' name='v'><vlan tag='5'/></interface>",
     '/interface/vlan/interface'),
    ("<interface type='vlan' name='v'><vlan tag='5'><interface name='v'/>"
     "</vlan></interface>", '/interface/vlan/interface/@name'),
    ("<interface type='vlan' name='v'><vlan tag='5'><interface/>"
     "</vlan></interface>", '/interface/vlan/interface/@name'),
    ("<interface type='ethernet' name='e'><start mode='boot'/></interface>",
     '/interface/start/@mode'),
    ("<interface type='ethernet' name='e'><mtu size='10'/></interface>",
     '/interface/mtu/@size'),
    ("<interface type='ethernet' name='e'><mtu/></interface>",
     '/interface/mtu/@size'),
    ("<interface type='ethernet' name='e'><mac address='01:00:5e:00:00:01'"
     "/></interface>", '/interface/mac/@address'),
    ("<interface type='ethernet' name='e'><mtu size='1500'/>"
     "<mtu size='1500'/></interface>", '/interface/mtu[2]'),
    ("<interface type='bridge' name='b'><mac address='52:54:00:00:00:01'/>"
     "<bridge/></interface>", '/interface/mac'),
    ("<interface type='ethernet' name='e'><foo/></interface>",
     '/interface/foo'),
    ("<interface type='ethernet' name='e' foo='1'/>", '/interface/@foo'),
    ("<interface type='ethernet' name='e'><start mode='onboot' x='1'/>"
     "</interface>", '/interface/start/@x'),
    ("<interface type='tunnel' name='t'/>", '/interface/@type'),
    ("<interface name='t'/>", '/interface/@type'),
    ("<interface type='ethernet'/>", '/interface/@name'),
    ("<interface type='ethernet' name='a-very-long-interface'/>",
     '/interface/@name'),
    ("<network/>", '/network'),
    ("<interface type='ethernet' name='e'><?vif-plug-dyn uuid='x'?>"
     "</interface>", "/interface/processing-instruction('vif-plug-dyn')"),
    ("<interface type='ethernet' name='e'><?vif-plug-dyn uuid=\"x\"?>"
     "</interface>", "/interface/processing-instruction('vif-plug-dyn')"),
    ("<interface type='ethernet' name='e'><protocol family='ipv4'>"
     "<ip address='2001:db8::1'/></protocol></interface>",
     P4 + '/ip[1]/@address'),
    ("<interface type='ethernet' name='e'><protocol family='ipv4'>"
     "<ip address='192.0.2.1' prefix='24'/><ip address='192.0.2.2' "
     "prefix='33'/></protocol></interface>", P4 + '/ip[2]/@prefix'),
    ("<interface type='ethernet' name='e'><protocol family='ipv4'>"
     "<ip/></protocol></interface>", P4 + '/ip[1]/@address'),
    ("<interface type='ethernet' name='e'><protocol family='ipv4'>"
     "<route gateway='192.0.2.1'/></protocol></interface>",
     P4 + '/route/@gateway'),
    ("<interface type='ethernet' name='e'><protocol family='ipv4'>"
     "<autoconf/></protocol></interface>", P4 + '/autoconf'),
    ("<interface type='ethernet' name='e'><protocol family='ipv4'>"
     "<dhcp peerdns='maybe'/></protocol></interface>",
     P4 + '/dhcp/@peerdns'),
    ("<interface type='ethernet' name='e'><protocol family='ipv4'>"
     "<dhcp/><dhcp/></protocol></interface>", P4 + '/dhcp[2]'),
    ("<interface type='ethernet' name='e'><protocol family='ipv4'/>"
     "<protocol family='ipv4'/></interface>", P4),
    ("<interface type='ethernet' name='e'><protocol family='ipx'/>"
     "</interface>", '/interface/protocol/@family'),
    ("<!DOCTYPE x [<!ENTITY a 'b'>]><interface/>", 'line 1'),
    ("<interface type='ethernet' name='e'>", 'line 1'),
])
def test_errors_name_the_element(text, element):
    with pytest.raises(exception.InvalidHostInterface) as info:
        H.from_xml(text)
    assert info.value.kwargs['element'] == element, str(info.value)
    assert element in str(info.value)


def test_error_names_definition_and_source():
    with pytest.raises(exception.InvalidHostInterface) as info:
        ifxml.parse("<interface type='ethernet' name='eth0'><mtu size='1'/>"
                    "</interface>", source='/etc/x/eth0.xml')
    message = str(info.value)
    assert 'eth0 (/etc/x/eth0.xml)' in message
    assert '/interface/mtu/@size' in message
    assert info.value.kwargs['name'] == 'eth0 (/etc/x/eth0.xml)'


def test_missing_attribute_is_reported_as_missing():
    with pytest.raises(exception.InvalidHostInterface) as info:
        H.from_xml("<interface type='ethernet'/>")
    assert info.value.kwargs['reason'] == 'missing'


def test_member_protocol_is_refused_before_being_parsed():
    with pytest.raises(exception.InvalidHostInterface) as info:
        H.from_xml("<interface type='bridge' name='br0'><bridge>"
                   "<interface type='ethernet' name='eth1'>"
                   "<protocol family='ipx'/></interface></bridge>"
                   "</interface>")
    assert info.value.kwargs['element'] == \
        '/interface/bridge/interface[1]/protocol'
    assert info.value.kwargs['reason'] == 'not allowed in a member interface'
