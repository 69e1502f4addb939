"""libvirt host interface XML: parse and dump :class:`HostInterface`.

The format is the one ``virsh iface-dumpxml`` prints and libvirt's
``interface.rng`` schema defines, so existing definitions carry over::

    <interface type='bridge' name='br0'>
      <start mode='onboot'/>
      <mtu size='9000'/>
      <protocol family='ipv4'>
        <ip address='192.0.2.10' prefix='24'/>
        <route gateway='192.0.2.1'/>
      </protocol>
      <bridge stp='off' delay='0'>
        <interface type='ethernet' name='eth1'>
          <mac address='52:54:00:12:34:56'/>
        </interface>
        <interface type='vlan' name='eth2.42'>
          <vlan tag='42'><interface name='eth2'/></vlan>
        </interface>
        <interface type='bond' name='bond0'>
          <bond mode='active-backup'>
            <miimon freq='100' updelay='200'/>
            <interface type='ethernet' name='eth3'/>
            <interface type='ethernet' name='eth4'/>
          </bond>
        </interface>
      </bridge>
    </interface>

The definition's uuid, which libvirt's format lacks, is a processing
instruction ``<?vif-plug-dyn uuid="..."?>`` inside the ``<interface>``
(validators and libvirt ignore it); it is only written when it differs
from :func:`~vif_plug_dyn.hostif.model.default_uuid` of the name. The
status element ``<link speed= state=/>`` that live dumps carry is
accepted and ignored.
"""

import re
import xml.etree.ElementTree as ET
from typing import Any

from vif_plug_dyn import exception
from vif_plug_dyn import xmlutil
from vif_plug_dyn.hostif import addressing
from vif_plug_dyn.hostif import model

PI_TARGET = 'vif-plug-dyn'
_PI_UUID_RE = re.compile(r'^\s*uuid\s*=\s*"([^"]*)"\s*$')
# NOTE(vpd): no surrounding blanks, signs, exponents or separators: a
# value is what libvirt would read, exactly (hostif.safety explains why
# nothing beyond that is let through).
_UINT_RE = re.compile(r'[0-9]{1,10}')
_SECONDS_RE = re.compile(r'[0-9]{1,4}(\.[0-9]{1,6})?')

# Children and attributes an <interface> may have, by kind; members
# ("bare" interfaces in libvirt's schema) lose start, mtu and protocol.
_TOP_ONLY = ('start', 'mtu', 'protocol')
_CHILDREN = {
    model.ETHERNET: ('start', 'mac', 'mtu', 'protocol', 'link'),
    model.BRIDGE: ('start', 'mtu', 'protocol', 'bridge', 'link'),
    model.BOND: ('start', 'mtu', 'protocol', 'bond', 'link'),
    model.VLAN: ('start', 'mtu', 'protocol', 'vlan', 'link'),
}
_ATTRS = {
    'interface': ('type', 'name'), 'start': ('mode',), 'mtu': ('size',),
    'mac': ('address',), 'link': ('speed', 'state'),
    'protocol': ('family',), 'dhcp': ('peerdns',), 'autoconf': (),
    'ip': ('address', 'prefix'), 'route': ('gateway',),
    'bridge': ('stp', 'delay'), 'bond': ('mode',),
    'miimon': ('freq', 'downdelay', 'updelay', 'carrier'),
    'arpmon': ('interval', 'target', 'validate'), 'vlan': ('tag',),
    'vlan-parent': ('name',),
}


def _cut(value: str) -> str:
    # NOTE(vpd): errors name the value, but never repeat a huge one.
    return repr(value) if len(value) <= 48 else '%r... (%d characters)' % (
        value[:48], len(value))


def parse(text: str | bytes, source: str = '<string>'
          ) -> model.HostInterface:
    """Parse a libvirt ``<interface>`` document.

    :param text: the XML.
    :param source: where it came from (a file name), used in errors.
    :returns: the definition.
    :raises InvalidHostInterface: names the definition, the source and
        the XPath of the element at fault.
    """
    parser = _Parser(source)
    try:
        return parser.parse(text)
    except RecursionError:
        raise parser.fail('/interface', 'nested too deeply') from None


def from_element(root: ET.Element, source: str = '<string>'
                 ) -> model.HostInterface:
    """Read an ``<interface>`` element already parsed (one definition of
    a larger document).

    :param root: the element.
    :param source: where it came from, used in errors.
    :raises InvalidHostInterface: as :func:`parse`.
    """
    return _Parser(source).root(root)


def element(iface: model.HostInterface) -> ET.Element:
    """Build the ``<interface>`` element of a definition (not indented).

    :param iface: the definition.
    """
    return _element(iface, top=True)


