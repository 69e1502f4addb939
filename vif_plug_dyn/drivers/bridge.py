"""The ``bridge`` driver: Linux bridges, managed or adopted.

Per port it makes a persistent tap owned by the library; the endpoint is
``ethernet`` (the hypervisor only opens the tap, the library plugs it) or
``bridge`` (the hypervisor is told the bridge and the tap name). Plugging
the cable enslaves the tap to the network's bridge; unplugging releases it;
moving enslaves it to another bridge. The guest never loses its NIC.

A request with ``tap_maker=hypervisor`` (nova's ``tap`` VIF type, see
:mod:`vif_plug_dyn.drivers.borrowed`) gets an ``ethernet`` endpoint whose
tap the hypervisor makes and deletes; the library borrows and cables it.

A ``managed`` network's bridge is created when the first port needs it and
removed with its last port, but only when the library created it; an
unmanaged (operator) bridge is adopted and never changed.
"""

import threading

from oslo_log import log as logging

from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import networks
from vif_plug_dyn import ports
from vif_plug_dyn.drivers import base
from vif_plug_dyn.drivers import borrowed
from vif_plug_dyn.drivers import taps
from vif_plug_dyn.privsep import ops

LOG = logging.getLogger(__name__)

#: Owner tag prefix of bridges the library created for a network.
NETWORK_TAG = 'net:'


def _library_taps(endpoints_: list[endpoints.Endpoint]
                  ) -> list[endpoints.Endpoint]:
    """The endpoints whose tap the library makes: ``ethernet`` ones.

    NOTE(vpd): the hypervisor makes the tap of a ``bridge`` endpoint.
    libvirt refuses to start a guest whose <interface type='bridge'> names
    a tap that already exists ("The X interface already exists") and
    refuses managed='no' for that type; so a bridge endpoint gets only its
    bridge from the library, and its cable moves through the hypervisor's
    live source change (the runtime does that).
    """
    return [e for e in endpoints_
            if isinstance(e, endpoints.EthernetEndpoint) and not e.borrowed]


