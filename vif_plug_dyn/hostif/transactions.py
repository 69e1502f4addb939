"""Host interface transactions: ``change-begin``, ``-commit``,
``-rollback``, and the rollback that fires by itself.

:class:`TransactionsMixin` is part of :class:`~vif_plug_dyn.hostif.api.
HostInterfaceAPI`. A transaction is the snapshot ``change-begin`` took
(links and addresses, definitions, adoption records) in
``<state_path>/hostif/transaction.json``. With a timeout it also has a
deadline: unless it is committed by then, it is rolled back by the timer
(:mod:`vif_plug_dyn.hostif.watchdog`) or, should the timer be gone, by
the next command, and a notice says so once.
"""

import builtins
import datetime
import logging
import math
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from vif_plug_dyn import exception
from vif_plug_dyn.hostif import journal as journal_mod
from vif_plug_dyn.hostif import live as live_mod
from vif_plug_dyn.hostif import model
from vif_plug_dyn.hostif import state as state_mod
from vif_plug_dyn.hostif import store as store_mod
from vif_plug_dyn.hostif import watchdog as watchdog_mod

LOG = logging.getLogger(__name__)

#: Longest timeout of a transaction, in seconds (a day).
MAX_TIMEOUT = 86400.0


def now() -> str:
    """The time, as the journal writes it (UTC, ISO 8601)."""
    return _iso(time.time())


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(
        epoch, datetime.UTC).isoformat(timespec='seconds')


