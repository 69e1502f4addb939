"""The os-vif plugin: os-vif VIF objects in, vif_plug_dyn endpoints out.

How a VIF becomes a port (see ``doc/source/user/os-vif.rst``):

* port id = ``vif.id``, MAC = ``vif.address``, MTU = ``vif.network.mtu``,
  owner = ``instance_info.uuid``; for tap-based VIFs the tap keeps the name
  the consumer renders, ``vif.vif_name``;
* the host network comes from ``[os_vif_vif_plug_dyn] network_map`` (keyed
  by network UUID, label or bridge name), else the network named like
  ``vif.network.label``, else the one network whose bridge is the VIF's;
* the endpoint types asked for are the ones the consumer will render for
  that VIF type:

  ================  ===============  ==========================================
  VIF               host network     endpoint
  ================  ===============  ==========================================
  VIFBridge         bridge           ``bridge`` on ``vif.bridge_name`` (the
                                     library makes the bridge, the
                                     hypervisor the tap)
  VIFOpenVSwitch    openvswitch      ``bridge`` + openvswitch virtual port;
                                     ``ethernet`` (the library makes the tap
                                     and the OVS port) when the port profile
                                     asks the plugin for the tap
                                     (``create_tap``)
  VIFDirect         direct, hostdev  ``direct`` in ``vif.mode``
  VIFHostDevice     hostdev          ``hostdev`` on the VF ``vif.dev_address``
  ================  ===============  ==========================================

Before anything is built, the plugin checks that the network can serve
the VIF as its consumer will configure it (same bridge, same mode, same
OVS interface id); after, that the endpoint is the one the consumer will
use (same tap, same VF). Errors are os-vif's own
:class:`~os_vif.exception.PlugException` and
:class:`~os_vif.exception.UnplugException`, wrapping the library's typed
exception (also their ``__cause__``).
"""

import dataclasses
import threading
from typing import Any, TypeVar

from os_vif import exception as osv_exception
from os_vif.objects import host_info as osv_host_info
from os_vif.objects import vif as osv_vif
from os_vif import plugin as osv_plugin
from oslo_config import cfg
from oslo_log import log as logging

import vif_plug_dyn
from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import manager as manager_mod
from vif_plug_dyn import networks
from vif_plug_dyn import opts
from vif_plug_dyn import osvif
from vif_plug_dyn import ports
from vif_plug_dyn.drivers import hostdev

LOG = logging.getLogger(__name__)

VIF_BRIDGE = 'VIFBridge'
VIF_OPENVSWITCH = 'VIFOpenVSwitch'
VIF_DIRECT = 'VIFDirect'
VIF_HOSTDEVICE = 'VIFHostDevice'

PROFILE_OVS = 'VIFPortProfileOpenVSwitch'
PROFILE_QBG = 'VIFPortProfile8021Qbg'
PROFILE_QBH = 'VIFPortProfile8021Qbh'

#: Port profiles each VIF type may carry (none is always fine).
SUPPORTED_PROFILES: dict[str, tuple[str, ...]] = {
    VIF_BRIDGE: (),
    VIF_OPENVSWITCH: (PROFILE_OVS,),
    VIF_DIRECT: (PROFILE_QBG, PROFILE_QBH),
    VIF_HOSTDEVICE: (),
}

#: Host network kinds that can serve each VIF type.
NETWORK_KINDS: dict[str, tuple[str, ...]] = {
    VIF_BRIDGE: (networks.BRIDGE,),
    VIF_OPENVSWITCH: (networks.OPENVSWITCH,),
    # NOTE(vpd): a hostdev network offers direct endpoints too: a
    # passthrough macvtap on a VF's netdev.
    VIF_DIRECT: (networks.DIRECT, networks.HOSTDEV),
    VIF_HOSTDEVICE: (networks.HOSTDEV,),
}


