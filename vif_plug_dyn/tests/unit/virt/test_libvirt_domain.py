"""Domain-level edits by MAC, link state and migration XML."""

import xml.etree.ElementTree as ET

import pytest

from vif_plug_dyn import endpoints as ep
from vif_plug_dyn import exception
from vif_plug_dyn.tests.unit.virt import samples
from vif_plug_dyn.virt.libvirt import config
from vif_plug_dyn.virt.libvirt import domain
from vif_plug_dyn.virt.libvirt import vif

PORT = samples.PORT
MAC1, MAC2, MAC3, MAC4 = ('52:54:00:00:00:01', '52:54:00:00:00:02',
                          '52:54:00:00:00:03', '52:54:00:00:00:04')

DOMAIN = """<domain type='kvm'
        xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>guest-1</name>
  <uuid>2f6b1f4e-5c3a-4f7e-9d2b-1a2b3c4d5e6f</uuid>
  <metadata>
    <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
      <nova:name>vm &amp; co</nova:name>
    </nova:instance>
  </metadata>
  <memory unit='KiB'>131072</memory>
  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>
  <devices>
    <!-- the boot disk -->
    <disk type='file' device='disk'>
      <source file='/var/lib/x.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x04'
               slot='0x00' function='0x0'/>
    </disk>
    <controller type='pci' index='0' model='pcie-root'/>
    <interface type='bridge'>
      <mac address='52:54:00:00:00:01'/>
      <source bridge='br-old'/>
      <target dev='tap-old'/>
      <model type='virtio'/>
      <link state='up'/>
      <boot order='2'/>
      <alias name='ua-net0'/>
      <address type='pci' domain='0x0000' bus='0x01'
               slot='0x00' function='0x0'/>
    </interface>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source><address domain='0x0000' bus='0x06' slot='0x00'
                        function='0x1'/></source>
    </hostdev>
    <interface type='ethernet'>
      <mac address='52:54:00:00:00:02'/>
      <target dev='vpd-tap2' managed='no'/>
      <model type='e1000'/>
      <link state='down'/>
      <link state='up'/>
      <alias name='net1'/>
      <address type='pci' domain='0x0000' bus='0x02'
               slot='0x00' function='0x0'/>
    </interface>
    <interface type='network'>
      <mac address='52:54:00:00:00:03'/>
      <source network='default'
              portid='11111111-2222-3333-4444-555555555555'
              bridge='virbr0'/>
      <target dev='vnet2'/>
      <model type='virtio'/>
      <alias name='net2'/>
      <address type='pci' domain='0x0000' bus='0x03'
               slot='0x00' function='0x0'/>
    </interface>
    <serial type='pty'><target port='0'/></serial>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-no-hpet'/>
  </qemu:commandline>
</domain>
"""


def _others(text):
    """Canonical XML of the domain with its interfaces taken out."""
    root = ET.fromstring(text)
    devices = root.find('devices')
    for iface in devices.findall('interface'):
        devices.remove(iface)
    return ET.canonicalize(ET.tostring(root, encoding='unicode'),
                           strip_text=True)


def _order(text):
    root = ET.fromstring(text)
    return [(c.tag, c.findtext('mac') or (c.find('mac').get('address')
                                          if c.find('mac') is not None
                                          else None))
            for c in root.find('devices')]


def _assert_prefixes_kept(text):
    assert '<nova:instance xmlns:nova=' in text
    assert '<nova:name>vm &amp; co</nova:name>' in text
    assert '<qemu:commandline>' in text and '<qemu:arg ' in text
    assert 'ns0' not in text and 'ns1' not in text
    assert '<!-- the boot disk -->' in text


def _bridge(mac, bridge='br-new', tap='tap-new', **kw):
    return ep.BridgeEndpoint(port_id=PORT, network='red', mac=mac,
                             bridge=bridge, tap=tap, **kw)


CONVERTER = vif.EndpointToInterface()


# --- reading -----------------------------------------------------------------

def test_list_interfaces_by_mac_in_order():
    found = domain.list_interfaces(DOMAIN)
    assert list(found) == [MAC1, MAC2, MAC3]
    assert found[MAC1].source_bridge == 'br-old'
    assert found[MAC2].link_state == 'down'  # the first <link> counts
    assert found[MAC3].child_extra_attrs['source']['portid'].startswith(
        '1111')
    assert domain.domain_name(DOMAIN) == 'guest-1'


def test_get_interface_and_not_found():
    assert domain.get_interface(DOMAIN, MAC3.upper()).type == 'network'
    with pytest.raises(exception.InterfaceNotFound) as info:
        domain.get_interface(DOMAIN, MAC4)
    assert 'guest-1' in str(info.value) and MAC4 in str(info.value)