def check_timeout(timeout: Any) -> float | None:
    """Validate a transaction timeout.

    :raises InvalidField: not a number of seconds above 0 and up to
        :data:`MAX_TIMEOUT`.
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or \
            not isinstance(timeout, (int, float)) or \
            not math.isfinite(timeout) or not 0 < timeout <= MAX_TIMEOUT:
        raise exception.InvalidField(
            field='timeout', value=timeout,
            reason='must be a number of seconds above 0 and at most %g'
                   % MAX_TIMEOUT)
    return float(timeout)


class TransactionsMixin:
    """Transactions of :class:`~vif_plug_dyn.hostif.api.
    HostInterfaceAPI` (see the module docstring)."""

    journal: journal_mod.Journal
    live: live_mod.LiveBackend
    store: store_mod.InterfaceStore
    netns: str | None
    timer: watchdog_mod.TransactionTimer
    _recover: Callable[[], dict[str, Any] | None]
    _check_netns: Callable[[dict[str, Any]], None]

    def transaction(self) -> dict[str, Any] | None:
        """The open transaction, or ``None``.

        :returns: ``began``, ``netns``, ``timeout`` and ``deadline`` (ISO
            time, ``None`` without a timeout), ``remaining`` (seconds)
            and ``watchdog`` (what the timer keeps, e.g. its PID).
        """
        document = self.journal.load(journal_mod.TRANSACTION)
        if document is None:
            return None
        deadline = document.get('deadline')
        return {'began': document.get('began'),
                'netns': document.get('netns'),
                'timeout': document.get('timeout'),
                'deadline': None if deadline is None else _iso(deadline),
                'remaining': None if deadline is None else round(
                    max(0.0, deadline - time.time()), 1),
                'watchdog': document.get('watchdog')}

    def change_begin(self, timeout: float | None = None) -> dict[str, Any]:
        """Snapshot the host's links and addresses, the definitions and
        the adoption records (``virsh iface-begin``).

        :param timeout: roll back by itself unless :meth:`change_commit`
            is called within this many seconds (``None``: never). The
            rollback does not depend on this process: see
            :mod:`vif_plug_dyn.hostif.watchdog`.
        :returns: ``began``, ``links``, ``definitions`` and, with a
            timeout, ``deadline`` and ``watchdog``.
        :raises TransactionError: a transaction is already open, or the
            timer could not be armed (then none is open).
        :raises InvalidField: the timeout is not a number of seconds.
        """
        timeout = check_timeout(timeout)
        with self.journal.lock():
            self._recover()
            current = self.journal.load(journal_mod.TRANSACTION)
            if current is not None:
                raise exception.TransactionError(
                    reason='a transaction is already open (begun %s); '
                           'commit or roll it back first'
                           % current.get('began'))
            live = self.live.state()
            began = now()
            definitions = {str(d.name): d.to_xml()
                           for d in self.store.list()}
            document: dict[str, Any] = {
                'id': uuid.uuid4().hex, 'began': began,
                'netns': self.netns, 'state': live.to_primitive(),
                'definitions': definitions,
                'adoptions': self.journal.adoptions(),
                'timeout': timeout, 'deadline': None}
            result: dict[str, Any] = {'began': began,
                                      'links': len(live.links),
                                      'definitions': len(definitions)}
            if timeout is not None:
                document['deadline'] = time.time() + timeout
            # NOTE(vpd): on disk before the timer starts: the watchdog
            # reads its deadline from the file.
            self.journal.save(journal_mod.TRANSACTION, document)
            if timeout is not None:
                try:
                    document['watchdog'] = self.timer.arm(dict(
                        document, directory=self.journal.directory))
                except BaseException:
                    self.journal.clear(journal_mod.TRANSACTION)
                    raise
                self.journal.save(journal_mod.TRANSACTION, document)
                result.update(timeout=timeout,
                              deadline=_iso(document['deadline']),
                              watchdog=document['watchdog'])
                LOG.info('Transaction begun %s rolls back by itself at %s '
                         'unless committed', began,
                         _iso(document['deadline']))
        return result

    def change_commit(self) -> dict[str, Any]:
        """Keep every change since :meth:`change_begin`
        (``virsh iface-commit``).

        :raises TransactionError: no transaction is open (its timeout may
            have expired: it was rolled back then).
        """
        with self.journal.lock():
            self._recover()
            document = self._open_transaction()
            self.journal.clear(journal_mod.TRANSACTION)
            self._disarm(document)
        return {'committed': document.get('began')}

    def change_rollback(self) -> dict[str, Any]:
        """Put the host and the definitions back as they were at
        :meth:`change_begin` (``virsh iface-rollback``); works from a new
        process after a crash.

        :returns: ``rolled_back`` (when the transaction began),
            ``restored``, ``errors``, ``unrestorable``, ``differences``
            (see :meth:`.live.LiveBackend.restore`) and ``definitions``.
        :raises TransactionError: no transaction is open, or it belongs to
            another namespace.
        """
        with self.journal.lock():
            self._recover()
            document = self._open_transaction()
            return self._roll_back(document)

    def expire(self, token: str | None = None) -> dict[str, Any] | None:
        """Roll the open transaction back if its deadline has passed
        (what the timer calls; every command does it first too).

        :param token: only the transaction of this id.
        :returns: the rollback report, or ``None`` when there was nothing
            to roll back (no such transaction, or not due yet).
        :raises TransactionError: the lock is held too long by another
            process, or the journal is damaged.
        """
        with self.journal.lock():
            # NOTE(vpd): _recover rolls an expired transaction back.
            before = self.journal.load(journal_mod.TRANSACTION)
            if before is None or (token is not None and
                                  before.get('id') != token):
                return None
            self._recover()
            after = self.journal.load(journal_mod.TRANSACTION)
            if after is not None and after.get('id') == before.get('id'):
                return None
            return self._last_expired

    def take_notices(self, timeout: float = 1.0
                     ) -> builtins.list[dict[str, Any]]:
        """What happened by itself since the last command (automatic
        rollbacks), each reported once.

        :param timeout: seconds to wait for the lock; when it is busy the
            notices wait for the next call.
        :returns: dicts with ``event`` (``timeout-rollback``), ``at``,
            ``began``, ``timeout``, ``restored`` and ``message``.
        """
        # NOTE(vpd): most commands have nothing to report: do not create
        # the state directory or its lock just to find that out.
        if not os.path.exists(self.journal.path(journal_mod.NOTICES)):
            return []
        try:
            with self.journal.lock(timeout=timeout):
                return self.journal.take_notices()
        except exception.TransactionError:
            return []

    # -- internals ----------------------------------------------------------

    _last_expired: dict[str, Any] | None = None

    def _expire_due(self) -> None:
        """Roll back the open transaction if its deadline has passed
        (hold the lock)."""
        document = self.journal.load(journal_mod.TRANSACTION)
        if document is None or document.get('deadline') is None or \
                time.time() < float(document['deadline']):
            return
        LOG.warning('The host interface transaction begun %s was not '
                    'committed within %gs: rolling it back',
                    document.get('began'), document.get('timeout'))
        report = self._roll_back(document)
        restored = bool(report.get('restored')) and not \
            report['definitions'].get('errors')
        message = ('the transaction begun %s was not committed within %gs '
                   'and was rolled back automatically at %s; %s' % (
                       document.get('began'), float(document['timeout']),
                       now(), 'the host is as it was at change-begin'
                       if restored else 'differences remain: %s'
                       % '; '.join(report['errors'] +
                                   report['unrestorable'] +
                                   report['differences'] +
                                   report['definitions']['errors'])))
        self.journal.add_notice({
            'event': 'timeout-rollback', 'at': now(),
            'began': document.get('began'),
            'timeout': document.get('timeout'), 'restored': restored,
            'message': message})
        LOG.warning('Automatic rollback: %s', message)
        self._last_expired = report

    def _restore_snapshot(self, document: dict[str, Any]
                          ) -> dict[str, Any]:
        """Put back the links and addresses, definitions and adoption
        records of a snapshot (hold the lock).

        :returns: the restore report, with ``definitions``.
        """
        self._check_netns(document)
        report = self.live.restore(state_mod.HostState.from_dump(
            document['state']))
        report['definitions'] = self._restore_definitions(
            document.get('definitions') or {})
        self.journal.set_adoptions(dict(document.get('adoptions') or {}))
        return report

    def _roll_back(self, document: dict[str, Any]) -> dict[str, Any]:
        """Put back the snapshot of ``document`` and end it (hold the
        lock)."""
        report = self._restore_snapshot(document)
        self.journal.clear(journal_mod.TRANSACTION)
        self._disarm(document)
        report['rolled_back'] = document.get('began')
        return report

    def _disarm(self, document: dict[str, Any]) -> None:
        if document.get('deadline') is None:
            return
        try:
            self.timer.disarm(document)
        except Exception as exc:
            # NOTE(vpd): a timer left behind finds no transaction of its
            # id and exits; nothing depends on ending it now.
            LOG.warning('Could not end the transaction timer: %s', exc)

    def _open_transaction(self) -> dict[str, Any]:
        document = self.journal.load(journal_mod.TRANSACTION)
        if document is None:
            reason = 'no transaction is open (use change-begin)'
            if self._last_expired is not None:
                reason = ('no transaction is open: its timeout expired and '
                          'it was rolled back automatically')
            raise exception.TransactionError(reason=reason)
        return document

    def _restore_definitions(self, saved: dict[str, str]
                             ) -> dict[str, builtins.list[str]]:
        current = {str(d.name): d for d in self.store.list()}
        wanted = {name: model.HostInterface.from_xml(text, source=name)
                  for name, text in saved.items()}
        added = sorted(n for n in current if n not in wanted)
        changed = sorted(n for n in wanted if n in current and
                         current[n].to_xml() != wanted[n].to_xml())
        removed = sorted(n for n in wanted if n not in current)
        # NOTE(vpd): definitions check each other (a device has one
        # definition, a VLAN's parent must not vanish): undefine what is
        # new first, then put back the changed ones before the removed
        # ones, retrying while that makes progress.
        undone, errors = until_stuck(self.store.undefine, added)
        redone, more = until_stuck(
            lambda n: self.store.define(wanted[n], replace=True),
            changed + removed)
        return {'undefined': undone, 'redefined': redone,
                'errors': errors + more}


def until_stuck(action: Callable[[str], Any], names: builtins.list[str]
                ) -> tuple[builtins.list[str], builtins.list[str]]:
    """Apply ``action`` to every name, retrying those that fail while
    that makes progress.

    :returns: the names done, and the errors of those left.
    """
    done: builtins.list[str] = []
    pending = list(names)
    errors: dict[str, str] = {}
    while pending:
        progress = False
        for name in list(pending):
            try:
                action(name)
            except exception.VifPlugDynException as exc:
                errors[name] = str(exc)
                continue
            done.append(name)
            pending.remove(name)
            errors.pop(name, None)
            progress = True
        if not progress:
            break
    return done, [errors[n] for n in pending if n in errors]
