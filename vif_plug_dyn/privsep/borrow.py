"""Borrowing a hypervisor's tap (runs in the daemon).

nova's ``tap`` VIF type makes the guest's tap itself (``tap`` + 11
characters of the port id) and deletes it when the guest goes; the
library only cables it. What the daemon lets a caller do to such a tap is
narrow, and checked here against what the kernel says, not what the
caller says:

* :func:`borrow` marks it ``vif_plug_dyn.borrowed:<tag>``, only if it is
  a tap (kind ``tun`` with a MAC address; a layer-3 tun has none) that
  the library did not create or adopt and that carries no other alias;
* :func:`check_set_link` lets ``set_link`` change only its master and its
  up/down state (:data:`.ops.BORROWED_OK`);
* deleting it stays refused (it is not "ours": see
  :func:`.handlers.delete`);
* :func:`give_back` clears the marker: the alias it had when borrowed
  (none).

NOTE(vpd): self-contained on purpose (two handlers and one check), so a
root-owned policy of what the daemon may touch can wrap it.
"""

from typing import TYPE_CHECKING, Any

from vif_plug_dyn import exception
from vif_plug_dyn.privsep import nlmsg
from vif_plug_dyn.privsep import ops as ops_mod

if TYPE_CHECKING:
    from vif_plug_dyn.privsep.batch import Batch
    from vif_plug_dyn.privsep.batch import Link

#: The rtnl link kind of tun and tap devices.
TUN_KIND = 'tun'


def borrow(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Mark a hypervisor's tap as borrowed under ``op['tag']``.

    :raises DeviceNotFound: it does not exist.
    :raises DeviceNotBorrowable: the library created or adopted it, it is
        not a tap, or it carries a foreign alias.
    """
    name = op['name']
    link = _full(b, name)
    reason = None
    if link.owned:
        reason = 'vif_plug_dyn created it (delete or cable it as its own)'
    elif link.adopted:
        reason = 'it is an adopted host interface, not a tap'
    elif link.kind != TUN_KIND or not link.mac:
        reason = 'it is a %s device, not a tap' % (
            'tun' if link.kind == TUN_KIND else link.kind or 'kind-less')
    elif link.alias and not link.borrowed:
        reason = 'it carries the alias %r of someone else' % link.alias
    if reason is not None:
        raise exception.DeviceNotBorrowable(device=name, reason=reason)
    alias = ops_mod.borrowed_alias(op['tag'])
    index = b.index_of(name)
    b.send(i, 'setlink', name, lambda seq: nlmsg.setlink(
        seq, index=index, alias=alias))
    # NOTE(vpd): later operations of the batch may cable the tap only once
    # the kernel has taken the marker.
    b.flush_checked()
    if not b.has_failed(i):
        link.borrowed, link.alias = True, alias


def give_back(b: 'Batch', i: int, op: dict[str, Any]) -> None:
    """Clear the borrowing marker of a tap.

    :raises DeviceNotOwned: it is not borrowed.
    :raises DeviceNotFound: it is gone and ``missing_ok`` is false.
    """
    name = op['name']
    link = b.get(name)
    if link is None:
        if not op['missing_ok']:
            raise exception.DeviceNotFound(device=name)
        b.results[i]['missing'] = True
        return
    if not link.borrowed:
        raise exception.DeviceNotOwned(operation='give_back', device=name)
    index = b.index_of(name)
    # NOTE(vpd): forget the marker before the kernel answers: if the
    # request fails, treating the tap as foreign is the safe side.
    link.borrowed, link.alias = False, None
    b.send(i, 'setlink', name, lambda seq: nlmsg.setlink(
        seq, index=index, alias=''))


def check_set_link(b: 'Batch', name: str, op: dict[str, Any]) -> 'Link':
    """The device a ``set_link`` without a tag changes: ours, adopted, or
    borrowed when it changes nothing but the master and up/down.

    :raises DeviceNotOwned: none of those.
    :raises DeviceNotFound: it does not exist.
    """
    link = b.existing(name)
    if link.borrowed and not link.owned:
        # NOTE(vpd): a 0 is a change, False (the default of nomaster) is
        # not.
        changed = {k for k, v in op.items() if k not in ('op', 'name') and
                   v is not None and v is not False}
        if changed - ops_mod.BORROWED_OK:
            raise exception.DeviceNotOwned(
                operation='set_link %s' % ', '.join(sorted(
                    changed - ops_mod.BORROWED_OK)), device=name)
        return link
    return b.managed(name, 'set_link')


def _full(b: 'Batch', name: str) -> 'Link':
    """``name`` looked up with its kind and MAC (the batch's prefetch
    reads only its owner).

    :raises DeviceNotFound: it does not exist.
    """
    b.kind_of(name)
    return b.existing(name)
