"""Named host networks.

A guest only ever says ``network='red'``; each host says what *red* is.
Definitions are libvirt-style ``<network type='...'>`` documents, one file
per network in the configured ``network_dir``::

    <network type='bridge'>            <!-- a Linux bridge -->
      <name>red</name>
      <bridge name='br-red' managed='yes' stp='off' delay='0'/>
      <uplink dev='eth1' vlan='42'/>   <!-- optional -->
      <mtu size='1500'/>               <!-- optional -->
    </network>

    <network type='openvswitch'>       <!-- an OVS bridge -->
      <name>green</name>
      <bridge name='br-green' managed='yes'/>
      <vlan><tag id='10'/></vlan>      <!-- optional access tag -->
    </network>

    <network type='direct'>            <!-- a pool of lower devices -->
      <name>blue</name>
      <forward mode='bridge'>          <!-- vepa|bridge|private|passthrough -->
        <interface dev='eth2' maxConnections='8'/>
        <interface dev='eth3'/>
      </forward>
    </network>

    <network type='hostdev'>           <!-- SR-IOV VFs of some PFs -->
      <name>fast</name>
      <forward mode='hostdev'>
        <pf dev='ens1f0'/>
      </forward>
      <vlan><tag id='42'/></vlan>
    </network>

    <network type='virtual'>           <!-- a libvirt network by name -->
      <name>nat</name>
      <source network='default' portgroup='web'/>
    </network>

Every network may also carry ``<driver name='...'/>`` to pick a network
driver other than the one configured for its kind.
"""

import dataclasses
import os
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any, ClassVar

from vif_plug_dyn import exception
from vif_plug_dyn import fileutil
from vif_plug_dyn import objects
from vif_plug_dyn import validate
from vif_plug_dyn import xmlutil

