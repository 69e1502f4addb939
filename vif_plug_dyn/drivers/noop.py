"""A driver that builds nothing: the whole flow, without host work.

It serves every network kind, offers every endpoint type a network of its
kind could have, and keeps its cable state only in the ledger. Use it to
test consumers and configuration, never to carry traffic.
"""

from typing import Any

from vif_plug_dyn import endpoints
from vif_plug_dyn import networks
from vif_plug_dyn import ports
from vif_plug_dyn.drivers import base

_TYPES = {
    networks.BRIDGE: (endpoints.BRIDGE, endpoints.ETHERNET),
    networks.OPENVSWITCH: (endpoints.BRIDGE, endpoints.ETHERNET),
    networks.DIRECT: (endpoints.DIRECT, endpoints.ETHERNET),
    networks.HOSTDEV: (endpoints.HOSTDEV, endpoints.DIRECT),
    networks.VIRTUAL: (endpoints.NETWORK,),
}


class NoopDriver(base.NetworkDriver):
    """Describes endpoints without creating anything on the host."""

    KINDS = networks.NETWORK_KINDS

    def endpoint_types(self, network: networks.Network) -> tuple[str, ...]:
        return _TYPES[network.kind]

    def create_endpoints(self, requests: list[ports.EndpointRequest],
                         network: networks.Network, endpoint_type: str,
                         connect: bool) -> list[endpoints.Endpoint]:
        return [self._describe(r.port, network, endpoint_type)
                for r in requests]

    @staticmethod
    def _describe(port: ports.Port, network: networks.Network,
                  endpoint_type: str) -> endpoints.Endpoint:
        common: dict[str, Any] = dict(
            port_id=port.port_id, network=network.name, mac=port.mac,
            mtu=network.mtu or port.mtu)
        if endpoint_type == endpoints.BRIDGE:
            vport = None
            if network.kind == networks.OPENVSWITCH:
                vport = endpoints.VirtualPort(type='openvswitch',
                                              interface_id=port.port_id)
            return endpoints.BridgeEndpoint(
                bridge=network.bridge or 'noop', tap=port.tap_name,
                virtualport=vport, **common)
        if endpoint_type == endpoints.ETHERNET:
            return endpoints.EthernetEndpoint(tap=port.tap_name, **common)
        if endpoint_type == endpoints.DIRECT:
            devs = network.lower_devices() or ('noop0',)
            return endpoints.DirectEndpoint(
                source_dev=devs[0], mode=network.mode or 'passthrough',
                virtualport=port.virtualport, **common)
        if endpoint_type == endpoints.HOSTDEV:
            return endpoints.HostdevEndpoint(
                pci_address='0000:00:00.0', vlan=network.vlan or port.vlan,
                **common)
        return endpoints.NetworkEndpoint(
            source_network=network.source_network or network.name,
            portgroup=network.portgroup, **common)

    def delete_endpoints(self, endpoints_: list[endpoints.Endpoint],
                         network: networks.Network) -> None:
        pass

    def connect(self, endpoint: endpoints.Endpoint,
                network: networks.Network) -> endpoints.Endpoint:
        if isinstance(endpoint, endpoints.BridgeEndpoint) and network.bridge:
            return endpoint.replace(network=network.name,
                                    bridge=network.bridge)
        return endpoint.replace(network=network.name)

    def disconnect(self, endpoint: endpoints.Endpoint,
                   network: networks.Network) -> None:
        pass
