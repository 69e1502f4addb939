"""Edits of a libvirt domain XML document, one NIC at a time.

Every function takes a domain XML string and returns a new one in which
only the named interface changed: other devices keep their order,
attributes, text, comments and namespace prefixes (``nova:`` metadata
stays ``nova:``), and an interface that is replaced keeps its guest PCI
address and alias unless the caller sets others. Interfaces are found by
MAC address.

The ``*_device_xml`` functions return a single ``<interface>`` element for
libvirt's live device calls (``updateDeviceFlags``, ``detachDeviceFlags``).
"""

import copy
import xml.etree.ElementTree as ET  # noqa: S405 - parsing via xmlutil
from collections.abc import Iterable, Mapping

from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import validate
from vif_plug_dyn import xmlutil
from vif_plug_dyn.virt.libvirt import config
from vif_plug_dyn.virt.libvirt import vif

_CONVERTER = vif.EndpointToInterface()


class _Domain:
    """A parsed domain document and its interface elements."""

    def __init__(self, domain_xml: str) -> None:
        if not isinstance(domain_xml, (str, bytes)):
            raise exception.InvalidXML(
                what='libvirt', element='domain',
                reason='expected XML text, got %s' %
                type(domain_xml).__name__)
        try:
            self.doc = xmlutil.parse_document(domain_xml)
        except ET.ParseError as exc:
            raise exception.InvalidXML(
                what='libvirt', element='domain',
                reason='not well-formed XML: %s' % exc) from None
        self.root = self.doc.root
        if self.root.tag != 'domain':
            raise exception.InvalidXML(
                what='libvirt', element='domain',
                reason='root element is <%s>' % self.root.tag)
        self.name = (self.root.findtext('name') or
                     self.root.findtext('uuid') or '(unnamed)').strip()
        devices = self.root.find('devices')
        if devices is None:
            devices = ET.SubElement(self.root, 'devices')
        self.devices = devices

    def interfaces(self) -> list[tuple[ET.Element, config.InterfaceConfig]]:
        """Return each ``<interface>`` element with its parsed config.

        :raises InvalidXML: an interface is invalid, or two share a MAC.
        """
        found = []
        seen: dict[str, str] = {}
        for index, element in enumerate(self.devices.findall('interface'),
                                        start=1):
            path = 'domain/devices/interface[%d]' % index
            iface = config.InterfaceConfig.parse_dom(element, path)
            assert iface.mac is not None
            if iface.mac in seen:
                raise exception.InvalidXML(
                    what='libvirt', element=path,
                    reason='MAC %s is already used by %s' % (
                        iface.mac, seen[iface.mac]))
            seen[iface.mac] = path
            found.append((element, iface))
        return found

    def find(self, mac: str) -> tuple[ET.Element, config.InterfaceConfig]:
        """Return the interface with ``mac``.

        :raises InterfaceNotFound: none has it.
        """
        mac = validate.mac(mac)
        for element, iface in self.interfaces():
            if iface.mac == mac:
                return element, iface
        raise exception.InterfaceNotFound(domain=self.name, mac=mac)

    def replace(self, old: ET.Element, new: ET.Element) -> None:
        """Put ``new`` where ``old`` is, with ``old``'s whitespace."""
        index = list(self.devices).index(old)
        self._indent(new)
        new.tail = old.tail
        self.devices[index] = new
        self.doc.declarations.pop(old, None)

    def add(self, new: ET.Element) -> None:
        """Add ``new`` after the last interface (or last device)."""
        children = list(self.devices)
        interfaces = [i for i, c in enumerate(children)
                      if c.tag == 'interface']
        self._indent(new)
        if not children:
            self.devices.append(new)
            return
        after = interfaces[-1] if interfaces else len(children) - 1
        _insert_after(self.devices, after, new)

    def _indent(self, element: ET.Element) -> None:
        # NOTE(vpd): match the document's indentation (domain/devices/
        # interface is level 2) so the result still reads like virsh
        # dumpxml; a document written on one line stays on one line.
        unit = _indent_unit(self.root)
        if unit is not None:
            ET.indent(element, space=unit, level=2)

    def to_string(self) -> str:
        return self.doc.to_string()


