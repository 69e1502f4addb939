"""What each operation does, on top of the batch engine (runs in the
daemon).

One function per operation kind, ``(batch, index, op) -> None``: check
what must hold (names free, devices present and ours), queue the netlink
requests through :meth:`~vif_plug_dyn.privsep.batch.Batch.send`, make taps
and device nodes directly. Errors are raised as typed exceptions; the
engine records them against the operation.
"""

import errno
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vif_plug_dyn import exception
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


def _configure_new(b: 'Batch', i: int, name: str, op: dict[str, Any],
                   master: str | None = None) -> None:
    """The setlink every created device gets: owner alias, state."""
    master_index = None if master is None else b.index_of(master)
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
        master_index = b.index_of(op['master'])
    b.journal('tun', name)
    try:
        tuntap.create_tap(name, op['multi_queue'], op['owner'],
                          op['owner_group'])
    except OSError as exc:
        raise kernel_error('create_tap', name, exc.errno or 0)
    b.provisional(name, 'tun', op['group'])
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
        master=master_index, group=op['group'], alias=alias,
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
        b.provisional(name, kind, op['group'])


def create_bridge(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Create a bridge (forward delay 0, STP off), mark it ours.

    :raises NetlinkOperationFailed: the name is taken.
    """
    name = op['name']
    _create_netlink(b, i, op, 'bridge', lambda seq: rtnl.new_bridge(
        seq, name, mtu=op['mtu'], mac=op['mac'], group=op['group']),
        (name,))
    _configure_new(b, i, name, op)


def create_veth(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Create a veth pair, mark both ends ours, enslave them if asked.

    :raises NetlinkOperationFailed: a name is taken.
    :raises DeviceNotFound: a master does not exist.
    """
    name, peer = op['name'], op['peer']
    for master in (op['master'], op['peer_master']):
        if master is not None:
            b.existing(master)
    _create_netlink(b, i, op, 'veth', lambda seq: rtnl.new_veth(
        seq, name, peer, mtu=op['mtu'], mac=op['mac'],
        peer_mac=op['peer_mac'], group=op['group']), (name, peer))
    _configure_new(b, i, name, op, op['master'])
    _configure_new(b, i, peer, op, op['peer_master'])


def create_macvlan(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Create a macvlan on a lower device (anyone's).

    :raises DeviceNotFound: the lower device does not exist.
    """
    _create_lowered(b, i, op, 'macvlan')


def create_macvtap(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Create a macvtap and make sure its ``/dev/tapN`` node exists.

    :raises DeviceNotFound: the lower device does not exist.
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
    """Create an 802.1Q device on a lower device (anyone's).

    :raises DeviceNotFound: the lower device does not exist.
    """
    _create_lowered(b, i, op, 'vlan')


def _create_lowered(b: 'Batch', i: int, op: dict[str, Any], kind: str) -> None:
    name = op['name']
    lower = b.index_of(op['lower'])
    build: Callable[[int], bytes]
    if kind == 'vlan':
        build = functools.partial(
            rtnl.new_vlan, name=name, lower=lower,
            vlan_id=op['vlan_id'], mtu=op['mtu'], mac=op['mac'],
            group=op['group'])
    else:
        build = functools.partial(
            rtnl.new_macvlan, name=name, kind=kind, lower=lower,
            mode=op['mode'], mtu=op['mtu'], mac=op['mac'],
            group=op['group'], index=op.get('index') or 0)
    _create_netlink(b, i, op, kind, build, (name,))
    _configure_new(b, i, name, op)


def create_bond(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Create a bonding device.

    :raises NetlinkOperationFailed: the name is taken.
    """
    name = op['name']
    mode = ops_mod.BOND_MODES[op['mode']]
    _create_netlink(b, i, op, 'bond', lambda seq: rtnl.new_bond(
        seq, name, mode, miimon=op['miimon'], mtu=op['mtu'],
        mac=op['mac'], group=op['group']), (name,))
    _configure_new(b, i, name, op)


def set_link(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Change a device of ours in one setlink.

    :raises DeviceNotOwned: the device is not ours.
    :raises DeviceNotFound: it, or the new master, does not exist.
    """
    name = op['name']
    link = b.owned(name, 'set_link')
    master = 0 if op['nomaster'] else None
    if op['master'] is not None:
        # NOTE(vpd): the master may be an operator's bridge: joining
        # it (adoption) changes our port, not their bridge.
        master = b.index_of(op['master'])
    alias = None if op['tag'] is None else ops_mod.alias_for(op['tag'])
    index = link.index or 0
    b.send(i, 'setlink', name, lambda seq: nlmsg.setlink(
        seq, index=index, name=name, mtu=op['mtu'], mac=op['mac'],
        master=master, group=op['group'], alias=alias, up=op['up']))


def set_vf(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Configure one VF through its PF.

    :raises DeviceNotFound: the PF does not exist.
    """
    # NOTE(vpd): the PF is the operator's NIC and stays as it is; only
    # the VF handed to a guest is configured, so no ownership check.
    pf = op['pf']
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
    'set_vf': set_vf,
    'redirect': redirect,
    'unredirect': unredirect,
    'delete': delete,
}
