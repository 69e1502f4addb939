"""The libvirt connection: opening it, its event loop, its device events
and the translation of libvirt's errors into the library's own.

libvirt delivers domain events (here: a device was removed, or a guest
refused to remove it) only to connections opened *after* an event loop
implementation was registered, and only while something runs that loop.
:class:`EventLoop` registers libvirt's default implementation once per
process and runs it in a daemon thread that can be stopped and started
again; :class:`Host` starts it before it opens its connection.

Nothing here lets a :class:`libvirt.libvirtError` escape: every libvirt
call made by the adapter goes through :func:`translate_errors`, which
raises a :class:`~vif_plug_dyn.exception.HypervisorOperationFailed` (or a
more precise subclass) naming the operation and the domain.
"""

import collections
import contextlib
import threading
import uuid as uuid_mod
from collections.abc import Callable, Iterator
from typing import Any

import libvirt
from oslo_log import log as logging

from vif_plug_dyn import exception

LOG = logging.getLogger(__name__)

#: Outcomes of waiting for a device removal.
REMOVED = 'removed'
REMOVAL_FAILED = 'removal-failed'

# NOTE(vpd): these codes mean "libvirt cannot do that to this domain in
# its current state", not "something broke": they become
# LiveUpdateRefused so callers can fall back (detach + attach).
_REFUSED_CODES = frozenset(
    getattr(libvirt, name) for name in (
        'VIR_ERR_OPERATION_UNSUPPORTED', 'VIR_ERR_NO_SUPPORT',
        'VIR_ERR_ARGUMENT_UNSUPPORTED'))
_CONNECTION_CODES = frozenset(
    getattr(libvirt, name) for name in (
        'VIR_ERR_NO_CONNECT', 'VIR_ERR_INVALID_CONN', 'VIR_ERR_AUTH_FAILED',
        'VIR_ERR_AUTH_CANCELLED', 'VIR_ERR_AUTH_UNAVAILABLE'))
_CONNECTION_DOMAINS = frozenset(
    getattr(libvirt, name) for name in ('VIR_FROM_RPC', 'VIR_FROM_REMOTE'))


def describe_error(exc: libvirt.libvirtError) -> str:
    """Return libvirt's message with its error code, for messages."""
    message = exc.get_error_message() or str(exc) or 'unknown error'
    code = exc.get_error_code()
    if code is None:
        return message
    return '%s (libvirt error code %d)' % (message, code)


def translate(exc: libvirt.libvirtError, operation: str, domain: str,
              uri: str | None = None, mac: str | None = None
              ) -> exception.VifPlugDynException:
    """Return the library's exception for a libvirt error.

    :param exc: what libvirt raised.
    :param operation: what was being done (``'detach of 52:54:...'``).
    :param domain: the domain it was done to.
    :param uri: the connection URI, for connection errors.
    :param mac: the interface concerned, if one.
    """
    code = exc.get_error_code()
    reason = describe_error(exc)
    if code == libvirt.VIR_ERR_NO_DOMAIN:
        return exception.DomainNotFound(operation=operation, domain=domain,
                                        reason=reason)
    if code == libvirt.VIR_ERR_DEVICE_MISSING and mac is not None:
        return exception.InterfaceNotFound(domain=domain, mac=mac)
    if code in _REFUSED_CODES:
        return exception.LiveUpdateRefused(operation=operation,
                                           domain=domain, reason=reason)
    if code in _CONNECTION_CODES or (
            code == libvirt.VIR_ERR_SYSTEM_ERROR and
            exc.get_error_domain() in _CONNECTION_DOMAINS):
        return exception.HypervisorConnectionFailed(
            uri=uri or '(the given connection)',
            operation='%s on domain %s' % (operation, domain),
            reason=reason)
    return exception.HypervisorOperationFailed(operation=operation,
                                               domain=domain, reason=reason)


