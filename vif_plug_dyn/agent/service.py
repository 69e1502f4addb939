"""``vif-plug-dyn-agent``: the per-host service.

::

    vif-plug-dyn-agent --config-file /etc/vif_plug_dyn/vif_plug_dyn.conf

It owns the host's :class:`~vif_plug_dyn.manager.EndpointManager` (built
by :func:`vif_plug_dyn.initialize`), the
:class:`~vif_plug_dyn.runtime.watcher.Watcher` (in a thread) and the
hypervisor adapter, serves :mod:`vif_plug_dyn.agent.endpoint` over
oslo.messaging RPC on ``[DEFAULT] transport_url`` and sends the
notifications of :mod:`vif_plug_dyn.agent.notify`.

Signals: SIGTERM or SIGINT stop it gracefully (no new calls are taken,
calls in progress finish, queued notifications are sent, the privileged
daemon is stopped); SIGHUP reloads the configuration files and the
network definitions (a network added or changed in ``network_dir`` is
served from the next call on).

NOTE(vpd): a loop of its own on threads rather than oslo.service: the
oslo.service release this was built against runs services either on
eventlet (which the library does not use: privsep, the watcher and the
ledger are thread-based) or, with its threading backend, in child
processes through cotyledon, which would put the manager, its privileged
daemon and the watcher in a process other than the one the signals
reach. oslo.messaging's threading executor (its default in a process
eventlet has not patched) serves calls on a pool of
``executor_thread_pool_size`` threads; the manager is thread-safe.
"""

import importlib
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging

import vif_plug_dyn
from vif_plug_dyn import agent
from vif_plug_dyn import exception
from vif_plug_dyn import opts
from vif_plug_dyn import privsep
from vif_plug_dyn import rpc
from vif_plug_dyn import validate
from vif_plug_dyn._messaging import oslo_messaging
from vif_plug_dyn.agent import endpoint as endpoint_mod
from vif_plug_dyn.agent import notify

LOG = logging.getLogger(__name__)


