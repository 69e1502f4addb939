"""ifupdown: one ``interfaces.d`` file per definition.

A definition becomes ``<root>/etc/network/interfaces.d/<name>``, read when
``/etc/network/interfaces`` has ``source /etc/network/interfaces.d/*``
(Debian's default). The file holds a stanza for every device of the
definition, members first, so ``ifup -a`` meets them in a working order.
Bridges use bridge-utils' ``bridge_*`` options, bonds ifenslave's
``bond-*`` options and VLANs the vlan package's ``vlan-raw-device``.

The first line is the ownership marker::

    # vif_plug_dyn: managed file for host interface definition <name>.
"""

from vif_plug_dyn.hostif import addressing
from vif_plug_dyn.hostif import model
from vif_plug_dyn.hostif import safety
from vif_plug_dyn.hostif.backends import base

#: The start of the first line of every file this backend writes.
MARKER = '# vif_plug_dyn: managed file'

#: ``(option, value, field)``: the field is the XPath of the value in the
#: definition, relative to the device's ``<interface>`` (absolute when it
#: starts with ``/``), named when the value is refused (see
#: :mod:`vif_plug_dyn.hostif.safety`). A list value is written space
#: separated, each item checked.
_Options = list[tuple[str, object, str]]
_Stanza = tuple[str, str, _Options]


class IfupdownBackend(base.PersistentBackend):
    """Writes ifupdown ``interfaces.d`` files."""

    name = 'ifupdown'
    subdir = 'etc/network/interfaces.d'
    file_mode = 0o644

    def render(self, definition: model.HostInterface) -> dict[str, str]:
        """Render the one file of ``definition``.

        :param definition: a top-level definition.
        :returns: ``{<name>: text}``.
        """
        path = '%s/%s' % (self.directory,
                          safety.token_or_repr(definition.name))
        with safety.writing(definition.name, 'ifupdown file %s' % path):
            name = safety.token(definition.name, '/interface/@name')
            lines = ['%s for host interface definition %s.'
                     % (MARKER, name),
                     '# Edit the definition, not this file: it is '
                     'rewritten on every change.']
            for device in definition.devices():
                lines.append('')
                lines.extend(render_device(device))
        return {name: '\n'.join(lines) + '\n'}

    def is_ours(self, text: str) -> bool:
        """Whether the file starts with our marker.

        :param text: the file.
        """
        return text.startswith(MARKER)


def render_device(device: model.Device) -> list[str]:
    """Render the stanzas of one device.

    :param device: a device of a definition.
    :returns: the lines.
    :raises vif_plug_dyn.hostif.safety.Unsafe: a value cannot be written
        safely (its field is the XPath in the definition).
    """
    try:
        return _render(device)
    except safety.Unsafe as exc:
        if not exc.field.startswith('/'):
            exc.field = '%s/%s' % (device.element, exc.field)
        raise


def _value(value: object, field: str) -> str:
    # NOTE(vpd): every value is checked here, where it is written,
    # whatever validated it before (see hostif.safety).
    if isinstance(value, (list, tuple)):
        return ' '.join(safety.token(item, '%s[%d]/@name' % (field, index))
                        for index, item in enumerate(value, 1))
    return safety.token(value, field)


def _render(device: model.Device) -> list[str]:
    iface = device.interface
    name = safety.token(device.name, '@name')
    lines = []
    if device.master is not None:
        lines.append('# %s of %s %s' % (
            'port' if device.master_kind == model.BRIDGE else 'slave',
            device.master_kind,
            safety.token(device.master,
                         device.element.rsplit('/', 2)[0] + '/@name')))
    # NOTE(vpd): bridge-utils and ifenslave bring ethernet ports up with
    # their master; a bond or VLAN port is a device of its own that ifup
    # has to create first, so it follows the definition's start mode.
    if device.master is None or device.create:
        if device.start_mode == 'onboot':
            lines.append('auto %s' % name)
        elif device.start_mode == 'hotplug':
            lines.append('allow-hotplug %s' % name)
    link = _link_options(iface)
    for family, method, options in _stanzas(iface, link):
        lines.append('iface %s %s %s' % (name, family, method))
        lines.extend('    %s %s' % (option, _value(value, field))
                     for option, value, field in options)
    return lines


