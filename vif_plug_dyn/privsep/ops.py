"""Operations the privileged helper applies, as primitive dicts.

An operation is a plain ``dict`` with an ``op`` key naming what to do and
the fields that operation takes — only strings, integers, booleans, lists
and ``None``, so it crosses the oslo.privsep channel unchanged. The
builders here (:func:`create_tap`, :func:`set_master`, :func:`delete`...)
validate on the unprivileged side and return a :class:`CheckedOp`, which
the client does not check a second time; :func:`validate_op` runs the same
rules again inside the daemon, which must not trust its caller.

Ownership: every device an operation creates is marked with the interface
alias ``vif_plug_dyn`` or ``vif_plug_dyn:<tag>`` (see :func:`alias_for`).
Only marked devices may be deleted or reconfigured.

Adoption: a device the library did not create (an operator's NIC that a
host interface definition names) can be *adopted* with :func:`adopt`: its
alias becomes ``vif_plug_dyn.adopted:<tag>``, followed by ``#<digest>``
of the alias it had when it had one (:func:`adopted_alias`). An adopted
device may be configured like one of ours (:func:`set_link` except its
owner tag, addresses, bridge and bond settings) as far as the daemon's
policy allows (:mod:`.policy`), but never deleted; :func:`release` gives
it back, with the alias it had (the digest lets the daemon check it).

Link groups are the daemon's business: no operation takes one (see
:mod:`.batch`).

Every error message names a value cut down by :func:`.limits.shorten`:
the daemon never echoes an unbounded value.

Borrowing: a tap a hypervisor made for a guest (nova's ``tap`` VIF type)
can be *borrowed* with :func:`borrow` so that the library cables it: its
alias becomes ``vif_plug_dyn.borrowed:<tag>``, and only its master and
its up/down state may then change (:data:`BORROWED_OK`), to masters the
daemon's policy lets the library's devices join; it is never deleted,
and :func:`give_back` clears the marker again.
"""

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from vif_plug_dyn import exception
from vif_plug_dyn import validate
from vif_plug_dyn.privsep import addresses
from vif_plug_dyn.privsep import limits
from vif_plug_dyn.privsep.limits import shorten

#: Interface alias prefix marking a device as created by vif_plug_dyn.
ALIAS_PREFIX = 'vif_plug_dyn'
#: Interface alias prefix marking a device as adopted (configured, never
#: deleted) by vif_plug_dyn.
ADOPTED_PREFIX = 'vif_plug_dyn.adopted'
#: Interface alias prefix marking a hypervisor's tap the library borrowed
#: (cabled, never deleted or otherwise changed).
BORROWED_PREFIX = 'vif_plug_dyn.borrowed'
#: Longest interface alias the kernel keeps (IFALIASZ - 1).
MAX_ALIAS = 255
#: Longest bridge forward delay, in hundredths of a second.
MAX_FORWARD_DELAY = 3000
#: Most ARP targets a bond takes (kernel BOND_MAX_ARP_TARGETS).
MAX_ARP_TARGETS = 16
#: ``arp_validate`` values of a bond.
ARP_VALIDATE = ('none', 'active', 'backup', 'all')
#: Longest batch one privileged call accepts.
MAX_OPS = 100000
#: Bonding modes accepted by :func:`create_bond`, with their kernel values.
BOND_MODES = {'balance-rr': 0, 'active-backup': 1, 'balance-xor': 2,
              'broadcast': 3, '802.3ad': 4, 'balance-tlb': 5,
              'balance-alb': 6}
#: Queueing disciplines a redirect can hang its filters on.
REDIRECT_QDISCS = ('clsact', 'ingress')

# NOTE(vpd): the tag ends up in IFLA_IFALIAS (at most 255 bytes) and in
# log lines; a port UUID or a network name must fit, control characters
# and spaces must not.
_TAG_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,127}$')

_REQUIRED = object()
_TEXT = (str, bytes)
_MAX_TEXT = limits.MAX_TEXT

Validator = Callable[[Any, str], Any]


def _fail(field: str, value: Any, reason: str) -> exception.InvalidField:
    return exception.InvalidField(field=shorten(field, 128),
                                  value=shorten(value), reason=reason)


def check_tag(value: Any, field: str = 'tag') -> str:
    """Validate an owner tag (1-128 characters, no spaces or controls).

    :param value: the candidate tag.
    :param field: the field name reported on error.
    :returns: the tag.
    :raises InvalidField: not a string or with other characters than
        letters, digits, ``_ . : @ -``.
    """
    if not isinstance(value, str) or not _TAG_RE.fullmatch(value):
        raise _fail(field, value, '1-128 letters, digits, "_", ".", ":", '
                                  '"@" or "-", starting with a letter or '
                                  'digit')
    return value


