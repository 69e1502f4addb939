"""NetworkManager keyfiles: one connection profile per device.

Each device of a definition becomes
``<root>/etc/NetworkManager/system-connections/<device>.nmconnection``
(mode 0600: NetworkManager ignores keyfiles other users can read). Bridge
ports and bond slaves are profiles of their own that name their master
with ``master=`` and ``slave-type=``, which every NetworkManager release
reads (newer ones also call them ``controller=`` and ``port-type=``).

Ownership is marked in the profile's user data, which NetworkManager
keeps when it rewrites a profile::

    [user]
    vif_plug_dyn.managed=<definition name>
"""

from vif_plug_dyn.hostif import addressing
from vif_plug_dyn.hostif import model
from vif_plug_dyn.hostif import safety
from vif_plug_dyn.hostif.backends import base

#: The user-data key marking a keyfile as written by this library.
MARKER_KEY = 'vif_plug_dyn.managed'
#: NetworkManager's bounds for a bridge's forward delay, in seconds.
NM_FORWARD_DELAY = (2, 30)

#: ``(key, value, field)``: the field is the XPath of the value in the
#: definition, relative to the device's ``<interface>``, named when the
#: value is refused (see :mod:`vif_plug_dyn.hostif.safety`).
_Section = list[tuple[str, object, str]]


class KeyfileBackend(base.PersistentBackend):
    """Writes NetworkManager keyfiles."""

    name = 'networkmanager'
    subdir = 'etc/NetworkManager/system-connections'
    file_mode = 0o600

    def render(self, definition: model.HostInterface) -> dict[str, str]:
        """Render one keyfile per device of ``definition``.

        :param definition: a top-level definition.
        :returns: ``<device>.nmconnection`` -> keyfile text.
        """
        out = {}
        for device in definition.devices():
            path = '%s/%s.nmconnection' % (
                self.directory, safety.token_or_repr(device.name))
            with safety.writing(definition.name, 'keyfile %s' % path):
                out[safety.token(device.name, device.element + '/@name') +
                    '.nmconnection'] = render_device(device)
        return out

    def is_ours(self, text: str) -> bool:
        """Whether the keyfile's ``[user]`` section has our marker.

        :param text: the keyfile.
        """
        section = None
        for line in text.splitlines():
            line = line.strip()
            if line.startswith('[') and line.endswith(']'):
                section = line[1:-1].strip()
            elif section == 'user' and '=' in line and \
                    line.split('=', 1)[0].strip() == MARKER_KEY:
                return True
        return False


def render_device(device: model.Device) -> str:
    """Render the keyfile of one device.

    :param device: a device of a definition.
    :returns: the keyfile text.
    :raises vif_plug_dyn.hostif.safety.Unsafe: a value cannot be written
        safely (its field is the XPath in the definition).
    """
    try:
        return _render(device)
    except safety.Unsafe as exc:
        if not exc.field.startswith('/'):
            exc.field = '%s/%s' % (device.element, exc.field)
        raise


def _render(device: model.Device) -> str:
    iface = device.interface
    sections: list[tuple[str, _Section]] = [
        ('connection', _connection(device))]
    ethernet: _Section = []
    if iface.mac is not None:
        ethernet.append(('mac-address', iface.mac, 'mac/@address'))
    if iface.mtu is not None:
        # NOTE(vpd): NetworkManager keeps the MTU of bridges, bonds and
        # VLANs in the wired setting too.
        ethernet.append(('mtu', iface.mtu, 'mtu/@size'))
    sections.append(('ethernet', ethernet))
    if iface.kind == model.BRIDGE:
        sections.append(('bridge', _bridge(iface)))
    elif iface.kind == model.BOND:
        sections.append(('bond', _bond(iface)))
    elif iface.kind == model.VLAN:
        sections.append(('vlan', [('id', iface.tag, 'vlan/@tag'),
                                  ('parent', iface.parent,
                                   'vlan/interface/@name')]))
    if device.master is None:
        # NOTE(vpd): a port takes no addresses; NetworkManager rejects
        # IP settings on a profile with a master.
        sections.append(('ipv4', _ip(iface.ipv4, addressing.IPV4)))
        sections.append(('ipv6', _ip(iface.ipv6, addressing.IPV6)))
    sections.append(('user', [(MARKER_KEY, device.definition,
                               '/interface/@name')]))
    definition = safety.token(device.definition, '/interface/@name')
    lines = ['# Written by vif_plug_dyn for host interface definition %s.'
             % definition,
             '# Edit the definition, not this file: it is rewritten on '
             'every change.']
    for title, items in sections:
        if not items:
            continue
        lines.append('')
        lines.append('[%s]' % title)
        for key, value, field in items:
            # NOTE(vpd): checked here, where it is written, whatever
            # validated it before (see hostif.safety).
            lines.append('%s=%s' % (key, safety.token(value, field)))
    return '\n'.join(lines) + '\n'


