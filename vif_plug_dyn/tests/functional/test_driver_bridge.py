"""The bridge driver on real devices, through the real privileged helper."""

import uuid

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn import ports
from vif_plug_dyn.tests.functional import fixtures

NETWORKS = {
    'red': "<network type='bridge'><name>red</name>"
           "<bridge name='br-red'/><mtu size='1400'/></network>",
    'blue': "<network type='bridge'><name>blue</name>"
            "<bridge name='br-blue'/></network>",
    'ops': "<network type='bridge'><name>ops</name>"
           "<bridge name='br-ops' managed='no'/></network>",
}


@pytest.fixture(scope='module')
def host():
    with fixtures.private_host('drvbr') as ns:
        yield ns


@pytest.fixture
def manager(host, tmp_path):
    with fixtures.managed(tmp_path, host.name, NETWORKS) as mgr:
        yield mgr


def _port(network='red', n=1):
    return ports.Port(port_id=str(uuid.uuid4()),
                      mac='52:54:00:10:00:%02x' % n, network=network)


def test_ports_join_and_leave_the_right_bridge(host, manager):
    port = _port()
    endpoint = manager.request_endpoint(port, ['ethernet'])
    links = fixtures.links(host)
    assert endpoint.tap in links and 'br-red' in links
    assert links[endpoint.tap]['master'] == 'br-red'
    assert links[endpoint.tap]['mtu'] == 1400
    assert links['br-red']['linkinfo']['info_data']['stp_state'] == 0
    assert links['br-red']['linkinfo']['info_data']['forward_delay'] == 0
    # The tap and the bridge are marked as ours.
    assert links[endpoint.tap]['ifalias'] == 'vif_plug_dyn:' + port.port_id
    assert links['br-red']['ifalias'] == 'vif_plug_dyn:net:red'

    manager.disconnect(port.port_id)
    assert fixtures.master_of(host, endpoint.tap) is None
    moved = manager.connect(port.port_id, 'blue')
    assert moved.tap == endpoint.tap
    assert fixtures.master_of(host, endpoint.tap) == 'br-blue'
    manager.release_endpoint(port.port_id)
    links = fixtures.links(host)
    assert endpoint.tap not in links
    # The library made both bridges; with no port left they are gone.
    assert 'br-blue' not in links
    assert manager.ledger.devices() == []


def test_boot_unplugged_batch(host, manager):
    batch = [_port(n=i) for i in range(20)]
    made = manager.request_endpoints(batch, ['ethernet'], connected=False)
    links = fixtures.links(host)
    for endpoint in made:
        assert links[endpoint.tap].get('master') is None
    manager.connect(batch[0].port_id)
    assert fixtures.master_of(host, made[0].tap) == 'br-red'
    manager.release_endpoints([p.port_id for p in batch])
    links = fixtures.links(host)
    assert not [n for n in links if n.startswith('vpd')]
    assert 'br-red' not in links


def test_bridge_endpoint_leaves_the_tap_to_the_hypervisor(host, manager):
    port = _port()
    endpoint = manager.request_endpoint(port, ['bridge'])
    assert (endpoint.bridge, endpoint.tap) == ('br-red', port.tap_name)
    links = fixtures.links(host)
    assert 'br-red' in links and port.tap_name not in links
    # What libvirt does at guest start: its own tap, joined to the bridge.
    host.run(['ip', 'tuntap', 'add', port.tap_name, 'mode', 'tap'])
    host.run(['ip', 'link', 'set', port.tap_name, 'master', 'br-red'])
    manager.release_endpoint(port.port_id)
    # The hypervisor's tap is never deleted by the library.
    assert port.tap_name in fixtures.links(host)
    host.run(['ip', 'link', 'del', port.tap_name])


def test_bridge_kept_while_a_port_remains(host, manager):
    first, second = _port(n=1), _port(n=2)
    manager.request_endpoints([first, second], ['ethernet'])
    manager.release_endpoint(first.port_id)
    assert 'br-red' in fixtures.links(host)
    manager.release_endpoint(second.port_id)
    assert 'br-red' not in fixtures.links(host)


