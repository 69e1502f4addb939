"""Apply a batch of validated operations over one netlink socket (runs in
the daemon).

How a batch runs:

1. Every device name the batch mentions is looked up once (pipelined
   RTM_GETLINK by name), so existence and ownership are known before any
   change: creating over an existing name, touching a device that is not
   ours, or naming a missing device fails without a kernel call.
2. Operations run in order. Their netlink requests are queued and sent
   many per ``send()``; taps are made with ioctls as they come. A request
   that needs something only the kernel knows (the index of a device this
   batch just created) flushes the queue first.
3. Answers are matched to operations; each operation gets a result:
   ``ok``, ``error`` (typed, with errno for kernel errors), ``skipped``
   or ``rolled_back``.

Stop-at-first-error mode: an operation whose effects are not confined to
devices this batch created (changing a pre-existing device, deleting,
adopting, configuring a VF) is a barrier: everything before it is flushed and
checked first, and it is checked before anything after it is sent. So
when an error is found, every operation that ran since the last barrier
only touched devices this batch created, and deleting those devices undoes
all of it. Best-effort mode runs everything and removes only the devices
of failed create operations.

What each operation does is in :mod:`.handlers`; this module is the
engine: lookups, pipelining, results, deletion and undo.

Deleting several devices puts them all in a transient link group and
deletes the group with one request: the kernel unregisters them together
(one RCU grace period for all) instead of one by one.

Link groups are the daemon's own business: no operation carries one.
Every device a batch creates joins the batch's creation group (drawn from
:data:`TRANSIENT_GROUP_RANGE`), so ports built together and released
together go with one group delete. A group is deleted whole only when a
dump taken after the batch's last change shows that every device in it
is one the delete asked for and owns at that moment; the others go
through a fresh transient group holding exactly them.

What reaches beyond the library's own devices is checked against the
daemon's policy (:mod:`.policy`) by the handlers.
"""

import dataclasses
import errno
import functools
import random
import threading
from collections.abc import Callable
from typing import Any

from vif_plug_dyn import exception
from vif_plug_dyn.privsep import handlers
from vif_plug_dyn.privsep import journal
from vif_plug_dyn.privsep import limits
from vif_plug_dyn.privsep import netlink
from vif_plug_dyn.privsep import nlmsg
from vif_plug_dyn.privsep import ops as ops_mod
from vif_plug_dyn.privsep import policy as policy_mod
from vif_plug_dyn.privsep import tuntap
from vif_plug_dyn.privsep.netlink import kernel_error

# NOTE(vpd): one batch at a time per daemon: a batch's view of the
# devices (existence, ownership, the transient group it picked) must not
# change under it, and privsep serves calls from a thread pool.
LOCK = threading.Lock()

#: Range the transient deletion groups are drawn from. Operators must not
#: use link groups in it in a namespace the library serves.
TRANSIENT_GROUP_RANGE = (0x80000000, 0xFFFFFFFE)

#: Above this many device names, a batch reads them from one dump of
#: every link instead of one RTM_GETLINK each.
DUMP_THRESHOLD = 32

_GONE_OK = frozenset({errno.ENODEV})


@dataclasses.dataclass
class Link:
    """What the batch knows about one device."""

    name: str
    index: int | None
    kind: str | None = None
    owned: bool = False
    created: bool = False
    group: int | None = None
    adopted: bool = False
    alias: str | None = None
    #: A hypervisor's tap the library borrowed (see :mod:`.borrow`).
    borrowed: bool = False
    #: The MAC address (only read by full lookups).
    mac: str | None = None


@dataclasses.dataclass
class _Step:
    """A queued request of operation ``op`` (``None``: undo work)."""

    op: int | None
    operation: str
    device: str
    ok_errnos: frozenset[int] = frozenset()
    creates: tuple[str, ...] = ()


@dataclasses.dataclass
class _Lookup:
    name: str
    #: Read the whole link message (its kind too), not only the owner.
    full: bool = False


