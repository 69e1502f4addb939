"""The host interface model: ethernet, bridge, bond and vlan definitions.

A :class:`HostInterface` mirrors one libvirt ``<interface>`` document
(see :mod:`vif_plug_dyn.hostif.xml`). Bridge members and bond slaves are
themselves :class:`HostInterface` objects, *bare* ones as libvirt calls
them: no start mode, MTU or addressing of their own.

Validation errors are :class:`~vif_plug_dyn.exception.InvalidField` whose
field is the XPath of the culprit relative to the ``<interface>`` element
(``bond/interface[2]/@name``); the XML parser turns them into
:class:`~vif_plug_dyn.exception.InvalidHostInterface` with the full path.

For the backends that apply a definition, :meth:`HostInterface.devices`
flattens it into :class:`Device` records: one kernel device each, members
before the device that takes them, each saying whether it has to be
created, what it needs first and which master it joins.
"""

import dataclasses
import uuid as uuid_mod
from collections.abc import Iterator
from typing import Any

from vif_plug_dyn import exception
from vif_plug_dyn import objects
from vif_plug_dyn import validate
from vif_plug_dyn.hostif.addressing import IPV4
from vif_plug_dyn.hostif.addressing import IPV6
from vif_plug_dyn.hostif.addressing import IPAddress
from vif_plug_dyn.hostif.addressing import Protocol

ETHERNET = 'ethernet'
BRIDGE = 'bridge'
BOND = 'bond'
VLAN = 'vlan'
#: Every host interface kind, as in ``<interface type='...'>``.
KINDS = (ETHERNET, BRIDGE, BOND, VLAN)
#: ``<start mode='...'/>``.
START_MODES = ('onboot', 'none', 'hotplug')
#: ``<bond mode='...'>``, the kernel bonding modes libvirt knows.
BOND_MODES = ('balance-rr', 'active-backup', 'balance-xor', 'broadcast',
              '802.3ad', 'balance-tlb', 'balance-alb')
#: ``<miimon carrier='...'>``: MII/ethtool ioctls or netif_carrier_ok().
MII_CARRIERS = ('ioctl', 'netif')
#: ``<arpmon validate='...'>``.
ARP_VALIDATE = ('none', 'active', 'backup', 'all')
#: Kinds a bridge may take as members, and a bond as slaves (libvirt's
#: interface schema).
BRIDGE_MEMBER_KINDS = (ETHERNET, VLAN, BOND)
BOND_SLAVE_KINDS = (ETHERNET,)
#: Longest bridge forward delay the kernel accepts, in seconds.
MAX_FORWARD_DELAY = 30.0

# NOTE(vpd): libvirt host interfaces have no uuid; ours is carried in a
# processing instruction and, when absent, derived from the name in this
# fixed namespace so that it is stable across reloads and hosts.
UUID_NAMESPACE = uuid_mod.UUID('10fe4786-5ae2-45c1-8784-35e1d5b2276c')

# NOTE(vpd): bonding refuses ARP monitoring in these modes (they need the
# slaves' MII state), so such a definition could never be applied.
_NO_ARPMON_MODES = ('802.3ad', 'balance-tlb', 'balance-alb')
_MAX_UINT = 2 ** 31 - 1


def default_uuid(name: str) -> str:
    """Return the uuid a definition called ``name`` gets when none is set.

    :param name: the interface name.
    :returns: a name-based (version 5) uuid.
    """
    return str(uuid_mod.uuid5(UUID_NAMESPACE, name))


def _fail(field: str, value: Any, reason: str) -> exception.InvalidField:
    return exception.InvalidField(field=field, value=value, reason=reason)


