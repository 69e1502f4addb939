"""The agent's RPC API, AgentClient and notifications over oslo.messaging's
fake driver (in one process; the functional tests use a real RabbitMQ)."""

import threading
import time
import uuid

import pytest

from vif_plug_dyn import agent
from vif_plug_dyn import endpoints as ep
from vif_plug_dyn import exception
from vif_plug_dyn import ledger as ledger_mod
from vif_plug_dyn import ports
from vif_plug_dyn import rpc
from vif_plug_dyn._messaging import oslo_messaging
from vif_plug_dyn.agent import notify
from vif_plug_dyn.agent import service as service_mod
from vif_plug_dyn.runtime import watcher as watcher_mod
from vif_plug_dyn.tests.unit import conftest
from vif_plug_dyn.virt import migration


def _port(network='red', n=1):
    return ports.Port(port_id=str(uuid.uuid4()),
                      mac='52:54:00:aa:00:%02x' % n, network=network)


class Collector:
    def __init__(self):
        self.got = []
        self.cond = threading.Condition()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        with self.cond:
            self.got.append((event_type, payload))
            self.cond.notify_all()

    warn = info

    def wait(self, count, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.got) < count:
                left = deadline - time.monotonic()
                assert left > 0, self.got
                self.cond.wait(left)
        return list(self.got)


@pytest.fixture
def bus(conf):
    agent.register_opts(conf)
    notify.set_defaults(conf)
    conf.set_override('host', 'hosta', agent.GROUP)
    conf.set_override('watch', False, agent.GROUP)
    transport = oslo_messaging.get_rpc_transport(
        conf, url='fake:/', allowed_remote_exmods=rpc.ALLOWED_EXMODS)
    ntransport = oslo_messaging.get_notification_transport(conf,
                                                           url='fake:/')
    collector = Collector()
    listener = oslo_messaging.get_notification_listener(
        ntransport, [oslo_messaging.Target(
            topic=agent.NOTIFICATION_TOPIC)], [collector])
    listener.start()
    service = service_mod.AgentService(conf, transport, ntransport,
                                       host_network=conftest.FakeHost())
    service.start()
    client = rpc.AgentClient('hosta', conf, transport=transport,
                             timeout=10)
    yield service, client, collector
    service.stop()
    listener.stop()
    listener.wait()
    transport.cleanup()
    ntransport.cleanup()


def test_capabilities_and_batch(bus):
    service, client, collector = bus
    caps = client.capabilities()
    assert caps['host'] == 'hosta'
    assert caps['rpc_api_version'] == '1.0'
    assert caps['networks']['red']['endpoint_types'] == ['bridge',
                                                         'ethernet']
    batch = [_port(n=i) for i in range(5)]
    made = client.request_endpoints(batch, ['bridge'])
    assert [e.port_id for e in made] == [p.port_id for p in batch]
    assert all(isinstance(e, ep.BridgeEndpoint) for e in made)
    # the same answer the manager gives in-process (idempotent)
    assert service.manager.request_endpoints(batch, ['bridge']) == made
    got = collector.wait(5)
    assert {p['port_id'] for _e, p in got} == {p.port_id for p in batch}
    assert {e for e, _p in got} == {agent.EVENT_PLUGGED}
    assert got[0][1]['timings']['batch'] == 5
    # asking again plugs nothing new: no notification
    client.request_endpoints(batch[:1], ['bridge'])
    records = client.port_status([p.port_id for p in batch])
    assert len(records) == 5
    assert all(isinstance(r, ledger_mod.PortRecord) for r in records)
    assert records[0].request.accepted_types == ('bridge',)
    assert client.port_status(network='blue') == []
    time.sleep(0.1)
    assert len(collector.got) == 5


