"""The watcher: heal endpoints when the host interfaces under them come
and go.

One rtnetlink socket subscribed to the link group (``RTMGRP_LINK``) tells
the watcher, as it happens, that a device appeared (``RTM_NEWLINK``) or
vanished (``RTM_DELLINK``). The drivers say which host interfaces each
endpoint needs (:meth:`~vif_plug_dyn.drivers.base.NetworkDriver.
dependencies`); the watcher keeps that map from the ledger and:

* when a dependency vanishes, marks its ports ``degraded`` (one ledger
  transaction), lets their drivers tidy up (:meth:`~vif_plug_dyn.drivers.
  base.NetworkDriver.lost`, one call per network) and drops the guests'
  links (the link follows the health); ports that only miss a tap their
  hypervisor makes and deletes with the guest are ``waiting`` instead
  (:meth:`~vif_plug_dyn.drivers.base.NetworkDriver.waits_for`);
* when a dependency appears (back, or for the first time: ports
  ``waiting`` for a lower device that did not exist when they were
  requested), rebuilds the host side of its ports (:meth:`~vif_plug_dyn.
  drivers.base.NetworkDriver.restore`, one call per network), marks them
  ``ok`` and raises the guests' links again;
* when the kernel dropped events because the socket's receive buffer was
  full (``ENOBUFS``), resynchronises from one dump of the links: whatever
  the ledger's health says that the dump contradicts is lost or restored.

Events that arrive together are coalesced: the socket is drained, and
drained again for as long as events keep coming within a short settle
time, before anything is done; a hundred lower devices coming back cost
one restore call per network, not a hundred.

The watcher runs in the agent (:meth:`Watcher.start` starts a thread) or
on its own (``vif-plug-dyn watch``). Several watchers on one ledger are
harmless (every step is idempotent) but wasteful: run one per host.

Network namespaces: with ``[vif_plug_dyn] netns`` set, the socket must be
opened inside that namespace. An unprivileged process cannot be started
there the way the privileged helper is, so the socket is created in a
short-lived thread that enters the namespace (``setns``) and ends; a
socket keeps the namespace it was created in. This needs CAP_SYS_ADMIN,
which the tests and the demo have. In production the agent runs in the
host's namespace, ``netns`` is unset and no ``setns`` happens.
"""

import ctypes
import ctypes.util
import dataclasses
import errno
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Container, Iterable, Mapping
from typing import Any, TypeVar

from oslo_log import log as logging

from vif_plug_dyn import exception
from vif_plug_dyn import ledger as ledger_mod
from vif_plug_dyn import opts
from vif_plug_dyn import validate
from vif_plug_dyn.privsep import netlink
from vif_plug_dyn.privsep import nlmsg

LOG = logging.getLogger(__name__)

#: rtnetlink multicast group of link changes (linux/rtnetlink.h).
RTMGRP_LINK = 0x1
CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = '/run/netns'
#: Receive buffer of the event socket (bytes asked for; the kernel doubles
#: it for its bookkeeping).
DEFAULT_RCVBUF = 4 * 1024 * 1024
#: Seconds to keep draining while events keep arriving.
#: NOTE(vpd): devices made in one burst (``ip -batch``, a driver bringing
#: its ports back) come well under a millisecond apart; 2 ms coalesces
#: them and keeps a single repair within the 20 ms the runtime aims for.
DEFAULT_SETTLE = 0.002
#: Seconds of quiet that end a burst once events about two or more
#: watched devices came in one round.
#: NOTE(vpd): measured here, ``ip -batch`` creates 100 veths 0.3-5 ms
#: apart but deletes them 16 ms apart (up to 80 ms: each unregistration
#: waits for RCU); a lone device is acted on after DEFAULT_SETTLE, a
#: burst is gathered with this longer one.
DEFAULT_BURST_SETTLE = 0.025
#: Longest a burst is held back before it is acted on (seconds).
DEFAULT_MAX_HOLD = 0.25
#: Seconds before a failed repair is tried again, doubling up to the last.
RETRY_DELAYS = (1.0, 30.0)
#: Datagrams read in one drain at most (the rest waits for the next).
_MAX_DRAIN = 100000
_RECV = 64 * 1024

NEW = 'new'
GONE = 'gone'

_IFINFO = struct.Struct('=BxHiII')
_T = TypeVar('_T')


# --- events ------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class LinkEvent:
    """One link change as the kernel announced it.

    :ivar kind: ``new`` (created or changed) or ``gone`` (deleted).
    :ivar index: the interface index.
    :ivar name: the interface name.
    """

    kind: str
    index: int
    name: str


