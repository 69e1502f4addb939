"""The network driver interface."""

import abc
import dataclasses
from typing import Any

from oslo_config import cfg

from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import ledger as ledger_mod
from vif_plug_dyn import networks
from vif_plug_dyn import ports

#: Entry-point namespace network drivers are registered in.
NAMESPACE = 'vif_plug_dyn.network_drivers'


@dataclasses.dataclass
class DriverContext:
    """What a driver is given when it is loaded.

    :ivar conf: the configuration.
    :ivar ledger: the ledger, for pool allocations and device records.
    :ivar host: the privileged host helper (see :mod:`vif_plug_dyn.host`),
        or ``None`` when the driver needs no host work.
    """

    conf: cfg.ConfigOpts
    ledger: ledger_mod.Ledger
    host: Any = None


class NetworkDriver(abc.ABC):
    """Builds and removes the host side of endpoints for one network kind.

    A driver answers "an endpoint for this port on this network, of this
    type" with a typed :class:`~vif_plug_dyn.endpoints.Endpoint` and tears
    it down again. It must leave nothing half-built when it fails: what a
    failed :meth:`create_endpoint` made, it removes before raising.

    :param context: what the driver may use.
    """

    #: The network kinds this driver serves.
    KINDS: tuple[str, ...] = ()
    #: Whether the driver can cable a tap its hypervisor made (request
    #: option ``tap_maker=hypervisor``, see
    #: :func:`vif_plug_dyn.drivers.taps.hypervisor_tap`).
    BORROWS_TAPS: bool = False

    def __init__(self, context: DriverContext) -> None:
        self.context = context

    @property
    def plumbing(self) -> Any:
        """The host interfaces networks stand on
        (:class:`vif_plug_dyn.drivers.plumbing.Plumbing`)."""
        plumbing = getattr(self, '_plumbing', None)
        if plumbing is None:
            from vif_plug_dyn.drivers import plumbing as plumbing_mod
            plumbing = plumbing_mod.Plumbing(self.context.conf,
                                             self.context.host)
            self._plumbing = plumbing
        return plumbing

    @property
    def host(self) -> Any:
        """The privileged host helper
        (:class:`vif_plug_dyn.host.HostNetwork`)."""
        return self.context.host

    @property
    def name(self) -> str:
        """The driver's name (its class name unless overridden)."""
        return type(self).__name__

    def last_ports_of(self, network: networks.Network,
                      leaving: set[str]) -> bool:
        """Whether no port of ``network`` is left once ``leaving`` (port
        ids) are gone: its own host objects may go too.

        :param network: the network ports leave.
        :param leaving: ids of the ports on their way out.
        """
        # NOTE(vpd): ids only: parsing every record of the network made
        # each move off it cost milliseconds per port already there.
        return not self.context.ledger.port_ids(network.name) - leaving

    @abc.abstractmethod
    def endpoint_types(self, network: networks.Network) -> tuple[str, ...]:
        """Return the endpoint types this driver can provide on ``network``
        on this host right now, most natural first.

        Called before any work is done, so negotiation can answer early.
        """

    @abc.abstractmethod
    def create_endpoints(self, requests: list[ports.EndpointRequest],
                         network: networks.Network, endpoint_type: str,
                         connect: bool) -> list[endpoints.Endpoint]:
        """Build the host side of several endpoints on one network.

        All or nothing: when one fails, what the call built for every
        request is removed before the error is raised. Drivers batch the
        host work of the whole list (one privileged call, one OVSDB
        transaction) — that is what makes thousands of ports cheap.

        :param requests: the requests (their ports name ``network``).
        :param network: the network definition.
        :param endpoint_type: the negotiated type, one this driver listed
            in :meth:`endpoint_types`.
        :param connect: whether the cables start plugged.
        :returns: the endpoints, in the order of ``requests``.
        :raises VifPlugDynException: a typed error; nothing is left built.
        """

    @abc.abstractmethod
    def delete_endpoints(self, endpoints_: list[endpoints.Endpoint],
                         network: networks.Network) -> None:
        """Remove what :meth:`create_endpoints` built; what is already
        gone is skipped."""

    def create_endpoint(self, request: ports.EndpointRequest,
                        network: networks.Network, endpoint_type: str,
                        connect: bool) -> endpoints.Endpoint:
        """Build one endpoint (see :meth:`create_endpoints`)."""
        return self.create_endpoints([request], network, endpoint_type,
                                     connect)[0]

    def delete_endpoint(self, endpoint: endpoints.Endpoint,
                        network: networks.Network) -> None:
        """Remove one endpoint (see :meth:`delete_endpoints`)."""
        self.delete_endpoints([endpoint], network)

    def connect(self, endpoint: endpoints.Endpoint,
                network: networks.Network) -> endpoints.Endpoint:
        """Plug the endpoint's cable into ``network``.

        ``network`` may differ from ``endpoint.network`` (a move): the
        caller has already disconnected the endpoint from its old network.

        :returns: the endpoint as it is now (its ``network`` updated).
        :raises OperationNotSupported: this driver has no runtime cable.
        """
        raise exception.OperationNotSupported(
            operation='connect', by=self.name,
            reason='the driver has no runtime cable')

    def disconnect(self, endpoint: endpoints.Endpoint,
                   network: networks.Network) -> None:
        """Unplug the endpoint's cable, keeping the endpoint itself.

        :raises OperationNotSupported: this driver has no runtime cable.
        """
        raise exception.OperationNotSupported(
            operation='disconnect', by=self.name,
            reason='the driver has no runtime cable')

    # -- runtime: what the watcher and reconcile use ----------------------

    def dependencies(self, endpoint: endpoints.Endpoint,
                     network: networks.Network) -> tuple[str, ...]:
        """Host interfaces ``endpoint`` needs to carry traffic.

        The runtime watches them: when one disappears the endpoint is
        degraded (:meth:`lost`), when it comes back the endpoint is
        rebuilt (:meth:`restore`).
        """
        return ()

    def waits_for(self, endpoint: endpoints.Endpoint) -> tuple[str, ...]:
        """Those of :meth:`dependencies` that come and go with the guest
        (a tap its hypervisor makes): while one of them is missing the
        endpoint is ``waiting`` for it, not ``degraded``.
        """
        return ()

    def dependencies_of(self, endpoints_: list[endpoints.Endpoint],
                        network: networks.Network
                        ) -> dict[str, tuple[str, ...]]:
        """:meth:`dependencies` of many endpoints at once.

        :returns: ``{port_id: host interface names}``.
        """
        return {e.port_id: self.dependencies(e, network) for e in endpoints_}

    def restore(self, endpoints_: list[endpoints.Endpoint],
                network: networks.Network, plugged: set[str]
                ) -> set[str] | None:
        """Make the host side of ``endpoints_`` exist and match the cable.

        Idempotent: what exists is left alone, what is missing (after a
        reboot, a lower device's return, a crash) is rebuilt. Endpoints
        whose port id is in ``plugged`` are connected, the others are
        left unplugged.

        :returns: the port ids whose endpoints the host side alone cannot
            heal (the watcher leaves them degraded), or ``None`` when
            every endpoint was dealt with.
        :raises VifPlugDynException: the host work failed.
        """
        return None

    def release_network(self, network: networks.Network) -> None:
        """A port left ``network`` for another one: remove the network's
        own host objects (a bridge the library made) if no port is left."""
        return None

    def lost(self, endpoints_: list[endpoints.Endpoint],
             network: networks.Network) -> None:
        """Tidy up after a dependency of ``endpoints_`` vanished (the
        kernel already removed the devices that hung off it)."""
        return None

    def check_request(self, request: ports.EndpointRequest,
                      network: networks.Network) -> None:
        """Refuse a request the driver cannot serve before any work is done.

        :raises VifPlugDynException: why not.
        """
        return None
