import uuid

import pytest

from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import ledger
from vif_plug_dyn import manager as manager_mod
from vif_plug_dyn import ports
from vif_plug_dyn.drivers import noop
from vif_plug_dyn.tests.unit.conftest import make_port


def test_request_negotiates_first_acceptable_type(manager):
    port = make_port()
    endpoint = manager.request_endpoint(port, ['direct', 'ethernet',
                                               'bridge'])
    assert isinstance(endpoint, endpoints.EthernetEndpoint)
    assert endpoint.tap == port.tap_name
    record = manager.ledger.get_port(port.port_id)
    assert record.state == ledger.ACTIVE and record.cable == ledger.PLUGGED
    assert record.endpoint == endpoint


def test_negotiation_failure_names_both_sides(manager):
    with pytest.raises(exception.NoMatchingEndpointType) as err:
        manager.request_endpoint(make_port(), ['hostdev', 'network'])
    message = str(err.value)
    assert 'red' in message and 'hostdev, network' in message
    assert 'bridge, ethernet' in message
    assert manager.ledger.list_ports() == []


def test_request_is_idempotent(manager):
    port = make_port()
    first = manager.request_endpoint(port, ['bridge'])
    again = manager.request_endpoint(port, ['ethernet', 'bridge'])
    assert again == first
    assert len(manager.ledger.list_ports()) == 1


def test_request_conflicts(manager):
    port = make_port()
    manager.request_endpoint(port, ['bridge'])
    with pytest.raises(exception.PortConflict, match='connect'):
        manager.request_endpoint(port.on_network('blue'), ['ethernet'])
    with pytest.raises(exception.PortConflict, match='MAC'):
        manager.request_endpoint(ports.Port(port_id=port.port_id,
                                            mac='52:54:00:00:00:99',
                                            network='red'), ['bridge'])
    with pytest.raises(exception.PortConflict, match='type bridge'):
        manager.request_endpoint(port, ['ethernet'])


def test_unknown_network(manager):
    with pytest.raises(exception.NetworkNotFound, match='purple'):
        manager.request_endpoint(make_port(network='purple'))


def test_release_twice_is_noop(manager):
    port = make_port()
    manager.request_endpoint(port)
    manager.release_endpoint(port.port_id)
    manager.release_endpoint(port.port_id)
    assert manager.ledger.get_port(port.port_id) is None
    with pytest.raises(exception.PortNotFound):
        manager.get_endpoint(port.port_id)


class _Boom(Exception):
    pass


def test_driver_failure_leaves_no_record(manager, monkeypatch):
    def fail(*args, **kwargs):
        raise _Boom()
    monkeypatch.setattr(noop.NoopDriver, 'create_endpoints', fail)
    port = make_port()
    with pytest.raises(_Boom):
        manager.request_endpoint(port)
    assert manager.ledger.get_port(port.port_id) is None
    assert manager.ledger.allocations() == {}


def test_boot_unplugged_then_plug_move_unplug(manager):
    port = make_port()
    endpoint = manager.request_endpoint(port, ['ethernet'],
                                        connected=False)
    assert manager.ledger.get_port(port.port_id).cable == ledger.UNPLUGGED
    assert manager.connect(port.port_id) == endpoint
    assert manager.ledger.get_port(port.port_id).cable == ledger.PLUGGED
    moved = manager.connect(port.port_id, 'blue')
    assert moved.network == 'blue' and moved.tap == endpoint.tap
    record = manager.ledger.get_port(port.port_id)
    assert record.network == 'blue' and record.endpoint == moved
    assert manager.connect(port.port_id, 'blue') == moved
    manager.disconnect(port.port_id)
    manager.disconnect(port.port_id)
    assert manager.ledger.get_port(port.port_id).cable == ledger.UNPLUGGED
    with pytest.raises(exception.PortNotFound):
        manager.connect('6f1c7c4e-8a9b-4c1d-9e2f-0123456789ab')


def test_driver_without_cable(manager):
    port = make_port(network='nat')
    endpoint = manager.request_endpoint(port, ['network'])
    assert endpoint.source_network == 'default'
    with pytest.raises(exception.OperationNotSupported, match='disconnect'):
        manager.disconnect(port.port_id)


def test_plug_and_unplug(manager):
    port = make_port()
    endpoint = manager.plug(port)
    assert endpoint.type == 'ethernet'
    assert manager.plug(port.on_network('blue')).network == 'blue'
    manager.unplug(port)
    manager.unplug(port.port_id)
    assert manager.ledger.list_ports() == []


def test_missing_driver(manager, tmp_path):
    manager.registry.define(
        "<network type='bridge'><name>x</name><driver name='nope'/>"
        "<bridge name='b'/></network>")
    with pytest.raises(exception.DriverNotFound) as err:
        manager.request_endpoint(make_port(network='x'))
    assert 'nope' in str(err.value)
    assert 'vif_plug_dyn.network_drivers' in str(err.value)
    caps = manager.host_capabilities()
    assert caps['networks']['x']['endpoint_types'] == []
    assert 'nope' in caps['networks']['x']['error']


