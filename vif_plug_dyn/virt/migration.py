"""Moving a guest's NICs with it when it migrates to another host.

Networks are names each host defines for itself, so a guest's ports
need new endpoints on the destination, built by the destination's own
drivers, and the guest's definition must use them there. The flow
(:class:`MigrationFlow`):

a. **check** that the destination defines every network the ports use,
   and offers an endpoint type each port can take, before anything is
   touched (:exc:`~vif_plug_dyn.exception.MigrationNetworkMissing`,
   :exc:`~vif_plug_dyn.exception.MigrationNotPossible`);
b. **request** the destination endpoints, by network name, for the ports
   recorded on the source;
c. **rewrite** the definition for the destination
   (:meth:`~vif_plug_dyn.virt.base.HypervisorAdapter.migration_xml`);
d. **migrate**, through a callable (libvirt:
   :class:`~vif_plug_dyn.virt.libvirt.migrate.LibvirtMigrator`);
e. **release** the source endpoints.

A failure in (b), (c) or (d) releases what (b) requested on the
destination and re-raises; the source is untouched until (e). A failure in
(e) comes after the guest moved: it raises
:exc:`~vif_plug_dyn.exception.MigrationSourceCleanupFailed`, carrying the
result.

The managers are interfaces (:class:`DestinationHost`, :class:`SourceHost`):
an :class:`~vif_plug_dyn.manager.EndpointManager` is one, and so is
anything that reaches another host's manager over RPC.
"""

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from oslo_log import log as logging

from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import ports
from vif_plug_dyn.virt import base

LOG = logging.getLogger(__name__)

#: Cable state of a plugged port in a record (as the ledger writes it).
PLUGGED = 'plugged'


class DestinationHost(Protocol):
    """What the flow needs of the destination's endpoint manager."""

    def host_capabilities(self) -> dict[str, Any]:
        """``{'networks': {name: {'endpoint_types': [...]} | {'error':
        ...}}}`` (see :meth:`.EndpointManager.host_capabilities`)."""

    def request_endpoints(self, ports_: list[ports.Port],
                          accepted_types: tuple[str, ...] | list[str] = ...,
                          options: dict[str, str] | None = None,
                          connected: bool = True
                          ) -> list[endpoints.Endpoint]:
        """Build endpoints, all or nothing, in the order of ``ports_``."""

    def release_endpoints(self, port_ids: list[str]) -> None:
        """Remove endpoints; unknown ports are skipped."""


class SourceHost(Protocol):
    """What the flow needs of the source's endpoint manager."""

    def release_endpoints(self, port_ids: list[str]) -> None:
        """Remove endpoints; unknown ports are skipped."""


class PortRecordLike(Protocol):
    """A source port as the ledger records it
    (:class:`~vif_plug_dyn.ledger.PortRecord`)."""

    @property
    def request(self) -> ports.EndpointRequest: ...

    @property
    def endpoint(self) -> endpoints.Endpoint | None: ...

    @property
    def cable(self) -> str: ...


#: ``migrate(domain, dest_xml, dest_endpoints_by_mac)``: moves the guest;
#: raises when it did not move.
Migrate = Callable[[str, str, Mapping[str, endpoints.Endpoint]], None]


@dataclasses.dataclass(frozen=True)
class MigrationResult:
    """What a migration did.

    :ivar domain: the guest.
    :ivar dest_xml: the definition handed to the migration.
    :ivar dest_endpoints: the destination endpoints, by MAC.
    :ivar released: the source ports released.
    """

    domain: str
    dest_xml: str
    dest_endpoints: dict[str, endpoints.Endpoint]
    released: list[str]


@dataclasses.dataclass(frozen=True)
class _Plan:
    """One port's destination request."""

    port: ports.Port
    accepted_types: tuple[str, ...]
    options: tuple[tuple[str, str], ...]
    connected: bool


