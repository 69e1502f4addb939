"""The watcher's parts without a kernel: event parsing, the device view,
the decisions, the ledger map, and whole rounds on a fake event source
with a recording driver."""

import os
import socket
import threading
import time

import pytest
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from vif_plug_dyn import exception
from vif_plug_dyn import ledger as ledger_mod
from vif_plug_dyn import manager as manager_mod
from vif_plug_dyn.drivers import noop
from vif_plug_dyn.privsep import nlmsg
from vif_plug_dyn.runtime import watcher as watcher_mod
from vif_plug_dyn.tests.unit.conftest import FakeHost
from vif_plug_dyn.tests.unit.conftest import make_port
from vif_plug_dyn.tests.unit.conftest import write_network

NEW, GONE = watcher_mod.NEW, watcher_mod.GONE
Ev = watcher_mod.LinkEvent


# --- parsing -----------------------------------------------------------------

def _link_msg(mtype, index, name, family=0, stats=True):
    body = nlmsg._IFINFO.pack(family, 0, index, 0, 0)
    body += nlmsg.nla_str(nlmsg.IFLA_IFNAME, name)
    body += nlmsg.nla_u32(nlmsg.IFLA_MTU, 1500)
    if stats:
        body += nlmsg.nla(23, b'\0' * 192)  # an IFLA_STATS64-sized blob
    return nlmsg.message(mtype, 0, 0, body)


def test_parse_events_reads_index_and_name():
    buf = (_link_msg(nlmsg.RTM_NEWLINK, 7, 'up0') +
           _link_msg(nlmsg.RTM_DELLINK, 8, 'up1'))
    assert watcher_mod.parse_events(buf) == [Ev(NEW, 7, 'up0'),
                                             Ev(GONE, 8, 'up1')]


def test_parse_events_skips_bridge_port_and_other_messages():
    buf = (_link_msg(nlmsg.RTM_DELLINK, 9, 'tap1', family=socket.AF_BRIDGE)
           + nlmsg.message(nlmsg.RTM_NEWQDISC, 0, 0, b'\0' * 20)
           + nlmsg.message(nlmsg.RTM_NEWLINK, 0, 0, b'\0' * 4)
           + _link_msg(nlmsg.RTM_NEWLINK, 3, 'up0'))
    assert watcher_mod.parse_events(buf) == [Ev(NEW, 3, 'up0')]


def test_parse_events_of_pyroute2_encoded_message():
    """pyroute2 encodes independently: both must agree."""
    msg = ifinfmsg()
    msg['index'] = 42
    msg['attrs'] = [('IFLA_IFNAME', 'eth-x'), ('IFLA_MTU', 9000)]
    msg['header']['type'] = nlmsg.RTM_DELLINK
    msg.encode()
    data = bytes(msg.data[:msg['header']['length']])
    assert watcher_mod.parse_events(data) == [Ev(GONE, 42, 'eth-x')]


def test_parse_events_stops_at_a_truncated_message():
    whole = _link_msg(nlmsg.RTM_NEWLINK, 3, 'up0')
    assert watcher_mod.parse_events(whole + whole[:20]) == [
        Ev(NEW, 3, 'up0')]


# --- the device view ---------------------------------------------------------

def test_view_appeared_vanished():
    view = watcher_mod.LinkView({'up0': 2, 'up1': 3})
    delta = view.apply([Ev(GONE, 2, 'up0'), Ev(NEW, 4, 'up2')])
    assert (delta.appeared, delta.vanished, delta.bounced) == (
        {'up2'}, {'up0'}, set())
    assert view.links == {'up1': 3, 'up2': 4}


def test_view_bounce_in_one_burst_is_seen():
    view = watcher_mod.LinkView({'up0': 2})
    delta = view.apply([Ev(GONE, 2, 'up0'), Ev(NEW, 9, 'up0'),
                        Ev(NEW, 9, 'up0')])
    assert (delta.appeared, delta.vanished, delta.bounced) == (
        set(), set(), {'up0'})
    assert 'up0' in view and view.links['up0'] == 9