def _link_options(iface: model.HostInterface) -> _Options:
    options: _Options = []
    if iface.mac is not None:
        options.append(('hwaddress', iface.mac, 'mac/@address'))
    if iface.mtu is not None:
        options.append(('mtu', iface.mtu, 'mtu/@size'))
    if iface.kind == model.BRIDGE:
        options.append(('bridge_ports', [m.name for m in iface.members]
                        or 'none', 'bridge/interface'))
        options.append(('bridge_stp', 'on' if iface.stp else 'off',
                        'bridge/@stp'))
        if iface.delay is not None:
            options.append(('bridge_fd', '%g' % safety.seconds(
                iface.delay, 'bridge/@delay'), 'bridge/@delay'))
    elif iface.kind == model.BOND:
        options += _bond_options(iface)
    elif iface.kind == model.VLAN:
        # NOTE(vpd): the classic vlan package takes the tag from the name
        # (eth0.42, vlan42); ifupdown2 reads vlan-id. Write both.
        options += [('vlan-raw-device', iface.parent,
                     'vlan/interface/@name'),
                    ('vlan-id', iface.tag, 'vlan/@tag')]
    return options


def _bond_options(iface: model.HostInterface) -> _Options:
    options: _Options = [('bond-slaves', [m.name for m in iface.members],
                          'bond/interface')]
    if iface.bond_mode is not None:
        options.append(('bond-mode', iface.bond_mode, 'bond/@mode'))
    if iface.miimon is not None:
        mii = iface.miimon
        options.append(('bond-miimon', mii.freq, 'bond/miimon/@freq'))
        if mii.downdelay is not None:
            options.append(('bond-downdelay', mii.downdelay,
                            'bond/miimon/@downdelay'))
        if mii.updelay is not None:
            options.append(('bond-updelay', mii.updelay,
                            'bond/miimon/@updelay'))
        if mii.carrier is not None:
            options.append(('bond-use-carrier',
                            '1' if mii.carrier == 'netif' else '0',
                            'bond/miimon/@carrier'))
    if iface.arpmon is not None:
        arp = iface.arpmon
        options += [('bond-arp-interval', arp.interval,
                     'bond/arpmon/@interval'),
                    ('bond-arp-ip-target', arp.target,
                     'bond/arpmon/@target')]
        if arp.validate is not None:
            options.append(('bond-arp-validate', arp.validate,
                            'bond/arpmon/@validate'))
    if iface.primary is not None:
        options.append(('bond-primary', iface.primary,
                        'bond/interface[1]/@name'))
    return options


def _stanzas(iface: model.HostInterface, link: _Options) -> list[_Stanza]:
    v4 = iface.ipv4 if iface.ipv4 is not None and iface.ipv4.configured \
        else None
    stanzas: list[_Stanza] = []
    if v4 is not None and v4.addresses:
        stanzas += _static('inet', v4, [])
        stanzas[0][2].extend(link)
        if v4.dhcp:
            stanzas.append(('inet', 'dhcp', []))
    elif v4 is not None and v4.dhcp and iface.mtu is None:
        stanzas.append(('inet', 'dhcp', link))
    else:
        # NOTE(vpd): ifupdown's dhcp method has no mtu option; a manual
        # stanza sets the link up first and a second stanza of the same
        # interface runs DHCP (interfaces(5) merges them).
        stanzas.append(('inet', 'manual', link))
        if v4 is not None and v4.dhcp:
            stanzas.append(('inet', 'dhcp', []))
    v6 = iface.ipv6 if iface.ipv6 is not None and iface.ipv6.configured \
        else None
    if v6 is None:
        return stanzas
    if v6.addresses:
        extra: _Options = [('autoconf', '1', "protocol[@family='ipv6']/"
                            "autoconf")] if v6.autoconf else []
        stanzas += _static('inet6', v6, extra)
        if v6.dhcp:
            stanzas.append(('inet6', 'dhcp', []))
    elif v6.autoconf:
        stanzas.append(('inet6', 'auto', [
            ('dhcp', '1', "protocol[@family='ipv6']/dhcp")]
            if v6.dhcp else []))
    else:
        stanzas.append(('inet6', 'dhcp', []))
    return stanzas


def _static(family: str, protocol: addressing.Protocol,
            extra: _Options) -> list[_Stanza]:
    # NOTE(vpd): one stanza per address: classic ifupdown refuses a
    # repeated option, but merges several stanzas of one interface.
    stanzas: list[_Stanza] = []
    where = "protocol[@family='%s']" % (
        addressing.IPV4 if family == 'inet' else addressing.IPV6)
    for index, address in enumerate(protocol.addresses, 1):
        ip = '%s/ip[%d]' % (where, index)
        options: _Options = [('address', safety.cidr(
            address.address, address.prefix, ip), ip)]
        if not stanzas:
            if protocol.gateway is not None:
                options.append(('gateway', protocol.gateway,
                                where + '/route/@gateway'))
            options += extra
        stanzas.append((family, 'static', options))
    return stanzas