def _indent_unit(root: ET.Element) -> str | None:
    text = root.text or ''
    if '\n' not in text or text.strip():
        return None
    unit = text.rsplit('\n', 1)[1]
    return unit or None


def _insert_after(parent: ET.Element, index: int, new: ET.Element) -> None:
    """Insert ``new`` after ``parent[index]``, keeping the indentation."""
    previous = parent[index]
    if index == len(parent) - 1:
        # NOTE(vpd): the last child's tail indents the parent's closing
        # tag; the new last child takes it over, and the old last child
        # takes the indentation its siblings have.
        new.tail = previous.tail
        previous.tail = parent.text if parent.text and \
            not parent.text.strip() else previous.tail
    else:
        new.tail = previous.tail
    parent.insert(index + 1, new)


def _set_link(element: ET.Element, state: str) -> None:
    """Set the link state of an ``<interface>`` element in place.

    The first ``<link>`` is changed (libvirt honours only the first);
    any further ones are removed; one is added when there is none.
    """
    links = element.findall('link')
    if links:
        links[0].set('state', state)
        for extra in links[1:]:
            _remove_child(element, extra)
        return
    link = ET.Element('link', state=state)
    if len(element):
        _insert_after(element, len(element) - 1, link)
    else:
        element.append(link)


def _remove_child(parent: ET.Element, child: ET.Element) -> None:
    children = list(parent)
    index = children.index(child)
    if index == len(children) - 1:
        # NOTE(vpd): the last child's tail indents the parent's closing
        # tag; hand it to whatever now precedes that tag.
        if index > 0:
            children[index - 1].tail = child.tail
        elif parent.text is not None and not parent.text.strip():
            parent.text = child.tail
    parent.remove(child)


def _state(up: bool) -> str:
    if not isinstance(up, bool):
        raise exception.InvalidField(field='up', value=up,
                                     reason='must be a boolean')
    return 'up' if up else 'down'


# --- reading -----------------------------------------------------------------

def domain_name(domain_xml: str) -> str:
    """Return the domain's name (its UUID if it has none)."""
    return _Domain(domain_xml).name


def list_interfaces(domain_xml: str) -> dict[str, config.InterfaceConfig]:
    """Return the domain's interfaces by MAC, in document order.

    :raises InvalidXML: the domain or an interface is invalid, or two
        interfaces share a MAC.
    """
    return {iface.mac: iface for _e, iface in _Domain(domain_xml).interfaces()
            if iface.mac is not None}


def get_interface(domain_xml: str, mac: str) -> config.InterfaceConfig:
    """Return the interface with ``mac``.

    :raises InterfaceNotFound: the domain has none.
    """
    return _Domain(domain_xml).find(mac)[1]


def interface_device_xml(domain_xml: str, mac: str) -> str:
    """Return the ``<interface>`` element with ``mac`` exactly as the
    domain has it (what ``detachDeviceFlags`` should be given).

    :raises InterfaceNotFound: the domain has none.
    """
    dom = _Domain(domain_xml)
    element = dom.find(mac)[0]
    tail, element.tail = element.tail, None
    try:
        return xmlutil.tostring(element, dom.doc.declarations)
    finally:
        element.tail = tail


# --- editing -----------------------------------------------------------------

def add_interface(domain_xml: str, iface: config.InterfaceConfig) -> str:
    """Return the domain with ``iface`` added after its last interface.

    :raises InterfaceExists: an interface already has that MAC.
    :raises InvalidField: ``iface`` cannot be formatted.
    """
    dom = _Domain(domain_xml)
    element = iface.format_dom()
    assert iface.mac is not None
    mac = validate.mac(iface.mac)
    if any(i.mac == mac for _e, i in dom.interfaces()):
        raise exception.InterfaceExists(domain=dom.name, mac=mac)
    dom.add(element)
    return dom.to_string()