def test_interface_device_xml_is_the_element_as_is():
    text = domain.interface_device_xml(DOMAIN, MAC3)
    assert text.startswith("<interface type='network'>")
    assert "portid='11111111-2222-3333-4444-555555555555'" in text
    parsed = config.InterfaceConfig.parse_str(text)
    assert parsed == domain.get_interface(DOMAIN, MAC3)


def test_duplicate_macs_are_refused():
    text = DOMAIN.replace(MAC2, MAC1)
    with pytest.raises(exception.InvalidXML) as info:
        domain.list_interfaces(text)
    assert info.value.kwargs['element'] == 'domain/devices/interface[2]'


def test_bad_interface_is_named_with_its_position():
    text = DOMAIN.replace("<mac address='52:54:00:00:00:03'/>", '')
    with pytest.raises(exception.InvalidXML) as info:
        domain.list_interfaces(text)
    assert info.value.kwargs['element'] == \
        'domain/devices/interface[3]/mac'


@pytest.mark.parametrize('text,words', [
    ('<domain><devices>', 'not well-formed'),
    ('<network/>', 'root element is <network>'),
    (b'\x00', 'not well-formed'),
    (None, 'expected XML text'),
])
def test_bad_domains(text, words):
    with pytest.raises(exception.InvalidXML) as info:
        domain.list_interfaces(text)
    assert words in str(info.value)


# --- editing -----------------------------------------------------------------

def test_add_interface_after_the_last_one():
    iface = CONVERTER.build(_bridge(MAC4))
    out = domain.add_interface(DOMAIN, iface)
    assert _others(out) == _others(DOMAIN)
    assert _order(out) == [
        ('disk', None), ('controller', None), ('interface', MAC1),
        ('hostdev', None), ('interface', MAC2), ('interface', MAC3),
        ('interface', MAC4), ('serial', None)]
    assert domain.get_interface(out, MAC4) == iface
    for mac in (MAC1, MAC2, MAC3):
        assert domain.get_interface(out, mac) == \
            domain.get_interface(DOMAIN, mac)
    _assert_prefixes_kept(out)
    # indented like its neighbours
    assert "\n    <interface type='bridge'>\n      <mac address='%s'/>" % \
        MAC4 in out


def test_add_to_a_domain_without_interfaces_or_devices():
    iface = CONVERTER.build(_bridge(MAC4))
    bare = domain.new_domain_xml('bare', [])
    out = domain.add_interface(bare, iface)
    assert list(domain.list_interfaces(out)) == [MAC4]
    no_devices = "<domain type='kvm'><name>x</name></domain>"
    out = domain.add_interface(no_devices, iface)
    assert list(domain.list_interfaces(out)) == [MAC4]
    only_disk = ("<domain type='kvm'><name>x</name><devices><disk/>"
                 "</devices></domain>")
    out = domain.add_interface(only_disk, iface)
    assert _order(out) == [('disk', None), ('interface', MAC4)]


def test_add_existing_mac_is_refused():
    with pytest.raises(exception.InterfaceExists):
        domain.add_interface(DOMAIN, CONVERTER.build(_bridge(MAC2)))


def test_replace_keeps_address_alias_and_position():
    new = CONVERTER.build(_bridge(MAC1, bridge='br-x', tap='tap-x'))
    out = domain.replace_interface(DOMAIN, new)
    assert _others(out) == _others(DOMAIN)
    assert _order(out) == _order(DOMAIN)
    got = domain.get_interface(out, MAC1)
    old = domain.get_interface(DOMAIN, MAC1)
    assert got.source_bridge == 'br-x'
    assert got.guest_address == old.guest_address
    assert got.alias == 'ua-net0'
    for mac in (MAC2, MAC3):
        assert domain.get_interface(out, mac) == \
            domain.get_interface(DOMAIN, mac)
    _assert_prefixes_kept(out)
    # the caller's object is not modified
    assert new.guest_address is None and new.alias is None


def test_replace_can_drop_address():
    new = CONVERTER.build(_bridge(MAC1))
    out = domain.replace_interface(DOMAIN, new, keep_guest_address=False)
    got = domain.get_interface(out, MAC1)
    assert got.guest_address is None and got.alias is None


def test_replace_unknown_mac():
    with pytest.raises(exception.InterfaceNotFound):
        domain.replace_interface(DOMAIN, CONVERTER.build(_bridge(MAC4)))


def test_remove_interface():
    out = domain.remove_interface(DOMAIN, MAC2)
    assert _others(out) == _others(DOMAIN)
    assert list(domain.list_interfaces(out)) == [MAC1, MAC3]
    _assert_prefixes_kept(out)
    with pytest.raises(exception.InterfaceNotFound):
        domain.remove_interface(out, MAC2)


