"""IP addresses at the privileged boundary: field rules, RTM_NEWADDR /
RTM_DELADDR / RTM_GETADDR messages and their parsing.

The field validators are used by :mod:`.ops` (both sides of the
boundary); the message builders and the parser are pure (bytes in, bytes
or dicts out) and run in the daemon. Messages are packed with ``struct``
like :mod:`.nlmsg`; the unit tests decode them with pyroute2's
``ifaddrmsg`` so the two implementations check each other.

An address is described by the same dict in both directions, so that a
dumped address can be put back exactly (a transaction's rollback)::

    {'address': '192.0.2.10', 'prefix': 24, 'peer': None,
     'broadcast': '192.0.2.255', 'label': 'eth0', 'scope': 0,
     'flags': ['noprefixroute'], 'valid_lft': None,
     'preferred_lft': None, 'proto': None, 'metric': None}

``valid_lft``/``preferred_lft`` ``None`` mean "forever".
"""

import ipaddress
import socket
import struct
from typing import Any

from vif_plug_dyn import exception
from vif_plug_dyn.privsep import nlmsg

RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22

IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_LABEL = 3
IFA_BROADCAST = 4
IFA_CACHEINFO = 6
IFA_FLAGS = 8
IFA_RT_PRIORITY = 9
IFA_PROTO = 11

#: Every address flag the kernel reports (linux/if_addr.h IFA_F_*).
FLAGS = {'secondary': 0x01, 'nodad': 0x02, 'optimistic': 0x04,
         'dadfailed': 0x08, 'home': 0x10, 'deprecated': 0x20,
         'tentative': 0x40, 'permanent': 0x80, 'mngtmpaddr': 0x100,
         'noprefixroute': 0x200, 'autojoin': 0x400,
         'stable-privacy': 0x800}
#: Flags a caller may ask for when adding an address; the others are
#: state the kernel keeps (DAD progress, secondary, permanent...).
SETTABLE_FLAGS = ('nodad', 'optimistic', 'home', 'mngtmpaddr',
                  'noprefixroute', 'autojoin')
#: Named address scopes (``ip address ... scope NAME``).
SCOPES = {'global': 0, 'site': 200, 'link': 253, 'host': 254,
          'nowhere': 255}
#: Lifetime meaning "forever" on the wire.
INFINITY = 0xFFFFFFFF
#: Longest IPv4 address label (IFNAMSIZ - 1).
MAX_LABEL = 15
FAMILIES = {4: socket.AF_INET, 6: socket.AF_INET6}
FAMILY_NAMES = {socket.AF_INET: 'inet', socket.AF_INET6: 'inet6'}

_IFADDR = struct.Struct('=BBBBI')
_CACHEINFO = struct.Struct('=IIII')
_U32 = struct.Struct('=I')

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _fail(field: str, value: Any, reason: str) -> exception.InvalidField:
    return exception.InvalidField(field=field, value=value, reason=reason)


# --- field validators -------------------------------------------------------

def parse_ip(value: Any, field: str) -> Address:
    """Parse an IP address string.

    :raises InvalidField: not a string, not an address, or unspecified.
    """
    if not isinstance(value, str):
        raise _fail(field, value, 'must be an IP address string')
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise _fail(field, value, 'is not an IP address') from None
    if address.is_unspecified:
        raise _fail(field, value, 'is the unspecified address')
    return address


def check_ip(value: Any, field: str) -> str:
    """Validate an IP address; returns its normalised text."""
    return str(parse_ip(value, field))


def check_prefix(value: Any, field: str) -> int:
    """Validate a prefix length (0-128; the family bound is checked with
    the address)."""
    if isinstance(value, bool) or not isinstance(value, int) or \
            not 0 <= value <= 128:
        raise _fail(field, value, 'must be an integer from 0 to 128')
    return value


def check_scope(value: Any, field: str) -> int:
    """Validate a scope: a name of :data:`SCOPES` or 0-255."""
    if isinstance(value, str) and value in SCOPES:
        return SCOPES[value]
    if isinstance(value, bool) or not isinstance(value, int) or \
            not 0 <= value <= 255:
        raise _fail(field, value, 'must be 0-255 or one of %s'
                    % ', '.join(SCOPES))
    return value