class AgentService:
    """One host's agent.

    :param conf: the configuration (library, agent, oslo.messaging and
        logging options).
    :param transport: an RPC transport (made from ``conf`` when omitted).
    :param notification_transport: a notification transport (likewise).
    :param host_network: the privileged host helper handed to the manager
        (tests; see :func:`vif_plug_dyn.initialize`).
    """

    def __init__(self, conf: cfg.ConfigOpts,
                 transport: Any = None,
                 notification_transport: Any = None,
                 host_network: Any = None) -> None:
        self.conf = conf
        self._host_network = host_network
        opts.register_opts(conf)
        agent.register_opts(conf)
        self.host: str = conf[agent.GROUP].host
        validate.safe_text(self.host, '[%s] host' % agent.GROUP, max_len=255)
        self._own_transport = transport is None
        self.transport = transport
        self._notification_transport = notification_transport
        self.manager: Any = None
        self.watcher: Any = None
        self.notifier: Any = None
        self.server: Any = None
        self.guest_monitor: Any = None
        self._adapter: Any = None
        self._adapter_lock = threading.Lock()
        self._stop = threading.Event()
        self._reload = threading.Event()

    # -- life cycle -----------------------------------------------------------

    def start(self) -> None:
        """Build the manager, start the watcher and serve RPC."""
        self.manager = vif_plug_dyn.initialize(self.conf,
                                              host=self._host_network)
        if self.transport is None:
            self.transport = rpc.get_transport(self.conf)
        self.notifier = notify.PortNotifier(
            self.conf, self.host, transport=self._notification_transport)
        self.notifier.start_health(self.manager.ledger.list_ports())
        if self.conf[agent.GROUP].watch:
            # NOTE(vpd): imported here: an agent told not to watch never
            # loads the watcher.
            from vif_plug_dyn.runtime import watcher as watcher_mod
            self.watcher = watcher_mod.Watcher(self.manager,
                                               on_report=self._on_report)
            self.watcher.start()
        self._start_guest_monitor()
        self.server = oslo_messaging.get_rpc_server(
            self.transport, rpc.target(self.host),
            [endpoint_mod.AgentEndpoint(self)],
            serializer=rpc.ObjectSerializer(defer_errors=True),
            access_policy=oslo_messaging.DefaultRPCAccessPolicy)
        self.server.start()
        LOG.info('vif-plug-dyn-agent %(host)s serving %(topic)s %(version)s '
                 '(%(count)d network(s), watcher %(watch)s)',
                 {'host': self.host, 'topic': agent.TOPIC,
                  'version': agent.RPC_API_VERSION,
                  'count': len(self.manager.registry.list()),
                  'watch': 'on' if self.watcher else 'off'})

    def _start_guest_monitor(self) -> None:
        """Follow the hypervisor's guest lifecycle events, so that a
        guest that starts gets the links its cables want (pending in the
        ledger meanwhile).

        NOTE(vpd): the monitor is the library's
        (``vif_plug_dyn.runtime.guests``, the one ``vif-plug-dyn watch``
        runs); an installation without it tells guests at calls and at
        reconcile only.
        """
        try:
            guests = importlib.import_module('vif_plug_dyn.runtime.guests')
        except ImportError:
            return
        monitor = guests.GuestMonitor(self.manager)
        if monitor.start():
            self.guest_monitor = monitor

    def _on_report(self, report: Any) -> None:
        if report.degraded or report.restored:
            self.notifier.on_report(report, self.watcher.map.records)

    def stop(self) -> None:
        """Stop gracefully: stop taking calls, let those in progress
        finish (up to ``stop_timeout``), send queued notifications, stop
        the watcher and the privileged daemon."""
        timeout = self.conf[agent.GROUP].stop_timeout
        if self.server is not None:
            self.server.stop()
            waiter = threading.Thread(target=self.server.wait,
                                      name='vpd-rpc-wait', daemon=True)
            waiter.start()
            waiter.join(timeout)
            if waiter.is_alive():
                LOG.warning('Calls still in progress after %.0f s; '
                            'stopping anyway', timeout)
            self.server = None
        if self.guest_monitor is not None:
            self.guest_monitor.stop()
            self.guest_monitor = None
        if self.watcher is not None:
            self.watcher.close()
            self.watcher = None
        if self.notifier is not None:
            self.notifier.close(timeout)
            self.notifier = None
        if self._adapter is not None:
            self._adapter.close()
            self._adapter = None
        if self._own_transport and self.transport is not None:
            self.transport.cleanup()
            self.transport = None
        if self.manager is not None:
            self.manager.close()
        privsep.stop()
        LOG.info('vif-plug-dyn-agent %s stopped', self.host)

    def reload(self) -> None:
        """Reload the configuration files and the network definitions.

        A definition that no longer parses leaves the previous ones in
        place (and is logged).
        """
        self.conf.reload_config_files()
        try:
            networks = self.manager.registry.load()
        except exception.VifPlugDynException as exc:
            LOG.error('SIGHUP: network definitions not reloaded: %s', exc)
            return
        LOG.info('SIGHUP: configuration reloaded, %d network(s): %s',
                 len(networks), ', '.join(n.name for n in networks))

    def run(self, ready: Callable[[], None] | None = None) -> None:
        """Start, then serve until SIGTERM/SIGINT (SIGHUP reloads); stop.

        Must be called from the main thread (signal handlers).
        """
        def on_stop(signum: int, _frame: Any) -> None:
            LOG.info('Signal %d: stopping', signum)
            self._stop.set()

        def on_hup(_signum: int, _frame: Any) -> None:
            self._reload.set()

        previous = {sig: signal.signal(sig, handler) for sig, handler in (
            (signal.SIGTERM, on_stop), (signal.SIGINT, on_stop),
            (signal.SIGHUP, on_hup))}
        try:
            self.start()
            if ready is not None:
                ready()
            while not self._stop.is_set():
                self._stop.wait(1.0)
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def request_stop(self) -> None:
        """Ask :meth:`run` to return (any thread)."""
        self._stop.set()

    # -- the hypervisor -------------------------------------------------------

    def hypervisor_name(self) -> str:
        return self.conf[opts.GROUP].hypervisor

    def hypervisor(self) -> Any:
        """The hypervisor adapter: the manager's when
        :func:`vif_plug_dyn.initialize` gave it one, else loaded on first
        use (an agent on a host without a hypervisor never loads one)."""
        given = getattr(self.manager.guest, 'hypervisor', None)
        if given is not None:
            return given
        with self._adapter_lock:
            if self._adapter is None:
                self._adapter = vif_plug_dyn.load_hypervisor_adapter(
                    self.conf)
            return self._adapter

    def migrate(self, domain: str, destination: str, dest_uri: str,
                migrate_uri: str | None = None,
                rewrites: dict[str, str] | None = None
                ) -> tuple[Any, list[Any]]:
        """Live-migrate ``domain`` to ``destination``'s host: a
        :class:`~vif_plug_dyn.virt.migration.MigrationFlow` with this
        host's manager as the source and the destination's agent reached
        over the bus.

        :returns: the flow's result and the source records it moved.
        :raises OperationNotSupported: the adapter is not libvirt.
        :raises InvalidField: a bad argument.
        """
        validate.safe_text(domain, 'domain', max_len=255)
        validate.safe_text(destination, 'destination', max_len=255)
        validate.safe_text(dest_uri, 'dest_uri', max_len=1024)
        if migrate_uri is not None:
            validate.safe_text(migrate_uri, 'migrate_uri', max_len=1024)
        changes = _rewrites(rewrites)
        adapter = self.hypervisor()
        if adapter.NAME != 'libvirt':
            raise exception.OperationNotSupported(
                operation='migrate', by='hypervisor adapter %s' %
                adapter.NAME, reason='the agent migrates with libvirt')
        # NOTE(vpd): imported here: libvirt-python is only needed by
        # agents that migrate.
        from vif_plug_dyn.virt import migration
        from vif_plug_dyn.virt.libvirt import migrate as migrate_mod
        domain_xml = adapter.domain_xml(domain, migratable=True)
        macs = set(adapter.interface_macs(domain_xml))
        records = [r for r in self.manager.ledger.list_ports()
                   if r.port.mac in macs]

        def rewrite(xml: str) -> str:
            for old, new in changes:
                xml = xml.replace(old, new)
            return xml

        dest = rpc.AgentClient(destination, self.conf,
                               transport=self.transport)
        flow = migration.MigrationFlow(
            adapter, self.manager, dest, migrate_mod.LibvirtMigrator(
                adapter, dest_uri, migrate_uri=migrate_uri,
                rewrite=rewrite if changes else None),
            destination_name=destination)
        started = time.monotonic()
        result = flow.run(domain, domain_xml, records)
        LOG.info('Domain %(domain)s migrated to %(dest)s in %(took).1f s',
                 {'domain': domain, 'dest': destination,
                  'took': time.monotonic() - started})
        return result, records


