"""libvirt configuration objects.

Each XML element the adapter writes has exactly one class here that both
formats it (:meth:`ConfigObject.format_dom`, :meth:`ConfigObject.to_xml`)
and parses it back (:meth:`ConfigObject.parse_dom`,
:meth:`ConfigObject.parse_str`), so that every attribute written can be
read again and round trips are testable.

Elements read from a live domain carry more than the adapter models
(``<rom>``, ``<boot>``, ``<bandwidth>``, ``portid`` on a network source,
...). Nothing of that is lost: attributes a class does not model are kept
in ``extra_attrs`` and child elements it does not model in
``extra_children`` (as raw elements), and both are written back.

Errors found while parsing raise :class:`~vif_plug_dyn.exception.
InvalidXML` naming the element path (``interface/mtu``); bad values set on
an object before formatting raise :class:`~vif_plug_dyn.exception.
InvalidField` naming the field.
"""

import dataclasses
import xml.etree.ElementTree as ET  # noqa: S405 - parsing via xmlutil
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from vif_plug_dyn import exception
from vif_plug_dyn import validate
from vif_plug_dyn import xmlutil

_T = TypeVar('_T', bound='ConfigObject')

#: Interface types whose source and target this module models.
INTERFACE_TYPES = ('bridge', 'direct', 'hostdev', 'ethernet', 'network')
#: Interface types that give the guest an emulated NIC on a tap/macvtap.
TAP_TYPES = ('bridge', 'direct', 'ethernet', 'network')
LINK_STATES = ('up', 'down')


def _canonical(element: ET.Element) -> str:
    return ET.canonicalize(xmlutil.tostring(element))


def _invalid(path: str, reason: str) -> exception.InvalidXML:
    return exception.InvalidXML(what='libvirt', element=path, reason=reason)


def _yes_no(value: str | None, path: str, attr: str) -> bool | None:
    if value is None:
        return None
    if value in ('yes', 'no'):
        return value == 'yes'
    raise _invalid(path, "attribute %s=%r must be 'yes' or 'no'" % (
        attr, value))


def _format_yes_no(value: bool | None) -> str | None:
    if value is None:
        return None
    return 'yes' if value else 'no'


def _int_attr(element: ET.Element, attr: str, path: str, low: int,
              high: int, hex_ok: bool = False) -> int | None:
    """Read an integer attribute (decimal, or 0x-prefixed hex)."""
    value = element.get(attr)
    if value is None:
        return None
    text = value.strip()
    try:
        # NOTE(vpd): libvirt writes PCI address parts as 0x-prefixed hex
        # and reads plain digits as decimal; never read a leading 0 as
        # octal, which libvirt would not do either.
        if text.lower().startswith('0x'):
            if not hex_ok:
                raise ValueError(text)
            number = int(text[2:], 16)
        else:
            if not text.isdigit():
                raise ValueError(text)
            number = int(text, 10)
    except ValueError:
        raise _invalid(path, 'attribute %s=%r is not an integer' % (
            attr, value)) from None
    if not low <= number <= high:
        raise _invalid(path, 'attribute %s=%r is not between %d and %d' % (
            attr, value, low, high))
    return number