def _connection(device: model.Device) -> _Section:
    pi = "processing-instruction('vif-plug-dyn')"
    items: _Section = [
        ('id', device.name, '@name'),
        ('uuid', device.interface.uuid, pi),
        ('type', device.kind, '@type'),
        ('interface-name', device.name, '@name'),
        ('autoconnect',
         'true' if base.autoconnect(device.start_mode) else 'false',
         '/interface/start/@mode')]
    if device.master is not None:
        # NOTE(vpd): the master is the <interface> two levels up.
        master = device.element.rsplit('/', 2)[0]
        items += [('master', device.master, master + '/@name'),
                  ('slave-type', device.master_kind, master + '/@type')]
    return items


def _bridge(iface: model.HostInterface) -> _Section:
    # NOTE(vpd): NetworkManager turns STP on when stp is not given, the
    # kernel and libvirt leave it off: always write it.
    items: _Section = [('stp', 'true' if iface.stp else 'false',
                        'bridge/@stp')]
    if iface.delay is not None:
        # NOTE(vpd): NetworkManager takes whole seconds from 2 to 30. A
        # shorter delay only matters with STP on, where the kernel raises
        # it to 2 s anyway.
        low, high = NM_FORWARD_DELAY
        delay = safety.seconds(iface.delay, 'bridge/@delay')
        items.append(('forward-delay', min(high, max(low, round(delay))),
                      'bridge/@delay'))
    return items


def _bond(iface: model.HostInterface) -> _Section:
    # NOTE(vpd): write the mode even when the definition leaves it to the
    # kernel default, so that NetworkManager and the kernel agree.
    items: _Section = [('mode', iface.bond_mode or 'balance-rr',
                        'bond/@mode')]
    if iface.miimon is not None:
        mii = iface.miimon
        items.append(('miimon', mii.freq, 'bond/miimon/@freq'))
        if mii.downdelay is not None:
            items.append(('downdelay', mii.downdelay,
                          'bond/miimon/@downdelay'))
        if mii.updelay is not None:
            items.append(('updelay', mii.updelay, 'bond/miimon/@updelay'))
        if mii.carrier is not None:
            items.append(('use_carrier',
                          '1' if mii.carrier == 'netif' else '0',
                          'bond/miimon/@carrier'))
    if iface.arpmon is not None:
        arp = iface.arpmon
        items += [('arp_interval', arp.interval, 'bond/arpmon/@interval'),
                  ('arp_ip_target', arp.target, 'bond/arpmon/@target')]
        if arp.validate is not None:
            items.append(('arp_validate', arp.validate,
                          'bond/arpmon/@validate'))
    if iface.primary is not None:
        items.append(('primary', iface.primary, 'bond/interface[1]/@name'))
    return items


def _ip(protocol: addressing.Protocol | None, family: str) -> _Section:
    where = "protocol[@family='%s']" % family
    if protocol is None or not protocol.configured:
        return [('method', 'disabled', where)]
    if family == addressing.IPV4:
        method = 'auto' if protocol.dhcp else 'manual'
    elif protocol.autoconf:
        method = 'auto'
    else:
        method = 'dhcp' if protocol.dhcp else 'manual'
    items: _Section = [('method', method, where)]
    for index, address in enumerate(protocol.addresses, 1):
        ip = '%s/ip[%d]' % (where, index)
        items.append(('address%d' % index, safety.cidr(
            address.address, address.prefix, ip), ip))
    if protocol.gateway is not None:
        items.append(('gateway', protocol.gateway,
                      where + '/route/@gateway'))
    if protocol.peerdns is False:
        items.append(('ignore-auto-dns', 'true', where + '/dhcp/@peerdns'))
    return items
