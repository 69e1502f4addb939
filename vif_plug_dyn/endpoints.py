"""Typed endpoint descriptors: what a network driver hands a hypervisor.

An endpoint says *how the guest NIC reaches the host side* — never how a
particular hypervisor spells it. Five types exist:

``bridge``
    a tap enslaved to a Linux or Open vSwitch bridge (the hypervisor may
    create the tap itself; with an ``openvswitch`` virtual port it also
    adds the OVS port).
``direct``
    a macvtap the hypervisor creates on ``source_dev`` in ``mode``.
``hostdev``
    a PCI device (an SR-IOV VF) given to the guest.
``ethernet``
    a tap the library wired; the hypervisor only opens it
    (``managed='no'`` in libvirt). The library made it, or, when
    ``borrowed``, the hypervisor's driver did (nova's ``tap`` VIF type)
    and the library only cables it.
``network``
    a network the hypervisor manages itself (a libvirt network by name).

All descriptors are immutable and validated when built; see
:mod:`vif_plug_dyn.objects` for the versioned primitive and its
back-level rule.
"""

import dataclasses
from typing import Any, ClassVar

from vif_plug_dyn import exception
from vif_plug_dyn import objects
from vif_plug_dyn import validate

BRIDGE = 'bridge'
DIRECT = 'direct'
HOSTDEV = 'hostdev'
ETHERNET = 'ethernet'
NETWORK = 'network'
#: Every endpoint type, in no particular order.
ENDPOINT_TYPES = (BRIDGE, DIRECT, HOSTDEV, ETHERNET, NETWORK)

VIRTUALPORT_TYPES = ('openvswitch', '802.1Qbg', '802.1Qbh')
LINK_STATES = ('up', 'down')


def endpoint_types(value: Any, field: str = 'endpoint_types'
                   ) -> tuple[str, ...]:
    """Validate a non-empty ordered list of endpoint types.

    :raises InvalidField: empty, repeated or unknown types.
    """
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise exception.InvalidField(field=field, value=value,
                                     reason='must be a list of types')
    if not value:
        raise exception.InvalidField(field=field, value=value,
                                     reason='must name at least one type')
    for item in value:
        validate.one_of(item, field, ENDPOINT_TYPES)
    if len(set(value)) != len(value):
        raise exception.InvalidField(field=field, value=value,
                                     reason='names a type twice')
    return tuple(value)


@dataclasses.dataclass(frozen=True, kw_only=True)
class VirtualPort(objects.VersionedObject):
    """Virtual port parameters: Open vSwitch, 802.1Qbg (VDP) or 802.1Qbh.

    Only the parameters of ``type`` may be set:

    * ``openvswitch``: ``interface_id`` (UUID), optional ``profile_id``;
    * ``802.1Qbg``: ``manager_id``, ``type_id``, ``type_id_version``
      (integers) and optional ``instance_id`` (UUID);
    * ``802.1Qbh``: ``profile_id``.
    """

    type: str
    interface_id: str | None = None
    profile_id: str | None = None
    manager_id: int | None = None
    type_id: int | None = None
    type_id_version: int | None = None
    instance_id: str | None = None

    _ALLOWED: ClassVar[dict[str, tuple[str, ...]]] = {
        'openvswitch': ('interface_id', 'profile_id'),
        '802.1Qbg': ('manager_id', 'type_id', 'type_id_version',
                     'instance_id'),
        '802.1Qbh': ('profile_id',),
    }
    _REQUIRED: ClassVar[dict[str, tuple[str, ...]]] = {
        'openvswitch': ('interface_id',),
        '802.1Qbg': ('manager_id', 'type_id', 'type_id_version'),
        '802.1Qbh': ('profile_id',),
    }

    def __post_init__(self) -> None:
        validate.one_of(self.type, 'virtualport.type', VIRTUALPORT_TYPES)
        allowed = self._ALLOWED[self.type]
        for field in dataclasses.fields(self):
            name = field.name
            value = getattr(self, name)
            if name == 'type' or value is None:
                continue
            if name not in allowed:
                raise exception.InvalidField(
                    field='virtualport.' + name, value=value,
                    reason='not a parameter of %s virtual ports' % self.type)
        for name in self._REQUIRED[self.type]:
            if getattr(self, name) is None:
                raise exception.InvalidField(
                    field='virtualport.' + name, value=None,
                    reason='required for %s virtual ports' % self.type)
        for name in ('interface_id', 'instance_id'):
            value = getattr(self, name)
            if value is not None:
                objects.set_normalised(
                    self, name, validate.uuid(value, 'virtualport.' + name))
        if self.profile_id is not None:
            validate.safe_text(self.profile_id, 'virtualport.profile_id',
                               max_len=40)
        limits = {'manager_id': 255, 'type_id': 2 ** 24 - 1,
                  'type_id_version': 255}
        for name, high in limits.items():
            value = getattr(self, name)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int) \
                        or not 0 <= value <= high:
                    raise exception.InvalidField(
                        field='virtualport.' + name, value=value,
                        reason='must be an integer from 0 to %d' % high)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Endpoint(objects.VersionedObject):
    """Fields every endpoint has.

    :ivar port_id: the port (UUID) this endpoint serves.
    :ivar network: the host network name it belongs to.
    :ivar mac: the guest NIC's MAC address.
    :ivar mtu: the MTU the guest NIC should use, if the network sets one.
    :ivar queues: number of queues of a multi-queue NIC (since 1.1).
    """

    TYPE: ClassVar[str] = ''
    VERSION: ClassVar[str] = '1.1'
    FIELD_SINCE: ClassVar[dict[str, int]] = {'queues': 1}

    port_id: str
    network: str
    mac: str
    mtu: int | None = None
    queues: int | None = None

    def __post_init__(self) -> None:
        objects.set_normalised(self, 'port_id',
                               validate.uuid(self.port_id, 'port_id'))
        validate.network_name(self.network, 'network')
        objects.set_normalised(self, 'mac', validate.mac(self.mac))
        if self.mtu is not None:
            validate.mtu(self.mtu)
        if self.queues is not None:
            validate.positive_int(self.queues, 'queues', high=256)

    @property
    def type(self) -> str:
        """The endpoint type (one of :data:`ENDPOINT_TYPES`)."""
        return self.TYPE

    def replace(self, **changes: Any) -> 'Endpoint':
        """Return a copy with some fields changed (and validated again)."""
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BridgeEndpoint(Endpoint):
    """A tap on a bridge.

    :ivar bridge: the Linux or OVS bridge name.
    :ivar tap: the tap device name the guest NIC uses.
    :ivar virtualport: ``openvswitch`` parameters when the bridge is OVS.
    """

    TYPE: ClassVar[str] = BRIDGE

    bridge: str
    tap: str
    virtualport: VirtualPort | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        validate.ifname(self.bridge, 'bridge')
        validate.ifname(self.tap, 'tap')
        if self.virtualport is not None and objects.require_instance(
                self.virtualport, 'virtualport',
                VirtualPort).type != 'openvswitch':
            raise exception.InvalidField(
                field='virtualport.type', value=self.virtualport.type,
                reason='a bridge endpoint takes only an openvswitch '
                       'virtual port')


