"""Endpoint <-> interface mapping."""

import pytest

from vif_plug_dyn import endpoints as ep
from vif_plug_dyn import exception
from vif_plug_dyn.tests.unit.virt import samples
from vif_plug_dyn.virt import base
from vif_plug_dyn.virt.libvirt import config
from vif_plug_dyn.virt.libvirt import vif

CASES = samples.cases()
CONVERTER = vif.EndpointToInterface()
PORT = samples.PORT


@pytest.mark.parametrize('name,endpoint,options', CASES,
                         ids=samples.ids(CASES))
def test_endpoint_interface_endpoint(name, endpoint, options):
    iface = CONVERTER.build(endpoint, options)
    back = vif.endpoint_from_interface(iface, endpoint.port_id,
                                       endpoint.network)
    expected = endpoint
    if endpoint.type in (ep.DIRECT, ep.HOSTDEV):
        # Not written for these types (see vif.MTU_TYPES), so not read.
        expected = expected.replace(mtu=None)
    if endpoint.type == ep.HOSTDEV:
        expected = expected.replace(queues=None)
    assert back == expected


@pytest.mark.parametrize('name,endpoint,options', CASES,
                         ids=samples.ids(CASES))
def test_guest_options_are_applied(name, endpoint, options):
    iface = CONVERTER.build(endpoint, options)
    assert iface.mac == endpoint.mac
    assert iface.alias == options.alias
    if options.guest_address:
        assert iface.guest_address is not None
        assert iface.guest_address.pci() == options.guest_address
    else:
        assert iface.guest_address is None
    expected_link = None if options.link_up is None else (
        'up' if options.link_up else 'down')
    assert iface.link_state == expected_link
    if endpoint.type == ep.HOSTDEV:
        assert iface.model is None
        assert iface.managed is True
        assert iface.driver_queues is None and iface.mtu is None
    else:
        assert iface.model == (options.model or 'virtio')
        assert iface.driver_queues == endpoint.queues
        assert iface.managed is None


def test_type_specific_fields():
    cases = {c[0]: c[1] for c in CASES}
    bridge = CONVERTER.build(cases['bridge-ovs'])
    assert (bridge.type, bridge.source_bridge, bridge.target_dev,
            bridge.mtu) == ('bridge', 'br-int', 'tap-b', 1450)
    assert bridge.virtualport == config.VirtualPortConfig(
        type='openvswitch', interface_id=samples.IFACE_ID)
    direct = CONVERTER.build(cases['direct-passthrough-mtu-ignored'])
    assert (direct.type, direct.source_dev, direct.source_mode,
            direct.mtu) == ('direct', 'eth2', 'passthrough', None)
    hostdev = CONVERTER.build(cases['hostdev-vlan'])
    assert hostdev.source_address is not None
    assert hostdev.source_address.pci() == '0000:03:10.2'
    assert hostdev.vlan == config.VlanConfig(tags=[(42, None)])
    eth = CONVERTER.build(cases['ethernet'])
    assert (eth.type, eth.target_dev, eth.target_managed) == (
        'ethernet', 'vpd-tap0', False)
    net = CONVERTER.build(cases['network-portgroup'])
    assert (net.source_network, net.source_portgroup, net.mtu) == (
        'default', 'web', 1500)


def _hostdev():
    return ep.HostdevEndpoint(port_id=PORT, network='red',
                              mac='52:54:00:00:00:03',
                              pci_address='0000:03:10.2')


@pytest.mark.parametrize('options,field', [
    (base.NicOptions(model='virtio'), 'model'),
    (base.NicOptions(link_up=True), 'link_up'),
    (base.NicOptions(link_up=False), 'link_up'),
])
def test_hostdev_refuses_emulated_options(options, field):
    with pytest.raises(exception.InvalidField) as info:
        CONVERTER.build(_hostdev(), options)
    assert info.value.kwargs['field'] == field


def test_default_model_is_configurable():
    endpoint = ep.EthernetEndpoint(port_id=PORT, network='red',
                                   mac='52:54:00:00:00:04', tap='t0')
    assert vif.EndpointToInterface('e1000e').build(endpoint).model == \
        'e1000e'


class _Unknown(ep.Endpoint):
    TYPE = 'vdpa'


def test_unknown_endpoint_type():
    endpoint = _Unknown(port_id=PORT, network='red',
                        mac='52:54:00:00:00:04')
    with pytest.raises(exception.UnsupportedEndpointType) as info:
        CONVERTER.build(endpoint)
    assert 'vdpa' in str(info.value)


# --- apply: new host side, same guest side -----------------------------------

LIVE = """
<interface type='bridge'>
  <mac address='52:54:00:00:00:01'/>
  <source bridge='br-old'/>
  <target dev='vnet7' extra='host'/>
  <model type='e1000'/>
  <driver name='vhost' queues='4'/>
  <link state='down'/>
  <mtu size='1400'/>
  <boot order='1'/>
  <rom bar='off'/>
  <alias name='ua-keep'/>
  <address type='pci' domain='0x0000' bus='0x00' slot='0x07'
           function='0x0'/>
</interface>
"""


