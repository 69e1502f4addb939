"""Every entry point tells the guest: the configured adapter is wired by
initialize() and loaded on first need; a guest that cannot be told is
recorded pending, never an error; lifecycle events and reconcile apply
what is pending. A fake adapter stands in for libvirt here; the real one
is exercised by ``tests/functional/test_cli_guest.py``."""

import json
import logging
import threading
import time
import uuid

import pytest

import vif_plug_dyn
from vif_plug_dyn import exception
from vif_plug_dyn import ledger as ledger_mod
from vif_plug_dyn import opts
from vif_plug_dyn import virt
from vif_plug_dyn.cmd import cli
from vif_plug_dyn.runtime import cable
from vif_plug_dyn.runtime import guests as guests_mod
from vif_plug_dyn.tests.unit.conftest import FakeHost
from vif_plug_dyn.tests.unit.conftest import NOOP_NETWORKS
from vif_plug_dyn.tests.unit.conftest import make_port
from vif_plug_dyn.tests.unit.conftest import write_network

PENDING = ledger_mod.GUEST_PENDING
APPLIED = ledger_mod.GUEST_APPLIED


class FakeAdapter:
    """A hypervisor whose guests are in ``running`` (uuid -> MACs) or
    ``stopped``; ``reachable`` False makes every call fail to connect."""

    def __init__(self):
        self.running = {}
        self.stopped = set()
        self.reachable = True
        self.calls = []
        self.callback = None
        self.closed = 0

    def _reach(self):
        if not self.reachable:
            raise exception.HypervisorConnectionFailed(
                uri='fake:///', operation='link', reason='connection refused')

    def set_link_state(self, domain, mac, up):
        self._reach()
        if domain in self.stopped:
            self.calls.append((domain, mac, up, 'stored'))
            return False
        if domain not in self.running:
            raise exception.DomainNotFound(operation='link', domain=domain,
                                           reason='no such domain')
        if mac not in self.running[domain]:
            raise exception.InterfaceNotFound(domain=domain, mac=mac)
        self.calls.append((domain, mac, up, 'live'))
        return True

    def watch_guests(self, callback):
        self._reach()
        self.callback = callback

    def watching_guests(self):
        return self.reachable and self.callback is not None

    def close(self):
        self.closed += 1


@pytest.fixture
def conf(conf):
    conf.set_override('hypervisor', 'libvirt', opts.GROUP)
    return conf


@pytest.fixture
def adapter(monkeypatch):
    """The fake, loaded in place of the configured adapter; ``loads``
    counts how often it was loaded."""
    fake = FakeAdapter()
    fake.loads = 0

    def load(name, conf):
        assert name == 'libvirt'
        fake.loads += 1
        return fake

    monkeypatch.setattr(virt, 'load_adapter', load)
    return fake


@pytest.fixture
def mgr(conf, adapter):
    manager = vif_plug_dyn.initialize(conf, host=FakeHost())
    yield manager
    manager.close()


def _guest(mgr, port_id):
    return mgr.ledger.guest_links([port_id]).get(port_id)


def test_initialize_loads_the_adapter_only_when_a_guest_is_told(mgr,
                                                                 adapter):
    assert mgr.guest.configured and adapter.loads == 0
    hostonly = make_port()
    mgr.request_endpoint(hostonly, ['ethernet'], connected=False)
    mgr.connect(hostonly.port_id)
    mgr.host_capabilities()
    mgr.ledger.list_ports()
    assert adapter.loads == 0, 'a port without a guest loaded the adapter'
    vm = str(uuid.uuid4())
    adapter.running[vm] = {'52:54:00:00:00:09'}
    port = make_port(mac='52:54:00:00:00:09', vm_uuid=vm)
    mgr.request_endpoint(port, ['ethernet'], connected=False)
    mgr.connect(port.port_id)
    mgr.disconnect(port.port_id)
    mgr.set_link_state(port.port_id, 'up')
    assert adapter.loads == 1
    assert [c[2] for c in adapter.calls] == [False, True, False, True]
    assert _guest(mgr, port.port_id).state == APPLIED
    mgr.close()
    assert adapter.closed == 1


def test_none_is_host_only_and_said_once(conf, adapter, monkeypatch, caplog):
    monkeypatch.setattr(cable, '_LOGGED', set())
    conf.set_override('hypervisor', 'none', opts.GROUP)
    caplog.set_level(logging.INFO, 'vif_plug_dyn')
    first = vif_plug_dyn.initialize(conf, host=FakeHost())
    vif_plug_dyn.initialize(conf, host=FakeHost()).close()
    said = [r for r in caplog.records if 'hypervisor is "none"' in
            r.getMessage()]
    assert len(said) == 1
    port = make_port(vm_uuid=str(uuid.uuid4()))
    mgr = vif_plug_dyn.get_manager()
    mgr.request_endpoint(port, ['ethernet'], connected=False)
    mgr.connect(port.port_id)
    assert not mgr.guest.configured
    assert adapter.loads == 0 and _guest(mgr, port.port_id) is None
    assert mgr.reconcile()['guests_pending'] == []
    assert not guests_mod.GuestMonitor(mgr).start()
    first.close()
    mgr.close()