def parse_events(buf: nlmsg.Buffer) -> list[LinkEvent]:
    """Read the link events of one datagram.

    Only what identifies a device is read (index and name); the rest of
    the message (statistics are most of it) is skipped.

    NOTE(vpd): a bridge also announces its ports' changes on the link
    group, as RTM_NEWLINK/RTM_DELLINK of family AF_BRIDGE; an
    RTM_DELLINK of that family means "left the bridge", not "deleted",
    and is ignored with every other family but AF_UNSPEC.
    """
    found = []
    for mtype, _flags, _seq, start, end in nlmsg.messages(buf):
        if mtype not in (nlmsg.RTM_NEWLINK, nlmsg.RTM_DELLINK) or \
                end - start < _IFINFO.size:
            continue
        family, _type, index, _fl, _change = _IFINFO.unpack_from(buf, start)
        if family != socket.AF_UNSPEC:
            continue
        name = nlmsg.link_name(buf, start, end)
        if name is None:
            continue
        found.append(LinkEvent(NEW if mtype == nlmsg.RTM_NEWLINK else GONE,
                               index, name))
    return found


@dataclasses.dataclass
class Delta:
    """How the set of devices changed.

    :ivar appeared: names that did not exist and do now.
    :ivar vanished: names that existed and do not now.
    :ivar bounced: names that exist before and after, but went away in
        between (deleted and created again, or their index changed):
        whatever hung off them died with them.
    """

    appeared: set[str] = dataclasses.field(default_factory=set)
    vanished: set[str] = dataclasses.field(default_factory=set)
    bounced: set[str] = dataclasses.field(default_factory=set)

    @property
    def changed(self) -> set[str]:
        """Every name whose device changed in a way that matters."""
        return self.appeared | self.vanished | self.bounced


class LinkView:
    """The devices of the namespace, by name and index, as the events
    (or a dump) tell them.

    :param links: ``{name: index}`` to start from.
    """

    def __init__(self, links: Mapping[str, int] | None = None) -> None:
        self.links: dict[str, int] = dict(links or {})
        self._names = {index: name for name, index in self.links.items()}

    def __contains__(self, name: object) -> bool:
        return name in self.links

    def __len__(self) -> int:
        return len(self.links)

    def apply(self, events: Iterable[LinkEvent]) -> Delta:
        """Apply events in order.

        :returns: the difference between before and after.
        """
        before: dict[str, int | None] = {}
        went: set[str] = set()

        def touch(name: str) -> None:
            if name not in before:
                before[name] = self.links.get(name)

        for event in events:
            touch(event.name)
            if event.kind == GONE:
                if self.links.get(event.name) == event.index or \
                        self._names.get(event.index) == event.name:
                    self.links.pop(event.name, None)
                    self._names.pop(event.index, None)
                went.add(event.name)
                continue
            old = self._names.get(event.index)
            if old is not None and old != event.name:
                # NOTE(vpd): a rename: no RTM_DELLINK says the old name
                # is gone.
                touch(old)
                went.add(old)
                self.links.pop(old, None)
            index = self.links.get(event.name)
            if index is not None and index != event.index:
                went.add(event.name)
                self._names.pop(index, None)
            self.links[event.name] = event.index
            self._names[event.index] = event.name
        return self._delta(before, went)

    def replace(self, links: Mapping[str, int]) -> Delta:
        """Replace the view with a dump.

        :returns: the difference; a name whose index changed counts as
            bounced.
        """
        before: dict[str, int | None] = {
            name: self.links.get(name) for name in set(self.links) | set(
                links)}
        self.links = dict(links)
        self._names = {index: name for name, index in self.links.items()}
        return self._delta(before, set())

    def _delta(self, before: Mapping[str, int | None],
               went: Container[str]) -> Delta:
        delta = Delta()
        for name, was in before.items():
            now = self.links.get(name)
            if was is None and now is not None:
                delta.appeared.add(name)
            elif was is not None and now is None:
                delta.vanished.add(name)
            elif was is not None and (name in went or was != now):
                delta.bounced.add(name)
        return delta


# --- decisions ---------------------------------------------------------------

@dataclasses.dataclass
class Plan:
    """What to do with the ports examined.

    :ivar lose: ports healthy in the ledger whose dependency is missing.
    :ivar restore: ports whose dependencies all exist but which are not
        healthy, or whose dependency bounced.
    :ivar bounced: those of ``restore`` that are healthy in the ledger
        but lost what hung off a dependency that bounced (they are tidied
        with ``lost()`` before they are restored).
    """

    lose: list[str] = dataclasses.field(default_factory=list)
    restore: list[str] = dataclasses.field(default_factory=list)
    bounced: list[str] = dataclasses.field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.lose or self.restore)