def _check_int(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or \
            not low <= value <= high:
        raise exception.InvalidField(
            field=field, value=value,
            reason='must be an integer from %d to %d' % (low, high))
    return value


def _check_str(value: Any, field: str) -> str:
    return validate.safe_text(value, field)


def _set(element: ET.Element, attr: str, value: Any) -> None:
    if value is not None:
        element.set(attr, str(value))


@dataclasses.dataclass(eq=False, kw_only=True)
class ConfigObject:
    """Base of every libvirt configuration object.

    :ivar extra_attrs: attributes of the element this class does not model,
        kept so that nothing read is lost when it is written back.
    :ivar extra_children: child elements this class does not model, kept
        raw and written back after the modelled ones.
    """

    #: The element's tag.
    ROOT_NAME: ClassVar[str] = ''
    #: Attributes the class models (everything else goes to extra_attrs).
    KNOWN_ATTRS: ClassVar[frozenset[str]] = frozenset()
    #: Child tags the class models (everything else goes to
    #: extra_children).
    KNOWN_CHILDREN: ClassVar[frozenset[str]] = frozenset()

    extra_attrs: dict[str, str] = dataclasses.field(default_factory=dict)
    extra_children: list[ET.Element] = dataclasses.field(
        default_factory=list)

    # -- comparison -----------------------------------------------------

    def _compare_key(self) -> tuple[Any, ...]:
        key: list[Any] = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == 'extra_children':
                value = tuple(_canonical(e) for e in value)
            elif isinstance(value, dict):
                value = tuple(sorted(
                    (k, tuple(_canonical(e) for e in v)
                     if isinstance(v, list) else
                     tuple(sorted(v.items())) if isinstance(v, dict) else v)
                    for k, v in value.items()))
            elif isinstance(value, list):
                value = tuple(value)
            key.append(value)
        return tuple(key)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, ConfigObject)
        return self._compare_key() == other._compare_key()

    __hash__ = None  # type: ignore[assignment]

    # -- formatting -----------------------------------------------------

    def format_dom(self) -> ET.Element:
        """Return the element (validating the fields first).

        :raises InvalidField: a field holds a value libvirt would refuse.
        """
        element = ET.Element(self.ROOT_NAME)
        self._format_into(element)
        self._format_extras(element)
        return element

    def _format_into(self, element: ET.Element) -> None:
        raise NotImplementedError

    def _format_extras(self, element: ET.Element) -> None:
        for name, value in self.extra_attrs.items():
            if name not in element.attrib:
                element.set(name, value)
        for child in self.extra_children:
            element.append(_copy(child))

    def to_xml(self, pretty: bool = False) -> str:
        """Serialise the element.

        :param pretty: indent with two spaces, as libvirt does.
        """
        element = self.format_dom()
        if pretty:
            ET.indent(element, space='  ')
        return xmlutil.tostring(element)

    # -- parsing --------------------------------------------------------

    @classmethod
    def parse_dom(cls: type[_T], element: ET.Element,
                  path: str | None = None) -> _T:
        """Build an object from an element.

        :param element: the element, whose tag must be :attr:`ROOT_NAME`.
        :param path: where the element sits, for error messages.
        :raises InvalidXML: the element is not what this class reads, or
            an attribute or child is malformed.
        """
        path = path or cls.ROOT_NAME
        if element.tag != cls.ROOT_NAME:
            raise _invalid(path, 'expected <%s>, found <%s>' % (
                cls.ROOT_NAME, element.tag))
        obj = cls._parse_into(element, path)
        obj.extra_attrs = {k: v for k, v in element.attrib.items()
                           if k not in cls.KNOWN_ATTRS}
        obj.extra_children = [_copy(c) for c in element
                              if not isinstance(c.tag, str) or
                              c.tag not in cls.KNOWN_CHILDREN]
        return obj

    @classmethod
    def _parse_into(cls: type[_T], element: ET.Element, path: str) -> _T:
        raise NotImplementedError

    @classmethod
    def parse_str(cls: type[_T], text: str) -> _T:
        """Parse the element from XML text.

        :raises InvalidXML: the text is not well-formed or not valid.
        """
        try:
            element = xmlutil.fromstring(text)
        except ET.ParseError as exc:
            raise _invalid(cls.ROOT_NAME, 'not well-formed XML: %s' % exc
                           ) from None
        return cls.parse_dom(element)


def _copy(element: ET.Element) -> ET.Element:
    """Deep-copy an element without its tail (whitespace of the source)."""
    copy = ET.Element(element.tag, dict(element.attrib))
    copy.text = element.text
    for child in element:
        copy.append(_copy(child))
        copy[-1].tail = child.tail
    return copy


def _first_child(element: ET.Element, tag: str) -> ET.Element | None:
    """Return the first ``tag`` child of ``element``."""
    # NOTE(vpd): libvirt reads a single-valued child with an XPath that
    # takes the first match (string(./link/@state)) and ignores the
    # others; do the same, so the object describes what libvirt would use.
    # Further copies are not kept: written back, they would be a second
    # <link> or <mac> that libvirt would ignore again.
    return element.find(tag)


# --- <address> ---------------------------------------------------------------