def test_driver_kind_mismatch(manager):
    manager.registry.define(
        "<network type='bridge'><name>x</name><driver name='virtual'/>"
        "<bridge name='b'/></network>")
    with pytest.raises(exception.DriverLoadFailed, match='bridge networks'):
        manager.request_endpoint(make_port(network='x'))


def test_host_capabilities(manager):
    caps = manager.host_capabilities()
    assert caps['networks']['red'] == {
        'kind': 'bridge', 'driver': 'noop',
        'endpoint_types': ['bridge', 'ethernet']}
    assert caps['networks']['nat']['driver'] == 'virtual'
    assert caps['endpoint_types'] == ['bridge', 'direct', 'ethernet',
                                      'network']


def test_state_survives_a_new_manager(conf, manager):
    port = make_port()
    endpoint = manager.request_endpoint(port, connected=False)
    other = manager_mod.EndpointManager(conf, host=manager.context.host)
    assert other.get_endpoint(port.port_id) == endpoint
    assert other.request_endpoint(port) == endpoint
    other.close()


def test_reconcile_forgets_half_built(conf, manager):
    port = make_port()
    request = ports.EndpointRequest(port=port)
    manager.ledger.begin_port(request, ledger.PLUGGED)
    manager.ledger.allocate('red', port.port_id, [('eth1', 1)])
    with pytest.raises(exception.PortConflict, match='reconcile'):
        manager.request_endpoint(port)
    assert manager.reconcile() == {'forgotten': [port.port_id],
                                   'restored': [], 'removed': [],
                                   'guests_pending': []}
    assert manager.ledger.allocations() == {}
    assert manager.request_endpoint(port).type == 'bridge'


def test_batch_request_and_release(manager):
    red = [make_port(mac='52:54:00:00:01:%02x' % i) for i in range(5)]
    blue = [make_port(network='blue', mac='52:54:00:00:02:%02x' % i)
            for i in range(3)]
    mixed = red[:2] + blue + red[2:]
    made = manager.request_endpoints(mixed, ['ethernet'])
    assert [e.port_id for e in made] == [p.port_id for p in mixed]
    assert {e.network for e in made} == {'red', 'blue'}
    # Asking again returns the same endpoints (idempotent batches).
    assert manager.request_endpoints(mixed, ['ethernet']) == made
    manager.release_endpoints([p.port_id for p in red] + [str(uuid.uuid4())])
    assert {r.network for r in manager.ledger.list_ports()} == {'blue'}


def test_batch_is_all_or_nothing(manager, monkeypatch):
    deleted = []
    real_create = noop.NoopDriver.create_endpoints

    def create(self, requests, network, endpoint_type, connect):
        if network.name == 'blue':
            raise _Boom()
        return real_create(self, requests, network, endpoint_type, connect)

    def delete(self, made, network):
        deleted.extend(e.port_id for e in made)

    monkeypatch.setattr(noop.NoopDriver, 'create_endpoints', create)
    monkeypatch.setattr(noop.NoopDriver, 'delete_endpoints', delete)
    kept = make_port(mac='52:54:00:00:03:01')
    manager.request_endpoint(kept, ['ethernet'])
    red = [make_port(mac='52:54:00:00:03:02'), kept]
    blue = [make_port(network='blue', mac='52:54:00:00:03:03')]
    with pytest.raises(_Boom):
        manager.request_endpoints(red + blue, ['ethernet'])
    # The new red endpoint was removed again; the one that existed before
    # the call was not touched.
    assert deleted == [red[0].port_id]
    assert [r.port.port_id for r in manager.ledger.list_ports()] == [
        kept.port_id]


def test_batch_refuses_duplicates(manager):
    port = make_port()
    with pytest.raises(exception.InvalidField, match='listed twice'):
        manager.request_endpoints([port, port])
    assert manager.ledger.list_ports() == []


@pytest.mark.parametrize('call', [
    lambda m: m.release_endpoints(42),
    lambda m: m.release_endpoints([{}]),
    lambda m: m.release_endpoint('not-a-uuid'),
    lambda m: m.connect(None),
    lambda m: m.connect(str(uuid.uuid4()), ['red']),
    lambda m: m.disconnect(b'\x00'),
    lambda m: m.request_endpoints(42),
    lambda m: m.request_endpoints(['not a port']),
    lambda m: m.request_endpoint(make_port(), 'ethernet'),
    lambda m: m.request_endpoint(make_port(), ['ethernet'], options=[1]),
    lambda m: m.plug('not a port'),
    lambda m: m.set_link_state(3.5, 'up'),
])
def test_wrong_types_are_refused_typed(manager, call):
    with pytest.raises(exception.InvalidField):
        call(manager)