def test_view_new_index_without_dellink_is_a_bounce():
    view = watcher_mod.LinkView({'up0': 2})
    assert view.apply([Ev(NEW, 5, 'up0')]).bounced == {'up0'}


def test_view_change_events_are_not_changes():
    view = watcher_mod.LinkView({'up0': 2})
    delta = view.apply([Ev(NEW, 2, 'up0')] * 3)
    assert not delta.changed


def test_view_rename_takes_the_old_name_away():
    view = watcher_mod.LinkView({'up0': 2})
    delta = view.apply([Ev(NEW, 2, 'uplink')])
    assert (delta.appeared, delta.vanished) == ({'uplink'}, {'up0'})


def test_view_gone_of_unknown_and_created_then_deleted():
    view = watcher_mod.LinkView({})
    delta = view.apply([Ev(GONE, 2, 'ghost'), Ev(NEW, 3, 'brief'),
                        Ev(GONE, 3, 'brief')])
    assert not delta.changed and len(view) == 0


def test_view_replace_compares_indexes():
    view = watcher_mod.LinkView({'up0': 2, 'up1': 3, 'up2': 4})
    delta = view.replace({'up0': 2, 'up1': 30, 'up3': 5})
    assert (delta.appeared, delta.vanished, delta.bounced) == (
        {'up3'}, {'up2'}, {'up1'})


# --- decisions ---------------------------------------------------------------

OK, DEG, WAIT = ledger_mod.HEALTHY, ledger_mod.DEGRADED, ledger_mod.WAITING


def test_decide_cases():
    health = {'a': OK, 'b': OK, 'c': DEG, 'd': WAIT, 'e': DEG, 'f': OK,
              'g': OK}
    deps = {'a': ('up0',), 'b': ('up1',), 'c': ('up0',), 'd': ('up2',),
            'e': ('up1',), 'f': ('up0', 'up1'), 'g': ()}
    plan = watcher_mod.decide(health, deps, {'up0', 'up2'}, set(),
                              health)
    assert plan.lose == ['b', 'f']          # healthy, a dependency gone
    assert plan.restore == ['c', 'd']       # not healthy, all there
    assert plan.bounced == []
    # 'e' stays degraded (still missing), 'a' is fine, 'g' is not watched.


def test_decide_bounce_restores_healthy_ports():
    plan = watcher_mod.decide({'a': OK, 'b': OK}, {'a': ('up0',),
                                                   'b': ('up1',)},
                              {'up0', 'up1'}, {'up0'}, ['a', 'b'])
    assert (plan.restore, plan.bounced, plan.lose) == (['a'], ['a'], [])


def test_decide_only_examines_what_it_is_told():
    plan = watcher_mod.decide({'a': OK, 'b': DEG}, {'a': ('x',),
                                                    'b': ('y',)},
                              {'y'}, set(), ['a'])
    assert (plan.lose, plan.restore) == (['a'], [])


def test_decide_verify_restores_every_present_port():
    plan = watcher_mod.decide({'a': OK, 'b': OK}, {'a': ('x',),
                                                   'b': ('y',)},
                              {'x'}, set(), ['a', 'b'], verify=True)
    assert (plan.lose, plan.restore, plan.bounced) == (['b'], ['a'], [])
    assert not watcher_mod.Plan()


# --- a manager with a recording driver ---------------------------------------

NETWORKS = {
    'blue': "<network type='direct'><name>blue</name><driver name='rec'/>"
            "<forward mode='bridge'><interface dev='up0'/></forward>"
            "</network>",
    'green': "<network type='direct'><name>green</name>"
             "<driver name='rec'/><forward mode='bridge'>"
             "<interface dev='up1'/></forward></network>",
    'plain': "<network type='bridge'><name>plain</name>"
             "<driver name='rec'/><bridge name='br-p'/></network>",
}


