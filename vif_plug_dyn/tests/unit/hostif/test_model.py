"""The host interface model, built through the Python API."""

import json

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn.hostif import addressing
from vif_plug_dyn.hostif import model

H = model.HostInterface


def eth(name, **kw):
    return H(kind='ethernet', name=name, **kw)


def field_of(call):
    with pytest.raises(exception.InvalidField) as info:
        call()
    return info.value.kwargs['field']


def test_default_uuid_is_stable_and_name_based():
    a = eth('eth0')
    assert a.uuid == model.default_uuid('eth0') == eth('eth0').uuid
    assert a.uuid != eth('eth1').uuid


def test_explicit_uuid_is_normalised():
    a = eth('eth0', uuid='6F1C1D2E-8F47-4B7E-9A39-2F7A8F6F0C11')
    assert a.uuid == '6f1c1d2e-8f47-4b7e-9a39-2f7a8f6f0c11'


def test_vlan_name_is_derived_from_parent_and_tag():
    vlan = H(kind='vlan', tag=42, parent='eth0')
    assert vlan.name == 'eth0.42'
    assert vlan.requires() == ('eth0',)


def test_vlan_derived_name_too_long():
    assert field_of(lambda: H(kind='vlan', tag=4000,
                              parent='enp0s31f6abcd')) == '@name'


def test_mac_is_lower_cased():
    assert eth('eth0', mac='52:54:00:AB:CD:EF').mac == '52:54:00:ab:cd:ef'


def test_delay_is_a_float():
    bridge = H(kind='bridge', name='br0', delay=2)
    assert bridge.delay == 2.0 and isinstance(bridge.delay, float)


@pytest.mark.parametrize('kwargs, field', [
    ({'kind': 'tunnel', 'name': 'x'}, '@type'),
    ({'kind': 'ethernet'}, '@name'),
    ({'kind': 'ethernet', 'name': 'a/b'}, '@name'),
    ({'kind': 'ethernet', 'name': 'e', 'start_mode': 'boot'},
     'start/@mode'),
    ({'kind': 'ethernet', 'name': 'e', 'mtu': 67}, 'mtu/@size'),
    ({'kind': 'ethernet', 'name': 'e', 'mac': '01:00:5e:00:00:01'},
     'mac/@address'),
    ({'kind': 'bridge', 'name': 'b', 'mac': '52:54:00:00:00:01'}, 'mac'),
    ({'kind': 'ethernet', 'name': 'e', 'tag': 3}, 'vlan/@tag'),
    ({'kind': 'ethernet', 'name': 'e', 'stp': True}, 'bridge/@stp'),
    ({'kind': 'bridge', 'name': 'b', 'delay': 31}, 'bridge/@delay'),
    ({'kind': 'bridge', 'name': 'b', 'delay': True}, 'bridge/@delay'),
    ({'kind': 'bond', 'name': 'b'}, 'bond/interface'),
    ({'kind': 'bond', 'name': 'b', 'bond_mode': 'fast',
      'members': (H(kind='ethernet', name='e'),)}, 'bond/@mode'),
    ({'kind': 'vlan', 'name': 'v', 'tag': 0, 'parent': 'e'}, 'vlan/@tag'),
    ({'kind': 'vlan', 'name': 'v', 'tag': 5}, 'vlan/interface/@name'),
    ({'kind': 'vlan', 'name': 'v', 'tag': 5, 'parent': 'v'},
     'vlan/interface/@name'),
    ({'kind': 'ethernet', 'name': 'e', 'uuid': 'nope'},
     "processing-instruction('vif-plug-dyn')"),
    ({'kind': 'ethernet', 'name': 'e',
      'ipv4': addressing.Protocol(family='ipv6')},
     "protocol[@family='ipv4']"),
])
def test_invalid_fields(kwargs, field):
    assert field_of(lambda: H(**kwargs)) == field


def test_bond_slaves_must_be_ethernet():
    vlan = H(kind='vlan', tag=5, parent='eth0')
    assert field_of(lambda: H(
        kind='bond', name='bond0',
        members=(eth('eth1'), vlan))) == 'bond/interface[2]/@type'


