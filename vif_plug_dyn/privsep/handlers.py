"""What each operation does, on top of the batch engine (runs in the
daemon).

One function per operation kind, ``(batch, index, op) -> None``: check
what must hold (names free, devices present and ours), queue the netlink
requests through :meth:`~vif_plug_dyn.privsep.batch.Batch.send`, make taps
and device nodes directly. Errors are raised as typed exceptions; the
engine records them against the operation.

Ownership: creating marks a device ours; only ours may be deleted.
Devices the library adopted (an operator's NIC a host interface
definition names, see :func:`.ops.adopt`) may be configured by the
operations of :data:`.ops.ADOPTED_OK` — checked with
:meth:`~vif_plug_dyn.privsep.batch.Batch.managed` — never deleted.

Everything that reaches beyond the library's own devices is checked
against the daemon's policy (:mod:`.policy`, the batch's
:attr:`~vif_plug_dyn.privsep.batch.Batch.policy`): adopting, changing an
adopted device, joining a master that is not the library's, stacking a
macvlan, macvtap or VLAN on a lower device that is not the library's,
configuring a PF's VF.
"""

import errno
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vif_plug_dyn import exception
from vif_plug_dyn.privsep import addresses
from vif_plug_dyn.privsep import borrow
from vif_plug_dyn.privsep import nlmsg
from vif_plug_dyn.privsep import ops as ops_mod
from vif_plug_dyn.privsep import rtnl
from vif_plug_dyn.privsep import tc
from vif_plug_dyn.privsep import tuntap
from vif_plug_dyn.privsep.netlink import kernel_error

if TYPE_CHECKING:
    from vif_plug_dyn.privsep.batch import Batch

Handler = Callable[['Batch', int, dict[str, Any]], None]

#: Deleting a qdisc that is not there is what "replace" starts with.
_NO_QDISC_OK = frozenset({errno.ENOENT, errno.EINVAL})
# NOTE(vpd): RTM_DELADDR of an address that is not there answers
# EADDRNOTAVAIL (IPv4 and IPv6 alike).
_NO_ADDRESS_OK = frozenset({errno.EADDRNOTAVAIL})
#: Bond settings an operation carries beside its mode.
_BOND_OPTIONS = ('miimon', 'updelay', 'downdelay', 'use_carrier',
                 'arp_interval', 'arp_targets', 'arp_validate')
#: The address fields of ``add_address`` sent to the kernel.
_ADDRESS_FIELDS = ('address', 'prefix', 'peer', 'broadcast', 'label',
                   'scope', 'flags', 'valid_lft', 'preferred_lft', 'proto',
                   'metric')


def _master_index(b: 'Batch', operation: str, name: str, master: str,
                  adopted: bool = False) -> int:
    """The index of ``master``, which device ``name`` may join.

    :raises DeviceNotFound: the master does not exist.
    :raises PolicyDenied: the policy does not let ``name`` join it.
    """
    link = b.existing(master)
    b.policy.check_master(operation, name, adopted, master, link.owned)
    return b.index_of(master)


def _configure_new(b: 'Batch', i: int, name: str, op: dict[str, Any],
                   master: str | None = None) -> None:
    """The setlink every created device gets: owner alias, state."""
    master_index = None if master is None else _master_index(
        b, op['op'], name, master)
    b.send(i, 'setlink', name, lambda seq: nlmsg.setlink(
        seq, name=name, master=master_index,
        alias=ops_mod.alias_for(op['tag']), up=op['up']))


