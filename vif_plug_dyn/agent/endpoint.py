"""The agent's RPC API, version 1.0.

Target: exchange ``vif_plug_dyn``, topic ``vif_plug_dyn.agent``,
``server=<host>``. Every method takes the request context first (unused:
the bus is the trust boundary, see the deployment guide) and keyword
arguments:

``capabilities()``
    ``host_capabilities()`` plus ``host``, ``rpc_api_version`` and
    ``hypervisor``.
``request_endpoints(ports, accepted_types, options, connected)``
    ``[Endpoint]``, all or nothing, one driver batch per network.
``release_endpoints(port_ids)``
    ``None`` (unknown ports are skipped).
``connect(port_id, network=None)``, ``disconnect(port_id)``
    the ``Endpoint``.
``set_link_state(port_id, state)``
    ``None`` (``up``, ``down`` or ``follow``).
``plug(port, accepted_types, options)``
    the ``Endpoint``; ``unplug(port_id)``: ``None``.
``port_status(port_ids=None, network=None)``
    ``[record]``.
``reconcile()``
    ``{forgotten, restored, removed}``.
``migrate(domain, destination, dest_uri, migrate_uri=None, rewrites=None)``
    ``{domain, destination, dest_endpoints, released, took}``.

Ports, endpoints and requests travel as versioned primitives
(:mod:`vif_plug_dyn.objects`); a record is ``{request, endpoint, state,
cable, health, updated, link}``.

Compatibility rules
-------------------
* The agent serves ``1.N`` and answers every call sent with a version
  ``1.M``, ``M <= N``. A client sends the lowest version that has what it
  uses (``1.0`` for everything above) and may cap what it sends
  (``AgentClient(version_cap=...)``) while older agents remain.
* Within 1.x, a new method or a new *optional* argument bumps the minor
  version; no argument is removed, renamed or made mandatory, and no
  result loses a key. A client that needs 1.N calls with ``version='1.N'``
  and gets oslo.messaging's UnsupportedVersion (as
  :exc:`~vif_plug_dyn.exception.AgentCallFailed`) from an older agent.
* Objects follow their own back-level rule: readers accept any minor
  version of an object's major version, ignoring fields they do not know;
  a new *major* version of an object needs a new major RPC version.
* A new major RPC version (2.0) is served beside 1.x by a second endpoint
  for at least one release, so agents and controllers upgrade in any
  order.
* Errors are the library's exception classes (module
  ``vif_plug_dyn.exception``, rebuilt by the caller); an unexpected error
  in an agent comes back as :exc:`~vif_plug_dyn.exception.
  AgentCallFailed`, its traceback in the agent's log.
"""

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from oslo_log import log as logging

from vif_plug_dyn import agent
from vif_plug_dyn import exception
from vif_plug_dyn import ledger as ledger_mod
from vif_plug_dyn import rpc
from vif_plug_dyn import validate
from vif_plug_dyn._messaging import oslo_messaging

LOG = logging.getLogger(__name__)

_F = TypeVar('_F', bound=Callable[..., Any])


def _wire_copy(exc: exception.VifPlugDynException
               ) -> exception.VifPlugDynException:
    """The same exception with only primitives in ``kwargs`` (what the
    bus can carry)."""
    wire = exc.args[1] if len(exc.args) > 1 and \
        isinstance(exc.args[1], dict) else {}
    try:
        return type(exc)(exc.message, wire)
    except Exception:  # noqa: BLE001 - a class with its own signature
        return exception.VifPlugDynException(exc.message, wire)