def test_remove_last_device_keeps_closing_indentation():
    text = domain.new_domain_xml('x', [CONVERTER.build(_bridge(MAC1))])
    out = domain.remove_interface(text, MAC1)
    assert '<devices/>' in out or '<devices>\n  </devices>' in out


# --- link state --------------------------------------------------------------

def _links(text, mac):
    root = ET.fromstring(text)
    for iface in root.find('devices').findall('interface'):
        if iface.find('mac').get('address') == mac:
            return [link.get('state') for link in iface.findall('link')]
    raise AssertionError(mac)


def test_link_state_replaces_the_existing_link():
    out = domain.set_link_state(DOMAIN, MAC1, False)
    assert _links(out, MAC1) == ['down']
    assert _others(out) == _others(DOMAIN)
    # only the link changed
    before = domain.get_interface(DOMAIN, MAC1)
    after = domain.get_interface(out, MAC1)
    before.link_state = 'down'
    assert after == before
    # idempotent, never a second element
    again = domain.set_link_state(out, MAC1, False)
    assert _links(again, MAC1) == ['down']
    assert again == out


def test_link_state_collapses_duplicate_links():
    assert _links(DOMAIN, MAC2) == ['down', 'up']
    out = domain.set_link_state(DOMAIN, MAC2, True)
    assert _links(out, MAC2) == ['up']


def test_link_state_added_when_missing():
    assert _links(DOMAIN, MAC3) == []
    out = domain.set_link_state(DOMAIN, MAC3, False)
    assert _links(out, MAC3) == ['down']
    assert domain.get_interface(out, MAC3).alias == 'net2'
    _assert_prefixes_kept(out)


def test_link_state_errors():
    with pytest.raises(exception.InterfaceNotFound):
        domain.set_link_state(DOMAIN, MAC4, True)
    with pytest.raises(exception.InvalidField):
        domain.set_link_state(DOMAIN, MAC1, 'down')
    hostdev = domain.add_interface(DOMAIN, CONVERTER.build(
        ep.HostdevEndpoint(port_id=PORT, network='red', mac=MAC4,
                           pci_address='0000:03:10.2')))
    with pytest.raises(exception.LiveUpdateRefused):
        domain.set_link_state(hostdev, MAC4, False)
    with pytest.raises(exception.LiveUpdateRefused):
        domain.link_state_device_xml(hostdev, MAC4, False)


def test_link_state_device_xml():
    text = domain.link_state_device_xml(DOMAIN, MAC2, True)
    parsed = config.InterfaceConfig.parse_str(text)
    expected = domain.get_interface(DOMAIN, MAC2)
    expected.link_state = 'up'
    assert parsed == expected
    assert text.count('<link ') == 1


# --- live source change ------------------------------------------------------

def test_source_update_device_xml_bridge():
    text = domain.source_update_device_xml(
        DOMAIN, _bridge(MAC1, bridge='br-blue', tap='tap-old'))
    parsed = config.InterfaceConfig.parse_str(text)
    assert parsed.source_bridge == 'br-blue'
    old = domain.get_interface(DOMAIN, MAC1)
    assert (parsed.guest_address, parsed.alias, parsed.link_state,
            parsed.model) == (old.guest_address, old.alias, old.link_state,
                              old.model)
    assert parsed.extra_children[0].tag == 'boot'


def test_source_update_device_xml_network_drops_stale_port():
    text = domain.source_update_device_xml(DOMAIN, ep.NetworkEndpoint(
        port_id=PORT, network='red', mac=MAC3, source_network='other'))
    assert 'portid' not in text and 'virbr0' not in text
    assert "<source network='other'/>" in text


@pytest.mark.parametrize('endpoint', [
    ep.DirectEndpoint(port_id=PORT, network='red', mac=MAC1,
                      source_dev='eth0', mode='vepa'),
    ep.NetworkEndpoint(port_id=PORT, network='red', mac=MAC1,
                       source_network='default'),
    ep.BridgeEndpoint(port_id=PORT, network='red', mac=MAC2, bridge='b',
                      tap='vpd-tap2'),
])
def test_source_update_refused(endpoint):
    with pytest.raises(exception.LiveUpdateRefused) as info:
        domain.source_update_device_xml(DOMAIN, endpoint)
    assert 'detach and attach' in str(info.value)


# --- migration ---------------------------------------------------------------