@dataclasses.dataclass(eq=False, kw_only=True)
class AddressConfig(ConfigObject):
    """A device address, ``<address type='pci' domain= bus= slot=
    function=/>``.

    Only PCI addresses are modelled; an address of another type (``ccw``,
    ``virtio-mmio``, ...) read from a domain keeps its attributes in
    ``extra_attrs`` and is written back unchanged.
    """

    ROOT_NAME: ClassVar[str] = 'address'
    KNOWN_ATTRS: ClassVar[frozenset[str]] = frozenset(
        ('type', 'domain', 'bus', 'slot', 'function', 'multifunction'))

    type: str = 'pci'
    domain: int | None = None
    bus: int | None = None
    slot: int | None = None
    function: int | None = None
    multifunction: bool | None = None

    @classmethod
    def from_pci(cls, address: str) -> 'AddressConfig':
        """Build a PCI address from ``dddd:bb:ss.f``.

        :raises InvalidField: not a PCI address.
        """
        parts = validate.pci_parts(address)
        return cls(type='pci', domain=parts['domain'], bus=parts['bus'],
                   slot=parts['slot'], function=parts['function'])

    def pci(self) -> str | None:
        """Return the address as ``dddd:bb:ss.f``, or ``None`` when it is
        not a complete PCI address."""
        if self.type != 'pci' or self.domain is None or self.bus is None \
                or self.slot is None or self.function is None:
            return None
        return '%04x:%02x:%02x.%x' % (self.domain, self.bus, self.slot,
                                      self.function)

    def _format_into(self, element: ET.Element) -> None:
        element.set('type', _check_str(self.type, 'address.type'))
        if self.type != 'pci':
            for name in ('domain', 'bus', 'slot', 'function'):
                if getattr(self, name) is not None:
                    raise exception.InvalidField(
                        field='address.' + name, value=getattr(self, name),
                        reason='only PCI addresses are modelled')
            return
        for name, width, high in (('domain', 4, 0xffff), ('bus', 2, 0xff),
                                  ('slot', 2, 0x1f), ('function', 1, 7)):
            value = getattr(self, name)
            if value is None:
                raise exception.InvalidField(
                    field='address.' + name, value=None,
                    reason='a PCI address needs domain, bus, slot and '
                           'function')
            _check_int(value, 'address.' + name, 0, high)
            element.set(name, '0x%0*x' % (width, value))
        _set(element, 'multifunction', _format_yes_no(self.multifunction))

    @classmethod
    def _parse_into(cls, element: ET.Element, path: str
                    ) -> 'AddressConfig':
        kind = element.get('type')
        if kind is None:
            raise _invalid(path, 'has no type attribute')
        if kind != 'pci':
            return cls(type=kind)
        def part(name: str, high: int) -> int | None:
            return _int_attr(element, name, path, 0, high, hex_ok=True)

        return cls(type='pci', domain=part('domain', 0xffff),
                   bus=part('bus', 0xff), slot=part('slot', 0x1f),
                   function=part('function', 7),
                   multifunction=_yes_no(element.get('multifunction'),
                                         path, 'multifunction'))

    @classmethod
    def parse_dom(cls, element: ET.Element, path: str | None = None
                  ) -> 'AddressConfig':
        obj = super().parse_dom(element, path)
        if obj.type != 'pci':
            # NOTE(vpd): for other address types every attribute but the
            # type is kept verbatim; none of them is modelled.
            obj.extra_attrs = {k: v for k, v in element.attrib.items()
                               if k != 'type'}
        return obj


# --- <virtualport> -----------------------------------------------------------

_VIRTUALPORT_PARAMS = {
    # field name: (XML attribute, parse as integer up to this, or None)
    'interface_id': ('interfaceid', None),
    'profile_id': ('profileid', None),
    'manager_id': ('managerid', 255),
    'type_id': ('typeid', 2 ** 24 - 1),
    'type_id_version': ('typeidversion', 255),
    'instance_id': ('instanceid', None),
}


