"""Plan putting links and addresses back as a snapshot had them.

Pure functions over two :class:`~vif_plug_dyn.hostif.state.HostState`:
the snapshot and the host now. What is restored is limited to:

* the devices a host interface definition created or adopted, in the
  snapshot or now (:meth:`HostState.hostif_names`) — every attribute the
  library manages: existence, MTU, MAC, bridge and bond settings,
  master, up/down, addresses and the marker (alias) — not the link group,
  which is the privileged helper's own bookkeeping;
* the membership of other devices in those (a VM's tap in a bridge a
  definition created) — only their master, and only when the helper may
  change them (devices the library created or adopted);
* the MTU of devices stacked on those (a VLAN or macvlan follows its
  lower device's MTU down, not back up) — again only when the helper may
  change them; otherwise it is reported.

Addresses from IPv6 autoconfiguration
(:func:`~vif_plug_dyn.hostif.state.autoconfigured`) are left to the
kernel and the network; every other address is put back, link-local ones
included (which one a device has depends on its history).

Nothing else on the host is touched: taps and bridges of the drivers,
devices of other tools, and operator devices no definition names keep
whatever happened to them since the snapshot.

Restoring runs in three phases, each one batch, because the kernel
changes things as a side effect and the next phase must see them:

1. :func:`plan_structure` — re-adopt what was adopted, delete devices
   created since, recreate devices deleted since (with their old
   interface index), MTU, bridge/bond settings, memberships;
2. :func:`plan_state` — MAC addresses (a bridge's own MAC follows its
   ports unless set, so only after membership), then up/down;
3. :func:`plan_finish` — addresses (bringing a device down drops its IPv6
   addresses, up adds a link-local one: so only now), then markers
   (releasing adoptions made since, last, because configuring needs
   them).

:func:`differences` compares what was restored with the snapshot.
"""

import dataclasses
from collections.abc import Iterable
from typing import Any

from vif_plug_dyn.hostif import state as state_mod
from vif_plug_dyn.hostif import stp as stp_mod
from vif_plug_dyn.privsep import addresses as addr_mod
from vif_plug_dyn.privsep import ops

State = state_mod.HostState
Op = dict[str, Any]

#: Kernel kinds the library creates for definitions, and can recreate.
RECREATABLE = ('bridge', 'bond', 'vlan')
_BOND_KEYS = ('miimon', 'updelay', 'downdelay', 'use_carrier',
              'arp_interval', 'arp_targets', 'arp_validate')


@dataclasses.dataclass
class Phase:
    """One restore batch and what it could not do.

    :ivar ops: helper operations (applied best effort).
    :ivar unrestorable: one sentence per thing that cannot be put back.
    """

    ops: list[Op] = dataclasses.field(default_factory=list)
    unrestorable: list[str] = dataclasses.field(default_factory=list)


def scope(snapshot: State, current: State) -> tuple[set[str], set[str]]:
    """The devices a restore may change.

    :returns: ``(managed, members)``: devices of host interface
        definitions (snapshot or now), and other devices whose master is
        one of them (snapshot or now).
    """
    managed = snapshot.hostif_names() | current.hostif_names()
    members = set()
    for name in set(snapshot.links) | set(current.links):
        if name in managed:
            continue
        if snapshot.master_of(name) in managed or \
                current.master_of(name) in managed:
            members.add(name)
    return managed, members


def uppers(snapshot: State, current: State, managed: set[str]) -> set[str]:
    """Devices stacked on managed ones, in both states (same device)."""
    return {n for n in snapshot.uppers(managed) & current.uppers(managed)
            if _same(snapshot, current, n)}


def _same(snapshot: State, current: State, name: str) -> bool:
    """Whether a name is the same device in both (same index)."""
    old, new = snapshot.get(name), current.get(name)
    return old is not None and new is not None and \
        old['index'] == new['index']


def _created_by_hostif(link: dict[str, Any] | None) -> bool:
    return link is not None and \
        state_mod.marker(link)[0] == state_mod.CREATED


def _levels(snapshot: State, names: Iterable[str]) -> list[str]:
    """Order names lower devices first: a VLAN after its parent, a master
    after its members (as the snapshot had them)."""
    names = set(names)
    depth: dict[str, int] = {}

    def level(name: str, trail: frozenset[str]) -> int:
        if name in depth:
            return depth[name]
        below = [m['name'] for m in snapshot.members(name)]
        lower = snapshot.lower_of(name)
        if lower is not None:
            below.append(lower)
        below = [b for b in below if b not in trail]
        value = 1 + max((level(b, trail | {name}) for b in below),
                        default=-1)
        depth[name] = value
        return value

    return sorted(names, key=lambda n: (level(n, frozenset({n})), n))


