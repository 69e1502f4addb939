"""The ``openvswitch`` driver: ports on an Open vSwitch bridge.

Two endpoint types:

``bridge`` with an ``openvswitch`` virtual port
    the hypervisor creates the tap and adds the OVS port itself (libvirt
    does, with ``iface-id`` = the port id).
``ethernet``
    the library makes the port's persistent tap and adds it to the bridge
    with ``external_ids`` ``iface-id``, ``attached-mac``, ``vm-uuid`` and
    ``iface-status``; plugging and unplugging the cable add and remove the
    OVS port, the tap (and the guest's NIC) stay.

Every database change for a batch of ports is one OVSDB transaction — the
cost that matters when thousands of ports are plugged.
"""

import os
import threading

from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import networks
from vif_plug_dyn import opts
from vif_plug_dyn import ovsdb
from vif_plug_dyn import ports
from vif_plug_dyn.drivers import base
from vif_plug_dyn.drivers import taps

#: external_ids key marking bridges the library created.
OWNER_KEY = 'vif_plug_dyn-network'


class OpenVSwitchDriver(base.NetworkDriver):
    """Taps and virtual ports on Open vSwitch bridges."""

    KINDS = (networks.OPENVSWITCH,)

    def __init__(self, context: base.DriverContext) -> None:
        super().__init__(context)
        group = context.conf[opts.GROUP]
        self._socket = str(group.ovsdb_socket)
        self._datapath = str(group.ovs_datapath_type)
        self._wait = float(group.ovs_apply_wait) or None
        self._timeout = float(group.ovs_timeout)
        self._lock = threading.Lock()
        self._client: ovsdb.OvsdbClient | None = None

    @property
    def db(self) -> ovsdb.OvsdbClient:
        """The OVSDB client (connected on first use)."""
        if self._client is None:
            self._client = ovsdb.OvsdbClient(self._socket,
                                             timeout=self._timeout)
        return self._client

    def endpoint_types(self, network: networks.Network) -> tuple[str, ...]:
        if not os.path.exists(self._socket):
            return ()
        return (endpoints.ETHERNET, endpoints.BRIDGE)

    # -- the bridge ------------------------------------------------------

    def _ensure_bridge(self, network: networks.Network) -> None:
        bridge = str(network.bridge)
        if bridge in self.db.list_bridges():
            return
        if not network.managed:
            raise exception.LowerDeviceMissing(network=network.name,
                                               device=bridge)
        self.db.ensure_bridge(bridge, datapath_type=self._datapath,
                              external_ids={OWNER_KEY: network.name},
                              wait=self._wait)

    def _remove_bridge_if_unused(self, network: networks.Network,
                                 leaving: set[str]) -> None:
        bridge = str(network.bridge)
        if not network.managed or \
                self.db.bridge_external_ids(bridge).get(OWNER_KEY) != \
                network.name:
            return
        if self.last_ports_of(network, leaving) and \
                not self.db.list_ports(bridge):
            self.db.del_bridge(bridge, wait=self._wait)

    def _port(self, endpoint: endpoints.Endpoint,
              network: networks.Network) -> ports.Port:
        """The port of an endpoint on ``network``, with the guest the
        ledger records (for ``vm-uuid``)."""
        record = self.context.ledger.get_port(endpoint.port_id)
        # NOTE(vpd): the tap keeps the name it was built with, which is
        # not always the one derived from the port id (Port.tap).
        return ports.Port(port_id=endpoint.port_id, mac=endpoint.mac,
                          network=network.name, tap=taps.tap_of(endpoint),
                          vm_uuid=(record.port.vm_uuid if record is not None
                                   else None))

    @staticmethod
    def _port_spec(port: ports.Port) -> ovsdb.PortSpec:
        external_ids = {'iface-id': port.port_id, 'attached-mac': port.mac,
                        'iface-status': 'active'}
        if port.vm_uuid:
            external_ids['vm-uuid'] = port.vm_uuid
        return (port.tap_name, '', external_ids)

    # -- endpoints ---------------------------------------------------------

    def create_endpoints(self, requests: list[ports.EndpointRequest],
                         network: networks.Network, endpoint_type: str,
                         connect: bool) -> list[endpoints.Endpoint]:
        bridge = str(network.bridge)
        with self._lock:
            self._ensure_bridge(network)
            try:
                if endpoint_type == endpoints.ETHERNET:
                    self._make_taps(requests, network, connect)
            except BaseException:
                # NOTE(vpd): a bridge this call created goes again, so a
                # failed first request leaves the switch as it found it.
                self._remove_bridge_if_unused(
                    network, {r.port.port_id for r in requests})
                raise
        made: list[endpoints.Endpoint] = []
        for request in requests:
            fields = taps.common_fields(request, network)
            tap = request.port.tap_name
            if endpoint_type == endpoints.ETHERNET:
                made.append(endpoints.EthernetEndpoint(tap=tap, **fields))
            else:
                made.append(endpoints.BridgeEndpoint(
                    bridge=bridge, tap=tap,
                    virtualport=endpoints.VirtualPort(
                        type='openvswitch',
                        interface_id=request.port.port_id), **fields))
        return made

    def _make_taps(self, requests: list[ports.EndpointRequest],
                   network: networks.Network, connect: bool) -> None:
        taps.build(self.host, self.context.ledger,
                   [taps.create_tap_op(r, network) for r in requests],
                   taps.tap_records(requests, network))
        try:
            if connect:
                self.db.add_ports(
                    str(network.bridge),
                    [self._port_spec(r.port) for r in requests],
                    tag=network.vlan, wait=self._wait)
        except BaseException:
            names = [r.port.tap_name for r in requests]
            self.host.delete(names, missing_ok=True)
            self.context.ledger.forget_devices(names)
            raise

    def delete_endpoints(self, endpoints_: list[endpoints.Endpoint],
                         network: networks.Network) -> None:
        bridge = str(network.bridge)
        names = [t for t in map(taps.tap_of, endpoints_) if t]
        with self._lock:
            if names and bridge in self.db.list_bridges():
                self.db.del_ports(bridge, names, wait=self._wait)
            mine = [e.tap for e in endpoints_
                    if isinstance(e, endpoints.EthernetEndpoint)]
            if mine:
                self.host.delete(mine, missing_ok=True)
                self.context.ledger.forget_devices(mine)
            self._remove_bridge_if_unused(
                network, {e.port_id for e in endpoints_})

    # -- cable ---------------------------------------------------------------

    def connect(self, endpoint: endpoints.Endpoint,
                network: networks.Network) -> endpoints.Endpoint:
        tap = taps.tap_of(endpoint)
        if tap is None:
            raise exception.OperationNotSupported(
                operation='connect', by=self.name,
                reason='a %s endpoint has no tap' % endpoint.type)
        port = self._port(endpoint, network)
        with self._lock:
            self._ensure_bridge(network)
            self.db.add_ports(str(network.bridge), [self._port_spec(port)],
                              tag=network.vlan, wait=self._wait)
        if isinstance(endpoint, endpoints.BridgeEndpoint):
            return endpoint.replace(network=network.name,
                                    bridge=str(network.bridge))
        return endpoint.replace(network=network.name)

    def disconnect(self, endpoint: endpoints.Endpoint,
                   network: networks.Network) -> None:
        tap = taps.tap_of(endpoint)
        if tap is not None:
            self.db.del_ports(str(network.bridge), [tap], wait=self._wait)

    def release_network(self, network: networks.Network) -> None:
        with self._lock:
            self._remove_bridge_if_unused(network, set())

    def restore(self, endpoints_: list[endpoints.Endpoint],
                network: networks.Network, plugged: set[str]) -> None:
        bridge = str(network.bridge)
        mine = [e for e in endpoints_
                if isinstance(e, endpoints.EthernetEndpoint)]
        with self._lock:
            self._ensure_bridge(network)
            present = {link['name'] for link in self.host.list_links()}
            batch = taps.missing_tap_ops(mine, network, present, None,
                                         plugged)
            if batch:
                self.host.run(batch)
            on_bridge = set(self.db.list_ports(bridge))
            wanted = [e for e in mine if e.port_id in plugged and
                      e.tap not in on_bridge]
            unwanted = [e.tap for e in mine if e.port_id not in plugged and
                        e.tap in on_bridge]
            if wanted:
                self.db.add_ports(bridge, [self._port_spec(
                    self._port(e, network)) for e in wanted],
                                  tag=network.vlan, wait=self._wait)
            if unwanted:
                self.db.del_ports(bridge, unwanted, wait=self._wait)
