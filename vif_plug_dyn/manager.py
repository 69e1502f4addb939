"""The endpoint manager: what the public API does.

It ties the pieces together: the network registry says what a network is,
negotiation picks a driver and an endpoint type, the driver builds the host
side, and the ledger records every step so that a crash can be recovered
and nothing is ever built twice.
"""

import collections
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging

from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import host as host_mod
from vif_plug_dyn import ledger as ledger_mod
from vif_plug_dyn import negotiation
from vif_plug_dyn import networks
from vif_plug_dyn import opts
from vif_plug_dyn import ports
from vif_plug_dyn.drivers import base

LOG = logging.getLogger(__name__)


class EndpointManager:
    """Requests, releases, connects and disconnects endpoints on this host.

    Thread-safe; several processes may share one ledger.

    :param conf: a configuration with the library's options registered.
    :param host: the privileged host helper handed to drivers (built from
        ``conf`` on first use when ``None``).
    """

    def __init__(self, conf: cfg.ConfigOpts, host: Any = None) -> None:
        self.conf = conf
        group = conf[opts.GROUP]
        self.registry = networks.NetworkRegistry(group.network_dir)
        self.registry.load()
        self.ledger = ledger_mod.Ledger(group.state_path,
                                        timeout=group.lock_timeout)
        if host is None:
            # NOTE(vpd): cheap: the privileged daemon only starts on the
            # first call a driver makes through it.
            host = host_mod.HostNetwork(conf)
        self.context = base.DriverContext(conf=conf, ledger=self.ledger,
                                          host=host)
        self.drivers = negotiation.DriverSet(conf, self.context)
        self._locks: dict[str, threading.Lock] = collections.defaultdict(
            threading.Lock)
        self._locks_guard = threading.Lock()

    @contextlib.contextmanager
    def _port_lock(self, port_id: str) -> Iterator[None]:
        # NOTE(vpd): one lock per port serialises operations on a port
        # within this process; the ledger's 'building' state does the same
        # across processes.
        with self._locks_guard:
            lock = self._locks[port_id]
        with lock:
            yield

    # -- endpoints --------------------------------------------------------

    def request_endpoint(self, port: ports.Port,
                         accepted_types: tuple[str, ...] | list[str] = (
                             endpoints.BRIDGE, endpoints.DIRECT,
                             endpoints.ETHERNET, endpoints.HOSTDEV),
                         options: dict[str, str] | None = None,
                         connected: bool = True) -> endpoints.Endpoint:
        """Return an endpoint for ``port`` on ``port.network``.

        Idempotent: asking again for the same port on the same network
        returns the recorded endpoint when its type is still acceptable.

        :param port: the port.
        :param accepted_types: what the hypervisor can consume, most
            preferred first.
        :param options: driver options.
        :param connected: whether the cable starts plugged; ``False``
            builds the endpoint with its cable out (boot unplugged).
        :raises NetworkNotFound: the network is not defined here.
        :raises NoMatchingEndpointType: negotiation failed.
        :raises PortConflict: the port is recorded on another network or
            with an endpoint type the request no longer accepts.
        """
        request = ports.EndpointRequest(port=port,
                                        accepted_types=tuple(accepted_types),
                                        options=dict(options or {}))
        network = self.registry.get(port.network)
        with self._port_lock(port.port_id):
            record = self.ledger.get_port(port.port_id)
            if record is not None:
                return self._existing(record, request)
            driver, endpoint_type = self.drivers.negotiate(request, network)
            driver.check_request(request, network)
            cable = (ledger_mod.PLUGGED if connected
                     else ledger_mod.UNPLUGGED)
            self.ledger.begin_port(request, cable)
            try:
                endpoint = driver.create_endpoint(request, network,
                                                  endpoint_type, connected)
            except BaseException:
                # NOTE(vpd): the driver removed what it built; forget the
                # port and its allocations so a retry starts clean.
                self.ledger.delete_port(port.port_id)
                raise
            self.ledger.update_port(port.port_id, endpoint=endpoint,
                                    state=ledger_mod.ACTIVE)
            LOG.info('Port %(port)s: %(type)s endpoint on network '
                     '%(network)s (cable %(cable)s)',
                     {'port': port.port_id, 'type': endpoint.type,
                      'network': network.name, 'cable': cable})
            return endpoint

    def _existing(self, record: ledger_mod.PortRecord,
                  request: ports.EndpointRequest) -> endpoints.Endpoint:
        port_id = request.port.port_id
        if record.endpoint is None:
            raise exception.PortConflict(
                port_id=port_id, reason='its endpoint is still being built '
                                        '(by another process, or left by a '
                                        'crash: reconcile() clears it)')
        if record.port.mac != request.port.mac:
            raise exception.PortConflict(
                port_id=port_id, reason='recorded with MAC %s, not %s' % (
                    record.port.mac, request.port.mac))
        if record.network != request.port.network:
            raise exception.PortConflict(
                port_id=port_id, reason='its endpoint is on network %s; use '
                                        'connect() to move it to %s' % (
                                            record.network,
                                            request.port.network))
        if record.endpoint.type not in request.accepted_types:
            raise exception.PortConflict(
                port_id=port_id, reason='its endpoint is of type %s, which '
                                        'the request (%s) does not accept' % (
                                            record.endpoint.type,
                                            ', '.join(
                                                request.accepted_types)))
        return record.endpoint

    def release_endpoint(self, port_id: str) -> None:
        """Remove a port's endpoint and forget the port; a no-op when the
        port is unknown."""
        with self._port_lock(port_id):
            record = self.ledger.get_port(port_id)
            if record is None:
                return
            if record.endpoint is not None:
                network = self._network_or_none(record.network)
                if network is not None:
                    self.drivers.for_network(network).delete_endpoint(
                        record.endpoint, network)
            self.ledger.delete_port(port_id)
            LOG.info('Port %s released', port_id)

    def get_endpoint(self, port_id: str) -> endpoints.Endpoint:
        """Return a port's endpoint.

        :raises PortNotFound: no endpoint for that port.
        """
        record = self.ledger.get_port(port_id)
        if record is None or record.endpoint is None:
            raise exception.PortNotFound(port_id=port_id)
        return record.endpoint

    def _network_or_none(self, name: str) -> networks.Network | None:
        try:
            return self.registry.get(name)
        except exception.NetworkNotFound:
            LOG.warning('Network %s is no longer defined; releasing its '
                        'port without host cleanup', name)
            return None

    # -- cable ------------------------------------------------------------

    def connect(self, port_id: str, network: str | None = None
                ) -> endpoints.Endpoint:
        """Plug a port's cable into ``network`` (its current network when
        ``None``); moving it when it is plugged elsewhere.

        Idempotent: connecting a plugged port to its own network does
        nothing.

        :raises PortNotFound: no endpoint for that port.
        :raises NetworkNotFound: the target network is not defined.
        :raises OperationNotSupported: a driver has no runtime cable.
        """
        with self._port_lock(port_id):
            record = self._active(port_id)
            assert record.endpoint is not None
            target = self.registry.get(network or record.network)
            if record.cable == ledger_mod.PLUGGED and \
                    target.name == record.network:
                return record.endpoint
            if record.cable == ledger_mod.PLUGGED:
                current = self.registry.get(record.network)
                self.drivers.for_network(current).disconnect(
                    record.endpoint, current)
                self.ledger.update_port(port_id,
                                        cable=ledger_mod.UNPLUGGED)
            endpoint = self.drivers.for_network(target).connect(
                record.endpoint, target)
            request = ports.EndpointRequest(
                port=record.port.on_network(target.name),
                accepted_types=record.request.accepted_types,
                options=record.request.options)
            self.ledger.update_port(port_id, request=request,
                                    endpoint=endpoint,
                                    cable=ledger_mod.PLUGGED)
            LOG.info('Port %(port)s plugged into %(network)s',
                     {'port': port_id, 'network': target.name})
            return endpoint

    def disconnect(self, port_id: str) -> endpoints.Endpoint:
        """Unplug a port's cable, keeping its endpoint; a no-op when it is
        already unplugged.

        :raises PortNotFound: no endpoint for that port.
        """
        with self._port_lock(port_id):
            record = self._active(port_id)
            assert record.endpoint is not None
            if record.cable == ledger_mod.PLUGGED:
                network = self.registry.get(record.network)
                self.drivers.for_network(network).disconnect(
                    record.endpoint, network)
                self.ledger.update_port(port_id,
                                        cable=ledger_mod.UNPLUGGED)
                LOG.info('Port %s unplugged', port_id)
            return record.endpoint

    def _active(self, port_id: str) -> ledger_mod.PortRecord:
        record = self.ledger.get_port(port_id)
        if record is None or record.endpoint is None:
            raise exception.PortNotFound(port_id=port_id)
        return record

    # -- agent style --------------------------------------------------------

    def plug(self, port: ports.Port,
             accepted_types: tuple[str, ...] | list[str] = (
                 endpoints.ETHERNET, endpoints.BRIDGE, endpoints.DIRECT,
                 endpoints.HOSTDEV),
             options: dict[str, str] | None = None) -> endpoints.Endpoint:
        """Make ``port`` work on ``port.network``: build its endpoint if
        needed and plug its cable there (moving it if it is elsewhere)."""
        record = self.ledger.get_port(port.port_id)
        if record is None:
            return self.request_endpoint(port, accepted_types, options)
        return self.connect(port.port_id, port.network)

    def unplug(self, port: ports.Port | str) -> None:
        """Remove ``port``'s endpoint (a no-op if it has none)."""
        port_id = port.port_id if isinstance(port, ports.Port) else port
        self.release_endpoint(port_id)

    # -- host view ----------------------------------------------------------

    def host_capabilities(self) -> dict[str, Any]:
        """Describe what this host offers, network by network.

        :returns: ``{'networks': {name: {'kind', 'driver',
            'endpoint_types' | 'error'}}, 'endpoint_types': [...]}``.
        """
        result: dict[str, Any] = {'networks': {}}
        offered: set[str] = set()
        for network in self.registry.list():
            entry: dict[str, Any] = {
                'kind': network.kind,
                'driver': self.drivers.driver_name(network)}
            try:
                types = self.drivers.for_network(network).endpoint_types(
                    network)
                entry['endpoint_types'] = list(types)
                offered.update(types)
            except exception.VifPlugDynException as exc:
                entry['endpoint_types'] = []
                entry['error'] = str(exc)
            result['networks'][network.name] = entry
        result['endpoint_types'] = sorted(offered)
        return result

    def reconcile(self) -> dict[str, list[str]]:
        """Bring the ledger (and, through the drivers, the host) back to a
        consistent state after a crash.

        Ports left half-built by a killed process are forgotten together
        with their allocations.

        :returns: ``{'forgotten': [port_id, ...]}``.
        """
        forgotten = []
        for record in self.ledger.list_ports():
            if record.state == ledger_mod.BUILDING:
                with self._port_lock(record.port.port_id):
                    self.ledger.delete_port(record.port.port_id)
                forgotten.append(record.port.port_id)
        if forgotten:
            LOG.warning('Reconcile forgot half-built ports: %s',
                        ', '.join(forgotten))
        return {'forgotten': forgotten}

    def close(self) -> None:
        """Release this thread's ledger connection."""
        self.ledger.close()
