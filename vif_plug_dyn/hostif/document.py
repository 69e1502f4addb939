"""Documents of several host interface definitions: the desired state
``iface apply`` makes real.

XML: libvirt ``<interface>`` definitions in one ``<interfaces>`` wrapper,
and ``<absent name='...'/>`` for definitions to stop and remove::

    <interfaces>
      <interface type='bond' name='bond0'>...</interface>
      <interface type='vlan' name='bond0.42'>...</interface>
      <absent name='br-old'/>
    </interfaces>

YAML or JSON of the same model (keys as libvirt's elements and
attributes; addresses as ``address/prefix``)::

    interfaces:
      - type: bridge
        name: br0
        start: onboot
        mtu: 9000
        ipv4: {addresses: [192.0.2.10/24], gateway: 192.0.2.1}
        ipv6: {autoconf: true}
        bridge:
          stp: false
          delay: 0
          interfaces: [{type: ethernet, name: eth1}]
      - type: bond
        name: bond0
        bond:
          mode: active-backup
          miimon: {freq: 100}
          interfaces: [{type: ethernet, name: eth3}]
      - {type: vlan, name: eth0.42, vlan: {tag: 42, parent: eth0}}
    absent: [br-old]

A document is read whole before anything happens; errors name the
document and the place (``interfaces[2].bridge.stp``, or the XPath for
XML). Documents are limited to :data:`MAX_DOCUMENT` bytes and
:data:`MAX_INTERFACES` definitions, YAML aliases and tags are refused.
"""

import dataclasses
import xml.etree.ElementTree as ET
from typing import Any

import yaml

from vif_plug_dyn import exception
from vif_plug_dyn import xmlutil
from vif_plug_dyn.hostif import addressing
from vif_plug_dyn.hostif import model
from vif_plug_dyn.hostif import xml as ifxml

#: Largest document read, in bytes.
MAX_DOCUMENT = 1024 * 1024
#: Most definitions (and absent names) in one document.
MAX_INTERFACES = 1024
#: Deepest nesting of a YAML or JSON document (a bridge with a bond
#: member with monitoring nests 8 levels).
MAX_DEPTH = 32


@dataclasses.dataclass(frozen=True)
class Document:
    """A desired state.

    :ivar source: where it came from (a file name).
    :ivar interfaces: the definitions to define (or redefine) and start.
    :ivar absent: names of definitions to stop and undefine.
    """

    source: str
    interfaces: tuple[model.HostInterface, ...]
    absent: tuple[str, ...] = ()


def _fail(source: str, reason: str) -> exception.InvalidInterfaceDocument:
    return exception.InvalidInterfaceDocument(source=source, reason=reason)


def parse(text: str | bytes, source: str = '<string>') -> Document:
    """Read a document (XML, YAML or JSON, told apart by content).

    :raises InvalidInterfaceDocument: the document is malformed, too
        large, or names a definition twice.
    :raises InvalidHostInterface: a definition in it is invalid (XML).
    """
    if len(text) > MAX_DOCUMENT:
        raise _fail(source, 'larger than %d bytes' % MAX_DOCUMENT)
    if isinstance(text, bytes):
        head = text.lstrip()[:1]
        xml_like = head == b'<'
    else:
        xml_like = text.lstrip()[:1] == '<'
    try:
        document = _parse_xml(text, source) if xml_like else \
            _parse_data(text, source)
    except RecursionError:
        # NOTE(vpd): a document small enough to read can still nest
        # deeper than the parsers recurse.
        raise _fail(source, 'nested too deeply') from None
    names = [str(i.name) for i in document.interfaces] + \
        list(document.absent)
    if len(names) > MAX_INTERFACES:
        raise _fail(source, 'more than %d definitions' % MAX_INTERFACES)
    seen = set()
    for name in names:
        if name in seen:
            raise _fail(source, 'definition %s is named twice' % name)
        seen.add(name)
    return document