def _field(obj: Any, name: str, default: Any = None) -> Any:
    """Read an os-vif object field, ``default`` when it is unset.

    NOTE(vpd): a versioned object raises on reading a field that was
    never set (field defaults are not applied on construction), and older
    os-vif releases lack some fields altogether.
    """
    if obj is None or name not in obj.fields or not obj.obj_attr_is_set(
            name):
        return default
    return getattr(obj, name)


def describe_vif(vif: Any) -> str:
    """A short name for a VIF in messages: ``VIFBridge <id>``."""
    return '%s %s' % (vif.obj_name(), _field(vif, 'id', '(no id)'))


@dataclasses.dataclass(frozen=True)
class Binding:
    """What one VIF becomes, and what its consumer expects of it.

    :ivar vif_type: the VIF's object name (``VIFBridge``...).
    :ivar port: the port to plug.
    :ivar network: the host network serving it.
    :ivar accepted_types: the endpoint types the consumer renders.
    :ivar options: driver options of the request.
    :ivar bridge: the bridge the consumer names, if any.
    :ivar interface_id: the OVS interface id the consumer names, if any.
    :ivar pci_address: the VF the consumer names, if any.
    :ivar mode: the macvtap mode the consumer names, if any.
    """

    vif_type: str
    port: ports.Port
    network: networks.Network
    accepted_types: tuple[str, ...]
    options: dict[str, str]
    bridge: str | None = None
    interface_id: str | None = None
    pci_address: str | None = None
    mode: str | None = None

    def check_endpoint(self, endpoint: endpoints.Endpoint,
                       what: str) -> None:
        """Refuse an endpoint the consumer would not find where it looks.

        :param endpoint: the endpoint built (or recorded) for the port.
        :param what: the VIF, for messages.
        :raises VIFMismatch: what differs.
        """
        problems = []
        if endpoint.type not in self.accepted_types:
            problems.append('its endpoint is of type %s, the consumer '
                            'renders %s' % (endpoint.type,
                                            ' or '.join(self.accepted_types)))
        if endpoint.mac != self.port.mac:
            problems.append('its endpoint has MAC %s, the VIF %s' % (
                endpoint.mac, self.port.mac))
        if endpoint.network != self.network.name:
            problems.append('its endpoint is on network %s' %
                            endpoint.network)
        tap = getattr(endpoint, 'tap', None)
        if tap is not None and self.port.tap is not None and \
                tap != self.port.tap:
            problems.append('its tap is %s, the consumer opens %s' % (
                tap, self.port.tap))
        if isinstance(endpoint, endpoints.BridgeEndpoint):
            if self.bridge is not None and endpoint.bridge != self.bridge:
                problems.append('its bridge is %s, the consumer names %s'
                                % (endpoint.bridge, self.bridge))
            vport = endpoint.virtualport
            if self.interface_id is not None and (
                    vport is None or vport.interface_id != self.interface_id):
                problems.append('its OVS interface id is %s, the consumer '
                                'names %s' % (vport and vport.interface_id,
                                              self.interface_id))
        if isinstance(endpoint, endpoints.HostdevEndpoint) and \
                self.pci_address is not None and \
                endpoint.pci_address != self.pci_address:
            problems.append('its VF is %s, the consumer names %s' % (
                endpoint.pci_address, self.pci_address))
        if isinstance(endpoint, endpoints.DirectEndpoint) and \
                self.mode is not None and endpoint.mode != self.mode:
            problems.append('its mode is %s, the consumer names %s' % (
                endpoint.mode, self.mode))
        if problems:
            raise exception.VIFMismatch(network=self.network.name, vif=what,
                                        reason='; '.join(problems))


