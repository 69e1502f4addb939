"""Hypervisor adapters.

An adapter turns a typed endpoint descriptor into what its hypervisor
consumes (for libvirt: an ``<interface>`` element, a domain XML, a live
device update). Adapters are found by name in the stevedore entry-point
namespace :data:`NAMESPACE`, so another hypervisor can be added by another
package without touching any network driver.
"""

import stevedore
from oslo_config import cfg

from vif_plug_dyn import exception
from vif_plug_dyn.virt import base

#: Entry-point namespace hypervisor adapters are registered in.
NAMESPACE = base.NAMESPACE


def load_adapter(name: str, conf: cfg.ConfigOpts) -> base.HypervisorAdapter:
    """Load the hypervisor adapter registered as ``name``.

    :param name: an entry point name in :data:`NAMESPACE` (``libvirt``).
    :param conf: the configuration handed to the adapter.
    :returns: the adapter.
    :raises HypervisorNotFound: no adapter of that name is installed.
    :raises OperationNotSupported: the entry point is not an adapter.
    """
    try:
        manager: stevedore.DriverManager = stevedore.DriverManager(
            NAMESPACE, name, invoke_on_load=True, invoke_args=(conf,))
    except stevedore.exception.NoMatches:
        raise exception.HypervisorNotFound(name=name) from None
    adapter = manager.driver
    if not isinstance(adapter, base.HypervisorAdapter):
        raise exception.OperationNotSupported(
            operation='loading hypervisor adapter %s' % name,
            by=NAMESPACE, reason='%r is not a HypervisorAdapter' % adapter)
    return adapter
