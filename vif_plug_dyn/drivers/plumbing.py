"""Host plumbing networks stand on: defined host interfaces, started on
demand.

A direct pool may sit on a bond, a bridge network on an uplink: the
operator describes such devices as host interfaces
(:mod:`vif_plug_dyn.hostif`), and the drivers start them when a port
first needs them, so a network works on a host whose plumbing is not up
yet. A device with no definition is the operator's, used as it is.
"""

import threading
from typing import Any

from oslo_log import log as logging

from vif_plug_dyn import exception

LOG = logging.getLogger(__name__)


class Plumbing:
    """Starts the host interface definitions that name given devices.

    :param conf: the configuration (``interface_dir`` and friends).
    :param host: the privileged host helper.
    """

    def __init__(self, conf: Any, host: Any) -> None:
        self.conf = conf
        self.host = host
        self._api: Any = None
        self._lock = threading.Lock()

    @property
    def api(self) -> Any:
        """The host interface API (built on first use)."""
        if self._api is None:
            # NOTE(vpd): imported here: most deployments define no host
            # interface, and the drivers load without that machinery.
            from vif_plug_dyn.hostif import api
            self._api = api.HostInterfaceAPI(self.conf, host=self.host)
        return self._api

    def ensure(self, names: list[str]) -> list[str]:
        """Start the definitions of the devices in ``names`` that are
        defined but not up.

        :returns: the definitions started.
        :raises HostInterfaceApplyFailed: starting one failed (the host
            was put back as it was).
        """
        started: list[str] = []
        with self._lock:
            names = [n for n in names
                     if n in {str(d.name) for d in self.api.store.list()}]
            if not names:
                return started
            defined = {d['name']: d for d in self.api.list()
                       if d.get('defined')}
            for name in names:
                entry = defined.get(name)
                if entry is None or entry.get('active'):
                    continue
                self.api.start(name)
                started.append(name)
                LOG.info('Started host interface %s for a network that '
                         'needs it', name)
        return started

    def adopted(self, name: str) -> bool:
        """Whether ``name`` is a device the library may configure because
        the operator defined it as a host interface."""
        try:
            return bool(self.host.get_link(name).get('adopted'))
        except exception.DeviceNotFound:
            return False
