"""The ``direct`` driver: a pool of host interfaces, macvtap or steered.

Each port is given the least-loaded pool interface that has room left
(its ``maxConnections``; passthrough is exclusive). The allocation lives in
the ledger, counted and taken in one transaction, so neither concurrent
requesters nor a restart ever put an interface over its limit.

Two endpoint types:

``direct``
    a genuine macvtap the hypervisor creates from the source device and
    mode. QEMU holds the macvtap's file descriptor, so the cable cannot be
    moved at run time (see the reconnect strategy of the runtime).
``ethernet`` (*steered*)
    the guest gets a tap; the library makes a macvlan in the network's mode
    on the lower device, carrying the guest's MAC, and steers every frame
    between the two with tc (u32 match-all + mirred redirect, both ways).
    The cable can be plugged, unplugged and moved at run time, and the
    macvlan can be rebuilt when the lower device comes back, without the
    guest noticing more than a carrier change. A steered port can be built
    before its lower device exists; it is connected once it appears.
"""

from typing import Any

from oslo_log import log as logging

from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import ledger as ledger_mod
from vif_plug_dyn import networks
from vif_plug_dyn import opts
from vif_plug_dyn import ports
from vif_plug_dyn.drivers import base
from vif_plug_dyn.drivers import taps
from vif_plug_dyn.privsep import ops

LOG = logging.getLogger(__name__)

MACVLAN = 'macvlan'


