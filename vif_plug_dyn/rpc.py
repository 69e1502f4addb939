"""Controllers' side of the agent: :class:`AgentClient`.

::

    from vif_plug_dyn import rpc

    transport = rpc.get_transport(conf)       # [DEFAULT] transport_url
    hosta = rpc.AgentClient('hosta', conf, transport=transport)
    endpoints = hosta.request_endpoints(ports, ['ethernet'])
    hosta.connect(port_id, 'blue')            # move the cable
    hosta.cast('release_endpoints', port_ids=[port_id])

Every method is one RPC call to the agent serving ``host`` (topic
``vif_plug_dyn.agent``, ``server=host``, API 1.0; see
:mod:`vif_plug_dyn.agent.endpoint`). Ports and endpoints travel as the
library's versioned primitives (:mod:`vif_plug_dyn.objects`) and come
back as objects. Errors come back as the library's own exceptions, typed
as the agent raised them (``allowed_remote_exmods``), with the agent's
message; a call that gets no answer in time raises
:exc:`~vif_plug_dyn.exception.AgentTimeout`, a bus that cannot carry it
:exc:`~vif_plug_dyn.exception.AgentUnreachable`.

An :class:`AgentClient` is a :class:`~vif_plug_dyn.virt.migration.
DestinationHost` and a :class:`~vif_plug_dyn.virt.migration.SourceHost`:
a :class:`~vif_plug_dyn.virt.migration.MigrationFlow` can reach either
host over the bus.
"""

import concurrent.futures
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from vif_plug_dyn import _messaging
from vif_plug_dyn._messaging import oslo_messaging
from oslo_config import cfg
from oslo_log import log as logging

from vif_plug_dyn import agent
from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import ledger as ledger_mod
from vif_plug_dyn import ports
from vif_plug_dyn.agent.wire import BadArgument
from vif_plug_dyn.agent.wire import from_wire
from vif_plug_dyn.agent.wire import ObjectSerializer
from vif_plug_dyn.agent.wire import record_from_wire
from vif_plug_dyn.agent.wire import record_to_wire
from vif_plug_dyn.agent.wire import to_wire

LOG = logging.getLogger(__name__)

__all__ = ['AgentClient', 'ALLOWED_EXMODS', 'BadArgument', 'call_many',
           'from_wire', 'get_transport', 'ObjectSerializer',
           'oslo_messaging', 'record_from_wire', 'record_to_wire',
           'target', 'to_wire', 'wait_for_agent']

#: Modules whose exceptions an agent's reply may rebuild on this side.
ALLOWED_EXMODS = ['vif_plug_dyn.exception']
_REMOTE = '_Remote'
#: Seconds a first call may take beyond its timeout to connect.
CONNECT_GRACE = 10.0
#: Transports that have answered a call (their reply queue exists).
_ANSWERED: 'weakref.WeakSet[Any]' = weakref.WeakSet()


# -- transport ----------------------------------------------------------------

def get_transport(conf: cfg.ConfigOpts | None = None, url: str | None = None
                  ) -> oslo_messaging.Transport:
    """The RPC transport of ``conf`` (``[DEFAULT] transport_url``), set up
    to rebuild the library's exceptions.

    :param url: a transport URL overriding the configuration's.
    :raises AgentUnreachable: the URL is invalid.
    """
    conf = cfg.CONF if conf is None else conf
    _messaging.prepare_conf(conf)
    try:
        return oslo_messaging.get_rpc_transport(
            conf, url=url, allowed_remote_exmods=ALLOWED_EXMODS)
    except (oslo_messaging.InvalidTransportURL,
            oslo_messaging.DriverLoadFailure) as exc:
        raise exception.AgentUnreachable(host='*', method='connecting',
                                         reason=str(exc)) from None


def target(host: str | None = None, version: str | None = None
           ) -> oslo_messaging.Target:
    """The RPC target of the agent on ``host`` (all agents: ``None``)."""
    return oslo_messaging.Target(exchange=agent.EXCHANGE, topic=agent.TOPIC,
                                 server=host, version=version)


