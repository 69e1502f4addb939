"""The daemon's creation journal: devices made but not yet marked ours.

A device is made in one step (the tap ioctl, an RTM_NEWLINK) and marked as
the library's (its interface alias) in the next. A daemon killed between
the two leaves a device nobody can recognise: not ours by its alias, so
``reconcile()`` will not remove it, and the ownership rule forbids
deleting it. Found by the fault tests (a daemon killed in a 1000-tap
batch left hundreds).

So, before making a device, a daemon appends ``KIND NAME`` to its own
journal file (``creating-<namespace id>-<pid>``, held with ``flock`` for
the daemon's life); when a batch ends, however it ends, the journal is
emptied. Before each batch a daemon looks for the journals of dead daemons
of its namespace (a lock it can take) and deletes each listed device that
still exists, has the listed kind and carries no alias at all — a device
of that name which someone else has marked is left alone. Only daemons
write and read journals: the unprivileged side cannot make one delete
anything.

The namespace id is the kernel's network namespace cookie
(``SO_NETNS_COOKIE``, Linux 5.14 and later): unlike the namespace's inode
number, which the kernel hands out again once a namespace is gone, a
cookie is never reused while the machine runs, so a dead daemon's list can
never be taken over by a daemon of an unrelated, newer namespace. On a
kernel without cookies the inode is used and a warning logged.

Journals do not pile up: a daemon removes its own when it exits, and the
first batch of every daemon removes the journals of dead daemons of other
namespaces that are empty, or were last written more than
:data:`STALE_AFTER` seconds ago (by then a daemon of that namespace would
have handled them, or the namespace is gone). Journals an earlier release
wrote (keyed by a bare inode number) are never acted on — their
namespace cannot be told apart from a newer one — and are removed by the
same rules (an earlier release's daemon may still be reading them).

Journals live in :data:`JOURNAL_DIR` (root's ``/run``: gone at a reboot,
as are the devices). When it cannot be written (a daemon running as
another user), batches run without it and a warning is logged once.
"""

import atexit
import fcntl
import glob
import os
import socket
import struct
import time

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

#: Where the journals live.
JOURNAL_DIR = '/run/vif_plug_dyn'
#: Seconds after which a dead daemon's journal of another namespace is
#: removed even if it lists devices.
STALE_AFTER = 24 * 3600
#: getsockopt() option of the network namespace cookie (Linux 5.14).
SO_NETNS_COOKIE = getattr(socket, 'SO_NETNS_COOKIE', 71)

Entry = tuple[str, str]

_WARNED: set[str] = set()


def namespace_id() -> str:
    """This process's network namespace, as a journal names it:
    ``c<cookie>``, or ``i<inode>`` on a kernel without cookies."""
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0) as sock:
            raw = sock.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8)
        return 'c%d' % struct.unpack('=Q', raw)[0]
    except OSError as exc:
        if 'cookie' not in _WARNED:
            _WARNED.add('cookie')
            LOG.warning('No network namespace cookie on this kernel (%s): '
                        'creation journals are keyed by the namespace '
                        'inode, which the kernel may reuse', exc)
        return 'i%d' % os.stat('/proc/self/ns/net').st_ino


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


def _parse_name(path: str) -> tuple[str, str] | None:
    """``(namespace id, pid)`` of a journal file name; ``None`` for one
    an earlier release wrote (keyed by a bare inode number)."""
    parts = os.path.basename(path).split('-')
    if len(parts) != 3 or parts[0] != 'creating' or \
            parts[1][:1] not in ('c', 'i'):
        return None
    return parts[1], parts[2]


class Journal:
    """This daemon's journal, and the orphans of dead daemons."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self._key: tuple[str, str, int] | None = None
        self._inherited: list[Entry] = []
        self._failed = False
        self._exit_hook = False

    def _open(self) -> int | None:
        if self._failed:
            return None
        pid = os.getpid()
        if self._fd is not None and self._key is not None and \
                self._key[0] == JOURNAL_DIR and self._key[2] == pid:
            return self._fd
        key = (JOURNAL_DIR, namespace_id(), pid)
        self.close()
        try:
            os.makedirs(JOURNAL_DIR, mode=0o700, exist_ok=True)
            fd = self._lock_own(self._file(*key))
            # NOTE(vpd): a dead daemon of the same PID (and namespace)
            # wrote this file: what it lists is an orphan too.
            self._inherited = _read(fd)
        except OSError as exc:
            self._failed = True
            LOG.warning('No creation journal (%s): a daemon killed in a '
                        'batch may leave unmarked devices', exc)
            return None
        self._fd, self._key = fd, key
        if not self._exit_hook:
            self._exit_hook = True
            atexit.register(self.remove)
        self.remove_stale()
        return fd

    @staticmethod
    def _lock_own(path: str) -> int:
        """Open and lock ``path``, making sure the lock is on the file
        that path names (another daemon may remove a stale one between
        the open and the lock)."""
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND |
                         os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            except OSError:
                os.close(fd)
                raise
            os.close(fd)

    @staticmethod
    def _file(directory: str, namespace: str, pid: int | str) -> str:
        return os.path.join(directory, 'creating-%s-%s' % (namespace, pid))

    def close(self) -> None:
        """Close (and unlock) this daemon's journal."""
        if self._fd is not None:
            os.close(self._fd)
        self._fd = self._key = None

    def remove(self) -> None:
        """Remove this daemon's journal if it lists nothing (the daemon is
        exiting)."""
        if self._fd is None or self._key is None or \
                self._key[2] != os.getpid():
            return
        try:
            if os.fstat(self._fd).st_size == 0:
                os.unlink(self._file(*self._key))
        except OSError:
            pass
        self.close()

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
        directory, namespace, pid = self._key
        for path in glob.glob(self._file(directory, namespace, '*')):
            if path == self._file(directory, namespace, pid):
                continue
            fd = self._take(path)
            if fd is None:
                continue
            entries += _read(fd)
            found.append((path, fd))
        return entries, found

    @staticmethod
    def _take(path: str) -> int | None:
        """Open and lock a dead daemon's journal (``None``: a live daemon
        holds it, or it is gone)."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        return fd

    def remove_stale(self) -> list[str]:
        """Remove the journals no daemon will ever handle (see the module
        docstring).

        :returns: the paths removed.
        """
        if self._key is None:
            return []
        directory, namespace, _pid = self._key
        gone = []
        now = time.time()
        for path in glob.glob(os.path.join(directory, 'creating-*')):
            parsed = _parse_name(path)
            if parsed is not None and parsed[0] == namespace:
                continue  # ours, or handled by orphans()
            fd = self._take(path)
            if fd is None:
                continue
            try:
                info = os.fstat(fd)
                if info.st_size == 0 or now - info.st_mtime > STALE_AFTER:
                    os.unlink(path)
                    gone.append(path)
            except OSError:
                pass
            finally:
                os.close(fd)
        if gone:
            LOG.info('Removed %d stale creation journal(s)', len(gone))
        return gone

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
