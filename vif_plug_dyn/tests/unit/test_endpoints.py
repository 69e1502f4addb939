import json

import pytest

from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import objects
from vif_plug_dyn import ports

PORT_ID = '6f1c7c4e-8a9b-4c1d-9e2f-0123456789ab'
COMMON = dict(port_id=PORT_ID, network='red', mac='52:54:00:aa:bb:cc')


def all_endpoints():
    ovs = endpoints.VirtualPort(type='openvswitch', interface_id=PORT_ID)
    qbg = endpoints.VirtualPort(type='802.1Qbg', manager_id=12, type_id=1193,
                                type_id_version=2, instance_id=PORT_ID)
    qbh = endpoints.VirtualPort(type='802.1Qbh', profile_id='finance')
    return [
        endpoints.BridgeEndpoint(bridge='br0', tap='tap0', mtu=9000,
                                 queues=4, virtualport=ovs, **COMMON),
        endpoints.BridgeEndpoint(bridge='br0', tap='tap0', **COMMON),
        endpoints.DirectEndpoint(source_dev='eth1', mode='vepa',
                                 virtualport=qbg, **COMMON),
        endpoints.DirectEndpoint(source_dev='eth1', mode='passthrough',
                                 virtualport=qbh, **COMMON),
        endpoints.HostdevEndpoint(pci_address='0000:3b:10.1', vlan=42,
                                  **COMMON),
        endpoints.EthernetEndpoint(tap='vpd1', queues=2, **COMMON),
        endpoints.EthernetEndpoint(tap='tap6f1c7c4e-8a', borrowed=True,
                                   **COMMON),
        endpoints.NetworkEndpoint(source_network='default',
                                  portgroup='web', **COMMON),
    ]


@pytest.mark.parametrize('endpoint', all_endpoints(),
                         ids=lambda e: e.type)
def test_round_trip_through_json(endpoint):
    primitive = json.loads(json.dumps(endpoint.to_primitive()))
    assert primitive['vpd.version'] == type(endpoint).VERSION
    again = endpoints.from_primitive(primitive)
    assert again == endpoint
    assert type(again) is type(endpoint)


def test_types_are_distinct():
    assert sorted({e.type for e in all_endpoints()}) == sorted(
        endpoints.ENDPOINT_TYPES)
    assert set(endpoints.ENDPOINT_CLASSES) == set(endpoints.ENDPOINT_TYPES)


def test_immutable():
    endpoint = all_endpoints()[0]
    with pytest.raises(AttributeError):
        endpoint.tap = 'other'


def test_back_level_drops_newer_fields():
    endpoint = all_endpoints()[0]
    old = endpoint.to_primitive('1.0')
    assert old['vpd.version'] == '1.0'
    assert 'queues' not in old['vpd.data']
    # An old primitive still reads; the dropped field takes its default.
    again = endpoints.from_primitive(old)
    assert again.queues is None
    assert again.replace(queues=4) == endpoint


def test_reader_ignores_unknown_fields_of_newer_minor():
    primitive = all_endpoints()[5].to_primitive()
    primitive['vpd.version'] = '1.7'
    primitive['vpd.data']['from_the_future'] = 'x'
    assert endpoints.from_primitive(primitive) == all_endpoints()[5]


@pytest.mark.parametrize('version', ['2.0', '0.9'])
def test_other_major_refused(version):
    primitive = all_endpoints()[5].to_primitive()
    primitive['vpd.version'] = version
    with pytest.raises(exception.UnsupportedVersion, match=version):
        endpoints.from_primitive(primitive)


@pytest.mark.parametrize('target', ['2.0', '1.2', '0.1'])
def test_cannot_write_unknown_versions(target):
    with pytest.raises(exception.UnsupportedVersion):
        all_endpoints()[0].to_primitive(target)


@pytest.mark.parametrize('primitive,reason', [
    ('x', 'not a dict'),
    ({}, 'unknown object name'),
    ({'vpd.name': 'Nope', 'vpd.version': '1.0', 'vpd.data': {}},
     'unknown object name'),
    ({'vpd.name': 'VirtualPort', 'vpd.version': '1.0', 'vpd.data': {}},
     'unknown object name'),
    ({'vpd.name': 'EthernetEndpoint', 'vpd.version': 'one',
      'vpd.data': {}}, 'MAJOR.MINOR'),
    ({'vpd.name': 'EthernetEndpoint', 'vpd.version': '1.0',
      'vpd.data': []}, 'data must be a dict'),
    ({'vpd.name': 'EthernetEndpoint', 'vpd.version': '1.0',
      'vpd.data': {'port_id': PORT_ID}}, 'missing'),
])
def test_malformed_primitives(primitive, reason):
    with pytest.raises(exception.InvalidPrimitive, match=reason):
        endpoints.from_primitive(primitive)


def test_bad_field_in_primitive_is_invalid_field():
    primitive = all_endpoints()[5].to_primitive()
    primitive['vpd.data']['tap'] = 'bad/name'
    with pytest.raises(exception.InvalidField, match='field tap'):
        endpoints.from_primitive(primitive)