@contextlib.contextmanager
def translate_errors(operation: str, domain: str, uri: str | None = None,
                     mac: str | None = None) -> Iterator[None]:
    """Turn a :class:`libvirt.libvirtError` raised inside into the
    library's exception (see :func:`translate`)."""
    try:
        yield
    except libvirt.libvirtError as exc:
        raise translate(exc, operation, domain, uri=uri, mac=mac) from exc


def _ignore_libvirt_error(_ctx: Any, _error: Any) -> None:
    return None


_QUIET = threading.Lock()
_quieted = False


def _quiet_errors() -> None:
    # NOTE(vpd): libvirt's default handler prints every error to stderr,
    # including the ones the adapter expects and handles (a device that
    # is already gone); the exception carries the error anyway. Done only
    # when the library opens its own connection: an application that
    # hands over a connection keeps whatever handler it set.
    global _quieted
    with _QUIET:
        if not _quieted:
            libvirt.registerErrorHandler(_ignore_libvirt_error, None)
            _quieted = True


_REGISTER_LOCK = threading.Lock()
_registered = False


def _register_default_impl() -> None:
    # NOTE(vpd): the registration is process-wide in libvirt and cannot
    # be undone; doing it twice would re-initialise the loop's state under
    # whatever already uses it. Every EventLoop shares this one.
    global _registered
    with _REGISTER_LOCK:
        if _registered:
            return
        if libvirt.virEventRegisterDefaultImpl() < 0:
            raise exception.HypervisorConnectionFailed(
                uri='(none)', operation='starting the event loop',
                reason='virEventRegisterDefaultImpl failed')
        _registered = True


