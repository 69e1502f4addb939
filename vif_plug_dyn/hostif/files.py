"""Atomic writes and careful reads of configuration files."""

import os
import stat

from vif_plug_dyn.fileutil import atomic_write  # noqa: F401 - re-exported

#: Most of a file read to look for an ownership marker.
MAX_READ = 256 * 1024


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
