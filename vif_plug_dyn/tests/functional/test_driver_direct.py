"""The direct driver on real devices: pools, limits, steering, rollback."""

import multiprocessing
import uuid

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn import ledger as ledger_mod
from vif_plug_dyn import ports
from vif_plug_dyn.drivers import direct
from vif_plug_dyn.drivers import taps
from vif_plug_dyn.tests.functional import fixtures
from vif_plug_dyn.tests.functional.harness.netns import NetNamespace

NETWORKS = {
    'blue': "<network type='direct'><name>blue</name>"
            "<forward mode='bridge'><interface dev='up0'/></forward>"
            "</network>",
    'pool': "<network type='direct'><name>pool</name>"
            "<forward mode='vepa'>"
            "<interface dev='up1' maxConnections='3'/>"
            "<interface dev='up2' maxConnections='2'/>"
            "</forward></network>",
    'pt': "<network type='direct'><name>pt</name>"
          "<forward mode='passthrough'><interface dev='up1'/>"
          "<interface dev='up2'/></forward></network>",
    'late': "<network type='direct'><name>late</name>"
            "<forward mode='bridge'><interface dev='later0'/></forward>"
            "</network>",
}


@pytest.fixture(scope='module')
def host():
    with fixtures.private_host('drvdir') as ns:
        for n in range(3):
            fixtures.uplink(ns, 'up%d' % n, 'wire%d' % n)
        yield ns


@pytest.fixture
def manager(host, tmp_path):
    with fixtures.managed(tmp_path, host.name, NETWORKS) as mgr:
        yield mgr


def _port(network, n=1):
    return ports.Port(port_id=str(uuid.uuid4()),
                      mac='52:54:00:20:00:%02x' % n, network=network)


def test_steered_port_carries_traffic(host, manager):
    """Guest tap <-> macvlan on up0 <-> veth <-> a namespace behind it."""
    with NetNamespace('drvdir-far') as far:
        host.run(['ip', 'link', 'set', 'wire0', 'netns', far.name])
        far.run(['ip', 'link', 'set', 'wire0', 'up'])
        far.run(['ip', 'addr', 'add', '198.51.100.1/24', 'dev', 'wire0'])
        port = _port('blue')
        endpoint = manager.request_endpoint(port, ['ethernet', 'direct'])
        assert endpoint.type == 'ethernet'
        links = fixtures.links(host)
        macvlan = port.macvlan_name
        assert links[macvlan]['address'] == port.mac
        assert links[macvlan]['link'] == 'up0'
        assert links[macvlan]['linkinfo']['info_data']['mode'] == 'bridge'
        with fixtures.tap_guest(host, endpoint.tap, port.mac,
                                '198.51.100.10'):
            assert fixtures.ping(far, '198.51.100.10')
            manager.disconnect(port.port_id)
            assert macvlan not in fixtures.links(host)
            assert not fixtures.ping(far, '198.51.100.10', count=1)
            manager.connect(port.port_id)
            assert fixtures.ping(far, '198.51.100.10')
        manager.release_endpoint(port.port_id)
        links = fixtures.links(host)
        assert endpoint.tap not in links and macvlan not in links
        assert manager.ledger.allocations() == {}
        # Give the veth end back so the namespace can be reused.
        far.run(['ip', 'link', 'set', 'wire0', 'netns', host.name])


def test_genuine_macvtap_endpoint(host, manager):
    port = _port('blue')
    endpoint = manager.request_endpoint(port, ['direct'])
    assert (endpoint.source_dev, endpoint.mode) == ('up0', 'bridge')
    assert manager.ledger.allocations('blue') == {
        ('blue', 'up0'): [port.port_id]}
    with pytest.raises(exception.OperationNotSupported,
                       match='reconnect strategy'):
        manager.disconnect(port.port_id)


def test_least_loaded_and_limits(host, manager):
    made = manager.request_endpoints(
        [_port('pool', n) for n in range(5)], ['direct'])
    assert sorted(e.source_dev for e in made) == ['up1', 'up1', 'up1',
                                                  'up2', 'up2']
    # The first two alternate: least loaded first, ties in pool order.
    assert [e.source_dev for e in made[:2]] == ['up1', 'up2']
    extra = _port('pool', 9)
    with pytest.raises(exception.PoolExhausted, match='up1, up2'):
        manager.request_endpoint(extra, ['direct'])
    assert manager.ledger.get_port(extra.port_id) is None