def replace_interface(domain_xml: str, iface: config.InterfaceConfig,
                      keep_guest_address: bool = True) -> str:
    """Return the domain with the interface of ``iface.mac`` replaced.

    :param iface: the new interface; its MAC names the one replaced.
    :param keep_guest_address: when ``iface`` has no guest PCI address or
        alias, keep those of the old interface, so the guest sees the NIC
        in the same slot under the same name.
    :raises InterfaceNotFound: no interface has that MAC.
    """
    dom = _Domain(domain_xml)
    if iface.mac is None:
        raise exception.InvalidField(field='interface.mac', value=None,
                                     reason='names the interface replaced')
    old_element, old = dom.find(iface.mac)
    if keep_guest_address:
        if iface.guest_address is None and old.guest_address is not None:
            iface = _with(iface, guest_address=old.guest_address)
        if iface.alias is None and old.alias is not None:
            iface = _with(iface, alias=old.alias)
    dom.replace(old_element, iface.format_dom())
    return dom.to_string()


def _with(iface: config.InterfaceConfig, **changes: object
          ) -> config.InterfaceConfig:
    new = copy.deepcopy(iface)
    for name, value in changes.items():
        setattr(new, name, copy.deepcopy(value))
    return new


def remove_interface(domain_xml: str, mac: str) -> str:
    """Return the domain without the interface of ``mac``.

    :raises InterfaceNotFound: no interface has that MAC.
    """
    dom = _Domain(domain_xml)
    element = dom.find(mac)[0]
    _remove_child(dom.devices, element)
    return dom.to_string()


def set_link_state(domain_xml: str, mac: str, up: bool) -> str:
    """Return the domain with the guest link of ``mac`` up or down.

    The interface's first ``<link>`` element is changed in place (extra
    ones, which libvirt ignores, are removed); nothing else of the
    interface is touched.

    :raises InterfaceNotFound: no interface has that MAC.
    :raises LiveUpdateRefused: the interface is a hostdev (a VF's link is
        set on its PF, not by libvirt).
    """
    state = _state(up)
    dom = _Domain(domain_xml)
    element, iface = dom.find(mac)
    _refuse_hostdev_link(dom.name, iface)
    _set_link(element, state)
    return dom.to_string()


def _refuse_hostdev_link(domain: str, iface: config.InterfaceConfig) -> None:
    if iface.type == 'hostdev':
        raise exception.LiveUpdateRefused(
            operation='setting the link state of %s' % iface.mac,
            domain=domain,
            reason='a hostdev interface has no emulated link; set the VF '
                   'link state on its PF')


def link_state_device_xml(domain_xml: str, mac: str, up: bool) -> str:
    """Return the interface of ``mac`` with its link state changed, for
    ``updateDeviceFlags``.

    :raises InterfaceNotFound: no interface has that MAC.
    :raises LiveUpdateRefused: the interface is a hostdev.
    """
    state = _state(up)
    dom = _Domain(domain_xml)
    element, iface = dom.find(mac)
    _refuse_hostdev_link(dom.name, iface)
    _set_link(element, state)
    element.tail = None
    return xmlutil.tostring(element, dom.doc.declarations)


def source_update_device_xml(domain_xml: str,
                             endpoint: endpoints.Endpoint) -> str:
    """Return the interface of ``endpoint.mac`` moved to ``endpoint``'s
    host side, for ``updateDeviceFlags``.

    libvirt changes the source of ``bridge`` and ``network`` interfaces
    of a running guest; it refuses other changes of type or source.

    :raises InterfaceNotFound: no interface has that MAC.
    :raises LiveUpdateRefused: the change is not one libvirt makes live
        (a type change, or a ``direct``/``hostdev`` source).
    """
    dom = _Domain(domain_xml)
    _element, iface = dom.find(endpoint.mac)
    new = _CONVERTER.apply(iface, endpoint)
    live = ('bridge', 'network')
    if iface.type != new.type or new.type not in live:
        # NOTE(vpd): QEMU holds a macvtap's fd and a VF is the guest's own
        # PCI device; neither can be swapped under a running guest. The
        # documented way to reconnect those is detach + attach with the
        # same MAC and guest PCI address.
        raise exception.LiveUpdateRefused(
            operation='changing the source of %s' % iface.mac,
            domain=dom.name,
            reason='libvirt changes only bridge and network sources live '
                   '(from %s to %s); detach and attach instead' % (
                       iface.type, new.type))
    return new.to_xml()


# --- migration ---------------------------------------------------------------

