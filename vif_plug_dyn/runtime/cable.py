"""The guest's side of the cable: link state, and a truthful live XML.

The host side of a cable is the drivers' business; this module tells the
hypervisor what the guest should see. A port's guest link is up when its
cable is plugged and its host side healthy, unless the operator forced it
(:attr:`vif_plug_dyn.ledger.PortRecord.link`). A port names its guest by
``vm_uuid``.

Telling the guest never undoes or fails the host side. When the guest
cannot be told now (it is not defined or not running here, its NIC is not
attached yet, the hypervisor cannot be reached), the ledger records the
port's guest link ``pending`` with the reason, the deferral is logged,
and the guest gets the wanted link as soon as it runs: from a
:class:`~vif_plug_dyn.runtime.guests.GuestMonitor` (libvirt's lifecycle
events; ``vif-plug-dyn watch`` and the agent run one) or the next
``reconcile``. Once told, the record says ``applied``.
"""

import threading
from collections.abc import Callable, Iterable
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging

from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import ledger as ledger_mod
from vif_plug_dyn import virt
from vif_plug_dyn.virt import base as virt_base

LOG = logging.getLogger(__name__)

_LOGGED: set[str] = set()
_LOGGED_LOCK = threading.Lock()


def _log_once(key: str, message: str, *args: Any) -> None:
    with _LOGGED_LOCK:
        if key in _LOGGED:
            return
        _LOGGED.add(key)
    LOG.info(message, *args)


