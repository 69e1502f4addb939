"""Formatting and parsing of libvirt configuration objects."""

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from vif_plug_dyn import exception
from vif_plug_dyn.tests.unit.virt import samples
from vif_plug_dyn.virt.libvirt import config
from vif_plug_dyn.virt.libvirt import vif

CASES = samples.cases()
CONVERTER = vif.EndpointToInterface()


def canon(text: str) -> str:
    return ET.canonicalize(text, strip_text=True)


# --- round trips -------------------------------------------------------------


@pytest.mark.parametrize('name,endpoint,options', CASES,
                         ids=samples.ids(CASES))
def test_round_trip_every_type_and_option(name, endpoint, options):
    iface = CONVERTER.build(endpoint, options)
    text = iface.to_xml()
    parsed = config.InterfaceConfig.parse_str(text)
    assert parsed == iface
    assert parsed.to_xml() == text
    pretty = iface.to_xml(pretty=True)
    assert '\n  <mac ' in pretty
    assert config.InterfaceConfig.parse_str(pretty) == iface


@pytest.mark.parametrize('name,endpoint,options', CASES,
                         ids=samples.ids(CASES))
def test_every_formatted_attribute_is_parsed_back(name, endpoint, options):
    # Every attribute written must land in a modelled field, not in the
    # extras (which would mean the parser does not know it).
    parsed = config.InterfaceConfig.parse_str(
        CONVERTER.build(endpoint, options).to_xml())
    assert parsed.extra_attrs == {}
    assert parsed.extra_children == []
    assert parsed.child_extra_attrs == {}
    assert parsed.child_extra_children == {}
    if parsed.virtualport is not None:
        assert parsed.virtualport.extra_parameters == {}
        assert parsed.virtualport.extra_attrs == {}
    for address in (parsed.guest_address, parsed.source_address):
        if address is not None:
            assert address.extra_attrs == {}


def test_bridge_ovs_xml():
    iface = config.InterfaceConfig(
        type='bridge', mac='52:54:00:AA:bb:01', source_bridge='br-int',
        target_dev='tap1', model='virtio', mtu=1450, driver_queues=4,
        link_state='down', alias='ua-n1',
        virtualport=config.VirtualPortConfig(
            type='openvswitch', interface_id=samples.IFACE_ID.upper(),
            profile_id='gold'),
        guest_address=config.AddressConfig.from_pci('0000:00:05.0'))
    assert canon(iface.to_xml()) == canon(
        "<interface type='bridge'>"
        "<mac address='52:54:00:aa:bb:01'/>"
        "<source bridge='br-int'/>"
        "<virtualport type='openvswitch'><parameters interfaceid='%s' "
        "profileid='gold'/></virtualport>"
        "<target dev='tap1'/><model type='virtio'/>"
        "<driver queues='4'/><link state='down'/><mtu size='1450'/>"
        "<alias name='ua-n1'/>"
        "<address type='pci' domain='0x0000' bus='0x00' slot='0x05' "
        "function='0x0'/></interface>" % samples.IFACE_ID)


def test_direct_qbg_xml():
    iface = config.InterfaceConfig(
        type='direct', mac='52:54:00:00:00:02', source_dev='eth0',
        source_mode='vepa', model='virtio',
        virtualport=config.VirtualPortConfig(
            type='802.1Qbg', manager_id=11, type_id=1193047,
            type_id_version=2, instance_id=samples.INSTANCE_ID))
    assert canon(iface.to_xml()) == canon(
        "<interface type='direct'><mac address='52:54:00:00:00:02'/>"
        "<source dev='eth0' mode='vepa'/>"
        "<virtualport type='802.1Qbg'><parameters managerid='11' "
        "typeid='1193047' typeidversion='2' instanceid='%s'/>"
        "</virtualport><model type='virtio'/></interface>"
        % samples.INSTANCE_ID)


def test_direct_qbh_xml():
    iface = config.InterfaceConfig(
        type='direct', mac='52:54:00:00:00:02', source_dev='eth1',
        source_mode='private',
        virtualport=config.VirtualPortConfig(type='802.1Qbh',
                                             profile_id='finance'))
    assert canon(iface.to_xml()) == canon(
        "<interface type='direct'><mac address='52:54:00:00:00:02'/>"
        "<source dev='eth1' mode='private'/>"
        "<virtualport type='802.1Qbh'><parameters profileid='finance'/>"
        "</virtualport></interface>")


