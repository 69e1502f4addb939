"""Endpoint descriptors <-> libvirt ``<interface>`` configuration.

:class:`EndpointToInterface` is the only place that decides how each
endpoint type is spelled in libvirt XML. The fields of an interface split
in two:

*host side* (owned by the endpoint)
    the interface type, ``managed``, the source, VLAN, virtual port,
    target device, MTU and the number of queues;
*guest side* (owned by the guest)
    MAC, model, link state, guest PCI address, alias, and everything the
    adapter does not model (``<boot>``, ``<rom>``, ``<bandwidth>``, ...).

:meth:`EndpointToInterface.apply` replaces the host side of an existing
interface and keeps its guest side: that is what a source change and a
migration need.
"""

import copy
from typing import Any

from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn.virt import base
from vif_plug_dyn.virt.libvirt import config

#: libvirt interface type of each endpoint type (they happen to coincide).
INTERFACE_TYPE = {
    endpoints.BRIDGE: 'bridge',
    endpoints.DIRECT: 'direct',
    endpoints.HOSTDEV: 'hostdev',
    endpoints.ETHERNET: 'ethernet',
    endpoints.NETWORK: 'network',
}

#: Interface types on which libvirt's QEMU driver accepts ``<mtu>``.
# NOTE(vpd): a macvtap takes its MTU from the lower device and a VF from
# its PF driver; libvirt refuses <mtu> on direct and hostdev interfaces
# ("setting MTU on interface type ... is not supported yet"), so the
# endpoint's MTU is the host side's business there and is not written.
MTU_TYPES = ('bridge', 'ethernet', 'network')

#: Child tags of the source and target elements that belong to a host.
_HOST_CHILDREN = ('source', 'target')


def virtualport_config(vport: endpoints.VirtualPort
                       ) -> config.VirtualPortConfig:
    """Return the ``<virtualport>`` of an endpoint's virtual port."""
    return config.VirtualPortConfig(
        type=vport.type, interface_id=vport.interface_id,
        profile_id=vport.profile_id, manager_id=vport.manager_id,
        type_id=vport.type_id, type_id_version=vport.type_id_version,
        instance_id=vport.instance_id)


def virtualport_endpoint(vport: config.VirtualPortConfig
                         ) -> endpoints.VirtualPort:
    """Return the endpoint virtual port of a ``<virtualport>``.

    :raises InvalidField: the element does not make a valid virtual port
        (no type, missing or foreign parameters).
    """
    if vport.type is None:
        raise exception.InvalidField(
            field='virtualport.type', value=None,
            reason='an endpoint virtual port needs a type')
    return endpoints.VirtualPort(
        type=vport.type, interface_id=vport.interface_id,
        profile_id=vport.profile_id, manager_id=vport.manager_id,
        type_id=vport.type_id, type_id_version=vport.type_id_version,
        instance_id=vport.instance_id)


class EndpointToInterface:
    """Turns endpoints into :class:`~.config.InterfaceConfig` objects.

    :param default_model: the NIC model of tap-based interfaces when the
        caller names none.
    """

    def __init__(self, default_model: str = 'virtio') -> None:
        self.default_model = default_model

    def build(self, endpoint: endpoints.Endpoint,
              options: base.NicOptions | None = None
              ) -> config.InterfaceConfig:
        """Return the interface of a new NIC using ``endpoint``.

        :param endpoint: the endpoint.
        :param options: guest-side options.
        :raises InvalidField: an option the endpoint type cannot take.
        :raises UnsupportedEndpointType: not an endpoint type libvirt
            consumes.
        """
        options = options or base.NicOptions()
        iface = config.InterfaceConfig(type=self._type(endpoint),
                                       mac=endpoint.mac)
        if iface.type == 'hostdev':
            for name, value in (('model', options.model),
                                ('link_up', options.link_up)):
                if value is not None:
                    # NOTE(vpd): a VF is the guest's own device: there is
                    # no emulated model to choose, and its link is set on
                    # the PF (ip link set PF vf N state), not by libvirt.
                    raise exception.InvalidField(
                        field=name, value=value,
                        reason='a hostdev interface passes a VF to the '
                               'guest and has no %s' % name)
        else:
            iface.model = options.model or self.default_model
        if options.link_up is not None:
            iface.link_state = 'up' if options.link_up else 'down'
        if options.guest_address is not None:
            iface.guest_address = config.AddressConfig.from_pci(
                options.guest_address)
        iface.alias = options.alias
        self._set_host_side(iface, endpoint)
        return iface

    def apply(self, iface: config.InterfaceConfig,
              endpoint: endpoints.Endpoint) -> config.InterfaceConfig:
        """Return a copy of ``iface`` whose host side is ``endpoint``'s.

        The guest side (MAC, model, link state, guest address, alias and
        every element the adapter does not model) is kept. The queue count
        and MTU are kept when the endpoint does not set them.

        :raises InvalidField: the endpoint's MAC is not the interface's.
        :raises UnsupportedEndpointType: not an endpoint type libvirt
            consumes.
        """
        if iface.mac != endpoint.mac:
            raise exception.InvalidField(
                field='mac', value=endpoint.mac,
                reason='the endpoint is for another NIC (%s)' % iface.mac)
        new = copy.deepcopy(iface)
        new.type = self._type(endpoint)
        old_queues, old_mtu = new.driver_queues, new.mtu
        new.managed = None
        new.source_bridge = new.source_dev = new.source_mode = None
        new.source_network = new.source_portgroup = None
        new.source_address = None
        new.vlan = new.virtualport = None
        new.target_dev = new.target_managed = None
        new.mtu = new.driver_queues = None
        for tag in _HOST_CHILDREN:
            # NOTE(vpd): what libvirt adds to a running interface's source
            # and target (a network port's portid and bridge, a tap's
            # name) describes the old host side; the new one gets its own.
            new.child_extra_attrs.pop(tag, None)
            new.child_extra_children.pop(tag, None)
        if new.type == 'hostdev':
            new.model = None
            new.driver_name = None
            new.link_state = None
        else:
            new.model = new.model or self.default_model
            new.driver_queues = old_queues
            if new.type in MTU_TYPES:
                new.mtu = old_mtu
        self._set_host_side(new, endpoint)
        return new

    def _type(self, endpoint: endpoints.Endpoint) -> str:
        try:
            return INTERFACE_TYPE[endpoint.type]
        except KeyError:
            raise exception.UnsupportedEndpointType(
                driver='libvirt adapter', type=endpoint.type,
                network=endpoint.network) from None

    def _set_host_side(self, iface: config.InterfaceConfig,
                       endpoint: endpoints.Endpoint) -> None:
        if iface.type != 'hostdev':
            if endpoint.queues is not None:
                iface.driver_queues = endpoint.queues
            if endpoint.mtu is not None and iface.type in MTU_TYPES:
                iface.mtu = endpoint.mtu
        if isinstance(endpoint, endpoints.BridgeEndpoint):
            iface.source_bridge = endpoint.bridge
            # NOTE(vpd): libvirt creates the tap itself under this name;
            # names starting with "vnet" or "macvtap" are libvirt's own and
            # would be replaced by a generated one.
            iface.target_dev = endpoint.tap
            if endpoint.virtualport is not None:
                iface.virtualport = virtualport_config(endpoint.virtualport)
        elif isinstance(endpoint, endpoints.DirectEndpoint):
            iface.source_dev = endpoint.source_dev
            iface.source_mode = endpoint.mode
            if endpoint.virtualport is not None:
                iface.virtualport = virtualport_config(endpoint.virtualport)
        elif isinstance(endpoint, endpoints.HostdevEndpoint):
            # NOTE(vpd): managed='yes' lets libvirt unbind the VF from its
            # host driver and bind it to vfio-pci for the guest's lifetime.
            iface.managed = True
            iface.source_address = config.AddressConfig.from_pci(
                endpoint.pci_address)
            if endpoint.vlan is not None:
                iface.vlan = config.VlanConfig(tags=[(endpoint.vlan, None)])
        elif isinstance(endpoint, endpoints.EthernetEndpoint):
            # NOTE(vpd): managed='no' makes libvirt open the tap the
            # library made and wired instead of creating (and later
            # deleting) one of its own.
            iface.target_dev = endpoint.tap
            iface.target_managed = False
        elif isinstance(endpoint, endpoints.NetworkEndpoint):
            iface.source_network = endpoint.source_network
            iface.source_portgroup = endpoint.portgroup