BRIDGE = 'bridge'
OPENVSWITCH = 'openvswitch'
DIRECT = 'direct'
HOSTDEV = 'hostdev'
VIRTUAL = 'virtual'
#: Every network kind.
NETWORK_KINDS = (BRIDGE, OPENVSWITCH, DIRECT, HOSTDEV, VIRTUAL)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PoolInterface(objects.VersionedObject):
    """A lower device of a direct network's pool.

    :ivar dev: the host interface name.
    :ivar max_connections: how many ports may use it at once (``None``:
        no limit; passthrough always means one).
    """

    dev: str
    max_connections: int | None = None

    def __post_init__(self) -> None:
        validate.ifname(self.dev, 'interface.dev')
        if self.max_connections is not None:
            validate.positive_int(self.max_connections,
                                  'interface.maxConnections', high=4096)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Network(objects.VersionedObject):
    """One host's definition of a named network.

    :ivar name: the name guests use.
    :ivar kind: one of :data:`NETWORK_KINDS`.
    :ivar uuid: an optional UUID.
    :ivar driver: a network driver name overriding the kind's default.
    :ivar mtu: MTU for the bridge and the ports.
    :ivar vlan: OVS access tag, or the VLAN hostdev VFs tag.
    :ivar bridge: the bridge name (``bridge`` and ``openvswitch``).
    :ivar managed: the library creates the bridge when missing and
        removes it when it made it and no port is left; unmanaged bridges
        are adopted and never changed.
    :ivar stp: spanning tree on the Linux bridge.
    :ivar delay: the Linux bridge's forward delay in seconds.
    :ivar uplink: a host interface enslaved to the bridge.
    :ivar uplink_vlan: the VLAN of the uplink (a VLAN device on it).
    :ivar mode: the direct pool's macvtap mode.
    :ivar interfaces: the direct pool.
    :ivar pfs: the hostdev pool's physical functions.
    :ivar source_network: the hypervisor network of a virtual network.
    :ivar portgroup: an optional port group of that network.
    """

    name: str
    kind: str
    uuid: str | None = None
    driver: str | None = None
    mtu: int | None = None
    vlan: int | None = None
    bridge: str | None = None
    managed: bool = True
    stp: bool = False
    delay: int = 0
    uplink: str | None = None
    uplink_vlan: int | None = None
    mode: str | None = None
    interfaces: tuple[PoolInterface, ...] = ()
    pfs: tuple[str, ...] = ()
    source_network: str | None = None
    portgroup: str | None = None

    _KIND_FIELDS: ClassVar[dict[str, tuple[str, ...]]] = {
        BRIDGE: ('bridge', 'managed', 'stp', 'delay', 'uplink',
                 'uplink_vlan'),
        OPENVSWITCH: ('bridge', 'managed', 'vlan'),
        DIRECT: ('mode', 'interfaces'),
        HOSTDEV: ('pfs', 'vlan'),
        VIRTUAL: ('source_network', 'portgroup'),
    }

    def __post_init__(self) -> None:
        validate.network_name(self.name, 'name')
        validate.one_of(self.kind, 'type', NETWORK_KINDS)
        objects.set_normalised(self, 'interfaces', objects.require_sequence(
            self.interfaces, 'forward.interface'))
        objects.set_normalised(self, 'pfs', objects.require_sequence(
            self.pfs, 'forward.pf'))
        if self.uuid is not None:
            objects.set_normalised(self, 'uuid', validate.uuid(self.uuid))
        if self.driver is not None:
            validate.network_name(self.driver, 'driver')
        if self.mtu is not None:
            validate.mtu(self.mtu)
        if self.vlan is not None:
            validate.vlan(self.vlan)
        if self.kind in (BRIDGE, OPENVSWITCH):
            validate.ifname(self.bridge, 'bridge.name')
        if self.uplink is not None:
            validate.ifname(self.uplink, 'uplink.dev')
        if self.uplink_vlan is not None:
            if self.uplink is None:
                raise exception.InvalidField(
                    field='uplink.vlan', value=self.uplink_vlan,
                    reason='needs an uplink dev')
            validate.vlan(self.uplink_vlan, 'uplink.vlan')
        if isinstance(self.delay, bool) or not isinstance(self.delay, int) \
                or not 0 <= self.delay <= 30:
            raise exception.InvalidField(field='bridge.delay',
                                         value=self.delay,
                                         reason='must be 0-30 seconds')
        if self.kind == DIRECT:
            self._validate_direct()
        if self.kind == HOSTDEV:
            if not self.pfs:
                raise exception.InvalidField(field='forward.pf',
                                             value=self.pfs,
                                             reason='at least one PF needed')
            for pf in self.pfs:
                validate.ifname(pf, 'pf.dev')
            self._no_repeats(self.pfs, 'pf.dev')
        if self.kind == VIRTUAL:
            validate.network_name(self.source_network, 'source.network')
            if self.portgroup is not None:
                validate.network_name(self.portgroup, 'source.portgroup')
        self._no_foreign_fields()

    def _validate_direct(self) -> None:
        validate.macvtap_mode(self.mode, 'forward.mode')
        if not self.interfaces:
            raise exception.InvalidField(
                field='forward.interface', value=self.interfaces,
                reason='a direct network needs at least one interface')
        for item in self.interfaces:
            if not isinstance(item, PoolInterface):
                raise exception.InvalidField(field='forward.interface',
                                             value=item,
                                             reason='must be a '
                                                    'PoolInterface')
        self._no_repeats([i.dev for i in self.interfaces],
                         'forward.interface.dev')

    @staticmethod
    def _no_repeats(values: Any, field: str) -> None:
        seen = set()
        for value in values:
            if value in seen:
                raise exception.InvalidField(field=field, value=value,
                                             reason='listed twice')
            seen.add(value)

    def _no_foreign_fields(self) -> None:
        own = set(self._KIND_FIELDS[self.kind])
        defaults = {f.name: f for f in dataclasses.fields(self)}
        for fields in self._KIND_FIELDS.values():
            for name in fields:
                if name in own:
                    continue
                field = defaults[name]
                default = (field.default_factory()  # type: ignore[misc]
                           if field.default_factory is not
                           dataclasses.MISSING else field.default)
                if getattr(self, name) != default:
                    raise exception.InvalidField(
                        field=name, value=getattr(self, name),
                        reason='not used by %s networks' % self.kind)

    def connection_limit(self, dev: str) -> int | None:
        """Return how many ports may share pool interface ``dev``."""
        if self.mode == 'passthrough':
            return 1
        for item in self.interfaces:
            if item.dev == dev:
                return item.max_connections
        raise exception.InvalidField(field='interface.dev', value=dev,
                                     reason='not in network %s' % self.name)

    def lower_devices(self) -> tuple[str, ...]:
        """Return the host interfaces this network depends on."""
        if self.kind == DIRECT:
            return tuple(i.dev for i in self.interfaces)
        if self.kind == HOSTDEV:
            return self.pfs
        if self.uplink:
            return (self.uplink,)
        return ()

    # -- XML ------------------------------------------------------------

    def to_xml(self) -> str:
        """Format the definition as a ``<network>`` document."""
        root = ET.Element('network', type=self.kind)
        ET.SubElement(root, 'name').text = self.name
        if self.uuid:
            ET.SubElement(root, 'uuid').text = self.uuid
        if self.driver:
            ET.SubElement(root, 'driver', name=self.driver)
        if self.kind in (BRIDGE, OPENVSWITCH):
            attrs = {'name': str(self.bridge),
                     'managed': 'yes' if self.managed else 'no'}
            if self.kind == BRIDGE:
                attrs.update(stp='on' if self.stp else 'off',
                             delay=str(self.delay))
            ET.SubElement(root, 'bridge', attrs)
        if self.uplink:
            attrs = {'dev': self.uplink}
            if self.uplink_vlan is not None:
                attrs['vlan'] = str(self.uplink_vlan)
            ET.SubElement(root, 'uplink', attrs)
        if self.kind == DIRECT:
            forward = ET.SubElement(root, 'forward', mode=str(self.mode))
            for item in self.interfaces:
                attrs = {'dev': item.dev}
                if item.max_connections is not None:
                    attrs['maxConnections'] = str(item.max_connections)
                ET.SubElement(forward, 'interface', attrs)
        if self.kind == HOSTDEV:
            forward = ET.SubElement(root, 'forward', mode='hostdev')
            for pf in self.pfs:
                ET.SubElement(forward, 'pf', dev=pf)
        if self.kind == VIRTUAL:
            attrs = {'network': str(self.source_network)}
            if self.portgroup:
                attrs['portgroup'] = self.portgroup
            ET.SubElement(root, 'source', attrs)
        if self.vlan is not None:
            vlan = ET.SubElement(root, 'vlan')
            ET.SubElement(vlan, 'tag', id=str(self.vlan))
        if self.mtu is not None:
            ET.SubElement(root, 'mtu', size=str(self.mtu))
        ET.indent(root)
        return ET.tostring(root, encoding='unicode') + '\n'

    @classmethod
    def from_xml(cls, text: str | bytes, source: str = '<string>'
                 ) -> 'Network':
        """Parse a ``<network>`` document.

        :param text: the XML.
        :param source: where it came from (a file name), used in errors.
        :raises InvalidNetworkDefinition: names ``source`` and the element.
        """
        return _Parser(source).parse(text)