def _rewrites(value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise exception.InvalidField(field='rewrites', value=value,
                                     reason='must be a dict of strings')
    found = []
    for old, new in value.items():
        validate.safe_text(old, 'rewrites', max_len=4096)
        validate.safe_text(new, 'rewrites[%s]' % old, max_len=4096)
        if not old:
            raise exception.InvalidField(field='rewrites', value=old,
                                         reason='an empty string')
        found.append((old, new))
    return found


def setup_conf(argv: list[str] | None,
               conf: cfg.ConfigOpts | None = None) -> cfg.ConfigOpts:
    """Parse the agent's command line and configuration files."""
    conf = cfg.CONF if conf is None else conf
    opts.register_opts(conf)
    agent.register_opts(conf)
    logging.register_options(conf)
    notify.set_defaults(conf)
    conf(argv, project='vif_plug_dyn', prog='vif-plug-dyn-agent')
    logging.setup(conf, 'vif_plug_dyn')
    return conf


def main(argv: list[str] | None = None) -> int:
    """Run ``vif-plug-dyn-agent`` until SIGTERM; returns the exit
    status."""
    try:
        conf = setup_conf(sys.argv[1:] if argv is None else argv)
        AgentService(conf).run()
    except (exception.VifPlugDynException, OSError,
            cfg.Error) as exc:
        sys.stderr.write('vif-plug-dyn-agent: error: %s\n' % exc)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