def test_bridge_takes_no_bridge():
    inner = H(kind='bridge', name='br1')
    assert field_of(lambda: H(kind='bridge', name='br0',
                              members=(inner,))) == \
        'bridge/interface[1]/@type'


@pytest.mark.parametrize('member_kw, sub', [
    ({'start_mode': 'onboot'}, 'start'),
    ({'mtu': 1500}, 'mtu'),
    ({'ipv4': addressing.Protocol(family='ipv4', dhcp=True)}, 'protocol'),
])
def test_members_are_bare(member_kw, sub):
    member = eth('eth1', **member_kw)
    assert field_of(lambda: H(kind='bridge', name='br0',
                              members=(member,))) == \
        'bridge/interface[1]/' + sub


def test_names_unique_in_a_tree():
    bond = H(kind='bond', name='bond0', members=(eth('eth1'),))
    assert field_of(lambda: H(kind='bridge', name='br0',
                              members=(eth('eth1'), bond))) == \
        'bridge/interface[2]/bond/interface[1]/@name'


def test_miimon_and_arpmon_exclusive():
    arp = model.ArpMon(interval=100, target='192.0.2.1')
    assert field_of(lambda: H(
        kind='bond', name='b', members=(eth('e'),),
        miimon=model.MiiMon(freq=100), arpmon=arp)) == 'bond/arpmon'


def test_arpmon_refused_in_8023ad():
    arp = model.ArpMon(interval=100, target='192.0.2.1')
    assert field_of(lambda: H(
        kind='bond', name='b', bond_mode='802.3ad', members=(eth('e'),),
        arpmon=arp)) == 'bond/arpmon'


@pytest.mark.parametrize('kwargs, field', [
    ({'interval': -1, 'target': '192.0.2.1'}, '@interval'),
    ({'interval': 1, 'target': '2001:db8::1'}, '@target'),
    ({'interval': 1, 'target': 'x'}, '@target'),
    ({'interval': 1, 'target': '192.0.2.1', 'validate': 'some'},
     '@validate'),
])
def test_arpmon_fields(kwargs, field):
    assert field_of(lambda: model.ArpMon(**kwargs)) == field


def test_miimon_carrier():
    assert field_of(lambda: model.MiiMon(freq=1, carrier='x')) == \
        '@carrier'


def test_primary_is_first_slave_of_active_backup():
    bond = H(kind='bond', name='b', bond_mode='active-backup',
             members=(eth('e2'), eth('e1')))
    assert bond.primary == 'e2'
    assert H(kind='bond', name='b', members=(eth('e2'),)).primary is None


def test_devices_members_first_with_masters():
    bond = H(kind='bond', name='bond0', members=(eth('eth2'),))
    vlan = H(kind='vlan', tag=7, parent='eth9')
    bridge = H(kind='bridge', name='br0', start_mode='hotplug',
               members=(eth('eth1'), vlan, bond))
    devices = bridge.devices()
    assert [d.name for d in devices] == ['eth1', 'eth9.7', 'eth2', 'bond0',
                                         'br0']
    by_name = {d.name: d for d in devices}
    assert by_name['eth2'].master == 'bond0'
    assert by_name['eth2'].master_kind == 'bond'
    assert by_name['bond0'].master == 'br0'
    assert by_name['br0'].master is None
    assert by_name['eth2'].element == \
        '/interface/bridge/interface[3]/bond/interface[1]'
    assert {d.start_mode for d in devices} == {'hotplug'}
    assert {d.definition for d in devices} == {'br0'}
    assert [d.name for d in devices if d.create] == ['eth9.7', 'bond0',
                                                     'br0']
    assert by_name['br0'].requires == ('eth1', 'eth9.7', 'bond0')


def test_primitive_round_trip_is_json_safe():
    proto = addressing.Protocol(
        family='ipv4', addresses=(addressing.IPAddress(
            address='192.0.2.1', prefix=24),), gateway='192.0.2.254')
    bond = H(kind='bond', name='bond0', start_mode='onboot', ipv4=proto,
             miimon=model.MiiMon(freq=100), members=(eth('eth2'),))
    primitive = json.loads(json.dumps(bond.to_primitive()))
    assert H.from_primitive(primitive) == bond
    device = bond.devices()[0]
    assert model.Device.from_primitive(
        json.loads(json.dumps(device.to_primitive()))) == device
