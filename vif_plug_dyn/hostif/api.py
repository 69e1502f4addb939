"""Host interfaces: the public API (what ``vif-plug-dyn iface`` calls).

::

    from vif_plug_dyn.hostif.api import HostInterfaceAPI

    api = HostInterfaceAPI(conf)
    api.define(open('br0.xml').read())
    api.change_begin()                 # optional: a transaction
    api.start('br0')                   # apply live (rolled back on error)
    print(api.dump_xml('br0', live=True))
    api.change_commit()                # or api.change_rollback()

Definitions are kept by :class:`~vif_plug_dyn.hostif.store.
InterfaceStore` (``interface_dir``, plus the configured persistent
backends); live work goes through :class:`~vif_plug_dyn.hostif.live.
LiveBackend` and the privileged helper, in the namespace
``[vif_plug_dyn] netns`` names (the daemon is started inside it).

Every change holds a lock under ``<state_path>/hostif`` and first puts the
host back if a previous start or stop died half way
(:mod:`vif_plug_dyn.hostif.journal`).
"""

import builtins
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from oslo_config import cfg

from vif_plug_dyn import exception
from vif_plug_dyn import host as host_mod
from vif_plug_dyn import opts
from vif_plug_dyn.hostif import desired
from vif_plug_dyn.hostif import diff as diff_mod
from vif_plug_dyn.hostif import document as document_mod
from vif_plug_dyn.hostif import journal as journal_mod
from vif_plug_dyn.hostif import live as live_mod
from vif_plug_dyn.hostif import model
from vif_plug_dyn.hostif import plan as plan_mod
from vif_plug_dyn.hostif import state as state_mod
from vif_plug_dyn.hostif import store as store_mod
from vif_plug_dyn.hostif import transactions
from vif_plug_dyn.hostif import verify as verify_mod
from vif_plug_dyn.hostif import watchdog as watchdog_mod
from vif_plug_dyn.hostif.backends import base
from vif_plug_dyn.hostif.backends import ifupdown
from vif_plug_dyn.hostif.backends import keyfile
from vif_plug_dyn.privsep import ops

LOG = logging.getLogger(__name__)

#: Persistent backends by their ``interface_backends`` name.
BACKENDS: dict[str, type[base.PersistentBackend]] = {
    'keyfile': keyfile.KeyfileBackend,
    'ifupdown': ifupdown.IfupdownBackend,
}


def make_backends(names: Iterable[str], root: str = '/'
                  ) -> list[base.PersistentBackend]:
    """Build persistent backends by name.

    :param names: some of :data:`BACKENDS`.
    :param root: the file system root they write under.
    :raises InvalidField: an unknown name.
    """
    out = []
    for name in names:
        if name not in BACKENDS:
            raise exception.InvalidField(
                field='interface_backends', value=name,
                reason='must be one of %s' % ', '.join(sorted(BACKENDS)))
        out.append(BACKENDS[name](root))
    return out