def endpoint_fields(iface: config.InterfaceConfig) -> dict[str, Any]:
    """Return the endpoint fields an interface determines.

    Everything but ``port_id`` and ``network`` (which libvirt does not
    know) is returned, ready for the endpoint class of ``type``.

    :returns: ``{'type': ..., 'mac': ..., ...}``.
    :raises OperationNotSupported: the interface type has no endpoint
        type.
    :raises InvalidXML: the interface lacks what its endpoint needs.
    :raises InvalidField: a value read does not validate.
    """
    kind = iface.type
    if kind not in INTERFACE_TYPE.values():
        raise exception.OperationNotSupported(
            operation='reading an endpoint from a %s interface' % kind,
            by='the libvirt adapter',
            reason='endpoint types are %s' % ', '.join(
                endpoints.ENDPOINT_TYPES))
    fields: dict[str, Any] = {'type': kind, 'mac': iface.mac}
    if iface.mtu is not None:
        fields['mtu'] = iface.mtu
    if iface.driver_queues is not None:
        fields['queues'] = iface.driver_queues
    vport = None if iface.virtualport is None else \
        virtualport_endpoint(iface.virtualport)
    if kind in ('bridge', 'ethernet'):
        if iface.target_dev is None:
            raise exception.InvalidXML(
                what='libvirt', element='interface/target',
                reason='a %s interface without <target dev=...> names no '
                       'tap' % kind)
        fields['tap'] = iface.target_dev
    if kind == 'bridge':
        fields['bridge'] = iface.source_bridge
        fields['virtualport'] = vport
    elif kind == 'direct':
        fields['source_dev'] = iface.source_dev
        fields['mode'] = iface.source_mode or 'vepa'
        fields['virtualport'] = vport
    elif kind == 'hostdev':
        assert iface.source_address is not None
        pci = iface.source_address.pci()
        if pci is None:
            raise exception.InvalidXML(
                what='libvirt', element='interface/source/address',
                reason='not a complete PCI address')
        fields['pci_address'] = pci
        if iface.vlan is not None:
            fields['vlan'] = iface.vlan.tags[0][0]
    elif kind == 'network':
        fields['source_network'] = iface.source_network
        fields['portgroup'] = iface.source_portgroup
    return fields


def endpoint_from_interface(iface: config.InterfaceConfig, port_id: str,
                            network: str) -> endpoints.Endpoint:
    """Rebuild the endpoint an interface uses.

    :param iface: the interface.
    :param port_id: the port it serves (libvirt does not record it).
    :param network: the host network name (nor that).
    :raises OperationNotSupported: the interface type has no endpoint
        type.
    :raises InvalidXML: the interface lacks what its endpoint needs.
    :raises InvalidField: a value read does not validate.
    """
    fields = endpoint_fields(iface)
    cls = endpoints.ENDPOINT_CLASSES[fields.pop('type')]
    return cls(port_id=port_id, network=network, **fields)
