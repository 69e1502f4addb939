"""The libvirt adapter (entry point ``libvirt`` of
``vif_plug_dyn.hypervisors``).

What is here is everything that is XML: the ``<interface>`` of an
endpoint and the destination domain of a migration. The live operations
(attach, detach, link state, source change on a running guest) need a real
libvirtd and QEMU to be tested against and are not implemented yet: they
raise :class:`~vif_plug_dyn.exception.OperationNotSupported`. The XML they
will send is already built by :mod:`.domain`
(:func:`~.domain.link_state_device_xml`,
:func:`~.domain.source_update_device_xml`,
:func:`~.domain.interface_device_xml`).
"""

from typing import Any, NoReturn

from oslo_config import cfg

from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn.virt import base
from vif_plug_dyn.virt.libvirt import domain as domain_mod
from vif_plug_dyn.virt.libvirt import vif


class LibvirtAdapter(base.HypervisorAdapter):
    """Turns endpoints into libvirt XML.

    :param conf: the configuration (group ``vif_plug_dyn_libvirt``).
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

    def __init__(self, conf: cfg.ConfigOpts | None = None) -> None:
        super().__init__(conf)
        self.converter = vif.EndpointToInterface()

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

    def _not_yet(self, operation: str) -> NoReturn:
        raise exception.OperationNotSupported(
            operation=operation, by='the libvirt adapter',
            reason='live device operations are not implemented yet')

    def attach(self, domain: str, endpoint: endpoints.Endpoint, *,
               live: bool = True, persistent: bool = True,
               **nic_options: Any) -> None:
        self._not_yet('attach')

    def detach(self, domain: str, mac: str, *, live: bool = True,
               persistent: bool = True) -> None:
        self._not_yet('detach')

    def set_link_state(self, domain: str, mac: str, up: bool) -> None:
        self._not_yet('set_link_state')

    def update_source(self, domain: str,
                      endpoint: endpoints.Endpoint) -> None:
        self._not_yet('update_source')