def decide(health: Mapping[str, str], deps: Mapping[str, tuple[str, ...]],
           present: Container[str], bounced: Container[str],
           examine: Iterable[str], verify: bool = False) -> Plan:
    """Compare what the ledger says with what exists.

    :param health: ``{port_id: health}`` of the known ports.
    :param deps: ``{port_id: dependencies}``.
    :param present: the names of the devices that exist.
    :param bounced: names of devices that went away and came back.
    :param examine: the ports to look at (others are left alone).
    :param verify: restore every examined port whose dependencies exist,
        healthy or not (nothing is known of what happened before: a
        start).
    :returns: the plan.
    """
    plan = Plan()
    for port_id in sorted(set(examine)):
        wanted = deps.get(port_id)
        state = health.get(port_id)
        if not wanted or state is None:
            continue
        if all(name in present for name in wanted):
            if state != ledger_mod.HEALTHY or verify:
                plan.restore.append(port_id)
            elif any(name in bounced for name in wanted):
                plan.restore.append(port_id)
                plan.bounced.append(port_id)
        elif state == ledger_mod.HEALTHY:
            plan.lose.append(port_id)
    return plan


# --- the socket --------------------------------------------------------------

def in_netns(netns: str | None, factory: Callable[[], _T]) -> _T:
    """Run ``factory`` inside network namespace ``netns`` (by name, as
    under ``/run/netns``) and return what it made.

    It runs in a thread of its own that enters the namespace and ends:
    the namespace of the caller (and of every other thread) is never
    changed, and sockets made by ``factory`` stay in ``netns`` for their
    whole life. ``None`` runs ``factory`` here.

    :raises InvalidField: a bad namespace name.
    :raises OSError: the namespace does not exist, or entering it was
        refused (it needs CAP_SYS_ADMIN).
    """
    if netns is None:
        return factory()
    path = os.path.join(NETNS_RUN_DIR, validate.netns_name(netns))
    outcome: dict[str, Any] = {}

    def enter_and_make() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(fd, CLONE_NEWNET)
            finally:
                os.close(fd)
            outcome['value'] = factory()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            outcome['error'] = exc

    thread = threading.Thread(target=enter_and_make, name='vpd-netns-' +
                              netns, daemon=True)
    thread.start()
    thread.join()
    if 'error' in outcome:
        raise outcome['error']
    return outcome['value']  # type: ignore[no-any-return]


def _setns(fd: int, nstype: int) -> None:
    setns = getattr(os, 'setns', None)
    if setns is not None:
        setns(fd, nstype)
        return
    # NOTE(vpd): os.setns() arrived in Python 3.12; before, libc's.
    libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6',
                       use_errno=True)
    if libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, 'setns: %s' % os.strerror(err))


class LinkEvents:
    """The event socket (link group) and a socket for dumps, both in the
    namespace the watcher serves.

    :param netns: the namespace (``None``: this process's).
    :param rcvbuf: the event socket's receive buffer in bytes; a small one
        loses events under load (tests force ``ENOBUFS`` that way).
    :raises OSError: a socket could not be opened.
    """

    def __init__(self, netns: str | None = None,
                 rcvbuf: int = DEFAULT_RCVBUF) -> None:
        self.netns = netns
        self.events, self.dumper = in_netns(
            netns, lambda: _open_pair(rcvbuf))
        self._dump = netlink.RtnlSocket(self.dumper)
        self._buf = bytearray(_RECV)

    def fileno(self) -> int:
        """The event socket's descriptor (for poll)."""
        return self.events.fileno()

    def read(self) -> tuple[list[LinkEvent], bool]:
        """Read every event queued now, without waiting.

        :returns: ``(events, lost)``; ``lost`` is true when the kernel
            reported dropped events (``ENOBUFS``) meanwhile.
        """
        found: list[LinkEvent] = []
        lost = False
        view = memoryview(self._buf)
        for _ in range(_MAX_DRAIN):
            try:
                size = self.events.recv_into(self._buf, 0,
                                             socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    lost = True
                    continue
                raise
            found += parse_events(view[:size])
        return found, lost

    def dump(self) -> dict[str, int]:
        """Every device of the namespace, ``{name: index}``, from one
        kernel dump.

        :raises OSError: the kernel refused the dump.
        """
        links: dict[str, int] = {}

        def visit(buf: memoryview, start: int, end: int) -> None:
            index = _IFINFO.unpack_from(buf, start)[2]
            name = nlmsg.link_name(buf, start, end)
            if name is not None:
                links[name] = index

        self._dump.dump(nlmsg.dumplinks, visit)
        return links

    def close(self) -> None:
        """Close both sockets."""
        self.events.close()
        self.dumper.close()


def _open_pair(rcvbuf: int) -> tuple[socket.socket, socket.socket]:
    events = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW |
                           socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK,
                           netlink.NETLINK_ROUTE)
    try:
        try:
            # NOTE(vpd): past net.core.rmem_max only CAP_NET_ADMIN may
            # grow the buffer; without it the kernel caps SO_RCVBUF.
            events.setsockopt(socket.SOL_SOCKET, netlink.SO_RCVBUFFORCE,
                              rcvbuf)
        except OSError:
            events.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        events.bind((0, RTMGRP_LINK))
        dumper = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW |
                               socket.SOCK_CLOEXEC, netlink.NETLINK_ROUTE)
    except BaseException:
        events.close()
        raise
    try:
        dumper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                          DEFAULT_RCVBUF)
        dumper.bind((0, 0))
    except BaseException:
        events.close()
        dumper.close()
        raise
    return events, dumper