def _parse_xml(text: str | bytes, source: str) -> Document:
    try:
        root = xmlutil.fromstring(text, keep_pis=True)
    except ET.ParseError as exc:
        raise _fail(source, 'not well-formed XML: %s' % exc) from None
    if root.tag != 'interfaces' or root.attrib:
        raise _fail(source, 'the root element must be <interfaces> (no '
                            'attributes)')
    interfaces: list[model.HostInterface] = []
    absent: list[str] = []
    for index, child in enumerate(root, 1):
        if child.tag is ET.PI:
            continue
        if child.tag == 'interface':
            interfaces.append(ifxml.from_element(
                child, '%s, /interfaces/*[%d]' % (source, index)))
        elif child.tag == 'absent' and set(child.attrib) == {'name'} and \
                not len(child):
            absent.append(_name(child.get('name'), source,
                                '/interfaces/absent[%d]/@name'
                                % (len(absent) + 1)))
        else:
            raise _fail(source, '/interfaces/%s: expected <interface> or '
                                "<absent name='...'/>" % _cut(child.tag))
    return Document(source, tuple(interfaces), tuple(absent))


def _cut(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 48 else text[:48] + '...'


def _name(value: Any, source: str, where: str) -> str:
    try:
        return model.HostInterface(kind=model.ETHERNET, name=value).name \
            or ''
    except exception.InvalidField as exc:
        raise _fail(source, '%s: %s' % (where, exc.kwargs.get('reason'))
                    ) from None


# --- YAML / JSON -------------------------------------------------------------

def _parse_data(text: str | bytes, source: str) -> Document:
    try:
        # NOTE(vpd): aliases would let a small document expand to a huge
        # one (and tags build Python objects in unsafe loaders): both are
        # refused before the document is built.
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or \
                    getattr(event, 'tag', None) not in (None, '!'):
                raise _fail(source, 'YAML aliases and tags are not '
                                    'accepted')
            # NOTE(vpd): PyYAML's scanner slows down with every level of
            # nesting (a 1 MiB document of brackets takes minutes): stop
            # as soon as a document nests deeper than a definition can.
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise RecursionError(depth)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _fail(source, 'not valid YAML or JSON: %s'
                    % _cut(str(exc).replace('\n', ' '))) from None
    if not isinstance(data, dict) or \
            not set(data) <= {'interfaces', 'absent'}:
        raise _fail(source, 'expected a mapping with "interfaces" and '
                            '"absent"')
    items = data.get('interfaces', [])
    gone = data.get('absent', [])
    if not isinstance(items, list) or not isinstance(gone, list):
        raise _fail(source, '"interfaces" and "absent" must be lists')
    interfaces = tuple(_Reader(source).interface(
        item, 'interfaces[%d]' % index, top=True)
        for index, item in enumerate(items, 1))
    absent = tuple(_name(name, source, 'absent[%d]' % index)
                   for index, name in enumerate(gone, 1))
    return Document(source, interfaces, absent)


_KEYS = {
    'top': {'type', 'name', 'uuid', 'start', 'mtu', 'mac', 'ipv4', 'ipv6',
            'bridge', 'bond', 'vlan'},
    'member': {'type', 'name', 'mac', 'bridge', 'bond', 'vlan'},
    'protocol': {'dhcp', 'peerdns', 'autoconf', 'addresses', 'gateway'},
    'bridge': {'stp', 'delay', 'interfaces'},
    'bond': {'mode', 'miimon', 'arpmon', 'interfaces'},
    'miimon': {'freq', 'downdelay', 'updelay', 'carrier'},
    'arpmon': {'interval', 'target', 'validate'},
    'vlan': {'tag', 'parent'},
}


class _Reader:
    """Builds definitions from YAML/JSON data, naming the place of every
    error (``interfaces[1].bond.miimon.freq``)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, reason: str
             ) -> exception.InvalidInterfaceDocument:
        return _fail(self.source, '%s: %s' % (where, reason))

    def mapping(self, value: Any, where: str, kind: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, 'expected a mapping')
        unknown = sorted(str(k) for k in value if k not in _KEYS[kind])
        if unknown:
            raise self.fail('%s.%s' % (where, _cut(unknown[0])),
                            'unknown key')
        return value

    def build(self, cls: Any, where: str, **fields: Any) -> Any:
        try:
            return cls(**fields)
        except exception.InvalidField as exc:
            field = str(exc.kwargs.get('field', ''))
            raise self.fail(where, '%s %s' % (
                field, exc.kwargs.get('reason'))) from None
        except TypeError as exc:
            raise self.fail(where, _cut(exc)) from None

    def interface(self, value: Any, where: str, top: bool
                  ) -> model.HostInterface:
        data = self.mapping(value, where, 'top' if top else 'member')
        kind = data.get('type')
        fields: dict[str, Any] = {
            'kind': kind, 'name': data.get('name'), 'uuid': data.get('uuid'),
            'start_mode': data.get('start'), 'mtu': data.get('mtu'),
            'mac': data.get('mac')}
        for family in (addressing.IPV4, addressing.IPV6):
            if data.get(family) is not None:
                fields[family] = self.protocol(
                    data[family], '%s.%s' % (where, family), family)
        for sub in ('bridge', 'bond', 'vlan'):
            if sub in data and sub != kind:
                raise self.fail('%s.%s' % (where, sub),
                                'not used by %s interfaces' % _cut(kind))
        if kind in ('bridge', 'bond', 'vlan'):
            getattr(self, kind)(data.get(kind), '%s.%s' % (where, kind),
                                fields)
        return self.build(model.HostInterface, where, **fields)

    def members(self, value: Any, where: str
                ) -> tuple[model.HostInterface, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(where, 'expected a list')
        return tuple(self.interface(item, '%s[%d]' % (where, index), False)
                     for index, item in enumerate(value, 1))

    def bridge(self, value: Any, where: str, fields: dict[str, Any]
               ) -> None:
        data = self.mapping(value or {}, where, 'bridge')
        fields.update(stp=data.get('stp'), delay=data.get('delay'),
                      members=self.members(data.get('interfaces'),
                                           where + '.interfaces'))

    def bond(self, value: Any, where: str, fields: dict[str, Any]) -> None:
        data = self.mapping(value or {}, where, 'bond')
        fields.update(bond_mode=data.get('mode'),
                      members=self.members(data.get('interfaces'),
                                           where + '.interfaces'))
        for key, cls in (('miimon', model.MiiMon),
                         ('arpmon', model.ArpMon)):
            if data.get(key) is not None:
                sub = '%s.%s' % (where, key)
                fields[key] = self.build(
                    cls, sub, **self.mapping(data[key], sub, key))

    def vlan(self, value: Any, where: str, fields: dict[str, Any]) -> None:
        data = self.mapping(value or {}, where, 'vlan')
        fields.update(tag=data.get('tag'), parent=data.get('parent'))

    def protocol(self, value: Any, where: str, family: str
                 ) -> addressing.Protocol:
        data = self.mapping(value, where, 'protocol')
        items = data.get('addresses') or []
        if not isinstance(items, list):
            raise self.fail(where + '.addresses', 'expected a list')
        addresses = []
        for index, item in enumerate(items, 1):
            at = '%s.addresses[%d]' % (where, index)
            if not isinstance(item, str):
                raise self.fail(at, 'expected "address/prefix"')
            address, sep, prefix = item.partition('/')
            if sep and not (prefix.isascii() and prefix.isdigit() and
                            len(prefix) <= 3):
                raise self.fail(at, 'the prefix must be a number')
            addresses.append(self.build(
                addressing.IPAddress, at, address=address,
                prefix=int(prefix) if sep else None))
        return self.build(
            addressing.Protocol, where, family=family,
            dhcp=data.get('dhcp', False), peerdns=data.get('peerdns'),
            autoconf=data.get('autoconf', False),
            addresses=tuple(addresses), gateway=data.get('gateway'))