class VIFMapper:
    """Turns os-vif VIFs into :class:`Binding` objects.

    :param registry: the host's named networks.
    :param network_map: ``[os_vif_vif_plug_dyn] network_map``.
    :param vif_types: the VIF object names this mapper accepts.
    """

    def __init__(self, registry: networks.NetworkRegistry,
                 network_map: dict[str, str],
                 vif_types: tuple[str, ...] = tuple(SUPPORTED_PROFILES)
                 ) -> None:
        self.registry = registry
        self.network_map = dict(network_map or {})
        self.vif_types = vif_types

    # -- the network ------------------------------------------------------

    @staticmethod
    def consumer_bridge(vif: Any) -> str | None:
        """The bridge the consumer configures the VIF with, if any."""
        bridge = _field(vif, 'bridge_name')
        if bridge:
            return str(bridge)
        bridge = _field(_field(vif, 'network'), 'bridge')
        return str(bridge) if bridge else None

    def resolve_network(self, vif: Any) -> networks.Network:
        """Find the host network serving ``vif``.

        :raises NoNetworkForVIF: nothing matches, or several networks share
            the VIF's bridge.
        :raises NetworkNotFound: ``network_map`` names an undefined network.
        """
        what = describe_vif(vif)
        net = _field(vif, 'network')
        label = _field(net, 'label')
        bridge = self.consumer_bridge(vif)
        keys = [('network id', _field(net, 'id')), ('label', label),
                ('bridge', bridge)]
        keys = [(kind, str(value)) for kind, value in keys if value]
        for _kind, value in keys:
            if value in self.network_map:
                return self.registry.get(self.network_map[value])
        defined = {n.name: n for n in self.registry.list()}
        if label and label in defined:
            return defined[label]
        if bridge:
            # NOTE(vpd): only networks that have a bridge at all; several
            # (OVS networks differing by VLAN tag on one bridge) cannot be
            # told apart by the bridge: that needs network_map.
            sharing = sorted(n.name for n in defined.values()
                             if n.bridge == bridge)
            if len(sharing) == 1:
                return defined[sharing[0]]
            if sharing:
                raise exception.NoNetworkForVIF(
                    vif=what, group=osvif.CONFIG_GROUP,
                    tried='bridge %s, which networks %s share' % (
                        bridge, ', '.join(sharing)))
        tried = ', '.join('%s %s' % kv for kv in keys) or \
            'nothing (the VIF names no network or bridge)'
        raise exception.NoNetworkForVIF(vif=what, group=osvif.CONFIG_GROUP,
                                        tried=tried)

    # -- the binding ------------------------------------------------------

    def bind(self, vif: Any, instance_info: Any = None) -> Binding:
        """Return what ``vif`` becomes.

        :param vif: an os-vif VIF object.
        :param instance_info: its ``InstanceInfo`` (for the owner's UUID).
        :raises UnsupportedVIF: a VIF type, port profile or field value the
            library cannot serve.
        :raises NoNetworkForVIF: no host network answers it.
        :raises VIFMismatch: the network cannot serve it as its consumer
            will configure it.
        """
        vif_type = vif.obj_name()
        what = describe_vif(vif)
        if vif_type not in self.vif_types:
            raise exception.UnsupportedVIF(
                vif=what, reason='this plugin serves %s' %
                                 ', '.join(self.vif_types))
        profile = _field(vif, 'port_profile')
        self._check_profile(vif_type, profile, what)
        if not _field(vif, 'address'):
            raise exception.UnsupportedVIF(vif=what,
                                           reason='it has no MAC address')
        network = self.resolve_network(vif)
        if network.kind not in NETWORK_KINDS[vif_type]:
            raise exception.VIFMismatch(
                network=network.name, vif=what,
                reason='a %s network cannot serve a %s (it needs a %s '
                       'network)' % (network.kind, vif_type,
                                     ' or '.join(NETWORK_KINDS[vif_type])))
        handler = {VIF_BRIDGE: self._bridge,
                   VIF_OPENVSWITCH: self._openvswitch,
                   VIF_DIRECT: self._direct,
                   VIF_HOSTDEVICE: self._hostdevice}[vif_type]
        fields: dict[str, Any] = dict(
            port_id=str(vif.id), mac=str(vif.address), network=network.name,
            mtu=_field(_field(vif, 'network'), 'mtu') or None,
            vm_uuid=_field(instance_info, 'uuid'))
        binding: Binding = handler(vif, profile, network, what, fields)
        return binding

    @staticmethod
    def _check_profile(vif_type: str, profile: Any, what: str) -> None:
        if profile is None:
            return
        name = profile.obj_name()
        allowed = SUPPORTED_PROFILES[vif_type]
        if vif_type == VIF_BRIDGE and name.startswith(PROFILE_OVS):
            raise exception.UnsupportedVIF(
                vif=what, reason='a VIFBridge with an Open vSwitch port '
                                 'profile is a hybrid plug (a per-port '
                                 'Linux bridge joined to OVS by a veth '
                                 'pair), which this plugin does not do; '
                                 'use a VIFOpenVSwitch')
        if name not in allowed:
            raise exception.UnsupportedVIF(
                vif=what, reason='port profile %s is not supported (%s '
                                 'takes %s)' % (
                                     name, vif_type,
                                     ', '.join(allowed) or 'none'))
        if _field(profile, 'datapath_offload') is not None:
            raise exception.UnsupportedVIF(
                vif=what, reason='datapath offload (%s) is not supported' %
                                 profile.datapath_offload.obj_name())

    def _same_bridge(self, vif: Any, network: networks.Network,
                     what: str) -> str | None:
        bridge = self.consumer_bridge(vif)
        if bridge is not None and bridge != network.bridge:
            raise exception.VIFMismatch(
                network=network.name, vif=what,
                reason='its bridge is %s, the consumer will use %s' % (
                    network.bridge, bridge))
        return bridge

    @staticmethod
    def _tap(vif: Any, fields: dict[str, Any]) -> None:
        name = _field(vif, 'vif_name')
        if name:
            fields['tap'] = str(name)

    def _bridge(self, vif: Any, profile: Any, network: networks.Network,
                what: str, fields: dict[str, Any]) -> Binding:
        bridge = self._same_bridge(vif, network, what)
        self._tap(vif, fields)
        # NOTE(vpd): the consumer renders <interface type='bridge'> with
        # <target dev=vif_name>: libvirt makes that tap itself, and for a
        # bridge endpoint the library makes (and removes) the bridge only,
        # like os-vif's own linux_bridge plugin did.
        return Binding(vif_type=VIF_BRIDGE, port=ports.Port(**fields),
                       network=network, accepted_types=(endpoints.BRIDGE,),
                       options={}, bridge=bridge)

    def _openvswitch(self, vif: Any, profile: Any,
                     network: networks.Network, what: str,
                     fields: dict[str, Any]) -> Binding:
        if profile is None:
            raise exception.UnsupportedVIF(
                vif=what, reason='a VIFOpenVSwitch needs a '
                                 'VIFPortProfileOpenVSwitch')
        interface_id = str(profile.interface_id)
        if interface_id.lower() != str(vif.id).lower():
            # NOTE(vpd): the library's OVS ports are keyed by the port id
            # (external_ids:iface-id); another interface id would leave
            # the SDN controller looking for a port that never appears.
            raise exception.UnsupportedVIF(
                vif=what, reason='its OVS interface id %s differs from its '
                                 'port id' % interface_id)
        bridge = self._same_bridge(vif, network, what)
        self._tap(vif, fields)
        create_tap = bool(_field(profile, 'create_tap', False))
        create_port = bool(_field(profile, 'create_port', False))
        if create_tap and _field(profile, 'multiqueue', False):
            raise exception.UnsupportedVIF(
                vif=what, reason='a multiqueue tap made by the plugin is not '
                                 'supported (the queue count is unknown '
                                 'here)')
        if create_tap:
            # NOTE(vpd): the consumer opens a tap the plugin made (libvirt:
            # <interface type='ethernet'> with managed='no'): the library
            # makes it under vif.vif_name and adds it to the bridge with
            # iface-id, attached-mac and vm-uuid before the guest exists.
            accepted: tuple[str, ...] = (endpoints.ETHERNET,)
        else:
            # NOTE(vpd): create_port alone asks for an OVS port without a
            # tap, before the guest exists; the consumer still renders
            # <interface type='bridge'> with an openvswitch virtual port,
            # and libvirt refuses a tap that already exists. The library
            # builds no tap-less port: libvirt makes the tap and the port
            # (the port is wired when the guest starts, not before).
            if create_port:
                LOG.debug('%s: create_port without create_tap; the '
                          'hypervisor adds the OVS port', what)
            accepted = (endpoints.BRIDGE,)
        return Binding(vif_type=VIF_OPENVSWITCH, port=ports.Port(**fields),
                       network=network, accepted_types=accepted, options={},
                       bridge=bridge if accepted[0] == endpoints.BRIDGE
                       else None,
                       interface_id=(interface_id.lower()
                                     if accepted[0] == endpoints.BRIDGE
                                     else None))

    def _direct(self, vif: Any, profile: Any, network: networks.Network,
                what: str, fields: dict[str, Any]) -> Binding:
        mode = _field(vif, 'mode')
        mode = str(mode) if mode else None
        if network.kind == networks.HOSTDEV:
            if mode not in (None, 'passthrough'):
                raise exception.VIFMismatch(
                    network=network.name, vif=what,
                    reason='a hostdev network gives passthrough macvtaps '
                           'only, the VIF asks for mode %s' % mode)
        elif mode is not None and mode != network.mode:
            raise exception.VIFMismatch(
                network=network.name, vif=what,
                reason='its mode is %s, the VIF asks for %s' % (
                    network.mode, mode))
        if profile is not None:
            fields['virtualport'] = _virtualport(profile)
        options = {}
        address = _field(vif, 'dev_address')
        if address and network.kind == networks.HOSTDEV:
            options[hostdev.PCI_ADDRESS_OPTION] = str(address)
        return Binding(vif_type=VIF_DIRECT, port=ports.Port(**fields),
                       network=network, accepted_types=(endpoints.DIRECT,),
                       options=options, mode=mode)

    def _hostdevice(self, vif: Any, profile: Any,
                    network: networks.Network, what: str,
                    fields: dict[str, Any]) -> Binding:
        dev_type = _field(vif, 'dev_type')
        if dev_type is not None and str(dev_type) != 'ethernet':
            raise exception.UnsupportedVIF(
                vif=what, reason='dev_type %s is not supported (a hostdev '
                                 'endpoint is an <interface '
                                 'type="hostdev">: dev_type ethernet)' %
                                 dev_type)
        options = {}
        address = _field(vif, 'dev_address')
        if address:
            options[hostdev.PCI_ADDRESS_OPTION] = str(address).lower()
        return Binding(vif_type=VIF_HOSTDEVICE, port=ports.Port(**fields),
                       network=network, accepted_types=(endpoints.HOSTDEV,),
                       options=options,
                       pci_address=options.get(hostdev.PCI_ADDRESS_OPTION))