def test_hostdev_xml():
    iface = config.InterfaceConfig(
        type='hostdev', mac='52:54:00:00:00:03', managed=True,
        source_address=config.AddressConfig.from_pci('0000:03:10.2'),
        vlan=config.VlanConfig(tags=[(42, None)]))
    assert canon(iface.to_xml()) == canon(
        "<interface type='hostdev' managed='yes'>"
        "<mac address='52:54:00:00:00:03'/>"
        "<source><address type='pci' domain='0x0000' bus='0x03' "
        "slot='0x10' function='0x2'/></source>"
        "<vlan><tag id='42'/></vlan></interface>")


def test_ethernet_xml():
    iface = config.InterfaceConfig(
        type='ethernet', mac='52:54:00:00:00:04', target_dev='vpd-tap0',
        target_managed=False, model='virtio')
    assert canon(iface.to_xml()) == canon(
        "<interface type='ethernet'><mac address='52:54:00:00:00:04'/>"
        "<target dev='vpd-tap0' managed='no'/><model type='virtio'/>"
        "</interface>")


def test_network_xml():
    iface = config.InterfaceConfig(
        type='network', mac='52:54:00:00:00:05', source_network='default',
        source_portgroup='web', model='virtio', driver_name='vhost')
    assert canon(iface.to_xml()) == canon(
        "<interface type='network'><mac address='52:54:00:00:00:05'/>"
        "<source network='default' portgroup='web'/>"
        "<model type='virtio'/><driver name='vhost'/></interface>")


# --- what libvirt adds survives ----------------------------------------------

LIVE_BRIDGE = """
<interface type='network' trustGuestRxFilters='yes'>
  <mac address='52:54:00:6d:90:02' type='static'/>
  <source network='default' portid='5f2bd2b6-0000-4cb5-9bf4-2a4d8ec1a7d6'
          bridge='virbr0' portgroup='web'/>
  <target dev='vnet3'/>
  <model type='virtio'/>
  <driver name='vhost' queues='2' rx_queue_size='256'>
    <host csum='off' gso='off'/>
    <guest tso4='off'/>
  </driver>
  <bandwidth><inbound average='1000' peak='5000' burst='1024'/></bandwidth>
  <filterref filter='clean-traffic'><parameter name='IP' value='10.0.0.1'/>
  </filterref>
  <rom bar='off'/>
  <boot order='2'/>
  <link state='up'/>
  <mtu size='1500'/>
  <coalesce><rx><frames max='7'/></rx></coalesce>
  <acpi index='4'/>
  <alias name='net0'/>
  <address type='pci' domain='0x0000' bus='0x01' slot='0x00'
           function='0x0' multifunction='on-ignored'/>
</interface>
""".replace(" multifunction='on-ignored'", '')


def test_unknown_children_and_attributes_survive_round_trip():
    parsed = config.InterfaceConfig.parse_str(LIVE_BRIDGE)
    assert parsed.type == 'network'
    assert parsed.source_network == 'default'
    assert parsed.source_portgroup == 'web'
    assert parsed.driver_queues == 2
    assert parsed.alias == 'net0'
    assert parsed.extra_attrs == {'trustGuestRxFilters': 'yes'}
    # libvirt reports the bridge a network resolved to; it is modelled.
    assert parsed.source_bridge == 'virbr0'
    assert parsed.child_extra_attrs['source'] == {
        'portid': '5f2bd2b6-0000-4cb5-9bf4-2a4d8ec1a7d6'}
    assert parsed.child_extra_attrs['mac'] == {'type': 'static'}
    assert parsed.child_extra_attrs['driver'] == {'rx_queue_size': '256'}
    assert [c.tag for c in parsed.child_extra_children['driver']] == [
        'host', 'guest']
    assert [c.tag for c in parsed.extra_children] == [
        'bandwidth', 'filterref', 'rom', 'boot', 'coalesce', 'acpi']
    # Same elements and attributes; only the order of children may move.
    assert _sorted_canon(parsed.to_xml()) == _sorted_canon(LIVE_BRIDGE)
    assert config.InterfaceConfig.parse_str(parsed.to_xml()) == parsed


def _sorted_canon(text):
    def norm(element):
        children = sorted((norm(c) for c in element), key=repr)
        return (element.tag, sorted(element.attrib.items()),
                (element.text or '').strip(), children)
    return norm(ET.fromstring(text))


def test_unknown_interface_type_is_kept():
    text = ("<interface type='vhostuser'><mac address='52:54:00:00:00:09'/>"
            "<source type='unix' path='/run/vhu.sock' mode='server'/>"
            "<model type='virtio'/></interface>")
    parsed = config.InterfaceConfig.parse_str(text)
    assert parsed.type == 'vhostuser'
    assert parsed.source_mode == 'server'
    assert parsed.child_extra_attrs['source'] == {
        'type': 'unix', 'path': '/run/vhu.sock'}
    assert canon(parsed.to_xml()) == canon(text)