class DirectDriver(base.NetworkDriver):
    """macvtap endpoints and steered taps on a pool of host interfaces."""

    KINDS = (networks.DIRECT,)

    def endpoint_types(self, network: networks.Network) -> tuple[str, ...]:
        # NOTE(vpd): a genuine macvtap needs its lower device when the
        # guest starts; a steered port can wait for it.
        if any(self.host.exists(dev) for dev in network.lower_devices()):
            return (endpoints.DIRECT, endpoints.ETHERNET)
        return (endpoints.ETHERNET,)

    # -- allocation --------------------------------------------------------

    @staticmethod
    def _pool(network: networks.Network, present: set[str],
              require_present: bool) -> list[tuple[str, int | None]]:
        pool = [(dev, network.connection_limit(dev))
                for dev in network.lower_devices()
                if dev in present or not require_present]
        if not pool:
            raise exception.LowerDeviceMissing(
                network=network.name,
                device=' or '.join(network.lower_devices()))
        # NOTE(vpd): devices that exist come first so that, load being
        # equal, a port lands where it can carry traffic now.
        pool.sort(key=lambda item: item[0] not in present)
        return pool

    def _allocate(self, request: ports.EndpointRequest,
                  network: networks.Network, present: set[str],
                  require_present: bool) -> str:
        return self.context.ledger.allocate(
            network.name, request.port.port_id,
            self._pool(network, present, require_present))

    def _present(self, network: networks.Network) -> set[str]:
        return {dev for dev in network.lower_devices()
                if self.host.exists(dev)}

    # -- endpoints ---------------------------------------------------------

    def create_endpoints(self, requests: list[ports.EndpointRequest],
                         network: networks.Network, endpoint_type: str,
                         connect: bool) -> list[endpoints.Endpoint]:
        self.plumbing.ensure(list(network.lower_devices()))
        present = self._present(network)
        steered = endpoint_type == endpoints.ETHERNET
        ledger = self.context.ledger
        try:
            pool = self._pool(network, present, require_present=not steered)
            lowers = ledger.allocate_many(
                network.name, [(r.port.port_id, pool) for r in requests])
            if steered:
                batch: list[dict[str, Any]] = [
                    taps.create_tap_op(r, network) for r in requests]
                records = taps.tap_records(requests, network)
                steer = [(r.port, lower) for r, lower in
                         zip(requests, lowers, strict=True)
                         if connect and lower in present]
                batch += self._steer_batch(network, steer)
                # NOTE(vpd): only macvlans that are made are recorded: the
                # ledger must never claim a device the host does not have
                # (reconcile and leak checks compare the two).
                records += [self._macvlan_record(port, network)
                            for port, _lower in steer]
                taps.build(self.host, ledger, batch, records)
        except BaseException:
            ledger.release_many([r.port.port_id for r in requests],
                                network.name)
            raise
        made: list[endpoints.Endpoint] = []
        for request, lower in zip(requests, lowers, strict=True):
            fields = taps.common_fields(request, network)
            if steered:
                made.append(endpoints.EthernetEndpoint(
                    tap=request.port.tap_name, **fields))
            else:
                # NOTE(vpd): libvirt refuses <mtu> on direct interfaces;
                # the macvtap takes the lower device's.
                fields['mtu'] = None
                made.append(endpoints.DirectEndpoint(
                    source_dev=lower, mode=str(network.mode),
                    virtualport=request.port.virtualport, **fields))
        waiting = [r.port.port_id for r, lower in zip(requests, lowers,
                                                      strict=True)
                   if steered and lower not in present]
        if waiting:
            LOG.info('Network %(network)s: ports %(ports)s wait for their '
                     'lower device', {'network': network.name,
                                      'ports': ', '.join(waiting)})
        return made

    @staticmethod
    def _macvlan_record(port: ports.Port, network: networks.Network
                        ) -> ledger_mod.DeviceRecord:
        return ledger_mod.DeviceRecord(port.macvlan_name, MACVLAN,
                                       port.port_id, network.name)

    @staticmethod
    def _steer_batch(network: networks.Network,
                     steer: list[tuple[ports.Port, str]]
                     ) -> list[dict[str, Any]]:
        """Make each port's macvlan on its lower device and steer its tap
        to it.

        NOTE(vpd): every macvlan first, then every redirect: a redirect
        needs the ifindex of a device made in the same batch, and the
        helper learns all of them in one round once the creations are
        sent, instead of waiting for the kernel once per port.
        """
        return [ops.create_macvlan(port.macvlan_name, lower,
                                   mode=str(network.mode),
                                   mac=port.mac, mtu=network.mtu, up=True,
                                   tag=port.port_id)
                for port, lower in steer] + [
            ops.redirect(port.tap_name, port.macvlan_name)
            for port, _lower in steer]

    @classmethod
    def _steer_ops(cls, port: ports.Port, network: networks.Network,
                   lower: str) -> list[dict[str, Any]]:
        """Make the port's macvlan on ``lower`` and steer its tap to it."""
        return cls._steer_batch(network, [(port, lower)])

    def delete_endpoints(self, endpoints_: list[endpoints.Endpoint],
                         network: networks.Network) -> None:
        names = []
        for endpoint in endpoints_:
            if isinstance(endpoint, endpoints.EthernetEndpoint):
                names += [endpoint.tap, _macvlan(endpoint)]
        if names:
            self.host.delete(names, missing_ok=True)
            self.context.ledger.forget_devices(names)
        self.context.ledger.release_many([e.port_id for e in endpoints_],
                                         network.name)

    # -- cable (steered ports only) ----------------------------------------

    def connect(self, endpoint: endpoints.Endpoint,
                network: networks.Network) -> endpoints.Endpoint:
        if isinstance(endpoint, endpoints.DirectEndpoint) and \
                self._reattach_allowed():
            return self._new_source(endpoint, network)
        tap = self._steered_tap(endpoint, 'connect')
        port = _port_of(endpoint, network)
        request = ports.EndpointRequest(port=port)
        present = self._present(network)
        lower = self._allocate(request, network, present,
                               require_present=False)
        try:
            if lower in present:
                taps.build(self.host, self.context.ledger,
                           self._steer_ops(port, network, lower),
                           [self._macvlan_record(port, network)])
        except BaseException:
            self.context.ledger.release(endpoint.port_id, network.name)
            raise
        assert tap == port.tap_name
        return endpoint.replace(network=network.name)

    def _reattach_allowed(self) -> bool:
        return bool(self.context.conf[opts.GROUP].direct_reconnect ==
                    'reattach')

    def _new_source(self, endpoint: endpoints.DirectEndpoint,
                    network: networks.Network) -> endpoints.Endpoint:
        """Allocate a pool interface for a genuine macvtap moving to
        ``network``; the hypervisor re-attaches the NIC to it."""
        request = ports.EndpointRequest(port=_port_of(endpoint, network))
        lower = self._allocate(request, network, self._present(network),
                               require_present=True)
        return endpoints.DirectEndpoint(
            port_id=endpoint.port_id, network=network.name,
            mac=endpoint.mac, queues=endpoint.queues, source_dev=lower,
            mode=str(network.mode), virtualport=endpoint.virtualport)

    def disconnect(self, endpoint: endpoints.Endpoint,
                   network: networks.Network) -> None:
        if isinstance(endpoint, endpoints.DirectEndpoint) and \
                self._reattach_allowed():
            # NOTE(vpd): the macvtap stays with the guest; unplugged, its
            # pool place is given back and only the guest link goes down.
            self.context.ledger.release(endpoint.port_id, network.name)
            return
        self._steered_tap(endpoint, 'disconnect')
        macvlan = _macvlan(endpoint)
        # NOTE(vpd): deleting the macvlan takes its own filters with it;
        # the tap's filter pointing at it is removed first so no frame is
        # steered at a device that is going away.
        self.host.run([ops.unredirect(str(taps.tap_of(endpoint)), macvlan),
                       ops.delete([macvlan], missing_ok=True)])
        self.context.ledger.forget_devices([macvlan])
        self.context.ledger.release(endpoint.port_id, network.name)

    # -- runtime -----------------------------------------------------------

    def dependencies(self, endpoint: endpoints.Endpoint,
                     network: networks.Network) -> tuple[str, ...]:
        return self.dependencies_of([endpoint], network)[endpoint.port_id]

    def dependencies_of(self, endpoints_: list[endpoints.Endpoint],
                        network: networks.Network
                        ) -> dict[str, tuple[str, ...]]:
        # NOTE(vpd): a genuine macvtap names its lower device; a steered
        # port's is its allocation, read in one query per few hundred
        # ports rather than one per port.
        lower_of = self.context.ledger.allocations_of(
            [e.port_id for e in endpoints_
             if not isinstance(e, endpoints.DirectEndpoint)], network.name)
        found: dict[str, tuple[str, ...]] = {}
        for endpoint in endpoints_:
            if isinstance(endpoint, endpoints.DirectEndpoint):
                found[endpoint.port_id] = (endpoint.source_dev,)
            else:
                lower = lower_of.get(endpoint.port_id)
                found[endpoint.port_id] = () if lower is None else (lower,)
        return found

    def restore(self, endpoints_: list[endpoints.Endpoint],
                network: networks.Network, plugged: set[str]
                ) -> set[str] | None:
        # NOTE(vpd): a genuine macvtap died with its lower device and QEMU
        # holds the dead one's file descriptor: nothing on the host side
        # brings it back (the reconnect strategy, detach + attach, does).
        unhealed = {e.port_id for e in endpoints_
                    if isinstance(e, endpoints.DirectEndpoint) and
                    e.port_id in plugged}
        steered = [e for e in endpoints_
                   if isinstance(e, endpoints.EthernetEndpoint)]
        if not steered:
            return unhealed or None
        present = {link['name'] for link in self.host.list_links()}
        batch = taps.missing_tap_ops(steered, network, present, None,
                                     plugged)
        records = []
        # NOTE(vpd): one query for the network's allocations, not one per
        # port (the watcher restores hundreds at once).
        held = {port_id: resource for (_net, resource), holders in
                self.context.ledger.allocations(network.name).items()
                for port_id in holders}
        steer: list[tuple[ports.Port, str]] = []
        for endpoint in steered:
            port = taps.port_of(endpoint)
            lower = held.get(endpoint.port_id)
            macvlan = port.macvlan_name
            if endpoint.port_id not in plugged:
                if macvlan in present:
                    batch += [ops.unredirect(port.tap_name, macvlan),
                              ops.delete([macvlan], missing_ok=True)]
            elif lower in present:
                if macvlan in present:
                    # NOTE(vpd): the macvlan survived; steering is
                    # re-applied (it replaces our own filters) in case the
                    # tap's side was lost.
                    batch.append(ops.redirect(port.tap_name, macvlan))
                else:
                    steer.append((port, str(lower)))
                    records.append(self._macvlan_record(port, network))
        batch += self._steer_batch(network, steer)
        if batch:
            self.host.run(batch)
            self.context.ledger.record_devices(records)
        return unhealed or None

    def lost(self, endpoints_: list[endpoints.Endpoint],
             network: networks.Network) -> None:
        steered = [e for e in endpoints_
                   if isinstance(e, endpoints.EthernetEndpoint)]
        if not steered:
            return
        # NOTE(vpd): the kernel removed each macvlan with its lower device
        # (and the macvlan's own filters); what is left is the tap's filter
        # redirecting at a device that is gone.
        self.host.apply([ops.unredirect(e.tap, _macvlan(e))
                         for e in steered], stop_on_error=False)
        self.context.ledger.forget_devices([_macvlan(e) for e in steered])

    def _steered_tap(self, endpoint: endpoints.Endpoint,
                     operation: str) -> str:
        if not isinstance(endpoint, endpoints.EthernetEndpoint):
            raise exception.OperationNotSupported(
                operation=operation, by=self.name,
                reason='a genuine macvtap (%s endpoint) cannot change its '
                       'cable at run time; use a steered (ethernet) '
                       'endpoint, or the reconnect strategy '
                       '([vif_plug_dyn] direct_reconnect = reattach)' %
                       endpoint.type)
        return endpoint.tap


def _macvlan(endpoint: endpoints.Endpoint) -> str:
    return ports.device_name('vpm', endpoint.port_id)


def _port_of(endpoint: endpoints.Endpoint,
             network: networks.Network) -> ports.Port:
    return ports.Port(port_id=endpoint.port_id, mac=endpoint.mac,
                      network=network.name, mtu=endpoint.mtu,
                      tap=taps.tap_of(endpoint))