class RecordingDriver(noop.NoopDriver):
    """The noop driver with dependencies (a direct network's first lower
    device), recording the runtime hooks."""

    def __init__(self, context):
        super().__init__(context)
        self.calls = []
        self.fail_restore = 0
        self.unhealed = set()

    def dependencies(self, endpoint, network):
        return tuple(network.lower_devices()[:1])

    def restore(self, endpoints_, network, plugged):
        self.calls.append(('restore', network.name,
                           sorted(e.port_id for e in endpoints_),
                           sorted(plugged)))
        if self.fail_restore:
            self.fail_restore -= 1
            raise exception.NetlinkOperationFailed(
                operation='create_macvlan', device='x', reason='injected')
        return set(self.unhealed) or None

    def lost(self, endpoints_, network):
        self.calls.append(('lost', network.name,
                           sorted(e.port_id for e in endpoints_)))


class PresentHost(FakeHost):
    """A host whose devices are a set the test changes."""

    def __init__(self, present):
        super().__init__()
        self.present = present

    def exists(self, name):
        return name in self.present


class FakeEvents:
    """Stands in for :class:`LinkEvents`: the test queues events (or a
    loss) and the devices a dump returns; a pipe makes poll() work."""

    def __init__(self, present):
        self.present = present
        self.index = {name: n + 2 for n, name in enumerate(sorted(present))}
        self.queue = []
        self.lose_next = False
        self.dumps = 0
        self._r, self._w = os.pipe2(os.O_NONBLOCK)

    def fileno(self):
        return self._r

    def add(self, name):
        self.index[name] = max(self.index.values(), default=1) + 1
        self.present.add(name)
        self._push(Ev(NEW, self.index[name], name))

    def remove(self, name):
        self.present.discard(name)
        self._push(Ev(GONE, self.index[name], name))

    def _push(self, event):
        self.queue.append(event)
        os.write(self._w, b'x')

    def read(self):
        try:
            os.read(self._r, 65536)
        except BlockingIOError:
            pass
        events, self.queue = self.queue, []
        lost, self.lose_next = self.lose_next, False
        return ([] if lost else events), lost

    def dump(self):
        self.dumps += 1
        return {name: self.index[name] for name in self.present}

    def close(self):
        os.close(self._r)
        os.close(self._w)


@pytest.fixture
def present():
    return {'up0', 'up1', 'lo'}


@pytest.fixture
def mgr(conf, tmp_path, present):
    for name, xml in NETWORKS.items():
        write_network(str(tmp_path / 'networks'), name, xml)
    manager = manager_mod.EndpointManager(conf, host=PresentHost(present))
    driver = RecordingDriver(manager.context)
    manager.drivers._drivers['rec'] = driver
    manager.rec = driver
    yield manager
    manager.close()


@pytest.fixture
def events(present):
    return FakeEvents(present)


@pytest.fixture
def watcher(mgr, events):
    w = watcher_mod.Watcher(mgr, netns=None, settle=0.001,
                            events_factory=lambda: events)
    yield w
    w.close()


def _ports(mgr, network, count, **kw):
    made = [make_port(network, mac='52:54:00:00:01:%02x' % n)
            for n in range(count)]
    mgr.request_endpoints(made, ['ethernet'], **kw)
    return [p.port_id for p in made]


def _health(mgr, ids):
    return {mgr.ledger.get_port(i).health for i in ids}


def test_manager_records_waiting_when_a_dependency_is_missing(mgr, present):
    present.discard('up0')
    blue = _ports(mgr, 'blue', 2)
    green = _ports(mgr, 'green', 1)
    plain = _ports(mgr, 'plain', 1)
    assert _health(mgr, blue) == {WAIT}
    assert _health(mgr, green + plain) == {OK}
    # A move puts the health where the cable goes.
    mgr.connect(blue[0], 'green')
    assert mgr.ledger.get_port(blue[0]).health == OK
    mgr.connect(green[0], 'blue')
    assert mgr.ledger.get_port(green[0]).health == WAIT


def test_start_restores_present_and_degrades_missing(mgr, watcher,
                                                     present):
    blue = _ports(mgr, 'blue', 2)
    green = _ports(mgr, 'green', 2)
    present.discard('up1')
    report = watcher.run_once(0)
    assert report.resynced and report.resyncs == 1
    assert sorted(report.degraded) == sorted(green)
    assert sorted(report.restored) == sorted(blue)
    assert ('lost', 'green', sorted(green)) in mgr.rec.calls
    assert ('restore', 'blue', sorted(blue), sorted(blue)) in mgr.rec.calls
    assert _health(mgr, green) == {DEG}