class BridgeDriver(base.NetworkDriver):
    """Taps on Linux bridges."""

    KINDS = (networks.BRIDGE,)
    BORROWS_TAPS = True

    def __init__(self, context: base.DriverContext) -> None:
        super().__init__(context)
        # NOTE(vpd): serialises creating a network's bridge with removing
        # it after its last port, within this process.
        self._lock = threading.Lock()

    def endpoint_types(self, network: networks.Network) -> tuple[str, ...]:
        return (endpoints.ETHERNET, endpoints.BRIDGE)

    # -- the bridge ------------------------------------------------------

    def _bridge_ops(self, network: networks.Network) -> list[dict]:
        """Operations that make the network's bridge exist."""
        bridge = str(network.bridge)
        if self.host.exists(bridge):
            return []
        if not network.managed:
            raise exception.LowerDeviceMissing(network=network.name,
                                               device=bridge)
        result = [ops.create_bridge(bridge, mtu=network.mtu,
                                    tag=NETWORK_TAG + network.name)]
        if network.uplink:
            self.plumbing.ensure([network.uplink])
        if network.uplink and not network.uplink_vlan:
            if self.plumbing.adopted(network.uplink):
                result.append(ops.set_master(network.uplink, bridge))
            else:
                LOG.warning('Network %(network)s: uplink %(dev)s is not a '
                            'defined host interface; the library leaves '
                            'it alone (define it to have it enslaved)',
                            {'network': network.name,
                             'dev': network.uplink})
        if network.uplink and network.uplink_vlan:
            vlan_dev = _vlan_name(network.uplink, network.uplink_vlan)
            result.append(ops.create_vlan(
                vlan_dev, network.uplink, network.uplink_vlan,
                mtu=network.mtu, tag=NETWORK_TAG + network.name))
            result.append(ops.set_master(vlan_dev, bridge))
        return result

    def _owns_bridge(self, network: networks.Network) -> bool:
        try:
            link = self.host.get_link(str(network.bridge))
        except exception.DeviceNotFound:
            return False
        return bool(link.get('owned')) and \
            link.get('tag') == NETWORK_TAG + network.name

    def _remove_bridge_if_unused(self, network: networks.Network,
                                 leaving: set[str]) -> None:
        if not network.managed or not self._owns_bridge(network):
            return
        if not self.last_ports_of(network, leaving):
            return
        names = [str(network.bridge)]
        if network.uplink and network.uplink_vlan:
            names.append(_vlan_name(network.uplink, network.uplink_vlan))
        self.host.delete(names)
        LOG.info('Removed bridge %s of network %s with its last port',
                 network.bridge, network.name)

    # -- endpoints ---------------------------------------------------------

    def create_endpoints(self, requests: list[ports.EndpointRequest],
                         network: networks.Network, endpoint_type: str,
                         connect: bool) -> list[endpoints.Endpoint]:
        bridge = str(network.bridge)
        master = bridge if connect else None
        ethernet = endpoint_type == endpoints.ETHERNET
        lent = [r for r in requests if ethernet and taps.hypervisor_tap(r)]
        lent_ids = {r.port.port_id for r in lent}
        with self._lock:
            mine = [r for r in requests
                    if ethernet and r.port.port_id not in lent_ids]
            batch = self._bridge_ops(network)
            batch += [taps.create_tap_op(r, network, master) for r in mine]
            # NOTE(vpd): borrowing changes devices the batch did not make
            # (it is not undone by the helper's rollback): last, after
            # everything that may still fail and be rolled back.
            lending = borrowed.borrow_ops(self.host, lent, master,
                                          self.context.ledger)
            # NOTE(vpd): one privileged call, all or nothing: the helper
            # removes what this batch created if any operation fails.
            try:
                taps.build(self.host, self.context.ledger,
                           batch + lending, taps.tap_records(mine, network))
            except BaseException:
                borrowed.give_back(self.host, [r.port.tap_name
                                               for r in lent])
                raise
        made: list[endpoints.Endpoint] = []
        for request in requests:
            fields = taps.common_fields(request, network)
            if endpoint_type == endpoints.BRIDGE:
                made.append(endpoints.BridgeEndpoint(
                    bridge=bridge, tap=request.port.tap_name, **fields))
            else:
                made.append(endpoints.EthernetEndpoint(
                    tap=request.port.tap_name,
                    borrowed=request.port.port_id in lent_ids,
                    **fields))
        return made

    def delete_endpoints(self, endpoints_: list[endpoints.Endpoint],
                         network: networks.Network) -> None:
        # NOTE(vpd): only the taps the ledger says the library made; a
        # hypervisor's tap (a bridge endpoint's) is not ours.
        recorded = {d.name for d in self.context.ledger.devices_of(
            [e.port_id for e in endpoints_]) if d.kind == taps.TAP}
        names = [t for t in map(taps.tap_of, endpoints_) if t in recorded]
        lent = [e for e in endpoints_ if taps.is_borrowed(e)]
        with self._lock:
            if lent:
                # NOTE(vpd): the hypervisor's tap goes back to it, off the
                # bridge; its maker deletes it.
                borrowed.release(self.host, lent)
            if names:
                self.host.delete(names, missing_ok=True)
                self.context.ledger.forget_devices(names)
            self._remove_bridge_if_unused(
                network, {e.port_id for e in endpoints_})

    # -- cable -------------------------------------------------------------

    def connect(self, endpoint: endpoints.Endpoint,
                network: networks.Network) -> endpoints.Endpoint:
        tap = _require_tap(endpoint, self.name)
        with self._lock:
            batch = self._bridge_ops(network)
            if taps.is_borrowed(endpoint):
                # NOTE(vpd): a tap its hypervisor has not made yet (or
                # has deleted) is cabled by the watcher when it appears.
                batch += borrowed.cable_ops(self.host, [endpoint],
                                            str(network.bridge))
            elif isinstance(endpoint, endpoints.EthernetEndpoint):
                batch.append(ops.set_link(tap, master=str(network.bridge),
                                          up=True))
            if batch:
                self.host.run(batch)
        if isinstance(endpoint, endpoints.BridgeEndpoint):
            # NOTE(vpd): the hypervisor's tap; the runtime asks the
            # hypervisor to move it (a live source change).
            return endpoint.replace(network=network.name,
                                    bridge=str(network.bridge))
        return endpoint.replace(network=network.name)

    def disconnect(self, endpoint: endpoints.Endpoint,
                   network: networks.Network) -> None:
        tap = _require_tap(endpoint, self.name)
        if taps.is_borrowed(endpoint):
            batch = borrowed.cable_ops(self.host, [endpoint], None)
            if batch:
                self.host.run(batch)
        elif isinstance(endpoint, endpoints.EthernetEndpoint):
            self.host.run([ops.set_nomaster(tap)])
        # NOTE(vpd): a bridge endpoint's tap is the hypervisor's and its
        # interface type cannot be without a bridge: unplugged, only the
        # guest link goes down (the runtime does that).

    def release_network(self, network: networks.Network) -> None:
        with self._lock:
            self._remove_bridge_if_unused(network, set())

    # -- runtime -----------------------------------------------------------

    def dependencies(self, endpoint: endpoints.Endpoint,
                     network: networks.Network) -> tuple[str, ...]:
        # NOTE(vpd): only a tagged uplink is rebuilt by the library (its
        # VLAN device dies with the uplink); an operator's untagged uplink
        # is the operator's to restore. A borrowed tap is watched: the
        # port is cabled when its hypervisor makes it.
        deps = self.waits_for(endpoint)
        if network.uplink and network.uplink_vlan:
            return (network.uplink,) + deps
        return deps

    def waits_for(self, endpoint: endpoints.Endpoint) -> tuple[str, ...]:
        if taps.is_borrowed(endpoint):
            return (str(taps.tap_of(endpoint)),)
        return ()

    def restore(self, endpoints_: list[endpoints.Endpoint],
                network: networks.Network, plugged: set[str]) -> None:
        bridge = str(network.bridge)
        with self._lock:
            links = {link['name']: link for link in self.host.list_links()}
            batch = self._bridge_ops(network)
            if network.uplink and network.uplink_vlan and \
                    network.uplink in links and bridge in links:
                vlan_dev = _vlan_name(network.uplink, network.uplink_vlan)
                if vlan_dev not in links:
                    batch += [ops.create_vlan(
                        vlan_dev, network.uplink, network.uplink_vlan,
                        mtu=network.mtu, tag=NETWORK_TAG + network.name),
                        ops.set_master(vlan_dev, bridge)]
            mine = _library_taps(endpoints_)
            batch += taps.missing_tap_ops(mine, network, set(links),
                                          bridge, plugged)
            lent = [e for e in endpoints_ if taps.is_borrowed(e)]
            batch += borrowed.restore_ops(lent, links, bridge, plugged)
            bridge_index = links.get(bridge, {}).get('index')
            for endpoint in mine:
                tap = taps.tap_of(endpoint)
                if tap is None or tap not in links:
                    continue
                on_bridge = bridge_index is not None and \
                    links[tap].get('master_index') == bridge_index
                if endpoint.port_id in plugged and not on_bridge:
                    batch.append(ops.set_link(tap, master=bridge, up=True))
                elif endpoint.port_id not in plugged and \
                        links[tap].get('master_index'):
                    batch.append(ops.set_nomaster(tap))
            if batch:
                self.host.run(batch)


def _require_tap(endpoint: endpoints.Endpoint, driver: str) -> str:
    tap = taps.tap_of(endpoint)
    if tap is None:
        raise exception.OperationNotSupported(
            operation='connect', by=driver,
            reason='a %s endpoint has no tap to plug into a bridge' %
                   endpoint.type)
    return tap


def _vlan_name(uplink: str, vlan: int) -> str:
    """Name the VLAN device of an uplink (``eth1.42``, cut to IFNAMSIZ)."""
    suffix = '.%d' % vlan
    return uplink[:15 - len(suffix)] + suffix
