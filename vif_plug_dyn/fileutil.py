"""Atomic file writes, shared by every store of definitions."""

import os
import tempfile


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
