"""The host interface definitions of this host, one XML file each.

:class:`InterfaceStore` keeps ``<name>.xml`` files in the configured
``interface_dir`` and, on every change, has its persistent backends
write (or remove) what the host's own tooling reads at boot. A change is
checked whole before anything is written: names are unique across
definitions (a device has one definition and at most one master), no
dependency loops, and no backend would touch a file it did not write.
"""

import os
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from collections.abc import Sequence

from vif_plug_dyn import exception
from vif_plug_dyn.hostif import files
from vif_plug_dyn.hostif import model
from vif_plug_dyn.hostif import order as ordering
from vif_plug_dyn.hostif import safety
from vif_plug_dyn.hostif import xml as ifxml
from vif_plug_dyn.hostif.backends import base


class InterfaceStore:
    """Host interface definitions kept as files in a directory.

    :param directory: where the ``<name>.xml`` files live.
    :param backends: persistent backends to keep in step with the store.
    """

    def __init__(self, directory: str,
                 backends: Sequence[base.PersistentBackend] = ()) -> None:
        self.directory = directory
        self.backends = tuple(backends)
        self._lock = threading.Lock()
        self._defs: dict[str, model.HostInterface] = {}
        self._files: dict[str, str] = {}
        self._stamp: tuple[Any, ...] | None = None

    def _directory_stamp(self) -> tuple[Any, ...]:
        # NOTE(vpd): the kernel's file times are coarse (a few ms): two
        # changes in one tick leave the directory's time as it was, but
        # each definition is written as a new file (a new inode).
        try:
            entries = sorted(os.scandir(self.directory),
                             key=lambda e: e.name)
            return tuple((e.name, e.inode(), e.stat().st_mtime_ns)
                         for e in entries if e.name.endswith('.xml'))
        except OSError:
            return ()

    def refresh(self) -> None:
        """Reload when another process changed the definition files
        since (a CLI command, the watchdog of a timed transaction). Only a
        loaded store refreshes.

        :raises InvalidHostInterface: see :meth:`load`.
        """
        if self._stamp is not None and \
                self._directory_stamp() != self._stamp:
            self.load()

    def load(self) -> list[model.HostInterface]:
        """(Re)read every ``*.xml`` file of the directory.

        :returns: the definitions, sorted by name.
        :raises InvalidHostInterface: a file is invalid, two files define
            the same name or configure the same device; nothing is
            replaced then.
        :raises HostInterfaceCycle: the definitions depend on each other
            in a loop.
        """
        defs: dict[str, model.HostInterface] = {}
        paths: dict[str, str] = {}
        stamp = self._directory_stamp()
        if os.path.isdir(self.directory):
            for entry in sorted(os.listdir(self.directory)):
                if not entry.endswith('.xml'):
                    continue
                path = os.path.join(self.directory, entry)
                text = files.read_regular(path)
                if text is None:
                    continue
                iface = model.HostInterface.from_xml(text, source=path)
                if iface.name in defs:
                    raise exception.InvalidHostInterface(
                        name='%s (%s)' % (iface.name, path),
                        element='/interface/@name',
                        reason='already defined in %s' % paths[
                            str(iface.name)])
                defs[str(iface.name)] = iface
                paths[str(iface.name)] = path
        ordering.dependency_order(defs.values(), missing_ok=True)
        with self._lock:
            self._defs, self._files = defs, paths
            self._stamp = stamp
        return self.list()

    def list(self) -> list[model.HostInterface]:
        """Return the definitions, sorted by name."""
        self.refresh()
        with self._lock:
            return [self._defs[k] for k in sorted(self._defs)]

    def __iter__(self) -> Iterator[model.HostInterface]:
        return iter(self.list())

    def get(self, name: str) -> model.HostInterface:
        """Return the definition called ``name``.

        :raises HostInterfaceNotFound: no such definition.
        """
        self.refresh()
        with self._lock:
            try:
                return self._defs[name]
            except KeyError:
                raise exception.HostInterfaceNotFound(name=name) from None

    def order(self, present: Sequence[str] = ()) -> ordering.Order:
        """The apply and stop order of every definition.

        :param present: devices that exist outside the definitions.
        :raises HostInterfaceDependencyMissing: a dependency is neither
            defined nor present.
        """
        return ordering.dependency_order(self.list(), present)

    def define(self, iface: model.HostInterface | str,
               replace: bool = False) -> model.HostInterface:
        """Define (or with ``replace``, redefine) a host interface.

        The backends write their files first, the definition file last, so
        a refusal leaves everything as it was.

        :param iface: a :class:`HostInterface` or its XML.
        :param replace: allow replacing the definition of the same name.
        :returns: the definition.
        :raises InvalidHostInterface: invalid XML, or a device that another
            definition already configures.
        :raises HostInterfaceExists: the name exists and ``replace`` is
            false.
        :raises HostInterfaceCycle: it would close a dependency loop.
        :raises ForeignFile: a backend would overwrite a file it did not
            write.
        :raises UnsafeHostInterfaceValue: a value cannot be written safely
            to one of the files; nothing is written.
        """
        if isinstance(iface, str):
            iface = model.HostInterface.from_xml(iface, source='<define>')
        element, path = self._checked(iface)
        name = str(iface.name)
        self.refresh()
        with self._lock:
            old_path = self._files.get(name)
            if old_path is not None and not replace:
                raise exception.HostInterfaceExists(name=name,
                                                    source=old_path)
            previous = self._defs.get(name)
            others = [d for n, d in self._defs.items() if n != name]
            ordering.dependency_order(others + [iface], missing_ok=True)
            if previous is not None:
                self.check_users(previous, iface, others)
            for backend in self.backends:
                backend.check(iface, previous)
            for backend in self.backends:
                backend.write(iface, previous)
            files.atomic_write(path, ifxml.dumps(element), 0o644)
            if old_path is not None and old_path != path:
                os.unlink(old_path)
            self._defs[name] = iface
            self._files[name] = path
            self._stamp = self._directory_stamp()
        return iface

    def _checked(self, iface: model.HostInterface
                 ) -> tuple[ET.Element, str]:
        path = os.path.join(self.directory,
                            safety.token_or_repr(iface.name) + '.xml')
        # NOTE(vpd): every value of the definition file is checked where
        # it is written (hostif.safety), before any file is touched; the
        # backends check theirs in their check().
        element = ifxml.element(iface)
        safety.check_element(element, iface.name, 'definition file %s'
                             % path)
        return element, path

    def check(self, iface: model.HostInterface) -> None:
        """Make the checks :meth:`define` makes before it writes (the
        definition file's values, the backends' files and values),
        without writing.

        :raises UnsafeHostInterfaceValue: a value cannot be written.
        :raises ForeignFile: a backend would overwrite a file it did not
            write.
        """
        self._checked(iface)
        previous = self._defs.get(str(iface.name))
        for backend in self.backends:
            backend.check(iface, previous)

    def undefine(self, name: str) -> None:
        """Remove a definition and the backends' files for it.

        :raises HostInterfaceNotFound: no such definition.
        :raises HostInterfaceInUse: another definition needs one of its
            devices.
        :raises ForeignFile: a backend file for it was not written by this
            library; nothing is removed.
        """
        self.refresh()
        with self._lock:
            iface = self._defs.get(name)
            if iface is None:
                raise exception.HostInterfaceNotFound(name=name)
            others = [d for n, d in self._defs.items() if n != name]
            self.check_users(iface, None, others)
            for backend in self.backends:
                backend.check(None, iface)
            for backend in self.backends:
                backend.remove(iface)
            try:
                os.unlink(self._files[name])
            except FileNotFoundError:
                pass
            del self._defs[name]
            del self._files[name]
            self._stamp = self._directory_stamp()

    @staticmethod
    def check_users(old: model.HostInterface,
                    new: model.HostInterface | None,
                    others: Sequence[model.HostInterface]) -> None:
        """Refuse to drop devices other definitions need.

        :param old: the definition being replaced or removed.
        :param new: its replacement (``None``: removed).
        :param others: the other definitions.
        :raises HostInterfaceInUse: one of them needs a dropped device.
        """
        # NOTE(vpd): a VLAN defined on its own may sit on a device of
        # another definition; dropping that device would leave the VLAN
        # without a parent at the next boot.
        kept = set() if new is None else {d.name for d in new.devices()}
        dropped = {d.name for d in old.devices()} - kept
        for other in others:
            for device in other.devices():
                for needed in device.requires:
                    if needed in dropped:
                        raise exception.HostInterfaceInUse(
                            name=old.name, user=device.name,
                            device=needed)
