"""The ``virtual`` driver: networks the hypervisor manages itself.

A ``virtual`` network names a network of the hypervisor (a libvirt
network); the hypervisor builds its host side, so this driver only
describes it as a ``network`` endpoint.
"""

from vif_plug_dyn import endpoints
from vif_plug_dyn import networks
from vif_plug_dyn import ports
from vif_plug_dyn.drivers import base


class VirtualDriver(base.NetworkDriver):
    """Describes ``network`` endpoints for hypervisor-managed networks."""

    KINDS = (networks.VIRTUAL,)

    def endpoint_types(self, network: networks.Network) -> tuple[str, ...]:
        return (endpoints.NETWORK,)

    def create_endpoints(self, requests: list[ports.EndpointRequest],
                         network: networks.Network, endpoint_type: str,
                         connect: bool) -> list[endpoints.Endpoint]:
        return [endpoints.NetworkEndpoint(
            port_id=r.port.port_id, network=network.name, mac=r.port.mac,
            mtu=network.mtu or r.port.mtu,
            source_network=str(network.source_network),
            portgroup=network.portgroup) for r in requests]

    def delete_endpoints(self, endpoints_: list[endpoints.Endpoint],
                         network: networks.Network) -> None:
        pass