def test_unreachable_hypervisor_defers_the_guest_not_the_host(mgr, adapter,
                                                              caplog):
    vm = str(uuid.uuid4())
    adapter.running[vm] = {'52:54:00:00:00:01'}
    adapter.reachable = False
    port = make_port(vm_uuid=vm)
    caplog.set_level(logging.INFO, 'vif_plug_dyn')
    mgr.request_endpoint(port, ['ethernet'], connected=False)
    endpoint = mgr.connect(port.port_id)
    record = mgr.ledger.get_port(port.port_id)
    assert endpoint.network == 'red' and record.cable == 'plugged'
    guest = _guest(mgr, port.port_id)
    assert (guest.state, guest.up, guest.domain) == (PENDING, True, vm)
    assert 'cannot be reached' in guest.reason
    assert any(r.levelno == logging.WARNING and 'deferred' in r.getMessage()
               and port.port_id in r.getMessage() for r in caplog.records)
    assert mgr.reconcile()['guests_pending'] == [port.port_id]
    adapter.reachable = True
    assert mgr.reconcile()['guests_pending'] == []
    assert _guest(mgr, port.port_id).state == APPLIED
    assert adapter.calls[-1] == (vm, port.mac, True, 'live')


def test_adapter_that_fails_to_load_defers(conf, monkeypatch):
    def broken(name, conf):
        raise exception.HypervisorLoadFailed(name=name,
                                             reason='no module libvirt')

    monkeypatch.setattr(virt, 'load_adapter', broken)
    mgr = vif_plug_dyn.initialize(conf, host=FakeHost())
    port = make_port(vm_uuid=str(uuid.uuid4()))
    mgr.request_endpoint(port, ['ethernet'])
    guest = _guest(mgr, port.port_id)
    assert guest.state == PENDING and 'no module libvirt' in guest.reason
    mgr.close()


def test_guest_not_running_gets_its_link_when_it_starts(mgr, adapter,
                                                        caplog):
    vm, other = str(uuid.uuid4()), str(uuid.uuid4())
    port = make_port(vm_uuid=vm)
    bystander = make_port(mac='52:54:00:00:00:02', vm_uuid=other)
    caplog.set_level(logging.INFO, 'vif_plug_dyn')
    mgr.request_endpoint(port, ['ethernet'], connected=False)
    mgr.request_endpoint(bystander, ['ethernet'])
    guest = _guest(mgr, port.port_id)
    assert (guest.state, guest.up) == (PENDING, False)
    assert 'not defined on this host' in guest.reason
    assert any(r.levelno == logging.INFO and 'deferred' in r.getMessage()
               for r in caplog.records)
    # Defined but shut off: only its stored definition changes.
    adapter.stopped.add(vm)
    assert mgr.guest_started(vm) == []
    assert 'not running' in _guest(mgr, port.port_id).reason
    adapter.stopped.clear()
    adapter.running[vm] = {port.mac}
    assert mgr.guest_started(vm.upper()) == [port.port_id]
    assert _guest(mgr, port.port_id).state == APPLIED
    assert adapter.calls[-1] == (vm, port.mac, False, 'live')
    assert _guest(mgr, bystander.port_id).state == PENDING
    assert mgr.guest_started(str(uuid.uuid4())) == []


def test_a_guest_without_the_nic_yet_stays_pending(mgr, adapter):
    vm = str(uuid.uuid4())
    adapter.running[vm] = set()
    port = make_port(vm_uuid=vm)
    mgr.request_endpoint(port, ['ethernet'])
    assert 'no NIC with MAC' in _guest(mgr, port.port_id).reason
    adapter.running[vm] = {port.mac}
    assert mgr.apply_guest_links(pending_only=True) == {port.port_id: True}
    assert mgr.apply_guest_links(pending_only=True) == {}


