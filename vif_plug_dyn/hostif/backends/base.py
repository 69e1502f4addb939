"""The base of persistent backends: files the host's tooling reads at boot.

A persistent backend renders a definition into files (one per device or
one per definition) under a root directory (``/`` in production, a
temporary directory in tests). Every file it writes carries a marker;
a file without it belongs to someone else and is never rewritten or
removed: :class:`~vif_plug_dyn.exception.ForeignFile` is raised instead,
before anything is changed.
"""

import abc
import os
from typing import ClassVar

from vif_plug_dyn import exception
from vif_plug_dyn.hostif import files
from vif_plug_dyn.hostif import model


class PersistentBackend(abc.ABC):
    """Writes definitions where the host's network tooling reads them.

    :param root: the file system root the backend writes under.
    """

    #: Short name, for logs and configuration.
    name: ClassVar[str]
    #: Directory of the files, relative to the root.
    subdir: ClassVar[str]
    #: Permission bits of the files written.
    file_mode: ClassVar[int] = 0o644

    def __init__(self, root: str = '/') -> None:
        self.root = root
        self.directory = os.path.join(root, self.subdir)

    # -- what subclasses provide --------------------------------------------

    @abc.abstractmethod
    def render(self, definition: model.HostInterface) -> dict[str, str]:
        """Render a definition.

        :param definition: a top-level definition.
        :returns: file name (inside :attr:`directory`) -> content, every
            content carrying the ownership marker.
        """

    @abc.abstractmethod
    def is_ours(self, text: str) -> bool:
        """Whether a file's text carries this backend's marker.

        :param text: the file's content.
        """

    # -- what callers use -----------------------------------------------------

    def paths(self, definition: model.HostInterface) -> list[str]:
        """The files a definition is written to, sorted.

        :param definition: a top-level definition.
        """
        return sorted(os.path.join(self.directory, name)
                      for name in self.render(definition))

    def check(self, definition: model.HostInterface | None,
              previous: model.HostInterface | None = None) -> None:
        """Make sure writing ``definition`` (replacing ``previous``) only
        touches files this library wrote.

        :param definition: the definition to write, or ``None`` for a
            removal of ``previous``.
        :param previous: the definition it replaces, whose files that are
            not reused get removed.
        :raises ForeignFile: one of those files exists without the marker.
        """
        targets = set()
        for item in (definition, previous):
            if item is not None:
                targets.update(self.paths(item))
        for path in sorted(targets):
            if self._state(path) == 'foreign':
                raise exception.ForeignFile(path=path)

    def write(self, definition: model.HostInterface,
              previous: model.HostInterface | None = None) -> list[str]:
        """Write a definition's files atomically; drop stale ones.

        :param definition: the definition to write.
        :param previous: the definition it replaces, if any: its files
            that ``definition`` does not use any more are removed.
        :returns: the paths written.
        :raises ForeignFile: a file to write or remove was not written by
            this library; nothing has been changed.
        """
        self.check(definition, previous)
        rendered = self.render(definition)
        written = []
        # NOTE(vpd): a file could still appear between check() and the
        # rename below; the window is tiny and only a concurrent admin
        # edit of the very same file could fall into it.
        for name in sorted(rendered):
            path = os.path.join(self.directory, name)
            files.atomic_write(path, rendered[name], self.file_mode)
            written.append(path)
        if previous is not None:
            for path in self.paths(previous):
                if path not in written and self._state(path) == 'ours':
                    os.unlink(path)
        return written

    def remove(self, definition: model.HostInterface) -> list[str]:
        """Remove a definition's files.

        :param definition: the definition being undefined.
        :returns: the paths removed (files already gone are skipped).
        :raises ForeignFile: one of the files was not written by this
            library; nothing has been removed.
        """
        paths = self.paths(definition)
        for path in paths:
            if self._state(path) == 'foreign':
                raise exception.ForeignFile(
                    'Refusing to delete %s: it was not written by '
                    'vif_plug_dyn' % path, path=path)
        removed = []
        for path in paths:
            if self._state(path) == 'ours':
                os.unlink(path)
                removed.append(path)
        return removed

    def _state(self, path: str) -> str:
        try:
            text = files.read_regular(path)
        except IsADirectoryError:
            return 'foreign'
        if text is None:
            return 'absent'
        return 'ours' if self.is_ours(text) else 'foreign'


def autoconnect(start_mode: str | None) -> bool:
    """Whether a start mode brings the interface up without a command.

    :param start_mode: ``onboot``, ``hotplug``, ``none`` or ``None``.
    """
    # NOTE(vpd): no <start> means nothing says to start it; taking the
    # cautious reading keeps a half-written definition from taking over a
    # host's uplink at the next boot.
    return start_mode in ('onboot', 'hotplug')
