"""The guest's side of the cable: link state, and a truthful live XML.

The host side of a cable is the drivers' business; this module tells the
hypervisor what the guest should see. A port's guest link is up when its
cable is plugged and its host side healthy, unless the operator forced it
(:attr:`vif_plug_dyn.ledger.PortRecord.link`). A port names its guest by
``vm_uuid``; a port without one, or whose guest is not running here, has
no guest to tell, which is not an error (the guest may boot later and will
be built from the ledger's state).
"""

from typing import Any

from oslo_log import log as logging

from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import ledger as ledger_mod

LOG = logging.getLogger(__name__)


class GuestLink:
    """Keeps guests' NICs in step with their cables.

    :param hypervisor: a :class:`vif_plug_dyn.virt.base.HypervisorAdapter`
        or ``None`` (no guest to tell: host-only use).
    """

    def __init__(self, hypervisor: Any = None) -> None:
        self.hypervisor = hypervisor

    def apply(self, record: ledger_mod.PortRecord) -> bool:
        """Set the guest link of ``record``'s NIC to what the record wants.

        :returns: whether a guest was told.
        :raises HypervisorOperationFailed: the hypervisor refused.
        """
        return self.set(record, record.guest_link_up)

    def set(self, record: ledger_mod.PortRecord, up: bool) -> bool:
        """Set the guest link of ``record``'s NIC up or down.

        :returns: whether a guest was told.
        """
        domain = record.port.vm_uuid
        if self.hypervisor is None or domain is None or \
                record.endpoint is None or \
                record.endpoint.type == endpoints.HOSTDEV:
            return False
        try:
            self.hypervisor.set_link_state(domain, record.port.mac, up)
        except (exception.DomainNotFound, exception.InterfaceNotFound):
            LOG.debug('Port %s: guest %s has no such NIC here now',
                      record.port.port_id, domain)
            return False
        return True

    def follow_source(self, record: ledger_mod.PortRecord,
                      endpoint: endpoints.Endpoint) -> bool:
        """Tell the hypervisor a ``bridge`` endpoint now has another bridge,
        so its live definition stays truthful.

        :returns: whether a guest was told.
        """
        old = record.endpoint
        domain = record.port.vm_uuid
        if self.hypervisor is None or domain is None or \
                not isinstance(endpoint, endpoints.BridgeEndpoint) or \
                not isinstance(old, endpoints.BridgeEndpoint) or \
                old.bridge == endpoint.bridge:
            return False
        try:
            self.hypervisor.update_source(domain, endpoint)
        except (exception.DomainNotFound, exception.InterfaceNotFound):
            return False
        return True

    def reattach(self, record: ledger_mod.PortRecord,
                 endpoint: endpoints.Endpoint) -> bool:
        """Give a genuine macvtap NIC its new source by detaching it and
        attaching it again in the same slot (guest-visible).

        :returns: whether a guest was told.
        """
        old = record.endpoint
        domain = record.port.vm_uuid
        if self.hypervisor is None or domain is None or \
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
