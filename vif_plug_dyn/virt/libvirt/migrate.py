"""The libvirt migrate callable of a
:class:`~vif_plug_dyn.virt.migration.MigrationFlow`."""

from collections.abc import Callable, Mapping
from typing import Any

import libvirt
from oslo_log import log as logging

from vif_plug_dyn import endpoints
from vif_plug_dyn.virt.libvirt import adapter as adapter_mod
from vif_plug_dyn.virt.libvirt import host as host_mod

LOG = logging.getLogger(__name__)

#: Flags of a live peer-to-peer migration that leaves the guest defined on
#: the destination only.
# NOTE(vpd): UNDEFINE_SOURCE because the flow releases the source
# endpoints: a definition left on the source would name host sides that
# no longer exist there.
DEFAULT_FLAGS = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER |
                 libvirt.VIR_MIGRATE_PERSIST_DEST |
                 libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)


class LibvirtMigrator:
    """Migrates a domain with ``migrateToURI3``, handing libvirt the
    destination definition (``VIR_MIGRATE_PARAM_DEST_XML``) and, for a
    persistent domain, its persistent definition rewritten the same way
    (``VIR_MIGRATE_PARAM_PERSIST_XML``).

    :param adapter: the source host's libvirt adapter (its connection).
    :param dest_uri: the destination libvirtd (``qemu+tcp://host/system``).
    :param migrate_uri: where QEMU sends the migration stream
        (``tcp://address``); libvirt's default is the destination's host
        name.
    :param flags: ``VIR_MIGRATE_*`` flags (:data:`DEFAULT_FLAGS`).
    :param params: more typed parameters (bandwidth, ...).
    :param rewrite: a last change of both definitions for host-specific
        things outside the NICs (serial console paths, VNC listen
        addresses).
    """

    def __init__(self, adapter: adapter_mod.LibvirtAdapter, dest_uri: str,
                 migrate_uri: str | None = None,
                 flags: int = DEFAULT_FLAGS,
                 params: Mapping[str, Any] | None = None,
                 rewrite: Callable[[str], str] | None = None) -> None:
        self.adapter = adapter
        self.dest_uri = dest_uri
        self.migrate_uri = migrate_uri
        self.flags = flags
        self.params = dict(params or {})
        self.rewrite = rewrite

    def parameters(self, dom: libvirt.virDomain, domain: str,
                   dest_xml: str,
                   dest_endpoints: Mapping[str, endpoints.Endpoint]
                   ) -> dict[str, Any]:
        """Return the typed parameters of the migration."""
        params = dict(self.params)
        params[libvirt.VIR_MIGRATE_PARAM_DEST_XML] = self._rewrite(dest_xml)
        if self.migrate_uri:
            params[libvirt.VIR_MIGRATE_PARAM_URI] = self.migrate_uri
        if self.flags & libvirt.VIR_MIGRATE_PERSIST_DEST:
            with host_mod.translate_errors('reading the persistent '
                                           'definition', domain,
                                           uri=self.adapter.host.uri):
                persistent = bool(dom.isPersistent())
                inactive = dom.XMLDesc(
                    libvirt.VIR_DOMAIN_XML_INACTIVE |
                    libvirt.VIR_DOMAIN_XML_SECURE |
                    libvirt.VIR_DOMAIN_XML_MIGRATABLE) if persistent \
                    else None
            if inactive is not None:
                # NOTE(vpd): without it libvirt would persist the live
                # definition on the destination, hot-plugged NICs
                # included; the persistent one is rewritten for the
                # NICs it has.
                present = set(self.adapter.interface_macs(inactive))
                params[libvirt.VIR_MIGRATE_PARAM_PERSIST_XML] = \
                    self._rewrite(self.adapter.migration_xml(
                        inactive, {mac: endpoint for mac, endpoint
                                   in dest_endpoints.items()
                                   if mac in present}))
        return params

    def _rewrite(self, xml: str) -> str:
        return self.rewrite(xml) if self.rewrite is not None else xml

    def __call__(self, domain: str, dest_xml: str,
                 dest_endpoints: Mapping[str, endpoints.Endpoint]) -> None:
        host = self.adapter.host
        operation = 'migration to %s' % self.dest_uri
        dom = host.lookup(domain, operation)
        params = self.parameters(dom, domain, dest_xml, dest_endpoints)
        LOG.info('Migrating domain %(domain)s to %(uri)s',
                 {'domain': domain, 'uri': self.dest_uri})
        with host_mod.translate_errors(operation, domain, uri=host.uri):
            # NOTE(vpd): libvirt-python's annotation says str; it takes
            # the dict of typed parameters.
            dom.migrateToURI3(self.dest_uri, params,  # type: ignore[arg-type]
                              self.flags)