class EventLoop:
    """libvirt's default event loop, run in a daemon thread.

    One per process (:data:`EVENT_LOOP`). :meth:`start` registers the
    implementation the first time (libvirt cannot unregister it) and
    starts the thread; :meth:`stop` ends the thread, and :meth:`start`
    can start it again. Connections opened before the first
    :meth:`start` get no events.

    An application that already runs libvirt's default event loop itself
    (nova-compute does) calls :meth:`use_external` instead, so no second
    thread competes for it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._external = False
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None

    @property
    def running(self) -> bool:
        """Whether events are being dispatched (by us or the
        application)."""
        if self._external:
            return True
        thread = self._thread
        return thread is not None and thread.is_alive()

    def use_external(self) -> None:
        """Declare that the application registered and runs libvirt's
        event loop itself; :meth:`start` then does nothing."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise exception.OperationNotSupported(
                    operation='using an external libvirt event loop',
                    by='vif_plug_dyn',
                    reason='the library\'s own event loop thread is '
                           'already running; stop() it first')
            self._external = True
        global _registered
        with _REGISTER_LOCK:
            _registered = True

    def start(self) -> None:
        """Register libvirt's default event loop (once) and run it."""
        with self._lock:
            if self._external:
                return
            _register_default_impl()
            if self._thread is not None and self._thread.is_alive() and \
                    self._stop is not None and not self._stop.is_set():
                return
            # NOTE(vpd): each thread has its own stop flag, so a thread
            # still finishing after a stop() that timed out ends, and
            # does not keep the new one from running.
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,),
                name='vif-plug-dyn-libvirt-events', daemon=True)
            self._thread.start()

    @staticmethod
    def _run(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if libvirt.virEventRunDefaultImpl() < 0:
                    LOG.error('libvirt event loop iteration failed')
                    stop.wait(0.1)
            except Exception:  # noqa: BLE001 - the loop must keep running
                # NOTE(vpd): an exception from a callback must not end
                # event delivery for the whole process.
                LOG.exception('libvirt event loop iteration raised')
                stop.wait(0.1)

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the thread; returns whether it ended within ``timeout``.

        The implementation stays registered (libvirt cannot unregister
        it): connections keep working, but no events are delivered until
        :meth:`start` runs the loop again.
        """
        with self._lock:
            thread, stop = self._thread, self._stop
            if thread is None or stop is None or not thread.is_alive():
                self._thread = None
                return True
            stop.set()
            # NOTE(vpd): virEventRunDefaultImpl blocks in poll() until a
            # handle or timer fires; a zero-interval timer wakes it so the
            # thread sees the stop flag now, not at the next event.
            def _wake(timer: int, _opaque: Any) -> None:
                libvirt.virEventRemoveTimeout(timer)

            libvirt.virEventAddTimeout(0, _wake, None)
        thread.join(timeout)
        with self._lock:
            if thread.is_alive():
                return False
            if self._thread is thread:
                self._thread = None
            return True


#: The process's event loop.
EVENT_LOOP = EventLoop()


class DeviceWaiter:
    """Waits for libvirt to report one device of one domain removed.

    Made by :meth:`Host.device_events`; register it *before* asking for
    the removal, since libvirt may report it before the request returns.
    """

    def __init__(self, domain_uuid: str, alias: str) -> None:
        self.key = (domain_uuid, alias)
        self._condition = threading.Condition()
        self._outcomes: collections.deque[str] = collections.deque()

    def notify(self, outcome: str) -> None:
        with self._condition:
            self._outcomes.append(outcome)
            self._condition.notify_all()

    def wait(self, timeout: float) -> str | None:
        """Return the next outcome (:data:`REMOVED` or
        :data:`REMOVAL_FAILED`), or ``None`` after ``timeout`` seconds."""
        with self._condition:
            if not self._outcomes:
                self._condition.wait_for(lambda: bool(self._outcomes),
                                         timeout)
            return self._outcomes.popleft() if self._outcomes else None


class Host:
    """A libvirt connection, opened from a URI or given.

    :param uri: the connection URI (``qemu:///system``); the connection is
        opened on first use, after :data:`EVENT_LOOP` (or ``event_loop``)
        is started, and opened again if libvirt closes it.
    :param conn: an open :class:`libvirt.virConnect` to use instead. It
        gets device events only if an event loop was registered before it
        was opened and is running; without them the adapter still works,
        but a detach waits its full timeout before it checks the domain.
    :param event_loop: the event loop to start before opening ``uri``.
    """

    def __init__(self, uri: str | None = None,
                 conn: libvirt.virConnect | None = None,
                 event_loop: EventLoop | None = None) -> None:
        if (uri is None) == (conn is None):
            raise exception.InvalidField(
                field='uri', value=uri,
                reason='give either a URI or a connection')
        self.uri = uri
        self._given = conn
        self._conn: libvirt.virConnect | None = conn
        self._event_loop = event_loop or EVENT_LOOP
        self._lock = threading.RLock()
        self._waiters: dict[tuple[str, str], list[DeviceWaiter]] = {}
        self._callback_ids: list[int] = []
        self._events_for: libvirt.virConnect | None = None
        self._guest_callback: Callable[[str, str], None] | None = None
        self._guest_ids: list[int] = []
        self._guest_events_for: libvirt.virConnect | None = None

    @property
    def name(self) -> str:
        """The URI, or a description of the given connection."""
        return self.uri or '(the given connection)'

    # -- the connection --------------------------------------------------

    @property
    def conn(self) -> libvirt.virConnect:
        """The open connection.

        :raises HypervisorConnectionFailed: libvirt cannot be reached.
        """
        with self._lock:
            if self._conn is not None:
                return self._conn
            assert self.uri is not None
            self._event_loop.start()
            _quiet_errors()
            try:
                conn = libvirt.open(self.uri)
            except libvirt.libvirtError as exc:
                raise exception.HypervisorConnectionFailed(
                    uri=self.uri, operation='opening the connection',
                    reason=describe_error(exc)) from exc
            try:
                conn.registerCloseCallback(self._closed, None)
            except libvirt.libvirtError as exc:
                LOG.debug('No close callback on %s: %s', self.uri, exc)
            self._conn = conn
            return conn

    def _closed(self, conn: libvirt.virConnect, reason: int,
                _opaque: Any) -> None:
        # NOTE(vpd): called from the event loop when the daemon goes away
        # (restart, crash, keepalive timeout); the next call reopens.
        LOG.warning('libvirt connection to %s closed (reason %s); it will '
                    'be opened again on next use', self.name, reason)
        with self._lock:
            if self._conn is conn and self._given is None:
                self._conn = None
                self._events_for = None
                self._callback_ids = []
            if self._guest_events_for is conn:
                # NOTE(vpd): a given connection is not reopened here, but
                # its events are gone all the same.
                self._guest_events_for = None
                self._guest_ids = []

    def close(self) -> None:
        """Stop listening for events and close the connection if this
        object opened it. Safe to call twice."""
        with self._lock:
            conn = self._conn
            if conn is not None and self._events_for is conn:
                self._deregister(conn, self._callback_ids)
            if conn is not None and self._guest_events_for is conn:
                self._deregister(conn, self._guest_ids)
            self._callback_ids = []
            self._events_for = None
            self._guest_ids = []
            self._guest_events_for = None
            if conn is not None and self._given is None:
                try:
                    conn.unregisterCloseCallback()
                except libvirt.libvirtError:
                    pass
                try:
                    conn.close()
                except libvirt.libvirtError as exc:
                    LOG.debug('Closing %s: %s', self.name, exc)
                self._conn = None

    @staticmethod
    def _deregister(conn: libvirt.virConnect, callback_ids: list[int]
                    ) -> None:
        for callback_id in callback_ids:
            try:
                conn.domainEventDeregisterAny(callback_id)
            except libvirt.libvirtError as exc:
                LOG.debug('Deregistering event callback %s: %s',
                          callback_id, exc)

    # -- domains ---------------------------------------------------------

    def lookup(self, domain: str, operation: str = 'lookup'
               ) -> libvirt.virDomain:
        """Return the domain named ``domain`` (a name or a UUID).

        :raises DomainNotFound: there is none.
        :raises HypervisorConnectionFailed: libvirt cannot be reached.
        """
        conn = self.conn
        with translate_errors(operation, domain, uri=self.uri):
            if _is_uuid(domain):
                try:
                    return conn.lookupByUUIDString(domain)
                except libvirt.libvirtError as exc:
                    # NOTE(vpd): a name may look like a UUID; fall back.
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                        raise
            return conn.lookupByName(domain)

    # -- device events ---------------------------------------------------

    def _ensure_events(self) -> None:
        conn = self.conn
        with self._lock:
            if self._events_for is conn:
                return
            ids = []
            try:
                for event_id, callback in (
                        (libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                         self._device_removed),
                        (libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED,
                         self._device_removal_failed)):
                    ids.append(conn.domainEventRegisterAny(
                        None, event_id, callback, None))
            except libvirt.libvirtError as exc:
                self._deregister(conn, ids)
                raise exception.HypervisorConnectionFailed(
                    uri=self.name, operation='registering device events',
                    reason=describe_error(exc)) from exc
            self._callback_ids = ids
            self._events_for = conn

    def _dispatch(self, dom: libvirt.virDomain, alias: str,
                  outcome: str) -> None:
        try:
            key = (dom.UUIDString(), alias)
        except libvirt.libvirtError:
            return
        LOG.debug('Device %s of domain %s: %s', alias, key[0], outcome)
        with self._lock:
            waiters = list(self._waiters.get(key, ()))
        for waiter in waiters:
            waiter.notify(outcome)

    def _device_removed(self, _conn: libvirt.virConnect,
                        dom: libvirt.virDomain, alias: str,
                        _opaque: Any) -> None:
        self._dispatch(dom, alias, REMOVED)

    def _device_removal_failed(self, _conn: libvirt.virConnect,
                               dom: libvirt.virDomain, alias: str,
                               _opaque: Any) -> None:
        self._dispatch(dom, alias, REMOVAL_FAILED)

    @contextlib.contextmanager
    def device_events(self, dom: libvirt.virDomain, alias: str
                      ) -> Iterator[DeviceWaiter]:
        """Listen for the removal of device ``alias`` of ``dom``.

        :raises HypervisorConnectionFailed: events cannot be registered.
        """
        self._ensure_events()
        with translate_errors('watching device %s' % alias, self.name):
            waiter = DeviceWaiter(dom.UUIDString(), alias)
        with self._lock:
            self._waiters.setdefault(waiter.key, []).append(waiter)
        try:
            yield waiter
        finally:
            with self._lock:
                left = [w for w in self._waiters.get(waiter.key, ())
                        if w is not waiter]
                if left:
                    self._waiters[waiter.key] = left
                else:
                    self._waiters.pop(waiter.key, None)

    # -- guest events ----------------------------------------------------

    def watch_guests(self, callback: Callable[[str, str], None]) -> None:
        """Call ``callback(uuid, name)`` from the event loop whenever a
        domain starts, resumes or gains a device (registered once per
        connection; calling again replaces the callback).

        :raises HypervisorConnectionFailed: libvirt cannot be reached or
            refuses the registration.
        """
        self._guest_callback = callback
        conn = self.conn
        with self._lock:
            if self._guest_events_for is conn:
                return
            ids = []
            try:
                for event_id, handler in (
                        (libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                         self._lifecycle),
                        (libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED,
                         self._device_added)):
                    ids.append(conn.domainEventRegisterAny(
                        None, event_id, handler, None))
            except libvirt.libvirtError as exc:
                self._deregister(conn, ids)
                raise exception.HypervisorConnectionFailed(
                    uri=self.name, operation='registering guest events',
                    reason=describe_error(exc)) from exc
            self._guest_ids = ids
            self._guest_events_for = conn

    def watching_guests(self) -> bool:
        """Whether guest events still arrive: registered on the open
        connection, which is alive, with the event loop running."""
        with self._lock:
            conn = self._conn
            if conn is None or self._guest_events_for is not conn:
                return False
        assert conn is not None
        try:
            alive = bool(conn.isAlive())
        except libvirt.libvirtError:
            return False
        return alive and self._event_loop.running

    def _guest_event(self, dom: libvirt.virDomain, what: str) -> None:
        callback = self._guest_callback
        if callback is None:
            return
        try:
            uuid, name = dom.UUIDString(), dom.name()
        except libvirt.libvirtError:
            return
        LOG.debug('Domain %(name)s (%(uuid)s) %(what)s',
                  {'name': name, 'uuid': uuid, 'what': what})
        try:
            callback(uuid, name)
        except Exception:  # noqa: BLE001 - the event loop must go on
            LOG.exception('Guest event callback failed for domain %s', uuid)

    def _lifecycle(self, _conn: libvirt.virConnect, dom: libvirt.virDomain,
                   event: int, _detail: int, _opaque: Any) -> None:
        # NOTE(vpd): STARTED covers a boot, a restore and the end of an
        # incoming migration; RESUMED a guest paused and running again.
        if event == libvirt.VIR_DOMAIN_EVENT_STARTED:
            self._guest_event(dom, 'started')
        elif event == libvirt.VIR_DOMAIN_EVENT_RESUMED:
            self._guest_event(dom, 'resumed')

    def _device_added(self, _conn: libvirt.virConnect,
                      dom: libvirt.virDomain, alias: str,
                      _opaque: Any) -> None:
        self._guest_event(dom, 'gained device %s' % alias)

    @property
    def events_running(self) -> bool:
        """Whether device events can arrive at all (the event loop runs)."""
        return self._event_loop.running


def _is_uuid(value: str) -> bool:
    try:
        uuid_mod.UUID(value)
    except ValueError:
        return False
    return len(value) in (32, 36)
