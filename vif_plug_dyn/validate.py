"""Validation of the primitive values that cross every layer.

Each function takes the value and the name of the field it came from, and
returns the normalised value or raises :class:`~vif_plug_dyn.exception.
InvalidField` naming that field. The same rules run in the public API, in
the network parser and again at the privileged boundary.
"""

import re
import uuid as uuid_mod
from typing import Any

from vif_plug_dyn import exception

#: Longest interface name the kernel accepts (IFNAMSIZ - 1).
IFNAMSIZ = 15
#: Modes a macvtap or macvlan device can run in.
MACVTAP_MODES = ('vepa', 'bridge', 'private', 'passthrough')

# NOTE(vpd): the kernel itself only forbids '/', ':' (alias syntax) and
# whitespace; we are stricter so that a name is always safe in a file
# name, a log line and libvirt XML.
_IFNAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.\-]*$')
_MAC_RE = re.compile(r'^([0-9a-f]{2}:){5}[0-9a-f]{2}$')
_PCI_RE = re.compile(
    r'^(?P<domain>[0-9a-f]{4}):(?P<bus>[0-9a-f]{2}):'
    r'(?P<slot>[0-1][0-9a-f])\.(?P<function>[0-7])$')
_NETWORK_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$')
_NETNS_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$')
#: A UUID already in its canonical form (the common case).
_CANONICAL_UUID_RE = re.compile(
    r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}')
_CONTROL_RE = re.compile(r'[\x00-\x1f\x7f]')


def _fail(field: str, value: Any, reason: str) -> exception.InvalidField:
    return exception.InvalidField(field=field, value=value, reason=reason)


def _require_str(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise _fail(field, value, 'must be a string')
    return value


def ifname(value: Any, field: str = 'ifname') -> str:
    """Validate a network interface name.

    :param value: the candidate name.
    :param field: the field name reported on error.
    :returns: the name.
    :raises InvalidField: empty, longer than 15 bytes, or with characters
        other than letters, digits, ``_``, ``.`` and ``-``.
    """
    value = _require_str(value, field)
    if not value:
        raise _fail(field, value, 'must not be empty')
    if len(value.encode('utf-8')) > IFNAMSIZ:
        raise _fail(field, value,
                    'longer than %d bytes (IFNAMSIZ)' % IFNAMSIZ)
    if value in ('.', '..') or not _IFNAME_RE.fullmatch(value):
        raise _fail(field, value,
                    'only letters, digits, "_", "." and "-" are allowed, '
                    'starting with a letter or digit')
    return value


def mac(value: Any, field: str = 'mac') -> str:
    """Validate a unicast Ethernet MAC address; returns it in lower case.

    :raises InvalidField: not six colon-separated octets, multicast, or
        all zeros.
    """
    value = _require_str(value, field).lower()
    if not _MAC_RE.fullmatch(value):
        raise _fail(field, value, 'expected six hex octets like '
                                  '52:54:00:12:34:56')
    if int(value[:2], 16) & 0x01:
        raise _fail(field, value, 'is a multicast address')
    if value == '00:00:00:00:00:00':
        raise _fail(field, value, 'is the all-zero address')
    return value


def pci_address(value: Any, field: str = 'pci_address') -> str:
    """Validate a PCI address ``dddd:bb:ss.f``; returns it in lower case.

    :raises InvalidField: wrong shape, slot above 0x1f or function above 7.
    """
    value = _require_str(value, field).lower()
    if not _PCI_RE.fullmatch(value):
        raise _fail(field, value, 'expected a PCI address dddd:bb:ss.f '
                                  '(slot 00-1f, function 0-7)')
    return value


def pci_parts(value: str) -> dict[str, int]:
    """Split a validated PCI address into its integer parts.

    :returns: a dict with ``domain``, ``bus``, ``slot`` and ``function``.
    """
    match = _PCI_RE.fullmatch(pci_address(value))
    assert match is not None
    return {k: int(v, 16) for k, v in match.groupdict().items()}


def vlan(value: Any, field: str = 'vlan') -> int:
    """Validate an 802.1Q VLAN id (1-4094)."""
    return _int_range(value, field, 1, 4094)


def mtu(value: Any, field: str = 'mtu') -> int:
    """Validate an MTU (68-65535)."""
    return _int_range(value, field, 68, 65535)


def _int_range(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise _fail(field, value, 'must be an integer')
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int):
        raise _fail(field, value, 'must be an integer')
    if not low <= value <= high:
        raise _fail(field, value, 'must be between %d and %d' % (low, high))
    return value


def positive_int(value: Any, field: str, high: int = 2 ** 31 - 1) -> int:
    """Validate an integer from 1 to ``high``."""
    return _int_range(value, field, 1, high)


def macvtap_mode(value: Any, field: str = 'mode') -> str:
    """Validate a macvtap/macvlan mode."""
    value = _require_str(value, field)
    if value not in MACVTAP_MODES:
        raise _fail(field, value, 'must be one of %s' % ', '.join(
            MACVTAP_MODES))
    return value


def uuid(value: Any, field: str = 'uuid') -> str:
    """Validate a UUID; returns its canonical lower-case form."""
    value = _require_str(value, field)
    # NOTE(vpd): every record read back from the ledger holds two UUIDs;
    # a match is ~10x cheaper than building a uuid.UUID.
    if _CANONICAL_UUID_RE.fullmatch(value):
        return value
    try:
        return str(uuid_mod.UUID(value))
    except ValueError:
        raise _fail(field, value, 'is not a UUID') from None


def network_name(value: Any, field: str = 'network') -> str:
    """Validate a host network name (1-64 safe characters)."""
    value = _require_str(value, field)
    if not _NETWORK_NAME_RE.fullmatch(value):
        raise _fail(field, value,
                    '1-64 letters, digits, "_", "." or "-", starting with '
                    'a letter or digit')
    return value


def netns_name(value: Any, field: str = 'netns') -> str:
    """Validate a network namespace name (as under /run/netns)."""
    value = _require_str(value, field)
    if value in ('.', '..') or not _NETNS_RE.fullmatch(value):
        raise _fail(field, value,
                    '1-64 letters, digits, "_", "." or "-", starting with '
                    'a letter or digit')
    return value


def one_of(value: Any, field: str, allowed: tuple[str, ...]) -> str:
    """Validate that ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise _fail(field, value, 'must be one of %s' % ', '.join(allowed))
    return str(value)


def safe_text(value: Any, field: str, max_len: int = 255) -> str:
    """Validate printable text without control characters."""
    value = _require_str(value, field)
    if len(value) > max_len:
        raise _fail(field, value, 'longer than %d characters' % max_len)
    if _CONTROL_RE.search(value):
        raise _fail(field, value, 'contains control characters')
    return value