# --- the ledger's side -------------------------------------------------------

class DependencyMap:
    """Which active port needs which host interfaces, kept from the
    ledger.

    Re-reading a thousand records is tens of milliseconds; the map only
    re-reads when the ledger's change probe says someone committed, and
    then only the records whose change time moved.

    :param manager: the endpoint manager (ledger, networks, drivers).
    """

    def __init__(self, manager: Any) -> None:
        self.manager = manager
        self.records: dict[str, ledger_mod.PortRecord] = {}
        self.deps: dict[str, tuple[str, ...]] = {}
        self.by_device: dict[str, set[str]] = {}
        self._probe: ledger_mod.ChangeProbe | None = None

    def refresh(self, force: bool = False) -> set[str]:
        """Catch up with the ledger.

        :param force: re-read every record.
        :returns: the ports added or changed since the last look.
        """
        ledger = self.manager.ledger
        if self._probe is None:
            self._probe = ledger.change_probe()
        if not self._probe.changed() and not force:
            return set()
        stamps = ledger.port_stamps()
        for port_id in set(self.records) - set(stamps):
            self._drop(port_id)
        stale = [port_id for port_id, stamp in stamps.items()
                 if force or port_id not in self.records or
                 self.records[port_id].updated != stamp]
        records = ledger.get_ports(stale) if stale else []
        self.accept(records)
        return {r.port.port_id for r in records}

    def accept(self, records: Iterable[ledger_mod.PortRecord]) -> None:
        """Take fresher records (read or written by the watcher)."""
        for record in records:
            port_id = record.port.port_id
            known = self.records.get(port_id)
            if record.state != ledger_mod.ACTIVE or record.endpoint is None:
                self._drop(port_id)
                continue
            self.records[port_id] = record
            if known is not None and known.endpoint == record.endpoint and \
                    known.network == record.network and \
                    known.cable == record.cable:
                # NOTE(vpd): only its health (the watcher's own write)
                # or link changed: what it depends on did not.
                continue
            self._set_deps(port_id, self._dependencies(record))

    def fresh(self, port_ids: list[str]) -> list[ledger_mod.PortRecord]:
        """The current records of ``port_ids`` (the active ones): the
        known ones whose change time did not move, the others read
        again."""
        stamps = self.manager.ledger.port_stamps(port_ids)
        for port_id in set(port_ids) - set(stamps):
            self._drop(port_id)
        same = [self.records[i] for i, stamp in stamps.items()
                if i in self.records and self.records[i].updated == stamp]
        stale = [i for i in stamps if i not in self.records or
                 self.records[i].updated != stamps[i]]
        return same + (self.manager.ledger.get_ports(stale) if stale
                       else [])

    def dependents(self, names: Iterable[str]) -> set[str]:
        """The ports that need any of ``names``."""
        found: set[str] = set()
        for name in names:
            found |= self.by_device.get(name, set())
        return found

    def health(self) -> dict[str, str]:
        """``{port_id: health}`` of the ports that have dependencies."""
        return {port_id: self.records[port_id].health
                for port_id in self.deps}

    def close(self) -> None:
        """Close the ledger probe."""
        if self._probe is not None:
            self._probe.close()
            self._probe = None

    def _dependencies(self, record: ledger_mod.PortRecord
                      ) -> tuple[str, ...]:
        assert record.endpoint is not None
        try:
            network = self.manager.registry.get(record.network)
            driver = self.manager.drivers.for_network(network)
            return tuple(driver.dependencies(record.endpoint, network))
        except exception.VifPlugDynException as exc:
            LOG.warning('Port %(port)s: cannot tell what it depends on, '
                        'not watched: %(error)s',
                        {'port': record.port.port_id, 'error': exc})
            return ()

    def _set_deps(self, port_id: str, wanted: tuple[str, ...]) -> None:
        for name in self.deps.get(port_id, ()):
            holders = self.by_device.get(name)
            if holders is not None:
                holders.discard(port_id)
                if not holders:
                    del self.by_device[name]
        if wanted:
            self.deps[port_id] = wanted
            for name in wanted:
                self.by_device.setdefault(name, set()).add(port_id)
        else:
            self.deps.pop(port_id, None)

    def _drop(self, port_id: str) -> None:
        self._set_deps(port_id, ())
        self.records.pop(port_id, None)