class _Parser:
    """Turns ``<network>`` XML into a :class:`Network`, naming the element
    at fault in every error."""

    _KNOWN_CHILDREN = ('name', 'uuid', 'driver', 'bridge', 'uplink',
                       'forward', 'vlan', 'mtu', 'source', 'description')

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, element: str, reason: str
             ) -> exception.InvalidNetworkDefinition:
        return exception.InvalidNetworkDefinition(
            source=self.source, element=element, reason=reason)

    def parse(self, text: str | bytes) -> Network:
        try:
            root = xmlutil.fromstring(text)
        except ET.ParseError as exc:
            raise self.fail('line %d' % exc.position[0],
                            'not well-formed XML: %s' % exc) from None
        if root.tag != 'network':
            raise self.fail('/' + root.tag, 'the root element must be '
                                            '<network>')
        for child in root:
            if child.tag not in self._KNOWN_CHILDREN:
                raise self.fail('/network/' + str(child.tag),
                                'unknown element')
        kind = root.get('type')
        if kind is None:
            raise self.fail('/network/@type', 'missing; one of %s' %
                            ', '.join(NETWORK_KINDS))
        fields: dict[str, Any] = {'kind': kind}
        fields['name'] = self.text(root, 'name', required=True)
        fields['uuid'] = self.text(root, 'uuid')
        fields['driver'] = self.attr(root, 'driver', 'name')
        fields['mtu'] = self.attr(root, 'mtu', 'size')
        vlan = root.find('vlan')
        if vlan is not None:
            tags = vlan.findall('tag')
            if len(tags) != 1:
                raise self.fail('/network/vlan', 'exactly one <tag> needed')
            fields['vlan'] = tags[0].get('id')
        bridge = root.find('bridge')
        if bridge is not None:
            fields['bridge'] = bridge.get('name')
            fields['managed'] = self.yes_no(bridge, 'managed', True,
                                            '/network/bridge/@managed')
            fields['stp'] = self.yes_no(bridge, 'stp', False,
                                        '/network/bridge/@stp', 'on', 'off')
            if bridge.get('delay') is not None:
                fields['delay'] = self.integer(bridge.get('delay'),
                                               '/network/bridge/@delay')
        uplink = root.find('uplink')
        if uplink is not None:
            fields['uplink'] = uplink.get('dev')
            fields['uplink_vlan'] = uplink.get('vlan')
        forward = root.find('forward')
        if forward is not None:
            self.parse_forward(forward, kind, fields)
        source = root.find('source')
        if source is not None:
            fields['source_network'] = source.get('network')
            fields['portgroup'] = source.get('portgroup')
        for key in ('mtu', 'vlan', 'uplink_vlan'):
            if fields.get(key) is not None:
                fields[key] = self.integer(fields[key], _XPATHS[key])
        fields = {k: v for k, v in fields.items() if v is not None}
        try:
            return Network(**fields)
        except exception.InvalidField as exc:
            field = exc.kwargs.get('field', '')
            raise self.fail(_XPATHS.get(field, '/network/' + field),
                            str(exc)) from None

    def parse_forward(self, forward: ET.Element, kind: str,
                      fields: dict[str, Any]) -> None:
        if kind == HOSTDEV:
            fields['pfs'] = tuple(pf.get('dev') or '' for pf in
                                  forward.findall('pf'))
            return
        fields['mode'] = forward.get('mode')
        pool = []
        for index, item in enumerate(forward.findall('interface'), 1):
            where = '/network/forward/interface[%d]' % index
            limit = item.get('maxConnections')
            try:
                pool.append(PoolInterface(
                    dev=item.get('dev') or '',
                    max_connections=(None if limit is None else
                                     self.integer(limit, where +
                                                  '/@maxConnections'))))
            except exception.InvalidField as exc:
                raise self.fail(where, str(exc)) from None
        fields['interfaces'] = tuple(pool)

    def text(self, root: ET.Element, tag: str, required: bool = False
             ) -> str | None:
        element = root.find(tag)
        if element is None or not (element.text or '').strip():
            if required:
                raise self.fail('/network/' + tag, 'missing')
            return None
        return (element.text or '').strip()

    @staticmethod
    def attr(root: ET.Element, tag: str, name: str) -> str | None:
        element = root.find(tag)
        return None if element is None else element.get(name)

    def yes_no(self, element: ET.Element, name: str, default: bool,
               where: str, yes: str = 'yes', no: str = 'no') -> bool:
        value = element.get(name)
        if value is None:
            return default
        if value not in (yes, no):
            raise self.fail(where, 'must be %r or %r' % (yes, no))
        return value == yes

    def integer(self, value: Any, where: str) -> int:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise self.fail(where, '%r is not an integer' % (value,)
                            ) from None