def test_operator_bridge_is_adopted_never_removed(host, manager):
    host.run(['ip', 'link', 'add', 'br-ops', 'type', 'bridge'])
    try:
        port = _port(network='ops')
        endpoint = manager.request_endpoint(port, ['ethernet'])
        assert fixtures.master_of(host, endpoint.tap) == 'br-ops'
        manager.release_endpoint(port.port_id)
        links = fixtures.links(host)
        assert 'br-ops' in links and endpoint.tap not in links
    finally:
        host.run(['ip', 'link', 'del', 'br-ops'])


def test_missing_operator_bridge_is_a_typed_error(host, manager):
    port = _port(network='ops')
    with pytest.raises(exception.LowerDeviceMissing) as err:
        manager.request_endpoint(port, ['ethernet'])
    assert 'br-ops' in str(err.value) and 'ops' in str(err.value)
    assert manager.ledger.list_ports() == []
    assert port.tap_name not in fixtures.links(host)


def test_traffic_through_the_bridge(host, manager):
    """A stand-in guest on the tap answers a ping from the bridge side."""
    port = _port()
    endpoint = manager.request_endpoint(port, ['ethernet'])
    host.run(['ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'br-red'])
    with fixtures.tap_guest(host, endpoint.tap, port.mac, '192.0.2.10'):
        assert fixtures.ping(host, '192.0.2.10')
        manager.disconnect(port.port_id)
        assert not fixtures.ping(host, '192.0.2.10', count=1)
        manager.connect(port.port_id)
        assert fixtures.ping(host, '192.0.2.10')


class _Injected(Exception):
    pass


@pytest.mark.parametrize('step', ['negotiate', 'batch', 'record'])
def test_rollback_at_each_step(host, manager, monkeypatch, step):
    from vif_plug_dyn import ledger as ledger_mod
    before = set(fixtures.links(host))
    batch = [_port(n=n) for n in range(3)]
    accepted = ['ethernet']
    expected = _Injected
    if step == 'negotiate':
        accepted, expected = ['hostdev'], exception.NoMatchingEndpointType
    elif step == 'batch':
        # A foreign device squats the third port's tap name: the kernel
        # refuses it after the bridge and two taps were made.
        host.run(['ip', 'link', 'add', batch[2].tap_name, 'type', 'bridge'])
        before.add(batch[2].tap_name)
        expected = exception.NetlinkOperationFailed
    else:
        def fail(*args, **kwargs):
            raise _Injected()
        monkeypatch.setattr(ledger_mod.Ledger, 'record_devices', fail)
    try:
        with pytest.raises(expected):
            manager.request_endpoints(batch, accepted)
        assert set(fixtures.links(host)) == before
        assert manager.ledger.list_ports() == []
        assert manager.ledger.devices() == []
    finally:
        if step == 'batch':
            host.run(['ip', 'link', 'del', batch[2].tap_name])


def test_a_full_bridge_refuses_clearly_and_leaves_nothing(host, manager):
    """A Linux bridge holds at most 1023 ports: the 1024th makes the whole
    batch fail with an error that says so, and nothing stays."""
    batch = [ports.Port(port_id=str(uuid.uuid4()),
                        mac='52:54:00:11:%02x:%02x' % (n >> 8, n & 0xff),
                        network='red') for n in range(1024)]
    with pytest.raises(exception.NetlinkOperationFailed) as excinfo:
        manager.request_endpoints(batch, ['ethernet'])
    assert excinfo.value.kwargs['errno'] == 54  # EXFULL
    assert 'at most 1023' in str(excinfo.value)
    assert manager.ledger.list_ports() == []
    assert manager.ledger.devices() == []
    links = fixtures.links(host)
    assert not [n for n in links if n.startswith('vpd')]
    assert 'br-red' not in links
    # One port fewer fits.
    made = manager.request_endpoints(batch[:1023], ['ethernet'])
    assert fixtures.master_of(host, made[-1].tap) == 'br-red'
    manager.release_endpoints([p.port_id for p in batch[:1023]])
    assert not [n for n in fixtures.links(host) if n.startswith('vpd')]
