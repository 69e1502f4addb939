"""Backends that make host interface definitions real.

Persistent backends (:mod:`.keyfile` for NetworkManager, :mod:`.ifupdown`
for Debian's ifupdown) write files the host's own tooling reads at boot.
"""

from vif_plug_dyn.hostif.backends.base import PersistentBackend
from vif_plug_dyn.hostif.backends.ifupdown import IfupdownBackend
from vif_plug_dyn.hostif.backends.keyfile import KeyfileBackend

__all__ = ['IfupdownBackend', 'KeyfileBackend', 'PersistentBackend']