def create_tap(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Make a persistent tap (ioctls), then configure it in one setlink.

    :param b: the running batch.
    :param i: the operation's index in the batch.
    :param op: the validated operation.
    :raises NetlinkOperationFailed: the name is taken or the kernel refused.
    :raises DeviceNotFound: the master does not exist.
    """
    name = op['name']
    b.require_absent(name, 'create_tap')
    master_index = None
    if op['master'] is not None:
        master_index = _master_index(b, 'create_tap', name, op['master'])
    b.journal('tun', name)
    try:
        tuntap.create_tap(name, op['multi_queue'], op['owner'],
                          op['owner_group'])
    except OSError as exc:
        raise kernel_error('create_tap', name, exc.errno or 0)
    b.provisional(name, 'tun', b.creation_group)
    b.confirm(i, name)
    if master_index is not None:
        # NOTE(vpd): a new tap's operstate stays "unknown" (counted as
        # up) until link-watch sees its carrier is off; enslaved
        # before that, the bridge enables the port (multicast
        # timers...) only to disable it moments later. RTM_GETLINK
        # runs the pending link-watch work first (what ``ip`` does by
        # looking the name up): measured 20% less kernel time for
        # 1000 taps.
        b.send(i, 'getlink', name, functools.partial(
            nlmsg.getlink, name=name))
    alias = ops_mod.alias_for(op['tag'])
    b.send(i, 'setlink', name, lambda seq: nlmsg.setlink(
        seq, name=name, mtu=op['mtu'], mac=op['mac'],
        master=master_index, group=b.creation_group, alias=alias,
        up=op['up']))


def _create_netlink(b: 'Batch', i: int, op: dict[str, Any], kind: str,
                    build: Callable[[int], bytes],
                    names: tuple[str, ...]) -> None:
    for name in names:
        b.require_absent(name, 'create_' + kind)
    for name in names:
        b.journal(kind, name)
    b.send(i, 'newlink', names[0], build, creates=names)
    for name in names:
        b.provisional(name, kind, b.creation_group)


def create_bridge(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Create a bridge (by default forward delay 0, STP off), mark it
    ours.

    :raises NetlinkOperationFailed: the name (or the index asked for) is
        taken.
    """
    name = op['name']
    _create_netlink(b, i, op, 'bridge', lambda seq: rtnl.new_bridge(
        seq, name, mtu=op['mtu'], mac=op['mac'], group=b.creation_group,
        stp=op['stp'], forward_delay=op['forward_delay'],
        index=op['index'] or 0), (name,))
    _configure_new(b, i, name, op)


def create_veth(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Create a veth pair, mark both ends ours, enslave them if asked.

    :raises NetlinkOperationFailed: a name is taken.
    :raises DeviceNotFound: a master does not exist.
    """
    name, peer = op['name'], op['peer']
    for end, master in ((name, op['master']), (peer, op['peer_master'])):
        if master is not None:
            _master_index(b, 'create_veth', end, master)
    _create_netlink(b, i, op, 'veth', lambda seq: rtnl.new_veth(
        seq, name, peer, mtu=op['mtu'], mac=op['mac'],
        peer_mac=op['peer_mac'], group=b.creation_group), (name, peer))
    _configure_new(b, i, name, op, op['master'])
    _configure_new(b, i, peer, op, op['peer_master'])


def create_macvlan(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Create a macvlan on a lower device (the library's, or one the
    policy allows in that mode).

    :raises DeviceNotFound: the lower device does not exist.
    :raises PolicyDenied: the policy does not allow that lower device and
        mode.
    """
    _create_lowered(b, i, op, 'macvlan')


def create_macvtap(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Create a macvtap and make sure its ``/dev/tapN`` node exists.

    :raises DeviceNotFound: the lower device does not exist.
    :raises PolicyDenied: the policy does not allow that lower device and
        mode.
    :raises NetlinkOperationFailed: the kernel refused, or ``/dev/tapN``
        is another device's node (operation ``mknod``).
    """
    name = op['name']
    _create_lowered(b, i, op, 'macvtap')
    index = b.index_of(name)
    if not b.made_here(name):
        # NOTE(vpd): best-effort mode, the create failed and the name
        # now belongs to someone else: not our node to make.
        return
    try:
        rdev = tuntap.macvtap_dev_number(name, index)
        path, made = tuntap.ensure_macvtap_node(index, rdev)
    except OSError as exc:
        raise kernel_error('mknod', name, exc.errno or 0,
                           exc.strerror)
    b.nodes[name] = (index, rdev)
    b.results[i].update(ifindex=index, dev_node=path,
                           dev_node_created=made)


def create_vlan(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Create an 802.1Q device on a lower device (the library's, or one
    the policy allows that VLAN on).

    :raises DeviceNotFound: the lower device does not exist.
    :raises PolicyDenied: the policy does not allow it.
    """
    _create_lowered(b, i, op, 'vlan')


def _create_lowered(b: 'Batch', i: int, op: dict[str, Any], kind: str) -> None:
    name = op['name']
    lower_link = b.existing(op['lower'])
    carries = 'vlan:%d' % op['vlan_id'] if kind == 'vlan' else op['mode']
    b.policy.check_lower(op['op'], op['lower'], lower_link.owned, carries)
    lower = b.index_of(op['lower'])
    build: Callable[[int], bytes]
    if kind == 'vlan':
        build = functools.partial(
            rtnl.new_vlan, name=name, lower=lower,
            vlan_id=op['vlan_id'], mtu=op['mtu'], mac=op['mac'],
            group=b.creation_group, index=op['index'] or 0)
    else:
        build = functools.partial(
            rtnl.new_macvlan, name=name, kind=kind, lower=lower,
            mode=op['mode'], mtu=op['mtu'], mac=op['mac'],
            group=b.creation_group, index=op.get('index') or 0)
    _create_netlink(b, i, op, kind, build, (name,))
    _configure_new(b, i, name, op)


def create_bond(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Create a bonding device with its monitoring settings.

    :raises NetlinkOperationFailed: the name (or the index asked for) is
        taken.
    """
    name = op['name']
    mode = ops_mod.BOND_MODES[op['mode']]
    options = {k: op[k] for k in _BOND_OPTIONS}
    _create_netlink(b, i, op, 'bond', lambda seq: rtnl.new_bond(
        seq, name, mode, mtu=op['mtu'], mac=op['mac'],
        group=b.creation_group, index=op['index'] or 0, **options), (name,))
    _configure_new(b, i, name, op)


#: The policy's name of what each set_link field changes on an adopted
#: device.
_ADOPTED_CHANGES = (('up', 'state'), ('mtu', 'mtu'), ('mac', 'mac'))


def set_link(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Change a device of ours, or an adopted one, in one setlink.

    :raises DeviceNotOwned: the device is neither ours nor adopted, or it
        is adopted and the operation sets an owner tag.
    :raises DeviceNotFound: it, or the new master, does not exist.
    :raises PolicyDenied: an adopted device's change, or the master, is
        not allowed by the policy.
    """
    name = op['name']
    if op['tag'] is not None:
        # NOTE(vpd): an adopted device is configured like ours, but its
        # marker is only changed by adopt/release: rewriting the tag
        # would turn it into a device we "created", which may be
        # deleted.
        link = b.owned(name, 'set_link')
    else:
        # NOTE(vpd): a borrowed tap (a hypervisor's) changes only its
        # master and state, and joins what the library's devices may.
        link = borrow.check_set_link(b, name, op)
    adopted = link.adopted and not link.owned
    if adopted:
        for field, change in _ADOPTED_CHANGES:
            if op[field] is not None:
                b.policy.check_change('set_link', name, change)
        if op['nomaster']:
            b.policy.check_change('set_link', name, 'nomaster')
    master = 0 if op['nomaster'] else None
    if op['master'] is not None:
        # NOTE(vpd): the master may be an operator's bridge the policy
        # names: joining it changes our port, not their bridge.
        master = _master_index(b, 'set_link', name, op['master'], adopted)
    alias = None if op['tag'] is None else ops_mod.alias_for(op['tag'])
    index = link.index or 0
    b.send(i, 'setlink', name, lambda seq: nlmsg.setlink(
        seq, index=index, name=name, mtu=op['mtu'], mac=op['mac'],
        master=master, alias=alias, up=op['up']))


def _index_of_kind(b: 'Batch', name: str, operation: str,
                   kind: str) -> int:
    """The index of a managed device of link kind ``kind``.

    :raises InvalidField: it is of another kind.
    :raises PolicyDenied: it is adopted and the policy does not allow
        changing its ``kind`` settings.
    """
    link = b.managed(name, operation)
    if not link.owned:
        b.policy.check_change(operation, name, kind)
    found = b.kind_of(name)
    if found != kind:
        raise exception.InvalidField(
            field='name', value=name,
            reason='%s needs a %s, not a %s device' % (
                operation, kind, found or 'kind-less'))
    return b.index_of(name)


def set_bridge(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Change the STP state and forward delay of a bridge of ours or an
    adopted one.

    :raises DeviceNotOwned: neither ours nor adopted.
    :raises InvalidField: not a bridge.
    """
    name = op['name']
    index = _index_of_kind(b, name, 'set_bridge', 'bridge')
    b.send(i, 'changelink', name, lambda seq: rtnl.set_bridge(
        seq, index, stp=op['stp'], forward_delay=op['forward_delay']))


def set_bond(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Change settings of a bond of ours or an adopted one.

    :raises DeviceNotOwned: neither ours nor adopted.
    :raises InvalidField: not a bond.
    :raises DeviceNotFound: the primary slave does not exist.
    """
    name = op['name']
    index = _index_of_kind(b, name, 'set_bond', 'bond')
    options = {k: op[k] for k in _BOND_OPTIONS}
    if op['mode'] is not None:
        options['mode'] = ops_mod.BOND_MODES[op['mode']]
    if op['primary'] is not None:
        options['primary'] = b.index_of(op['primary'])
    b.send(i, 'changelink', name, lambda seq: rtnl.set_bond(
        seq, index, **options))


def adopt(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Mark a device the library did not create as adopted; the result
    carries its ``previous_alias``.

    The marker carries the digest of the alias the device had (kept when
    an adopted device is adopted again), so that :func:`release` can put
    back that alias and no other.

    :raises DeviceAlreadyOwned: the library created it.
    :raises DeviceNotFound: it does not exist.
    :raises PolicyDenied: the policy does not list it in ``[adopt]``.
    """
    name = op['name']
    link = b.existing(name)
    if link.owned:
        # NOTE(vpd): a device we created stays "created": adopting it
        # would make it undeletable and hide who made it.
        raise exception.DeviceAlreadyOwned(device=name, alias=link.alias)
    b.policy.check_adopt(name)
    if link.adopted:
        digest = ops_mod.adopted_digest(link.alias)
    else:
        digest = ops_mod.alias_digest(link.alias) if link.alias else None
    alias = ops_mod.adopted_alias(op['tag'], digest)
    index = b.index_of(name)
    b.results[i]['previous_alias'] = link.alias
    b.send(i, 'setlink', name, lambda seq: nlmsg.setlink(
        seq, index=index, alias=alias))
    # NOTE(vpd): later operations of the batch may configure the device
    # only once the kernel has taken the marker.
    b.flush_checked()
    if not b.has_failed(i):
        link.adopted, link.alias = True, alias


def release(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Give an adopted device back, with the alias it had before adoption
    (or none).

    :raises DeviceNotOwned: it is not adopted.
    :raises DeviceNotFound: it does not exist.
    :raises PolicyDenied: the alias asked for is not the one the adoption
        marker records (with no policy, allowed with a warning).
    """
    name = op['name']
    link = b.existing(name)
    if not link.adopted:
        raise exception.DeviceNotOwned(operation='release', device=name)
    # NOTE(vpd): an empty IFLA_IFALIAS clears the alias.
    alias = op['alias'] or ''
    if alias and ops_mod.alias_digest(alias) != ops_mod.adopted_digest(
            link.alias):
        b.policy.check_restored_alias(name)
    index = b.index_of(name)
    # NOTE(vpd): forget the marker before the kernel answers: if the
    # request fails, treating the device as foreign is the safe side.
    link.adopted, link.alias = False, alias or None
    b.send(i, 'setlink', name, lambda seq: nlmsg.setlink(
        seq, index=index, alias=alias))


def add_address(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Add an IP address to a device of ours or an adopted one.

    :raises DeviceNotOwned: neither ours nor adopted.
    :raises NetlinkOperationFailed: the kernel refused (EEXIST...).
    """
    name = op['name']
    if not b.managed(name, 'add_address').owned:
        b.policy.check_change('add_address', name, 'addresses')
    index = b.index_of(name)
    fields = {k: op[k] for k in _ADDRESS_FIELDS}
    b.send(i, 'newaddr', '%s %s/%s' % (name, op['address'], op['prefix']),
           lambda seq: addresses.newaddr(seq, index=index, **fields))


def del_address(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Remove an IP address from a device of ours or an adopted one
    (already gone is fine with ``missing_ok``).

    :raises DeviceNotOwned: neither ours nor adopted.
    """
    name = op['name']
    if not b.managed(name, 'del_address').owned:
        b.policy.check_change('del_address', name, 'addresses')
    index = b.index_of(name)
    ok = _NO_ADDRESS_OK if op['missing_ok'] else frozenset()
    b.send(i, 'deladdr', '%s %s/%s' % (name, op['address'], op['prefix']),
           lambda seq: addresses.deladdr(
               seq, index=index, address=op['address'],
               prefix=op['prefix'], peer=op['peer']), ok)


def set_vf(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Configure one VF through its PF.

    :raises DeviceNotFound: the PF does not exist.
    :raises PolicyDenied: the policy does not list the PF in ``[vf]``.
    """
    # NOTE(vpd): the PF is the operator's NIC and stays as it is; only
    # the VF handed to a guest is configured: the policy names the PFs
    # whose VFs hostdev networks hand out.
    pf = op['pf']
    b.existing(pf)
    b.policy.check_vf(pf)
    index = b.index_of(pf)
    b.send(i, 'set_vf', '%s vf %d' % (pf, op['vf']),
               lambda seq: rtnl.set_vf(
                   seq, index, op['vf'], mac=op['mac'], vlan=op['vlan'],
                   qos=op['qos'], trust=op['trust'],
                   spoofchk=op['spoofchk']))


def redirect(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """(Re)place a qdisc on both devices and a u32/mirred filter on each
    ingress pointing at the other.

    :raises DeviceNotOwned: one of them is not ours.
    """
    name, peer, kind = op['name'], op['peer'], op['qdisc']
    b.owned(name, 'redirect')
    b.owned(peer, 'redirect')
    ends = ((name, b.index_of(name)), (peer, b.index_of(peer)))
    for dev, index in ends:
        if not b.made_here(dev):
            # NOTE(vpd): only an older device can hold a qdisc to replace.
            b.send(i, 'del_qdisc', dev, functools.partial(
                tc.del_qdisc, index=index, kind=kind), _NO_QDISC_OK)
        b.send(i, 'add_qdisc', dev, functools.partial(
            tc.add_qdisc, index=index, kind=kind))
    for (dev, src), (_other, dst) in zip(ends, ends[::-1], strict=True):
        b.send(i, 'add_filter', dev, functools.partial(
            tc.add_redirect_filter, index=src, target=dst, kind=kind))


def unredirect(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Remove the qdiscs :func:`redirect` placed (gone is fine).

    :raises DeviceNotOwned: one of them is not ours.
    """
    kind = op['qdisc']
    for dev in (op['name'], op['peer']):
        link = b.get(dev)
        if link is None:
            continue
        if not link.owned:
            raise exception.DeviceNotOwned(operation='unredirect',
                                           device=dev)
        index = b.index_of(dev)
        b.send(i, 'del_qdisc', dev, functools.partial(
            tc.del_qdisc, index=index, kind=kind), _NO_QDISC_OK)


def delete(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Delete devices of ours, several through one link-group delete.

    :raises DeviceNotOwned: one of them is not ours (none is deleted).
    :raises DeviceNotFound: one is missing and ``missing_ok`` is false.
    """
    targets, missing = [], []
    for name in op['names']:
        link = b.get(name)
        if link is None:
            if not op['missing_ok']:
                raise exception.DeviceNotFound(device=name)
            missing.append(name)
        elif not link.owned:
            raise exception.DeviceNotOwned(operation='delete',
                                           device=name)
        else:
            targets.append(name)
    deleted = b.delete_links(i, targets, op['missing_ok'])
    b.results[i].update(deleted=deleted, missing=missing)


#: The function applying each operation kind.
HANDLERS: dict[str, Handler] = {
    'create_bridge': create_bridge,
    'create_tap': create_tap,
    'create_veth': create_veth,
    'create_macvtap': create_macvtap,
    'create_macvlan': create_macvlan,
    'create_vlan': create_vlan,
    'create_bond': create_bond,
    'set_link': set_link,
    'set_bridge': set_bridge,
    'set_bond': set_bond,
    'adopt': adopt,
    'release': release,
    'borrow': borrow.borrow,
    'give_back': borrow.give_back,
    'add_address': add_address,
    'del_address': del_address,
    'set_vf': set_vf,
    'redirect': redirect,
    'unredirect': unredirect,
    'delete': delete,
}
