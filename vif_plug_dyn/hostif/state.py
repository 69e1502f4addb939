"""The live state of a host's links and addresses, as the helper reads it.

:class:`HostState` wraps what :meth:`vif_plug_dyn.host.HostNetwork.
dump_state` returns (plain dicts, JSON-safe) with the look-ups the live
backend, live dumps and transactions need: by name, by index, masters,
members, addresses, and who manages a device.

Markers: a device a host interface definition created carries the alias
``vif_plug_dyn:hostif.<definition>``; an operator's device a definition
adopted carries ``vif_plug_dyn.adopted:hostif.<definition>`` (see
:mod:`vif_plug_dyn.privsep.ops`).
"""

import dataclasses
from typing import Any

#: Owner tags of host interface definitions start with this.
TAG_PREFIX = 'hostif.'

CREATED = 'created'
ADOPTED = 'adopted'
FOREIGN = 'foreign'
OTHER = 'other'

Link = dict[str, Any]
Addr = dict[str, Any]


def definition_tag(name: str) -> str:
    """The owner tag of the devices of definition ``name``."""
    return TAG_PREFIX + name


def tag_definition(tag: str | None) -> str | None:
    """The definition a host interface tag names, ``None`` for others."""
    if tag and tag.startswith(TAG_PREFIX):
        return tag[len(TAG_PREFIX):]
    return None


def marker(link: Link) -> tuple[str, str | None]:
    """Who manages a device.

    :returns: ``(CREATED, definition)`` or ``(ADOPTED, definition)`` for
        the devices of a host interface definition; ``(OTHER, tag)`` for
        a device another part of the library created (a driver's tap or
        bridge); ``(ADOPTED, None)`` for a device adopted by something
        else; ``(FOREIGN, None)`` for the operator's.
    """
    if link.get('owned'):
        definition = tag_definition(link.get('tag'))
        if definition is not None:
            return CREATED, definition
        return OTHER, link.get('tag')
    if link.get('adopted'):
        return ADOPTED, tag_definition(link.get('adopted_tag'))
    return FOREIGN, None


#: IFA_PROTO of addresses the kernel configured from router
#: advertisements.
PROTO_KERNEL_RA = 2
#: Link kinds that sit on a lower device and follow its MTU down.
UPPER_KINDS = ('vlan', 'macvlan', 'macvtap', 'ipvlan', 'ipvtap')


def autoconfigured(addr: Addr) -> bool:
    """Whether an address comes from IPv6 stateless autoconfiguration
    (router advertisements): the network hands it out and takes it back,
    with lifetimes of its own, so restores and comparisons leave it to
    the kernel.

    NOTE(vpd): kernels before IFA_PROTO (6.3) do not say where an address
    came from; there an IPv6 address that is not permanent counts.
    Link-local addresses are not in this set: which one a device has
    depends on its history (the MAC it had when IPv6 started on it), so a
    rollback puts back the very ones the snapshot had.
    """
    proto = addr.get('proto')
    if proto == PROTO_KERNEL_RA:
        return True
    return addr.get('family') == 'inet6' and not proto and \
        'permanent' not in (addr.get('flags') or ())


def is_hostif(link: Link) -> bool:
    """Whether a host interface definition created or adopted it."""
    role, definition = marker(link)
    return role in (CREATED, ADOPTED) and definition is not None


@dataclasses.dataclass
class HostState:
    """Links and addresses of one network namespace at one moment.

    :ivar links: link dicts by name (see ``HostNetwork.get_link``).
    :ivar addresses: address dicts (see ``HostNetwork.list_addresses``),
        in the kernel's order.
    """

    links: dict[str, Link]
    addresses: list[Addr]

    def __post_init__(self) -> None:
        self._names = {link['index']: name
                       for name, link in self.links.items()}

    @classmethod
    def from_dump(cls, dump: dict[str, Any]) -> 'HostState':
        """Build from ``HostNetwork.dump_state()`` (or
        :meth:`to_primitive`)."""
        links = {str(link['name']): dict(link) for link in dump['links']}
        return cls(links=links,
                   addresses=[dict(a) for a in dump['addresses']])

    def to_primitive(self) -> dict[str, Any]:
        """The JSON-safe form :meth:`from_dump` reads back."""
        return {'links': [self.links[n] for n in sorted(
                    self.links, key=lambda n: self.links[n]['index'])],
                'addresses': list(self.addresses)}

    def get(self, name: str) -> Link | None:
        """The link called ``name``, or ``None``."""
        return self.links.get(name)

    def name_of(self, index: int | None) -> str | None:
        """The name of the link of that index (``None``: none here)."""
        if not index:
            return None
        return self._names.get(index)

    def master_of(self, name: str) -> str | None:
        """The name of a link's master (bridge or bond)."""
        link = self.links.get(name)
        return None if link is None else self.name_of(link['master_index'])

    def lower_of(self, name: str) -> str | None:
        """The name of a VLAN's lower device, when it is here."""
        link = self.links.get(name)
        return None if link is None else self.name_of(link['link_index'])

    def members(self, name: str) -> list[Link]:
        """The ports of a bridge or the slaves of a bond, by index."""
        link = self.links.get(name)
        if link is None:
            return []
        return sorted((m for m in self.links.values()
                       if m['master_index'] == link['index']),
                      key=lambda m: m['index'])

    def addresses_of(self, name: str) -> list[Addr]:
        """A link's addresses, in the kernel's order."""
        link = self.links.get(name)
        if link is None:
            return []
        return [a for a in self.addresses if a['index'] == link['index']]

    def uppers(self, names: set[str]) -> set[str]:
        """Devices stacked on one of ``names`` (VLANs, macvlans...) that
        are not in ``names`` themselves."""
        indexes = {self.links[n]['index'] for n in names if n in self.links}
        return {name for name, link in self.links.items()
                if name not in names and link.get('kind') in UPPER_KINDS
                and link.get('link_index') in indexes}

    def hostif_names(self) -> set[str]:
        """Names of the links a host interface definition created or
        adopted."""
        return {name for name, link in self.links.items()
                if is_hostif(link)}