class MigrationFlow:
    """Migrates a guest and its endpoints between two hosts.

    :param adapter: the hypervisor adapter (rewrites the definition).
    :param source: the source host's manager (releases at the end).
    :param destination: the destination host's manager.
    :param migrate: moves the guest (see :data:`Migrate`).
    :param destination_name: how to name the destination in messages.
    """

    def __init__(self, adapter: base.HypervisorAdapter, source: SourceHost,
                 destination: DestinationHost, migrate: Migrate,
                 destination_name: str = 'the destination') -> None:
        self.adapter = adapter
        self.source = source
        self.destination = destination
        self.migrate = migrate
        self.destination_name = destination_name

    # -- (a) ---------------------------------------------------------------

    def check(self, domain: str, domain_xml: str,
              records: Sequence[PortRecordLike]) -> list[_Plan]:
        """Check that the migration can start; change nothing.

        :returns: the destination request of each port, in order.
        :raises MigrationNetworkMissing: the destination lacks networks.
        :raises MigrationNotPossible: a port cannot get an endpoint there
            (no acceptable type, a network in error, or a source endpoint
            still being built).
        :raises MigrationEndpointMissing: a NIC of the guest has no port.
        :raises InterfaceNotFound: a port's MAC is not a NIC of the guest.
        :raises InvalidField: two ports have one MAC.
        """
        plans = [self._plan(domain, record) for record in records]
        macs = [p.port.mac for p in plans]
        if len(set(macs)) != len(macs):
            raise exception.InvalidField(
                field='records', value=macs,
                reason='two ports have the same MAC')
        self._check_macs(domain, domain_xml, macs)
        networks = self.destination.host_capabilities().get('networks', {})
        missing: dict[str, list[str]] = {}
        for plan in plans:
            if plan.port.network not in networks:
                missing.setdefault(plan.port.network, []).append(
                    plan.port.port_id)
        if missing:
            raise exception.MigrationNetworkMissing(
                domain=domain, destination=self.destination_name,
                networks=', '.join(sorted(missing)),
                ports=', '.join(p for name in sorted(missing)
                                for p in missing[name]))
        for plan in plans:
            entry = networks[plan.port.network]
            if entry.get('error'):
                raise exception.MigrationNotPossible(
                    mac=plan.port.mac, domain=domain,
                    reason='network %s on %s is not usable: %s' % (
                        plan.port.network, self.destination_name,
                        entry['error']))
            offered = entry.get('endpoint_types') or []
            if not any(t in offered for t in plan.accepted_types):
                raise exception.MigrationNotPossible(
                    mac=plan.port.mac, domain=domain,
                    reason='network %s on %s offers endpoint types %s; the '
                           'port can take %s' % (
                               plan.port.network, self.destination_name,
                               ', '.join(offered) or 'none',
                               ', '.join(plan.accepted_types)))
        return plans

    def _plan(self, domain: str, record: PortRecordLike) -> _Plan:
        request = record.request
        port = request.port
        if record.endpoint is None:
            raise exception.MigrationNotPossible(
                mac=port.mac, domain=domain,
                reason='port %s has no endpoint on the source yet (still '
                       'being built)' % port.port_id)
        # NOTE(vpd): the guest keeps its device: an emulated NIC needs a
        # tap-based or macvtap endpoint again, a VF needs a VF. Asking
        # only for those spares building an endpoint the rewrite would
        # then refuse.
        if record.endpoint.type == endpoints.HOSTDEV:
            types = tuple(t for t in request.accepted_types
                          if t == endpoints.HOSTDEV)
        else:
            types = tuple(t for t in request.accepted_types
                          if t != endpoints.HOSTDEV)
        if not types:
            raise exception.MigrationNotPossible(
                mac=port.mac, domain=domain,
                reason='the port accepts %s, none of which keeps its %s '
                       'device' % (', '.join(request.accepted_types),
                                   record.endpoint.type))
        return _Plan(port=port, accepted_types=types,
                     options=tuple(sorted(request.options.items())),
                     connected=record.cable == PLUGGED)

    def _check_macs(self, domain: str, domain_xml: str,
                    macs: list[str]) -> None:
        try:
            nics = self.adapter.interface_macs(domain_xml)
        except exception.OperationNotSupported:
            # NOTE(vpd): the rewrite in (c) checks the same, only later.
            LOG.debug('Adapter %s cannot list NICs; MACs checked at the '
                      'rewrite', self.adapter.NAME)
            return
        missing = [mac for mac in nics if mac not in macs]
        if missing:
            raise exception.MigrationEndpointMissing(
                domain=domain, mac=', '.join(missing))
        for mac in macs:
            if mac not in nics:
                raise exception.InterfaceNotFound(domain=domain, mac=mac)

    # -- (b) to (e) ----------------------------------------------------------

    def run(self, domain: str, domain_xml: str,
            records: Sequence[PortRecordLike]) -> MigrationResult:
        """Migrate ``domain`` and its endpoints.

        :param domain: the guest, as the migrate callable names it.
        :param domain_xml: its current definition on the source (for
            libvirt, the migratable live XML:
            :meth:`.LibvirtAdapter.domain_xml` with ``migratable=True``).
        :param records: the source ledger's records of its ports.
        :raises: what :meth:`check` raises (nothing changed); what the
            destination, the rewrite or the migration raises (the
            destination endpoints requested were released);
            :exc:`~vif_plug_dyn.exception.MigrationSourceCleanupFailed`.
        """
        plans = self.check(domain, domain_xml, records)
        port_ids = [p.port.port_id for p in plans]
        requested: list[str] = []
        try:
            dest = self._request(plans, requested)
            dest_xml = self.adapter.migration_xml(domain_xml, dest)
            LOG.info('Migrating domain %(domain)s to %(dest)s with '
                     '%(count)d endpoint(s)',
                     {'domain': domain, 'dest': self.destination_name,
                      'count': len(dest)})
            self.migrate(domain, dest_xml, dest)
        except BaseException as exc:
            self._rollback(domain, requested, exc)
            raise
        result = MigrationResult(domain=domain, dest_xml=dest_xml,
                                 dest_endpoints=dest, released=port_ids)
        try:
            self.source.release_endpoints(port_ids)
        except Exception as exc:
            raise exception.MigrationSourceCleanupFailed(
                domain=domain, destination=self.destination_name,
                ports=', '.join(port_ids), reason=str(exc),
                result=result) from exc
        LOG.info('Domain %(domain)s migrated to %(dest)s; released '
                 '%(count)d source port(s)',
                 {'domain': domain, 'dest': self.destination_name,
                  'count': len(port_ids)})
        return result

    def _request(self, plans: list[_Plan], requested: list[str]
                 ) -> dict[str, endpoints.Endpoint]:
        # NOTE(vpd): one request per (types, options, cable) group so that
        # each network's ports are still built in one driver batch.
        groups: dict[tuple[tuple[str, ...], tuple[tuple[str, str], ...],
                           bool], list[ports.Port]] = {}
        for plan in plans:
            key = (plan.accepted_types, plan.options, plan.connected)
            groups.setdefault(key, []).append(plan.port)
        dest: dict[str, endpoints.Endpoint] = {}
        for (types, options, connected), group in groups.items():
            made = self.destination.request_endpoints(
                group, accepted_types=types, options=dict(options),
                connected=connected)
            requested.extend(p.port_id for p in group)
            dest.update((e.mac, e) for e in made)
        return dest

    def _rollback(self, domain: str, requested: list[str],
                  cause: BaseException) -> None:
        if not requested:
            return
        LOG.warning('Migration of domain %(domain)s to %(dest)s failed '
                    '(%(cause)s); releasing %(count)d destination '
                    'endpoint(s)',
                    {'domain': domain, 'dest': self.destination_name,
                     'cause': cause, 'count': len(requested)})
        try:
            self.destination.release_endpoints(list(requested))
        except Exception as exc:  # noqa: BLE001 - keep the first error
            LOG.exception('Releasing destination endpoints of %s failed',
                          domain)
            cause.add_note('releasing the destination endpoints %s also '
                           'failed: %s' % (', '.join(requested), exc))