def _uint(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or \
            not 0 <= value <= _MAX_UINT:
        raise _fail(field, value, 'must be an integer from 0 to %d'
                    % _MAX_UINT)
    return value


@dataclasses.dataclass(frozen=True, kw_only=True)
class MiiMon(objects.VersionedObject):
    """Bond link monitoring through MII, ``<miimon freq=.../>``.

    :ivar freq: polling interval in milliseconds (0 disables it).
    :ivar downdelay: milliseconds to wait before disabling a failed slave.
    :ivar updelay: milliseconds to wait before enabling a recovered slave.
    :ivar carrier: ``ioctl`` (MII/ethtool) or ``netif``
        (netif_carrier_ok), the kernel's ``use_carrier`` 0 or 1.
    """

    freq: int
    downdelay: int | None = None
    updelay: int | None = None
    carrier: str | None = None

    def __post_init__(self) -> None:
        _uint(self.freq, '@freq')
        for name in ('downdelay', 'updelay'):
            if getattr(self, name) is not None:
                _uint(getattr(self, name), '@' + name)
        if self.carrier is not None:
            validate.one_of(self.carrier, '@carrier', MII_CARRIERS)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ArpMon(objects.VersionedObject):
    """Bond link monitoring through ARP probes, ``<arpmon .../>``.

    :ivar interval: probe interval in milliseconds.
    :ivar target: the IPv4 address probed.
    :ivar validate: which slaves validate the replies.
    """

    interval: int
    target: str
    validate: str | None = None

    def __post_init__(self) -> None:
        _uint(self.interval, '@interval')
        # NOTE(vpd): reuse the addressing rules (no multicast, family).
        try:
            target = IPAddress(address=self.target)
        except exception.InvalidField as exc:
            raise _fail('@target', self.target,
                        exc.kwargs.get('reason', '')) from None
        if target.version != 4:
            raise _fail('@target', self.target, 'must be an IPv4 address')
        objects.set_normalised(self, 'target', target.address)
        if self.validate is not None:
            validate.one_of(self.validate, '@validate', ARP_VALIDATE)


@dataclasses.dataclass(frozen=True, kw_only=True)
class HostInterface(objects.VersionedObject):
    """One host interface definition (or a bare member of one).

    :ivar kind: one of :data:`KINDS`.
    :ivar name: the kernel device name. A VLAN without one is called
        ``<parent>.<tag>``.
    :ivar uuid: the definition's uuid; :func:`default_uuid` of the name
        when not given.
    :ivar start_mode: one of :data:`START_MODES`; ``None`` (not given)
        means the interface is not brought up automatically.
    :ivar mtu: the MTU.
    :ivar mac: the NIC's MAC address (``ethernet`` only).
    :ivar ipv4: IPv4 addressing, ``None`` for none.
    :ivar ipv6: IPv6 addressing, ``None`` for none.
    :ivar stp: spanning tree on the bridge (``None``: not given, off).
    :ivar delay: the bridge's forward delay in seconds.
    :ivar members: bridge members (ethernet, vlan or bond) or bond slaves
        (ethernet), in order; the first slave of an ``active-backup``
        bond is its primary.
    :ivar bond_mode: one of :data:`BOND_MODES` (``None``: balance-rr).
    :ivar miimon: MII link monitoring of a bond.
    :ivar arpmon: ARP link monitoring of a bond.
    :ivar tag: the VLAN id.
    :ivar parent: the VLAN's lower device.
    """

    kind: str
    name: str | None = None
    uuid: str | None = None
    start_mode: str | None = None
    mtu: int | None = None
    mac: str | None = None
    ipv4: Protocol | None = None
    ipv6: Protocol | None = None
    stp: bool | None = None
    delay: float | None = None
    members: tuple['HostInterface', ...] = ()
    bond_mode: str | None = None
    miimon: MiiMon | None = None
    arpmon: ArpMon | None = None
    tag: int | None = None
    parent: str | None = None

    def __post_init__(self) -> None:
        validate.one_of(self.kind, '@type', KINDS)
        self._check_foreign_fields()
        if self.kind == VLAN:
            self._check_vlan()
        validate.ifname(self.name, '@name')
        objects.set_normalised(
            self, 'uuid', default_uuid(str(self.name)) if self.uuid is None
            else validate.uuid(self.uuid,
                               "processing-instruction('vif-plug-dyn')"))
        if self.start_mode is not None:
            validate.one_of(self.start_mode, 'start/@mode', START_MODES)
        if self.mtu is not None:
            validate.mtu(self.mtu, 'mtu/@size')
        if self.mac is not None:
            objects.set_normalised(self, 'mac',
                                   validate.mac(self.mac, 'mac/@address'))
        for family, protocol in ((IPV4, self.ipv4), (IPV6, self.ipv6)):
            if protocol is not None and (
                    not isinstance(protocol, Protocol) or
                    protocol.family != family):
                raise _fail("protocol[@family='%s']" % family, protocol,
                            'must be a Protocol of family %s' % family)
        if self.kind == BRIDGE:
            self._check_bridge()
        if self.kind == BOND:
            self._check_bond()
        self._check_unique_names()

    # -- validation ---------------------------------------------------------

    _KIND_FIELDS = {
        'mac': (ETHERNET, 'mac'), 'stp': (BRIDGE, 'bridge/@stp'),
        'delay': (BRIDGE, 'bridge/@delay'),
        'members': ((BRIDGE, BOND), 'interface'),
        'bond_mode': (BOND, 'bond/@mode'), 'miimon': (BOND, 'bond/miimon'),
        'arpmon': (BOND, 'bond/arpmon'), 'tag': (VLAN, 'vlan/@tag'),
        'parent': (VLAN, 'vlan/interface/@name'),
    }

    def _check_foreign_fields(self) -> None:
        for name, (kinds, field) in self._KIND_FIELDS.items():
            value = getattr(self, name)
            if value is not None and value != () and self.kind not in kinds:
                raise _fail(field, value,
                            'not used by %s interfaces' % self.kind)

    def _check_vlan(self) -> None:
        objects.set_normalised(self, 'tag', validate.vlan(self.tag,
                                                          'vlan/@tag'))
        validate.ifname(self.parent, 'vlan/interface/@name')
        if self.name is None:
            derived = '%s.%s' % (self.parent, self.tag)
            validate.ifname(derived, '@name')
            objects.set_normalised(self, 'name', derived)
        if self.parent == self.name:
            raise _fail('vlan/interface/@name', self.parent,
                        'a VLAN cannot be its own parent')

    def _check_bridge(self) -> None:
        if self.stp is not None and not isinstance(self.stp, bool):
            raise _fail('bridge/@stp', self.stp, 'must be a boolean')
        if self.delay is not None:
            if isinstance(self.delay, bool) or \
                    not isinstance(self.delay, (int, float)) or \
                    not 0 <= self.delay <= MAX_FORWARD_DELAY:
                raise _fail('bridge/@delay', self.delay,
                            'must be 0 to %g seconds' % MAX_FORWARD_DELAY)
            objects.set_normalised(self, 'delay', float(self.delay))
        self._check_members('bridge', BRIDGE_MEMBER_KINDS, minimum=0)

    def _check_bond(self) -> None:
        if self.bond_mode is not None:
            validate.one_of(self.bond_mode, 'bond/@mode', BOND_MODES)
        if self.miimon is not None and not isinstance(self.miimon, MiiMon):
            raise _fail('bond/miimon', self.miimon, 'must be a MiiMon')
        if self.arpmon is not None:
            if not isinstance(self.arpmon, ArpMon):
                raise _fail('bond/arpmon', self.arpmon, 'must be an ArpMon')
            if self.miimon is not None:
                raise _fail('bond/arpmon', self.arpmon.target,
                            'a bond uses <miimon> or <arpmon>, not both')
            if self.bond_mode in _NO_ARPMON_MODES:
                raise _fail('bond/arpmon', self.arpmon.target,
                            'bond mode %s does not support ARP '
                            'monitoring' % self.bond_mode)
        self._check_members('bond', BOND_SLAVE_KINDS, minimum=1)

    def _check_members(self, element: str, kinds: tuple[str, ...],
                       minimum: int) -> None:
        if not isinstance(self.members, tuple):
            raise _fail(element + '/interface', self.members,
                        'must be a tuple')
        if len(self.members) < minimum:
            raise _fail(element + '/interface', self.members,
                        'a %s needs at least %d member interface'
                        % (self.kind, minimum))
        for index, member in enumerate(self.members, 1):
            where = '%s/interface[%d]' % (element, index)
            if not isinstance(member, HostInterface):
                raise _fail(where, member, 'must be a HostInterface')
            if member.kind not in kinds:
                raise _fail(where + '/@type', member.kind,
                            'a %s takes only %s interfaces' % (
                                self.kind, ', '.join(kinds)))
            # NOTE(vpd): libvirt's schema has no start mode, MTU or
            # addressing on members: they follow the device that takes
            # them, and an address on an enslaved device is never used.
            for name, sub in (('start_mode', 'start'), ('mtu', 'mtu'),
                              ('ipv4', 'protocol'), ('ipv6', 'protocol')):
                if getattr(member, name) is not None:
                    raise _fail('%s/%s' % (where, sub),
                                getattr(member, name),
                                'a member interface has no %s of its '
                                'own' % sub)

    def _check_unique_names(self) -> None:
        seen: dict[str, str] = {}
        for element, iface in self.walk():
            where = element + ('/@name' if element else '@name')
            if iface.name in seen:
                first = seen[iface.name]
                raise _fail(where, iface.name, 'already used at /interface%s'
                            % ('/' + first if first else ''))
            seen[str(iface.name)] = element

    # -- structure ------------------------------------------------------------

    def walk(self, element: str = '') -> Iterator[tuple[str, 'HostInterface']]:
        """Yield this interface and every nested member, parents first.

        :param element: the XPath of this interface relative to the root
            ``<interface>`` ('' for the root itself).
        :returns: ``(relative XPath, interface)`` pairs.
        """
        yield element, self
        sub = BRIDGE if self.kind == BRIDGE else BOND
        for index, member in enumerate(self.members, 1):
            path = '%s%s/interface[%d]' % (element + '/' if element else '',
                                           sub, index)
            yield from member.walk(path)

    @property
    def primary(self) -> str | None:
        """The primary slave of an ``active-backup`` bond (the first)."""
        if self.kind == BOND and self.bond_mode == 'active-backup':
            return self.members[0].name
        return None

    def requires(self) -> tuple[str, ...]:
        """Names of the devices that must exist before this one works.

        :returns: a VLAN's parent, or a bridge's or bond's members.
        """
        if self.kind == VLAN:
            return (str(self.parent),)
        return tuple(str(m.name) for m in self.members)

    def devices(self) -> tuple['Device', ...]:
        """Flatten this definition into the devices it configures.

        :returns: one :class:`Device` per interface of the tree, members
            before the bridge or bond that takes them.
        """
        out: list[Device] = []
        self._collect(out, '/interface', self, None)
        return tuple(out)

    def _collect(self, out: list['Device'], element: str,
                 root: 'HostInterface', master: 'HostInterface | None'
                 ) -> None:
        sub = BRIDGE if self.kind == BRIDGE else BOND
        for index, member in enumerate(self.members, 1):
            member._collect(out, '%s/%s/interface[%d]' % (element, sub,
                                                          index),
                            root, self)
        out.append(Device(
            name=str(self.name), kind=self.kind, element=element,
            definition=str(root.name), start_mode=root.start_mode,
            interface=self, requires=self.requires(),
            master=None if master is None else master.name,
            master_kind=None if master is None else master.kind))

    # -- XML ------------------------------------------------------------------

    def to_xml(self) -> str:
        """Format as a libvirt ``<interface>`` document."""
        from vif_plug_dyn.hostif import xml as ifxml
        return ifxml.dump(self)

    @classmethod
    def from_xml(cls, text: str | bytes, source: str = '<string>'
                 ) -> 'HostInterface':
        """Parse a libvirt ``<interface>`` document.

        :param text: the XML.
        :param source: where it came from, used in errors.
        :raises InvalidHostInterface: names the element at fault.
        """
        from vif_plug_dyn.hostif import xml as ifxml
        return ifxml.parse(text, source)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Device(objects.VersionedObject):
    """One kernel device of a definition, as a backend applies it.

    :ivar name: the device name.
    :ivar kind: one of :data:`KINDS`.
    :ivar definition: the name of the definition it belongs to.
    :ivar element: XPath of its ``<interface>`` in the definition.
    :ivar start_mode: the definition's start mode, which members follow.
    :ivar interface: its settings (for a bridge or bond, with members).
    :ivar requires: devices that must exist first (VLAN parent, members).
    :ivar master: the bridge or bond this device is enslaved to.
    :ivar master_kind: ``bridge`` or ``bond`` when there is a master.
    """

    name: str
    kind: str
    definition: str
    element: str
    interface: HostInterface
    start_mode: str | None = None
    requires: tuple[str, ...] = ()
    master: str | None = None
    master_kind: str | None = None

    @property
    def create(self) -> bool:
        """Whether the device is made (bridge, bond, vlan) rather than
        found (an ethernet NIC, which must exist)."""
        return self.kind != ETHERNET
