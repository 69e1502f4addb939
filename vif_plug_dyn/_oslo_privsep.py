"""oslo.privsep's modules, imported without eventlet's deprecation notice.

NOTE(vpd): oslo.privsep imports eventlet when it is installed (os-vif
brings it in) only to learn whether the process is monkey patched, and
eventlet warns at import that it is deprecated. vif_plug_dyn does not use
eventlet: the notice is not for its users, and it would open the standard
error of every ``vif-plug-dyn`` command, ahead of the ``error: ...`` line
callers read. The filter only holds while these imports run; it changes
no filter of the process.
"""

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
    from oslo_privsep import capabilities
    from oslo_privsep import priv_context

__all__ = ['capabilities', 'priv_context']