def test_loss_and_return_one_batch_per_network(mgr, watcher, events):
    blue = _ports(mgr, 'blue', 3)
    green = _ports(mgr, 'green', 2)
    unplugged = _ports(mgr, 'blue', 1, connected=False)
    watcher.run_once(0)
    mgr.rec.calls.clear()
    events.remove('up0')
    events.remove('up1')
    report = watcher.run_once(1)
    assert report.events == 2 and not report.resynced
    assert sorted(report.degraded) == sorted(blue + green + unplugged)
    assert sorted(mgr.rec.calls) == [
        ('lost', 'blue', sorted(blue + unplugged)),
        ('lost', 'green', sorted(green))]
    assert _health(mgr, blue + green) == {DEG}
    mgr.rec.calls.clear()
    events.add('up0')
    events.add('up1')
    report = watcher.run_once(1)
    assert report.restore_calls == {'blue': 1, 'green': 1}
    assert mgr.rec.calls == [
        ('restore', 'blue', sorted(blue + unplugged), sorted(blue)),
        ('restore', 'green', sorted(green), sorted(green))]
    assert _health(mgr, blue + green + unplugged) == {OK}
    # Nothing else happens: no event, no work.
    mgr.rec.calls.clear()
    assert watcher.run_once(0).events == 0 and mgr.rec.calls == []


def test_events_of_other_devices_do_nothing(mgr, watcher, events):
    _ports(mgr, 'blue', 2)
    watcher.run_once(0)
    mgr.rec.calls.clear()
    events.add('tap1')
    events.remove('tap1')
    report = watcher.run_once(1)
    assert report.events == 2 and mgr.rec.calls == []


def test_bounce_within_one_burst_is_tidied_and_restored(mgr, watcher,
                                                        events):
    blue = _ports(mgr, 'blue', 2)
    watcher.run_once(0)
    mgr.rec.calls.clear()
    events.remove('up0')
    events.add('up0')
    report = watcher.run_once(1)
    assert report.degraded == [] and sorted(report.restored) == sorted(blue)
    assert mgr.rec.calls == [('lost', 'blue', sorted(blue)),
                             ('restore', 'blue', sorted(blue),
                              sorted(blue))]


def test_burst_is_coalesced_while_events_keep_coming(mgr, events):
    """Events arriving within the settle time join the same round."""
    blue = _ports(mgr, 'blue', 1)
    w = watcher_mod.Watcher(mgr, netns=None, settle=0.2,
                            events_factory=lambda: events)
    try:
        w.run_once(0)
        mgr.rec.calls.clear()
        events.remove('up0')

        def later():
            time.sleep(0.05)
            events.add('up0')
        thread = threading.Thread(target=later)
        thread.start()
        report = w.run_once(1)
        thread.join()
        assert report.events == 2 and report.restored == blue
        assert [c[0] for c in mgr.rec.calls] == ['lost', 'restore']
    finally:
        w.close()


def test_max_hold_ends_an_endless_burst(mgr, events):
    w = watcher_mod.Watcher(mgr, netns=None, settle=0.05, max_hold=0.1,
                            events_factory=lambda: events)
    stop = threading.Event()

    def chatter():
        while not stop.is_set():
            events.add('noise')
            time.sleep(0.01)
    try:
        w.run_once(0)
        thread = threading.Thread(target=chatter)
        thread.start()
        started = time.monotonic()
        w.run_once(1)
        elapsed = time.monotonic() - started
        stop.set()
        thread.join()
        assert elapsed < 0.5
    finally:
        w.close()


def test_waiting_port_is_connected_when_its_device_appears(mgr, watcher,
                                                           events, present):
    present.discard('up0')
    blue = _ports(mgr, 'blue', 2)
    assert watcher.run_once(0).restored == []
    events.add('up0')
    report = watcher.run_once(1)
    assert sorted(report.restored) == sorted(blue)
    assert _health(mgr, blue) == {OK}


