"""vif_plug_dyn: provision a VM's NIC once, connect it to networks at will.

The public API. Call :func:`initialize` once with a configuration, then::

    import vif_plug_dyn
    from vif_plug_dyn.ports import Port

    port = Port(port_id='...', mac='52:54:00:12:34:56', network='red')
    endpoint = vif_plug_dyn.request_endpoint(port, ['ethernet', 'bridge'])
    vif_plug_dyn.connect(port.port_id, 'blue')     # move the cable
    vif_plug_dyn.disconnect(port.port_id)          # pull it out
    vif_plug_dyn.release_endpoint(port.port_id)    # remove the endpoint

Host interfaces (the NICs, bridges, bonds and VLANs networks are built
on) have an API of their own, :func:`host_interfaces`::

    ifaces = vif_plug_dyn.host_interfaces()
    ifaces.define(xml)
    ifaces.change_begin()
    ifaces.start('br0')
    ifaces.change_commit()

Every function raises only :class:`vif_plug_dyn.exception.
VifPlugDynException` subclasses for errors it anticipates.
"""

import threading
from typing import TYPE_CHECKING, Any

from oslo_config import cfg

from vif_plug_dyn import endpoints
from vif_plug_dyn import manager as manager_mod
from vif_plug_dyn import opts
from vif_plug_dyn import ports
from vif_plug_dyn import virt
from vif_plug_dyn.virt import base as virt_base

if TYPE_CHECKING:
    from vif_plug_dyn.hostif.api import HostInterfaceAPI

__all__ = ['initialize', 'request_endpoint', 'request_endpoints',
           'release_endpoint', 'release_endpoints', 'connect', 'disconnect',
           'plug', 'unplug', 'host_capabilities', 'reconcile', 'get_manager',
           'load_hypervisor_adapter', 'host_interfaces']

_MANAGER: manager_mod.EndpointManager | None = None
_LOCK = threading.Lock()


def initialize(conf: cfg.ConfigOpts | None = None, host: Any = None,
               hypervisor: Any = manager_mod.CONFIGURED
               ) -> manager_mod.EndpointManager:
    """Load the configuration, the host's networks and the ledger, and
    wire the hypervisor adapter that tells guests about their cables.

    Safe to call again: the later call replaces the earlier state.

    The adapter is the one ``[vif_plug_dyn] hypervisor`` names
    (``libvirt`` by default, reaching ``[vif_plug_dyn_libvirt] uri``;
    ``none`` for host-only use). It is checked to be installed here and
    loaded the first time a guest is told something, so a process that
    only reads never loads it. A guest that cannot be told now (not
    running, hypervisor unreachable) is not an error: its wanted link is
    kept in the ledger as pending (see :doc:`/user/runtime`).

    :param conf: the configuration (``oslo_config.cfg.CONF`` if omitted);
        the library's options are registered on it.
    :param host: a privileged host helper to hand the drivers instead of
        the default one (tests).
    :param hypervisor: an adapter to use instead of the configured one,
        or ``None`` for host-only use.
    :returns: the manager the module functions use.
    :raises HypervisorNotFound: the configured adapter is not installed.
    """
    global _MANAGER
    conf = cfg.CONF if conf is None else conf
    opts.register_opts(conf)
    with _LOCK:
        _MANAGER = manager_mod.EndpointManager(conf, host=host,
                                               hypervisor=hypervisor)
        return _MANAGER


def get_manager() -> manager_mod.EndpointManager:
    """Return the manager set up by :func:`initialize`.

    :raises RuntimeError: :func:`initialize` was not called.
    """
    if _MANAGER is None:
        raise RuntimeError('vif_plug_dyn.initialize() has not been called')
    return _MANAGER


