"""Whole desired states: ``iface apply`` and its plan.

:func:`apply` makes a :class:`~vif_plug_dyn.hostif.document.Document`
real in one go, all or nothing:

1. the document is checked whole against the other definitions and the
   host (one definition per device, dependencies, no loops, nothing
   another definition still needs is removed, no foreign file is
   touched, every value can be written) — before anything changes;
2. a snapshot (links and addresses, definitions, adoption records) is
   written to ``<state_path>/hostif/document.json``;
3. definitions listed as absent are stopped and undefined (dependants
   first), then the document's definitions are defined and started in
   dependency order (a VLAN's definition after the definition of the
   bond it sits on); a redefinition first takes out the devices it no
   longer names (deleted if it created them, given back if it adopted
   them); every step is read back and checked (:mod:`.verify`);
4. on any failure the snapshot is put back — host, definitions,
   persistent files — and the error names the definition and the step.
   A failed read-back inside an open transaction rolls the transaction
   back, as a single start does.

With ``dry_run`` the same checks run and :func:`plan` reports what would
happen — per definition, per device (create, adopt, change, delete,
release) with each field's current and new value, and the files that
would be written or removed — and nothing changes.
"""

import dataclasses
import heapq
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from vif_plug_dyn import exception
from vif_plug_dyn.hostif import document as document_mod
from vif_plug_dyn.hostif import files
from vif_plug_dyn.hostif import journal as journal_mod
from vif_plug_dyn.hostif import model
from vif_plug_dyn.hostif import order as ordering
from vif_plug_dyn.hostif import plan as plan_mod
from vif_plug_dyn.hostif import state as state_mod
from vif_plug_dyn.hostif import store as store_mod
from vif_plug_dyn.hostif import transactions
from vif_plug_dyn.hostif import verify
from vif_plug_dyn.privsep import ops

if TYPE_CHECKING:
    from vif_plug_dyn.hostif.api import HostInterfaceAPI

@dataclasses.dataclass
class Change:
    """What a document does to one definition.

    :ivar name: the definition.
    :ivar action: ``define``, ``redefine``, ``unchanged`` (defined as
        is; still started) or ``undefine``.
    :ivar old: the current definition, if any.
    :ivar new: the document's definition (``None``: undefined).
    :ivar dropped: devices of ``old`` that ``new`` no longer names.
    """

    name: str
    action: str
    old: model.HostInterface | None
    new: model.HostInterface | None
    dropped: list[str] = dataclasses.field(default_factory=list)


class _Mismatched(Exception):
    def __init__(self, action: str, name: str,
                 mismatches: list[verify.Mismatch]) -> None:
        super().__init__(action, name)
        self.action, self.name, self.mismatches = action, name, mismatches


def definition_order(definitions: Iterable[model.HostInterface]
                     ) -> list[model.HostInterface]:
    """Order definitions so that one comes after every definition whose
    devices it needs (ties by name).

    :raises HostInterfaceCycle: definitions need each other in a loop.
    """
    defs = {str(d.name): d for d in definitions}
    owner = {dev.name: name for name, d in defs.items()
             for dev in d.devices()}
    needs = {name: {owner[r] for dev in d.devices() for r in dev.requires
                    if owner.get(r, name) != name}
             for name, d in defs.items()}
    waiting = {name: len(deps) for name, deps in needs.items()}
    ready = [name for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    out = []
    while ready:
        name = heapq.heappop(ready)
        out.append(defs[name])
        for user in sorted(n for n, deps in needs.items() if name in deps):
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, user)
    if len(out) != len(defs):
        raise exception.HostInterfaceCycle(cycle=' -> '.join(sorted(
            n for n, count in waiting.items() if count)))
    return out