def alias_for(owner_tag: str | None) -> str:
    """Return the interface alias marking a device as ours.

    :param owner_tag: an optional tag (already validated).
    :returns: ``vif_plug_dyn`` or ``vif_plug_dyn:<tag>``.
    """
    return ALIAS_PREFIX if owner_tag is None else '%s:%s' % (ALIAS_PREFIX,
                                                            owner_tag)


def parse_alias(alias: str | None) -> tuple[bool, str | None]:
    """Tell whether an interface alias marks a device as ours.

    :param alias: the device's IFLA_IFALIAS, or ``None``.
    :returns: ``(owned, tag)``; ``tag`` is ``None`` when untagged.
    """
    if alias == ALIAS_PREFIX:
        return True, None
    if alias and alias.startswith(ALIAS_PREFIX + ':'):
        return True, alias[len(ALIAS_PREFIX) + 1:]
    return False, None


def alias_digest(alias: str) -> str:
    """The digest of an alias an adoption marker carries (16 hex digits
    of its SHA-256)."""
    data = alias.encode('utf-8', 'surrogateescape')
    return hashlib.sha256(data).hexdigest()[:16]


def adopted_alias(tag: str, digest: str | None = None) -> str:
    """Return the interface alias marking a device as adopted.

    :param tag: the owner tag (already validated).
    :param digest: :func:`alias_digest` of the alias the device had
        before, if any.
    :returns: ``vif_plug_dyn.adopted:<tag>`` or
        ``vif_plug_dyn.adopted:<tag>#<digest>``.
    """
    marker = '%s:%s' % (ADOPTED_PREFIX, tag)
    return marker if not digest else '%s#%s' % (marker, digest)


def parse_adopted(alias: str | None) -> str | None:
    """Return the tag of an adoption marker, ``None`` for any other
    alias."""
    if alias and alias.startswith(ADOPTED_PREFIX + ':'):
        return alias[len(ADOPTED_PREFIX) + 1:].split('#', 1)[0] or None
    return None


def adopted_digest(alias: str | None) -> str | None:
    """Return the previous alias's digest an adoption marker carries
    (``None``: the device had no alias, or an earlier release adopted
    it)."""
    if parse_adopted(alias) is None:
        return None
    _tag, sep, digest = str(alias).partition('#')
    return digest if sep and digest else None


def borrowed_alias(tag: str) -> str:
    """Return the interface alias marking a tap as borrowed.

    :param tag: the owner tag (already validated; the port id).
    :returns: ``vif_plug_dyn.borrowed:<tag>``.
    """
    return '%s:%s' % (BORROWED_PREFIX, tag)


def parse_borrowed(alias: str | None) -> str | None:
    """Return the tag of a borrowing marker, ``None`` for any other
    alias."""
    if alias and alias.startswith(BORROWED_PREFIX + ':'):
        return alias[len(BORROWED_PREFIX) + 1:] or None
    return None


def _boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(field, value, 'must be true or false')
    return value


