"""A tap its hypervisor makes (nova's ``tap`` VIF type), cabled by the
bridge driver: what is sent to the (fake) helper, the ledger's view, and
the watcher as the tap comes and goes."""

import uuid

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn import ledger as ledger_mod
from vif_plug_dyn import manager as manager_mod
from vif_plug_dyn import ports
from vif_plug_dyn.runtime import watcher as watcher_mod
from vif_plug_dyn.tests.unit.conftest import FakeHost
from vif_plug_dyn.tests.unit.conftest import write_network
from vif_plug_dyn.tests.unit.runtime.test_watcher import FakeEvents

NETWORKS = {
    'red': "<network type='bridge'><name>red</name>"
           "<bridge name='br-red' managed='no'/></network>",
    'blue': "<network type='bridge'><name>blue</name>"
            "<bridge name='br-blue'/></network>",
    'quiet': "<network type='bridge'><name>quiet</name>"
             "<driver name='noop'/><bridge name='br-q'/></network>",
}
LENT = {'tap_maker': 'hypervisor'}


class TapHost(FakeHost):
    """A fake host where the test plays the hypervisor."""

    def nova_plug(self, name):
        self.add_link(name, kind='tun')

    def nova_unplug(self, name):
        self.links.pop(name)


@pytest.fixture
def setup(conf, tmp_path):
    for name, xml in NETWORKS.items():
        write_network(str(tmp_path / 'networks'), name, xml)
    host = TapHost()
    host.add_link('br-red')
    mgr = manager_mod.EndpointManager(conf, host=host)
    yield mgr, host
    mgr.close()


def _port(network='red', n=1):
    port_id = str(uuid.uuid4())
    return ports.Port(port_id=port_id, mac='52:54:00:63:00:%02x' % n,
                      network=network, tap='tap' + port_id[:11])


def _ops(host):
    return [(op['op'], op.get('name') or op.get('names'))
            for batch in host.batches for op in batch]


def test_existing_tap_is_borrowed_and_cabled(setup):
    mgr, host = setup
    port = _port()
    host.nova_plug(port.tap)
    endpoint = mgr.request_endpoint(port, ['ethernet'], LENT)
    assert (endpoint.tap, endpoint.borrowed) == (port.tap, True)
    assert _ops(host) == [('borrow', port.tap), ('set_link', port.tap)]
    assert host.links[port.tap]['master'] == 'br-red'
    assert mgr.ledger.get_port(port.port_id).health == ledger_mod.HEALTHY
    # Never recorded as a device of ours (reconcile must not delete it).
    assert mgr.ledger.devices() == []
    mgr.disconnect(port.port_id)
    assert host.links[port.tap]['master'] is None
    moved = mgr.connect(port.port_id, 'blue')
    assert moved.borrowed and host.links[port.tap]['master'] == 'br-blue'
    mgr.release_endpoint(port.port_id)
    # Given back, off the bridge, never deleted.
    assert port.tap in host.links
    assert not host.links[port.tap]['borrowed']
    assert host.links[port.tap]['master'] is None
    assert 'br-blue' not in host.links
    assert not [n for op, n in _ops(host) if op == 'delete'
                and port.tap in n]


def test_missing_tap_waits(setup):
    mgr, host = setup
    port = _port()
    endpoint = mgr.request_endpoint(port, ['ethernet'], LENT)
    assert endpoint.borrowed and host.batches == []
    assert mgr.ledger.get_port(port.port_id).health == ledger_mod.WAITING
    mgr.disconnect(port.port_id)
    mgr.connect(port.port_id, 'red')
    mgr.release_endpoint(port.port_id)
    assert host.batches == [] and mgr.ledger.list_ports() == []


def test_request_must_name_the_tap_and_a_known_maker(setup):
    mgr, host = setup
    port = _port()
    anonymous = ports.Port(port_id=port.port_id, mac=port.mac,
                           network='red')
    with pytest.raises(exception.InvalidField, match='tap'):
        mgr.request_endpoint(anonymous, ['ethernet'], LENT)
    with pytest.raises(exception.InvalidField, match='tap_maker'):
        mgr.request_endpoint(port, ['ethernet'], {'tap_maker': 'nova'})
    with pytest.raises(exception.OperationNotSupported, match='NoopDriver'):
        mgr.request_endpoint(_port('quiet'), ['ethernet'], LENT)
    assert mgr.ledger.list_ports() == [] and host.batches == []