# --- the watcher -------------------------------------------------------------

@dataclasses.dataclass
class Report:
    """What one round of the watcher saw and did.

    :ivar events: link events read.
    :ivar resynced: events were lost and a dump was compared instead.
    :ivar degraded: ports marked degraded (their dependency vanished).
    :ivar restored: ports whose host side was rebuilt and are healthy.
    :ivar failed: ports whose repair failed (tried again later).
    :ivar waiting: ports whose hypervisor-made tap went away (they wait
        for the next one).
    :ivar restore_calls: ``{network: driver restore() calls}``.
    :ivar lost_calls: ``{network: driver lost() calls}``.
    :ivar resyncs: how many resynchronisations the report covers.
    :ivar woke: when (``time.monotonic()``) the round's first events were
        read, or ``None``.
    :ivar finished: when the round ended (``time.monotonic()``).
    """

    events: int = 0
    resynced: bool = False
    resyncs: int = 0
    woke: float | None = None
    finished: float = 0.0
    degraded: list[str] = dataclasses.field(default_factory=list)
    restored: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)
    waiting: list[str] = dataclasses.field(default_factory=list)
    restore_calls: dict[str, int] = dataclasses.field(default_factory=dict)
    lost_calls: dict[str, int] = dataclasses.field(default_factory=dict)

    def merge(self, other: 'Report') -> None:
        """Add ``other`` to this report."""
        self.events += other.events
        self.resynced = self.resynced or other.resynced
        self.resyncs += other.resyncs
        self.degraded += other.degraded
        self.restored += other.restored
        self.failed += other.failed
        self.waiting += other.waiting
        for mine, theirs in ((self.restore_calls, other.restore_calls),
                             (self.lost_calls, other.lost_calls)):
            for key, count in theirs.items():
                mine[key] = mine.get(key, 0) + count


_NOT_SET: Any = object()


