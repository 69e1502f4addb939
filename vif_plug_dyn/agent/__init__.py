"""The per-host agent: the public API served over oslo.messaging.

``vif-plug-dyn-agent`` (:mod:`vif_plug_dyn.agent.service`) runs on every
host. It owns the host's endpoint manager, the watcher and the hypervisor
adapter, serves the RPC API of :mod:`vif_plug_dyn.agent.endpoint` and
emits the notifications of :mod:`vif_plug_dyn.agent.notify`. Controllers
reach it with :class:`vif_plug_dyn.rpc.AgentClient`.

This module holds what both sides share: the RPC target's names, the
API version and the options.
"""

import copy
import socket

from oslo_config import cfg

GROUP = 'vif_plug_dyn_agent'

#: The RPC topic every agent listens on (with ``server=<host>``).
TOPIC = 'vif_plug_dyn.agent'
#: The exchange of the RPC target (not the deployment's control exchange:
#: a library loaded into another service must not change that).
EXCHANGE = 'vif_plug_dyn'
#: The RPC API version the agent serves (see :mod:`.endpoint` for the
#: compatibility rules).
RPC_API_VERSION = '1.0'
#: The notification topic (``[oslo_messaging_notifications] topics``
#: overrides it).
NOTIFICATION_TOPIC = 'vif_plug_dyn_notifications'
#: Event types of the notifications.
EVENT_PLUGGED = 'vif_plug_dyn.port.plugged'
EVENT_UNPLUGGED = 'vif_plug_dyn.port.unplugged'
EVENT_DEGRADED = 'vif_plug_dyn.port.degraded'
EVENT_RESTORED = 'vif_plug_dyn.port.restored'
EVENT_TYPES = (EVENT_PLUGGED, EVENT_UNPLUGGED, EVENT_DEGRADED,
               EVENT_RESTORED)

agent_opts = [
    cfg.StrOpt('host', default=socket.gethostname(),
               sample_default='<the host name>',
               help='The name this agent serves under: controllers call '
                    'AgentClient(host) and the RPC server listens on topic '
                    '"vif_plug_dyn.agent" with server=<host>. Use the name '
                    'the rest of the deployment (nova, Neutron) knows the '
                    'host by.'),
    cfg.BoolOpt('watch', default=True,
                help='Run the watcher in the agent: heal endpoints when the '
                     'host interfaces under them come and go, and send the '
                     'degraded/restored notifications.'),
    cfg.FloatOpt('rpc_timeout', default=60.0, min=0.1,
                 help='Seconds a controller (AgentClient, vif-plug-dyn '
                      '--host) waits for an agent\'s answer before raising '
                      'AgentTimeout.'),
    cfg.IntOpt('rpc_retry', default=3, min=-1,
               help='How many times a controller retries connecting to '
                    'the message bus for one call or cast before raising '
                    'AgentUnreachable (-1: forever, as oslo.messaging '
                    'does by default; the call\'s timeout does not bound '
                    'connection retries).'),
    cfg.FloatOpt('migration_timeout', default=600.0, min=1.0,
                 help='Seconds a controller waits for a migrate call (the '
                      'whole live migration runs inside it).'),
    cfg.FloatOpt('stop_timeout', default=60.0, min=0.0,
                 help='Seconds the agent waits, on SIGTERM, for calls in '
                      'progress to finish and notifications to be sent.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register the agent's options on ``conf``."""
    conf.register_opts(agent_opts, group=GROUP)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """Return the agent's options for ``oslo-config-generator``."""
    return [(GROUP, copy.deepcopy(agent_opts))]
