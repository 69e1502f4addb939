"""Hypervisor adapters.

An adapter turns a typed endpoint descriptor into what its hypervisor
consumes (for libvirt: an ``<interface>`` element, a domain XML, a live
device update). Adapters are found by name in the stevedore entry-point
namespace :data:`NAMESPACE`, so another hypervisor can be added by another
package without touching any network driver. Which one a process uses is
configuration: ``[vif_plug_dyn] hypervisor`` (``libvirt`` by default),
loaded by :func:`load_configured_adapter`.
"""

from importlib import metadata
from typing import Any, NoReturn

import stevedore
from oslo_config import cfg

from vif_plug_dyn import exception
from vif_plug_dyn import opts
from vif_plug_dyn.virt import base

#: Entry-point namespace hypervisor adapters are registered in.
NAMESPACE = base.NAMESPACE
#: ``[vif_plug_dyn] hypervisor`` value for host-only use: no adapter, no
#: guest is ever told anything.
NONE = 'none'


def available_adapters() -> list[str]:
    """Return the names of the installed hypervisor adapters, sorted."""
    return sorted({ep.name for ep in
                   metadata.entry_points(group=NAMESPACE)})


def _load_failed(manager: Any, entrypoint: Any,
                 exc: BaseException) -> NoReturn:
    # NOTE(vpd): stevedore's default logs a failing plugin and then
    # reports "no match", which would call a broken adapter "not
    # installed"; say what actually went wrong instead.
    if isinstance(exc, exception.VifPlugDynException):
        raise exc
    raise exception.HypervisorLoadFailed(name=entrypoint.name,
                                         reason=str(exc)) from exc


def load_adapter(name: str, conf: cfg.ConfigOpts) -> base.HypervisorAdapter:
    """Load the hypervisor adapter registered as ``name``.

    :param name: an entry point name in :data:`NAMESPACE` (``libvirt``).
    :param conf: the configuration handed to the adapter.
    :returns: the adapter.
    :raises HypervisorNotFound: no adapter of that name is installed (the
        message lists the installed ones).
    :raises HypervisorLoadFailed: the adapter raised while loading.
    :raises OperationNotSupported: the entry point is not an adapter.
    """
    try:
        manager: stevedore.DriverManager = stevedore.DriverManager(
            NAMESPACE, name, invoke_on_load=True, invoke_args=(conf,),
            on_load_failure_callback=_load_failed)
    except stevedore.exception.NoMatches:
        raise exception.HypervisorNotFound(
            name=name, namespace=NAMESPACE,
            available=', '.join(available_adapters()) or 'nothing'
        ) from None
    adapter = manager.driver
    if not isinstance(adapter, base.HypervisorAdapter):
        raise exception.OperationNotSupported(
            operation='loading hypervisor adapter %s' % name,
            by=NAMESPACE, reason='%r is not a HypervisorAdapter' % adapter)
    return adapter


def configured_name(conf: cfg.ConfigOpts | None = None) -> str | None:
    """Return the adapter named by ``[vif_plug_dyn] hypervisor`` after
    checking that it is installed, without loading it (cheap: no import
    of the adapter's module, no connection).

    :returns: the name, or ``None`` for ``none`` (host-only use).
    :raises HypervisorNotFound: no adapter of that name is installed.
    """
    conf = cfg.CONF if conf is None else conf
    opts.register_opts(conf)
    name = str(conf[opts.GROUP].hypervisor)
    if name == NONE:
        return None
    installed = available_adapters()
    if name not in installed:
        raise exception.HypervisorNotFound(
            name=name, namespace=NAMESPACE,
            available=', '.join(installed + [NONE]))
    return name


def load_configured_adapter(conf: cfg.ConfigOpts | None = None
                            ) -> base.HypervisorAdapter:
    """Load the adapter named by ``[vif_plug_dyn] hypervisor``.

    :param conf: the configuration (``oslo_config.cfg.CONF`` if omitted);
        the library's options are registered on it.
    :returns: the adapter, built with ``conf``.
    :raises HypervisorNotFound: the configured name is not installed.
    :raises HypervisorLoadFailed: the adapter raised while loading.
    """
    conf = cfg.CONF if conf is None else conf
    opts.register_opts(conf)
    name = str(conf[opts.GROUP].hypervisor)
    if name == NONE:
        # NOTE(vpd): "none" is a choice, not a missing adapter: say so.
        raise exception.HypervisorNotFound(
            name=name, namespace=NAMESPACE,
            available='%s ("none" means host-only use: no adapter)' % (
                ', '.join(available_adapters()) or 'nothing'))
    return load_adapter(name, conf)