def test_non_pci_guest_address_is_kept():
    text = ("<interface type='bridge'><mac address='52:54:00:00:00:09'/>"
            "<source bridge='br0'/>"
            "<address type='ccw' cssid='0xfe' ssid='0x0' devno='0x0001'/>"
            "</interface>")
    parsed = config.InterfaceConfig.parse_str(text)
    assert parsed.guest_address is not None
    assert parsed.guest_address.type == 'ccw'
    assert parsed.guest_address.pci() is None
    assert canon(parsed.to_xml()) == canon(text)


def test_address_reads_decimal_and_hex():
    address = config.AddressConfig.parse_str(
        "<address type='pci' domain='0' bus='3' slot='0x1f' function='7' "
        "multifunction='on'/>".replace(" multifunction='on'", ''))
    assert address.pci() == '0000:03:1f.7'
    assert config.AddressConfig.parse_str(address.to_xml()) == address


def test_multifunction_round_trip():
    address = config.AddressConfig.from_pci('0000:00:05.0')
    address.multifunction = True
    assert "multifunction='yes'" in address.to_xml()
    assert config.AddressConfig.parse_str(address.to_xml()) == address


def test_vlan_trunk_round_trip():
    vlan = config.VlanConfig(tags=[(42, None), (43, 'untagged')],
                             trunk=True)
    text = vlan.to_xml()
    assert canon(text) == canon(
        "<vlan trunk='yes'><tag id='42'/><tag id='43' nativeMode="
        "'untagged'/></vlan>")
    assert config.VlanConfig.parse_str(text) == vlan


def test_equality_sees_extras():
    a = config.InterfaceConfig.parse_str(LIVE_BRIDGE)
    b = config.InterfaceConfig.parse_str(LIVE_BRIDGE)
    assert a == b
    b.extra_children[0].set('average', '1')  # bandwidth/inbound is nested
    b.extra_children[0][0].set('average', '2')
    assert a != b
    c = config.InterfaceConfig.parse_str(LIVE_BRIDGE)
    c.child_extra_attrs['source']['bridge'] = 'virbr1'
    assert a != c
    assert a != 'not a config'


# --- bad input: parsing ------------------------------------------------------