def dump(iface: model.HostInterface) -> str:
    """Format a definition as a libvirt ``<interface>`` document.

    :param iface: the definition.
    :returns: the XML, indented, ending with a newline.
    """
    return dumps(_element(iface, top=True))


def dumps(root: ET.Element) -> str:
    """Format an ``<interface>`` element built by :func:`element`.

    :param root: the element (indented in place).
    :returns: the XML, indented, ending with a newline.
    """
    ET.indent(root)
    return ET.tostring(root, encoding='unicode') + '\n'


# -- dump ---------------------------------------------------------------------

def _element(iface: model.HostInterface, top: bool) -> ET.Element:
    element = ET.Element('interface', {'type': iface.kind,
                                       'name': str(iface.name)})
    if iface.uuid != model.default_uuid(str(iface.name)):
        element.append(ET.ProcessingInstruction(
            PI_TARGET, 'uuid="%s"' % iface.uuid))
    if iface.start_mode is not None:
        ET.SubElement(element, 'start', mode=iface.start_mode)
    if iface.mac is not None:
        ET.SubElement(element, 'mac', address=iface.mac)
    if iface.mtu is not None:
        ET.SubElement(element, 'mtu', size=str(iface.mtu))
    for protocol in (iface.ipv4, iface.ipv6):
        if protocol is not None:
            element.append(_protocol(protocol))
    if iface.kind == model.BRIDGE:
        attrs = {}
        if iface.stp is not None:
            attrs['stp'] = 'on' if iface.stp else 'off'
        if isinstance(iface.delay, (int, float)):
            attrs['delay'] = '%g' % iface.delay
        elif iface.delay is not None:
            # NOTE(vpd): only an object built around the model's checks
            # gets here; hostif.safety refuses it before it is stored.
            attrs['delay'] = str(iface.delay)
        bridge = ET.SubElement(element, 'bridge', attrs)
        for member in iface.members:
            bridge.append(_element(member, top=False))
    elif iface.kind == model.BOND:
        bond = ET.SubElement(element, 'bond', {} if iface.bond_mode is None
                             else {'mode': iface.bond_mode})
        _monitor(bond, iface)
        for member in iface.members:
            bond.append(_element(member, top=False))
    elif iface.kind == model.VLAN:
        vlan = ET.SubElement(element, 'vlan', {'tag': str(iface.tag)})
        ET.SubElement(vlan, 'interface', name=str(iface.parent))
    return element


def _protocol(protocol: addressing.Protocol) -> ET.Element:
    element = ET.Element('protocol', family=protocol.family)
    if protocol.autoconf:
        ET.SubElement(element, 'autoconf')
    if protocol.dhcp:
        ET.SubElement(element, 'dhcp', {} if protocol.peerdns is None else
                      {'peerdns': 'yes' if protocol.peerdns else 'no'})
    for item in protocol.addresses:
        attrs = {'address': item.address}
        if item.prefix is not None:
            attrs['prefix'] = str(item.prefix)
        ET.SubElement(element, 'ip', attrs)
    if protocol.gateway is not None:
        ET.SubElement(element, 'route', gateway=protocol.gateway)
    return element


def _monitor(bond: ET.Element, iface: model.HostInterface) -> None:
    if iface.miimon is not None:
        mii = iface.miimon
        attrs = {'freq': str(mii.freq)}
        for name in ('downdelay', 'updelay', 'carrier'):
            if getattr(mii, name) is not None:
                attrs[name] = str(getattr(mii, name))
        ET.SubElement(bond, 'miimon', attrs)
    if iface.arpmon is not None:
        arp = iface.arpmon
        attrs = {'interval': str(arp.interval), 'target': arp.target}
        if arp.validate is not None:
            attrs['validate'] = arp.validate
        ET.SubElement(bond, 'arpmon', attrs)


# -- parse --------------------------------------------------------------------