@dataclasses.dataclass(eq=False, kw_only=True)
class VirtualPortConfig(ConfigObject):
    """``<virtualport type=...><parameters .../></virtualport>``.

    ``openvswitch`` takes ``interfaceid`` and ``profileid``; ``802.1Qbg``
    takes ``managerid``, ``typeid``, ``typeidversion`` and ``instanceid``;
    ``802.1Qbh`` takes ``profileid``. Unknown attributes of
    ``<parameters>`` are kept in ``extra_parameters``.
    """

    ROOT_NAME: ClassVar[str] = 'virtualport'
    KNOWN_ATTRS: ClassVar[frozenset[str]] = frozenset(('type',))
    KNOWN_CHILDREN: ClassVar[frozenset[str]] = frozenset(('parameters',))

    type: str | None = None
    interface_id: str | None = None
    profile_id: str | None = None
    manager_id: int | None = None
    type_id: int | None = None
    type_id_version: int | None = None
    instance_id: str | None = None
    extra_parameters: dict[str, str] = dataclasses.field(
        default_factory=dict)

    def _format_into(self, element: ET.Element) -> None:
        if self.type is not None:
            element.set('type', validate.one_of(
                self.type, 'virtualport.type',
                ('openvswitch', '802.1Qbg', '802.1Qbh', 'midonet')))
        params = ET.Element('parameters')
        for field, (attr, high) in _VIRTUALPORT_PARAMS.items():
            value = getattr(self, field)
            if value is None:
                continue
            if high is not None:
                _check_int(value, 'virtualport.' + field, 0, high)
            elif field.endswith('_id') and field != 'profile_id':
                value = validate.uuid(value, 'virtualport.' + field)
            else:
                value = validate.safe_text(value, 'virtualport.' + field,
                                           max_len=40)
            params.set(attr, str(value))
        for name, value in self.extra_parameters.items():
            params.set(name, value)
        if params.attrib:
            element.append(params)

    @classmethod
    def _parse_into(cls, element: ET.Element, path: str
                    ) -> 'VirtualPortConfig':
        obj = cls(type=element.get('type'))
        params = _first_child(element, 'parameters')
        if params is None:
            return obj
        ppath = path + '/parameters'
        known = set()
        for field, (attr, high) in _VIRTUALPORT_PARAMS.items():
            known.add(attr)
            if high is not None:
                setattr(obj, field, _int_attr(params, attr, ppath, 0, high))
            else:
                setattr(obj, field, params.get(attr))
        obj.extra_parameters = {k: v for k, v in params.attrib.items()
                                if k not in known}
        if len(params):
            # NOTE(vpd): <parameters> has no children in libvirt's schema;
            # refuse rather than drop them silently.
            raise _invalid(ppath, 'unexpected child <%s>' % params[0].tag)
        return obj


# --- <vlan> ------------------------------------------------------------------

@dataclasses.dataclass(eq=False, kw_only=True)
class VlanConfig(ConfigObject):
    """``<vlan [trunk='yes']><tag id='42' [nativeMode='tagged']/></vlan>``.

    :ivar tags: ``(id, nativeMode or None)`` for each ``<tag>``.
    :ivar trunk: the ``trunk`` attribute.
    """

    ROOT_NAME: ClassVar[str] = 'vlan'
    KNOWN_ATTRS: ClassVar[frozenset[str]] = frozenset(('trunk',))
    KNOWN_CHILDREN: ClassVar[frozenset[str]] = frozenset(('tag',))

    tags: list[tuple[int, str | None]] = dataclasses.field(
        default_factory=list)
    trunk: bool | None = None

    def _format_into(self, element: ET.Element) -> None:
        if not self.tags:
            raise exception.InvalidField(field='vlan.tags', value=self.tags,
                                         reason='needs at least one tag')
        _set(element, 'trunk', _format_yes_no(self.trunk))
        for tag_id, native in self.tags:
            tag = ET.SubElement(element, 'tag', id=str(validate.vlan(
                tag_id, 'vlan.tag.id')))
            if native is not None:
                tag.set('nativeMode', validate.one_of(
                    native, 'vlan.tag.nativeMode', ('tagged', 'untagged')))

    @classmethod
    def _parse_into(cls, element: ET.Element, path: str) -> 'VlanConfig':
        obj = cls(trunk=_yes_no(element.get('trunk'), path, 'trunk'))
        for tag in element.findall('tag'):
            tag_id = _int_attr(tag, 'id', path + '/tag', 0, 4095)
            if tag_id is None:
                raise _invalid(path + '/tag', 'has no id attribute')
            obj.tags.append((tag_id, tag.get('nativeMode')))
        if not obj.tags:
            raise _invalid(path, 'has no <tag>')
        return obj


# --- <interface> -------------------------------------------------------------