def _virtualport(profile: Any) -> endpoints.VirtualPort:
    """The 802.1Qbg/802.1Qbh virtual port of a VIFDirect's profile."""
    if profile.obj_name() == PROFILE_QBG:
        return endpoints.VirtualPort(
            type='802.1Qbg', manager_id=profile.manager_id,
            type_id=profile.type_id,
            type_id_version=profile.type_id_version,
            instance_id=_field(profile, 'instance_id'))
    return endpoints.VirtualPort(type='802.1Qbh',
                                 profile_id=profile.profile_id)


_P = TypeVar('_P', bound='VifPlugDynPlugin')


class VifPlugDynPlugin(osv_plugin.PluginBase):
    """The os-vif plugin ``vif_plug_dyn``.

    os-vif builds it through :meth:`load` with the plugin's own option
    group of ``oslo_config.cfg.CONF``; the library is initialised with that
    same process configuration the first time a VIF is plugged or
    unplugged (so a wrong ``network_dir`` fails a plug, not the process's
    start).

    :param config: the plugin's option group, as os-vif passes it.
    :param conf: the whole configuration (``oslo_config.cfg.CONF`` if
        omitted).
    :param host: a privileged host helper for the library instead of the
        default one (tests).
    """

    CONFIG_OPTS: list[cfg.Opt] = list(osvif.OPTS)
    #: The entry point name (``vif.plugin``) this class is registered as.
    NAME = osvif.PLUGIN_NAME
    #: The VIF object names it serves.
    VIF_TYPES: tuple[str, ...] = (VIF_BRIDGE, VIF_OPENVSWITCH, VIF_DIRECT,
                                  VIF_HOSTDEVICE)

    def __init__(self, config: Any = None,
                 conf: cfg.ConfigOpts | None = None,
                 host: Any = None) -> None:
        self.conf = cfg.CONF if conf is None else conf
        osvif.register_opts(self.conf)
        opts.register_opts(self.conf)
        super().__init__(config if config is not None
                         else self.conf[osvif.CONFIG_GROUP])
        self.plugin_name = self.NAME
        self._host = host
        self._manager: manager_mod.EndpointManager | None = None
        self._lock = threading.Lock()

    @classmethod
    def load(cls: type[_P], plugin_name: str) -> _P:
        """Build the plugin as os-vif does, remembering the name it was
        loaded under (the name :meth:`describe` reports)."""
        plugin = super().load(plugin_name)
        plugin.plugin_name = plugin_name
        plugin.check_alias()
        return plugin

    def check_alias(self) -> None:
        """Say in the log when another package provides ``linux_bridge``
        (os-vif before 5): the library's alias stands down there."""
        others = osvif.linux_bridge_providers()
        if others and self.NAME == osvif.PLUGIN_NAME:
            LOG.warning('os-vif plugin %(name)s is provided by %(others)s: '
                        'vif_plug_dyn does not serve %(name)s here (nova '
                        '31-33 reach it only with os-vif 5 or later); '
                        'VIFs with plugin=%(mine)s still reach the '
                        'library', {'name': osvif.LINUX_BRIDGE_NAME,
                                    'others': ', '.join(others),
                                    'mine': osvif.PLUGIN_NAME})

    @classmethod
    def from_conf(cls: type[_P], conf: cfg.ConfigOpts,
                  host: Any = None) -> _P:
        """Build the plugin on a configuration of the caller's (agents and
        tests), without os-vif's global one."""
        return cls(conf=conf, host=host)

    # -- the library ------------------------------------------------------

    @property
    def manager(self) -> manager_mod.EndpointManager:
        """The library's manager, initialised on first use with
        :attr:`conf`."""
        with self._lock:
            if self._manager is None:
                # NOTE(vpd): through the public initialize(), so that the
                # library's module functions (connect, disconnect...) in
                # this process act on the same ledger and networks.
                self._manager = vif_plug_dyn.initialize(self.conf,
                                                        host=self._host)
            return self._manager

    def mapper(self) -> VIFMapper:
        """A mapper over the host's networks and ``network_map``."""
        return VIFMapper(self.manager.registry,
                         self.conf[osvif.CONFIG_GROUP].network_map,
                         self.VIF_TYPES)

    # -- os-vif -----------------------------------------------------------

    def describe(self) -> osv_host_info.HostPluginInfo:
        """The VIF types and versions this plugin serves.

        Versions run from 1.0 to the version the installed os-vif defines,
        with the port profiles each type may carry.
        """
        vif_info = []
        for vif_type in self.VIF_TYPES:
            cls = getattr(osv_vif, vif_type)
            profiles = [osv_host_info.HostPortProfileInfo(
                profile_object_name=name, min_version='1.0',
                max_version=getattr(osv_vif, name).VERSION)
                for name in SUPPORTED_PROFILES[vif_type]]
            vif_info.append(osv_host_info.HostVIFInfo(
                vif_object_name=vif_type, min_version='1.0',
                max_version=cls.VERSION, supported_port_profiles=profiles))
        return osv_host_info.HostPluginInfo(
            plugin_name=self.plugin_name, vif_info=vif_info)

    def plug(self, vif: Any, instance_info: Any) -> None:
        """Build the VIF's endpoint and plug its cable (idempotent: a
        plugged VIF stays as it is, an unplugged one is plugged again).

        :raises os_vif.exception.PlugException: wrapping the library's
            exception (``err``, and ``__cause__``).
        """
        what = describe_vif(vif)
        try:
            binding = self.mapper().bind(vif, instance_info)
            manager = self.manager
            known = manager.ledger.get_port(binding.port.port_id)
            endpoint = manager.plug(binding.port, binding.accepted_types,
                                    binding.options)
            try:
                binding.check_endpoint(endpoint, what)
            except exception.VifPlugDynException:
                if known is None:
                    manager.release_endpoint(binding.port.port_id)
                raise
        except exception.VifPlugDynException as exc:
            raise osv_exception.PlugException(vif=what, err=exc) from exc
        LOG.info('Plugged %(vif)s: %(type)s endpoint on network '
                 '%(network)s', {'vif': what, 'type': endpoint.type,
                                 'network': endpoint.network})

    def unplug(self, vif: Any, instance_info: Any) -> None:
        """Remove the VIF's endpoint (a no-op when it has none).

        :raises os_vif.exception.UnplugException: wrapping the library's
            exception (``err``, and ``__cause__``).
        """
        what = describe_vif(vif)
        try:
            self.manager.release_endpoint(str(vif.id))
        except exception.VifPlugDynException as exc:
            raise osv_exception.UnplugException(vif=what, err=exc) from exc
        LOG.info('Unplugged %s', what)