@pytest.mark.parametrize('cls,kwargs,field', [
    (endpoints.BridgeEndpoint, dict(bridge='br/0', tap='t'), 'bridge'),
    (endpoints.BridgeEndpoint, dict(bridge='br0', tap='t' * 16), 'tap'),
    (endpoints.DirectEndpoint, dict(source_dev='eth1', mode='nope'), 'mode'),
    (endpoints.DirectEndpoint, dict(source_dev='', mode='vepa'),
     'source_dev'),
    (endpoints.HostdevEndpoint, dict(pci_address='00:01.0'), 'pci_address'),
    (endpoints.HostdevEndpoint, dict(pci_address='0000:00:01.0', vlan=0),
     'vlan'),
    (endpoints.EthernetEndpoint, dict(tap='x', mtu=10), 'mtu'),
    (endpoints.EthernetEndpoint, dict(tap='x', queues=0), 'queues'),
    (endpoints.NetworkEndpoint, dict(source_network='a/b'),
     'source_network'),
])
def test_construction_validates(cls, kwargs, field):
    with pytest.raises(exception.InvalidField) as err:
        cls(**COMMON, **kwargs)
    assert err.value.kwargs['field'] == field


@pytest.mark.parametrize('field,value', [
    ('port_id', 'x'), ('mac', '01:00:00:00:00:00'), ('network', 'a b')])
def test_common_fields_validated(field, value):
    kwargs = dict(COMMON, **{field: value})
    with pytest.raises(exception.InvalidField) as err:
        endpoints.EthernetEndpoint(tap='t', **kwargs)
    assert err.value.kwargs['field'] == field


def test_virtualport_rules():
    with pytest.raises(exception.InvalidField,
                       match='virtualport.interface_id'):
        endpoints.VirtualPort(type='openvswitch')
    with pytest.raises(exception.InvalidField, match='not a parameter'):
        endpoints.VirtualPort(type='802.1Qbh', profile_id='p', manager_id=1)
    with pytest.raises(exception.InvalidField, match='virtualport.type'):
        endpoints.VirtualPort(type='midonet')
    with pytest.raises(exception.InvalidField, match='manager_id'):
        endpoints.VirtualPort(type='802.1Qbg', manager_id=256, type_id=1,
                              type_id_version=1)
    qbh = endpoints.VirtualPort(type='802.1Qbh', profile_id='p')
    with pytest.raises(exception.InvalidField, match='virtualport.type'):
        endpoints.BridgeEndpoint(bridge='b', tap='t', virtualport=qbh,
                                 **COMMON)
    ovs = endpoints.VirtualPort(type='openvswitch', interface_id=PORT_ID)
    with pytest.raises(exception.InvalidField, match='virtualport.type'):
        endpoints.DirectEndpoint(source_dev='e', mode='vepa',
                                 virtualport=ovs, **COMMON)


def test_endpoint_types_list():
    assert endpoints.endpoint_types(['bridge', 'direct']) == (
        'bridge', 'direct')
    for bad in ['bridge', [], ['bridge', 'bridge'], ['tunnel']]:
        with pytest.raises(exception.InvalidField):
            endpoints.endpoint_types(bad)


def test_port_and_request_round_trip():
    port = ports.Port(port_id=PORT_ID, mac='52:54:00:00:00:09',
                      network='red', mtu=1400, vlan=5, vm_uuid=PORT_ID)
    request = ports.EndpointRequest(port=port,
                                    accepted_types=('ethernet', 'bridge'),
                                    options={'queues': '2'})
    again = objects.VersionedObject.from_primitive(
        json.loads(json.dumps(request.to_primitive())))
    assert again == request
    assert hash(again) == hash(request)
    assert port.tap_name == 'vpd6f1c7c4e8a9'
    assert len(port.tap_name) <= 15
    assert port.on_network('blue').network == 'blue'


def test_request_validation():
    port = ports.Port(port_id=PORT_ID, mac='52:54:00:00:00:09',
                      network='red')
    with pytest.raises(exception.InvalidField, match='accepted_types'):
        ports.EndpointRequest(port=port, accepted_types=())
    with pytest.raises(exception.InvalidField, match='options'):
        ports.EndpointRequest(port=port, options={'a': 'b\n'})
    with pytest.raises(exception.InvalidField, match='field port'):
        ports.EndpointRequest(port='x')


def test_borrowed_is_dropped_for_older_readers():
    endpoint = endpoints.EthernetEndpoint(tap='tap6f1c7c4e-8a',
                                          borrowed=True, **COMMON)
    old = endpoint.to_primitive('1.1')
    assert 'borrowed' not in old['vpd.data']
    assert endpoints.from_primitive(old).borrowed is False
    with pytest.raises(exception.InvalidField, match='borrowed'):
        endpoints.EthernetEndpoint(tap='tap0', borrowed='yes', **COMMON)
