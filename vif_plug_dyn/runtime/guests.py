"""The guest monitor: give guests the link state their cables want as
soon as they run.

A cable can change while its guest is not running (not yet booted, shut
off, migrating in) or while the hypervisor cannot be reached; the ledger
then keeps the port's guest link ``pending`` (see
:mod:`vif_plug_dyn.runtime.cable`). A long-running process (``vif-plug-dyn
watch``, the agent) runs a :class:`GuestMonitor`::

    monitor = GuestMonitor(manager)
    monitor.start()          # a thread
    ...
    monitor.stop()

It subscribes to the hypervisor's guest events (libvirt: a domain started
or resumed, a device was added) and, for each, applies the ledger's
wanted link to every NIC of that guest
(:meth:`~vif_plug_dyn.manager.EndpointManager.guest_started`). When the
hypervisor cannot be reached it says so once, tries again every
``retry`` seconds, and once subscribed (again) catches up: events may
have been missed meanwhile, so every port with a guest is applied once
(:meth:`~vif_plug_dyn.manager.EndpointManager.apply_guest_links`).

A process with its own source of guest events calls
:meth:`~vif_plug_dyn.manager.EndpointManager.guest_started` itself.
"""

import queue
import threading
from typing import Any

from oslo_log import log as logging

from vif_plug_dyn import exception

LOG = logging.getLogger(__name__)

#: Seconds between attempts to reach the hypervisor, and between checks
#: that its events still arrive.
DEFAULT_RETRY = 5.0


class GuestMonitor:
    """Applies the ledger's wanted guest links when guests start.

    :param manager: the :class:`~vif_plug_dyn.manager.EndpointManager`.
    :param retry: seconds between attempts to (re)subscribe, and between
        checks that the subscription is alive.
    """

    def __init__(self, manager: Any, retry: float = DEFAULT_RETRY) -> None:
        self.manager = manager
        self.retry = retry
        self._queue: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._subscribed = False
        self._outage_logged = False
        #: Guests whose ports were applied because they started (uuids).
        self.started: list[str] = []
        #: How many times every guest was caught up with after a
        #: (re)subscription.
        self.catch_ups = 0

    @property
    def enabled(self) -> bool:
        """Whether there is a hypervisor to listen to (``none``: not)."""
        return bool(self.manager.guest.configured)

    def start(self) -> bool:
        """Run the monitor in a thread until :meth:`stop`.

        :returns: ``False`` (and does nothing) when the configuration has
            no hypervisor (``none``).
        """
        if not self.enabled:
            LOG.info('No hypervisor configured: no guest events to follow')
            return False
        if self._thread is not None:
            return True
        self._stopping.clear()
        self._thread = threading.Thread(target=self.run,
                                        name='vpd-guest-monitor',
                                        daemon=True)
        self._thread.start()
        return True

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread and wait for it."""
        self._stopping.set()
        self._queue.put(None)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def _event(self, uuid: str, name: str) -> None:
        # NOTE(vpd): called in the hypervisor's event thread, which must
        # not wait for our work (nor call back into libvirt): queue it.
        self._queue.put((uuid, name))

    def run(self) -> None:
        """Follow guest events until :meth:`stop` (in the calling
        thread)."""
        try:
            while not self._stopping.is_set():
                if not self._subscribed or \
                        not self.manager.guest.hypervisor.watching_guests():
                    if not self._subscribe():
                        self._stopping.wait(self.retry)
                        continue
                try:
                    item = self._queue.get(timeout=self.retry)
                except queue.Empty:
                    continue
                self._handle(item)
        except exception.OperationNotSupported as exc:
            LOG.warning('The hypervisor adapter reports no guest events '
                        '(%s): guests get pending links at the next '
                        'reconcile only', exc)
        finally:
            # NOTE(vpd): the ledger keeps one connection per thread.
            self.manager.ledger.close()

    def _subscribe(self) -> bool:
        self._subscribed = False
        try:
            self.manager.guest.hypervisor.watch_guests(self._event)
        except (exception.HypervisorConnectionFailed,
                exception.HypervisorLoadFailed) as exc:
            if not self._outage_logged:
                LOG.warning('Cannot follow guest events (trying again every '
                            '%(retry).0f s; pending guest links wait): '
                            '%(error)s', {'retry': self.retry, 'error': exc})
                self._outage_logged = True
            return False
        self._subscribed = True
        self._outage_logged = False
        LOG.info('Following guest events; catching up with every guest')
        self._catch_up()
        return True

    def _catch_up(self) -> None:
        try:
            told = self.manager.apply_guest_links()
        except exception.VifPlugDynException as exc:
            LOG.warning('Catching up with guests failed: %s', exc)
            return
        self.catch_ups += 1
        LOG.info('Guest links applied to %(told)d of %(count)d port(s) '
                 'with a guest', {'told': sum(told.values()),
                                  'count': len(told)})

    def _handle(self, item: tuple[str, str] | None) -> None:
        events = [] if item is None else [item]
        # NOTE(vpd): a guest starting with several NICs, or many guests
        # starting together, is handled once per guest.
        while True:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more is not None:
                events.append(more)
        for uuid, name in dict.fromkeys(events):
            if self._stopping.is_set():
                return
            try:
                told = self.manager.guest_started(uuid)
            except exception.VifPlugDynException as exc:
                LOG.warning('Guest %(uuid)s started; applying its links '
                            'failed: %(error)s', {'uuid': uuid,
                                                  'error': exc})
                continue
            if told:
                self.started.append(uuid)
                LOG.info('Guest %(name)s (%(uuid)s) runs: link state '
                         'applied to %(count)d port(s)',
                         {'name': name, 'uuid': uuid, 'count': len(told)})
