"""Dependency order of host interface devices."""

import itertools

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn.hostif import model
from vif_plug_dyn.hostif import order

H = model.HostInterface


def eth(name):
    return H(kind='ethernet', name=name)


def vlan(parent, tag, name=None):
    return H(kind='vlan', name=name, parent=parent, tag=tag)


def bond(name, *slaves):
    return H(kind='bond', name=name, members=tuple(eth(s) for s in slaves))


def bridge(name, *members):
    return H(kind='bridge', name=name, members=members)


def test_nested_tree_members_first_stop_reversed():
    br = bridge('br0', eth('eth1'), vlan('eth9', 7), bond('bond0', 'eth2',
                                                          'eth3'))
    result = order.dependency_order([br], present=['eth9'])
    assert result.names() == ['eth1', 'eth2', 'eth3',
                              'bond0', 'eth9.7', 'br0']
    assert [d.name for d in result.stop] == list(reversed(result.names()))


def test_vlan_on_another_definitions_bond():
    defs = [vlan('bond0', 10), bond('bond0', 'eth1', 'eth2'), eth('eth0')]
    names = order.dependency_order(defs).names()
    assert names.index('bond0') < names.index('bond0.10')
    assert names.index('eth1') < names.index('bond0')
    assert names.index('eth2') < names.index('bond0')
    assert names == ['eth0', 'eth1', 'eth2', 'bond0', 'bond0.10']


def test_vlan_on_vlan_on_bridge():
    defs = [vlan('br0.5', 6, name='qinq'), vlan('br0', 5),
            bridge('br0', eth('eth1'))]
    assert order.dependency_order(defs).names() == ['eth1', 'br0', 'br0.5',
                                                    'qinq']


def test_order_does_not_depend_on_input_order():
    defs = [vlan('bond0', 10), bond('bond0', 'eth1', 'eth2'),
            bridge('br1', vlan('bond0', 20)), eth('eth0')]
    results = {tuple(order.dependency_order(p).names())
               for p in itertools.permutations(defs)}
    assert len(results) == 1


def test_missing_parent_is_an_error():
    with pytest.raises(exception.HostInterfaceDependencyMissing) as info:
        order.dependency_order([vlan('eth0', 42)])
    assert info.value.kwargs == {'name': 'eth0.42',
                                 'definition': 'eth0.42', 'needs': 'eth0'}


def test_missing_nested_parent_names_its_definition():
    with pytest.raises(exception.HostInterfaceDependencyMissing) as info:
        order.dependency_order([bridge('br0', vlan('eth0', 42))])
    assert info.value.kwargs['definition'] == 'br0'
    assert info.value.kwargs['needs'] == 'eth0'


def test_present_device_satisfies_dependency():
    result = order.dependency_order([vlan('eth0', 42)], present=['eth0'])
    assert result.names() == ['eth0.42']


def test_missing_ok():
    assert order.dependency_order([vlan('eth0', 42)],
                                  missing_ok=True).names() == ['eth0.42']


def test_two_vlans_on_each_other_are_a_cycle():
    defs = [vlan('b', 1, name='a'), vlan('a', 2, name='b')]
    with pytest.raises(exception.HostInterfaceCycle) as info:
        order.dependency_order(defs)
    assert info.value.kwargs['cycle'] == 'a -> b -> a'


def test_cycle_through_a_bridge_member():
    # br0 takes a VLAN that sits on br0 itself.
    with pytest.raises(exception.HostInterfaceCycle) as info:
        order.dependency_order([bridge('br0', vlan('br0', 5))])
    assert info.value.kwargs['cycle'] == 'br0 -> br0.5 -> br0'


def test_three_cycle_reported_even_when_missing_ok():
    defs = [vlan('y', 1, name='x'), vlan('z', 1, name='y'),
            vlan('x', 1, name='z'), vlan('x', 9, name='w')]
    with pytest.raises(exception.HostInterfaceCycle) as info:
        order.dependency_order(defs, missing_ok=True)
    assert info.value.kwargs['cycle'] == 'x -> y -> z -> x'


def test_one_device_in_two_definitions():
    with pytest.raises(exception.InvalidHostInterface) as info:
        order.dependency_order([bond('bond0', 'eth1'),
                                bridge('br0', eth('eth2'), eth('eth1'))])
    assert info.value.kwargs['element'] == \
        '/interface/bridge/interface[2]/@name'
    assert 'bond0' in str(info.value)


def test_shorthands():
    defs = [bond('bond0', 'eth1')]
    assert [d.name for d in order.apply_order(defs)] == ['eth1', 'bond0']
    assert [d.name for d in order.stop_order(defs)] == ['bond0', 'eth1']


def test_devices_carry_what_a_live_backend_needs():
    result = order.dependency_order([bridge('br0', bond('bond0', 'eth1'))])
    by_name = {d.name: d for d in result.apply}
    assert by_name['eth1'].master == 'bond0' and not by_name['eth1'].create
    assert by_name['bond0'].master == 'br0' and by_name['bond0'].create
    assert by_name['bond0'].interface.members[0].name == 'eth1'