def _clean(exc: exception.VifPlugDynException, host: str
           ) -> exception.VifPlugDynException:
    """The same exception without oslo.messaging's ``_Remote`` wrapping
    (whose ``str()`` appends the agent's traceback)."""
    cls = type(exc)
    if not cls.__name__.endswith(_REMOTE):
        return exc
    base = next((c for c in cls.__mro__[1:]
                 if issubclass(c, exception.VifPlugDynException)),
                exception.VifPlugDynException)
    fields = dict(exc.kwargs)
    try:
        clean = base(exc.message, fields)
    except Exception:  # noqa: BLE001 - a class with its own signature
        clean = exception.AgentCallFailed(host=host, method='?',
                                          reason=exc.message)
    clean.remote_host = host  # type: ignore[attr-defined]
    return clean


# -- the client ---------------------------------------------------------------

class AgentClient:
    """Calls the agent of one host.

    :param host: the agent's ``[vif_plug_dyn_agent] host``.
    :param conf: the configuration (``transport_url``, ``rpc_timeout``);
        ``oslo_config.cfg.CONF`` when omitted.
    :param transport: a transport to share (see :func:`get_transport`);
        one is made (and closed by :meth:`close`) when omitted.
    :param timeout: seconds to wait for an answer (``[vif_plug_dyn_agent]
        rpc_timeout`` when omitted).
    :param version_cap: the highest API version to send (rolling upgrades:
        pin to what the oldest agent serves).
    :param retry: connection retries (``[vif_plug_dyn_agent] rpc_retry``
        when omitted; ``-1``: forever; ``0``: none).
    """

    def __init__(self, host: str, conf: cfg.ConfigOpts | None = None,
                 transport: oslo_messaging.Transport | None = None,
                 timeout: float | None = None,
                 version_cap: str | None = None,
                 retry: int | None = None) -> None:
        self.conf = cfg.CONF if conf is None else conf
        agent.register_opts(self.conf)
        self.host = host
        self._own = transport is None
        self.transport = transport or get_transport(self.conf)
        self.timeout = (self.conf[agent.GROUP].rpc_timeout
                        if timeout is None else timeout)
        self.migration_timeout = self.conf[agent.GROUP].migration_timeout
        retry = self.conf[agent.GROUP].rpc_retry if retry is None else retry
        # NOTE(vpd): oslo.messaging retries connecting forever by default
        # and the call's timeout does not cover it: a controller facing a
        # bus that is down would hang instead of getting AgentUnreachable.
        self.client = oslo_messaging.get_rpc_client(
            self.transport, target(host, agent.RPC_API_VERSION),
            serializer=ObjectSerializer(), version_cap=version_cap,
            retry=None if retry < 0 else retry)

    def close(self) -> None:
        """Release the transport if this client made it."""
        if self._own:
            self.transport.cleanup()

    def __enter__(self) -> 'AgentClient':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return '<AgentClient %s>' % self.host

    # -- generic -------------------------------------------------------------

    def call(self, method: str, timeout: float | None = None,
             version: str | None = None, **kwargs: Any) -> Any:
        """Call ``method`` on the agent and return its (deserialised)
        result.

        :param timeout: seconds (the client's when omitted).
        :param version: the API version the call needs (``1.0`` when
            omitted).

        :raises AgentTimeout: no answer within ``timeout``.
        :raises AgentUnreachable: the bus cannot carry the call.
        :raises VifPlugDynException: what the agent raised, typed.
        """
        wait = self.timeout if timeout is None else timeout
        prepare: dict[str, Any] = {'timeout': wait}
        if version is not None:
            prepare['version'] = version
        cctxt = self.client.prepare(**prepare)
        if self.transport in _ANSWERED:
            return self._call(cctxt, method, wait, kwargs)
        result = self._first_call(cctxt, method, wait, kwargs)
        _ANSWERED.add(self.transport)
        return result

    def _first_call(self, cctxt: Any, method: str, wait: float,
                    kwargs: dict[str, Any]) -> Any:
        """The first call of a transport, bounded in time.

        NOTE(vpd): the first call also connects the reply queue, and
        oslo.messaging retries that connection forever whatever the
        call's timeout or retry says: with the bus down a controller
        would hang. The call runs in a thread here and the caller gets
        AgentUnreachable when it has not come back in time (the thread
        gives up when the process ends).
        """
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box['result'] = self._call(cctxt, method, wait, kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed over
                box['error'] = exc

        thread = threading.Thread(target=run, name='vpd-rpc-first',
                                  daemon=True)
        thread.start()
        thread.join(wait + CONNECT_GRACE)
        if thread.is_alive():
            raise exception.AgentUnreachable(
                host=self.host, method=method,
                reason='no connection to the message bus within %.1f s'
                       % (wait + CONNECT_GRACE))
        if 'error' in box:
            raise box['error']
        return box['result']

    def _call(self, cctxt: Any, method: str, wait: float,
              kwargs: dict[str, Any]) -> Any:
        try:
            return cctxt.call({}, method, **kwargs)
        except exception.VifPlugDynException as exc:
            raise _clean(exc, self.host) from None
        except oslo_messaging.MessagingTimeout:
            raise exception.AgentTimeout(host=self.host, method=method,
                                         timeout=wait) from None
        except oslo_messaging.RemoteError as exc:
            raise exception.AgentCallFailed(
                host=self.host, method=method,
                reason='%s: %s' % (exc.exc_type, exc.value)) from None
        except (oslo_messaging.NoSuchMethod,
                oslo_messaging.UnsupportedVersion) as exc:
            # NOTE(vpd): the agent refused the call itself (the fake
            # driver raises these as they are, RabbitMQ as RemoteError).
            raise exception.AgentCallFailed(
                host=self.host, method=method,
                reason='%s: %s' % (type(exc).__name__, exc)) from None
        except oslo_messaging.MessagingException as exc:
            raise exception.AgentUnreachable(host=self.host, method=method,
                                             reason=str(exc)) from None
        except Exception as exc:
            # NOTE(vpd): Python's own exceptions are always rebuilt by
            # oslo.messaging (an agent's dispatcher failing a call it
            # could not even start); the caller gets the library's type,
            # with the first line of the message (the rest is the
            # agent's traceback).
            name = type(exc).__name__
            if name.endswith(_REMOTE):
                name = name[:-len(_REMOTE)]
            raise exception.AgentCallFailed(
                host=self.host, method=method, reason='%s: %s' % (
                    name, str(exc).split('\n', 1)[0])) from None

    def cast(self, method: str, **kwargs: Any) -> None:
        """Send ``method`` without waiting for it to run (errors stay in
        the agent's log; watch the notifications or ``port_status``).

        :raises AgentUnreachable: the bus cannot carry it.
        """
        try:
            self.client.prepare().cast({}, method, **kwargs)
        except oslo_messaging.MessagingException as exc:
            raise exception.AgentUnreachable(host=self.host, method=method,
                                             reason=str(exc)) from None

    # -- the API -------------------------------------------------------------

    def capabilities(self, timeout: float | None = None) -> dict[str, Any]:
        """What the host offers (:meth:`.EndpointManager.host_capabilities`)
        plus ``host``, ``rpc_api_version`` and ``hypervisor``."""
        return self.call('capabilities', timeout)

    def host_capabilities(self) -> dict[str, Any]:
        """:meth:`capabilities` (the migration flow's name for it)."""
        return self.capabilities()

    def request_endpoints(self, ports_: Sequence[ports.Port],
                          accepted_types: Sequence[str] = (
                              endpoints.BRIDGE, endpoints.DIRECT,
                              endpoints.ETHERNET, endpoints.HOSTDEV),
                          options: dict[str, str] | None = None,
                          connected: bool = True,
                          timeout: float | None = None
                          ) -> list[endpoints.Endpoint]:
        """Endpoints for many ports in one call, all or nothing (see
        :meth:`.EndpointManager.request_endpoints`)."""
        return self.call('request_endpoints', timeout, ports=list(ports_),
                         accepted_types=list(accepted_types),
                         options=dict(options or {}), connected=connected)

    def request_endpoint(self, port: ports.Port,
                         accepted_types: Sequence[str] = (
                             endpoints.BRIDGE, endpoints.DIRECT,
                             endpoints.ETHERNET, endpoints.HOSTDEV),
                         options: dict[str, str] | None = None,
                         connected: bool = True) -> endpoints.Endpoint:
        """One port's endpoint (see :meth:`request_endpoints`)."""
        return self.request_endpoints([port], accepted_types, options,
                                      connected)[0]

    def release_endpoints(self, port_ids: Sequence[str],
                          timeout: float | None = None) -> None:
        """Remove many ports' endpoints; unknown ports are skipped."""
        self.call('release_endpoints', timeout, port_ids=list(port_ids))

    def release_endpoint(self, port_id: str) -> None:
        """Remove one port's endpoint."""
        self.release_endpoints([port_id])

    def connect(self, port_id: str, network: str | None = None
                ) -> endpoints.Endpoint:
        """Plug (or move) a port's cable."""
        return self.call('connect', port_id=port_id, network=network)

    def disconnect(self, port_id: str) -> endpoints.Endpoint:
        """Pull a port's cable out."""
        return self.call('disconnect', port_id=port_id)

    def set_link_state(self, port_id: str, state: str) -> None:
        """Force the guest link ``up``/``down`` or let it ``follow``."""
        self.call('set_link_state', port_id=port_id, state=state)

    def plug(self, port: ports.Port,
             accepted_types: Sequence[str] = (
                 endpoints.ETHERNET, endpoints.BRIDGE, endpoints.DIRECT,
                 endpoints.HOSTDEV),
             options: dict[str, str] | None = None) -> endpoints.Endpoint:
        """Agent style: build if needed and plug into ``port.network``."""
        return self.call('plug', port=port,
                         accepted_types=list(accepted_types),
                         options=dict(options or {}))

    def unplug(self, port: ports.Port | str) -> None:
        """Agent style: remove the port's endpoint."""
        port_id = port.port_id if isinstance(port, ports.Port) else port
        self.call('unplug', port_id=port_id)

    def port_status(self, port_ids: Sequence[str] | None = None,
                    network: str | None = None,
                    timeout: float | None = None
                    ) -> list[ledger_mod.PortRecord]:
        """The agent's ledger records (of ``port_ids``, or of a network,
        or all)."""
        return [record_from_wire(r) for r in self.call(
            'port_status', timeout,
            port_ids=None if port_ids is None else list(port_ids),
            network=network)]

    def get_port(self, port_id: str) -> ledger_mod.PortRecord | None:
        """One port's record, ``None`` if the agent has none."""
        found = self.port_status([port_id])
        return found[0] if found else None

    def reconcile(self, timeout: float | None = None
                  ) -> dict[str, list[str]]:
        """Repair the agent's host after a crash (see
        :meth:`.EndpointManager.reconcile`)."""
        return self.call('reconcile', timeout)

    def migrate(self, domain: str, destination: str, dest_uri: str,
                migrate_uri: str | None = None,
                rewrites: dict[str, str] | None = None,
                timeout: float | None = None) -> dict[str, Any]:
        """Live-migrate ``domain`` from this agent's host to
        ``destination``'s, with its ports requested there by network name
        (:class:`~vif_plug_dyn.virt.migration.MigrationFlow` run by this
        agent, the destination reached over the bus).

        :param dest_uri: the destination hypervisor
            (``qemu+tcp://hostb/system``).
        :param migrate_uri: where the migration stream goes.
        :param rewrites: ``{old: new}`` replacements of host-specific
            strings outside the NICs (paths) in the definitions.
        :returns: ``{'domain', 'destination', 'dest_endpoints' {mac:
            Endpoint}, 'released' [port ids], 'took'}``.
        """
        return self.call('migrate',
                         self.migration_timeout if timeout is None
                         else timeout,
                         domain=domain, destination=destination,
                         dest_uri=dest_uri, migrate_uri=migrate_uri,
                         rewrites=dict(rewrites or {}))


def call_many(clients: Iterable[AgentClient], method: str,
              kwargs_by_host: dict[str, dict[str, Any]] | None = None,
              timeout: float | None = None, workers: int = 16,
              **kwargs: Any) -> dict[str, Any]:
    """Call ``method`` on many agents at once.

    :param kwargs_by_host: arguments per host (``kwargs`` for the rest).
    :returns: ``{host: result or the exception it raised}``; nothing is
        raised for one agent's failure.
    """
    clients = list(clients)
    found: dict[str, Any] = {}
    by_host = kwargs_by_host or {}
    with concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, min(workers, len(clients)))) as pool:
        futures = {pool.submit(c.call, method, timeout,
                               **by_host.get(c.host, kwargs)): c.host
                   for c in clients}
        for future in concurrent.futures.as_completed(futures):
            host = futures[future]
            try:
                found[host] = future.result()
            except Exception as exc:  # noqa: BLE001 - reported per host
                found[host] = exc
    return found


def wait_for_agent(client: AgentClient, timeout: float = 60.0,
                   interval: float = 0.5) -> dict[str, Any]:
    """Call ``capabilities`` until the agent answers.

    :raises AgentTimeout: no answer within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            return client.capabilities(timeout=max(0.5, min(5.0, left)))
        except (exception.AgentTimeout, exception.AgentUnreachable):
            if time.monotonic() + interval > deadline:
                raise exception.AgentTimeout(host=client.host,
                                             method='capabilities',
                                             timeout=timeout) from None
            time.sleep(interval)