def test_port_requested_after_start_is_watched(mgr, watcher, events):
    watcher.run_once(0)
    blue = _ports(mgr, 'blue', 1)
    events.remove('up0')
    assert watcher.run_once(1).degraded == blue


def test_ledger_changed_while_device_appeared(mgr, watcher, events,
                                              present):
    """A port recorded waiting although its device already appeared (the
    device came between the requester's check and its ledger write) is
    connected on the next round."""
    watcher.run_once(0)
    present.discard('up0')
    blue = _ports(mgr, 'blue', 1)
    events.add('up0')
    watcher.run_once(1)            # the event and the new record together
    assert _health(mgr, blue) == {OK}


def test_lost_events_resync_from_a_dump(mgr, watcher, events, present):
    blue = _ports(mgr, 'blue', 2)
    green = _ports(mgr, 'green', 2)
    watcher.run_once(0)
    mgr.rec.calls.clear()
    events.remove('up0')           # its event will be lost
    events.remove('up1')
    events.add('up1')              # bounced, events lost
    events.lose_next = True
    report = watcher.run_once(1)
    assert report.resynced and report.events == 0 and events.dumps == 2
    assert sorted(report.degraded) == sorted(blue)
    assert sorted(report.restored) == sorted(green)
    assert ('lost', 'green', sorted(green)) in mgr.rec.calls


def test_failed_restore_is_retried(mgr, events, present, monkeypatch):
    monkeypatch.setattr(watcher_mod, 'RETRY_DELAYS', (0.05, 0.1))
    w = watcher_mod.Watcher(mgr, netns=None, settle=0.001,
                            events_factory=lambda: events)
    try:
        present.discard('up0')
        blue = _ports(mgr, 'blue', 1)
        w.run_once(0)
        mgr.rec.fail_restore = 1
        events.add('up0')
        report = w.run_once(1)
        assert report.failed == blue and _health(mgr, blue) == {WAIT}
        report = w.run_once(2)         # no event: the retry is due
        assert report.restored == blue and _health(mgr, blue) == {OK}
    finally:
        w.close()


def test_unhealable_ports_stay_degraded(mgr, watcher, events):
    blue = _ports(mgr, 'blue', 2)
    watcher.run_once(0)
    events.remove('up0')
    watcher.run_once(1)
    mgr.rec.unhealed = {blue[0]}
    events.add('up0')
    report = watcher.run_once(1)
    assert report.restored == [blue[1]]
    assert mgr.ledger.get_port(blue[0]).health == DEG


class FakeGuests:
    def __init__(self):
        self.calls = []

    def set_link_state(self, domain, mac, up):
        self.calls.append((domain, mac, up))


def test_guest_link_follows_health(mgr, watcher, events):
    guests = FakeGuests()
    mgr.guest.hypervisor = guests
    port = make_port('blue', vm_uuid='3d2b5e9c-1111-4c3e-9a0e-4f5d6e7f8a9b')
    mgr.request_endpoint(port, ['ethernet'])
    watcher.run_once(0)
    guests.calls.clear()
    events.remove('up0')
    watcher.run_once(1)
    assert guests.calls == [(port.vm_uuid, port.mac, False)]
    events.add('up0')
    watcher.run_once(1)
    assert guests.calls[-1] == (port.vm_uuid, port.mac, True)
    # Forced down: the port heals, the guest stays down.
    mgr.set_link_state(port.port_id, 'down')
    events.remove('up0')
    watcher.run_once(1)
    events.add('up0')
    watcher.run_once(1)
    assert guests.calls[-1] == (port.vm_uuid, port.mac, False)


def test_released_port_is_forgotten(mgr, watcher, events):
    blue = _ports(mgr, 'blue', 1)
    watcher.run_once(0)
    mgr.release_endpoints(blue)
    mgr.rec.calls.clear()
    events.remove('up0')
    assert watcher.run_once(1).degraded == [] and mgr.rec.calls == []
    assert watcher.map.by_device == {}