def test_cable_and_release(bus):
    service, client, collector = bus
    port = _port()
    client.request_endpoints([port], ['bridge'], connected=False)
    assert client.get_port(port.port_id).cable == 'unplugged'
    moved = client.connect(port.port_id, 'blue')
    assert moved.network == 'blue'
    client.set_link_state(port.port_id, 'down')
    assert client.get_port(port.port_id).link == 'down'
    client.disconnect(port.port_id)
    plugged, unplugged = collector.wait(2)
    assert plugged[0] == agent.EVENT_PLUGGED
    assert plugged[1]['network'] == 'blue'
    assert plugged[1]['moved_from'] is None
    assert unplugged[0] == agent.EVENT_UNPLUGGED
    client.unplug(port.port_id)
    assert client.get_port(port.port_id) is None
    time.sleep(0.1)
    # released unplugged: no second unplugged notification
    assert len(collector.got) == 2
    assert client.plug(port).network == 'red'
    client.cast('release_endpoints', port_ids=[port.port_id])
    deadline = time.monotonic() + 5
    while client.get_port(port.port_id) is not None:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_errors_are_typed(bus, monkeypatch, caplog):
    service, client, _c = bus
    with pytest.raises(exception.NetworkNotFound) as err:
        client.request_endpoints([_port('nowhere')])
    assert str(err.value) == 'Network nowhere is not defined on this host'
    assert type(err.value) is exception.NetworkNotFound
    assert err.value.kwargs == {'network': 'nowhere'}
    with pytest.raises(exception.PortNotFound):
        client.disconnect(str(uuid.uuid4()))
    with pytest.raises(exception.InvalidField) as err:
        client.release_endpoints(['not-a-uuid'])
    assert 'port_ids[0]' in str(err.value)
    # a malformed primitive is refused before the manager sees it
    primitive = _port().to_primitive()
    primitive['vpd.data']['mac'] = 'zz'
    with pytest.raises(exception.InvalidField):
        client.call('request_endpoints', ports=[primitive])
    # ... as an answer, not logged as the agent's own failure
    assert 'Exception during message handling' not in caplog.text
    with pytest.raises(exception.UnsupportedVersion):
        client.call('plug', port=dict(_port().to_primitive(),
                                      **{'vpd.version': '2.0'}))

    def boom():
        raise RuntimeError('a bug')

    monkeypatch.setattr(service.manager, 'host_capabilities', boom)
    with pytest.raises(exception.AgentCallFailed) as err:
        client.capabilities()
    assert str(err.value) == ('Agent hosta failed capabilities: '
                              'RuntimeError: a bug')
    # private names and unknown methods are not served
    for name in ('_records', '_manager', 'target'):
        with pytest.raises(exception.AgentCallFailed):
            client.call(name)
    with pytest.raises(exception.AgentCallFailed) as err:
        client.call('capabilities', version='1.1')
    assert 'UnsupportedVersion' in str(err.value)


def test_timeout_is_typed(bus, conf):
    _service, client, _c = bus
    nobody = rpc.AgentClient('nohost', conf, transport=client.transport,
                             timeout=0.2)
    with pytest.raises(exception.AgentTimeout) as err:
        nobody.capabilities()
    assert str(err.value) == ('Agent nohost did not answer capabilities '
                              'within 0.2 s')
    found = rpc.call_many([client, nobody], 'capabilities')
    assert found['hosta']['host'] == 'hosta'
    assert isinstance(found['nohost'], exception.AgentTimeout)
    with pytest.raises(exception.AgentTimeout):
        rpc.wait_for_agent(nobody, timeout=0.5, interval=0.1)


def test_migration_flow_reaches_the_destination_over_the_bus(bus, conf,
                                                             tmp_path):
    """MigrationFlow with an AgentClient as its destination: pre-check,
    request and rollback go over the bus."""
    service, client, collector = bus
    from vif_plug_dyn.tests.unit.virt import test_migration as tm
    source = tm._manager(tmp_path, 'src', tm.SOURCE_NETWORKS)
    port = _port()
    source.request_endpoint(port, ('bridge',))
    records = [source.ledger.get_port(port.port_id)]

    class Adapter:
        NAME = 'fake'
        macs = [port.mac]

        def interface_macs(self, xml):
            return self.macs

        def migration_xml(self, xml, dest):
            return 'rewritten:%s' % dest[port.mac].bridge

    fail = tm.Recorder(fail=exception.HypervisorOperationFailed(
        operation='migration', domain='vm', reason='refused'))
    flow = migration.MigrationFlow(Adapter(), source, client, fail,
                                   destination_name='hosta')
    with pytest.raises(exception.HypervisorOperationFailed):
        flow.run('vm', '<domain/>', records)
    assert client.port_status() == []          # rolled back over the bus
    ok = tm.Recorder()
    result = migration.MigrationFlow(Adapter(), source, client, ok).run(
        'vm', '<domain/>', records)
    assert result.dest_xml == 'rewritten:br-red'
    assert [r.port.port_id for r in client.port_status()] == [port.port_id]
    assert source.ledger.list_ports() == []
    # a network the destination lacks: refused before anything is built
    other = _port('nat', 9)
    source.request_endpoint(other, ('network',))
    service.manager.registry.undefine('nat')
    Adapter.macs = [other.mac]
    with pytest.raises(exception.MigrationNetworkMissing):
        migration.MigrationFlow(Adapter(), source, client, ok).run(
            'vm', '<domain/>', [source.ledger.get_port(other.port_id)])
    source.close()


def test_migrate_needs_libvirt(bus, monkeypatch):
    service, client, _c = bus

    class Adapter:
        NAME = 'other'

    monkeypatch.setattr(service, 'hypervisor', lambda: Adapter())
    with pytest.raises(exception.OperationNotSupported):
        client.migrate('vm', 'hostb', 'qemu+tcp://hostb/system')
    with pytest.raises(exception.InvalidField):
        client.migrate('vm', 'hostb', 'qemu+tcp://hostb/system',
                       rewrites={'': 'x'})