def migration_xml(domain_xml: str,
                  dest_endpoints: Mapping[str, endpoints.Endpoint],
                  converter: vif.EndpointToInterface | None = None) -> str:
    """Return the domain as it must be defined on a destination host.

    Each interface, matched by MAC, takes the host side of its destination
    endpoint (type, source, target, virtual port, VLAN, MTU, queues) and
    keeps what the guest sees: MAC, model, guest PCI address, alias, link
    state and every element the adapter does not model. Nothing else in
    the domain changes.

    :param domain_xml: the domain on the source host.
    :param dest_endpoints: the destination endpoint of every interface,
        keyed by MAC.
    :param converter: the endpoint converter (the default one if omitted).
    :raises MigrationEndpointMissing: an interface has no destination
        endpoint (all such MACs are named).
    :raises MigrationNotPossible: an endpoint would change the device the
        guest sees (a VF for an emulated NIC or the reverse).
    :raises InterfaceNotFound: an endpoint names a MAC the domain lacks.
    :raises InvalidField: a key is not the MAC of its endpoint.
    """
    converter = converter or _CONVERTER
    dom = _Domain(domain_xml)
    dest: dict[str, endpoints.Endpoint] = {}
    for key, endpoint in dest_endpoints.items():
        mac = validate.mac(key, 'dest_endpoints key')
        if not isinstance(endpoint, endpoints.Endpoint):
            raise exception.InvalidField(
                field='dest_endpoints[%s]' % mac, value=endpoint,
                reason='must be an endpoint')
        if endpoint.mac != mac:
            raise exception.InvalidField(
                field='dest_endpoints[%s]' % mac, value=endpoint.mac,
                reason='the endpoint is for another MAC')
        dest[mac] = endpoint
    found = dom.interfaces()
    missing = [iface.mac for _e, iface in found if iface.mac not in dest]
    if missing:
        raise exception.MigrationEndpointMissing(
            domain=dom.name, mac=', '.join(str(m) for m in missing))
    macs = {iface.mac for _e, iface in found}
    for mac in dest:
        if mac not in macs:
            raise exception.InterfaceNotFound(domain=dom.name, mac=mac)
    for element, iface in found:
        assert iface.mac is not None
        endpoint = dest[iface.mac]
        if (iface.type == 'hostdev') != (endpoint.type == endpoints.HOSTDEV):
            # NOTE(vpd): a VF and an emulated NIC are different PCI devices
            # to the guest; libvirt's ABI check would refuse the migration
            # anyway, so say why here.
            raise exception.MigrationNotPossible(
                mac=iface.mac, domain=dom.name,
                reason='the guest has a %s interface and the destination '
                       'endpoint is %s; the guest would see another '
                       'device' % (iface.type, endpoint.type))
        dom.replace(element, converter.apply(iface, endpoint).format_dom())
    return dom.to_string()


# --- new documents -----------------------------------------------------------

def new_domain_xml(name: str, interfaces: Iterable[config.InterfaceConfig],
                   domain_type: str = 'qemu', memory_kib: int = 131072,
                   uuid: str | None = None) -> str:
    """Return a minimal domain with ``interfaces`` and nothing else.

    Enough for libvirt to define (with the ``test`` driver) and for its
    schema to validate; a bootable guest needs disks or a kernel on top.

    :param name: the domain name.
    :param interfaces: its NICs.
    :param domain_type: ``qemu``, ``kvm`` or ``test``.
    :param memory_kib: memory in KiB.
    :param uuid: the domain UUID (libvirt makes one if omitted).
    """
    validate.safe_text(name, 'name', max_len=64)
    validate.one_of(domain_type, 'domain_type', ('qemu', 'kvm', 'test'))
    validate.positive_int(memory_kib, 'memory_kib', high=2 ** 40)
    root = ET.Element('domain', type=domain_type)
    ET.SubElement(root, 'name').text = name
    if uuid is not None:
        ET.SubElement(root, 'uuid').text = validate.uuid(uuid)
    ET.SubElement(root, 'memory', unit='KiB').text = str(memory_kib)
    ET.SubElement(root, 'vcpu').text = '1'
    os_element = ET.SubElement(root, 'os')
    ET.SubElement(os_element, 'type').text = 'hvm'
    devices = ET.SubElement(root, 'devices')
    for iface in interfaces:
        devices.append(iface.format_dom())
    ET.indent(root, space='  ')
    return xmlutil.tostring(root)
