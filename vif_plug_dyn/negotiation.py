"""Negotiation: endpoint request -> network driver + endpoint type."""

import threading

import stevedore
from oslo_config import cfg

from vif_plug_dyn import exception
from vif_plug_dyn import networks
from vif_plug_dyn import opts
from vif_plug_dyn import ports
from vif_plug_dyn.drivers import base


def choose_type(request: ports.EndpointRequest, network: networks.Network,
                offered: tuple[str, ...]) -> str:
    """Pick the first type the request accepts that is on offer.

    :param request: the request; its ``accepted_types`` are in the
        hypervisor's order of preference.
    :param network: the network (named in the error).
    :param offered: what the network's driver can provide now.
    :returns: the endpoint type.
    :raises NoMatchingEndpointType: no accepted type is offered.
    """
    for endpoint_type in request.accepted_types:
        if endpoint_type in offered:
            return endpoint_type
    raise exception.NoMatchingEndpointType(
        network=network.name, kind=network.kind,
        requested=', '.join(request.accepted_types),
        offered=', '.join(offered) or 'nothing')


class DriverSet:
    """Loads each network's driver once, by name, through stevedore.

    :param conf: the configuration (``network_drivers`` maps kinds to
        driver names).
    :param context: handed to each driver when it is loaded.
    """

    def __init__(self, conf: cfg.ConfigOpts,
                 context: base.DriverContext) -> None:
        self.conf = conf
        self.context = context
        self._drivers: dict[str, base.NetworkDriver] = {}
        self._lock = threading.Lock()

    def driver_name(self, network: networks.Network) -> str:
        """Return the name of the driver serving ``network``."""
        if network.driver:
            return network.driver
        mapping = self.conf[opts.GROUP].network_drivers
        return str(mapping.get(network.kind, network.kind))

    def for_network(self, network: networks.Network) -> base.NetworkDriver:
        """Return (loading it on first use) the driver of ``network``.

        :raises DriverNotFound: no such entry point.
        :raises DriverLoadFailed: the driver raised while loading, or does
            not serve the network's kind.
        """
        name = self.driver_name(network)
        with self._lock:
            driver = self._drivers.get(name)
            if driver is None:
                driver = self._load(name, network.kind)
                self._drivers[name] = driver
        if network.kind not in driver.KINDS:
            raise exception.DriverLoadFailed(
                driver=name, reason='it does not serve %s networks (only '
                                    '%s)' % (network.kind,
                                             ', '.join(driver.KINDS)))
        return driver

    def loaded(self) -> dict[str, base.NetworkDriver]:
        """Return the drivers loaded so far, by name."""
        with self._lock:
            return dict(self._drivers)

    def _load(self, name: str, kind: str) -> base.NetworkDriver:
        try:
            manager: stevedore.DriverManager = stevedore.DriverManager(
                base.NAMESPACE, name, invoke_on_load=True,
                invoke_args=(self.context,))
        except stevedore.exception.NoMatches:
            raise exception.DriverNotFound(driver=name, kind=kind,
                                           namespace=base.NAMESPACE
                                           ) from None
        except exception.VifPlugDynException:
            raise
        except Exception as exc:
            raise exception.DriverLoadFailed(driver=name,
                                             reason=str(exc)) from exc
        driver = manager.driver
        if not isinstance(driver, base.NetworkDriver):
            raise exception.DriverLoadFailed(
                driver=name, reason='%r is not a NetworkDriver' % driver)
        return driver

    def negotiate(self, request: ports.EndpointRequest,
                  network: networks.Network
                  ) -> tuple[base.NetworkDriver, str]:
        """Return the driver for ``network`` and the type it will build.

        :raises NoMatchingEndpointType: nothing the request accepts is on
            offer.
        """
        driver = self.for_network(network)
        return driver, choose_type(request, network,
                                   driver.endpoint_types(network))