# --- phase 1 -----------------------------------------------------------------

def plan_structure(snapshot: State, current: State) -> Phase:
    """Adoption, existence, MTU, bridge/bond settings and
    membership (see the module docstring)."""
    managed, members = scope(snapshot, current)
    phase = Phase()
    readopt = _readopt(snapshot, current, managed)
    gone = sorted(n for n in managed if _created_by_hostif(current.get(n))
                  and not _same(snapshot, current, n))
    if gone:
        phase.ops.append(ops.delete(gone))
    recreated = _recreate(snapshot, current, managed, gone, phase)
    phase.ops[:0] = readopt
    stacked = uppers(snapshot, current, managed)
    for name in _levels(snapshot, (managed | members | stacked) & set(
            snapshot.links)):
        if name in stacked:
            phase.ops.extend(_upper_mtu(snapshot, current, name, phase))
            continue
        if name not in recreated and not _same(snapshot, current, name):
            if name in managed and snapshot.links[name].get('adopted') \
                    and name not in current.links:
                phase.unrestorable.append(
                    'adopted device %s no longer exists; the library '
                    'never creates such a device' % name)
            continue
        if name in managed and name not in recreated:
            phase.ops.extend(_attributes(snapshot, current, name))
        phase.ops.extend(_master(snapshot, current, name, gone, recreated,
                                 managed, phase))
    return phase


def _readopt(snapshot: State, current: State,
             managed: set[str]) -> list[Op]:
    out = []
    for name in sorted(managed):
        old = snapshot.get(name)
        if old is None or not _same(snapshot, current, name):
            continue
        role, _owner = state_mod.marker(old)
        new = current.links[name]
        if role == state_mod.ADOPTED and old.get('adopted_tag') and \
                new.get('alias') != old.get('alias') and \
                not new.get('owned'):
            out.append(ops.adopt(name, old['adopted_tag']))
    return out


def _recreate(snapshot: State, current: State, managed: set[str],
              gone: list[str], phase: Phase) -> set[str]:
    missing = [n for n in managed
               if _created_by_hostif(snapshot.get(n)) and
               (n not in current.links or n in gone)]
    used = {link['index'] for name, link in current.links.items()
            if name not in gone}
    made: set[str] = set()
    for name in _levels(snapshot, missing):
        link = snapshot.links[name]
        if link['kind'] not in RECREATABLE:
            phase.unrestorable.append(
                'device %s (kind %s) was deleted and cannot be recreated'
                % (name, link['kind']))
            continue
        index = None if link['index'] in used else link['index']
        op = _create(snapshot, name, index)
        if op is None:
            phase.unrestorable.append(
                'VLAN %s cannot be recreated: its parent is gone' % name)
            continue
        phase.ops.append(op)
        made.add(name)
    return made


def _create(snapshot: State, name: str, index: int | None) -> Op | None:
    link = snapshot.links[name]
    data = link.get('data') or {}
    common: dict[str, Any] = dict(
        mtu=link['mtu'], mac=link['mac'], up=False, tag=link['tag'],
        index=index)
    if link['kind'] == 'bridge':
        return ops.create_bridge(
            name, stp=bool(data.get('stp_state')),
            forward_delay=data.get('forward_delay') or 0, **common)
    if link['kind'] == 'bond':
        mode = {v: k for k, v in ops.BOND_MODES.items()}.get(
            data.get('mode', 0), 'balance-rr')
        return ops.create_bond(name, mode=mode, **common,
                               **_bond_options(data))
    lower = snapshot.lower_of(name)
    if lower is None or data.get('vlan_id') is None:
        return None
    return ops.create_vlan(name, lower, data['vlan_id'], **common)