def check_flags(value: Any, field: str) -> list[str]:
    """Validate a list of :data:`SETTABLE_FLAGS`; returns it sorted."""
    if isinstance(value, (str, bytes)) or not isinstance(value,
                                                         (list, tuple)):
        raise _fail(field, value, 'must be a list of flag names')
    for item in value:
        if item not in SETTABLE_FLAGS:
            raise _fail(field, item, 'must be one of %s'
                        % ', '.join(SETTABLE_FLAGS))
    return sorted(set(value))


def check_lifetime(value: Any, field: str) -> int:
    """Validate a lifetime in seconds (1 to 2**32 - 2; ``None`` is
    forever)."""
    if isinstance(value, bool) or not isinstance(value, int) or \
            not 1 <= value < INFINITY:
        raise _fail(field, value, 'must be an integer from 1 to %d '
                                  '(leave it out for forever)'
                    % (INFINITY - 1))
    return value


def check_label(value: Any, field: str) -> str:
    """Validate an IPv4 address label (1-15 printable bytes)."""
    if not isinstance(value, str) or not value or \
            len(value.encode('utf-8')) > MAX_LABEL or \
            not value.isprintable() or ' ' in value:
        raise _fail(field, value, '1-%d printable bytes without spaces'
                    % MAX_LABEL)
    return value


def check_u8(value: Any, field: str) -> int:
    """Validate an integer 0-255."""
    if isinstance(value, bool) or not isinstance(value, int) or \
            not 0 <= value <= 255:
        raise _fail(field, value, 'must be an integer from 0 to 255')
    return value


def check_metric(value: Any, field: str) -> int:
    """Validate a route metric (0 to 2**32 - 1)."""
    if isinstance(value, bool) or not isinstance(value, int) or \
            not 0 <= value <= INFINITY:
        raise _fail(field, value, 'must be an integer from 0 to %d'
                    % INFINITY)
    return value


def check_relations(op: dict[str, Any], field: str) -> None:
    """Cross-field rules of ``add_address``/``del_address``; fills in a
    missing prefix with the host prefix (/32, /128) as ``ip`` does.

    :raises InvalidField: families differ, a prefix too long for the
        family, IPv6 with a broadcast or label, preferred > valid.
    """
    address = ipaddress.ip_address(op['address'])
    if op['prefix'] is None:
        op['prefix'] = address.max_prefixlen
    if op['prefix'] > address.max_prefixlen:
        raise _fail(field + '.prefix', op['prefix'], 'longer than %d bits'
                    % address.max_prefixlen)
    for key in ('peer', 'broadcast'):
        other = op.get(key)
        if other is not None and \
                ipaddress.ip_address(other).version != address.version:
            raise _fail('%s.%s' % (field, key), other,
                        'is not of the family of %s' % op['address'])
    if address.version == 6:
        for key in ('broadcast', 'label'):
            if op.get(key) is not None:
                raise _fail('%s.%s' % (field, key), op[key],
                            'only IPv4 addresses have one')
    valid, preferred = op.get('valid_lft'), op.get('preferred_lft')
    if preferred is not None and valid is not None and preferred > valid:
        raise _fail(field + '.preferred_lft', preferred,
                    'must not exceed valid_lft')


# --- messages ---------------------------------------------------------------

def _packed(text: str) -> tuple[int, bytes]:
    address = ipaddress.ip_address(text)
    return FAMILIES[address.version], address.packed


def _flag_bits(names: list[str] | tuple[str, ...] | None) -> int:
    bits = 0
    for name in names or ():
        bits |= FLAGS[name]
    return bits