@pytest.mark.parametrize('text,element,words', [
    ("<interface type='bridge'><source bridge='br0'/></interface>",
     'interface/mac', 'needs <mac'),
    ("<interface type='bridge'><mac/><source bridge='br0'/></interface>",
     'interface/mac', 'needs <mac'),
    ("<interface type='bridge'><mac address='01:00:5e:00:00:01'/>"
     "<source bridge='br0'/></interface>", 'interface/mac', 'multicast'),
    ("<interface type='bridge'><mac address='zz'/>"
     "<source bridge='br0'/></interface>", 'interface/mac', 'hex octets'),
    ("<interface><mac address='52:54:00:00:00:01'/></interface>",
     'interface', 'no type'),
    ("<interface type='bridge'><mac address='52:54:00:00:00:01'/>"
     "</interface>", 'interface/source', 'source bridge'),
    ("<interface type='direct'><mac address='52:54:00:00:00:01'/>"
     "<source mode='vepa'/></interface>", 'interface/source', 'source dev'),
    ("<interface type='network'><mac address='52:54:00:00:00:01'/>"
     "</interface>", 'interface/source', 'source network'),
    ("<interface type='hostdev'><mac address='52:54:00:00:00:01'/>"
     "<source/></interface>", 'interface/source', 'address'),
    ("<interface type='ethernet'><mac address='52:54:00:00:00:01'/>"
     "<mtu size='big'/></interface>", 'interface/mtu', 'not an integer'),
    ("<interface type='ethernet'><mac address='52:54:00:00:00:01'/>"
     "<mtu size='0x5dc'/></interface>", 'interface/mtu', 'not an integer'),
    ("<interface type='ethernet'><mac address='52:54:00:00:00:01'/>"
     "<driver queues='-1'/></interface>", 'interface/driver',
     'not an integer'),
    ("<interface type='ethernet'><mac address='52:54:00:00:00:01'/>"
     "<driver queues='0'/></interface>", 'interface/driver', 'between'),
    ("<interface type='ethernet'><mac address='52:54:00:00:00:01'/>"
     "<link state='sideways'/></interface>", 'interface/link', 'state'),
    ("<interface type='ethernet'><mac address='52:54:00:00:00:01'/>"
     "<target dev='t' managed='maybe'/></interface>", 'interface/target',
     "'yes' or 'no'"),
    ("<interface type='hostdev' managed='1'>"
     "<mac address='52:54:00:00:00:01'/></interface>", 'interface',
     "'yes' or 'no'"),
    ("<interface type='hostdev'><mac address='52:54:00:00:00:01'/><source>"
     "<address type='pci' domain='0x0000' bus='0x03' slot='0x20' "
     "function='0x0'/></source></interface>", 'interface/source/address',
     'between'),
    ("<interface type='ethernet'><mac address='52:54:00:00:00:01'/>"
     "<address bus='1'/></interface>", 'interface/address', 'no type'),
    ("<interface type='hostdev'><mac address='52:54:00:00:00:01'/>"
     "<source><address type='pci'/></source><vlan/></interface>",
     'interface/vlan', 'no <tag>'),
    ("<interface type='hostdev'><mac address='52:54:00:00:00:01'/>"
     "<source><address type='pci'/></source><vlan><tag id='x'/></vlan>"
     "</interface>", 'interface/vlan/tag', 'not an integer'),
    ("<interface type='direct'><mac address='52:54:00:00:00:01'/>"
     "<source dev='eth0'/><virtualport type='802.1Qbg'><parameters "
     "managerid='300'/></virtualport></interface>",
     'interface/virtualport/parameters', 'between 0 and 255'),
    ("<interface type='direct'><mac address='52:54:00:00:00:01'/>"
     "<source dev='eth0'/><virtualport><parameters><x/></parameters>"
     "</virtualport></interface>", 'interface/virtualport/parameters',
     'unexpected child'),
    ("<network/>", 'interface', 'expected <interface>'),
    ("<interface type='bridge'>", 'interface', 'not well-formed'),
    ("<!DOCTYPE x [<!ENTITY a 'b'>]><interface type='bridge'/>",
     'interface', 'not well-formed'),
])
def test_parse_errors_name_the_element(text, element, words):
    with pytest.raises(exception.InvalidXML) as info:
        config.InterfaceConfig.parse_str(text)
    message = str(info.value)
    assert 'at %s:' % element in message, message
    assert words in message, message
    assert info.value.kwargs['element'] == element


def test_repeated_single_children_first_wins_like_libvirt():
    parsed = config.InterfaceConfig.parse_str(
        "<interface type='ethernet'><mac address='52:54:00:00:00:01'/>"
        "<mac address='52:54:00:00:00:02'/><link state='down'/>"
        "<link state='up'/><target dev='t0'/></interface>")
    assert parsed.mac == '52:54:00:00:00:01'
    assert parsed.link_state == 'down'
    text = parsed.to_xml()
    assert text.count('<link ') == 1 and text.count('<mac ') == 1


def test_parse_path_is_prefixed_by_the_caller():
    element = ET.fromstring("<interface type='bridge'/>")
    with pytest.raises(exception.InvalidXML) as info:
        config.InterfaceConfig.parse_dom(element,
                                         'domain/devices/interface[3]')
    assert info.value.kwargs['element'] == 'domain/devices/interface[3]/mac'


# --- bad input: formatting ---------------------------------------------------

def _iface(**kw):
    fields = {'type': 'bridge', 'mac': '52:54:00:00:00:01',
              'source_bridge': 'br0'}
    fields.update(kw)
    return config.InterfaceConfig(**fields)


