"""The openvswitch driver against a real, private Open vSwitch (userspace
netdev datapath) in a private namespace."""

import uuid

import pytest

from vif_plug_dyn import ports
from vif_plug_dyn.tests.functional import fixtures
from vif_plug_dyn.tests.functional.harness import ovs as ovs_harness
from vif_plug_dyn.tests.functional.harness.netns import NetNamespace

NETWORKS = {
    'green': "<network type='openvswitch'><name>green</name>"
             "<bridge name='br-green'/></network>",
    'tagged': "<network type='openvswitch'><name>tagged</name>"
              "<bridge name='br-green'/><vlan><tag id='42'/></vlan>"
              "</network>",
    'red': "<network type='bridge'><name>red</name>"
           "<bridge name='br-red'/></network>",
}


@pytest.fixture(scope='module')
def switch():
    missing = ovs_harness.missing_binaries()
    if missing:
        pytest.skip('Open vSwitch is not installed: %s' % ', '.join(missing))
    with fixtures.private_host('drvovs') as ns:
        with ovs_harness.OpenVSwitch(ns.name) as ovs:
            yield ns, ovs


@pytest.fixture
def manager(switch, tmp_path):
    ns, ovs = switch
    with fixtures.managed(tmp_path, ns.name, NETWORKS,
                          ovsdb_socket=ovs.db_sock,
                          ovs_datapath_type='netdev',
                          ovs_apply_wait=10.0) as mgr:
        yield mgr


def _port(network='green', n=1):
    return ports.Port(port_id=str(uuid.uuid4()),
                      mac='52:54:00:40:00:%02x' % n, network=network,
                      vm_uuid=str(uuid.uuid4()))


def _iface(ovs, name):
    return {
        'external_ids': ovs.vsctl('--columns=external_ids', 'list',
                                  'Interface', name),
        'ofport': int(ovs.vsctl('get', 'Interface', name, 'ofport')),
    }


def test_ports_appear_with_external_ids(switch, manager):
    ns, ovs = switch
    port = _port()
    endpoint = manager.request_endpoint(port, ['ethernet'])
    assert ovs.vsctl('list-ports', 'br-green').split() == [endpoint.tap]
    ids = ovs.vsctl('get', 'Interface', endpoint.tap, 'external_ids')
    assert 'iface-id="%s"' % port.port_id in ids
    assert 'attached-mac="%s"' % port.mac in ids
    assert 'vm-uuid="%s"' % port.vm_uuid in ids
    assert ovs.vsctl('get', 'Bridge', 'br-green',
                     'datapath_type').strip() == 'netdev'
    manager.disconnect(port.port_id)
    assert ovs.vsctl('list-ports', 'br-green').split() == []
    assert endpoint.tap in fixtures.links(ns)
    manager.connect(port.port_id)
    assert ovs.vsctl('list-ports', 'br-green').split() == [endpoint.tap]
    ids = ovs.vsctl('get', 'Interface', endpoint.tap, 'external_ids')
    assert 'vm-uuid="%s"' % port.vm_uuid in ids
    manager.release_endpoint(port.port_id)
    assert endpoint.tap not in fixtures.links(ns)
    # The library made br-green; with its last port it is gone.
    assert 'br-green' not in ovs.vsctl('list-br').split()


def test_virtualport_endpoint_leaves_the_port_to_the_hypervisor(switch,
                                                                manager):
    ns, ovs = switch
    port = _port()
    endpoint = manager.request_endpoint(port, ['bridge'])
    assert endpoint.virtualport.type == 'openvswitch'
    assert endpoint.virtualport.interface_id == port.port_id
    assert endpoint.bridge == 'br-green'
    assert ovs.vsctl('list-ports', 'br-green').split() == []
    assert port.tap_name not in fixtures.links(ns)


def test_vlan_tag_and_batch(switch, manager):
    ns, ovs = switch
    batch = [_port('tagged', n) for n in range(50)]
    made = manager.request_endpoints(batch, ['ethernet'])
    listed = ovs.vsctl('list-ports', 'br-green').split()
    assert sorted(listed) == sorted(e.tap for e in made)
    assert ovs.vsctl('get', 'Port', made[7].tap, 'tag').strip() == '42'
    manager.release_endpoints([p.port_id for p in batch])
    assert 'br-green' not in ovs.vsctl('list-br').split()
    assert not [n for n in fixtures.links(ns) if n.startswith('vpd')]


def test_traffic_and_a_move_from_a_linux_bridge(switch, manager):
    """A stand-in guest on the tap is reached through the userspace
    datapath, after its cable moved from a Linux bridge to OVS."""
    ns, ovs = switch
    port = _port('red')
    endpoint = manager.request_endpoint(port, ['ethernet'])
    assert fixtures.master_of(ns, endpoint.tap) == 'br-red'
    manager.connect(port.port_id, 'green')
    assert fixtures.master_of(ns, endpoint.tap) is None
    with NetNamespace('drvovs-far') as far:
        ns.run(['ip', 'link', 'add', 'ovsup', 'type', 'veth', 'peer',
                'name', 'ovsfar', 'netns', far.name])
        ns.run(['ip', 'link', 'set', 'ovsup', 'up'])
        ovs.vsctl('add-port', 'br-green', 'ovsup')
        far.run(['ip', 'link', 'set', 'ovsfar', 'up'])
        far.run(['ip', 'addr', 'add', '203.0.113.1/24', 'dev', 'ovsfar'])
        try:
            with fixtures.tap_guest(ns, endpoint.tap, port.mac,
                                    '203.0.113.10'):
                assert fixtures.ping(far, '203.0.113.10', count=3)
                manager.disconnect(port.port_id)
                assert not fixtures.ping(far, '203.0.113.10', count=1)
        finally:
            ovs.vsctl('--if-exists', 'del-port', 'br-green', 'ovsup')
            ns.run(['ip', 'link', 'del', 'ovsup'], check=False)


def test_rollback_when_the_database_refuses(switch, manager, monkeypatch):
    from vif_plug_dyn import ovsdb

    def refuse(*args, **kwargs):
        raise ovsdb.OvsdbError('constraint violation', 'injected')
    ns, ovs = switch
    before = set(fixtures.links(ns))
    monkeypatch.setattr(ovsdb.OvsdbClient, 'add_ports', refuse)
    with pytest.raises(ovsdb.OvsdbError, match='injected'):
        manager.request_endpoints([_port(n=n) for n in range(3)],
                                  ['ethernet'])
    assert set(fixtures.links(ns)) == before
    assert manager.ledger.list_ports() == []
    assert manager.ledger.devices() == []