def test_a_failed_borrow_leaves_nothing(setup, monkeypatch):
    mgr, host = setup
    port = _port()
    host.nova_plug(port.tap)
    run = host.run

    def refuse(batch):
        # The borrow is applied, then the cabling fails (the helper does
        # not undo a borrow: it changed a device it did not make).
        if [op['op'] for op in batch] == ['borrow', 'set_link']:
            run(batch[:1])
            assert host.links[port.tap]['borrowed']
            raise exception.DeviceNotFound(device='br-red')
        return run(batch)
    monkeypatch.setattr(host, 'run', refuse)
    with pytest.raises(exception.DeviceNotFound):
        mgr.request_endpoint(port, ['ethernet'], LENT)
    assert mgr.ledger.list_ports() == []
    assert not host.links[port.tap]['borrowed']


@pytest.fixture
def watched(setup):
    mgr, host = setup
    present = set(host.links)
    events = FakeEvents(present)
    watcher = watcher_mod.Watcher(mgr, netns=None, settle=0.001,
                                  events_factory=lambda: events)
    yield mgr, host, events, watcher
    watcher.close()


def test_watcher_cables_the_tap_when_it_appears(watched):
    mgr, host, events, watcher = watched
    port = _port()
    mgr.request_endpoint(port, ['ethernet'], LENT)
    watcher.run_once(0)
    assert mgr.ledger.get_port(port.port_id).health == ledger_mod.WAITING
    # nova's plug_tap.
    host.nova_plug(port.tap)
    events.add(port.tap)
    report = watcher.run_once(1)
    assert report.restored == [port.port_id]
    assert host.links[port.tap]['borrowed']
    assert host.links[port.tap]['master'] == 'br-red'
    assert mgr.ledger.get_port(port.port_id).health == ledger_mod.HEALTHY
    # nova's unplug_tap: the port waits again, nothing is an error.
    host.nova_unplug(port.tap)
    events.remove(port.tap)
    report = watcher.run_once(1)
    assert report.waiting == [port.port_id] and report.degraded == []
    assert report.failed == []
    assert mgr.ledger.get_port(port.port_id).health == ledger_mod.WAITING
    # A hard reboot: nova makes the tap again; it is cabled again.
    host.nova_plug(port.tap)
    events.add(port.tap)
    assert watcher.run_once(1).restored == [port.port_id]
    assert host.links[port.tap]['master'] == 'br-red'
    # Released, its tap leaves the watcher's map.
    mgr.release_endpoint(port.port_id)
    host.nova_unplug(port.tap)
    events.remove(port.tap)
    report = watcher.run_once(1)
    assert (report.waiting, report.degraded, report.failed) == ([], [], [])
    assert port.port_id not in watcher.map.deps


def test_watcher_unplugged_port_borrows_without_cabling(watched):
    mgr, host, events, watcher = watched
    port = _port()
    mgr.request_endpoint(port, ['ethernet'], LENT, connected=False)
    watcher.run_once(0)
    host.nova_plug(port.tap)
    events.add(port.tap)
    watcher.run_once(1)
    assert host.links[port.tap]['borrowed']
    assert host.links[port.tap]['master'] is None


def test_reconcile_never_makes_or_deletes_a_borrowed_tap(setup):
    mgr, host = setup
    port = _port()
    mgr.request_endpoint(port, ['ethernet'], LENT)
    result = mgr.reconcile()
    assert result['removed'] == []
    assert not [op for op, _n in _ops(host) if op.startswith('create_')]
    host.nova_plug(port.tap)
    mgr.reconcile()
    assert host.links[port.tap]['master'] == 'br-red'
    assert not [op for op, _n in _ops(host) if op in ('delete',
                                                      'create_tap')]


def test_a_tap_another_port_holds_is_refused(setup):
    mgr, host = setup
    first = _port()
    host.nova_plug(first.tap)
    mgr.request_endpoint(first, ['ethernet'], LENT)
    second = ports.Port(port_id=str(uuid.uuid4()), mac='52:54:00:63:00:09',
                        network='red', tap=first.tap)
    with pytest.raises(exception.DeviceNotBorrowable,
                       match=first.port_id):
        mgr.request_endpoint(second, ['ethernet'], LENT)
    assert host.links[first.tap]['borrowed_tag'] == first.port_id
    assert mgr.ledger.get_port(second.port_id) is None