def _dest():
    return {
        MAC1: _bridge(MAC1, bridge='br-dst', tap='tap-dst', mtu=1450,
                      virtualport=ep.VirtualPort(
                          type='openvswitch',
                          interface_id=samples.IFACE_ID)),
        MAC2: ep.EthernetEndpoint(port_id=PORT, network='red', mac=MAC2,
                                  tap='vpd-dst2'),
        MAC3.upper(): ep.NetworkEndpoint(port_id=PORT, network='red',
                                         mac=MAC3, source_network='dstnet',
                                         portgroup='pg'),
    }


def test_migration_xml():
    out = domain.migration_xml(DOMAIN, _dest())
    assert _others(out) == _others(DOMAIN)
    assert _order(out) == _order(DOMAIN)
    _assert_prefixes_kept(out)
    before = domain.list_interfaces(DOMAIN)
    after = domain.list_interfaces(out)
    for mac in (MAC1, MAC2, MAC3):
        for field in ('mac', 'model', 'guest_address', 'alias',
                      'link_state'):
            assert getattr(after[mac], field) == \
                getattr(before[mac], field), (mac, field)
    assert (after[MAC1].source_bridge, after[MAC1].target_dev,
            after[MAC1].mtu) == ('br-dst', 'tap-dst', 1450)
    assert after[MAC1].virtualport is not None
    assert after[MAC1].extra_children[0].tag == 'boot'
    assert (after[MAC2].target_dev, after[MAC2].target_managed) == (
        'vpd-dst2', False)
    assert (after[MAC3].source_network, after[MAC3].source_portgroup,
            after[MAC3].source_bridge, after[MAC3].target_dev) == (
        'dstnet', 'pg', None, None)
    assert 'portid' not in out
    # endpoint -> interface -> endpoint on the destination
    for mac, endpoint in _dest().items():
        assert vif.endpoint_from_interface(
            after[mac.lower()], PORT, 'red') == endpoint


def test_migration_xml_through_the_adapter():
    from vif_plug_dyn.virt.libvirt import adapter
    assert adapter.LibvirtAdapter().migration_xml(DOMAIN, _dest()) == \
        domain.migration_xml(DOMAIN, _dest())


def test_migration_missing_endpoint_names_every_mac():
    dest = _dest()
    del dest[MAC1]
    del dest[MAC3.upper()]
    with pytest.raises(exception.MigrationEndpointMissing) as info:
        domain.migration_xml(DOMAIN, dest)
    assert MAC1 in str(info.value) and MAC3 in str(info.value)
    assert MAC2 not in str(info.value)
    assert 'guest-1' in str(info.value)


def test_migration_extra_endpoint():
    dest = _dest()
    dest[MAC4] = _bridge(MAC4)
    with pytest.raises(exception.InterfaceNotFound) as info:
        domain.migration_xml(DOMAIN, dest)
    assert MAC4 in str(info.value)


def test_migration_key_must_be_the_endpoint_mac():
    dest = _dest()
    dest[MAC1] = _bridge(MAC4)
    with pytest.raises(exception.InvalidField):
        domain.migration_xml(DOMAIN, dest)
    with pytest.raises(exception.InvalidField):
        domain.migration_xml(DOMAIN, {'nonsense': _bridge(MAC1)})
    with pytest.raises(exception.InvalidField):
        domain.migration_xml(DOMAIN, {MAC1: 'br0'})


def test_migration_cannot_swap_vf_and_emulated_nic():
    dest = _dest()
    dest[MAC1] = ep.HostdevEndpoint(port_id=PORT, network='red', mac=MAC1,
                                    pci_address='0000:03:10.2')
    with pytest.raises(exception.MigrationNotPossible) as info:
        domain.migration_xml(DOMAIN, dest)
    assert 'bridge' in str(info.value) and 'hostdev' in str(info.value)


def test_migration_of_hostdev_to_another_vf():
    src = domain.new_domain_xml('vf', [CONVERTER.build(ep.HostdevEndpoint(
        port_id=PORT, network='red', mac=MAC1, pci_address='0000:03:10.2',
        vlan=42))])
    out = domain.migration_xml(src, {MAC1: ep.HostdevEndpoint(
        port_id=PORT, network='red', mac=MAC1, pci_address='0000:81:00.3')})
    iface = domain.get_interface(out, MAC1)
    assert iface.source_address is not None
    assert iface.source_address.pci() == '0000:81:00.3'
    assert iface.vlan is None


def test_new_domain_xml_errors():
    with pytest.raises(exception.InvalidField):
        domain.new_domain_xml('x', [], domain_type='xen')
    with pytest.raises(exception.InvalidField):
        domain.new_domain_xml('x', [], uuid='nope')
    out = domain.new_domain_xml('x', [], uuid=samples.INSTANCE_ID)
    assert samples.INSTANCE_ID in out