def changes(api: 'HostInterfaceAPI', document: document_mod.Document,
            live: state_mod.HostState) -> list[Change]:
    """Check a document whole and list what it does, in the order it is
    done: removals (dependants first), then definitions in dependency
    order.

    :raises HostInterfaceDependencyMissing: a device needs one neither
        defined nor on the host.
    :raises HostInterfaceCycle: a dependency loop.
    :raises InvalidHostInterface: a device in two definitions.
    :raises HostInterfaceInUse: an absent definition (or a dropped
        device) is needed by a definition that stays.
    """
    current = {str(d.name): d for d in api.store.list()}
    wanted = {n: d for n, d in current.items() if n not in document.absent}
    wanted.update((str(d.name), d) for d in document.interfaces)
    # NOTE(vpd): devices a definition created may go with it; only the
    # others satisfy a dependency from outside the definitions.
    present = {n for n, link in live.links.items()
               if state_mod.marker(link)[0] != state_mod.CREATED}
    # NOTE(vpd): definitions the document leaves alone may name devices
    # this host does not have (a store allows that); the document's own
    # must find every device they need.
    devices = ordering.dependency_order(wanted.values(), present,
                                        missing_ok=True).apply
    known = present | {d.name for d in devices}
    named = {str(d.name) for d in document.interfaces}
    for device in devices:
        for needed in device.requires:
            if device.definition in named and needed not in known:
                raise exception.HostInterfaceDependencyMissing(
                    name=device.name, definition=device.definition,
                    needs=needed)
    order = [str(d.name) for d in definition_order(wanted.values())]
    out = []
    for gone in reversed(definition_order(current.values())):
        if str(gone.name) in document.absent:
            store_mod.InterfaceStore.check_users(gone, None,
                                                 list(wanted.values()))
            out.append(Change(str(gone.name), 'undefine', gone, None))
    for name in order:
        if name not in named:
            continue
        new, old = wanted[name], current.get(name)
        action = 'define' if old is None else (
            'unchanged' if old.to_xml() == new.to_xml() else 'redefine')
        dropped = []
        if old is not None:
            others = [d for n, d in wanted.items() if n != name]
            store_mod.InterfaceStore.check_users(old, new, others)
            kept = {d.name for d in new.devices()}
            dropped = [d.name for d in old.devices() if d.name not in kept]
        out.append(Change(name, action, old, new, dropped))
    return out


# --- the plan ----------------------------------------------------------------

def _placeholder(device: model.Device, index: int) -> dict[str, Any]:
    """A stand-in for a device a definition would create, with nothing
    set: comparing the definition with it lists every field it sets."""
    return {'name': device.name, 'index': index, 'kind': device.kind,
            'mtu': None, 'mac': None, 'up': False, 'carrier': False,
            'master_index': None, 'link_index': None, 'group': 0,
            'alias': None, 'owned': True,
            'tag': state_mod.definition_tag(device.definition),
            'adopted': False, 'adopted_tag': None, 'operstate': None,
            'data': {}}