_XPATHS = {
    'name': '/network/name', 'type': '/network/@type',
    'uuid': '/network/uuid', 'driver': '/network/driver/@name',
    'mtu': '/network/mtu/@size', 'vlan': '/network/vlan/tag/@id',
    'bridge.name': '/network/bridge/@name',
    'bridge.delay': '/network/bridge/@delay',
    'uplink.dev': '/network/uplink/@dev',
    'uplink.vlan': '/network/uplink/@vlan',
    'uplink_vlan': '/network/uplink/@vlan',
    'forward.mode': '/network/forward/@mode', 'mode': '/network/forward',
    'forward.interface': '/network/forward/interface',
    'forward.interface.dev': '/network/forward/interface/@dev',
    'forward.pf': '/network/forward/pf', 'pf.dev': '/network/forward/pf',
    'source.network': '/network/source/@network',
    'source.portgroup': '/network/source/@portgroup',
}


class NetworkRegistry:
    """The host's named networks, kept as one XML file each in a directory.

    Files ending in ``.xml`` are read at :meth:`load`; :meth:`define`
    writes ``<name>.xml`` atomically and :meth:`undefine` removes the file
    that defined the network.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._networks: dict[str, Network] = {}
        self._files: dict[str, str] = {}

    def load(self) -> list[Network]:
        """(Re)read every definition in the directory.

        :returns: the networks, sorted by name.
        :raises InvalidNetworkDefinition: a file is invalid, or two files
            define the same name; nothing is replaced then.
        """
        networks: dict[str, Network] = {}
        files: dict[str, str] = {}
        if os.path.isdir(self.directory):
            for entry in sorted(os.listdir(self.directory)):
                if not entry.endswith('.xml'):
                    continue
                path = os.path.join(self.directory, entry)
                with open(path, 'rb') as handle:
                    network = Network.from_xml(handle.read(), source=path)
                if network.name in networks:
                    raise exception.InvalidNetworkDefinition(
                        source=path, element='/network/name',
                        reason='network %s is already defined in %s' % (
                            network.name, files[network.name]))
                networks[network.name] = network
                files[network.name] = path
        with self._lock:
            self._networks, self._files = networks, files
        return self.list()

    def list(self) -> list[Network]:
        """Return the defined networks, sorted by name."""
        with self._lock:
            return [self._networks[k] for k in sorted(self._networks)]

    def __iter__(self) -> Iterator[Network]:
        return iter(self.list())

    def get(self, name: str) -> Network:
        """Return the network called ``name``.

        :raises NetworkNotFound: no such network.
        """
        with self._lock:
            try:
                return self._networks[name]
            except KeyError:
                raise exception.NetworkNotFound(network=name) from None

    def define(self, network: Network | str, replace: bool = False
               ) -> Network:
        """Define (or with ``replace``, redefine) a network persistently.

        :param network: a :class:`Network` or its XML.
        :param replace: allow replacing an existing definition.
        :raises InvalidNetworkDefinition: the XML is invalid.
        :raises NetworkExists: the name exists and ``replace`` is false.
        """
        if isinstance(network, str):
            network = Network.from_xml(network, source='<define>')
        with self._lock:
            old = self._files.get(network.name)
            if old is not None and not replace:
                raise exception.NetworkExists(network=network.name,
                                              source=old)
            os.makedirs(self.directory, exist_ok=True)
            path = os.path.join(self.directory, network.name + '.xml')
            fileutil.atomic_write(path, network.to_xml())
            if old is not None and old != path:
                os.unlink(old)
            self._networks[network.name] = network
            self._files[network.name] = path
        return network

    def undefine(self, name: str) -> None:
        """Remove a network's definition.

        :raises NetworkNotFound: no such network.
        """
        with self._lock:
            path = self._files.pop(name, None)
            if path is None:
                raise exception.NetworkNotFound(network=name)
            del self._networks[name]
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