class LinuxBridgePlugin(VifPlugDynPlugin):
    """The same plugin under nova's name for Neutron ``bridge`` ports,
    ``linux_bridge``: ``VIFBridge`` only.

    NOTE(vpd): its options stay in ``[os_vif_vif_plug_dyn]``: no
    ``CONFIG_OPTS`` here, so os-vif makes no second group that could
    disagree with the first.
    """

    CONFIG_OPTS: list[cfg.Opt] = []
    NAME = osvif.LINUX_BRIDGE_NAME
    VIF_TYPES: tuple[str, ...] = (VIF_BRIDGE,)

    def check_alias(self) -> None:
        """Stand down where another package provides ``linux_bridge``
        (os-vif before 5 ships its own): serve no VIF type and refuse
        every plug, saying why, rather than shadow or duplicate it."""
        others = osvif.linux_bridge_providers()
        if not others:
            return
        self.VIF_TYPES = ()
        self.refusal = ('%s is provided by %s; the vif_plug_dyn alias '
                        'stands down (use plugin=%s, or os-vif 5)' % (
                            osvif.LINUX_BRIDGE_NAME, ', '.join(others),
                            osvif.PLUGIN_NAME))
        LOG.error('os-vif plugin %s', self.refusal)

    def plug(self, vif: Any, instance_info: Any) -> None:
        """See :meth:`VifPlugDynPlugin.plug`; refused when the alias
        stood down (:meth:`check_alias`)."""
        refusal = getattr(self, 'refusal', None)
        if refusal is not None:
            raise osv_exception.PlugException(
                vif=describe_vif(vif), err=refusal)
        super().plug(vif, instance_info)