@dataclasses.dataclass(frozen=True, kw_only=True)
class DirectEndpoint(Endpoint):
    """A macvtap the hypervisor creates on a host interface.

    :ivar source_dev: the lower host interface.
    :ivar mode: vepa, bridge, private or passthrough.
    :ivar virtualport: 802.1Qbg or 802.1Qbh parameters.
    """

    TYPE: ClassVar[str] = DIRECT

    source_dev: str
    mode: str
    virtualport: VirtualPort | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        validate.ifname(self.source_dev, 'source_dev')
        validate.macvtap_mode(self.mode)
        if self.virtualport is not None and objects.require_instance(
                self.virtualport, 'virtualport',
                VirtualPort).type not in ('802.1Qbg', '802.1Qbh'):
            raise exception.InvalidField(
                field='virtualport.type', value=self.virtualport.type,
                reason='a direct endpoint takes only an 802.1Qbg or '
                       '802.1Qbh virtual port')


@dataclasses.dataclass(frozen=True, kw_only=True)
class HostdevEndpoint(Endpoint):
    """A PCI device (SR-IOV VF) passed to the guest.

    :ivar pci_address: ``dddd:bb:ss.f``.
    :ivar vlan: the VLAN the VF tags, if any.
    """

    TYPE: ClassVar[str] = HOSTDEV

    pci_address: str
    vlan: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        objects.set_normalised(self, 'pci_address',
                               validate.pci_address(self.pci_address))
        if self.vlan is not None:
            validate.vlan(self.vlan)


@dataclasses.dataclass(frozen=True, kw_only=True)
class EthernetEndpoint(Endpoint):
    """A tap wired by the library; the hypervisor only opens it.

    :ivar tap: the tap device name.
    :ivar borrowed: the hypervisor's driver makes and deletes the tap
        (nova's ``tap`` VIF type); the library only cables it, marks it
        as borrowed and never deletes it (since 1.2).
    """

    TYPE: ClassVar[str] = ETHERNET
    VERSION: ClassVar[str] = '1.2'
    FIELD_SINCE: ClassVar[dict[str, int]] = {'queues': 1, 'borrowed': 2}

    tap: str
    borrowed: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        validate.ifname(self.tap, 'tap')
        if not isinstance(self.borrowed, bool):
            raise exception.InvalidField(field='borrowed',
                                         value=self.borrowed,
                                         reason='must be true or false')


@dataclasses.dataclass(frozen=True, kw_only=True)
class NetworkEndpoint(Endpoint):
    """A network the hypervisor manages itself.

    :ivar source_network: the hypervisor's network name.
    :ivar portgroup: an optional port group of that network.
    """

    TYPE: ClassVar[str] = NETWORK

    source_network: str
    portgroup: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        validate.network_name(self.source_network, 'source_network')
        if self.portgroup is not None:
            validate.network_name(self.portgroup, 'portgroup')


#: Endpoint class for each endpoint type.
ENDPOINT_CLASSES: dict[str, type[Endpoint]] = {
    cls.TYPE: cls for cls in (BridgeEndpoint, DirectEndpoint,
                              HostdevEndpoint, EthernetEndpoint,
                              NetworkEndpoint)
}


def from_primitive(primitive: Any) -> Endpoint:
    """Build any endpoint from its primitive.

    :raises InvalidPrimitive: not an endpoint primitive.
    :raises UnsupportedVersion: another major version.
    :raises InvalidField: a field does not validate.
    """
    return Endpoint.from_primitive(primitive)