def test_reload_reads_new_networks(bus, tmp_path):
    service, client, _c = bus
    conftest.write_network(
        str(tmp_path / 'networks'), 'green',
        "<network type='bridge'><name>green</name><driver name='noop'/>"
        "<bridge name='br-green'/></network>")
    assert 'green' not in client.capabilities()['networks']
    service.reload()
    assert 'green' in client.capabilities()['networks']
    # a broken file leaves the networks as they were
    (tmp_path / 'networks' / 'bad.xml').write_text('<network')
    service.reload()
    assert 'green' in client.capabilities()['networks']


def test_notifier_turns_watcher_reports_into_heal_events(conf):
    ntransport = oslo_messaging.get_notification_transport(conf,
                                                           url='fake:/')
    notifier = notify.PortNotifier(conf, 'hosta', transport=ntransport)
    sent = []
    notifier.notifier = type('N', (), {
        'info': lambda s, c, e, p: sent.append((e, p)),
        'warn': lambda s, c, e, p: sent.append((e, p))})()
    port = _port('blue')
    record = ledger_mod.PortRecord(
        request=ports.EndpointRequest(port=port),
        endpoint=ep.EthernetEndpoint(port_id=port.port_id, network='blue',
                                     mac=port.mac, tap='vpd1'),
        state='active', cable='plugged', health='ok', updated=0.0)
    records = {port.port_id: record}
    notifier.start_health([record])
    # a healthy port restored at start is not news
    notifier.on_report(watcher_mod.Report(restored=[port.port_id]), records)
    now = time.monotonic()
    notifier.on_report(watcher_mod.Report(degraded=[port.port_id],
                                          woke=now - 0.01), records)
    notifier.on_report(watcher_mod.Report(degraded=[port.port_id],
                                          woke=now), records)
    notifier.on_report(watcher_mod.Report(restored=[port.port_id],
                                          woke=time.monotonic()), records)
    notifier.flush()
    assert [e for e, _p in sent] == [agent.EVENT_DEGRADED,
                                     agent.EVENT_RESTORED]
    degraded, restored = sent[0][1], sent[1][1]
    assert degraded['network'] == 'blue' and degraded['host'] == 'hosta'
    assert degraded['timings']['detect_ms'] >= 10
    assert restored['timings']['outage_ms'] > 0
    assert restored['endpoint_type'] == 'ethernet'
    # a failing bus is logged, never raised
    notifier.notifier = type('N', (), {
        'info': lambda *a: (_ for _ in ()).throw(RuntimeError('down'))})()
    notifier.emit(agent.EVENT_PLUGGED, [record])
    notifier.close()
    assert notifier.failed == 1
    ntransport.cleanup()


def test_wire_helpers():
    port = _port()
    request = ports.EndpointRequest(port=port, accepted_types=('bridge',))
    wire = rpc.to_wire({'a': [port, (request,)], 'b': 1})
    assert wire['a'][0] == port.to_primitive()
    assert rpc.from_wire(wire) == {'a': [port, [request]], 'b': 1}
    with pytest.raises(exception.InvalidPrimitive):
        rpc.record_from_wire([])
    with pytest.raises(exception.InvalidPrimitive):
        rpc.record_from_wire({'request': request.to_primitive()})
    with pytest.raises(exception.InvalidField):
        rpc.record_from_wire({'request': port.to_primitive(),
                              'endpoint': None, 'state': 'active',
                              'cable': 'plugged', 'health': 'ok',
                              'updated': 0, 'link': 'follow'})


def test_a_bus_that_is_down_is_unreachable_in_bounded_time(bus,
                                                           monkeypatch):
    """oslo.messaging retries the reply queue's connection forever (seen
    with a RabbitMQ URL nobody answers): the first call of a transport
    is bounded by its timeout plus a grace. The endless retry is stood
    in for by a call that blocks until the test releases it."""
    _service, client, _c = bus
    monkeypatch.setattr(rpc, 'CONNECT_GRACE', 0.3)
    release = threading.Event()

    def stuck(cctxt, method, wait, kwargs):
        release.wait(30)
        raise AssertionError('released')

    fresh = oslo_messaging.get_rpc_transport(client.conf, url='fake:/')
    other = rpc.AgentClient('hosta', client.conf, transport=fresh,
                            timeout=0.2)
    monkeypatch.setattr(other, '_call', stuck)
    started = time.monotonic()
    try:
        with pytest.raises(exception.AgentUnreachable) as err:
            other.capabilities()
    finally:
        release.set()
    assert time.monotonic() - started < 5
    assert str(err.value) == ('Cannot reach agent hosta for capabilities '
                              'through the message bus: no connection to '
                              'the message bus within 0.5 s')
    # once a transport has answered, calls go straight through
    assert client.capabilities()['host'] == 'hosta'
    assert client.transport in rpc._ANSWERED
    fresh.cleanup()
