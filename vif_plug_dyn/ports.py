"""Ports and endpoint requests: what a consumer asks for."""

import dataclasses
from typing import Any, ClassVar

from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import objects
from vif_plug_dyn import validate


def device_name(prefix: str, port_id: str) -> str:
    """Name a port's host device: a 3-letter prefix and 11 hex digits of
    the port id, within IFNAMSIZ and unique enough per host."""
    return prefix + port_id.replace('-', '')[:11]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Port(objects.VersionedObject):
    """The guest NIC's identity, independent of any host.

    :ivar port_id: a UUID naming the port for its whole life.
    :ivar mac: the guest NIC's MAC address.
    :ivar network: the host network name the port wants (``'red'``).
    :ivar mtu: an MTU the port asks for (the network's wins when smaller).
    :ivar vlan: a VLAN tag for networks that tag per port (hostdev).
    :ivar vm_uuid: the owning instance, recorded for operators and OVS.
    :ivar virtualport: 802.1Qbg/802.1Qbh parameters for direct networks.
    :ivar tap: the name of the port's tap when a consumer has already
        chosen it (since 1.1); ``None`` derives it from the port id (see
        :attr:`tap_name`).
    """

    VERSION: ClassVar[str] = '1.1'
    FIELD_SINCE: ClassVar[dict[str, int]] = {'tap': 1}

    port_id: str
    mac: str
    network: str
    mtu: int | None = None
    vlan: int | None = None
    vm_uuid: str | None = None
    virtualport: endpoints.VirtualPort | None = None
    tap: str | None = None

    def __post_init__(self) -> None:
        objects.set_normalised(self, 'port_id',
                               validate.uuid(self.port_id, 'port_id'))
        objects.set_normalised(self, 'mac', validate.mac(self.mac))
        validate.network_name(self.network)
        if self.mtu is not None:
            validate.mtu(self.mtu)
        if self.vlan is not None:
            validate.vlan(self.vlan)
        if self.vm_uuid is not None:
            objects.set_normalised(self, 'vm_uuid',
                                   validate.uuid(self.vm_uuid, 'vm_uuid'))
        if self.virtualport is not None and \
                not isinstance(self.virtualport, endpoints.VirtualPort):
            raise exception.InvalidField(
                field='virtualport', value=self.virtualport,
                reason='must be a VirtualPort')
        if self.tap is not None:
            validate.ifname(self.tap, 'tap')

    @property
    def tap_name(self) -> str:
        """The port's tap: :attr:`tap` when given, else derived from the
        port id (``vpd`` + 11 hex).

        NOTE(vpd): a consumer that renders the hypervisor configuration
        itself (nova through os-vif names the tap ``tap`` + 11 characters
        of the port id) must find the library's tap under its own name.
        """
        if self.tap is not None:
            return self.tap
        return device_name('vpd', self.port_id)

    @property
    def macvlan_name(self) -> str:
        """The name of a steered port's macvlan (``vpm`` + 11 hex)."""
        return device_name('vpm', self.port_id)

    def on_network(self, network: str) -> 'Port':
        """Return the same port wanting another network."""
        return dataclasses.replace(self, network=network)


@dataclasses.dataclass(frozen=True, kw_only=True)
class EndpointRequest(objects.VersionedObject):
    """A request for an endpoint for ``port`` on ``port.network``.

    :ivar port: the port.
    :ivar accepted_types: the endpoint types the hypervisor can consume,
        most preferred first.
    :ivar options: free-form driver options (strings), e.g.
        ``{'queues': '4'}``.
    """

    VERSION: ClassVar[str] = '1.0'

    port: Port
    accepted_types: tuple[str, ...] = (endpoints.BRIDGE, endpoints.DIRECT,
                                       endpoints.ETHERNET,
                                       endpoints.HOSTDEV)
    options: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.port, Port):
            raise exception.InvalidField(field='port', value=self.port,
                                         reason='must be a Port')
        objects.set_normalised(
            self, 'accepted_types',
            endpoints.endpoint_types(self.accepted_types,
                                     'accepted_types'))
        if not isinstance(self.options, dict):
            raise exception.InvalidField(field='options', value=self.options,
                                         reason='must be a dict')
        for key, value in self.options.items():
            validate.safe_text(key, 'options', max_len=64)
            validate.safe_text(value, 'options[%s]' % key)
        # NOTE(vpd): a frozen object must not share a mutable dict with
        # its caller; copy it once here.
        objects.set_normalised(self, 'options', dict(self.options))

    def option(self, name: str, default: Any = None) -> Any:
        """Return an option's value or ``default``."""
        return self.options.get(name, default)

    def __hash__(self) -> int:
        return hash((self.port, self.accepted_types,
                     tuple(sorted(self.options.items()))))