def newaddr(seq: int, *, index: int, address: str, prefix: int,
            peer: str | None = None, broadcast: str | None = None,
            label: str | None = None, scope: int | None = None,
            flags: list[str] | None = None, valid_lft: int | None = None,
            preferred_lft: int | None = None, proto: int | None = None,
            metric: int | None = None) -> bytes:
    """RTM_NEWADDR adding an address (NLM_F_CREATE | NLM_F_EXCL).

    NOTE(vpd): like iproute2, IFA_ADDRESS carries the local address when
    there is no peer: IPv4 needs it for the prefix route, IPv6 takes the
    address from either attribute.
    """
    family, local = _packed(address)
    bits = _flag_bits(flags)
    attrs = [nlmsg.nla(IFA_LOCAL, local),
             nlmsg.nla(IFA_ADDRESS, _packed(peer)[1] if peer else local)]
    if broadcast is not None:
        attrs.append(nlmsg.nla(IFA_BROADCAST, _packed(broadcast)[1]))
    if label is not None:
        attrs.append(nlmsg.nla_str(IFA_LABEL, label))
    attrs.append(nlmsg.nla_u32(IFA_FLAGS, bits))
    if valid_lft is not None or preferred_lft is not None:
        valid = INFINITY if valid_lft is None else valid_lft
        preferred = valid if preferred_lft is None else preferred_lft
        attrs.append(nlmsg.nla(IFA_CACHEINFO,
                               _CACHEINFO.pack(preferred, valid, 0, 0)))
    if metric is not None:
        attrs.append(nlmsg.nla_u32(IFA_RT_PRIORITY, metric))
    if proto is not None:
        attrs.append(nlmsg.nla(IFA_PROTO, bytes([proto])))
    header = _IFADDR.pack(family, prefix, bits & 0xFF,
                          0 if scope is None else scope, index)
    flags_ = (nlmsg.NLM_F_REQUEST | nlmsg.NLM_F_ACK | nlmsg.NLM_F_CREATE |
              nlmsg.NLM_F_EXCL)
    return nlmsg.message(RTM_NEWADDR, flags_, seq, header + b''.join(attrs))


def deladdr(seq: int, *, index: int, address: str, prefix: int,
            peer: str | None = None) -> bytes:
    """RTM_DELADDR removing one address of the link ``index``."""
    family, local = _packed(address)
    attrs = [nlmsg.nla(IFA_LOCAL, local),
             nlmsg.nla(IFA_ADDRESS, _packed(peer)[1] if peer else local)]
    return nlmsg.message(RTM_DELADDR, nlmsg.NLM_F_REQUEST | nlmsg.NLM_F_ACK,
                         seq, _IFADDR.pack(family, prefix, 0, 0, index) +
                         b''.join(attrs))


def dumpaddrs(seq: int, family: int = 0) -> bytes:
    """RTM_GETADDR dump of every address (``family`` 0: all families)."""
    return nlmsg.message(RTM_GETADDR, nlmsg.NLM_F_REQUEST | nlmsg.NLM_F_DUMP,
                         seq, _IFADDR.pack(family, 0, 0, 0, 0))


def _ip_text(family: int, raw: bytes) -> str:
    return str(ipaddress.ip_address(raw)) if family in (
        socket.AF_INET, socket.AF_INET6) else raw.hex()


def parse_addr(buf: nlmsg.Buffer, offset: int, end: int
               ) -> dict[str, Any]:
    """Read an RTM_NEWADDR.

    :returns: ``index``, ``family`` (``inet``/``inet6``), and the fields
        of the module docstring; ``flags`` lists every flag set
        (settable or not).
    """
    family, prefix, flags8, scope, index = _IFADDR.unpack_from(buf, offset)
    raw: dict[int, bytes] = {}
    flags = flags8
    metric = proto = None
    valid = preferred = INFINITY
    for atype, start, stop in nlmsg.attrs(buf, offset + _IFADDR.size, end):
        value = bytes(buf[start:stop])
        if atype == IFA_FLAGS:
            flags = _U32.unpack(value[:4])[0]
        elif atype == IFA_CACHEINFO:
            preferred, valid = _CACHEINFO.unpack(value[:16])[:2]
        elif atype == IFA_RT_PRIORITY:
            metric = _U32.unpack(value[:4])[0]
        elif atype == IFA_PROTO:
            proto = value[0]
        else:
            raw[atype] = value
    local = raw.get(IFA_LOCAL)
    address = raw.get(IFA_ADDRESS)
    main = local if local is not None else address
    peer = address if local is not None and address is not None and \
        address != local else None
    label = raw.get(IFA_LABEL)
    return {
        'index': index, 'family': FAMILY_NAMES.get(family, str(family)),
        'address': None if main is None else _ip_text(family, main),
        'prefix': prefix,
        'peer': None if peer is None else _ip_text(family, peer),
        'broadcast': (None if IFA_BROADCAST not in raw
                      else _ip_text(family, raw[IFA_BROADCAST])),
        'label': (None if label is None
                  else label.split(b'\0', 1)[0].decode('utf-8', 'replace')),
        'scope': scope,
        'flags': sorted(name for name, bit in FLAGS.items() if flags & bit),
        'valid_lft': None if valid == INFINITY else valid,
        'preferred_lft': None if preferred == INFINITY else preferred,
        'proto': proto, 'metric': metric}
