"""IP addressing of a host interface: libvirt's ``<protocol>`` element.

::

    <protocol family='ipv4'>
      <dhcp peerdns='no'/>                 <!-- optional -->
      <ip address='192.0.2.10' prefix='24'/>  <!-- zero or more -->
      <route gateway='192.0.2.1'/>         <!-- optional -->
    </protocol>
    <protocol family='ipv6'>
      <autoconf/>                          <!-- SLAAC, optional -->
      <dhcp/>
      <ip address='2001:db8::10' prefix='64'/>
      <route gateway='2001:db8::1'/>
    </protocol>

Errors name the field relative to the ``<protocol>`` (or ``<ip>``)
element, for example ``ip[2]/@address``; the XML parser prefixes the path
of the element.
"""

import dataclasses
import ipaddress
import re

from vif_plug_dyn import exception
from vif_plug_dyn import objects
from vif_plug_dyn import validate

IPV4 = 'ipv4'
IPV6 = 'ipv6'
#: The address families of a ``<protocol>`` element.
FAMILIES = (IPV4, IPV6)
_VERSION = {IPV4: 4, IPV6: 6}
#: The characters of a textual IPv4 or IPv6 address (no zone id).
_ADDRESS_RE = re.compile(r'[0-9A-Fa-f:.]+')
#: Longest textual address (an IPv6 address with an IPv4 tail).
_MAX_ADDRESS = 45


def _cut(value: str) -> str:
    # NOTE(vpd): errors name the value, but never repeat a huge one.
    return value if len(value) <= 48 else '%s... (%d characters)' % (
        value[:48], len(value))


def _fail(field: str, value: object, reason: str
          ) -> exception.InvalidField:
    return exception.InvalidField(field=field, value=value, reason=reason)


def _parse_ip(value: object, field: str
              ) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if not isinstance(value, str):
        raise _fail(field, value, 'must be a string')
    # NOTE(vpd): ipaddress accepts IPv6 zone ids ("fe80::1%eth0") with
    # any character in them, newlines included, and these values end up
    # in files root runs at boot. A zone id names a device of one host
    # and is never needed in a definition (the interface is the zone):
    # refuse it, and anything but the characters of an address.
    if len(value) > _MAX_ADDRESS or not _ADDRESS_RE.fullmatch(value):
        reason = ('has a zone id (%...); a definition never needs one, '
                  'the interface is the zone' if '%' in value else
                  'is not an IP address')
        raise _fail(field, _cut(value), reason)
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise _fail(field, value, 'is not an IP address') from None
    # NOTE(vpd): these can never be assigned to an interface or used as
    # a next hop; refusing them here gives a clear error instead of a
    # boot-time failure in the host's network tooling.
    if address.is_unspecified or address.is_multicast:
        raise _fail(field, value, 'is an unspecified or multicast address')
    return address


@dataclasses.dataclass(frozen=True, kw_only=True)
class IPAddress(objects.VersionedObject):
    """A static address, ``<ip address='...' prefix='...'/>``.

    :ivar address: the address, normalised (IPv6 compressed, lower case).
    :ivar prefix: the prefix length; ``None`` when the definition gives
        none, which the backends write as a host prefix (/32 or /128),
        as ``ip address add`` does.
    """

    address: str
    prefix: int | None = None

    def __post_init__(self) -> None:
        address = _parse_ip(self.address, '@address')
        objects.set_normalised(self, 'address', str(address))
        if self.prefix is not None:
            high = address.max_prefixlen
            if isinstance(self.prefix, bool) or \
                    not isinstance(self.prefix, int) or \
                    not 0 <= self.prefix <= high:
                raise _fail('@prefix', self.prefix,
                            'must be an integer from 0 to %d' % high)

    @property
    def version(self) -> int:
        """4 or 6."""
        return ipaddress.ip_address(self.address).version

    @property
    def cidr(self) -> str:
        """``address/prefix``, with a host prefix when none is given."""
        prefix = self.prefix
        if prefix is None:
            prefix = 32 if self.version == 4 else 128
        return '%s/%d' % (self.address, prefix)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Protocol(objects.VersionedObject):
    """The addressing of one address family.

    :ivar family: ``ipv4`` or ``ipv6``.
    :ivar dhcp: ask a DHCP server for an address.
    :ivar peerdns: use the DNS servers DHCP offers (``None``: the
        tooling's default, which is yes).
    :ivar autoconf: IPv6 stateless autoconfiguration (SLAAC).
    :ivar addresses: static addresses.
    :ivar gateway: the default route's next hop.
    """

    family: str
    dhcp: bool = False
    peerdns: bool | None = None
    autoconf: bool = False
    addresses: tuple[IPAddress, ...] = ()
    gateway: str | None = None

    def __post_init__(self) -> None:
        validate.one_of(self.family, '@family', FAMILIES)
        for name in ('dhcp', 'autoconf'):
            if not isinstance(getattr(self, name), bool):
                raise _fail(name, getattr(self, name), 'must be a boolean')
        if self.autoconf and self.family != IPV6:
            raise _fail('autoconf', True, 'only IPv6 has stateless '
                                          'autoconfiguration')
        if self.peerdns is not None:
            if not isinstance(self.peerdns, bool):
                raise _fail('dhcp/@peerdns', self.peerdns,
                            'must be a boolean')
            if not self.dhcp:
                raise _fail('dhcp/@peerdns', self.peerdns,
                            'only meaningful with <dhcp/>')
        self._check_addresses()
        if self.gateway is not None:
            gateway = _parse_ip(self.gateway, 'route/@gateway')
            if gateway.version != _VERSION[self.family]:
                raise _fail('route/@gateway', self.gateway,
                            'is not an %s address' % self.family)
            # NOTE(vpd): NetworkManager refuses a gateway without a static
            # address, and ifupdown only has one in its static method.
            if not self.addresses:
                raise _fail('route/@gateway', self.gateway,
                            'needs at least one static <ip> address')
            objects.set_normalised(self, 'gateway', str(gateway))

    def _check_addresses(self) -> None:
        seen = set()
        for index, item in enumerate(self.addresses, 1):
            field = 'ip[%d]' % index
            if not isinstance(item, IPAddress):
                raise _fail(field, item, 'must be an IPAddress')
            if item.version != _VERSION[self.family]:
                raise _fail(field + '/@address', item.address,
                            'is not an %s address' % self.family)
            if item.address in seen:
                raise _fail(field + '/@address', item.address,
                            'listed twice')
            seen.add(item.address)

    @property
    def configured(self) -> bool:
        """Whether this family gets any address at all."""
        return bool(self.dhcp or self.autoconf or self.addresses)
