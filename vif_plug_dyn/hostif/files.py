"""Atomic writes and careful reads of configuration files."""

import os
import stat
import tempfile

#: Most of a file read to look for an ownership marker.
MAX_READ = 256 * 1024


def atomic_write(path: str, text: str, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` so a reader sees old or new, never
    half.

    :param path: the file to write; its directory is created if needed.
    :param text: the new content.
    :param mode: the file's permission bits.
    :raises OSError: the file could not be written; it is left unchanged.
    """
    directory = os.path.dirname(path) or '.'
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.vpd-', dir=directory)
    try:
        # NOTE(vpd): set the mode before any content lands, so a secret
        # never sits in a world-readable file, even for a moment.
        os.fchmod(fd, mode)
        with os.fdopen(fd, 'w', encoding='utf-8') as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # NOTE(vpd): rename is atomic on one file system, so a crash or a
        # concurrent reader sees the old file or the new one.
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: str) -> None:
    # NOTE(vpd): the rename itself is only durable once the directory
    # entry is on disk.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_regular(path: str) -> str | None:
    """Read a regular file without following a symbolic link.

    :param path: the file.
    :returns: its text (at most :data:`MAX_READ` characters), or ``None``
        if nothing exists at ``path``.
    :raises IsADirectoryError: ``path`` is something other than a regular
        file (a link, a directory, a device).
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        raise IsADirectoryError('%s is not a regular file' % path)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, encoding='utf-8', errors='replace') as handle:
        return handle.read(MAX_READ)
