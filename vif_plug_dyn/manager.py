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
from vif_plug_dyn import validate
from vif_plug_dyn.drivers import base
from vif_plug_dyn.drivers import taps
from vif_plug_dyn.runtime import cable

LOG = logging.getLogger(__name__)


class EndpointManager:
    """Requests, releases, connects and disconnects endpoints on this host.

    Thread-safe; several processes may share one ledger.

    :param conf: a configuration with the library's options registered.
    :param host: the privileged host helper handed to drivers (built from
        ``conf`` on first use when ``None``).
    :param hypervisor: a hypervisor adapter to keep guests' link state in
        step with their cables (``None``: the host side only).
    """

    def __init__(self, conf: cfg.ConfigOpts, host: Any = None,
                 hypervisor: Any = None) -> None:
        self.conf = conf
        group = conf[opts.GROUP]
        self.registry = networks.NetworkRegistry(group.network_dir)
        self.registry.load()
        self.ledger = ledger_mod.Ledger(group.state_path,
                                        timeout=group.lock_timeout)
        if host is None:
            # NOTE(vpd): building the helper starts nothing; its daemon
            # starts on the first privileged call.
            host = host_mod.HostNetwork(conf)
        self.context = base.DriverContext(conf=conf, ledger=self.ledger,
                                          host=host)
        self.drivers = negotiation.DriverSet(conf, self.context)
        self.guest = cable.GuestLink(hypervisor)
        self._locks: dict[str, threading.Lock] = collections.defaultdict(
            threading.Lock)
        self._locks_guard = threading.Lock()

    @contextlib.contextmanager
    def _port_locks(self, port_ids: list[str] | None) -> Iterator[None]:
        # NOTE(vpd): one lock per port serialises operations on a port
        # within this process, the ledger's lock files across processes
        # (None: every port). Each kind is taken in sorted order, the
        # thread locks first, so two batches sharing ports cannot
        # deadlock.
        with self._locks_guard:
            locks = ([] if port_ids is None else
                     [self._locks[p] for p in sorted(set(port_ids))])
        with contextlib.ExitStack() as stack:
            for lock in locks:
                stack.enter_context(lock)
            stack.enter_context(self.ledger.port_locks(
                None if port_ids is None else list(port_ids)))
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
        return self.request_endpoints([port], accepted_types, options,
                                      connected)[0]

    def request_endpoints(self, ports_: list[ports.Port],
                          accepted_types: tuple[str, ...] | list[str] = (
                              endpoints.BRIDGE, endpoints.DIRECT,
                              endpoints.ETHERNET, endpoints.HOSTDEV),
                          options: dict[str, str] | None = None,
                          connected: bool = True
                          ) -> list[endpoints.Endpoint]:
        """Return endpoints for many ports at once (see
        :meth:`request_endpoint`).

        The host work for the ports of one network is done in one batch by
        its driver. All or nothing: when any port fails, the endpoints this
        call built are removed again and nothing new stays recorded.

        :returns: the endpoints, in the order of ``ports_``.
        :raises InvalidField: a port id is listed twice.
        """
        accepted = endpoints.endpoint_types(accepted_types, 'accepted_types')
        extra = _options(options)
        requests = [ports.EndpointRequest(
            port=port, accepted_types=accepted, options=extra)
            for port in _ports(ports_)]
        ids = [r.port.port_id for r in requests]
        if len(set(ids)) != len(ids):
            raise exception.InvalidField(field='ports', value=ids,
                                         reason='a port is listed twice')
        by_network: dict[str, list[ports.EndpointRequest]] = {}
        for request in requests:
            by_network.setdefault(request.port.network, []).append(request)
        targets = {name: self.registry.get(name) for name in by_network}
        found: dict[str, endpoints.Endpoint] = {}
        built: list[tuple[base.NetworkDriver, networks.Network,
                          list[endpoints.Endpoint]]] = []
        with self._port_locks(ids):
            known = self.ledger.records_by_id(ids)
            try:
                for name, group in by_network.items():
                    network = targets[name]
                    new = []
                    for request in group:
                        record = known.get(request.port.port_id)
                        if record is None:
                            new.append(request)
                        else:
                            found[request.port.port_id] = self._existing(
                                record, request)
                    if new:
                        driver, made = self._build(new, network, connected)
                        built.append((driver, network, made))
                        found.update((e.port_id, e) for e in made)
            except BaseException:
                for driver, network, made in reversed(built):
                    self._undo(driver, network, made)
                raise
        return [found[port_id] for port_id in ids]

    def _build(self, requests: list[ports.EndpointRequest],
               network: networks.Network, connected: bool
               ) -> tuple[base.NetworkDriver, list[endpoints.Endpoint]]:
        driver, endpoint_type = self.drivers.negotiate(requests[0], network)
        for request in requests:
            if taps.hypervisor_tap(request) and not driver.BORROWS_TAPS:
                raise exception.OperationNotSupported(
                    operation='cable a tap its hypervisor made',
                    by=driver.name,
                    reason='only bridge networks take %s=hypervisor' %
                           taps.TAP_MAKER_OPTION)
            driver.check_request(request, network)
        cable = ledger_mod.PLUGGED if connected else ledger_mod.UNPLUGGED
        ids = [r.port.port_id for r in requests]
        self.ledger.begin_ports(requests, cable)
        try:
            made = driver.create_endpoints(requests, network, endpoint_type,
                                           connected)
        except BaseException:
            # NOTE(vpd): the driver removed what it built; forget the
            # ports and their allocations so a retry starts clean.
            self.ledger.delete_ports(ids)
            raise
        try:
            self.ledger.activate_ports(made,
                                       self._health(driver, network, made))
        except BaseException:
            # NOTE(vpd): built but not recorded: take it down again rather
            # than leave devices the ledger does not know.
            self._undo(driver, network, made)
            raise
        LOG.info('%(count)d %(type)s endpoint(s) on network %(network)s '
                 '(cable %(cable)s): %(ports)s',
                 {'count': len(made), 'type': endpoint_type,
                  'network': network.name, 'cable': cable,
                  'ports': ', '.join(ids)})
        return driver, made

    def _health(self, driver: base.NetworkDriver, network: networks.Network,
                made: list[endpoints.Endpoint]) -> dict[str, str]:
        """The health of freshly built or moved endpoints: ``waiting``
        where a host interface they depend on does not exist (yet).

        NOTE(vpd): a steered port built before its lower device exists
        carries no traffic; recording it ``ok`` would put its guest's
        link up and hide it from the watcher, which connects ``waiting``
        ports when their device appears.
        """
        deps = driver.dependencies_of(made, network)
        names = {name for wanted in deps.values() for name in wanted}
        missing = {name for name in sorted(names)
                   if not self.context.host.exists(name)}
        return {port_id: (ledger_mod.WAITING if missing.intersection(wanted)
                          else ledger_mod.HEALTHY)
                for port_id, wanted in deps.items()}

    def _undo(self, driver: base.NetworkDriver, network: networks.Network,
              made: list[endpoints.Endpoint]) -> None:
        try:
            driver.delete_endpoints(made, network)
        finally:
            self.ledger.delete_ports([e.port_id for e in made])

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
        port is unknown.

        :raises InvalidField: ``port_id`` is not a UUID.
        """
        self.release_endpoints([port_id])

    def release_endpoints(self, port_ids: list[str]) -> None:
        """Remove many ports' endpoints, one driver batch per network;
        unknown ports are skipped.

        :raises InvalidField: not a list of UUIDs.
        """
        port_ids = _port_ids(port_ids)
        with self._port_locks(port_ids):
            by_network: dict[str, list[endpoints.Endpoint]] = {}
            known = self.ledger.endpoints_of(list(port_ids))
            found = [p for p in dict.fromkeys(port_ids) if p in known]
            building = [p for p in found
                        if known[p][1] == ledger_mod.BUILDING]
            if building:
                # NOTE(vpd): another process is building it (or crashed
                # doing so): forgetting it here would leave that
                # process's devices unrecorded.
                raise exception.PortConflict(
                    port_id=building[0], reason='its endpoint is still '
                    'being built (by another process, or left by a crash: '
                    'reconcile() clears it)')
            for port_id in found:
                network_name, _state, endpoint = known[port_id]
                if endpoint is not None:
                    by_network.setdefault(network_name, []).append(endpoint)
            for name, made in by_network.items():
                network = self._network_or_none(name)
                if network is not None:
                    self.drivers.for_network(network).delete_endpoints(
                        made, network)
            self.ledger.delete_ports(found)
        if found:
            LOG.info('Released %d port(s): %s', len(found),
                     ', '.join(found))

    def get_endpoint(self, port_id: str) -> endpoints.Endpoint:
        """Return a port's endpoint.

        :raises PortNotFound: no endpoint for that port.
        """
        record = self.ledger.get_port(_port_id(port_id))
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
        :raises InvalidField: a malformed port id or network name.
        """
        port_id = _port_id(port_id)
        if network is not None:
            validate.network_name(network)
        with self._port_locks([port_id]):
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
            driver = self.drivers.for_network(target)
            endpoint = driver.connect(record.endpoint, target)
            request = ports.EndpointRequest(
                port=record.port.on_network(target.name),
                accepted_types=record.request.accepted_types,
                options=record.request.options)
            self.guest.follow_source(record, endpoint)
            self.guest.reattach(record, endpoint)
            left = record.network
            # NOTE(vpd): the health belongs to where the cable is now: a
            # port degraded on its old network is fine on the new one.
            health = self._health(driver, target, [endpoint])[port_id]
            record = self.ledger.update_port(port_id, request=request,
                                             endpoint=endpoint,
                                             cable=ledger_mod.PLUGGED,
                                             health=health)
            self.guest.apply(record)
            if left != target.name:
                old = self.registry.get(left)
                self.drivers.for_network(old).release_network(old)
            LOG.info('Port %(port)s plugged into %(network)s',
                     {'port': port_id, 'network': target.name})
            return endpoint

    def disconnect(self, port_id: str) -> endpoints.Endpoint:
        """Unplug a port's cable, keeping its endpoint; a no-op when it is
        already unplugged.

        :raises PortNotFound: no endpoint for that port.
        """
        port_id = _port_id(port_id)
        with self._port_locks([port_id]):
            record = self._active(port_id)
            assert record.endpoint is not None
            if record.cable == ledger_mod.PLUGGED:
                network = self.registry.get(record.network)
                self.drivers.for_network(network).disconnect(
                    record.endpoint, network)
                record = self.ledger.update_port(port_id,
                                                 cable=ledger_mod.UNPLUGGED)
                self.guest.apply(record)
                LOG.info('Port %s unplugged', port_id)
            assert record.endpoint is not None
            return record.endpoint

    def set_link_state(self, port_id: str, state: str) -> None:
        """Force the guest's link ``up`` or ``down``, or let it ``follow``
        the cable again (the default).

        :raises InvalidField: another state.
        :raises PortNotFound: no endpoint for that port.
        """
        validate.one_of(state, 'link', ('up', 'down', ledger_mod.FOLLOW))
        port_id = _port_id(port_id)
        with self._port_locks([port_id]):
            self._active(port_id)
            record = self.ledger.update_port(port_id, link=state)
            self.guest.apply(record)

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
        record = self.ledger.get_port(_port(port).port_id)
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
        """Bring the host back to what the ledger wants, after a crash or
        a reboot.

        * ports left half-built by a killed process are forgotten, with
          their allocations;
        * every recorded endpoint's host side is rebuilt where it is
          missing, plugged or unplugged as its cable says;
        * devices the library owns that no port or network claims are
          removed (leaks);
        * guests' link states are set from the cables.

        :returns: ``{'forgotten': [...], 'restored': [...],
            'removed': [...]}`` (port ids, networks, device names).
        """
        forgotten = []
        for record in self.ledger.list_ports():
            if record.state == ledger_mod.BUILDING:
                port_id = record.port.port_id
                with self._port_locks([port_id]):
                    # NOTE(vpd): under the lock, a port still building is
                    # one whose builder died (a live one holds the lock).
                    again = self.ledger.get_port(port_id)
                    if again is None or again.state != ledger_mod.BUILDING:
                        continue
                    self.ledger.delete_port(port_id)
                forgotten.append(port_id)
        restored = self.restore()
        removed = self.remove_leaks()
        for record in self.ledger.list_ports():
            self.guest.apply(record)
        if forgotten or removed:
            LOG.warning('Reconcile forgot half-built ports %(ports)s and '
                        'removed leaked devices %(devices)s',
                        {'ports': forgotten, 'devices': removed})
        return {'forgotten': forgotten, 'restored': restored,
                'removed': removed}

    def restore(self, network_names: list[str] | None = None) -> list[str]:
        """Rebuild the host side of every recorded endpoint (of the given
        networks) where it is missing; see
        :meth:`~vif_plug_dyn.drivers.base.NetworkDriver.restore`.

        :returns: the networks restored.
        """
        by_network: dict[str, list[ledger_mod.PortRecord]] = {}
        for record in self.ledger.list_ports():
            if record.endpoint is not None and (
                    network_names is None or
                    record.network in network_names):
                by_network.setdefault(record.network, []).append(record)
        done = []
        for name, records in sorted(by_network.items()):
            network = self._network_or_none(name)
            if network is None:
                continue
            self.drivers.for_network(network).restore(
                [r.endpoint for r in records if r.endpoint is not None],
                network, {r.port.port_id for r in records
                          if r.cable == ledger_mod.PLUGGED})
            done.append(name)
        return done

    def remove_leaks(self) -> list[str]:
        """Remove devices the library owns that no recorded port and no
        network with ports claims.

        :returns: the names of the devices removed.
        """
        # NOTE(vpd): every port's lock, so that no other thread or
        # process is between making a device and recording it.
        with self._port_locks(None):
            records = self.ledger.list_ports()
            ports_known = {r.port.port_id for r in records}
            networks_used = {r.network for r in records}
            leaked = []
            for link in self.context.host.list_links():
                tag = link.get('tag')
                if not link.get('owned') or not tag:
                    continue
                if tag.startswith('net:'):
                    if tag[4:] not in networks_used:
                        leaked.append(link['name'])
                elif tag not in ports_known:
                    leaked.append(link['name'])
            if leaked:
                self.context.host.delete(leaked, missing_ok=True)
                self.ledger.forget_devices(leaked)
        return leaked

    def close(self) -> None:
        """Release this thread's ledger connection."""
        self.ledger.close()