def _until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_monitor_waits_for_the_hypervisor_then_follows_events(mgr, adapter,
                                                              caplog):
    vm = str(uuid.uuid4())
    port = make_port(vm_uuid=vm)
    mgr.request_endpoint(port, ['ethernet'], connected=False)
    adapter.reachable = False
    caplog.set_level(logging.INFO, 'vif_plug_dyn')
    monitor = guests_mod.GuestMonitor(mgr, retry=0.02)
    assert monitor.start()
    try:
        time.sleep(0.1)
        outage = [r for r in caplog.records
                  if 'Cannot follow guest events' in r.getMessage()]
        assert len(outage) == 1, 'the outage is said once, not per retry'
        # The guest booted while nobody listened: caught up with on
        # subscription.
        adapter.running[vm] = {port.mac}
        adapter.reachable = True
        assert _until(lambda: monitor.catch_ups == 1)
        assert _guest(mgr, port.port_id).state == APPLIED
        # Shut off, cable changed meanwhile, started again: the event.
        del adapter.running[vm]
        mgr.connect(port.port_id)
        assert _guest(mgr, port.port_id).state == PENDING
        adapter.running[vm] = {port.mac}
        threading.Thread(target=adapter.callback,
                         args=(vm, 'guest-1')).start()
        assert _until(lambda: monitor.started == [vm])
        assert _guest(mgr, port.port_id).state == APPLIED
        assert adapter.calls[-1] == (vm, port.mac, True, 'live')
    finally:
        monitor.stop()
    assert monitor._thread is None


def test_cli_shows_and_notes_a_pending_guest(tmp_path, capsys, adapter):
    for name, xml in NOOP_NETWORKS.items():
        write_network(str(tmp_path / 'nets'), name, xml)
    base = ['--state-path', str(tmp_path / 'state'), '--network-dir',
            str(tmp_path / 'nets'), '--json']
    vm, port_id = str(uuid.uuid4()), str(uuid.uuid4())
    assert cli.main(base + [
        'endpoint', 'request', '--port-id', port_id, '--mac',
        '52:54:00:00:00:05', '--network', 'red', '--types', 'ethernet',
        '--vm-uuid', vm, '--unplugged']) == 0
    _out, err = capsys.readouterr()
    assert 'note: the guest link of port %s (down) is pending' % port_id \
        in err and 'not defined on this host' in err
    assert cli.main(base + ['endpoint', 'show', port_id]) == 0
    shown = json.loads(capsys.readouterr()[0])
    assert shown['vm_uuid'] == vm
    assert (shown['guest']['state'], shown['guest']['link']) == (
        'pending', 'down')
    adapter.running[vm] = {'52:54:00:00:00:05'}
    assert cli.main(base + ['connect', port_id]) == 0
    _out, err = capsys.readouterr()
    assert 'note:' not in err
    assert cli.main(base + ['endpoint', 'list']) == 0
    listed = json.loads(capsys.readouterr()[0])
    assert listed[0]['guest']['state'] == 'applied'
    assert listed[0]['guest']['link'] == 'up'
    assert adapter.calls[-1] == (vm, '52:54:00:00:00:05', True, 'live')


def test_guest_records_go_with_their_port(mgr, adapter):
    vm = str(uuid.uuid4())
    first, second = make_port(vm_uuid=vm), make_port(
        mac='52:54:00:00:00:03', vm_uuid=vm)
    mgr.request_endpoints([first, second], ['ethernet'])
    assert mgr.ledger.guest_ports(vm) == sorted([first.port_id,
                                                 second.port_id])
    mgr.release_endpoint(first.port_id)
    assert mgr.ledger.guest_ports(vm) == [second.port_id]
    with pytest.raises(exception.InvalidField, match='domain'):
        mgr.guest_started('not-a-uuid')
    # A port built while no hypervisor was configured has no record yet:
    # catching up (monitor subscription, reconcile) makes it.
    mgr.ledger.forget_guest_links([second.port_id])
    assert mgr.guest_started(vm) == []
    adapter.running[vm] = {second.mac}
    assert mgr.apply_guest_links() == {second.port_id: True}
    assert mgr.guest_started(vm) == [second.port_id]


def test_read_only_commands_never_import_libvirt(tmp_path):
    """In a fresh interpreter (this one may have imported libvirt for
    other tests): the configured adapter is libvirt, yet listing, showing
    and a port without a guest load nothing of it."""
    import subprocess
    import sys
    for name, xml in NOOP_NETWORKS.items():
        write_network(str(tmp_path / 'nets'), name, xml)
    code = '''if True:
        import sys
        from vif_plug_dyn.cmd import cli
        base = ['--state-path', sys.argv[1], '--network-dir', sys.argv[2]]
        for args in (['endpoint', 'list'], ['network', 'list'],
                     ['capabilities'],
                     ['plug', '--port-id', sys.argv[3], '--mac',
                      '52:54:00:00:00:0a', '--network', 'red'],
                     ['endpoint', 'show', sys.argv[3]]):
            assert cli.main(base + args) == 0, args
        print(sorted(m for m in sys.modules if 'libvirt' in m))
    '''
    result = subprocess.run(
        [sys.executable, '-c', code, str(tmp_path / 'state'),
         str(tmp_path / 'nets'), str(uuid.uuid4())],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == '[]'