class GuestLink:
    """Keeps guests' NICs in step with their cables.

    :param hypervisor: a :class:`vif_plug_dyn.virt.base.HypervisorAdapter`
        or ``None`` (no guest to tell: host-only use, unless ``loader``).
    :param ledger: where to record whether each guest was told (nothing
        is recorded without one).
    :param loader: builds the adapter on first need (see
        :meth:`from_conf`): a process that never touches a guest never
        loads it.
    """

    def __init__(self, hypervisor: Any = None,
                 ledger: ledger_mod.Ledger | None = None,
                 loader: Callable[[], virt_base.HypervisorAdapter] | None
                 = None) -> None:
        self._hypervisor = hypervisor
        self._loader = loader if hypervisor is None else None
        self._loaded = False
        self._lock = threading.Lock()
        self.ledger = ledger

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts,
                  ledger: ledger_mod.Ledger | None = None) -> 'GuestLink':
        """The guest link of ``[vif_plug_dyn] hypervisor``: the adapter is
        checked to be installed now and loaded on first use; ``none``
        gives a host-only guest link (said once in the log).

        :raises HypervisorNotFound: the configured adapter is not
            installed.
        """
        name = virt.configured_name(conf)
        if name is None:
            _log_once('none', '[vif_plug_dyn] hypervisor is "none": guests '
                      'are not told of cable changes (host side only)')
            return cls(None, ledger)
        return cls(None, ledger, loader=lambda: virt.load_adapter(name, conf))

    @property
    def configured(self) -> bool:
        """Whether there is a hypervisor to tell (loaded or not yet)."""
        return self._hypervisor is not None or self._loader is not None

    @property
    def hypervisor(self) -> Any:
        """The adapter, loading it if needed; ``None`` for host-only use.

        :raises HypervisorLoadFailed: the adapter failed to load.
        """
        if self._hypervisor is None and self._loader is not None:
            with self._lock:
                if self._hypervisor is None:
                    self._hypervisor = self._loader()
                    self._loaded = True
        return self._hypervisor

    @hypervisor.setter
    def hypervisor(self, adapter: Any) -> None:
        with self._lock:
            self._hypervisor = adapter
            self._loader = None
            self._loaded = False

    def close(self) -> None:
        """Close the adapter if this object loaded it (it opens again on
        next use)."""
        with self._lock:
            adapter = self._hypervisor if self._loaded else None
        if adapter is not None:
            adapter.close()

    # -- link state ---------------------------------------------------------

    def apply(self, record: ledger_mod.PortRecord) -> bool:
        """Set the guest link of ``record``'s NIC to what the record wants
        (see :meth:`apply_many`).

        :returns: whether the running guest was told.
        """
        return self.apply_many([record]).get(record.port.port_id, False)

    def apply_many(self, records: Iterable[ledger_mod.PortRecord]
                   ) -> dict[str, bool]:
        """Set the guest links of many ports to what their records want,
        and record in the ledger, in one transaction, which guests were
        told (``applied``) and which were not (``pending``, with why).

        Never raises for the guest's sake: a guest that is not running, a
        NIC not attached yet, an unreachable hypervisor or a refusal are
        deferred and logged (INFO for a guest that is not running, WARNING
        for the hypervisor's failures).

        :returns: ``{port_id: told}`` for every port that has a guest to
            tell (a ``vm_uuid``, an endpoint with a link state).
        """
        if not self.configured:
            return {}
        told: dict[str, bool] = {}
        rows: list[ledger_mod.GuestLinkRecord] = []
        deferred: dict[tuple[str, bool], list[str]] = {}
        state = _BatchState()
        for record in records:
            domain = record.port.vm_uuid
            if domain is None or record.endpoint is None or \
                    record.endpoint.type == endpoints.HOSTDEV:
                continue
            up = record.guest_link_up
            reason, warn = self._tell(state, domain, record.port.mac, up)
            port_id = record.port.port_id
            told[port_id] = reason is None
            rows.append(ledger_mod.GuestLinkRecord(
                port_id=port_id, domain=domain,
                state=(ledger_mod.GUEST_APPLIED if reason is None
                       else ledger_mod.GUEST_PENDING),
                up=up, reason=reason))
            if reason is not None:
                deferred.setdefault((reason, warn), []).append(
                    '%s (link %s)' % (port_id, 'up' if up else 'down'))
        for (reason, warn), which in deferred.items():
            (LOG.warning if warn else LOG.info)(
                'Guest link of %(count)d port(s) deferred, kept in the '
                'ledger for when the guest runs (lifecycle event or next '
                'reconcile): %(reason)s: %(ports)s',
                {'count': len(which), 'reason': reason,
                 'ports': ', '.join(which)})
        if self.ledger is not None:
            self.ledger.set_guest_links(rows)
        return told

    def _tell(self, state: '_BatchState', domain: str, mac: str,
              up: bool) -> tuple[str | None, bool]:
        """Tell one NIC; returns ``(why not, whether that deserves a
        warning)``, ``(None, False)`` when the running guest was told."""
        if state.unreachable is not None:
            return state.unreachable, True
        if domain in state.absent:
            return state.absent[domain], False
        try:
            adapter = self.hypervisor
            live = adapter.set_link_state(domain, mac, up)
        except exception.DomainNotFound:
            state.absent[domain] = ('guest %s is not defined on this host '
                                    '(yet)' % domain)
            return state.absent[domain], False
        except exception.InterfaceNotFound:
            return ('guest %s has no NIC with MAC %s (yet)' % (domain, mac),
                    False)
        except (exception.HypervisorConnectionFailed,
                exception.HypervisorLoadFailed,
                exception.HypervisorNotFound) as exc:
            # NOTE(vpd): the rest of the batch would fail the same way:
            # one attempt, one warning.
            state.unreachable = 'the hypervisor cannot be reached: %s' % exc
            return state.unreachable, True
        except exception.VifPlugDynException as exc:
            return 'the hypervisor refused: %s' % exc, True
        if live is False:
            return ('guest %s is not running (its stored definition was '
                    'updated)' % domain), False
        return None, False

    # -- live definition ------------------------------------------------------

    def follow_source(self, record: ledger_mod.PortRecord,
                      endpoint: endpoints.Endpoint) -> bool:
        """Tell the hypervisor a ``bridge`` endpoint now has another bridge,
        so its live definition stays truthful.

        :returns: whether a guest was told.
        """
        old = record.endpoint
        domain = record.port.vm_uuid
        if not self.configured or domain is None or \
                not isinstance(endpoint, endpoints.BridgeEndpoint) or \
                not isinstance(old, endpoints.BridgeEndpoint) or \
                old.bridge == endpoint.bridge:
            return False
        try:
            self.hypervisor.update_source(domain, endpoint)
        except (exception.DomainNotFound, exception.InterfaceNotFound):
            return False
        except (exception.HypervisorConnectionFailed,
                exception.HypervisorLoadFailed) as exc:
            # NOTE(vpd): the tap is on the new bridge already; only the
            # guest's live definition is stale, and the host side must not
            # fail for it.
            LOG.warning('Port %(port)s: the live definition of guest '
                        '%(domain)s still names bridge %(old)s (now '
                        '%(new)s): %(error)s',
                        {'port': record.port.port_id, 'domain': domain,
                         'old': old.bridge, 'new': endpoint.bridge,
                         'error': exc})
            return False
        return True

    def reattach(self, record: ledger_mod.PortRecord,
                 endpoint: endpoints.Endpoint) -> bool:
        """Give a genuine macvtap NIC its new source by detaching it and
        attaching it again in the same slot (guest-visible).

        :returns: whether a guest was told.
        :raises HypervisorOperationFailed: the hypervisor failed (the NIC
            cannot carry traffic on its new source without it).
        """
        old = record.endpoint
        domain = record.port.vm_uuid
        if not self.configured or domain is None or \
                not isinstance(old, endpoints.DirectEndpoint) or \
                not isinstance(endpoint, endpoints.DirectEndpoint) or \
                (old.source_dev, old.mode) == (endpoint.source_dev,
                                               endpoint.mode):
            return False
        try:
            self.hypervisor.reattach(domain, endpoint)
        except (exception.DomainNotFound, exception.InterfaceNotFound):
            return False
        LOG.info('Port %(port)s: guest %(domain)s NIC re-attached on '
                 '%(dev)s (guest-visible)', {'port': record.port.port_id,
                                             'domain': domain,
                                             'dev': endpoint.source_dev})
        return True


class _BatchState:
    """What one :meth:`GuestLink.apply_many` learnt along the way, so each
    missing guest or unreachable hypervisor costs one attempt."""

    def __init__(self) -> None:
        self.unreachable: str | None = None
        self.absent: dict[str, str] = {}