def _request_one(args):
    state_path, net_dir, netns, network = args
    from oslo_config import cfg

    from vif_plug_dyn import manager as manager_mod
    from vif_plug_dyn import opts
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override('state_path', state_path, opts.GROUP)
    conf.set_override('network_dir', net_dir, opts.GROUP)
    conf.set_override('netns', netns, opts.GROUP)
    mgr = manager_mod.EndpointManager(conf)
    port = ports.Port(port_id=str(uuid.uuid4()), mac='52:54:00:30:00:01',
                      network=network)
    try:
        return mgr.request_endpoint(port, ['direct']).source_dev
    except exception.PoolExhausted:
        return None
    finally:
        from vif_plug_dyn import privsep
        privsep.stop()


@pytest.mark.parametrize('network,expected', [
    ('pool', {'up1': 3, 'up2': 2}), ('pt', {'up1': 1, 'up2': 1})])
def test_limits_hold_under_16_concurrent_processes(host, manager, network,
                                                   expected):
    conf = manager.conf['vif_plug_dyn']
    args = [(conf.state_path, conf.network_dir, host.name, network)] * 16
    ctx = multiprocessing.get_context('spawn')
    with ctx.Pool(16) as pool:
        got = pool.map(_request_one, args)
    counts = {dev: got.count(dev) for dev in expected}
    assert counts == expected
    assert got.count(None) == 16 - sum(expected.values())
    held = manager.ledger.allocations(network)
    assert {res: len(ids) for (_, res), ids in held.items()} == expected


def test_restart_keeps_allocations(host, manager, tmp_path):
    first = manager.request_endpoints([_port('pool', n) for n in range(4)],
                                      ['direct'])
    again = fixtures.make_manager(tmp_path, host.name, NETWORKS)
    try:
        assert again.get_endpoint(first[0].port_id) == first[0]
        fifth = again.request_endpoint(_port('pool', 5), ['direct'])
        # Loads were 2 and 2: the tie goes to the first in pool order.
        assert fifth.source_dev == 'up1'
        with pytest.raises(exception.PoolExhausted):
            again.request_endpoint(_port('pool', 6), ['direct'])
    finally:
        again.close()


def test_deferred_lower_device(host, manager):
    """A steered port can be built before its lower device exists."""
    assert manager.host_capabilities()['networks']['late'][
        'endpoint_types'] == ['ethernet']
    port = _port('late')
    endpoint = manager.request_endpoint(port, ['direct', 'ethernet'])
    assert endpoint.type == 'ethernet'
    links = fixtures.links(host)
    assert endpoint.tap in links and port.macvlan_name not in links
    with pytest.raises(exception.NoMatchingEndpointType):
        manager.request_endpoint(_port('late', 2), ['direct'])


class _Injected(Exception):
    pass


@pytest.mark.parametrize('step', ['allocate', 'batch', 'record'])
def test_rollback_at_each_step(host, manager, monkeypatch, step):
    before = set(fixtures.links(host))
    batch = [_port('blue', n) for n in range(3)]
    if step == 'allocate':
        def fail(*args, **kwargs):
            raise _Injected()
        monkeypatch.setattr(ledger_mod.Ledger, 'allocate_many', fail)
        expected = _Injected
    elif step == 'batch':
        # A foreign device squats the second port's macvlan name: the
        # kernel refuses it half way through the privileged batch.
        host.run(['ip', 'link', 'add', batch[1].macvlan_name, 'type',
                  'bridge'])
        before.add(batch[1].macvlan_name)
        expected = exception.NetlinkOperationFailed
    else:
        def fail(*args, **kwargs):
            raise _Injected()
        monkeypatch.setattr(ledger_mod.Ledger, 'record_devices', fail)
        expected = _Injected
    try:
        with pytest.raises(expected):
            manager.request_endpoints(batch, ['ethernet'])
        assert set(fixtures.links(host)) == before
        assert manager.ledger.allocations() == {}
        assert manager.ledger.list_ports() == []
        assert manager.ledger.devices() == []
    finally:
        if step == 'batch':
            host.run(['ip', 'link', 'del', batch[1].macvlan_name])


def test_steer_ops_are_tagged():
    port = _port('blue')
    built = direct.DirectDriver._steer_ops(port, _network('blue'), 'up0')
    assert [op['op'] for op in built] == ['create_macvlan', 'redirect']
    assert built[0]['tag'] == port.port_id
    assert taps.host_mac(port.mac).startswith('fe:')


def _network(name):
    from vif_plug_dyn import networks
    return networks.Network.from_xml(NETWORKS[name])