class Watcher:
    """Keeps endpoints healthy as host interfaces come and go.

    ::

        watcher = Watcher(manager)
        watcher.start()          # a thread; or run_once() / run()
        ...
        watcher.stop()

    :param manager: the :class:`~vif_plug_dyn.manager.EndpointManager`.
    :param netns: the namespace to watch; by default ``[vif_plug_dyn]
        netns`` of the manager's configuration.
    :param rcvbuf: the event socket's receive buffer (bytes).
    :param settle: seconds of quiet that end a round's events.
    :param burst_settle: seconds of quiet that end them once two or more
        watched devices changed in the round (a burst).
    :param max_hold: seconds a burst is held back at most.
    :param events_factory: builds the event source (tests).
    :param on_report: called with the :class:`Report` of every round, in
        the watcher's thread (metrics, benchmarks).
    """

    def __init__(self, manager: Any, netns: str | None = _NOT_SET,
                 rcvbuf: int = DEFAULT_RCVBUF,
                 settle: float = DEFAULT_SETTLE,
                 burst_settle: float = DEFAULT_BURST_SETTLE,
                 max_hold: float = DEFAULT_MAX_HOLD,
                 events_factory: Callable[[], Any] | None = None,
                 on_report: Callable[[Report], None] | None = None
                 ) -> None:
        self.manager = manager
        self.on_report = on_report
        if netns is _NOT_SET:
            netns = manager.conf[opts.GROUP].netns or None
        self.netns = netns
        self.rcvbuf = rcvbuf
        self.settle = settle
        self.burst_settle = max(settle, burst_settle)
        self.max_hold = max_hold
        self._factory = events_factory or (
            lambda: LinkEvents(self.netns, self.rcvbuf))
        self.source: Any = None
        self.view = LinkView()
        self.map = DependencyMap(manager)
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry: set[str] = set()
        self._retry_at: float | None = None
        self._retry_delay = RETRY_DELAYS[0]
        self._synced = False
        self._last_watched = float('-inf')
        #: What the latest round did.
        self.last: Report = Report()
        #: What every round so far did, added up.
        self.total: Report = Report()

    # -- life cycle -----------------------------------------------------------

    def open(self) -> None:
        """Open the event socket (idempotent).

        :raises OSError: it cannot be opened (no such namespace, no
            privilege to enter it).
        """
        if self.source is None:
            self.source = self._factory()

    def start(self) -> None:
        """Open the socket here (so that errors reach the caller) and run
        the watcher in a thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self.open()
        self._stopping.clear()
        self._thread = threading.Thread(target=self.run,
                                        name='vpd-watcher', daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the loop to stop and wait for its thread (if any).

        Safe from a signal handler when the loop runs in the main thread.
        """
        self._stopping.set()
        try:
            os.write(self._wake_w, b'x')
        except BlockingIOError:
            pass
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            self._thread = None

    def close(self) -> None:
        """Stop and release the sockets and the ledger probe."""
        self.stop()
        if self.source is not None:
            self.source.close()
            self.source = None
        self.map.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    def __enter__(self) -> 'Watcher':
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self) -> None:
        """Watch until :meth:`stop` (in the calling thread)."""
        self.open()
        delay = RETRY_DELAYS[0]
        try:
            while not self._stopping.is_set():
                try:
                    if not self._synced:
                        # NOTE(vpd): a round of its own, reported at
                        # once rather than with the first event.
                        self.sync()
                        continue
                    self.run_once(None)
                    delay = RETRY_DELAYS[0]
                except Exception:  # noqa: BLE001 - the loop must go on
                    LOG.exception('Watcher round failed; next try in '
                                  '%.0f s', delay)
                    self._sleep(delay)
                    delay = min(delay * 2, RETRY_DELAYS[1])
        finally:
            # NOTE(vpd): the ledger keeps one connection per thread.
            self.manager.ledger.close()

    # -- one round ----------------------------------------------------------

    def sync(self) -> Report:
        """Start from scratch: read the whole ledger and a dump of the
        devices, then degrade what lacks a dependency and restore every
        other watched endpoint (idempotent: what exists is left alone).

        NOTE(vpd): nothing is known of what happened while no watcher
        ran (a lower device may have bounced and taken the macvlans with
        it), hence restore, not only compare.
        """
        return self._done(self._sync(Report()))

    def _sync(self, report: Report) -> Report:
        self.open()
        self.source.read()
        report.resynced = True
        report.resyncs += 1
        self.map.refresh(force=True)
        # NOTE(vpd): events queued before the dump are stale; the dump is
        # the truth from here on, later events apply on top of it.
        self.view.replace(self.source.dump())
        self._synced = True
        self._act(set(self.map.deps), set(), report, verify=True)
        return report

    def run_once(self, timeout: float | None = 0.0) -> Report:
        """Wait up to ``timeout`` seconds (``None``: until something
        happens) for link events, then act on everything queued.

        The first call synchronises from a dump first.

        :returns: what was done.
        """
        self.open()
        report = Report()
        if not self._synced:
            self._sync(report)
        wait = timeout
        if self._retry_at is not None:
            due = max(0.0, self._retry_at - time.monotonic())
            wait = due if wait is None else min(wait, due)
        events: list[Any] = []
        lost = False
        if self._wait(wait) and not self._stopping.is_set():
            report.woke = time.monotonic()
            hold_until = report.woke + self.max_hold
            # NOTE(vpd): a burst is two or more watched devices changing
            # in one round, or a round starting hard on the heels of the
            # previous one's (deletions come one per 16 ms or so).
            settle = self.settle
            if report.woke - self._last_watched < 2 * self.burst_settle:
                settle = self.burst_settle
            watched: set[str] = set()
            while True:
                more, dropped = self.source.read()
                events += more
                lost = lost or dropped
                names = {e.name for e in more
                         if e.name in self.map.by_device}
                if names:
                    self._last_watched = time.monotonic()
                    watched |= names
                if len(watched) > 1 or lost:
                    settle = self.burst_settle
                left = min(settle, hold_until - time.monotonic())
                if left <= 0 or not self._wait(left):
                    break
        if self._stopping.is_set():
            return self._done(report)
        examine = self.map.refresh()
        # NOTE(vpd): read again after the ledger: whatever a requester saw
        # of the devices before it wrote the ledger is on the socket by
        # now, so the view is never older than the records.
        more, dropped = self.source.read()
        events += more
        lost = lost or dropped
        report.events = len(events)
        delta = self.view.apply(events)
        if lost:
            after = self.source.dump()
            resync = self.view.replace(after)
            bounced = ((delta.bounced | delta.vanished) - resync.vanished) | \
                resync.bounced
            delta = Delta(appeared=set(), vanished=set(),
                          bounced={n for n in bounced if n in after})
            examine = set(self.map.deps)
            report.resynced = True
            report.resyncs += 1
            LOG.warning('Link events were lost (receive buffer full); '
                        'resynchronised from a dump of %d devices',
                        len(after))
        else:
            examine |= self.map.dependents(delta.changed)
        if self._retry_at is not None and time.monotonic() >= self._retry_at:
            examine |= self._retry
            self._retry = set()
            self._retry_at = None
        self._act(examine, delta.bounced, report)
        return self._done(report)

    def _done(self, report: Report) -> Report:
        report.finished = time.monotonic()
        self.last = report
        self.total.merge(report)
        if self.on_report is not None:
            try:
                self.on_report(report)
            except Exception:  # noqa: BLE001 - an observer must not stop us
                LOG.exception('The watcher\'s report callback failed')
        return report

    def _wait(self, timeout: float | None) -> bool:
        """Wait until the socket is readable; ``False`` on timeout or when
        woken to stop."""
        poller = select.poll()
        poller.register(self.source.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        ready = poller.poll(None if timeout is None else
                            max(0, int(timeout * 1000 + 0.999)))
        fds = {fd for fd, _ev in ready}
        if self._wake_r in fds:
            try:
                os.read(self._wake_r, 4096)
            except BlockingIOError:
                pass
        return self.source.fileno() in fds

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    # -- acting ---------------------------------------------------------------

    def _act(self, examine: set[str], bounced: set[str],
             report: Report, verify: bool = False) -> None:
        plan = decide(self.map.health(), self.map.deps, self.view,
                      bounced, examine, verify)
        if not plan:
            return
        ids = plan.lose + plan.restore
        mgr = self.manager
        # NOTE(vpd): the manager's per-port locks keep a connect or a
        # release in another thread of this process from interleaving
        # with a repair; the plan is made again from fresh records under
        # them.
        with mgr._port_locks(ids):
            self.map.accept(self.map.fresh(ids))
            plan = decide(self.map.health(), self.map.deps, self.view,
                          bounced, ids, verify)
            records = self.map.records
            self._lose(plan.lose, records, report)
            self._restore(plan.restore, set(plan.bounced), records, report)

    def _by_network(self, ids: Iterable[str],
                    records: Mapping[str, ledger_mod.PortRecord]
                    ) -> dict[str, list[ledger_mod.PortRecord]]:
        groups: dict[str, list[ledger_mod.PortRecord]] = {}
        for port_id in ids:
            record = records[port_id]
            groups.setdefault(record.network, []).append(record)
        return groups

    def _set_health(self, records: list[ledger_mod.PortRecord],
                    health: str) -> list[ledger_mod.PortRecord]:
        changed = [r for r in records if r.health != health]
        if not changed:
            return []
        # NOTE(vpd): the records are fresh (read under the port locks);
        # only their health and change time move, so they are not read
        # back (a thousand JSON records cost more than the write).
        stamp = self.manager.ledger.set_health(
            [r.port.port_id for r in changed], health)
        updated = [dataclasses.replace(r, health=health, updated=stamp)
                   for r in changed]
        self.map.accept(updated)
        return updated

    def _tell_guests(self, records: list[ledger_mod.PortRecord]) -> None:
        for record in records:
            try:
                self.manager.guest.apply(record)
            except exception.VifPlugDynException as exc:
                LOG.warning('Port %(port)s: could not set its guest link: '
                            '%(error)s', {'port': record.port.port_id,
                                          'error': exc})

    def _lose(self, ids: list[str],
              records: Mapping[str, ledger_mod.PortRecord],
              report: Report) -> None:
        if not ids:
            return
        waiting = self._waiting(ids, records)
        lost = [i for i in ids if i not in waiting]
        degraded = self._set_health([records[i] for i in lost],
                                    ledger_mod.DEGRADED)
        report.degraded += [r.port.port_id for r in degraded]
        # NOTE(vpd): a tap its hypervisor made went with the guest (nova's
        # unplug): nothing failed, the port waits for the next one.
        left = self._set_health([records[i] for i in sorted(waiting)],
                                ledger_mod.WAITING)
        report.waiting += [r.port.port_id for r in left]
        for name, group in sorted(self._by_network(ids, records).items()):
            self._call_lost(name, group, report)
        self._tell_guests(degraded + left)
        if lost:
            gone = sorted({dep for i in lost
                           for dep in self.map.deps.get(i, ())
                           if dep not in self.view})
            LOG.warning('Host interface(s) %(devices)s gone: %(count)d '
                        'port(s) degraded', {'devices': ', '.join(gone),
                                             'count': len(lost)})
            LOG.debug('Degraded ports: %s', ', '.join(lost))
        if waiting:
            LOG.info('%(count)d port(s) wait for the tap their hypervisor '
                     'makes: %(ports)s', {'count': len(waiting),
                                          'ports': ', '.join(
                                              sorted(waiting))})

    def _waiting(self, ids: list[str],
                 records: Mapping[str, ledger_mod.PortRecord]) -> set[str]:
        """Those of ``ids`` that miss only devices their guest's
        hypervisor makes (:meth:`~vif_plug_dyn.drivers.base.NetworkDriver.
        waits_for`)."""
        found = set()
        for port_id in ids:
            record = records[port_id]
            network = self._network(record.network)
            if network is None or record.endpoint is None:
                continue
            driver = self.manager.drivers.for_network(network)
            missing = {d for d in self.map.deps.get(port_id, ())
                       if d not in self.view}
            if missing and missing <= set(driver.waits_for(record.endpoint)):
                found.add(port_id)
        return found

    def _call_lost(self, name: str, group: list[ledger_mod.PortRecord],
                   report: Report) -> None:
        network = self._network(name)
        if network is None:
            return
        driver = self.manager.drivers.for_network(network)
        try:
            driver.lost([r.endpoint for r in group if r.endpoint], network)
        except Exception as exc:  # noqa: BLE001 - a tidy-up may fail
            LOG.warning('Network %(network)s: tidying up after a lost '
                        'dependency failed: %(error)s',
                        {'network': name, 'error': exc})
        report.lost_calls[name] = report.lost_calls.get(name, 0) + 1

    def _restore(self, ids: list[str], bounced: set[str],
                 records: Mapping[str, ledger_mod.PortRecord],
                 report: Report) -> None:
        for name, group in sorted(self._by_network(ids, records).items()):
            network = self._network(name)
            if network is None:
                continue
            again = [r for r in group if r.port.port_id in bounced]
            if again:
                self._call_lost(name, again, report)
            driver = self.manager.drivers.for_network(network)
            started = time.monotonic()
            try:
                unhealed = driver.restore(
                    [r.endpoint for r in group if r.endpoint], network,
                    {r.port.port_id for r in group
                     if r.cable == ledger_mod.PLUGGED}) or set()
            except Exception as exc:  # noqa: BLE001 - tried again later
                failed = [r.port.port_id for r in group]
                report.failed += failed
                LOG.error('Network %(network)s: restoring %(count)d port(s) '
                          'failed, next try in %(delay).0f s: %(error)s',
                          {'network': name, 'count': len(group),
                           'delay': self._retry_delay, 'error': exc})
                self._schedule_retry(failed)
                continue
            finally:
                report.restore_calls[name] = \
                    report.restore_calls.get(name, 0) + 1
            healed = [r for r in group if r.port.port_id not in unhealed]
            stuck = [r for r in group if r.port.port_id in unhealed]
            changed = self._set_health(healed, ledger_mod.HEALTHY)
            changed += self._set_health(stuck, ledger_mod.DEGRADED)
            report.restored += [r.port.port_id for r in healed]
            report.degraded += [r.port.port_id for r in stuck
                                if r.health == ledger_mod.HEALTHY]
            self._tell_guests(changed)
            self._retry_delay = RETRY_DELAYS[0]
            LOG.info('Network %(network)s: restored %(count)d port(s) in '
                     '%(ms).1f ms', {'network': name, 'count': len(healed),
                                     'ms': (time.monotonic() - started) *
                                     1000})
            if stuck:
                LOG.warning('Network %(network)s: port(s) %(ports)s cannot '
                            'be healed on the host alone (a genuine '
                            'macvtap: reconnect the guest NIC with detach '
                            '+ attach)', {'network': name, 'ports': ', '.join(
                                r.port.port_id for r in stuck)})

    def _schedule_retry(self, ids: list[str]) -> None:
        self._retry.update(ids)
        self._retry_at = time.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, RETRY_DELAYS[1])

    def _network(self, name: str) -> Any:
        try:
            return self.manager.registry.get(name)
        except exception.NetworkNotFound:
            return None

