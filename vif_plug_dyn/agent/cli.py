"""``vif-plug-dyn --host H ...``: the endpoint and cable commands of the
command line, run on host H's agent through the message bus.

The commands are the same and print the same results as on the host
itself; :func:`run` hands them an :class:`~vif_plug_dyn.rpc.AgentClient`
in place of the local manager. Commands that only make sense on the host
(network definitions, host interfaces, the watcher) are refused.
"""

import argparse
import logging as std_logging
from typing import Any

from oslo_config import cfg

from vif_plug_dyn import agent
from vif_plug_dyn import exception
from vif_plug_dyn import ledger as ledger_mod

#: Commands that can run on an agent.
REMOTE_COMMANDS = ('endpoint', 'plug', 'unplug', 'connect', 'disconnect',
                   'link', 'capabilities', 'reconcile')


class RemoteLedger:
    """The two ledger reads the commands use, answered by the agent."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def get_port(self, port_id: str) -> ledger_mod.PortRecord | None:
        return self.client.get_port(port_id)

    def list_ports(self, network: str | None = None
                   ) -> list[ledger_mod.PortRecord]:
        return self.client.port_status(network=network)

    def guest_links(self, port_ids: list[str]) -> dict[str, Any]:
        """The guests' pending links are the agent's business: none are
        shown through the bus."""
        return {}


class RemoteManager:
    """An :class:`~vif_plug_dyn.rpc.AgentClient` with the manager's
    ``ledger`` reads, for the command handlers (which take a manager).

    NOTE(vpd): a wrapper, not a subclass, so that building the parser
    does not import oslo.messaging; only ``--host`` needs it.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.ledger = RemoteLedger(client)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--host``, ``--transport-url`` and ``--rpc-timeout``."""
    parser.add_argument('--host', help='run the command on that host\'s '
                        'agent, through the message bus (endpoint, plug, '
                        'unplug, connect, disconnect, link, capabilities, '
                        'reconcile)')
    parser.add_argument('--transport-url', help='override [DEFAULT] '
                        'transport_url (with --host)')
    parser.add_argument('--rpc-timeout', type=float, metavar='SECONDS',
                        help='override [%s] rpc_timeout (with --host)'
                        % agent.GROUP)


def run(conf: cfg.ConfigOpts, args: argparse.Namespace) -> Any:
    """Run the parsed command on ``args.host``'s agent.

    :raises InvalidField: the command cannot run on an agent.
    :raises AgentTimeout: the agent did not answer in time.
    :raises AgentUnreachable: the bus cannot carry the call.
    """
    if args.command not in REMOTE_COMMANDS:
        raise exception.InvalidField(
            field='--host', value=args.host,
            reason='"%s" runs on the host itself; with --host: %s' % (
                args.command, ', '.join(REMOTE_COMMANDS)))
    if not (args.verbose or args.debug):
        # NOTE(vpd): oslo.messaging logs every failed connection attempt
        # as an error, and oslo.service which backend it loaded; the
        # command reports the outcome itself.
        for name in ('oslo.messaging', 'oslo_messaging', 'oslo_service'):
            std_logging.getLogger(name).setLevel(std_logging.CRITICAL)
    from vif_plug_dyn import rpc
    transport = rpc.get_transport(conf, url=args.transport_url)
    client = rpc.AgentClient(args.host, conf, transport=transport,
                             timeout=args.rpc_timeout)
    # NOTE(vpd): no cleanup after AgentUnreachable: the transport is
    # still trying to connect and would block it; the process ends.
    result = args.func(RemoteManager(client), args)
    transport.cleanup()
    return result