def test_apply_keeps_guest_side():
    old = config.InterfaceConfig.parse_str(LIVE)
    endpoint = ep.NetworkEndpoint(port_id=PORT, network='red',
                                  mac='52:54:00:00:00:01',
                                  source_network='blue')
    new = CONVERTER.apply(old, endpoint)
    assert new.type == 'network'
    assert new.source_network == 'blue'
    assert new.source_bridge is None
    assert new.target_dev is None
    assert 'target' not in new.child_extra_attrs
    # guest side
    assert new.model == 'e1000'
    assert new.link_state == 'down'
    assert new.alias == 'ua-keep'
    assert new.guest_address == old.guest_address
    assert new.driver_name == 'vhost'
    assert [c.tag for c in new.extra_children] == ['boot', 'rom']
    # kept when the endpoint does not say
    assert new.driver_queues == 4
    assert new.mtu == 1400
    # the old object is untouched
    assert old.source_bridge == 'br-old'
    assert old == config.InterfaceConfig.parse_str(LIVE)


def test_apply_endpoint_values_win():
    old = config.InterfaceConfig.parse_str(LIVE)
    endpoint = ep.BridgeEndpoint(port_id=PORT, network='red',
                                 mac='52:54:00:00:00:01', bridge='br-new',
                                 tap='tap9', mtu=9000, queues=2)
    new = CONVERTER.apply(old, endpoint)
    assert (new.source_bridge, new.target_dev, new.mtu,
            new.driver_queues) == ('br-new', 'tap9', 9000, 2)


def test_apply_to_direct_drops_mtu():
    old = config.InterfaceConfig.parse_str(LIVE)
    endpoint = ep.DirectEndpoint(port_id=PORT, network='red',
                                 mac='52:54:00:00:00:01', source_dev='eth0',
                                 mode='bridge')
    new = CONVERTER.apply(old, endpoint)
    assert new.mtu is None
    assert (new.source_dev, new.source_mode) == ('eth0', 'bridge')
    new.to_xml()


def test_apply_refuses_another_mac():
    old = config.InterfaceConfig.parse_str(LIVE)
    endpoint = ep.EthernetEndpoint(port_id=PORT, network='red',
                                   mac='52:54:00:00:00:02', tap='t')
    with pytest.raises(exception.InvalidField) as info:
        CONVERTER.apply(old, endpoint)
    assert info.value.kwargs['field'] == 'mac'


def test_apply_to_hostdev_clears_emulated_fields():
    old = config.InterfaceConfig.parse_str(LIVE)
    endpoint = _hostdev().replace(mac='52:54:00:00:00:01')
    new = CONVERTER.apply(old, endpoint)
    assert new.model is None and new.link_state is None
    assert new.driver_queues is None and new.mtu is None
    assert new.managed is True
    new.to_xml()


# --- reading endpoints back --------------------------------------------------

def test_endpoint_fields_of_live_bridge():
    fields = vif.endpoint_fields(config.InterfaceConfig.parse_str(LIVE))
    assert fields == {'type': 'bridge', 'mac': '52:54:00:00:00:01',
                      'mtu': 1400, 'queues': 4, 'tap': 'vnet7',
                      'bridge': 'br-old', 'virtualport': None}


def test_endpoint_fields_errors():
    no_tap = config.InterfaceConfig.parse_str(
        "<interface type='ethernet'><mac address='52:54:00:00:00:01'/>"
        "</interface>")
    with pytest.raises(exception.InvalidXML) as info:
        vif.endpoint_fields(no_tap)
    assert info.value.kwargs['element'] == 'interface/target'
    user = config.InterfaceConfig.parse_str(
        "<interface type='user'><mac address='52:54:00:00:00:01'/>"
        "</interface>")
    with pytest.raises(exception.OperationNotSupported):
        vif.endpoint_fields(user)
    untyped = config.InterfaceConfig.parse_str(
        "<interface type='direct'><mac address='52:54:00:00:00:01'/>"
        "<source dev='eth0'/><virtualport><parameters profileid='p'/>"
        "</virtualport></interface>")
    with pytest.raises(exception.InvalidField) as info:
        vif.endpoint_fields(untyped)
    assert info.value.kwargs['field'] == 'virtualport.type'
    partial = config.InterfaceConfig.parse_str(
        "<interface type='hostdev'><mac address='52:54:00:00:00:01'/>"
        "<source><address type='pci' bus='1'/></source></interface>")
    with pytest.raises(exception.InvalidXML):
        vif.endpoint_fields(partial)


def test_direct_mode_defaults_to_vepa_like_libvirt():
    iface = config.InterfaceConfig.parse_str(
        "<interface type='direct'><mac address='52:54:00:00:00:01'/>"
        "<source dev='eth0'/></interface>")
    assert vif.endpoint_fields(iface)['mode'] == 'vepa'


# --- NIC options -------------------------------------------------------------

@pytest.mark.parametrize('kwargs,field', [
    ({'model': 'pcnet-9000'}, 'model'),
    ({'link_up': 'yes'}, 'link_up'),
    ({'guest_address': '00:05.0'}, 'guest_address'),
    ({'alias': 'net0'}, 'alias'),
    ({'alias': 'ua-'}, 'alias'),
    ({'alias': 'ua-a b'}, 'alias'),
    ({'alias': 'ua-\u00e9'}, 'alias'),
    ({'queues': 4}, 'queues'),
])
def test_nic_option_errors(kwargs, field):
    with pytest.raises(exception.InvalidField) as info:
        base.NicOptions.from_kwargs(kwargs)
    assert info.value.kwargs['field'] == field


def test_nic_options_normalise_address():
    options = base.NicOptions(guest_address='0000:00:0A.1', alias='ua-x_1')
    assert options.guest_address == '0000:00:0a.1'