#: The attributes each inline child of <interface> models.
_CHILD_ATTRS: dict[str, frozenset[str]] = {
    'mac': frozenset(('address',)),
    'source': frozenset(('bridge', 'dev', 'mode', 'network', 'portgroup')),
    'target': frozenset(('dev', 'managed')),
    'model': frozenset(('type',)),
    'driver': frozenset(('name', 'queues')),
    'mtu': frozenset(('size',)),
    'link': frozenset(('state',)),
    'alias': frozenset(('name',)),
}
#: The children the source element models (hostdev's PCI address).
_SOURCE_CHILDREN = frozenset(('address',))


@dataclasses.dataclass(eq=False, kw_only=True)
class InterfaceConfig(ConfigObject):
    """A guest NIC, ``<interface type=...>``.

    Modelled per type:

    * ``bridge``: ``source_bridge``, ``target_dev``, ``virtualport``
      (``openvswitch``);
    * ``direct``: ``source_dev``, ``source_mode``, ``virtualport``
      (``802.1Qbg``/``802.1Qbh``);
    * ``hostdev``: ``managed``, ``source_address`` (the VF), ``vlan``;
    * ``ethernet``: ``target_dev`` with ``target_managed=False``;
    * ``network``: ``source_network``, ``source_portgroup``.

    And for all: ``mac``, ``model``, ``mtu``, ``link_state``,
    ``driver_name``/``driver_queues``, ``guest_address``, ``alias``.

    Interfaces of other types (``vhostuser``, ``user``, ...) read from a
    domain are kept as they are: their type, the modelled attributes that
    are present and every extra; they format back to the same element.

    :ivar child_extra_attrs: for each inline child (``mac``, ``source``,
        ``target``, ``model``, ``driver``, ``mtu``, ``link``, ``alias``),
        the attributes it had that are not modelled (a live network
        source's ``portid`` and ``bridge``, a MAC's ``type``, ...).
    :ivar child_extra_children: for ``source`` and ``driver``, their
        children that are not modelled (``<driver><host .../></driver>``).
    """

    ROOT_NAME: ClassVar[str] = 'interface'
    KNOWN_ATTRS: ClassVar[frozenset[str]] = frozenset(('type', 'managed'))
    KNOWN_CHILDREN: ClassVar[frozenset[str]] = frozenset(
        tuple(_CHILD_ATTRS) + ('vlan', 'virtualport', 'address'))

    type: str = 'bridge'
    mac: str | None = None
    managed: bool | None = None
    source_bridge: str | None = None
    source_dev: str | None = None
    source_mode: str | None = None
    source_network: str | None = None
    source_portgroup: str | None = None
    source_address: AddressConfig | None = None
    vlan: VlanConfig | None = None
    virtualport: VirtualPortConfig | None = None
    target_dev: str | None = None
    target_managed: bool | None = None
    model: str | None = None
    driver_name: str | None = None
    driver_queues: int | None = None
    link_state: str | None = None
    mtu: int | None = None
    alias: str | None = None
    guest_address: AddressConfig | None = None
    child_extra_attrs: dict[str, dict[str, str]] = dataclasses.field(
        default_factory=dict)
    child_extra_children: dict[str, list[ET.Element]] = dataclasses.field(
        default_factory=dict)

    # -- formatting -----------------------------------------------------

    def _check(self) -> None:
        """Refuse combinations libvirt would refuse or misread."""
        kind = self.type
        if not isinstance(kind, str) or not kind.isascii() or \
                not kind.isalpha():
            raise exception.InvalidField(field='interface.type', value=kind,
                                         reason='not an interface type')
        if self.mac is None:
            raise exception.InvalidField(
                field='interface.mac', value=None,
                reason='every interface the library writes has a MAC')
        required = {'bridge': ('source_bridge',),
                    'direct': ('source_dev',),
                    'hostdev': ('source_address',),
                    'network': ('source_network',)}.get(kind, ())
        for name in required:
            if getattr(self, name) is None:
                raise exception.InvalidField(
                    field='interface.' + name, value=None,
                    reason='required for %s interfaces' % kind)
        if self.managed is not None and kind != 'hostdev':
            raise exception.InvalidField(
                field='interface.managed', value=self.managed,
                reason='only hostdev interfaces take managed=')
        if self.link_state is not None:
            validate.one_of(self.link_state, 'interface.link_state',
                            LINK_STATES)

    def format_dom(self) -> ET.Element:
        # NOTE(vpd): written out child by child rather than driven by a
        # table: this runs for every NIC of every domain defined, and the
        # benchmark (tools/bench/xml_render.py) wants >= 20,000/s.
        self._check()
        attrib = {'type': self.type}
        if self.managed is not None:
            attrib['managed'] = 'yes' if self.managed else 'no'
        for name, value in self.extra_attrs.items():
            attrib.setdefault(name, value)
        element = ET.Element('interface', attrib)
        append = element.append
        known = self.type in INTERFACE_TYPES
        ifname = validate.ifname if known else _check_str
        has_extras = self.child_extra_attrs or self.child_extra_children

        append(self._leaf('mac', {'address': validate.mac(
            self.mac, 'interface.mac')}))
        source = self._format_source(known, ifname)
        if source is not None:
            append(source)
        if self.vlan is not None:
            append(self.vlan.format_dom())
        if self.virtualport is not None:
            append(self.virtualport.format_dom())
        attrib = {}
        if self.target_dev is not None:
            attrib['dev'] = ifname(self.target_dev, 'interface.target_dev')
        if self.target_managed is not None:
            attrib['managed'] = 'yes' if self.target_managed else 'no'
        if attrib or has_extras and self._has_extras('target'):
            append(self._leaf('target', attrib))
        if self.model is not None:
            append(self._leaf('model', {'type': _check_str(
                self.model, 'interface.model')}))
        elif has_extras and self._has_extras('model'):
            append(self._leaf('model', {}))
        attrib = {}
        if self.driver_name is not None:
            attrib['name'] = _check_str(self.driver_name,
                                        'interface.driver_name')
        if self.driver_queues is not None:
            attrib['queues'] = str(_check_int(
                self.driver_queues, 'interface.driver_queues', 1, 65535))
        if attrib or has_extras and self._has_extras('driver'):
            append(self._leaf('driver', attrib))
        if self.link_state is not None:
            append(self._leaf('link', {'state': self.link_state}))
        elif has_extras and self._has_extras('link'):
            append(self._leaf('link', {}))
        if self.mtu is not None:
            append(self._leaf('mtu', {'size': str(validate.mtu(
                self.mtu, 'interface.mtu'))}))
        elif has_extras and self._has_extras('mtu'):
            append(self._leaf('mtu', {}))
        for child in self.extra_children:
            append(_copy(child))
        # NOTE(vpd): alias and address come last, as libvirt writes them,
        # so a formatted live interface reads like virsh dumpxml.
        if self.alias is not None:
            append(self._leaf('alias', {'name': _check_str(
                self.alias, 'interface.alias')}))
        elif has_extras and self._has_extras('alias'):
            append(self._leaf('alias', {}))
        if self.guest_address is not None:
            append(self.guest_address.format_dom())
        return element

    def _has_extras(self, tag: str) -> bool:
        return tag in self.child_extra_attrs or \
            tag in self.child_extra_children

    def _leaf(self, tag: str, attrib: dict[str, str]) -> ET.Element:
        """An inline child with its modelled attributes and extras."""
        extras = self.child_extra_attrs.get(tag)
        if extras:
            for name, value in extras.items():
                attrib.setdefault(name, value)
        child = ET.Element(tag, attrib)
        for grandchild in self.child_extra_children.get(tag, ()):
            child.append(_copy(grandchild))
        return child

    def _format_source(self, known: bool,
                       ifname: Callable[[Any, str], str]
                       ) -> ET.Element | None:
        # NOTE(vpd): the strict checks (kernel interface names, macvtap
        # modes) apply to the types this module models; an interface of
        # another type (vhostuser's source mode is client/server) is
        # written back as read.
        attrib: dict[str, str] = {}
        if self.source_bridge is not None:
            attrib['bridge'] = ifname(self.source_bridge,
                                      'interface.source_bridge')
        if self.source_dev is not None:
            attrib['dev'] = ifname(self.source_dev, 'interface.source_dev')
        if self.source_mode is not None:
            attrib['mode'] = (validate.macvtap_mode if known
                              else _check_str)(self.source_mode,
                                               'interface.source_mode')
        if self.source_network is not None:
            # NOTE(vpd): libvirt network names are looser than the
            # library's own; a live domain's must format back as read.
            attrib['network'] = _check_str(self.source_network,
                                           'interface.source_network')
        if self.source_portgroup is not None:
            attrib['portgroup'] = _check_str(self.source_portgroup,
                                             'interface.source_portgroup')
        address = self.source_address
        if not attrib and address is None and not self._has_extras(
                'source'):
            return None
        source = self._leaf('source', attrib)
        if address is not None:
            if address.type != 'pci':
                raise exception.InvalidField(
                    field='interface.source_address', value=address.type,
                    reason='a hostdev interface takes a PCI address')
            source.insert(0, address.format_dom())
        return source

    # -- parsing --------------------------------------------------------

    @classmethod
    def _parse_into(cls, element: ET.Element, path: str
                    ) -> 'InterfaceConfig':
        kind = element.get('type')
        if not kind:
            raise _invalid(path, 'has no type attribute')
        obj = cls(type=kind,
                  managed=_yes_no(element.get('managed'), path, 'managed'))
        children = {}
        for tag in _CHILD_ATTRS:
            child = _first_child(element, tag)
            if child is None:
                continue
            children[tag] = child
            extras = {k: v for k, v in child.attrib.items()
                      if k not in _CHILD_ATTRS[tag]}
            if extras:
                obj.child_extra_attrs[tag] = extras
        mac = children.get('mac')
        if mac is None or mac.get('address') is None:
            raise _invalid(path + '/mac',
                           'an interface needs <mac address=...> (the '
                           'library finds NICs by MAC)')
        try:
            obj.mac = validate.mac(mac.get('address'))
        except exception.InvalidField as exc:
            raise _invalid(path + '/mac', str(exc)) from None
        obj._parse_source(children.get('source'), path + '/source')
        target = children.get('target')
        if target is not None:
            obj.target_dev = target.get('dev')
            obj.target_managed = _yes_no(target.get('managed'),
                                         path + '/target', 'managed')
        if 'model' in children:
            obj.model = children['model'].get('type')
        driver = children.get('driver')
        if driver is not None:
            obj.driver_name = driver.get('name')
            obj.driver_queues = _int_attr(driver, 'queues', path + '/driver',
                                          1, 65535)
            if len(driver):
                obj.child_extra_children['driver'] = [
                    _copy(c) for c in driver]
        if 'mtu' in children:
            obj.mtu = _int_attr(children['mtu'], 'size', path + '/mtu', 1,
                                2 ** 32 - 1)
        link = children.get('link')
        if link is not None:
            state = link.get('state')
            if state not in LINK_STATES:
                raise _invalid(path + '/link',
                               "attribute state=%r must be 'up' or 'down'"
                               % (state,))
            obj.link_state = state
        if 'alias' in children:
            obj.alias = children['alias'].get('name')
        vlan = _first_child(element, 'vlan')
        if vlan is not None:
            obj.vlan = VlanConfig.parse_dom(vlan, path + '/vlan')
        virtualport = _first_child(element, 'virtualport')
        if virtualport is not None:
            obj.virtualport = VirtualPortConfig.parse_dom(
                virtualport, path + '/virtualport')
        address = _first_child(element, 'address')
        if address is not None:
            obj.guest_address = AddressConfig.parse_dom(
                address, path + '/address')
        return obj

    def _parse_source(self, source: ET.Element | None, path: str) -> None:
        if source is not None:
            self.source_bridge = source.get('bridge')
            self.source_dev = source.get('dev')
            self.source_mode = source.get('mode')
            self.source_network = source.get('network')
            self.source_portgroup = source.get('portgroup')
            address = _first_child(source, 'address')
            if address is not None:
                self.source_address = AddressConfig.parse_dom(
                    address, path + '/address')
            others = [_copy(c) for c in source
                      if not isinstance(c.tag, str) or
                      c.tag not in _SOURCE_CHILDREN]
            if others:
                self.child_extra_children['source'] = others
        needs = {'bridge': 'bridge', 'direct': 'dev', 'network': 'network'}
        attr = needs.get(self.type)
        if attr is not None and (source is None or source.get(attr) is None):
            raise _invalid(path, 'a %s interface needs <source %s=...>' % (
                self.type, attr))
        if self.type == 'hostdev' and self.source_address is None:
            raise _invalid(path, 'a hostdev interface needs <source>'
                                 '<address type="pci" .../></source>')