class HostInterfaceAPI(transactions.TransactionsMixin):
    """Define, start, stop, inspect and transact host interfaces.

    :param conf: the configuration (``cfg.CONF`` if omitted).
    :param host: the privileged helper's facade (a new
        :class:`~vif_plug_dyn.host.HostNetwork` if omitted).
    :param store: the definition store (built from ``interface_dir``,
        ``interface_backends`` and ``interface_root`` if omitted).
    :param step_hook: see :class:`~vif_plug_dyn.hostif.live.LiveBackend`.
    :param timer: what rolls a timed transaction back (a
        :class:`~vif_plug_dyn.hostif.watchdog.ProcessTimer` if omitted;
        see :mod:`vif_plug_dyn.hostif.watchdog` for the agent's hook).
    :raises InvalidHostInterface: a definition file is invalid.
    """

    def __init__(self, conf: cfg.ConfigOpts | None = None,
                 host: host_mod.HostNetwork | None = None,
                 store: store_mod.InterfaceStore | None = None,
                 step_hook: live_mod.StepHook | None = None,
                 timer: watchdog_mod.TransactionTimer | None = None
                 ) -> None:
        self.conf = cfg.CONF if conf is None else conf
        opts.register_opts(self.conf)
        group = self.conf[opts.GROUP]
        self.host = host if host is not None else host_mod.HostNetwork(
            self.conf)
        if store is None:
            store = store_mod.InterfaceStore(
                group.interface_dir,
                make_backends(group.interface_backends,
                              group.interface_root))
            store.load()
        self.store = store
        self.live = live_mod.LiveBackend(self.host, step_hook)
        self.journal = journal_mod.Journal(
            os.path.join(group.state_path, 'hostif'), group.lock_timeout)
        self.netns: str | None = group.netns
        self.timer: watchdog_mod.TransactionTimer = (
            timer if timer is not None
            else watchdog_mod.ProcessTimer(self.conf))

    # -- definitions ----------------------------------------------------------

    def define(self, iface: model.HostInterface | str,
               replace: bool = False) -> model.HostInterface:
        """Define (``replace``: redefine) a host interface; nothing
        changes on the live host.

        :param iface: a definition or its XML.
        :raises InvalidHostInterface: invalid, or a device another
            definition configures.
        :raises HostInterfaceExists: defined already, without ``replace``.
        :raises ForeignFile: a persistent backend would overwrite a file
            it did not write.
        """
        with self.journal.lock():
            self._recover()
            return self.store.define(iface, replace=replace)

    def undefine(self, name: str) -> dict[str, Any]:
        """Remove a definition; give its adopted devices back.

        Live devices are not stopped (like ``virsh iface-undefine``):
        devices it created stay until removed (they show in :meth:`list`
        as not defined); devices it adopted get their previous alias back
        and are the operator's again.

        :returns: ``undefined``, ``released`` (devices given back) and
            ``not_released`` (errors).
        :raises HostInterfaceNotFound: no such definition.
        :raises HostInterfaceInUse: another definition needs one of its
            devices.
        """
        with self.journal.lock():
            self._recover()
            iface = self.store.get(name)
            self.store.undefine(name)
            released, errors = self._release(iface)
        return {'undefined': name, 'released': released,
                'not_released': errors}

    def _release(self, iface: model.HostInterface
                 ) -> tuple[list[str], list[str]]:
        live = self.live.state()
        tag = state_mod.definition_tag(str(iface.name))
        records = self.journal.adoptions()
        batch = []
        for device in iface.devices():
            link = live.get(device.name)
            if link is not None and link.get('adopted') and \
                    link.get('adopted_tag') == tag:
                batch.append(ops.release(device.name,
                                         records.get(device.name)))
        if not batch:
            return [], []
        released, errors = [], []
        for op, result in zip(batch, self.host.apply(
                batch, stop_on_error=False), strict=True):
            error = ops.error_from_result(result)
            if error is None:
                released.append(op['name'])
                records.pop(op['name'], None)
            else:
                errors.append(str(error))
        self.journal.set_adoptions(records)
        return released, errors

    def get(self, name: str) -> model.HostInterface:
        """The definition called ``name``.

        :raises HostInterfaceNotFound: no such definition.
        """
        return self.store.get(name)

    # -- live ----------------------------------------------------------------

    def start(self, name: str) -> dict[str, Any]:
        """Bring a defined interface up on the host (``iface-start``).

        Devices are created or adopted and configured in dependency
        order; if any step fails the host is put back as it was.

        :returns: what was done (:meth:`.plan.Plan.summary`), including
            ``not_applied``: DHCP, autoconf and routes.
        :raises HostInterfaceNotFound: no such definition.
        :raises HostInterfaceConflict: a device cannot take its role.
        :raises HostInterfaceDependencyMissing: a VLAN's parent is
            missing.
        :raises HostInterfaceApplyFailed: a step failed; the message says
            whether the host was restored exactly.
        :raises HostInterfaceVerifyFailed: the kernel does not show what
            the definition sets (read back after the apply); the host was
            put back, or inside a transaction the transaction was rolled
            back.
        """
        return self._change(name, 'start')

    def stop(self, name: str) -> dict[str, Any]:
        """Take a defined interface down (``iface-destroy``).

        Devices the definition created are deleted; adopted devices lose
        the definition's addresses and are brought down.

        :raises HostInterfaceNotFound: no such definition.
        :raises HostInterfaceApplyFailed: a step failed; the host was
            put back.
        :raises HostInterfaceVerifyFailed: see :meth:`start`.
        """
        return self._change(name, 'stop')

    def _change(self, name: str, action: str) -> dict[str, Any]:
        with self.journal.lock():
            self._recover()
            definition = self.store.get(name)
            live = self.live.state()
            planner: Callable[..., plan_mod.Plan] = (
                plan_mod.plan_start if action == 'start'
                else plan_mod.plan_stop)
            plan = planner(definition, live)
            if plan.adopted:
                records = self.journal.adoptions()
                for device in plan.adopted:
                    records[device] = live.links[device].get('alias')
                self.journal.set_adoptions(records)
            if plan.steps:
                self._apply(plan, live, definition)
            return plan.summary()

    def _apply(self, plan: plan_mod.Plan, snapshot: state_mod.HostState,
               definition: model.HostInterface) -> None:
        # NOTE(vpd): the snapshot is on disk before the first privileged
        # step, so a crash half way can still be undone (see _recover).
        self.journal.save(journal_mod.APPLY, {
            'action': plan.action, 'name': plan.definition,
            'netns': self.netns, 'at': transactions.now(),
            'state': snapshot.to_primitive()})
        try:
            self.live.execute(plan)
            # NOTE(vpd): success is what the kernel shows, not what the
            # requests said: read it back.
            after = self.live.state()
            mismatches = (verify_mod.check_start(definition, after)
                          if plan.action == 'start' else
                          verify_mod.check_stop(definition, plan, after))
        except BaseException as exc:
            report = self.live.restore(snapshot)
            self.journal.clear(journal_mod.APPLY)
            if not isinstance(exc, Exception):
                raise
            kwargs = getattr(exc, 'kwargs', {})
            raise exception.HostInterfaceApplyFailed(
                action=plan.action.capitalize(), name=plan.definition,
                step='%s (%s)' % (kwargs.get('number', '?'),
                                  kwargs.get('step', '?')),
                reason=kwargs.get('reason', str(exc)),
                restored=_restored_text(report), report=report) from exc
        if mismatches:
            self._verify_failed(plan, snapshot, mismatches)
        self.journal.clear(journal_mod.APPLY)

    def _verify_failed(self, plan: plan_mod.Plan,
                       snapshot: state_mod.HostState,
                       mismatches: builtins.list[verify_mod.Mismatch]
                       ) -> None:
        """Undo an apply the kernel does not show as asked, and raise:
        inside a transaction the whole transaction is rolled back."""
        LOG.warning('%s of host interface %s: the kernel does not show '
                    'what was asked: %s', plan.action, plan.definition,
                    '; '.join(str(m) for m in mismatches))
        transaction = self.journal.load(journal_mod.TRANSACTION)
        if transaction is not None:
            # NOTE(vpd): the transaction's snapshot is older than this
            # apply's and covers it.
            self.journal.clear(journal_mod.APPLY)
            report = self._roll_back(transaction)
            restored = 'the transaction begun %s was rolled back: %s' % (
                transaction.get('began'), _restored_text(report))
        else:
            report = self.live.restore(snapshot)
            self.journal.clear(journal_mod.APPLY)
            restored = _restored_text(report)
        first = mismatches[0]
        raise exception.HostInterfaceVerifyFailed(
            name=plan.definition, action=plan.action, device=first.device,
            field=first.field, found=verify_mod.shown(first.found),
            wanted=verify_mod.shown(first.wanted),
            more='' if len(mismatches) == 1 else ' (and %d more)' % (
                len(mismatches) - 1),
            restored=restored,
            mismatches=[m.to_dict() for m in mismatches], report=report)

    def recover(self) -> dict[str, Any] | None:
        """Put the host back if a start or stop died half way, and roll
        back a transaction whose timeout expired (every change does this
        first).

        :returns: the restore report (see :meth:`.live.LiveBackend.
            restore`), or ``None`` when nothing was left half done.
        :raises TransactionError: the journal belongs to another
            namespace.
        """
        with self.journal.lock():
            return self._recover()

    def _recover(self) -> dict[str, Any] | None:
        """Undo a start or stop that died half way (its snapshot is still
        in the journal), then roll back a transaction whose deadline has
        passed."""
        self._last_expired = None
        report = self._recover_apply()
        document = desired.recover(self)
        self._expire_due()
        return report or document

    def _recover_apply(self) -> dict[str, Any] | None:
        document = self.journal.load(journal_mod.APPLY)
        if document is None:
            return None
        self._check_netns(document)
        LOG.warning('A %s of host interface %s (at %s) did not finish; '
                    'putting the host back as it was before it',
                    document.get('action'), document.get('name'),
                    document.get('at'))
        report = self.live.restore(state_mod.HostState.from_dump(
            document['state']))
        self.journal.clear(journal_mod.APPLY)
        return report

    def _check_netns(self, document: dict[str, Any]) -> None:
        if document.get('netns') != self.netns:
            raise exception.TransactionError(
                reason='the journal was written for network namespace %s, '
                       'this configuration serves %s' % (
                           document.get('netns') or '(the host)',
                           self.netns or '(the host)'))

    # -- whole desired states ----------------------------------------------

    def apply(self, document: document_mod.Document | str | bytes,
              dry_run: bool = False, source: str = '<string>'
              ) -> dict[str, Any]:
        """Apply a document of several definitions in one go, all or
        nothing; with ``dry_run`` only say what it would do (see
        :mod:`vif_plug_dyn.hostif.desired`).

        :param document: a :class:`~vif_plug_dyn.hostif.document.
            Document`, or its text (XML, YAML or JSON).
        :param source: where the text came from, used in errors.
        :returns: the plan: ``definitions``, ``devices`` (per device:
            ``action`` and ``fields`` with ``from``/``to``), ``files``,
            ``not_applied``, ``changed`` and ``applied``.
        :raises InvalidInterfaceDocument: the document is invalid.
        :raises HostInterfaceApplyFailed: a step failed; the host, the
            definitions and the files were put back.
        :raises HostInterfaceVerifyFailed: see :meth:`start`.
        """
        if not isinstance(document, document_mod.Document):
            document = document_mod.parse(document, source)
        return desired.apply(self, document, dry_run=dry_run)

    def diff(self, name: str) -> dict[str, Any]:
        """What differs between a definition, the live host and the
        persisted files (see :func:`vif_plug_dyn.hostif.diff.diff`).

        :raises HostInterfaceNotFound: no such definition.
        """
        return diff_mod.diff(self, name)

    # -- reading -------------------------------------------------------------

    # NOTE(vpd): named like InterfaceStore.list and virsh iface-list;
    # annotations after it in this class spell builtins.list.
    def list(self) -> builtins.list[dict[str, Any]]:
        """Defined interfaces and whether they are active (their device
        is up), then live devices that definitions no longer name
        (``defined`` false).

        :returns: dicts with ``name``, ``kind``, ``defined``, ``active``,
            ``present`` and ``managed`` (``created``, ``adopted``,
            ``foreign`` or ``other``).
        """
        live = self.live.state()
        out = []
        named: set[str] = set()
        for definition in self.store.list():
            name = str(definition.name)
            named.update(d.name for d in definition.devices())
            link = live.get(name)
            out.append({'name': name, 'kind': definition.kind,
                        'defined': True,
                        'active': bool(link is not None and link['up']),
                        'present': link is not None,
                        'managed': (None if link is None
                                    else state_mod.marker(link)[0])})
        for name in sorted(live.hostif_names() - named):
            link = live.links[name]
            role, owner = state_mod.marker(link)
            out.append({'name': name,
                        'kind': plan_mod.model_kind(link['kind']),
                        'defined': False, 'active': bool(link['up']),
                        'present': True, 'managed': role,
                        'definition': owner})
        return out

    def dump_xml(self, name: str, live: bool = False) -> str:
        """A definition as XML, or with ``live`` the device's live state
        (``virsh iface-dumpxml``).

        :raises HostInterfaceNotFound: no such definition (not live).
        :raises DeviceNotFound: no such device (live).
        """
        if live:
            return self.live.dump_live_xml(name)
        return self.store.get(name).to_xml()

    def dump_live(self, name: str) -> model.HostInterface:
        """A live device read into the definition model.

        :raises DeviceNotFound: no such device.
        """
        return self.live.dump_live(name)


def _restored_text(report: dict[str, Any]) -> str:
    if report.get('restored') and not report.get('errors'):
        return 'the host was put back as it was'
    problems = (report.get('errors', []) + report.get('unrestorable', []) +
                report.get('differences', []))
    return 'restoring the host left differences: %s' % '; '.join(problems)
