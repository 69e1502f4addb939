"""oslo.messaging, imported once without eventlet's import-time warning.

NOTE(vpd): oslo.messaging imports oslo.service, whose default backend
imports eventlet, which warns on import that it is deprecated. Nothing is
monkey-patched by that import and the library never uses eventlet (the
agent's RPC server and notification listener run on threads); the
warning would only reach users of the CLI and the agent as noise. Every
module of the library imports oslo.messaging from here.
"""

import importlib
import warnings
from typing import Any

with warnings.catch_warnings():
    warnings.filterwarnings('ignore', message='.*Eventlet is deprecated')
    import oslo_messaging
    import oslo_messaging.opts  # noqa: F401 - used as oslo_messaging.opts

__all__ = ['oslo_messaging', 'prepare_conf']


def prepare_conf(conf: Any) -> None:
    """Register on ``conf`` the options oslo.messaging reads from it but
    registers only on ``cfg.CONF``.

    NOTE(vpd): oslo.messaging 18.3 reads ``[oslo_messaging_metrics]`` and
    ``[oslo_messaging_tracing]`` from a transport's configuration on
    every call, but registers those groups only on the global
    ``cfg.CONF`` (its own ConfFixture registers them for its tests): a
    call through a transport made from any other ``ConfigOpts`` raises
    NoSuchOptError. The library (the CLI, tests, a controller) uses its
    own ``ConfigOpts``.
    """
    for module, group in (('oslo_messaging._metrics.client',
                           'oslo_messaging_metrics'),
                          ('oslo_messaging._tracing.client',
                           'oslo_messaging_tracing')):
        try:
            found = importlib.import_module(module)
        except ImportError:
            continue
        options = getattr(found, group, None)
        if options:
            conf.register_opts(options, group=group)
