"""The daemon's creation journal: devices made but not yet marked ours.

A device is made in one step (the tap ioctl, an RTM_NEWLINK) and marked as
the library's (its interface alias) in the next. A daemon killed between
the two leaves a device nobody can recognise: not ours by its alias, so
``reconcile()`` will not remove it, and the ownership rule forbids
deleting it. Found by the fault tests (a daemon killed in a 1000-tap
batch left hundreds).

So, before making a device, a daemon appends ``KIND NAME`` to its own
journal file (``creating-<netns inode>-<pid>``, held with ``flock`` for
the daemon's life); when a batch ends, however it ends, the journal is
emptied. Before each batch a daemon looks for the journals of dead daemons
of its namespace (a lock it can take) and deletes each listed device that
still exists, has the listed kind and carries no alias at all — a device
of that name which someone else has marked is left alone. Only daemons
write and read journals: the unprivileged side cannot make one delete
anything.

Journals live in :data:`JOURNAL_DIR` (root's ``/run``: gone at a reboot,
as are the devices). When it cannot be written (a daemon running as
another user), batches run without it and a warning is logged once.
"""

import fcntl
import glob
import os

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

#: Where the journals live.
JOURNAL_DIR = '/run/vif_plug_dyn'

Entry = tuple[str, str]


def _netns_inode() -> int:
    return os.stat('/proc/self/ns/net').st_ino


def _entries(data: bytes) -> list[Entry]:
    entries = []
    for line in data.decode('ascii', 'replace').splitlines():
        parts = line.split(' ')
        if len(parts) == 2 and all(parts):
            entries.append((parts[0], parts[1]))
    return entries


def _read(fd: int) -> list[Entry]:
    size = os.fstat(fd).st_size
    return _entries(os.pread(fd, size, 0)) if size else []


class Journal:
    """This daemon's journal, and the orphans of dead daemons."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self._key: tuple[str, int, int] | None = None
        self._inherited: list[Entry] = []
        self._failed = False

    def _open(self) -> int | None:
        if self._failed:
            return None
        key = (JOURNAL_DIR, _netns_inode(), os.getpid())
        if self._fd is not None and key == self._key:
            return self._fd
        self.close()
        try:
            os.makedirs(JOURNAL_DIR, mode=0o700, exist_ok=True)
            fd = os.open(self._file(*key), os.O_RDWR | os.O_CREAT |
                         os.O_APPEND | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            # NOTE(vpd): a dead daemon of the same PID wrote this file:
            # what it lists is an orphan too.
            self._inherited = _read(fd)
        except OSError as exc:
            self._failed = True
            LOG.warning('No creation journal (%s): a daemon killed in a '
                        'batch may leave unmarked devices', exc)
            return None
        self._fd, self._key = fd, key
        return fd

    @staticmethod
    def _file(directory: str, inode: int, pid: int | str) -> str:
        return os.path.join(directory, 'creating-%s-%s' % (inode, pid))

    def close(self) -> None:
        """Close (and unlock) this daemon's journal."""
        if self._fd is not None:
            os.close(self._fd)
        self._fd = self._key = None

    def note(self, kind: str, name: str) -> None:
        """Record that ``name`` (of rtnl ``kind``) is about to be made."""
        fd = self._open()
        if fd is None:
            return
        try:
            os.write(fd, ('%s %s\n' % (kind, name)).encode('ascii'))
        except OSError as exc:
            LOG.warning('Creation journal write failed: %s', exc)

    def clear(self) -> None:
        """Empty this daemon's journal (a batch has ended)."""
        fd = self._open()
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        except OSError as exc:
            LOG.warning('Creation journal not cleared: %s', exc)

    def orphans(self) -> tuple[list[Entry], list[tuple[str, int]]]:
        """What dead daemons of this namespace were making.

        :returns: the entries, and the journals they came from (path and
            locked descriptor) to pass to :meth:`done` once handled.
        """
        if self._open() is None or self._key is None:
            return [], []
        entries, self._inherited = list(self._inherited), []
        found: list[tuple[str, int]] = []
        directory, inode, pid = self._key
        for path in glob.glob(self._file(directory, inode, '*')):
            if path == self._file(directory, inode, pid):
                continue
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                entries += _read(fd)
            except OSError:
                # A live daemon holds it (or it is unreadable).
                os.close(fd)
                continue
            found.append((path, fd))
        return entries, found

    @staticmethod
    def done(found: list[tuple[str, int]]) -> None:
        """Remove dead daemons' journals whose entries were handled."""
        for path, fd in found:
            try:
                os.unlink(path)
            except OSError:
                pass
            os.close(fd)


#: This daemon's journal.
JOURNAL = Journal()