class _Parser:
    """Turns ``<interface>`` XML into a :class:`HostInterface`, naming the
    element at fault in every error."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.name = '?'

    def fail(self, element: str, reason: str
             ) -> exception.InvalidHostInterface:
        name = self.name
        if self.source != '<string>':
            name = '%s (%s)' % (name, self.source)
        return exception.InvalidHostInterface(name=name, element=element,
                                              reason=reason)

    def field_error(self, where: str, exc: exception.InvalidField
                    ) -> exception.InvalidHostInterface:
        field = str(exc.kwargs.get('field', ''))
        value = exc.kwargs.get('value')
        # NOTE(vpd): the model sees an absent attribute as None.
        shown = _cut(value) if isinstance(value, str) else repr(value)
        reason = 'missing' if value is None else '%s: %s' % (
            shown, exc.kwargs.get('reason'))
        return self.fail(where + '/' + field if field else where, reason)

    def parse(self, text: str | bytes) -> model.HostInterface:
        try:
            root = xmlutil.fromstring(text, keep_pis=True)
        except ET.ParseError as exc:
            raise self.fail('line %d' % exc.position[0],
                            'not well-formed XML: %s' % exc) from None
        return self.root(root)

    def root(self, root: ET.Element) -> model.HostInterface:
        if root.tag != 'interface':
            raise self.fail('/' + str(root.tag),
                            'the root element must be <interface>')
        name = root.get('name') or '?'
        self.name = name if len(name) <= 48 else '%s... (%d characters)' % (
            name[:48], len(name))
        return self.interface(root, '/interface', top=True)

    def interface(self, element: ET.Element, where: str, top: bool
                  ) -> model.HostInterface:
        self.attrs(element, 'interface', where)
        kind = element.get('type')
        if kind not in model.KINDS:
            raise self.fail(where + '/@type', '%s: must be one of %s' % (
                _cut(str(kind)) if kind is not None else 'missing',
                ', '.join(model.KINDS)))
        children = self.children(element, where, _CHILDREN[kind], top)
        fields: dict[str, Any] = {'kind': kind, 'name': element.get('name'),
                                  'uuid': self.pi_uuid(element, where)}
        if 'start' in children:
            fields['start_mode'] = children['start'].get('mode')
        if 'mtu' in children:
            fields['mtu'] = self.uint(children['mtu'], 'size',
                                      where + '/mtu')
        if 'mac' in children:
            fields['mac'] = children['mac'].get('address')
        for protocol in element.findall('protocol'):
            family = protocol.get('family')
            key = {'ipv4': 'ipv4', 'ipv6': 'ipv6'}.get(str(family))
            path = "%s/protocol[@family='%s']" % (where, family)
            if key is None:
                raise self.fail(where + '/protocol/@family', '%s: must be '
                                'ipv4 or ipv6' % _cut(str(family)))
            if key in fields:
                raise self.fail(path, 'given twice')
            fields[key] = self.protocol(protocol, path)
        if kind == model.BRIDGE:
            self.bridge(children['bridge'], where + '/bridge', fields)
        elif kind == model.BOND:
            self.bond(children['bond'], where + '/bond', fields)
        elif kind == model.VLAN:
            self.vlan(children['vlan'], where + '/vlan', fields)
        try:
            return model.HostInterface(**fields)
        except exception.InvalidField as exc:
            raise self.field_error(where, exc) from None

    def children(self, element: ET.Element, where: str,
                 allowed: tuple[str, ...], top: bool
                 ) -> dict[str, ET.Element]:
        found: dict[str, ET.Element] = {}
        for child in element:
            if child.tag is ET.PI:
                continue
            tag = str(child.tag)
            if tag not in allowed or (not top and tag in _TOP_ONLY):
                reason = ('not allowed in a member interface' if tag in
                          allowed else 'unknown element here')
                raise self.fail('%s/%s' % (where, tag), reason)
            if tag in found and tag != 'protocol':
                raise self.fail('%s/%s[2]' % (where, tag), 'given twice')
            if tag != 'protocol':
                self.attrs(child, tag, '%s/%s' % (where, tag))
            found[tag] = child
        kind = element.get('type')
        if kind in (model.BRIDGE, model.BOND, model.VLAN) and \
                kind not in found:
            raise self.fail('%s/%s' % (where, kind), 'missing')
        return found

    def attrs(self, element: ET.Element, kind: str, where: str) -> None:
        for name in element.attrib:
            if name not in _ATTRS[kind]:
                raise self.fail('%s/@%s' % (where, name),
                                'unknown attribute')

    def pi_uuid(self, element: ET.Element, where: str) -> str | None:
        found = None
        for child in element:
            if child.tag is not ET.PI:
                continue
            target, _sep, data = (child.text or '').partition(' ')
            if target != PI_TARGET:
                continue
            match = _PI_UUID_RE.match(data)
            if match is None or found is not None:
                raise self.fail(
                    "%s/processing-instruction('%s')" % (where, PI_TARGET),
                    'expected one <?%s uuid="..."?>' % PI_TARGET)
            found = match.group(1)
        return found

    def protocol(self, element: ET.Element, where: str
                 ) -> addressing.Protocol:
        self.attrs(element, 'protocol', where)
        family = element.get('family')
        allowed = ('dhcp', 'ip', 'route') + (
            ('autoconf',) if family == 'ipv6' else ())
        fields: dict[str, Any] = {'family': family}
        addresses: list[addressing.IPAddress] = []
        for child in element:
            tag = str(child.tag)
            if child.tag is ET.PI:
                continue
            if tag not in allowed:
                raise self.fail('%s/%s' % (where, tag),
                                'unknown element here')
            if tag != 'ip' and tag in fields:
                raise self.fail('%s/%s[2]' % (where, tag), 'given twice')
            path = '%s/%s' % (where, tag)
            if tag == 'ip':
                path = '%s/ip[%d]' % (where, len(addresses) + 1)
            self.attrs(child, tag, path)
            if tag == 'dhcp':
                fields['dhcp'] = True
                fields['peerdns'] = self.yes_no(child, 'peerdns', path,
                                                'yes', 'no')
            elif tag == 'autoconf':
                fields['autoconf'] = True
            elif tag == 'route':
                fields['route'] = True
                fields['gateway'] = child.get('gateway')
            else:
                addresses.append(self.address(child, path))
        fields.pop('route', None)
        fields['addresses'] = tuple(addresses)
        try:
            return addressing.Protocol(**fields)
        except exception.InvalidField as exc:
            raise self.field_error(where, exc) from None

    def address(self, element: ET.Element, where: str
                ) -> addressing.IPAddress:
        prefix = None
        if element.get('prefix') is not None:
            prefix = self.uint(element, 'prefix', where)
        try:
            return addressing.IPAddress(
                address=element.get('address'),  # type: ignore[arg-type]
                prefix=prefix)
        except exception.InvalidField as exc:
            raise self.field_error(where, exc) from None

    def bridge(self, element: ET.Element, where: str,
               fields: dict[str, Any]) -> None:
        fields['stp'] = self.yes_no(element, 'stp', where, 'on', 'off')
        delay = element.get('delay')
        if delay is not None:
            if not _SECONDS_RE.fullmatch(delay):
                raise self.fail(where + '/@delay', '%s is not a number of '
                                'seconds' % _cut(delay))
            fields['delay'] = float(delay)
        fields['members'] = self.members(element, where, ())

    def bond(self, element: ET.Element, where: str,
             fields: dict[str, Any]) -> None:
        fields['bond_mode'] = element.get('mode')
        fields['members'] = self.members(element, where,
                                         ('miimon', 'arpmon'))
        for tag, cls in (('miimon', model.MiiMon),
                         ('arpmon', model.ArpMon)):
            found = element.findall(tag)
            if len(found) > 1:
                raise self.fail('%s/%s[2]' % (where, tag), 'given twice')
            if not found:
                continue
            path = '%s/%s' % (where, tag)
            self.attrs(found[0], tag, path)
            values: dict[str, Any] = dict(found[0].attrib)
            for name in ('freq', 'downdelay', 'updelay', 'interval'):
                if name in values:
                    values[name] = self.uint(found[0], name, path)
            for name in (('freq',) if tag == 'miimon' else
                         ('interval', 'target')):
                if name not in values:
                    raise self.fail('%s/@%s' % (path, name), 'missing')
            try:
                fields[tag] = cls(**values)
            except exception.InvalidField as exc:
                raise self.field_error(path, exc) from None

    def vlan(self, element: ET.Element, where: str,
             fields: dict[str, Any]) -> None:
        fields['tag'] = self.uint(element, 'tag', where)
        parents = [c for c in element if c.tag is not ET.PI]
        if len(parents) != 1 or parents[0].tag != 'interface':
            raise self.fail(where + '/interface', 'exactly one '
                            '<interface name="..."/> (the parent) needed')
        self.attrs(parents[0], 'vlan-parent', where + '/interface')
        fields['parent'] = parents[0].get('name')

    def members(self, element: ET.Element, where: str,
                others: tuple[str, ...]) -> tuple[model.HostInterface, ...]:
        members: list[model.HostInterface] = []
        for child in element:
            if child.tag is ET.PI or child.tag in others:
                continue
            if child.tag != 'interface':
                raise self.fail('%s/%s' % (where, child.tag),
                                'unknown element here')
            members.append(self.interface(
                child, '%s/interface[%d]' % (where, len(members) + 1),
                top=False))
        return tuple(members)

    def uint(self, element: ET.Element, name: str, where: str) -> int:
        value = element.get(name)
        if value is None:
            raise self.fail('%s/@%s' % (where, name), 'missing')
        if not _UINT_RE.fullmatch(value):
            raise self.fail('%s/@%s' % (where, name),
                            '%s is not a non-negative integer'
                            % _cut(value))
        return int(value)

    def yes_no(self, element: ET.Element, name: str, where: str,
               yes: str, no: str) -> bool | None:
        value = element.get(name)
        if value is None:
            return None
        if value not in (yes, no):
            raise self.fail('%s/@%s' % (where, name),
                            '%s: must be %r or %r' % (_cut(value), yes, no))
        return value == yes