def _devices(change: Change, live: state_mod.HostState,
             made: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The devices part of the plan of one change; adds placeholders
    for what it creates to ``made``."""
    out: list[dict[str, Any]] = []
    if change.old is not None and (change.new is None or change.dropped):
        stop = plan_mod.plan_stop(change.old, live) if change.new is None \
            else _prune(change, live)
        names = set(change.dropped) if change.new is not None else {
            d.name for d in change.old.devices()}
        fields = _by_device(verify.check_stop(change.old, stop, live))
        tag = state_mod.definition_tag(change.name)
        for device in reversed(change.old.devices()):
            link = live.get(device.name)
            if device.name not in names or link is None:
                continue
            if device.name in stop.deleted:
                action = 'delete'
            elif link.get('adopted_tag') == tag:
                action = 'release'
            else:
                continue
            out.append({'device': device.name, 'definition': change.name,
                        'action': action,
                        'fields': fields.get(device.name, [])})
    if change.new is None:
        return out
    for device in change.new.devices():
        link = live.get(device.name)
        if link is None and device.create:
            made[device.name] = _placeholder(device, -1 - len(made))
    view = state_mod.HostState(links=dict(live.links, **made),
                               addresses=live.addresses)
    fields = _by_device(verify.check_start(change.new, view))
    for device in change.new.devices():
        role = plan_mod.role(change.new, device, live.get(device.name))
        action = {'new': 'create', 'adopt': 'adopt'}.get(
            role, 'change' if fields.get(device.name) else 'unchanged')
        out.append({'device': device.name, 'definition': change.name,
                    'action': action, 'fields': fields.get(device.name, [])})
    return out


def _by_device(mismatches: list[verify.Mismatch]
               ) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for item in mismatches:
        out.setdefault(item.device, []).append(
            {'field': item.field, 'from': item.found, 'to': item.wanted})
    return out


def _files(api: 'HostInterfaceAPI', change: Change
           ) -> list[dict[str, str]]:
    """The files a change writes or removes (checked as a write would:
    foreign files and unsafe values are refused)."""
    out = []
    store = api.store
    new, old = change.new, change.old
    targets: dict[str, str] = {}
    if new is not None:
        # NOTE(vpd): the same checks define() makes, before any write.
        store.check(new)
        targets[os.path.join(store.directory, change.name + '.xml')] = \
            new.to_xml()
    for backend in store.backends:
        if new is None:
            backend.check(None, old)
        else:
            for name, text in backend.render(new).items():
                targets[os.path.join(backend.directory, name)] = text
    gone = []
    if old is not None:
        gone.append(os.path.join(store.directory, change.name + '.xml'))
        for backend in store.backends:
            gone.extend(backend.paths(old))
    for path in sorted(targets):
        current = files.read_regular(path)
        if current != targets[path]:
            out.append({'path': path, 'action': 'create' if current is None
                        else 'change'})
    for path in sorted(set(gone) - set(targets)):
        if files.read_regular(path) is not None:
            out.append({'path': path, 'action': 'remove'})
    return out


def plan(api: 'HostInterfaceAPI', document: document_mod.Document,
         live: state_mod.HostState, steps: list[Change]
         ) -> dict[str, Any]:
    """What applying ``document`` does (see the module docstring)."""
    made: dict[str, dict[str, Any]] = {}
    devices: list[dict[str, Any]] = []
    file_changes: list[dict[str, str]] = []
    not_applied: list[str] = []
    for change in steps:
        devices.extend(_devices(change, live, made))
        file_changes.extend(_files(api, change))
        if change.new is not None:
            not_applied.extend('%s: %s' % (change.name, text) for text in
                               plan_mod.not_applied(change.new))
    changed = any(d['action'] != 'unchanged' for d in devices) or \
        bool(file_changes)
    return {'source': document.source,
            'definitions': [{'name': c.name, 'action': c.action}
                            for c in steps],
            'devices': devices, 'files': file_changes,
            'not_applied': not_applied, 'changed': changed}


# --- applying ----------------------------------------------------------------

def apply(api: 'HostInterfaceAPI', document: document_mod.Document,
          dry_run: bool = False) -> dict[str, Any]:
    """Apply a document, all or nothing (see the module docstring).

    :returns: the plan (:func:`plan`), with ``applied``.
    :raises HostInterfaceApplyFailed: a step failed; everything was put
        back.
    :raises HostInterfaceVerifyFailed: the kernel does not show what a
        definition sets; everything was put back (inside a transaction,
        the transaction was rolled back).
    """
    with api.journal.lock():
        api._recover()
        live = api.live.state()
        steps = changes(api, document, live)
        report = plan(api, document, live, steps)
        report['applied'] = False
        if dry_run:
            return report
        snapshot = {'netns': api.netns, 'at': transactions.now(),
                    'source': document.source,
                    'state': live.to_primitive(),
                    'definitions': {str(d.name): d.to_xml()
                                    for d in api.store.list()},
                    'adoptions': api.journal.adoptions()}
        api.journal.save(journal_mod.DOCUMENT, snapshot)
        current: Change | None = None
        try:
            for current in steps:
                _run(api, current)
        except BaseException as exc:
            _failed(api, snapshot, current, exc)
        api.journal.clear(journal_mod.DOCUMENT)
        report['applied'] = True
        return report


def _run(api: 'HostInterfaceAPI', change: Change) -> None:
    if change.old is not None and (change.new is None or change.dropped):
        live = api.live.state()
        stop = plan_mod.plan_stop(change.old, live) if change.new is None \
            else _prune(change, live)
        _execute(api, stop)
        if change.new is None:
            mismatches = verify.check_stop(change.old, stop,
                                           api.live.state())
            if mismatches:
                raise _Mismatched('stop', change.name, mismatches)
            api.store.undefine(change.name)
        _give_back(api, change)
    if change.new is None:
        return
    # NOTE(vpd): written even when unchanged: it repairs persistent files
    # that drifted (see diff()).
    api.store.define(change.new, replace=True)
    live = api.live.state()
    start = plan_mod.plan_start(change.new, live)
    if start.adopted:
        records = api.journal.adoptions()
        for device in start.adopted:
            records[device] = live.links[device].get('alias')
        api.journal.set_adoptions(records)
    _execute(api, start)
    mismatches = verify.check_start(change.new, api.live.state())
    if mismatches:
        raise _Mismatched('start', change.name, mismatches)


def _execute(api: 'HostInterfaceAPI', steps: plan_mod.Plan) -> None:
    try:
        api.live.execute(steps)
    except exception.HostInterfaceStepFailed as exc:
        raise exception.HostInterfaceApplyFailed(
            action=steps.action.capitalize(), name=steps.definition,
            step='%s (%s)' % (exc.kwargs.get('number'),
                              exc.kwargs.get('step')),
            reason=exc.kwargs.get('reason'), restored='') from exc


def _prune(change: Change, live: state_mod.HostState) -> plan_mod.Plan:
    """Take out the devices a redefinition no longer names: delete those
    it created, take those it adopted out of their master and down (they
    are given back afterwards)."""
    assert change.old is not None
    steps = plan_mod.Plan('stop', change.name)
    devices = {d.name: d for d in change.old.devices()}
    links: list[dict[str, Any]] = []
    deleted: list[str] = []
    for device in reversed(change.old.devices()):
        link = live.get(device.name)
        if device.name not in change.dropped or link is None:
            continue
        role, owner = state_mod.marker(link)
        if owner != change.name:
            continue
        if role == state_mod.CREATED:
            deleted.append(device.name)
            continue
        master = live.master_of(device.name)
        if master is not None and master == devices[device.name].master:
            links.append(ops.set_link(device.name, nomaster=True))
        if link['up']:
            links.append(ops.set_link(device.name, up=False))
    steps.add('links', links)
    if deleted:
        steps.add('delete', [ops.delete(deleted)])
        steps.deleted.extend(deleted)
    return steps


def _give_back(api: 'HostInterfaceAPI', change: Change) -> None:
    """Release devices the change's old definition adopted and no
    definition names any more."""
    assert change.old is not None
    live = api.live.state()
    tag = state_mod.definition_tag(change.name)
    records = api.journal.adoptions()
    names = [d.name for d in change.old.devices()
             if change.new is None or d.name in change.dropped]
    batch = [ops.release(n, records.get(n)) for n in names
             if (live.get(n) or {}).get('adopted_tag') == tag]
    if not batch:
        return
    for op, result in zip(batch, api.host.apply(batch, stop_on_error=True),
                          strict=True):
        error = ops.error_from_result(result)
        if error is not None:
            raise error
        records.pop(op['name'], None)
    api.journal.set_adoptions(records)


def _failed(api: 'HostInterfaceAPI', snapshot: dict[str, Any],
            change: Change | None, exc: BaseException) -> None:
    """Put everything back after a failed apply, and raise."""
    transaction = api.journal.load(journal_mod.TRANSACTION)
    if isinstance(exc, _Mismatched) and transaction is not None:
        api.journal.clear(journal_mod.DOCUMENT)
        report = api._roll_back(transaction)
        restored = 'the transaction begun %s was rolled back: %s' % (
            transaction.get('began'), _restored(report))
    else:
        report = api._restore_snapshot(snapshot)
        api.journal.clear(journal_mod.DOCUMENT)
        restored = 'nothing of %s was applied: %s' % (
            snapshot.get('source'), _restored(report))
    if not isinstance(exc, Exception):
        raise exc
    if isinstance(exc, _Mismatched):
        first = exc.mismatches[0]
        raise exception.HostInterfaceVerifyFailed(
            name=exc.name, action=exc.action, device=first.device,
            field=first.field, found=verify.shown(first.found),
            wanted=verify.shown(first.wanted),
            more='' if len(exc.mismatches) == 1 else ' (and %d more)'
            % (len(exc.mismatches) - 1), restored=restored,
            mismatches=[m.to_dict() for m in exc.mismatches],
            report=report) from None
    kwargs = getattr(exc, 'kwargs', {})
    name = change.name if change is not None else '?'
    if isinstance(exc, exception.HostInterfaceApplyFailed):
        raise exception.HostInterfaceApplyFailed(
            action=kwargs.get('action'), name=kwargs.get('name'),
            step=kwargs.get('step'), reason=kwargs.get('reason'),
            restored=restored, report=report) from exc
    raise exception.HostInterfaceApplyFailed(
        action='Apply', name=name, step='(%s)' % (
            change.action if change is not None else 'check'),
        reason=str(exc), restored=restored, report=report) from exc


def _restored(report: dict[str, Any]) -> str:
    problems = (report.get('errors', []) + report.get('unrestorable', []) +
                report.get('differences', []) +
                (report.get('definitions') or {}).get('errors', []))
    if report.get('restored') and not problems:
        return 'the host and the definitions were put back as they were'
    return 'putting things back left differences: %s' % '; '.join(problems)


def recover(api: 'HostInterfaceAPI') -> dict[str, Any] | None:
    """Undo an apply that died half way (hold the lock).

    :returns: the restore report, or ``None`` when there was none.
    """
    snapshot = api.journal.load(journal_mod.DOCUMENT)
    if snapshot is None:
        return None
    report = api._restore_snapshot(snapshot)
    api.journal.clear(journal_mod.DOCUMENT)
    return report