@pytest.mark.parametrize('changes,field', [
    ({'mac': None}, 'interface.mac'),
    ({'mac': 52}, 'interface.mac'),
    ({'mac': 'ff:ff:ff:ff:ff:ff'}, 'interface.mac'),
    ({'type': 'brid ge'}, 'interface.type'),
    ({'type': None}, 'interface.type'),
    ({'source_bridge': None}, 'interface.source_bridge'),
    ({'source_bridge': 'a/b'}, 'interface.source_bridge'),
    ({'target_dev': 'x' * 16}, 'interface.target_dev'),
    ({'managed': True}, 'interface.managed'),
    ({'link_state': 'sideways'}, 'interface.link_state'),
    ({'mtu': 10}, 'interface.mtu'),
    ({'mtu': '1500x'}, 'interface.mtu'),
    ({'driver_queues': True}, 'interface.driver_queues'),
    ({'driver_queues': 0}, 'interface.driver_queues'),
    ({'driver_queues': '4'}, 'interface.driver_queues'),
    ({'model': 'vir\x01tio'}, 'interface.model'),
    ({'type': 'direct', 'source_bridge': None, 'source_dev': 'eth0',
      'source_mode': 'loud'}, 'interface.source_mode'),
    ({'type': 'network', 'source_bridge': None}, 'interface.source_network'),
    ({'type': 'hostdev', 'source_bridge': None}, 'interface.source_address'),
    ({'type': 'hostdev', 'source_bridge': None,
      'source_address': config.AddressConfig(type='ccw')},
     'interface.source_address'),
    ({'guest_address': config.AddressConfig(domain=0, bus=0, slot=40,
                                            function=0)}, 'address.slot'),
    ({'guest_address': config.AddressConfig(domain=0, bus=0, slot=4)},
     'address.function'),
    ({'guest_address': config.AddressConfig(type='ccw', bus=1)},
     'address.bus'),
    ({'vlan': config.VlanConfig(tags=[])}, 'vlan.tags'),
    ({'vlan': config.VlanConfig(tags=[(5000, None)])}, 'vlan.tag.id'),
    ({'vlan': config.VlanConfig(tags=[(5, 'sometimes')])},
     'vlan.tag.nativeMode'),
    ({'virtualport': config.VirtualPortConfig(type='vepa')},
     'virtualport.type'),
    ({'virtualport': config.VirtualPortConfig(
        type='openvswitch', interface_id='not-a-uuid')},
     'virtualport.interface_id'),
    ({'virtualport': config.VirtualPortConfig(
        type='802.1Qbg', manager_id=256)}, 'virtualport.manager_id'),
    ({'virtualport': config.VirtualPortConfig(
        type='802.1Qbg', type_id='1')}, 'virtualport.type_id'),
])
def test_format_errors_name_the_field(changes, field):
    with pytest.raises(exception.InvalidField) as info:
        _iface(**changes).to_xml()
    assert info.value.kwargs['field'] == field, str(info.value)


def test_wrong_root_for_other_classes():
    with pytest.raises(exception.InvalidXML) as info:
        config.VlanConfig.parse_str("<virtualport/>")
    assert 'expected <vlan>, found <virtualport>' in str(info.value)


# --- property: any valid interface survives a round trip ---------------------

_names = st.from_regex(r'\A[a-z][a-z0-9_.-]{0,14}\Z')
_macs = st.tuples(*[st.integers(0, 255)] * 5).map(
    lambda t: '52:%02x:%02x:%02x:%02x:%02x' % t)
_pci = st.builds(
    lambda d, b, s, f: config.AddressConfig(domain=d, bus=b, slot=s,
                                            function=f),
    st.integers(0, 0xffff), st.integers(0, 0xff), st.integers(0, 0x1f),
    st.integers(0, 7))


@st.composite
def interfaces(draw):
    kind = draw(st.sampled_from(config.INTERFACE_TYPES))
    iface = config.InterfaceConfig(type=kind, mac=draw(_macs))
    if kind == 'bridge':
        iface.source_bridge = draw(_names)
        iface.target_dev = draw(st.none() | _names)
    elif kind == 'direct':
        iface.source_dev = draw(_names)
        iface.source_mode = draw(st.sampled_from(
            ('vepa', 'bridge', 'private', 'passthrough')))
    elif kind == 'hostdev':
        iface.managed = draw(st.booleans())
        iface.source_address = draw(_pci)
        if draw(st.booleans()):
            iface.vlan = config.VlanConfig(
                tags=[(draw(st.integers(1, 4094)), None)])
    elif kind == 'ethernet':
        iface.target_dev = draw(_names)
        iface.target_managed = draw(st.none() | st.booleans())
    else:
        iface.source_network = draw(_names)
        iface.source_portgroup = draw(st.none() | _names)
    if kind != 'hostdev':
        iface.model = draw(st.sampled_from(('virtio', 'e1000', None)))
        iface.driver_queues = draw(st.none() | st.integers(1, 256))
        iface.mtu = draw(st.none() | st.integers(68, 65535))
        iface.link_state = draw(st.sampled_from(('up', 'down', None)))
    iface.guest_address = draw(st.none() | _pci)
    iface.alias = draw(st.none() | _names.map(lambda n: 'ua-' + n))
    return iface


@settings(max_examples=300, deadline=None)
@given(interfaces())
def test_property_round_trip(iface):
    text = iface.to_xml()
    parsed = config.InterfaceConfig.parse_str(text)
    assert parsed == iface
    assert parsed.to_xml() == text