def request_endpoint(port: ports.Port,
                     accepted_types: tuple[str, ...] | list[str] = (
                         endpoints.BRIDGE, endpoints.DIRECT,
                         endpoints.ETHERNET, endpoints.HOSTDEV),
                     options: dict[str, str] | None = None,
                     connected: bool = True) -> endpoints.Endpoint:
    """Return an endpoint for ``port`` on its network (idempotent).

    See :meth:`vif_plug_dyn.manager.EndpointManager.request_endpoint`.
    """
    return get_manager().request_endpoint(port, accepted_types, options,
                                          connected)


def request_endpoints(ports_: list[ports.Port],
                      accepted_types: tuple[str, ...] | list[str] = (
                          endpoints.BRIDGE, endpoints.DIRECT,
                          endpoints.ETHERNET, endpoints.HOSTDEV),
                      options: dict[str, str] | None = None,
                      connected: bool = True) -> list[endpoints.Endpoint]:
    """Return endpoints for many ports, batching the host work per network;
    all or nothing.

    See :meth:`vif_plug_dyn.manager.EndpointManager.request_endpoints`.
    """
    return get_manager().request_endpoints(ports_, accepted_types, options,
                                           connected)


def release_endpoints(port_ids: list[str]) -> None:
    """Remove many ports' endpoints in batches; unknown ports are
    skipped."""
    get_manager().release_endpoints(port_ids)


def release_endpoint(port_id: str) -> None:
    """Remove a port's endpoint; a no-op when it has none."""
    get_manager().release_endpoint(port_id)


def connect(port_id: str, network: str | None = None) -> endpoints.Endpoint:
    """Plug a port's cable into ``network`` (moving it if needed)."""
    return get_manager().connect(port_id, network)


def disconnect(port_id: str) -> endpoints.Endpoint:
    """Unplug a port's cable, keeping its endpoint."""
    return get_manager().disconnect(port_id)


def plug(port: ports.Port, **kwargs: Any) -> endpoints.Endpoint:
    """Agent style: build the port's endpoint if needed and plug it into
    ``port.network``."""
    return get_manager().plug(port, **kwargs)


def unplug(port: ports.Port | str) -> None:
    """Agent style: remove the port's endpoint."""
    get_manager().unplug(port)


def host_capabilities() -> dict[str, Any]:
    """Describe the networks of this host and the endpoint types each can
    provide now."""
    return get_manager().host_capabilities()


def reconcile() -> dict[str, list[str]]:
    """Repair the ledger and the host after a crash."""
    return get_manager().reconcile()


def load_hypervisor_adapter(conf: cfg.ConfigOpts | None = None
                            ) -> virt_base.HypervisorAdapter:
    """Load the hypervisor adapter named by ``[vif_plug_dyn] hypervisor``.

    Adapters are entry points of the ``vif_plug_dyn.hypervisors``
    namespace, loaded with stevedore.

    :param conf: the configuration; when omitted, the one given to
        :func:`initialize`, or ``oslo_config.cfg.CONF`` before that.
    :returns: the adapter.
    :raises HypervisorNotFound: no adapter of the configured name is
        installed (the message lists the installed ones).
    :raises HypervisorLoadFailed: the adapter raised while loading.
    """
    if conf is None:
        conf = _MANAGER.conf if _MANAGER is not None else cfg.CONF
    return virt.load_configured_adapter(conf)


def host_interfaces(conf: cfg.ConfigOpts | None = None
                    ) -> 'HostInterfaceAPI':
    """Return the host interface API (define, start, stop, list, dump,
    transactions) for a configuration.

    :param conf: the configuration; the one given to :func:`initialize`
        (or ``oslo_config.cfg.CONF``) if omitted.
    :returns: a :class:`vif_plug_dyn.hostif.api.HostInterfaceAPI`.
    :raises InvalidHostInterface: a definition file is invalid.
    """
    # NOTE(vpd): imported here so that loading the endpoint API does not
    # load the host interface modules.
    from vif_plug_dyn.hostif import api
    if conf is None:
        conf = _MANAGER.conf if _MANAGER is not None else cfg.CONF
    return api.HostInterfaceAPI(conf)