def _u32(value: Any, field: str, low: int = 0,
         high: int = 2 ** 32 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(field, value, 'must be an integer')
    if not low <= value <= high:
        raise _fail(field, value, 'must be between %d and %d' % (low, high))
    return value


def _mtu(value: Any, field: str) -> int:
    # NOTE(vpd): validate.mtu also reads "1500" (XML attributes are text);
    # across the privileged boundary a number must be a number.
    if isinstance(value, str):
        raise _fail(field, value, 'must be an integer')
    return validate.mtu(value, field)


def _vlan_id(value: Any, field: str) -> int:
    if isinstance(value, str):
        raise _fail(field, value, 'must be an integer')
    return validate.vlan(value, field)


def _uid(value: Any, field: str) -> int:
    # NOTE(vpd): (uid_t)-1 means "no owner" to the kernel; refuse it.
    return _u32(value, field, 0, 2 ** 32 - 2)


def _vf_index(value: Any, field: str) -> int:
    return _u32(value, field, 0, 65535)


def _vf_vlan(value: Any, field: str) -> int:
    # NOTE(vpd): 0 clears the VF's VLAN; otherwise an 802.1Q id.
    if value == 0 and not isinstance(value, bool):
        return 0
    return _vlan_id(value, field)


def _vf_qos(value: Any, field: str) -> int:
    return _u32(value, field, 0, 7)


def _vf_mac(value: Any, field: str) -> str:
    # NOTE(vpd): the all-zero address is how a VF's MAC is cleared.
    if isinstance(value, str) and value == '00:00:00:00:00:00':
        return value
    return validate.mac(value, field)


def _ifindex(value: Any, field: str) -> int:
    return _u32(value, field, 1, 2 ** 31 - 1)


def _miimon(value: Any, field: str) -> int:
    return _u32(value, field, 0, 60000)


def _bond_mode(value: Any, field: str) -> str:
    return validate.one_of(value, field, tuple(BOND_MODES))


def _redirect_qdisc(value: Any, field: str) -> str:
    return validate.one_of(value, field, REDIRECT_QDISCS)


def _forward_delay(value: Any, field: str) -> int:
    return _u32(value, field, 0, MAX_FORWARD_DELAY)


def _arp_targets(value: Any, field: str) -> list[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value,
                                                         (list, tuple)):
        raise _fail(field, value, 'must be a list of IPv4 addresses')
    if len(value) > MAX_ARP_TARGETS:
        raise _fail(field, value, 'at most %d targets' % MAX_ARP_TARGETS)
    out = []
    for i, item in enumerate(value):
        address = addresses.parse_ip(item, '%s[%d]' % (field, i))
        if address.version != 4:
            raise _fail('%s[%d]' % (field, i), item, 'must be IPv4')
        out.append(str(address))
    return out


def _arp_validate(value: Any, field: str) -> str:
    return validate.one_of(value, field, ARP_VALIDATE)


def _restored_alias(value: Any, field: str) -> str:
    # NOTE(vpd): release() puts back the alias an operator had; it must
    # not smuggle an ownership marker onto a device we did not create
    # (that would make it deletable).
    text = validate.safe_text(value, field, MAX_ALIAS)
    if len(text.encode('utf-8')) > MAX_ALIAS:
        raise _fail(field, value, 'longer than %d bytes' % MAX_ALIAS)
    if text.startswith(ALIAS_PREFIX):
        raise _fail(field, value, 'must not be a vif_plug_dyn marker')
    return text


def _ifnames(value: Any, field: str) -> list[str]:
    if isinstance(value, (str, bytes)) or not isinstance(
            value, (list, tuple)):
        raise _fail(field, value, 'must be a list of interface names')
    if not value:
        raise _fail(field, value, 'must not be empty')
    if len(value) > MAX_OPS:
        raise _fail(field, '<%d names>' % len(value),
                    'more than %d names' % MAX_OPS)
    for i, item in enumerate(value):
        if limits.too_long(item):
            raise _fail('%s[%d]' % (field, i), item, 'not an interface name')
    names = [validate.ifname(v, '%s[%d]' % (field, i))
             for i, v in enumerate(value)]
    if len(set(names)) != len(names):
        raise _fail(field, value, 'names must be unique')
    return names


_DEVICE_FIELDS: dict[str, tuple[Validator, Any]] = {
    'name': (validate.ifname, _REQUIRED),
    'mtu': (_mtu, None),
    'mac': (validate.mac, None),
    'up': (_boolean, True),
    'tag': (check_tag, None),
}
_LOWER_FIELDS: dict[str, tuple[Validator, Any]] = {
    'lower': (validate.ifname, _REQUIRED),
}
_BOND_OPTIONS: dict[str, tuple[Validator, Any]] = {
    'miimon': (_miimon, None),
    'updelay': (_u32, None),
    'downdelay': (_u32, None),
    'use_carrier': (_boolean, None),
    'arp_interval': (_u32, None),
    'arp_targets': (_arp_targets, None),
    'arp_validate': (_arp_validate, None),
}
_ADDRESS_FIELDS: dict[str, tuple[Validator, Any]] = {
    'name': (validate.ifname, _REQUIRED),
    'address': (addresses.check_ip, _REQUIRED),
    'prefix': (addresses.check_prefix, None),
    'peer': (addresses.check_ip, None),
}

#: Every operation: its fields, each with a validator and a default
#: (``_REQUIRED`` when the field must be given).
SCHEMAS: dict[str, dict[str, tuple[Validator, Any]]] = {
    'create_bridge': {**_DEVICE_FIELDS,
                      'stp': (_boolean, False),
                      'forward_delay': (_forward_delay, 0),
                      'index': (_ifindex, None)},
    'create_tap': {**_DEVICE_FIELDS,
                   'master': (validate.ifname, None),
                   'owner': (_uid, None),
                   'owner_group': (_uid, None),
                   'multi_queue': (_boolean, False)},
    'create_veth': {**_DEVICE_FIELDS,
                    'peer': (validate.ifname, _REQUIRED),
                    'peer_mac': (validate.mac, None),
                    'master': (validate.ifname, None),
                    'peer_master': (validate.ifname, None)},
    'create_macvtap': {**_DEVICE_FIELDS, **_LOWER_FIELDS,
                       'mode': (validate.macvtap_mode, 'bridge'),
                       'index': (_ifindex, None)},
    'create_macvlan': {**_DEVICE_FIELDS, **_LOWER_FIELDS,
                       'mode': (validate.macvtap_mode, 'bridge')},
    'create_vlan': {**_DEVICE_FIELDS, **_LOWER_FIELDS,
                    'vlan_id': (_vlan_id, _REQUIRED),
                    'index': (_ifindex, None)},
    'create_bond': {**_DEVICE_FIELDS, **_BOND_OPTIONS,
                    'mode': (_bond_mode, 'active-backup'),
                    'index': (_ifindex, None)},
    'set_link': {'name': (validate.ifname, _REQUIRED),
                 'up': (_boolean, None),
                 'mtu': (_mtu, None),
                 'mac': (validate.mac, None),
                 'master': (validate.ifname, None),
                 'nomaster': (_boolean, False),
                 'tag': (check_tag, None)},
    'delete': {'names': (_ifnames, _REQUIRED),
               'missing_ok': (_boolean, True)},
    'set_bridge': {'name': (validate.ifname, _REQUIRED),
                   'stp': (_boolean, None),
                   'forward_delay': (_forward_delay, None)},
    'set_bond': {'name': (validate.ifname, _REQUIRED),
                 'mode': (_bond_mode, None),
                 'primary': (validate.ifname, None),
                 **_BOND_OPTIONS},
    'adopt': {'name': (validate.ifname, _REQUIRED),
              'tag': (check_tag, _REQUIRED)},
    'release': {'name': (validate.ifname, _REQUIRED),
                'alias': (_restored_alias, None)},
    'borrow': {'name': (validate.ifname, _REQUIRED),
               'tag': (check_tag, _REQUIRED)},
    'give_back': {'name': (validate.ifname, _REQUIRED),
                  'missing_ok': (_boolean, True)},
    'add_address': {**_ADDRESS_FIELDS,
                    'broadcast': (addresses.check_ip, None),
                    'label': (addresses.check_label, None),
                    'scope': (addresses.check_scope, None),
                    'flags': (addresses.check_flags, None),
                    'valid_lft': (addresses.check_lifetime, None),
                    'preferred_lft': (addresses.check_lifetime, None),
                    'proto': (addresses.check_u8, None),
                    'metric': (addresses.check_metric, None)},
    'del_address': {**_ADDRESS_FIELDS,
                    'missing_ok': (_boolean, True)},
    'redirect': {'name': (validate.ifname, _REQUIRED),
                 'peer': (validate.ifname, _REQUIRED),
                 'qdisc': (_redirect_qdisc, 'clsact')},
    'unredirect': {'name': (validate.ifname, _REQUIRED),
                   'peer': (validate.ifname, _REQUIRED),
                   'qdisc': (_redirect_qdisc, 'clsact')},
    'set_vf': {'pf': (validate.ifname, _REQUIRED),
               'vf': (_vf_index, _REQUIRED),
               'mac': (_vf_mac, None),
               'vlan': (_vf_vlan, None),
               'qos': (_vf_qos, None),
               'trust': (_boolean, None),
               'spoofchk': (_boolean, None)},
}

#: Operations that create a device named by their ``name`` field.
CREATE_OPS = frozenset(k for k in SCHEMAS if k.startswith('create_'))
#: Operations allowed on a device the library adopted (see the module
#: docstring); all others need a device it created.
ADOPTED_OK = frozenset({'set_link', 'set_bridge', 'set_bond', 'adopt',
                        'release', 'add_address', 'del_address'})
#: What :func:`set_link` may change on a borrowed tap: the cable (its
#: master) and its up/down state, nothing else.
BORROWED_OK = frozenset({'master', 'nomaster', 'up'})


class CheckedOp(dict[str, Any]):
    """An operation :func:`validate_op` returned: normalised and valid.

    NOTE(vpd): a batch of 1000 taps was checked three times (by each
    builder, again before sending, again in the daemon); the client now
    skips operations it has already checked. Changing one afterwards only
    loses the early error: the daemon, which trusts nothing it receives
    (a plain dict once unpacked), still refuses it with the same
    :class:`~vif_plug_dyn.exception.InvalidField`.
    """


def validate_op(op: Any, field: str = 'op') -> dict[str, Any]:
    """Check one operation and return it normalised, defaults filled in.

    :param op: the candidate operation (a mapping with an ``op`` key).
    :param field: how to name the operation in errors (``ops[3]``...).
    :returns: a new dict with every field of that operation.
    :raises InvalidField: unknown operation, unknown or missing field, or
        a field value its validator refuses.
    """
    if not isinstance(op, Mapping):
        raise _fail(field, op, 'an operation must be a dict')
    kind = op.get('op')
    schema = SCHEMAS.get(kind) if isinstance(kind, str) else None
    if schema is None:
        raise _fail(field + '.op', kind, 'unknown operation; expected one '
                                        'of %s' % ', '.join(sorted(SCHEMAS)))
    unknown = [k for k in op if k != 'op' and k not in schema]
    if unknown:
        shown = sorted(str(shorten(k, 32)) for k in unknown[:5])
        raise _fail(field, kind, 'unknown field(s) %s%s' % (
            ', '.join(shown), '' if len(unknown) <= 5 else
            ' and %d more' % (len(unknown) - 5)))
    out: dict[str, Any] = {'op': kind}
    for name, (check, default) in schema.items():
        value = op.get(name)
        if value is None:
            if default is _REQUIRED:
                raise _fail('%s.%s' % (field, name), None,
                            'is required by %s' % kind)
            out[name] = default
            continue
        # NOTE(vpd): inline (a function call per field cost 2 ms per
        # 1000 taps): refuse oversized text before a validator repeats it.
        if value.__class__ in _TEXT and len(value) > _MAX_TEXT:
            raise _fail('%s.%s' % (field, name), value,
                        'longer than %d characters' % _MAX_TEXT)
        try:
            out[name] = check(value, name)
        except exception.InvalidField as exc:
            # NOTE(vpd): the full field path is only built on error: a
            # batch of 1000 taps is validated twice per call.
            raise _fail('%s.%s' % (field, exc.kwargs.get('field', name)),
                        exc.kwargs.get('value', value),
                        exc.kwargs.get('reason', str(exc)))
    _check_relations(out, field)
    return CheckedOp(out)


def _check_relations(op: dict[str, Any], field: str) -> None:
    kind = op['op']
    if kind == 'set_link':
        if op['master'] is not None and op['nomaster']:
            raise _fail(field + '.nomaster', True,
                        'cannot be combined with master')
        changes = ('up', 'mtu', 'mac', 'master', 'tag')
        if not op['nomaster'] and all(op[k] is None for k in changes):
            raise _fail(field, kind, 'changes nothing')
    if kind in ('create_veth', 'redirect', 'unredirect') and \
            op['peer'] == op['name']:
        raise _fail(field + '.peer', op['peer'], 'must differ from name')
    if kind == 'create_veth' and op['peer_master'] is not None and \
            op['peer_master'] in (op['name'], op['peer']):
        raise _fail(field + '.peer_master', op['peer_master'],
                    'must be another device')
    if kind in CREATE_OPS and op.get('master') == op['name']:
        raise _fail(field + '.master', op['master'], 'must be another '
                                                    'device')
    if kind in CREATE_OPS and op.get('lower') == op['name']:
        raise _fail(field + '.lower', op['lower'], 'must be another device')
    if kind == 'set_link' and op['master'] == op['name']:
        raise _fail(field + '.master', op['master'], 'must be another '
                                                    'device')
    if kind == 'set_vf' and all(op[k] is None for k in (
            'mac', 'vlan', 'qos', 'trust', 'spoofchk')):
        raise _fail(field, kind, 'changes nothing')
    if kind == 'set_vf' and op['qos'] is not None and op['vlan'] is None:
        raise _fail(field + '.qos', op['qos'], 'needs vlan')
    if kind in ('set_bridge', 'set_bond') and all(
            op[k] is None for k in op if k not in ('op', 'name')):
        raise _fail(field, kind, 'changes nothing')
    if kind == 'set_bond' and op['primary'] == op['name']:
        raise _fail(field + '.primary', op['primary'],
                    'must be a slave of the bond')
    if kind in ('add_address', 'del_address'):
        addresses.check_relations(op, field)


def validate_batch(ops: Any) -> list[dict[str, Any]]:
    """Check a whole batch; nothing is applied when one operation is bad.

    :param ops: a list of operations.
    :returns: the normalised operations.
    :raises InvalidField: not a list, empty, too long, or one operation
        invalid (the field names its index, e.g. ``ops[3].mtu``).
    """
    if isinstance(ops, (str, bytes, Mapping)) or not isinstance(
            ops, (list, tuple)):
        raise _fail('ops', ops, 'must be a list of operations')
    if not ops:
        raise _fail('ops', ops, 'must not be empty')
    if len(ops) > MAX_OPS:
        raise _fail('ops', '<%d operations>' % len(ops),
                    'more than %d operations' % MAX_OPS)
    return [op if type(op) is CheckedOp else validate_op(op, 'ops[%d]' % i)
            for i, op in enumerate(ops)]


# --- builders ---------------------------------------------------------------

def _build(kind: str, **fields: Any) -> dict[str, Any]:
    return validate_op(dict(fields, op=kind))


def create_bridge(name: str, *, mtu: int | None = None,
                  mac: str | None = None, up: bool = True,
                  tag: str | None = None,
                  stp: bool = False, forward_delay: int = 0,
                  index: int | None = None) -> dict[str, Any]:
    """A Linux bridge, by default with forward delay 0 and STP off.

    :param name: the bridge's name.
    :param mtu: its MTU (kernel default when ``None``).
    :param mac: its MAC address.
    :param up: bring it up.
    :param tag: owner tag written into its alias.
    :param stp: run the kernel's spanning tree.
    :param forward_delay: in hundredths of a second (0-3000).
    :param index: the ifindex to give it; the kernel picks one when
        ``None``.
    :raises InvalidField: a bad value.
    """
    return _build('create_bridge', name=name, mtu=mtu, mac=mac, up=up,
                  tag=tag, stp=stp,
                  forward_delay=forward_delay, index=index)


def create_tap(name: str, *, mtu: int | None = None, mac: str | None = None,
               master: str | None = None, up: bool = True,
               tag: str | None = None,
               owner: int | None = None, owner_group: int | None = None,
               multi_queue: bool = False) -> dict[str, Any]:
    """A persistent tap device, optionally enslaved to ``master``.

    :param name: the tap's name.
    :param mtu: its MTU.
    :param mac: its MAC address.
    :param master: a bridge (ours or an operator's) to enslave it to.
    :param up: bring it up.
    :param tag: owner tag written into its alias.
    :param owner: the user id allowed to open it (like ``ip tuntap ...
        user``).
    :param owner_group: the group id allowed to open it.
    :param multi_queue: create it with IFF_MULTI_QUEUE.
    :raises InvalidField: a bad value.
    """
    return _build('create_tap', name=name, mtu=mtu, mac=mac, master=master,
                  up=up, tag=tag, owner=owner,
                  owner_group=owner_group, multi_queue=multi_queue)


def create_veth(name: str, peer: str, *, mtu: int | None = None,
                mac: str | None = None, peer_mac: str | None = None,
                master: str | None = None, peer_master: str | None = None,
                up: bool = True, tag: str | None = None
                ) -> dict[str, Any]:
    """A veth pair; both ends are marked as ours.

    :param name: the first end.
    :param peer: the second end.
    :param master: a bridge for the first end.
    :param peer_master: a bridge for the second end.
    :raises InvalidField: a bad value.
    """
    return _build('create_veth', name=name, peer=peer, mtu=mtu, mac=mac,
                  peer_mac=peer_mac, master=master, peer_master=peer_master,
                  up=up, tag=tag)


def create_macvtap(name: str, lower: str, *, mode: str = 'bridge',
                   mtu: int | None = None, mac: str | None = None,
                   up: bool = True, tag: str | None = None,
                   index: int | None = None) -> dict[str, Any]:
    """A macvtap on ``lower``; its ``/dev/tapN`` node is made if missing.

    :param mode: ``vepa``, ``bridge``, ``private`` or ``passthrough``.
    :param index: the ifindex to give it (N in ``/dev/tapN``); the kernel
        picks one when ``None``.
    :raises InvalidField: a bad value.
    """
    return _build('create_macvtap', name=name, lower=lower, mode=mode,
                  mtu=mtu, mac=mac, up=up, tag=tag,
                  index=index)


def create_macvlan(name: str, lower: str, *, mode: str = 'bridge',
                   mtu: int | None = None, mac: str | None = None,
                   up: bool = True, tag: str | None = None
                   ) -> dict[str, Any]:
    """A macvlan on ``lower``.

    :param mode: ``vepa``, ``bridge``, ``private`` or ``passthrough``.
    :raises InvalidField: a bad value.
    """
    return _build('create_macvlan', name=name, lower=lower, mode=mode,
                  mtu=mtu, mac=mac, up=up, tag=tag)


def create_vlan(name: str, lower: str, vlan_id: int, *,
                mtu: int | None = None, mac: str | None = None,
                up: bool = True, tag: str | None = None,
                index: int | None = None) -> dict[str, Any]:
    """An 802.1Q VLAN device on ``lower``.

    :param index: the ifindex to give it; the kernel picks one when
        ``None``.
    :raises InvalidField: a bad value.
    """
    return _build('create_vlan', name=name, lower=lower, vlan_id=vlan_id,
                  mtu=mtu, mac=mac, up=up, tag=tag,
                  index=index)


def create_bond(name: str, *, mode: str = 'active-backup',
                miimon: int | None = None, mtu: int | None = None,
                mac: str | None = None, up: bool = True,
                tag: str | None = None,
                index: int | None = None,
                **options: Any) -> dict[str, Any]:
    """A bonding device.

    :param mode: one of :data:`BOND_MODES`.
    :param miimon: link monitoring interval in milliseconds.
    :param index: the ifindex to give it; the kernel picks one when
        ``None``.
    :param options: ``updelay``, ``downdelay`` (milliseconds),
        ``use_carrier`` (bool), ``arp_interval`` (milliseconds),
        ``arp_targets`` (IPv4 addresses), ``arp_validate`` (one of
        :data:`ARP_VALIDATE`).
    :raises InvalidField: a bad value or an unknown option.
    """
    return _build('create_bond', name=name, mode=mode, miimon=miimon,
                  mtu=mtu, mac=mac, up=up, tag=tag,
                  index=index, **options)


def set_bridge(name: str, *, stp: bool | None = None,
               forward_delay: int | None = None) -> dict[str, Any]:
    """Change a bridge's spanning tree state and forward delay.

    :param name: a bridge the library created or adopted.
    :param stp: spanning tree on or off.
    :param forward_delay: in hundredths of a second (0-3000).
    :raises InvalidField: a bad value, or nothing to change.
    """
    return _build('set_bridge', name=name, stp=stp,
                  forward_delay=forward_delay)


def set_bond(name: str, *, mode: str | None = None,
             primary: str | None = None, **options: Any) -> dict[str, Any]:
    """Change settings of a bond the library created or adopted.

    The kernel only changes the mode of a bond that is down and has no
    slaves; ``primary`` must be one of its slaves.

    :param options: as for :func:`create_bond`.
    :raises InvalidField: a bad value, or nothing to change.
    """
    return _build('set_bond', name=name, mode=mode, primary=primary,
                  **options)


def adopt(name: str, tag: str) -> dict[str, Any]:
    """Mark a device the library did not create as managed by it.

    The device's alias becomes ``vif_plug_dyn.adopted:<tag>``; the
    result carries ``previous_alias``. Re-adopting (a new tag) is fine; a
    device the library created cannot be adopted.

    :raises InvalidField: a bad name or tag.
    """
    return _build('adopt', name=name, tag=tag)


def release(name: str, alias: str | None = None) -> dict[str, Any]:
    """Give an adopted device back: its alias becomes ``alias`` (the one
    it had before adoption), or none.

    :raises InvalidField: a bad name, or an alias that is itself a
        vif_plug_dyn marker.
    """
    return _build('release', name=name, alias=alias)


def borrow(name: str, tag: str) -> dict[str, Any]:
    """Borrow a tap a hypervisor made, to cable it (see the module
    docstring).

    The daemon checks that it is a tap (rtnl kind ``tun`` with a MAC
    address) that the library neither created nor adopted, and that it
    carries no alias but a borrowing marker (borrowing again, under a new
    tag, is fine). Its alias becomes ``vif_plug_dyn.borrowed:<tag>``.

    :param name: the tap.
    :param tag: the owner tag (the port id).
    :raises InvalidField: a bad name or tag.
    """
    return _build('borrow', name=name, tag=tag)


def give_back(name: str, missing_ok: bool = True) -> dict[str, Any]:
    """Give a borrowed tap back to its maker: its alias is cleared (a tap
    is only borrowed when it has none). Its master and state are left as
    they are: take it off the bridge first (:func:`set_nomaster`).

    :param missing_ok: a tap already gone (its maker deleted it) is not
        an error.
    :raises InvalidField: a bad name.
    """
    return _build('give_back', name=name, missing_ok=missing_ok)


def add_address(name: str, address: str, prefix: int | None = None, *,
                peer: str | None = None, broadcast: str | None = None,
                label: str | None = None, scope: int | str | None = None,
                flags: list[str] | None = None,
                valid_lft: int | None = None,
                preferred_lft: int | None = None, proto: int | None = None,
                metric: int | None = None) -> dict[str, Any]:
    """Add an IPv4 or IPv6 address to a device the library created or
    adopted (see :mod:`.addresses` for the fields).

    :param prefix: the prefix length; a host prefix (/32, /128) when
        ``None``.
    :param flags: some of :data:`.addresses.SETTABLE_FLAGS`.
    :param valid_lft: seconds, ``None`` for forever.
    :raises InvalidField: a bad value or mixed families.
    """
    return _build('add_address', name=name, address=address, prefix=prefix,
                  peer=peer, broadcast=broadcast, label=label, scope=scope,
                  flags=flags, valid_lft=valid_lft,
                  preferred_lft=preferred_lft, proto=proto, metric=metric)


def del_address(name: str, address: str, prefix: int | None = None, *,
                peer: str | None = None,
                missing_ok: bool = True) -> dict[str, Any]:
    """Remove an address from a device the library created or adopted.

    :param missing_ok: an address already gone is not an error.
    :raises InvalidField: a bad value.
    """
    return _build('del_address', name=name, address=address, prefix=prefix,
                  peer=peer, missing_ok=missing_ok)


def set_link(name: str, *, up: bool | None = None, mtu: int | None = None,
             mac: str | None = None, master: str | None = None,
             nomaster: bool = False,
             tag: str | None = None) -> dict[str, Any]:
    """Change attributes of a device we own, in one netlink request.

    :param up: bring it up (``True``) or down (``False``).
    :param master: a bridge to enslave it to (an operator's is fine).
    :param nomaster: release it from its master.
    :param tag: rewrite its owner tag.
    :raises InvalidField: a bad value, or nothing to change.
    """
    return _build('set_link', name=name, up=up, mtu=mtu, mac=mac,
                  master=master, nomaster=nomaster, tag=tag)


def set_state(name: str, up: bool) -> dict[str, Any]:
    """Bring a device we own up or down."""
    return set_link(name, up=up)


def set_mtu(name: str, mtu: int) -> dict[str, Any]:
    """Set the MTU of a device we own."""
    return set_link(name, mtu=mtu)


def set_mac(name: str, mac: str) -> dict[str, Any]:
    """Set the MAC address of a device we own."""
    return set_link(name, mac=mac)


def set_master(name: str, master: str) -> dict[str, Any]:
    """Enslave a device we own to ``master`` (ours or an operator's)."""
    return set_link(name, master=master)


def set_nomaster(name: str) -> dict[str, Any]:
    """Release a device we own from its master."""
    return set_link(name, nomaster=True)


def set_alias(name: str, tag: str) -> dict[str, Any]:
    """Rewrite the owner tag in the alias of a device we own."""
    return set_link(name, tag=tag)


def delete(names: Iterable[str] | str,
           missing_ok: bool = True) -> dict[str, Any]:
    """Delete devices we own, all together (one link-group delete).

    :param names: one name or several.
    :param missing_ok: a device already gone is not an error.
    :raises InvalidField: a bad or repeated name.
    """
    if isinstance(names, str):
        listed: Any = [names]
    elif isinstance(names, (list, tuple, set, frozenset)):
        listed = list(names)
    else:
        # NOTE(vpd): the validator names what is wrong; list() of an
        # arbitrary object could raise anything, or loop for ever.
        listed = names
    return _build('delete', names=listed, missing_ok=missing_ok)


def redirect(name: str, peer: str, qdisc: str = 'clsact') -> dict[str, Any]:
    """Steer every frame between two devices we own, both directions.

    Each device gets a ``qdisc`` (clsact or ingress) and a u32 match-all
    filter on its ingress with a mirred egress redirect to the other; an
    existing qdisc of ours on them is replaced.

    :raises InvalidField: a bad value.
    """
    return _build('redirect', name=name, peer=peer, qdisc=qdisc)


def unredirect(name: str, peer: str,
               qdisc: str = 'clsact') -> dict[str, Any]:
    """Remove what :func:`redirect` set up (gone is fine)."""
    return _build('unredirect', name=name, peer=peer, qdisc=qdisc)


def set_vf(pf: str, vf: int, *, mac: str | None = None,
           vlan: int | None = None, qos: int | None = None,
           trust: bool | None = None,
           spoofchk: bool | None = None) -> dict[str, Any]:
    """Configure an SR-IOV virtual function through its physical function.

    The PF is the operator's; only the VF's settings change.

    :param vlan: VLAN id, 0 to clear.
    :param mac: MAC address, all zeros to clear.
    :raises InvalidField: a bad value, or nothing to change.
    """
    return _build('set_vf', pf=pf, vf=vf, mac=mac, vlan=vlan, qos=qos,
                  trust=trust, spoofchk=spoofchk)


# --- results ----------------------------------------------------------------

#: Result statuses: applied; refused or failed; not attempted (an earlier
#: operation failed in a stop-at-first-error batch); applied then undone.
OK, ERROR, SKIPPED, ROLLED_BACK = 'ok', 'error', 'skipped', 'rolled_back'


def error_from_result(result: Mapping[str, Any]
                      ) -> exception.VifPlugDynException | None:
    """Rebuild the typed exception a failed operation reported.

    :param result: one entry of what a batch returned.
    :returns: the exception (not raised), or ``None`` when the operation
        did not fail.
    """
    err = result.get('error')
    if not err:
        return None
    cls = getattr(exception, str(err.get('type')), None)
    if not (isinstance(cls, type) and
            issubclass(cls, exception.VifPlugDynException)):
        cls = exception.VifPlugDynException
    return cls(err.get('message'), dict(err.get('kwargs') or {}))