class _Abort(Exception):
    """Stop mode found an earlier failure while running an operation."""


def _error(exc: exception.VifPlugDynException) -> dict[str, Any]:
    message, kwargs = limits.bounded_error(exc)
    return {'type': type(exc).__name__, 'message': message,
            'kwargs': kwargs}


class Batch:
    """One run of a list of operations.

    :param sock: the netlink socket to use.
    :param stop_on_error: stop at the first error and roll back what the
        batch created (``True``), or apply everything possible.
    :param policy: what is allowed beyond the library's own devices (the
        daemon's current policy when omitted).
    """

    def __init__(self, sock: netlink.RtnlSocket,
                 stop_on_error: bool = True,
                 policy: policy_mod.Policy | None = None) -> None:
        self.sock = sock
        self.stop = stop_on_error
        self.policy = policy_mod.current() if policy is None else policy
        self.links: dict[str, Link | None] = {}
        self.results: list[dict[str, Any]] = []
        self.created: list[str] = []
        self.created_names: set[str] = set()
        self.op_created: dict[int, list[str]] = {}
        self.undoable: dict[int, bool] = {}
        self.nodes: dict[str, tuple[int, int]] = {}
        self.lookup_errors: dict[str, exception.VifPlugDynException] = {}
        self.undo_errors: list[str] = []
        self.groups_in_use: set[int] | None = None
        #: Devices per link group at the last dump, while no request of
        #: the batch can have changed them (``sizes_fresh``).
        self.group_sizes: dict[int, int] = {}
        self.sizes_fresh = False
        #: The link group of every device this batch makes. NOTE(vpd):
        #: releasing them together later is one group delete, without
        #: first moving each into a transient group (a request per
        #: device). It is not checked against the groups in use: a device
        #: of another group sharing it only means that group is never
        #: deleted whole (see :meth:`_whole_groups`).
        self.creation_group = random.randint(  # noqa: S311 - not a secret
            *TRANSIENT_GROUP_RANGE)
        self.failed = False

    # -- driver --------------------------------------------------------------

    def run(self, ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Apply validated operations.

        :param ops: operations normalised by :func:`ops.validate_batch`.
        :returns: one result dict per operation, in order.
        """
        self.results = [self._blank(i, op) for i, op in enumerate(ops)]
        self._prefetch(ops)
        for i, op in enumerate(ops):
            if self.stop and self.failed:
                break
            if not self._run_one(i, op):
                break
        self._flush()
        if self.failed:
            if self.stop:
                self._rollback()
            else:
                self._cleanup()
        return self.results

    def _run_one(self, i: int, op: dict[str, Any]) -> bool:
        undoable = self._undoable(op)
        self.undoable[i] = undoable
        barrier = self.stop and not undoable
        try:
            if barrier:
                self.flush_checked()
            self.results[i]['status'] = ops_mod.OK
            handlers.HANDLERS[op['op']](self, i, op)
            if barrier:
                self.flush_checked()
        except _Abort:
            if self.results[i]['status'] == ops_mod.OK:
                self.results[i]['status'] = ops_mod.SKIPPED
            return False
        except exception.VifPlugDynException as exc:
            self._fail(i, exc)
        except Exception as exc:  # noqa: BLE001 - never leave half a batch
            self._fail(i, exception.PrivilegedHelperFailed(
                operation=op['op'], reason=repr(exc)))
        return True

    @staticmethod
    def _blank(i: int, op: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {'index': i, 'op': op['op'],
                                  'status': ops_mod.SKIPPED, 'error': None}
        if 'name' in op or 'pf' in op:
            result['name'] = op.get('name', op.get('pf'))
        return result

    def _fail(self, i: int | None,
              exc: exception.VifPlugDynException) -> None:
        if i is None:
            self.undo_errors.append(str(exc))
            return
        self.failed = True
        result = self.results[i]
        if result['status'] != ops_mod.ERROR:
            result['status'] = ops_mod.ERROR
            result['error'] = _error(exc)

    def _undoable(self, op: dict[str, Any]) -> bool:
        kind = op['op']
        if kind in ops_mod.CREATE_OPS:
            return True
        if kind in _CHANGE_OPS:
            return self.made_here(op['name'])
        if kind in ('redirect', 'unredirect'):
            return self.made_here(op['name']) and self.made_here(op['peer'])
        return False

    def made_here(self, name: str) -> bool:
        """Whether this batch created ``name``."""
        link = self.links.get(name)
        return link is not None and link.created

    # -- netlink plumbing ------------------------------------------------

    def send(self, i: int | None, operation: str, device: str,
             build: Callable[[int], bytes],
             ok_errnos: frozenset[int] = frozenset(),
             creates: tuple[str, ...] = ()) -> None:
        """Queue a request of operation ``i`` (``None``: undo work).

        :param operation: what it does, for error reports (``setlink``).
        :param device: the device it is about, for error reports.
        :param build: called with a sequence number, returns the message.
        :param ok_errnos: kernel errors that count as success.
        :param creates: names that exist once it succeeds.
        """
        self.sizes_fresh = False
        self.sock.queue(build, _Step(i, operation, device, ok_errnos,
                                     creates))

    def _flush(self) -> None:
        for cookie, err, text, payload in self.sock.flush():
            if isinstance(cookie, _Lookup):
                self._on_lookup(cookie, err, text, payload)
            else:
                self._on_step(cookie, err, text)

    def flush_checked(self) -> None:
        """Flush; in stop mode, abort the operation if anything failed."""
        self._flush()
        if self.stop and self.failed:
            raise _Abort()

    def _on_step(self, step: _Step, err: int, text: str | None) -> None:
        if err and err not in step.ok_errnos:
            self._fail(step.op, kernel_error(step.operation, step.device,
                                             err, text))
            for name in step.creates:
                # NOTE(vpd): the create failed, so whatever holds that
                # name now is not ours: forget it, look it up afresh.
                self.links.pop(name, None)
            return
        for name in step.creates:
            self.confirm(step.op, name)

    def confirm(self, i: int | None, name: str) -> None:
        """Record that operation ``i`` created ``name``."""
        if i is None:
            return
        self.created.append(name)
        self.created_names.add(name)
        self.op_created.setdefault(i, []).append(name)

    def _prefetch(self, ops: list[dict[str, Any]]) -> None:
        """Learn every device the batch names, before any change.

        NOTE(vpd): RTM_GETLINK of one link first runs the link-watch work
        pending on it (linkwatch_sync_dev); right after 1000 taps came up
        that costs 0.2 ms each — work a deletion would just drop. A dump
        does not do it, and it also tells which link groups are in use,
        which a transient deletion group must avoid.
        """
        names = sorted({n for op in ops for n in _names(op)})
        multi_delete = any(op['op'] == 'delete' and len(op['names']) > 1
                           for op in ops)
        if len(names) > DUMP_THRESHOLD or multi_delete:
            self._dump(set(names))
        else:
            self._lookup(names)

    def _dump(self, wanted: set[str]) -> None:
        self._flush()
        groups: dict[int, int] = {}
        seen: set[str] = set()

        def visit(buf: memoryview, start: int, end: int) -> None:
            name = nlmsg.link_name(buf, start, end)
            if name in wanted:
                info = nlmsg.parse_owner(buf, start, end)
                self._store(name, info)
                seen.add(name)
                group = info['group']
            else:
                group = nlmsg.link_group(buf, start, end)
            if group is not None:
                groups[group] = groups.get(group, 0) + 1

        try:
            self.sock.dump(nlmsg.dumplinks, visit)
        except OSError as exc:
            raise kernel_error('dump links', 'all', exc.errno or 0,
                               exc.strerror)
        for name in wanted - seen:
            self.links[name] = None
        self.groups_in_use = set(groups)
        self.group_sizes = groups
        self.sizes_fresh = True

    def _lookup(self, names: list[str], full: bool = False) -> None:
        for name in names:
            self.sock.queue(functools.partial(nlmsg.getlink, name=name),
                            _Lookup(name, full))
        self._flush()

    def _on_lookup(self, lookup: _Lookup, err: int, text: str | None,
                   payload: bytes | None) -> None:
        name = lookup.name
        self.lookup_errors.pop(name, None)
        if err in netlink.NO_DEVICE:
            self.links[name] = None
            return
        if err or payload is None:
            # NOTE(vpd): raising here would drop the answers still to be
            # read in this flush; the operation naming it gets the error.
            self.links.pop(name, None)
            self.lookup_errors[name] = kernel_error('getlink', name, err,
                                                    text)
            return
        parse = nlmsg.parse_link if lookup.full else nlmsg.parse_owner
        self._store(name, parse(payload, 0, len(payload)))

    def _store(self, name: str, info: dict[str, Any]) -> None:
        alias = info['alias']
        owned, _tag = ops_mod.parse_alias(alias)
        created = name in self.created_names
        # NOTE(vpd): one prefix test per link, only for links that are
        # not ours; the batches of taps do not pay for adoption.
        adopted = not owned and alias is not None and \
            ops_mod.parse_adopted(alias) is not None
        borrowed = not owned and not adopted and alias is not None and \
            ops_mod.parse_borrowed(alias) is not None
        self.links[name] = Link(
            name=name, index=info['index'], kind=info.get('kind'),
            owned=owned or created, created=created, group=info['group'],
            adopted=adopted, alias=alias, borrowed=borrowed,
            mac=info.get('mac'))

    def get(self, name: str) -> Link | None:
        """What is known of ``name`` (looked up if unknown); ``None``
        when it does not exist.

        :raises NetlinkOperationFailed: the lookup failed.
        """
        if name not in self.links:
            self.flush_checked()
            self._lookup([name])
        if name in self.lookup_errors:
            raise self.lookup_errors[name]
        return self.links.get(name)

    def existing(self, name: str) -> Link:
        """``name``, which must exist.

        :raises DeviceNotFound: it does not.
        """
        link = self.get(name)
        if link is None:
            raise exception.DeviceNotFound(device=name)
        return link

    def owned(self, name: str, operation: str) -> Link:
        """``name``, which must exist and be ours.

        :raises DeviceNotOwned: it is not ours.
        :raises DeviceNotFound: it does not exist.
        """
        link = self.existing(name)
        if not link.owned:
            raise exception.DeviceNotOwned(operation=operation, device=name)
        return link

    def managed(self, name: str, operation: str) -> Link:
        """``name``, which must exist and be ours, or adopted when
        ``operation`` is allowed on adopted devices
        (:data:`ops.ADOPTED_OK`).

        :raises DeviceNotOwned: it is neither.
        :raises DeviceNotFound: it does not exist.
        """
        link = self.existing(name)
        if not (link.owned or (link.adopted and
                               operation in ops_mod.ADOPTED_OK)):
            raise exception.DeviceNotOwned(operation=operation, device=name)
        return link

    def kind_of(self, name: str) -> str | None:
        """The link kind of ``name`` (``None``: a kind-less device, such
        as a physical NIC).

        NOTE(vpd): the owner lookups stop reading a link message before
        its kind (see :func:`nlmsg.parse_owner`); the few operations that
        need the kind read the whole message of that one device.

        :raises DeviceNotFound: it does not exist.
        """
        link = self.existing(name)
        if link.kind is None:
            self.flush_checked()
            self.links.pop(name, None)
            self._lookup([name], full=True)
            link = self.existing(name)
        return link.kind

    def index_of(self, name: str) -> int:
        """The ifindex of ``name`` (flushing and looking it up when the
        batch created it and the kernel has not said yet).

        :raises DeviceNotFound: it does not exist.
        """
        link = self.existing(name)
        if link.index is None:
            self.flush_checked()
            self._resolve_pending(name)
            link = self.existing(name)
        assert link.index is not None
        return link.index

    def _resolve_pending(self, name: str) -> None:
        """Learn the ifindex of every device the batch has made but not
        looked up yet, ``name`` included, in one round.

        NOTE(vpd): one round trip per device made steering 1000 ports
        (macvlan created, then its index needed by the tc requests) wait
        for the kernel 1000 times, four times slower than ``ip -batch`` +
        ``tc -batch``. Asked for one, the batch learns them all: with the
        creations first and the redirects after them, a batch waits once.
        """
        pending = [n for n, link in self.links.items()
                   if link is not None and link.created and
                   link.index is None]
        if name not in pending:
            pending.append(name)
        for pending_name in pending:
            self.links.pop(pending_name, None)
        if len(pending) > DUMP_THRESHOLD:
            self._dump(set(pending))
        else:
            self._lookup(pending)

    def require_absent(self, name: str, operation: str) -> None:
        """Refuse to create over an existing name.

        :raises NetlinkOperationFailed: EEXIST.
        """
        if self.get(name) is not None:
            raise kernel_error(operation, name, errno.EEXIST)

    def provisional(self, name: str, kind: str,
                    group: int | None) -> None:
        """Record a device this batch is creating (index not known yet)."""
        self.sizes_fresh = False
        self.links[name] = Link(name=name, index=None, kind=kind,
                                owned=True, created=True, group=group)
        if group is not None and self.groups_in_use is not None:
            self.groups_in_use.add(group)

    # -- the creation journal ---------------------------------------------

    @staticmethod
    def journal(kind: str, name: str) -> None:
        """Note, before making it, a device this batch is about to make
        (see :mod:`.journal`)."""
        journal.JOURNAL.note(kind, name)

    def remove_orphans(self) -> list[str]:
        """Delete what dead daemons made but never marked as ours: devices
        their journals list that exist, have the listed kind and no alias.

        :returns: the names deleted.
        """
        entries, found = journal.JOURNAL.orphans()
        if not entries:
            journal.JOURNAL.done(found)
            return []
        for name in {name for _kind, name in entries}:
            self.sock.queue(functools.partial(nlmsg.getlink, name=name),
                            _Lookup(name))
        seen = {}
        for cookie, err, _text, payload in self.sock.flush():
            if err or payload is None or not isinstance(cookie, _Lookup):
                continue
            seen[cookie.name] = nlmsg.parse_link(payload, 0, len(payload))
        gone = []
        for kind, name in dict.fromkeys(entries):
            info = seen.get(name)
            if info is None or info['alias'] or info['kind'] != kind:
                continue
            index = info['index']
            self.sock.queue(functools.partial(nlmsg.dellink, index=index),
                            None)
            gone.append(name)
        self.sock.flush()
        journal.JOURNAL.done(found)
        self.links.clear()
        return gone

    # -- deletion ------------------------------------------------------------

    def delete_links(self, i: int | None, names: list[str],
                     missing_ok: bool) -> list[str]:
        """Delete devices already checked (ours, present): one dellink, or
        a transient group set on each and one group dellink.

        :param i: the operation (``None``: undo work).
        :returns: the names handled.
        """
        if not names:
            return []
        links = [(name, self.index_of(name)) for name in names]
        nodes = self._macvtap_nodes(links)
        gone_ok = _GONE_OK if missing_ok else frozenset()
        whole, rest = self._whole_groups(links)
        if len(rest) == 1:
            name, index = rest[0]
            self.send(i, 'dellink', name, lambda seq: nlmsg.dellink(
                seq, index=index), gone_ok)
        elif rest:
            group = self._transient_group()
            for name, index in rest:
                self.send(i, 'setlink', name, functools.partial(
                    nlmsg.setlink, index=index, group=group), gone_ok)
            self._flush()
            if self.stop and self.has_failed(i):
                # NOTE(vpd): a barrier: nothing of it may stay applied.
                self._restore_groups(rest)
                raise _Abort()
            self.send(i, 'dellink', 'group %d' % group,
                       lambda seq: nlmsg.dellink(seq, group=group), gone_ok)
        for group in whole:
            self.send(i, 'dellink', 'group %d' % group, functools.partial(
                nlmsg.dellink, group=group), gone_ok)
        self._flush()
        for name, _index in links:
            self.links[name] = None
        for index, rdev in nodes.values():
            tuntap.remove_macvtap_node(index, rdev)
        # NOTE(vpd): a deleted veth takes its peer along, a deleted bridge
        # frees its ports: forget the rest, it is looked up again when an
        # operation mentions it.
        gone = set(names)
        for name in list(self.links):
            if name not in gone:
                del self.links[name]
        return names

    def _whole_groups(self, links: list[tuple[str, int]]
                      ) -> tuple[list[int], list[tuple[str, int]]]:
        """Split devices to delete into link groups of the library's
        range that hold nothing else (deleted by group as they are) and
        the rest.

        NOTE(vpd): ports built together are usually released together;
        their devices share their batch's creation group, and a group
        whose every member is being deleted needs no transient group.
        Each device's group and ownership, and every group's size, come
        from the same dump, taken after the batch's last request: sizes
        from a fresh dump but groups from an older lookup once let a
        caller that had moved a tap into another port's group delete
        that port's tap, or an operator's bridge.

        :raises DeviceNotOwned: a device to delete is no longer ours.
        """
        if len(links) < 2:
            return [], links
        if not self.sizes_fresh:
            self._flush()
            for name, _index in links:
                self.links.pop(name, None)
            self._dump({name for name, _index in links})
        low, high = TRANSIENT_GROUP_RANGE
        by_group: dict[int | None, list[tuple[str, int]]] = {}
        for name, index in links:
            link = self.links.get(name)
            if link is not None and not link.owned:
                raise exception.DeviceNotOwned(operation='delete',
                                               device=name)
            group = None if link is None or link.index != index \
                else link.group
            by_group.setdefault(group, []).append((name, index))
        whole, rest = [], []
        for group, members in by_group.items():
            if group is not None and low <= group <= high and \
                    len(members) > 1 and \
                    self.group_sizes.get(group) == len(members):
                whole.append(group)
            else:
                rest.extend(members)
        return whole, rest

    def has_failed(self, i: int | None) -> bool:
        """Whether operation ``i`` has failed so far."""
        return i is not None and self.results[i]['status'] == ops_mod.ERROR

    def _restore_groups(self, links: list[tuple[str, int]]) -> None:
        for name, index in links:
            link = self.links.get(name)
            group = link.group if link is not None else None
            self.sock.queue(functools.partial(
                nlmsg.setlink, index=index, group=group or 0), None)
        self.sock.flush()

    def _macvtap_nodes(self, links: list[tuple[str, int]]
                       ) -> dict[str, tuple[int, int]]:
        """The /dev nodes of the macvtaps among ``links``, read before
        they go (their sysfs entry goes with them)."""
        self._flush()
        macvtaps: set[str] = set()
        try:
            # NOTE(vpd): one dump the kernel filters by kind instead of
            # one sysfs probe per device.
            self.sock.dump(functools.partial(nlmsg.dumplinks,
                                             kind='macvtap'),
                           lambda buf, start, end: macvtaps.add(
                               nlmsg.link_name(buf, start, end) or ''))
        except OSError:
            macvtaps = {name for name, _index in links}
        nodes = {}
        for name, index in links:
            if name in self.nodes:
                nodes[name] = self.nodes[name]
            elif name in macvtaps:
                try:
                    nodes[name] = (index, tuntap.macvtap_dev_number(
                        name, index))
                except OSError:
                    pass
        return nodes

    def _transient_group(self) -> int:
        if self.groups_in_use is None:
            # NOTE(vpd): the batch did not dump (rollback of a small
            # batch): learn the groups in use now, deleting another
            # group's devices is not an option.
            self._flush()
            self._dump(set())
        used = set(self.groups_in_use or ())
        used.update(link.group for link in self.links.values()
                    if link is not None and link.group is not None)
        low, high = TRANSIENT_GROUP_RANGE
        while True:
            # NOTE(vpd): not a secret, just unlikely to be in use.
            group = random.randint(low, high)  # noqa: S311
            if group not in used:
                return group

    # -- undo ----------------------------------------------------------------

    def _remove_created(self, names: list[str]) -> None:
        """Delete devices this batch created (no ownership check: a
        device whose alias could not be set is still ours).

        Failures are collected in :attr:`undo_errors`, naming what is left.
        """
        if not names:
            return
        stop, self.stop = self.stop, False
        try:
            present = self._refresh(names)
            self.delete_links(None, present, True)
            # NOTE(vpd): a device whose transient group could not be set
            # is still there; delete what is left one by one.
            for name in self._refresh(present):
                index = self.index_of(name)
                self.send(None, 'dellink', name, functools.partial(
                    nlmsg.dellink, index=index), _GONE_OK)
            self._flush()
            left = self._refresh(present)
        except Exception as exc:  # noqa: BLE001 - report, do not mask
            self.undo_errors = ['%s: %r' % (', '.join(names), exc)]
            return
        finally:
            self.stop = stop
        # NOTE(vpd): intermediate failures do not matter if in the end
        # nothing is left; what is left is what must be reported.
        self.undo_errors = (['could not remove %s' % ', '.join(left)]
                            if left else [])

    def _refresh(self, names: list[str]) -> list[str]:
        """Look names up afresh; returns those that exist."""
        for name in names:
            self.links.pop(name, None)
        self._lookup(names)
        return [n for n in names if self.links.get(n) is not None]

    def _rollback(self) -> None:
        self._remove_created(list(dict.fromkeys(self.created)))
        failed = next((r for r in self.results
                       if r['status'] == ops_mod.ERROR), None)
        if failed is not None and self.undo_errors:
            failed['rollback_error'] = '; '.join(self.undo_errors)
        for i, result in enumerate(self.results):
            if result['status'] == ops_mod.OK and self.undoable.get(i):
                result['status'] = ops_mod.ROLLED_BACK

    def _cleanup(self) -> None:
        for i, names in self.op_created.items():
            if self.results[i]['status'] != ops_mod.ERROR:
                continue
            self._remove_created(names)
            if self.undo_errors:
                self.results[i]['cleanup_error'] = '; '.join(
                    self.undo_errors)


#: Operations changing an existing device named by their ``name``: undoable
#: when the batch created it.
_CHANGE_OPS = frozenset({'set_link', 'set_bridge', 'set_bond',
                         'add_address', 'del_address'})
_NAME_KEYS = ('name', 'peer', 'master', 'peer_master', 'lower', 'pf',
              'primary')
# NOTE(vpd): add/del_address carry a 'peer' that is an IP address, not a
# device.
_ADDRESS_NAME_KEYS = ('name',)
_ADDRESS_OPS = frozenset({'add_address', 'del_address'})


def _names(op: dict[str, Any]) -> list[str]:
    """Every device name an operation mentions."""
    keys = _ADDRESS_NAME_KEYS if op['op'] in _ADDRESS_OPS else _NAME_KEYS
    names = [op[k] for k in keys if op.get(k)]
    return names + list(op.get('names') or ())


def apply(ops: list[dict[str, Any]],
          stop_on_error: bool = True) -> list[dict[str, Any]]:
    """Run validated operations as one batch on a fresh socket.

    :raises NetlinkOperationFailed: the socket itself failed.
    """
    with LOCK:
        try:
            with netlink.RtnlSocket() as sock:
                batch = Batch(sock, stop_on_error)
                batch.remove_orphans()
                try:
                    return batch.run(ops)
                finally:
                    journal.JOURNAL.clear()
        except OSError as exc:
            raise kernel_error('batch', 'netlink socket', exc.errno or 0,
                               exc.strerror)