def _bond_options(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _BOND_KEYS:
        value = data.get(key)
        if value is None:
            continue
        if key == 'use_carrier':
            value = bool(value)
        elif key == 'arp_validate':
            value = ops.ARP_VALIDATE[value] if value < len(
                ops.ARP_VALIDATE) else None
        if value is not None:
            out[key] = value
    return out


def _attributes(snapshot: State, current: State, name: str) -> list[Op]:
    old, new = snapshot.links[name], current.links[name]
    out: list[Op] = []
    changes: dict[str, Any] = {}
    if old['mtu'] != new['mtu'] and old['mtu'] is not None:
        changes['mtu'] = old['mtu']
    if changes:
        out.append(ops.set_link(name, **changes))
    old_data, new_data = old.get('data') or {}, new.get('data') or {}
    wanted: dict[str, Any] = {}
    if old['kind'] == 'bridge':
        delay = old_data.get('forward_delay')
        if delay == new_data.get('forward_delay'):
            delay = None
        # NOTE(vpd): STP off before a lower delay, a delay before STP on
        # (see hostif.stp).
        out.extend(stp_mod.set_bridge_ops(
            name, stp_now=bool(new_data.get('stp_state')),
            stp=bool(old_data.get('stp_state')), forward_delay=delay))
    elif old['kind'] == 'bond':
        old_opts, new_opts = _bond_options(old_data), _bond_options(new_data)
        wanted.update((k, v) for k, v in old_opts.items()
                      if new_opts.get(k) != v)
        if wanted:
            out.append(ops.set_bond(name, **wanted))
    return out


def _upper_mtu(snapshot: State, current: State, name: str,
               phase: Phase) -> list[Op]:
    old, new = snapshot.links[name], current.links[name]
    if old['mtu'] == new['mtu'] or old['mtu'] is None:
        return []
    if not _may_change(new):
        phase.unrestorable.append(
            'the MTU of %s (on %s) followed its lower device to %s; it is '
            'not managed by vif_plug_dyn, so it cannot be set back to %s'
            % (name, snapshot.lower_of(name), new['mtu'], old['mtu']))
        return []
    return [ops.set_link(name, mtu=old['mtu'])]


def _may_change(link: dict[str, Any] | None) -> bool:
    return link is not None and bool(link.get('owned') or
                                     link.get('adopted'))


def _master(snapshot: State, current: State, name: str, gone: list[str],
            recreated: set[str], managed: set[str],
            phase: Phase) -> list[Op]:
    want = snapshot.master_of(name)
    have = None if name in recreated else current.master_of(name)
    if have in gone:
        have = None
    if want == have:
        return []
    link = current.get(name)
    old = snapshot.links[name]
    changeable = name in recreated or _may_change(link) or (
        name in managed and old.get('adopted'))
    if not changeable:
        phase.unrestorable.append(
            'device %s was %s; it is not managed by vif_plug_dyn, so its '
            'membership cannot be restored' % (
                name, 'in %s' % want if want else 'in no bridge or bond'))
        return []
    if want is None:
        return [ops.set_link(name, nomaster=True)]
    out = []
    master = snapshot.links.get(want) or {}
    if master.get('kind') == 'bond' and link is not None and link['up'] \
            and name not in recreated:
        # NOTE(vpd): bonding refuses to enslave a device that is up; the
        # state phase brings it back up.
        out.append(ops.set_link(name, up=False))
    out.append(ops.set_link(name, master=want))
    return out


# --- phase 2 -----------------------------------------------------------------

def plan_state(snapshot: State, current: State) -> Phase:
    """MAC addresses, then up/down, of the managed devices."""
    managed, _members = scope(snapshot, current)
    phase = Phase()
    names = [n for n in _levels(snapshot, managed & set(snapshot.links))
             if _same(snapshot, current, n)]
    for name in names:
        old, new = snapshot.links[name], current.links[name]
        if old['mac'] and old['mac'] != new['mac']:
            phase.ops.append(ops.set_link(name, mac=old['mac']))
    downs = [n for n in reversed(names)
             if not snapshot.links[n]['up'] and current.links[n]['up']]
    ups = [n for n in names
           if snapshot.links[n]['up'] and not current.links[n]['up']]
    phase.ops.extend(ops.set_link(n, up=False) for n in downs)
    phase.ops.extend(ops.set_link(n, up=True) for n in ups)
    return phase


# --- phase 3 -----------------------------------------------------------------

def _key(item: dict[str, Any]) -> tuple[Any, ...]:
    return (item['family'], item['address'], item['prefix'], item['peer'])


def _settable(item: dict[str, Any]) -> list[str]:
    return [f for f in item['flags'] if f in addr_mod.SETTABLE_FLAGS]


def _full(item: dict[str, Any]) -> tuple[Any, ...]:
    # NOTE(vpd): finite lifetimes tick; only forever vs finite is
    # compared.
    return _key(item) + (item['broadcast'], item['label'], item['scope'],
                         tuple(_settable(item)), item['proto'],
                         item['metric'], item['valid_lft'] is None,
                         item['preferred_lft'] is None)


def plan_finish(snapshot: State, current: State) -> Phase:
    """Addresses of the managed devices, then their markers."""
    managed, _members = scope(snapshot, current)
    phase = Phase()
    names = sorted(n for n in managed if _same(snapshot, current, n))
    for name in names:
        phase.ops.extend(_addresses(name, _own(snapshot, name),
                                    _own(current, name)))
    for name in names:
        phase.ops.extend(_marker(snapshot.links[name],
                                 current.links[name]))
    return phase


def _own(live: State, name: str) -> list[dict[str, Any]]:
    """A device's addresses, without autoconfigured ones."""
    return [a for a in live.addresses_of(name)
            if not state_mod.autoconfigured(a)]


def _addresses(name: str, want: list[dict[str, Any]],
               have: list[dict[str, Any]]) -> list[Op]:
    wanted = {_full(a) for a in want}
    kept = {_full(a) for a in have if _full(a) in wanted}
    out = [ops.del_address(name, a['address'], a['prefix'], peer=a['peer'])
           for a in have if _full(a) not in wanted]
    missing = [a for a in want if _full(a) not in kept]
    # NOTE(vpd): the kernel lists IPv4 addresses in the order they were
    # added and puts a new IPv6 address before the others of its scope:
    # adding IPv6 ones in reverse gives back the snapshot's order.
    v4 = [a for a in missing if a['family'] == 'inet']
    v6 = [a for a in missing if a['family'] == 'inet6']
    for item in v4 + v6[::-1]:
        out.append(ops.add_address(
            name, item['address'], item['prefix'], peer=item['peer'],
            broadcast=item['broadcast'], label=item['label'],
            scope=item['scope'], flags=_settable(item) or None,
            valid_lft=item['valid_lft'],
            preferred_lft=item['preferred_lft'], proto=item['proto'],
            metric=item['metric']))
    return out


def _marker(old: dict[str, Any], new: dict[str, Any]) -> list[Op]:
    if old.get('alias') == new.get('alias'):
        return []
    if new.get('adopted') and not old.get('adopted') and \
            not old.get('owned'):
        return [ops.release(new['name'], old.get('alias'))]
    if new.get('owned') and old.get('owned') and old.get('tag'):
        return [ops.set_link(new['name'], tag=old['tag'])]
    return []


# --- checking ----------------------------------------------------------------

def _text(item: dict[str, Any]) -> str:
    """An address as ``ip address`` would show it."""
    words = ['%s/%s' % (item['address'], item['prefix'])]
    for key, word in (('peer', 'peer'), ('broadcast', 'brd'),
                      ('scope', 'scope'), ('label', 'label'),
                      ('proto', 'proto'), ('metric', 'metric')):
        if item.get(key) is not None:
            words.append('%s %s' % (word, item[key]))
    words.extend(_settable(item))
    if item.get('valid_lft') is not None:
        words.append('valid_lft %s' % item['valid_lft'])
    return ' '.join(words)


# NOTE(vpd): not the link group: the helper puts every device it makes in
# its batch's group (see vif_plug_dyn.privsep.batch).
_COMPARED = ('index', 'kind', 'mtu', 'mac', 'up', 'alias')


def differences(snapshot: State, current: State,
                within: tuple[set[str], set[str]] | None = None
                ) -> list[str]:
    """What still differs from the snapshot in the restore's scope.

    :param within: the ``(managed, members)`` of :func:`scope` when the
        restore began (a finished restore has given adopted devices back,
        so the scope of the end state alone would miss them).
    :returns: one sentence per difference (empty when restored exactly).
    """
    managed, members = within or scope(snapshot, current)
    stacked = uppers(snapshot, current, managed)
    out = []
    for name in sorted(stacked):
        was, now = snapshot.links[name]['mtu'], current.links[name]['mtu']
        if was != now:
            out.append('%s: mtu is %r, was %r' % (name, now, was))
    for name in sorted(managed | members):
        old, new = snapshot.get(name), current.get(name)
        if old is None and new is None:
            continue
        if old is None or new is None:
            if old is not None or name in managed:
                out.append('%s: %s' % (name, 'missing' if new is None
                                       else 'not in the snapshot'))
            continue
        fields = _COMPARED if name in managed else ('index',)
        for key in fields:
            if old.get(key) != new.get(key):
                out.append('%s: %s is %r, was %r' % (name, key, new.get(key),
                                                     old.get(key)))
        if snapshot.master_of(name) != current.master_of(name):
            out.append('%s: master is %s, was %s' % (
                name, current.master_of(name), snapshot.master_of(name)))
        if name in managed:
            if (old.get('data') or {}) != (new.get('data') or {}):
                out.append('%s: settings are %r, were %r' % (
                    name, new.get('data'), old.get('data')))
            was = {_full(a): a for a in _own(snapshot, name)}
            now = {_full(a): a for a in _own(current, name)}
            for key in sorted(was.keys() - now.keys(), key=repr):
                out.append('%s: address %s is missing' % (
                    name, _text(was[key])))
            for key in sorted(now.keys() - was.keys(), key=repr):
                out.append('%s: address %s was not there' % (
                    name, _text(now[key])))
    return out