# -- input checks at the public boundary ------------------------------------
# NOTE(vpd): the public API promises that only VifPlugDynException
# subclasses escape; a caller's wrong type must become InvalidField here,
# not a TypeError deep in the ledger or a lock table (found by fuzzing).

def _port_id(value: Any, field: str = 'port_id') -> str:
    return validate.uuid(value, field)


def _port_ids(values: Any, field: str = 'port_ids') -> list[str]:
    if isinstance(values, (str, bytes)) or not isinstance(
            values, (list, tuple)):
        raise exception.InvalidField(field=field, value=values,
                                     reason='must be a list of port ids')
    return [_port_id(v, '%s[%d]' % (field, i)) for i, v in enumerate(values)]


def _ports(values: Any) -> list[ports.Port]:
    if not isinstance(values, (list, tuple)):
        raise exception.InvalidField(field='ports', value=values,
                                     reason='must be a list of Port')
    for i, value in enumerate(values):
        _port(value, 'ports[%d]' % i)
    return list(values)


def _port(value: Any, field: str = 'port') -> ports.Port:
    if not isinstance(value, ports.Port):
        raise exception.InvalidField(field=field, value=value,
                                     reason='must be a Port')
    return value


def _options(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise exception.InvalidField(field='options', value=value,
                                     reason='must be a dict of strings')
    return dict(value)
