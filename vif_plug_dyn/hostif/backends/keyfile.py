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
from vif_plug_dyn.hostif.backends import base

#: The user-data key marking a keyfile as written by this library.
MARKER_KEY = 'vif_plug_dyn.managed'
#: NetworkManager's bounds for a bridge's forward delay, in seconds.
NM_FORWARD_DELAY = (2, 30)

_Section = list[tuple[str, str]]


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
        return {device.name + '.nmconnection': render_device(device)
                for device in definition.devices()}

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
    """
    iface = device.interface
    sections: list[tuple[str, _Section]] = [
        ('connection', _connection(device))]
    ethernet: _Section = []
    if iface.mac is not None:
        ethernet.append(('mac-address', iface.mac))
    if iface.mtu is not None:
        # NOTE(vpd): NetworkManager keeps the MTU of bridges, bonds and
        # VLANs in the wired setting too.
        ethernet.append(('mtu', str(iface.mtu)))
    sections.append(('ethernet', ethernet))
    if iface.kind == model.BRIDGE:
        sections.append(('bridge', _bridge(iface)))
    elif iface.kind == model.BOND:
        sections.append(('bond', _bond(iface)))
    elif iface.kind == model.VLAN:
        sections.append(('vlan', [('id', str(iface.tag)),
                                  ('parent', str(iface.parent))]))
    if device.master is None:
        # NOTE(vpd): a port takes no addresses; NetworkManager rejects
        # IP settings on a profile with a master.
        sections.append(('ipv4', _ip(iface.ipv4, addressing.IPV4)))
        sections.append(('ipv6', _ip(iface.ipv6, addressing.IPV6)))
    sections.append(('user', [(MARKER_KEY, device.definition)]))
    lines = ['# Written by vif_plug_dyn for host interface definition %s.'
             % device.definition,
             '# Edit the definition, not this file: it is rewritten on '
             'every change.']
    for title, items in sections:
        if not items:
            continue
        lines.append('')
        lines.append('[%s]' % title)
        lines.extend('%s=%s' % item for item in items)
    return '\n'.join(lines) + '\n'


def _connection(device: model.Device) -> _Section:
    items = [('id', device.name), ('uuid', str(device.interface.uuid)),
             ('type', device.kind), ('interface-name', device.name),
             ('autoconnect',
              'true' if base.autoconnect(device.start_mode) else 'false')]
    if device.master is not None:
        items += [('master', device.master),
                  ('slave-type', str(device.master_kind))]
    return items


def _bridge(iface: model.HostInterface) -> _Section:
    # NOTE(vpd): NetworkManager turns STP on when stp is not given, the
    # kernel and libvirt leave it off: always write it.
    items = [('stp', 'true' if iface.stp else 'false')]
    if iface.delay is not None:
        # NOTE(vpd): NetworkManager takes whole seconds from 2 to 30. A
        # shorter delay only matters with STP on, where the kernel raises
        # it to 2 s anyway.
        low, high = NM_FORWARD_DELAY
        items.append(('forward-delay',
                      str(min(high, max(low, round(iface.delay))))))
    return items


def _bond(iface: model.HostInterface) -> _Section:
    # NOTE(vpd): write the mode even when the definition leaves it to the
    # kernel default, so that NetworkManager and the kernel agree.
    items = [('mode', iface.bond_mode or 'balance-rr')]
    if iface.miimon is not None:
        mii = iface.miimon
        items.append(('miimon', str(mii.freq)))
        if mii.downdelay is not None:
            items.append(('downdelay', str(mii.downdelay)))
        if mii.updelay is not None:
            items.append(('updelay', str(mii.updelay)))
        if mii.carrier is not None:
            items.append(('use_carrier',
                          '1' if mii.carrier == 'netif' else '0'))
    if iface.arpmon is not None:
        arp = iface.arpmon
        items += [('arp_interval', str(arp.interval)),
                  ('arp_ip_target', arp.target)]
        if arp.validate is not None:
            items.append(('arp_validate', arp.validate))
    if iface.primary is not None:
        items.append(('primary', iface.primary))
    return items


def _ip(protocol: addressing.Protocol | None, family: str) -> _Section:
    if protocol is None or not protocol.configured:
        return [('method', 'disabled')]
    if family == addressing.IPV4:
        method = 'auto' if protocol.dhcp else 'manual'
    elif protocol.autoconf:
        method = 'auto'
    else:
        method = 'dhcp' if protocol.dhcp else 'manual'
    items = [('method', method)]
    for index, address in enumerate(protocol.addresses, 1):
        items.append(('address%d' % index, address.cidr))
    if protocol.gateway is not None:
        items.append(('gateway', protocol.gateway))
    if protocol.peerdns is False:
        items.append(('ignore-auto-dns', 'true'))
    return items
