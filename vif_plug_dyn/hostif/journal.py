"""Files under the state path that make host interface changes
recoverable.

``<state_path>/hostif/`` holds:

``transaction.json``
    the snapshot :meth:`HostInterfaceAPI.change_begin` took (live links
    and addresses, definitions, adoption records), until the transaction
    is committed or rolled back — a crash in between leaves it there, so
    the rollback still works from a new process, as libvirt's
    ``iface-begin`` does with netcf;
``apply.json``
    the snapshot of one start or stop while it runs; if the process dies
    half way, the next change finds it and puts the host back first;
``document.json``
    the snapshot of an ``iface apply`` while it runs (links and
    addresses, definitions, adoption records): all or nothing, even if
    the process dies half way;
``adoptions.json``
    the alias each adopted device had, given back when its definition is
    undefined;
``notices.json``
    automatic rollbacks (a transaction whose timeout expired) not yet
    reported: the next command reports them, once;
``watchdog.pid``, ``watchdog.log``
    the process that rolls a timed transaction back
    (:mod:`vif_plug_dyn.hostif.watchdog`), and what it did;
``lock``
    an advisory lock (``flock``) held by every change, so two processes
    (the CLI and an agent) never apply at the same time.

Files are written atomically (:func:`vif_plug_dyn.hostif.files.
atomic_write`), mode 0600: a snapshot lists the host's addresses.
"""

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from typing import Any

from vif_plug_dyn import exception
from vif_plug_dyn.hostif import files

#: Version of the journal documents.
VERSION = 1
TRANSACTION = 'transaction'
APPLY = 'apply'
ADOPTIONS = 'adoptions'
NOTICES = 'notices'
DOCUMENT = 'document'
_KINDS = (TRANSACTION, APPLY, ADOPTIONS, NOTICES, DOCUMENT)


class Journal:
    """The recoverable-state files of host interface changes.

    :param directory: ``<state_path>/hostif``.
    :param lock_timeout: seconds to wait for another process's change.
    """

    def __init__(self, directory: str, lock_timeout: float = 30.0) -> None:
        self.directory = directory
        self.lock_timeout = lock_timeout

    def path(self, kind: str) -> str:
        """The file of ``kind`` (``transaction``, ``apply`` or
        ``adoptions``)."""
        if kind not in _KINDS:
            raise ValueError('unknown journal kind %r' % kind)
        return os.path.join(self.directory, kind + '.json')

    @contextlib.contextmanager
    def lock(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the change lock (blocking up to ``lock_timeout``).

        :param timeout: seconds to wait instead of ``lock_timeout``.
        :raises TransactionError: another process kept it too long.
        """
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(self.directory, 'lock'),
                     os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        wait = self.lock_timeout if timeout is None else timeout
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise exception.TransactionError(
                            reason='another process is changing host '
                                   'interfaces (lock %s held for more '
                                   'than %gs)' % (self.directory, wait))
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)

    def save(self, kind: str, payload: dict[str, Any]) -> None:
        """Write a document atomically (mode 0600)."""
        document = dict(payload, version=VERSION, kind=kind)
        files.atomic_write(self.path(kind), json.dumps(
            document, indent=1, sort_keys=True) + '\n', 0o600)

    def load(self, kind: str) -> dict[str, Any] | None:
        """Read a document; ``None`` when there is none.

        :raises TransactionError: the file is unreadable or of another
            version.
        """
        path = self.path(kind)
        try:
            text = files.read_regular(path)
        except OSError as exc:
            raise exception.TransactionError(
                reason='cannot read %s: %s' % (path, exc)) from None
        if text is None:
            return None
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise exception.TransactionError(
                reason='%s is not valid JSON: %s' % (path, exc)) from None
        if not isinstance(document, dict) or \
                document.get('version') != VERSION or \
                document.get('kind') != kind:
            raise exception.TransactionError(
                reason='%s is not a version %d %s document'
                       % (path, VERSION, kind))
        return document

    def clear(self, kind: str) -> None:
        """Remove a document (gone already is fine)."""
        try:
            os.unlink(self.path(kind))
        except FileNotFoundError:
            pass

    # -- adoption records ------------------------------------------------

    def adoptions(self) -> dict[str, str | None]:
        """Device -> the alias it had before it was adopted."""
        document = self.load(ADOPTIONS)
        return dict(document.get('devices') or {}) if document else {}

    def set_adoptions(self, devices: dict[str, str | None]) -> None:
        """Replace the adoption records."""
        if devices:
            self.save(ADOPTIONS, {'devices': devices})
        else:
            self.clear(ADOPTIONS)

    # -- notices ------------------------------------------------------------

    def add_notice(self, notice: dict[str, Any]) -> None:
        """Keep a notice for the next command (hold the lock)."""
        document = self.load(NOTICES)
        notices = list(document.get('notices') or []) if document else []
        self.save(NOTICES, {'notices': notices + [notice]})

    def take_notices(self) -> list[dict[str, Any]]:
        """The notices kept so far, removed (hold the lock)."""
        document = self.load(NOTICES)
        self.clear(NOTICES)
        return list(document.get('notices') or []) if document else []