def typed(func: _F) -> _F:
    """Send the library's exceptions back as they are (no traceback in
    the agent's log: they are answers), anything else as
    :exc:`~vif_plug_dyn.exception.AgentCallFailed` (with one)."""

    @functools.wraps(func)
    def wrapper(self: 'AgentEndpoint', ctxt: Any, **kwargs: Any) -> Any:
        try:
            for value in kwargs.values():
                if isinstance(value, rpc.BadArgument):
                    raise value.error
            return func(self, ctxt, **kwargs)
        except exception.VifPlugDynException as exc:
            LOG.info('%(method)s: %(error)s',
                     {'method': func.__name__, 'error': exc})
            error = _wire_copy(exc)
        except Exception as exc:  # noqa: BLE001 - answered, typed
            LOG.exception('%s failed unexpectedly', func.__name__)
            error = exception.AgentCallFailed(
                host=self._host, method=func.__name__,
                reason='%s: %s' % (type(exc).__name__, exc))
        try:
            raise error
        except exception.VifPlugDynException:
            # NOTE(vpd): ExpectedException takes the exception being
            # handled; the server sends it without logging a traceback.
            raise oslo_messaging.ExpectedException() from None

    return wrapper  # type: ignore[return-value]


class AgentEndpoint:
    """Serves the public API of one host's manager over RPC.

    :param service: the :class:`~vif_plug_dyn.agent.service.AgentService`
        (its manager, notifier, host name and hypervisor adapter).
    """

    target = oslo_messaging.Target(namespace=None,
                                   version=agent.RPC_API_VERSION)

    def __init__(self, service: Any) -> None:
        # NOTE(vpd): every attribute but the API's methods is private:
        # oslo.messaging dispatches any public name a caller sends.
        self._service = service
        self._host = service.host

    @property
    def _manager(self) -> Any:
        return self._service.manager

    @property
    def _notifier(self) -> Any:
        return self._service.notifier

    # -- host ---------------------------------------------------------------

    @typed
    def capabilities(self, ctxt: Any) -> dict[str, Any]:
        result = self._manager.host_capabilities()
        result.update(host=self._host, rpc_api_version=agent.RPC_API_VERSION,
                      hypervisor=self._service.hypervisor_name())
        return result

    @typed
    def reconcile(self, ctxt: Any) -> dict[str, list[str]]:
        return self._manager.reconcile()

    @typed
    def port_status(self, ctxt: Any, port_ids: list[str] | None = None,
                    network: str | None = None) -> list[dict[str, Any]]:
        ledger = self._manager.ledger
        if port_ids is not None:
            if not isinstance(port_ids, list):
                raise exception.InvalidField(field='port_ids',
                                             value=port_ids,
                                             reason='must be a list')
            records = ledger.get_ports([
                validate.uuid(p, 'port_ids[%d]' % i)
                for i, p in enumerate(port_ids)])
        else:
            records = ledger.list_ports(network)
        return [rpc.record_to_wire(r) for r in records]

    # -- endpoints ------------------------------------------------------------

    @typed
    def request_endpoints(self, ctxt: Any, ports: list[Any],
                          accepted_types: list[str] | None = None,
                          options: dict[str, str] | None = None,
                          connected: bool = True) -> list[Any]:
        started = time.monotonic()
        before = self._plugged(ports)
        kwargs: dict[str, Any] = {'options': options,
                                  'connected': connected}
        if accepted_types is not None:
            kwargs['accepted_types'] = accepted_types
        made = self._manager.request_endpoints(ports, **kwargs)
        if connected:
            self._notifier.emit(
                agent.EVENT_PLUGGED,
                [e for e in made if before.get(e.port_id) != e.network],
                self._timings(started, len(made)))
        return made

    @typed
    def release_endpoints(self, ctxt: Any, port_ids: list[str]) -> None:
        started = time.monotonic()
        known = self._records(port_ids)
        self._manager.release_endpoints(port_ids)
        self._released(known, started)

    @typed
    def plug(self, ctxt: Any, port: Any,
             accepted_types: list[str] | None = None,
             options: dict[str, str] | None = None) -> Any:
        started = time.monotonic()
        before = self._plugged([port])
        kwargs: dict[str, Any] = {'options': options}
        if accepted_types is not None:
            kwargs['accepted_types'] = accepted_types
        endpoint = self._manager.plug(port, **kwargs)
        if before.get(endpoint.port_id) != endpoint.network:
            self._notify_plugged(endpoint, started, before)
        return endpoint

    @typed
    def unplug(self, ctxt: Any, port_id: str) -> None:
        started = time.monotonic()
        known = self._records([port_id])
        self._manager.unplug(port_id)
        self._released(known, started)

    # -- cable ----------------------------------------------------------------

    @typed
    def connect(self, ctxt: Any, port_id: str,
                network: str | None = None) -> Any:
        started = time.monotonic()
        before = self._plugged([port_id])
        endpoint = self._manager.connect(port_id, network)
        if before.get(endpoint.port_id) != endpoint.network:
            self._notify_plugged(endpoint, started, before)
        return endpoint

    @typed
    def disconnect(self, ctxt: Any, port_id: str) -> Any:
        started = time.monotonic()
        known = self._records([port_id])
        endpoint = self._manager.disconnect(port_id)
        self._notifier.emit(
            agent.EVENT_UNPLUGGED,
            [r for r in known.values() if r.cable == ledger_mod.PLUGGED],
            self._timings(started, 1))
        return endpoint

    @typed
    def set_link_state(self, ctxt: Any, port_id: str, state: str) -> None:
        self._manager.set_link_state(port_id, state)

    # -- migration ------------------------------------------------------------

    @typed
    def migrate(self, ctxt: Any, domain: str, destination: str,
                dest_uri: str, migrate_uri: str | None = None,
                rewrites: dict[str, str] | None = None) -> dict[str, Any]:
        started = time.monotonic()
        result, records = self._service.migrate(
            domain, destination, dest_uri, migrate_uri=migrate_uri,
            rewrites=rewrites)
        took = time.monotonic() - started
        self._notifier.forget(result.released)
        self._notifier.emit(
            agent.EVENT_UNPLUGGED,
            [r for r in records if r.cable == ledger_mod.PLUGGED],
            self._timings(started, len(records)),
            migrated_to=destination)
        return {'domain': result.domain, 'destination': destination,
                'dest_endpoints': result.dest_endpoints,
                'released': result.released, 'took': took}

    # -- helpers --------------------------------------------------------------

    def _records(self, port_ids: list[Any]
                 ) -> dict[str, ledger_mod.PortRecord]:
        if not isinstance(port_ids, (list, tuple)):
            return {}
        ids = [p for p in port_ids if isinstance(p, str)]
        try:
            return self._manager.ledger.records_by_id(ids)
        except exception.VifPlugDynException:
            # NOTE(vpd): a malformed id: the manager call that follows
            # raises the typed error naming it.
            return {}

    def _plugged(self, items: list[Any]) -> dict[str, str]:
        """``{port_id: network}`` of the ports among ``items`` (ports or
        ids) whose cable is in now."""
        ids = [getattr(i, 'port_id', i) for i in items]
        return {pid: r.network for pid, r in self._records(ids).items()
                if r.cable == ledger_mod.PLUGGED and r.endpoint is not None}

    def _released(self, known: dict[str, ledger_mod.PortRecord],
                  started: float) -> None:
        self._notifier.forget(known)
        self._notifier.emit(
            agent.EVENT_UNPLUGGED,
            [r for r in known.values() if r.cable == ledger_mod.PLUGGED],
            self._timings(started, len(known)), released=True)

    def _notify_plugged(self, endpoint: Any, started: float,
                        before: dict[str, str]) -> None:
        self._notifier.emit(agent.EVENT_PLUGGED, [endpoint],
                           self._timings(started, 1),
                           moved_from=before.get(endpoint.port_id))

    @staticmethod
    def _timings(started: float, batch: int) -> dict[str, Any]:
        return {'took_ms': round((time.monotonic() - started) * 1000.0, 3),
                'batch': batch}