def test_thread_start_stop(mgr, events):
    blue = _ports(mgr, 'blue', 1)
    w = watcher_mod.Watcher(mgr, netns=None, settle=0.001,
                            events_factory=lambda: events)
    w.start()
    try:
        events.remove('up0')
        deadline = time.monotonic() + 5
        while _health(mgr, blue) != {DEG} and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _health(mgr, blue) == {DEG}
    finally:
        started = time.monotonic()
        w.stop()
        assert time.monotonic() - started < 2
        w.close()
    assert w.total.degraded == blue


# --- the ledger map ----------------------------------------------------------

def test_map_rereads_only_changed_records(mgr, monkeypatch):
    blue = _ports(mgr, 'blue', 3)
    dep_map = watcher_mod.DependencyMap(mgr)
    assert dep_map.refresh() == set(blue)
    assert dep_map.dependents(['up0']) == set(blue)
    assert dep_map.refresh() == set()        # nothing committed since
    read = []
    real = mgr.ledger.get_ports
    monkeypatch.setattr(mgr.ledger, 'get_ports',
                        lambda ids: read.append(sorted(ids)) or real(ids))
    mgr.connect(blue[0], 'green')
    assert dep_map.refresh() == {blue[0]}
    assert read == [[blue[0]]]
    assert dep_map.dependents(['up1']) == {blue[0]}
    assert dep_map.dependents(['up0']) == set(blue[1:])
    dep_map.close()


def test_change_probe_sees_other_connections(tmp_path):
    ledger = ledger_mod.Ledger(str(tmp_path))
    probe = ledger.change_probe()
    try:
        assert probe.changed() is True
        assert probe.changed() is False
        port = make_port('red')
        from vif_plug_dyn import ports
        ledger.begin_port(ports.EndpointRequest(port=port),
                          ledger_mod.PLUGGED)
        assert probe.changed() is True
        assert probe.changed() is False
        assert ledger.port_stamps() == {}     # still building
        ledger.update_port(port.port_id, state=ledger_mod.ACTIVE)
        assert probe.changed() is True
        assert list(ledger.port_stamps()) == [port.port_id]
        assert [r.port.port_id for r in ledger.get_ports(
            [port.port_id, 'unknown'])] == [port.port_id]
    finally:
        probe.close()
        ledger.close()


