"""The agent's notifications.

Event types (priority ``INFO``, ``WARN`` for degraded), one notification
per port, published on ``[oslo_messaging_notifications] topics``
(default ``vif_plug_dyn_notifications``) with the ``messagingv2`` driver
unless configured otherwise:

``vif_plug_dyn.port.plugged``
    a port's cable went in (request with the cable in, plug, connect;
    a move names the network it came from in ``moved_from``);
``vif_plug_dyn.port.unplugged``
    a port's cable came out (disconnect, release, unplug, migrated away);
``vif_plug_dyn.port.degraded``
    a host interface the port depends on vanished (from the watcher);
``vif_plug_dyn.port.restored``
    its host side was rebuilt and it carries traffic again (watcher).

Payload::

    {"host": "hosta", "port_id": "...", "network": "red",
     "mac": "52:54:00:...", "endpoint_type": "ethernet",
     "timings": {...}, ...}

``timings`` (milliseconds): ``took_ms`` (the call that plugged or
unplugged, for the whole batch) and ``batch`` (its size); for degraded
``detect_ms`` (first link event to the port marked); for restored
``heal_ms`` (first link event to the port healthy again) and
``outage_ms`` (degraded to restored, when this agent saw both).

Sending never delays or fails a call: notifications go through a queue
to a thread of their own; a bus that refuses them is logged.
"""

import queue
import threading
import time
from collections.abc import Iterable
from typing import Any

from vif_plug_dyn import _messaging
from vif_plug_dyn._messaging import oslo_messaging
from oslo_config import cfg
from oslo_log import log as logging

from vif_plug_dyn import agent
from vif_plug_dyn import ledger as ledger_mod

LOG = logging.getLogger(__name__)

NOTIFY_GROUP = 'oslo_messaging_notifications'
_STOP = object()


def set_defaults(conf: cfg.ConfigOpts) -> None:
    """Make ``messagingv2`` on ``vif_plug_dyn_notifications`` the default
    of ``[oslo_messaging_notifications]`` (configuration still wins;
    ``driver = noop`` turns them off)."""
    # NOTE(vpd): a Notifier registers these options when it is built,
    # which is too late for a default; oslo.messaging's list_opts() has
    # the same options.
    _messaging.prepare_conf(conf)
    for group, options in oslo_messaging.opts.list_opts():
        if group == NOTIFY_GROUP:
            conf.register_opts(options, group=NOTIFY_GROUP)
    conf.set_default('driver', ['messagingv2'], group=NOTIFY_GROUP)
    conf.set_default('topics', [agent.NOTIFICATION_TOPIC],
                     group=NOTIFY_GROUP)


class PortNotifier:
    """Sends the port notifications of one agent.

    :param conf: the agent's configuration.
    :param host: the agent's host name (publisher ``vif_plug_dyn.agent.
        <host>``, and ``host`` in every payload).
    :param transport: a notification transport; one is made from
        ``conf`` when omitted.
    """

    def __init__(self, conf: cfg.ConfigOpts, host: str,
                 transport: oslo_messaging.Transport | None = None) -> None:
        set_defaults(conf)
        self.host = host
        self._own = transport is None
        self.transport = transport or \
            oslo_messaging.get_notification_transport(conf)
        self.notifier = oslo_messaging.Notifier(
            self.transport, publisher_id='vif_plug_dyn.agent.%s' % host)
        self.queue: queue.Queue[Any] = queue.Queue()
        self.sent = 0
        self.failed = 0
        #: port id -> when it was seen degraded (monotonic), or None
        self.degraded: dict[str, float | None] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run,
                                        name='vpd-notifier', daemon=True)
        self._thread.start()

    # -- sending -------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is _STOP:
                    return
                event_type, priority, payload = item
                try:
                    getattr(self.notifier, priority)({}, event_type,
                                                     payload)
                    self.sent += 1
                except Exception as exc:  # noqa: BLE001 - never fatal
                    self.failed += 1
                    LOG.warning('Notification %(event)s for port %(port)s '
                                'was not sent: %(error)s',
                                {'event': event_type,
                                 'port': payload.get('port_id'),
                                 'error': exc})
            finally:
                self.queue.task_done()

    def emit(self, event_type: str, records: Iterable[Any],
             timings: dict[str, Any] | None = None,
             priority: str = 'info', **extra: Any) -> int:
        """Queue one notification per record (a
        :class:`~vif_plug_dyn.ledger.PortRecord` or an endpoint).

        :returns: how many were queued.
        """
        count = 0
        for item in records:
            self.queue.put((event_type, priority,
                            self._payload(item, timings or {}, extra)))
            count += 1
        return count

    def _payload(self, item: Any, timings: dict[str, Any],
                 extra: dict[str, Any]) -> dict[str, Any]:
        payload: dict[str, Any]
        if isinstance(item, ledger_mod.PortRecord):
            endpoint = item.endpoint
            payload = {'port_id': item.port.port_id,
                       'network': item.network, 'mac': item.port.mac,
                       'vm_uuid': item.port.vm_uuid}
        else:
            endpoint = item
            payload = {'port_id': item.port_id, 'network': item.network,
                       'mac': item.mac}
        payload.update(host=self.host,
                       endpoint_type=endpoint.type if endpoint else None,
                       timings=dict(timings))
        for key, value in extra.items():
            payload[key] = (value.get(payload['port_id'])
                            if isinstance(value, dict) else value)
        return payload

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued was sent (or failed).

        :returns: whether the queue emptied in time.
        """
        deadline = time.monotonic() + timeout
        while self.queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Send what is queued, stop the thread, release the transport."""
        if not self.flush(timeout):
            LOG.warning('%d notification(s) not sent at stop',
                        self.queue.unfinished_tasks)
        self.queue.put(_STOP)
        self._thread.join(timeout)
        if self._own:
            self.transport.cleanup()

    # -- health (the watcher's reports) --------------------------------------

    def start_health(self, records: Iterable[ledger_mod.PortRecord]) -> None:
        """Remember which ports are not healthy when the agent starts (a
        later restore of one is news; of a healthy one it is not)."""
        with self._lock:
            for record in records:
                if record.health != ledger_mod.HEALTHY:
                    self.degraded.setdefault(record.port.port_id, None)

    def on_report(self, report: Any, records: dict[str, Any]) -> None:
        """Turn a watcher round's :class:`~vif_plug_dyn.runtime.watcher.
        Report` into degraded and restored notifications.

        :param records: the watcher's records by port id (for the
            network and endpoint of each port).
        """
        now = time.monotonic()
        since = (now - report.woke) * 1000.0 if report.woke else None
        with self._lock:
            lost = [p for p in dict.fromkeys(report.degraded)
                    if p not in self.degraded or
                    self.degraded[p] is None]
            for port_id in lost:
                self.degraded[port_id] = now
            back = [(p, self.degraded.pop(p)) for p in
                    dict.fromkeys(report.restored) if p in self.degraded]
        for port_id in lost:
            record = records.get(port_id)
            if record is not None:
                self.emit(agent.EVENT_DEGRADED, [record],
                          {'detect_ms': since}, priority='warn',
                          resynced=report.resynced)
        for port_id, when in back:
            record = records.get(port_id)
            if record is not None:
                self.emit(agent.EVENT_RESTORED, [record],
                          {'heal_ms': since,
                           'outage_ms': (now - when) * 1000.0
                           if when is not None else None},
                          resynced=report.resynced)

    def forget(self, port_ids: Iterable[str]) -> None:
        """Ports released: no restore of theirs will come."""
        with self._lock:
            for port_id in port_ids:
                self.degraded.pop(port_id, None)
