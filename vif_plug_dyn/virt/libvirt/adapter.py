"""The libvirt adapter (entry point ``libvirt`` of
``vif_plug_dyn.hypervisors``).

The XML side (the ``<interface>`` of an endpoint, the destination domain
of a migration) needs no connection. The live operations (attach, detach,
link state, source change) open one, from ``[vif_plug_dyn_libvirt] uri``
or the connection given, on first use: see :mod:`.host` for the
connection and its event loop and :mod:`.live` for the operations.
"""

import threading
from collections.abc import Callable
from typing import Any

import libvirt
from oslo_config import cfg

from vif_plug_dyn import endpoints
from vif_plug_dyn import opts
from vif_plug_dyn.virt import base
from vif_plug_dyn.virt.libvirt import domain as domain_mod
from vif_plug_dyn.virt.libvirt import host as host_mod
from vif_plug_dyn.virt.libvirt import live as live_mod
from vif_plug_dyn.virt.libvirt import vif


class LibvirtAdapter(base.HypervisorAdapter):
    """Turns endpoints into libvirt XML and live device changes.

    :param conf: the configuration (group ``vif_plug_dyn_libvirt``:
        ``uri``, ``detach_timeout``, ``detach_attempts``); the defaults
        when ``None``.
    :param connection: a :class:`~.host.Host`, or an open
        :class:`libvirt.virConnect` to use instead of opening ``uri``
        (see :class:`~.host.Host` about its events).
    """

    NAME = 'libvirt'

    #: Endpoint types in order of preference.
    # NOTE(vpd): tap-based endpoints first: with ethernet the library owns
    # the tap and can move the cable with no libvirt call at all; bridge
    # and network can be moved live through libvirt; a direct (macvtap)
    # NIC can only be reconnected by detach + attach, and a hostdev VF
    # cannot be moved or migrated.
    ACCEPTED_TYPES = (endpoints.ETHERNET, endpoints.BRIDGE,
                      endpoints.NETWORK, endpoints.DIRECT, endpoints.HOSTDEV)

    def __init__(self, conf: cfg.ConfigOpts | None = None,
                 connection: 'host_mod.Host | libvirt.virConnect | None' =
                 None) -> None:
        super().__init__(conf)
        self.converter = vif.EndpointToInterface()
        if conf is not None:
            # NOTE(vpd): registering the same options again is a no-op;
            # this lets an application hand over a configuration that
            # only knows its own options.
            conf.register_opts(opts.libvirt_opts, group=opts.LIBVIRT_GROUP)
        if connection is None or isinstance(connection, host_mod.Host):
            self._host = connection
        else:
            self._host = host_mod.Host(conn=connection)
        self._live: live_mod.LiveOperations | None = None
        self._lock = threading.Lock()

    def _option(self, name: str) -> Any:
        if self.conf is None:
            for opt in opts.libvirt_opts:
                if opt.name == name:
                    return opt.default
            raise KeyError(name)
        return self.conf[opts.LIBVIRT_GROUP][name]

    @property
    def host(self) -> host_mod.Host:
        """The connection wrapper (made from ``uri`` on first use)."""
        with self._lock:
            if self._host is None:
                self._host = host_mod.Host(uri=self._option('uri'))
            return self._host

    @property
    def live(self) -> live_mod.LiveOperations:
        """The live operations, on :attr:`host`."""
        host = self.host
        with self._lock:
            if self._live is None:
                self._live = live_mod.LiveOperations(
                    host, converter=self.converter,
                    detach_timeout=self._option('detach_timeout'),
                    detach_attempts=self._option('detach_attempts'))
            return self._live

    def close(self) -> None:
        """Close the connection if the adapter opened it."""
        with self._lock:
            host, self._host, self._live = self._host, None, None
        if host is not None:
            host.close()

    # -- XML ------------------------------------------------------------------

    def accepted_types(self) -> tuple[str, ...]:
        return self.ACCEPTED_TYPES

    def interface_config(self, endpoint: endpoints.Endpoint,
                         **nic_options: Any) -> str:
        options = base.NicOptions.from_kwargs(nic_options)
        return self.converter.build(endpoint, options).to_xml()

    def migration_xml(self, domain_xml: str,
                      dest_endpoints: dict[str, endpoints.Endpoint]) -> str:
        return domain_mod.migration_xml(domain_xml, dest_endpoints,
                                        converter=self.converter)

    def interface_macs(self, domain_xml: str) -> list[str]:
        return list(domain_mod.list_interfaces(domain_xml))

    def domain_xml(self, domain: str, migratable: bool = False) -> str:
        """Return the live definition of a domain (its persistent one
        when it is shut off).

        :param migratable: the form to hand to a migration
            (``VIR_DOMAIN_XML_MIGRATABLE``: without what libvirt added
            for this host only).
        :raises DomainNotFound: no such domain.
        """
        operation = 'reading the definition'
        dom = self.host.lookup(domain, operation)
        flags = libvirt.VIR_DOMAIN_XML_SECURE
        if migratable:
            flags |= libvirt.VIR_DOMAIN_XML_MIGRATABLE
        with host_mod.translate_errors(operation, domain,
                                       uri=self.host.uri):
            return dom.XMLDesc(flags)

    # -- live -----------------------------------------------------------------

    def attach(self, domain: str, endpoint: endpoints.Endpoint, *,
               live: bool = True, persistent: bool = True,
               **nic_options: Any) -> None:
        options = base.NicOptions.from_kwargs(nic_options)
        self.live.attach(domain, endpoint, live=live, persistent=persistent,
                         options=options)

    def detach(self, domain: str, mac: str, *, live: bool = True,
               persistent: bool = True) -> None:
        self.live.detach(domain, mac, live=live, persistent=persistent)

    def set_link_state(self, domain: str, mac: str, up: bool) -> bool:
        return bool(self.live.set_link_state(domain, mac, up) &
                    live_mod.LIVE)

    def update_source(self, domain: str,
                      endpoint: endpoints.Endpoint) -> None:
        self.live.update_source(domain, endpoint)

    def watch_guests(self, callback: Callable[[str, str], None]) -> None:
        self.host.watch_guests(callback)

    def watching_guests(self) -> bool:
        with self._lock:
            host = self._host
        return host is not None and host.watching_guests()

    def reattach(self, domain: str, endpoint: endpoints.Endpoint) -> None:
        current = domain_mod.get_interface(self.domain_xml(domain),
                                           endpoint.mac)
        address = current.guest_address.pci() \
            if current.guest_address is not None else None
        # NOTE(vpd): the same guest PCI address, alias and model: to the
        # guest this is its NIC going away and coming back in its slot.
        self.detach(domain, endpoint.mac)
        alias = current.alias if current.alias and \
            current.alias.startswith('ua-') else None
        self.attach(domain, endpoint, model=current.model,
                    guest_address=address, alias=alias,
                    link_up=current.link_state != 'down')