def test_get_ports_in_slices(tmp_path):
    from vif_plug_dyn import ports
    ledger = ledger_mod.Ledger(str(tmp_path))
    ids = []
    with ledger.transaction():
        for n in range(1200):
            port = make_port('red', mac='52:54:00:00:%02x:%02x' % (
                n // 256, n % 256))
            ledger.begin_port(ports.EndpointRequest(port=port),
                              ledger_mod.PLUGGED)
            ids.append(port.port_id)
    assert len(ledger.get_ports(ids + ids)) == 1200
    ledger.close()


# --- the namespace socket ----------------------------------------------------

def test_in_netns_none_runs_here():
    assert watcher_mod.in_netns(None, lambda: threading.get_ident()) == \
        threading.get_ident()


def test_in_netns_errors_reach_the_caller(tmp_path, monkeypatch):
    monkeypatch.setattr(watcher_mod, 'NETNS_RUN_DIR', str(tmp_path))
    with pytest.raises(FileNotFoundError):
        watcher_mod.in_netns('nosuchns', lambda: 1)
    with pytest.raises(exception.InvalidField):
        watcher_mod.in_netns('../etc', lambda: 1)


def test_in_netns_enters_namespace_in_another_thread(tmp_path,
                                                     monkeypatch):
    """setns() is called on the helper thread only, with the namespace's
    descriptor and CLONE_NEWNET."""
    (tmp_path / 'ns1').write_text('')
    monkeypatch.setattr(watcher_mod, 'NETNS_RUN_DIR', str(tmp_path))
    seen = []

    def fake_setns(fd, nstype):
        seen.append((os.readlink('/proc/self/fd/%d' % fd), nstype,
                     threading.get_ident()))
    monkeypatch.setattr(watcher_mod, '_setns', fake_setns)
    here = threading.get_ident()
    got = watcher_mod.in_netns('ns1', threading.get_ident)
    assert seen == [(str(tmp_path / 'ns1'), watcher_mod.CLONE_NEWNET, got)]
    assert got != here


def test_link_events_unprivileged_subscription_and_dump():
    """The socket needs no privilege: subscribe here, dump here."""
    source = watcher_mod.LinkEvents(None, rcvbuf=65536)
    try:
        links = source.dump()
        assert 'lo' in links and links['lo'] >= 1
        assert source.read()[1] is False
    finally:
        source.close()


def test_changed_record_is_examined_without_an_event(mgr, watcher, events,
                                                     present):
    """The requester saw no device, the watcher had already seen it
    appear: the new waiting record alone is enough to connect it."""
    watcher.run_once(0)
    present.discard('up0')         # what the requester's check sees
    blue = _ports(mgr, 'blue', 1)
    present.add('up0')
    assert _health(mgr, blue) == {WAIT}
    report = watcher.run_once(0)
    assert report.events == 0 and report.restored == blue


def _later(delay, action):
    thread = threading.Timer(delay, action)
    thread.start()
    return thread


def test_two_watched_devices_make_a_burst(mgr, events):
    """Two watched devices in one round switch to the burst settle time,
    which gathers a third event that the short one would have missed."""
    _ports(mgr, 'blue', 1)
    _ports(mgr, 'green', 1)
    w = watcher_mod.Watcher(mgr, netns=None, settle=0.005,
                            burst_settle=0.2, events_factory=lambda: events)
    try:
        w.run_once(0)
        events.remove('up0')
        events.remove('up1')
        timer = _later(0.05, lambda: events.add('up0'))
        report = w.run_once(1)
        timer.join()
        assert report.events == 3
        assert report.restore_calls == {'blue': 1}
    finally:
        w.close()


def test_lone_device_acts_after_the_short_settle(mgr, events):
    _ports(mgr, 'blue', 1)
    w = watcher_mod.Watcher(mgr, netns=None, settle=0.005,
                            burst_settle=0.5, events_factory=lambda: events)
    try:
        w.run_once(0)
        events.remove('up0')
        started = time.monotonic()
        report = w.run_once(1)
        assert report.events == 1 and time.monotonic() - started < 0.3
    finally:
        w.close()


def test_round_on_the_heels_of_the_last_is_a_burst(mgr, events):
    """Deletions come one per 16 ms or so: a round that starts soon after
    the previous one's watched events uses the burst settle time."""
    _ports(mgr, 'blue', 1)
    _ports(mgr, 'green', 1)
    w = watcher_mod.Watcher(mgr, netns=None, settle=0.005,
                            burst_settle=0.1, events_factory=lambda: events)
    try:
        w.run_once(0)
        events.remove('up0')
        assert w.run_once(1).events == 1          # alone: acted at once
        events.remove('up1')
        timer = _later(0.04, lambda: events.add('up0'))
        report = w.run_once(1)
        timer.join()
        assert report.events == 2
    finally:
        w.close()


def test_thread_reports_its_start_round_at_once(mgr, events):
    """The first round (read everything, restore) is reported as soon as
    it is done, not with the first event."""
    blue = _ports(mgr, 'blue', 1)
    seen = threading.Event()
    reports = []

    def on_report(report):
        reports.append(report)
        seen.set()
    w = watcher_mod.Watcher(mgr, netns=None, events_factory=lambda: events,
                            on_report=on_report)
    w.start()
    try:
        assert seen.wait(5)
        assert reports[0].resynced and reports[0].restored == blue
        assert reports[0].finished > 0
    finally:
        w.close()


def test_report_callback_errors_do_not_stop_the_watcher(mgr, watcher,
                                                       events):
    _ports(mgr, 'blue', 1)

    def broken(report):
        raise RuntimeError('observer bug')
    watcher.on_report = broken
    watcher.run_once(0)
    events.remove('up0')
    assert len(watcher.run_once(1).degraded) == 1


def test_port_ids_of_a_network(mgr):
    blue = _ports(mgr, 'blue', 2)
    _ports(mgr, 'green', 1)
    assert mgr.ledger.port_ids('blue') == set(blue)
    assert mgr.ledger.port_ids('nowhere') == set()
