"""``vif-plug-dyn``: the command line for network agents and operators.

Every subcommand prints a human summary, or with ``--json`` one JSON
document on standard output. Errors the library anticipates print
``error: <message>`` on standard error and exit with status 2.
"""

import argparse
import json
import logging as std_logging
import signal
import sys
from collections.abc import Callable
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging

import vif_plug_dyn
from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import ledger as ledger_mod
from vif_plug_dyn import manager as manager_mod
from vif_plug_dyn import networks
from vif_plug_dyn import opts
from vif_plug_dyn import ports
from vif_plug_dyn import privsep
from vif_plug_dyn.cmd import policy as policy_cmd
from vif_plug_dyn.drivers import taps
from vif_plug_dyn.hostif import api as hostif_api
from vif_plug_dyn.hostif import document as hostif_document
from vif_plug_dyn.hostif import model

EXIT_ERROR = 2
_DEFAULT_TYPES = (endpoints.BRIDGE, endpoints.DIRECT, endpoints.ETHERNET,
                  endpoints.HOSTDEV)
LOG = logging.getLogger(__name__)

Handler = Callable[[manager_mod.EndpointManager, argparse.Namespace], Any]
IfaceHandler = Callable[[hostif_api.HostInterfaceAPI, argparse.Namespace],
                        Any]


def _port(args: argparse.Namespace) -> ports.Port:
    tap = args.tap
    if tap is None and args.hypervisor_tap and isinstance(args.port_id, str):
        # NOTE(vpd): nova's name for the tap of a ``tap`` VIF (Neutron's
        # ``devname``): ``tap`` + the first 11 characters of the port id.
        tap = 'tap' + args.port_id[:11]
    return ports.Port(port_id=args.port_id, mac=args.mac,
                      network=args.network, mtu=args.mtu, vlan=args.vlan,
                      vm_uuid=args.vm_uuid, tap=tap)


def _port_options(args: argparse.Namespace) -> dict[str, str]:
    options = _options(args.option)
    if args.hypervisor_tap:
        options[taps.TAP_MAKER_OPTION] = 'hypervisor'
    return options


def _port_types(args: argparse.Namespace) -> list[str]:
    if args.types is None:
        # NOTE(vpd): the hypervisor opens its own tap: only an ethernet
        # endpoint fits (nova's <interface type='ethernet'>).
        return [endpoints.ETHERNET] if args.hypervisor_tap else list(
            _DEFAULT_TYPES)
    return _types(args.types)


def _options(values: list[str]) -> dict[str, str]:
    result = {}
    for item in values:
        key, sep, value = item.partition('=')
        if not sep:
            raise exception.InvalidField(field='--option', value=item,
                                         reason='expected KEY=VALUE')
        result[key] = value
    return result


def _types(value: str) -> list[str]:
    return [t.strip() for t in value.split(',') if t.strip()]


def _record(record: Any, guest: Any = None) -> dict[str, Any]:
    return {'port_id': record.port.port_id, 'network': record.network,
            'state': record.state, 'cable': record.cable,
            'health': record.health, 'link': record.link,
            'vm_uuid': record.port.vm_uuid,
            'guest': guest.to_dict() if guest is not None else None,
            'endpoint': (record.endpoint.to_primitive()
                         if record.endpoint else None)}


def _note_guest(mgr: manager_mod.EndpointManager, port_id: str) -> None:
    """Say on standard error when the port's guest could not be told.

    NOTE(vpd): the host side is done and the command succeeds; the
    one-shot commands log only warnings, so a guest that is merely not
    running yet would otherwise go unmentioned.
    """
    guest = mgr.ledger.guest_links([port_id]).get(port_id)
    if guest is not None and guest.state == ledger_mod.GUEST_PENDING:
        sys.stderr.write('note: the guest link of port %s (%s) is pending: '
                         '%s; it is applied when the guest runs (under '
                         '"watch") or at the next "reconcile"\n' % (
                             port_id, 'up' if guest.up else 'down',
                             guest.reason))


def _network_list(mgr: manager_mod.EndpointManager,
                  args: argparse.Namespace) -> Any:
    return [{'name': n.name, 'kind': n.kind,
             'driver': mgr.drivers.driver_name(n),
             'ports': len(mgr.ledger.list_ports(n.name))}
            for n in mgr.registry.list()]


def _network_show(mgr: manager_mod.EndpointManager,
                  args: argparse.Namespace) -> Any:
    return mgr.registry.get(args.name).to_xml()


def _network_define(mgr: manager_mod.EndpointManager,
                    args: argparse.Namespace) -> Any:
    with open(args.file, 'rb') as handle:
        network = networks.Network.from_xml(handle.read(), source=args.file)
    mgr.registry.define(network, replace=args.replace)
    return {'defined': network.name}


def _network_undefine(mgr: manager_mod.EndpointManager,
                      args: argparse.Namespace) -> Any:
    used = mgr.ledger.list_ports(args.name)
    mgr.registry.get(args.name)
    if used:
        raise exception.NetworkInUse(
            network=args.name, count=len(used),
            ports=', '.join(r.port.port_id for r in used))
    mgr.registry.undefine(args.name)
    return {'undefined': args.name}


def _request(mgr: manager_mod.EndpointManager,
             args: argparse.Namespace) -> Any:
    endpoint = mgr.request_endpoint(_port(args), _port_types(args),
                                    _port_options(args),
                                    connected=not args.unplugged)
    _note_guest(mgr, endpoint.port_id)
    return endpoint.to_primitive()


def _plug(mgr: manager_mod.EndpointManager,
          args: argparse.Namespace) -> Any:
    endpoint = mgr.plug(_port(args), _port_types(args),
                        _port_options(args))
    _note_guest(mgr, endpoint.port_id)
    return endpoint.to_primitive()


def _release(mgr: manager_mod.EndpointManager,
             args: argparse.Namespace) -> Any:
    mgr.release_endpoint(args.port_id)
    return {'released': args.port_id}


def _endpoint_show(mgr: manager_mod.EndpointManager,
                   args: argparse.Namespace) -> Any:
    record = mgr.ledger.get_port(args.port_id)
    if record is None:
        raise exception.PortNotFound(port_id=args.port_id)
    return _record(record, mgr.ledger.guest_links([args.port_id]).get(
        args.port_id))


def _endpoint_list(mgr: manager_mod.EndpointManager,
                   args: argparse.Namespace) -> Any:
    records = mgr.ledger.list_ports(args.network)
    guests = mgr.ledger.guest_links([r.port.port_id for r in records])
    return [_record(r, guests.get(r.port.port_id)) for r in records]


def _connect(mgr: manager_mod.EndpointManager,
             args: argparse.Namespace) -> Any:
    endpoint = mgr.connect(args.port_id, args.network)
    _note_guest(mgr, endpoint.port_id)
    return endpoint.to_primitive()


def _disconnect(mgr: manager_mod.EndpointManager,
                args: argparse.Namespace) -> Any:
    endpoint = mgr.disconnect(args.port_id)
    _note_guest(mgr, endpoint.port_id)
    return endpoint.to_primitive()


def _link(mgr: manager_mod.EndpointManager,
          args: argparse.Namespace) -> Any:
    mgr.set_link_state(args.port_id, args.state)
    record = mgr.ledger.get_port(args.port_id)
    if record is None:
        # NOTE(vpd): released by another process in between.
        raise exception.PortNotFound(port_id=args.port_id)
    _note_guest(mgr, record.port.port_id)
    return _record(record, mgr.ledger.guest_links(
        [record.port.port_id]).get(record.port.port_id))


def _capabilities(mgr: manager_mod.EndpointManager,
                  args: argparse.Namespace) -> Any:
    return mgr.host_capabilities()


def _reconcile(mgr: manager_mod.EndpointManager,
               args: argparse.Namespace) -> Any:
    return mgr.reconcile()


def _watch(mgr: manager_mod.EndpointManager,
           args: argparse.Namespace) -> Any:
    # NOTE(vpd): imported here: only this command needs the watcher.
    from vif_plug_dyn.runtime import guests as guests_mod
    from vif_plug_dyn.runtime import watcher as watcher_mod
    watcher = watcher_mod.Watcher(
        mgr, settle=args.settle / 1000.0,
        burst_settle=args.burst_settle / 1000.0,
        max_hold=args.max_hold / 1000.0)
    watcher.open()
    # NOTE(vpd): guests that start (or come back) get the link state
    # their cables want, which the ledger kept while they were away.
    monitor = guests_mod.GuestMonitor(mgr, retry=args.guest_retry)

    def stop(signum: int, _frame: Any) -> None:
        LOG.info('Signal %d: the watcher stops', signum)
        watcher.stop()

    handlers = {sig: signal.signal(sig, stop)
                for sig in (signal.SIGTERM, signal.SIGINT)}
    LOG.info('Watching host interfaces%s',
             ' in namespace %s' % watcher.netns if watcher.netns else '')
    try:
        monitor.start()
        watcher.run()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        monitor.stop()
        watcher.close()
    total = watcher.total
    return {'events': total.events, 'resyncs': total.resyncs,
            'degraded': len(total.degraded),
            'restored': len(total.restored), 'failed': len(total.failed),
            'guests_started': len(monitor.started)}


# -- host interfaces ---------------------------------------------------------

def _iface_define(api: hostif_api.HostInterfaceAPI,
                  args: argparse.Namespace) -> Any:
    with open(args.file, encoding='utf-8') as handle:
        text = handle.read()
    iface = model.HostInterface.from_xml(text, source=args.file)
    api.define(iface, replace=args.replace)
    return {'defined': iface.name}


def _iface_undefine(api: hostif_api.HostInterfaceAPI,
                    args: argparse.Namespace) -> Any:
    return api.undefine(args.name)


def _iface_start(api: hostif_api.HostInterfaceAPI,
                 args: argparse.Namespace) -> Any:
    return api.start(args.name)


def _iface_stop(api: hostif_api.HostInterfaceAPI,
                args: argparse.Namespace) -> Any:
    return api.stop(args.name)


def _iface_list(api: hostif_api.HostInterfaceAPI,
                args: argparse.Namespace) -> Any:
    return api.list()


def _iface_dumpxml(api: hostif_api.HostInterfaceAPI,
                   args: argparse.Namespace) -> Any:
    return api.dump_xml(args.name, live=args.live)


def _iface_begin(api: hostif_api.HostInterfaceAPI,
                 args: argparse.Namespace) -> Any:
    return api.change_begin(timeout=args.timeout)


def _iface_status(api: hostif_api.HostInterfaceAPI,
                  args: argparse.Namespace) -> Any:
    # NOTE(vpd): like every command, first roll back a transaction whose
    # deadline has passed.
    api.recover()
    return {'transaction': api.transaction()}


def _iface_commit(api: hostif_api.HostInterfaceAPI,
                  args: argparse.Namespace) -> Any:
    return api.change_commit()


def _iface_rollback(api: hostif_api.HostInterfaceAPI,
                    args: argparse.Namespace) -> Any:
    report = api.change_rollback()
    if not report['restored']:
        # NOTE(vpd): the transaction is closed, but the operator must
        # know the host is not exactly as it was.
        sys.stderr.write('warning: %s\n' % '; '.join(
            report['errors'] + report['unrestorable'] +
            report['differences']))
    return report


def _iface_apply(api: hostif_api.HostInterfaceAPI,
                 args: argparse.Namespace) -> Any:
    with open(args.file, 'rb') as handle:
        # NOTE(vpd): one byte more than a document may have, so that an
        # oversized file is refused by its size, not read whole.
        text = handle.read(hostif_document.MAX_DOCUMENT + 1)
    return api.apply(text, dry_run=args.dry_run, source=args.file)


def _iface_diff(api: hostif_api.HostInterfaceAPI,
                args: argparse.Namespace) -> Any:
    return api.diff(args.name)


def _iface_recover(api: hostif_api.HostInterfaceAPI,
                   args: argparse.Namespace) -> Any:
    return {'recovered': api.recover()}


def _add_iface_parser(sub: Any) -> None:
    iface = sub.add_parser('iface', help='host interfaces (ethernet, '
                                         'bridge, bond, vlan)')
    iface_sub = iface.add_subparsers(dest='action', required=True)

    def add(name: str, func: IfaceHandler, help_: str,
            with_name: bool = True) -> argparse.ArgumentParser:
        parser = iface_sub.add_parser(name, help=help_)
        if with_name:
            parser.add_argument('name', help='interface name')
        parser.set_defaults(func=func, target='iface')
        return parser

    define = add('define', _iface_define, 'define from an <interface> XML '
                 'file', with_name=False)
    define.add_argument('file')
    define.add_argument('--replace', action='store_true',
                        help='replace an existing definition')
    add('undefine', _iface_undefine, 'remove a definition (live devices '
        'are not stopped; adopted ones are given back)')
    add('start', _iface_start, 'bring a defined interface up on the host')
    add('stop', _iface_stop, 'take a defined interface down')
    add('list', _iface_list, 'defined interfaces and their state',
        with_name=False)
    dump = add('dumpxml', _iface_dumpxml, 'print a definition, or with '
               '--live the live state, as XML')
    dump.add_argument('--live', action='store_true',
                      help='read the live device instead')
    begin = add('change-begin', _iface_begin, 'snapshot the host '
                'interfaces (start a transaction)', with_name=False)
    begin.add_argument('--timeout', type=float, metavar='SECONDS',
                       help='roll back by itself unless change-commit '
                            'comes within SECONDS (the safe way to change '
                            'a remote host)')
    add('change-status', _iface_status, 'the open transaction and its '
        'deadline', with_name=False)
    add('change-commit', _iface_commit, 'keep the changes since '
        'change-begin', with_name=False)
    add('change-rollback', _iface_rollback, 'put back the host '
        'interfaces as they were at change-begin', with_name=False)
    add('recover', _iface_recover, 'undo a start or stop that died half '
        'way', with_name=False)
    apply = add('apply', _iface_apply, 'define and start every interface '
                'of a document (XML <interfaces>, YAML or JSON) in one go, '
                'all or nothing', with_name=False)
    apply.add_argument('file')
    apply.add_argument('--dry-run', action='store_true',
                       help='print what would be created, changed and '
                            'removed (devices, fields, files); change '
                            'nothing')
    add('diff', _iface_diff, 'what differs between a definition, the live '
        'host and the persisted files')


def _add_port_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--port-id', required=True, help='port UUID')
    parser.add_argument('--mac', required=True, help='guest MAC address')
    parser.add_argument('--network', required=True, help='network name')
    parser.add_argument('--mtu', type=int)
    parser.add_argument('--vlan', type=int)
    parser.add_argument('--vm-uuid')
    parser.add_argument('--types', default=None,
                        help='accepted endpoint types, most preferred '
                             'first (default: %s; ethernet with '
                             '--hypervisor-tap)' % ','.join(_DEFAULT_TYPES))
    parser.add_argument('--option', action='append', default=[],
                        metavar='KEY=VALUE', help='a driver option')
    parser.add_argument('--tap', help='the name of the port\'s tap, when '
                                      'its consumer chose it')
    parser.add_argument('--hypervisor-tap', action='store_true',
                        help='the hypervisor makes and deletes the tap '
                             '(nova\'s tap VIF type): the library borrows '
                             'and cables it, never deletes it; the tap is '
                             'named like nova\'s (tap + 11 characters of '
                             'the port id) unless --tap says otherwise '
                             '(option tap_maker=hypervisor)')


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``vif-plug-dyn``."""
    parser = argparse.ArgumentParser(
        prog='vif-plug-dyn',
        description='Provision VM NICs once; plug them into host networks '
                    'at run time.')
    parser.add_argument('--config-file', action='append', default=[],
                        help='oslo.config file (repeatable)')
    parser.add_argument('--state-path', help='override [vif_plug_dyn] '
                                             'state_path')
    parser.add_argument('--network-dir', help='override [vif_plug_dyn] '
                                              'network_dir')
    parser.add_argument('--interface-dir', help='override [vif_plug_dyn] '
                                                'interface_dir')
    parser.add_argument('--json', action='store_true',
                        help='print one JSON document')
    parser.add_argument('--verbose', action='store_true',
                        help='log what is done (on standard error)')
    parser.add_argument('--debug', action='store_true')
    # NOTE(vpd): --host (vif_plug_dyn.agent.cli) runs the endpoint and
    # cable commands on a host's agent through the message bus.
    from vif_plug_dyn.agent import cli as agent_cli
    agent_cli.add_arguments(parser)
    sub = parser.add_subparsers(dest='command', required=True)

    net = sub.add_parser('network', help='named host networks')
    net_sub = net.add_subparsers(dest='action', required=True)
    net_sub.add_parser('list').set_defaults(func=_network_list)
    show = net_sub.add_parser('show', help='print a definition as XML')
    show.add_argument('name')
    show.set_defaults(func=_network_show)
    define = net_sub.add_parser('define', help='define from an XML file')
    define.add_argument('file')
    define.add_argument('--replace', action='store_true')
    define.set_defaults(func=_network_define)
    undefine = net_sub.add_parser('undefine')
    undefine.add_argument('name')
    undefine.set_defaults(func=_network_undefine)

    ep = sub.add_parser('endpoint', help='endpoints of ports')
    ep_sub = ep.add_subparsers(dest='action', required=True)
    request = ep_sub.add_parser('request', help='get an endpoint for a port')
    _add_port_args(request)
    request.add_argument('--unplugged', action='store_true',
                         help='build it with the cable out')
    request.set_defaults(func=_request)
    release = ep_sub.add_parser('release')
    release.add_argument('port_id')
    release.set_defaults(func=_release)
    ep_show = ep_sub.add_parser('show')
    ep_show.add_argument('port_id')
    ep_show.set_defaults(func=_endpoint_show)
    ep_list = ep_sub.add_parser('list')
    ep_list.add_argument('--network')
    ep_list.set_defaults(func=_endpoint_list)

    plug = sub.add_parser('plug', help='agent style: endpoint + cable in')
    _add_port_args(plug)
    plug.set_defaults(func=_plug)
    unplug = sub.add_parser('unplug', help='agent style: remove endpoint')
    unplug.add_argument('port_id')
    unplug.set_defaults(func=_release)
    conn = sub.add_parser('connect', help='plug (or move) a cable')
    conn.add_argument('port_id')
    conn.add_argument('network', nargs='?')
    conn.set_defaults(func=_connect)
    disc = sub.add_parser('disconnect', help='pull a cable out')
    disc.add_argument('port_id')
    disc.set_defaults(func=_disconnect)
    link = sub.add_parser('link', help='force the guest link up or down, '
                                       'or let it follow the cable')
    link.add_argument('port_id')
    link.add_argument('state', choices=['up', 'down', 'follow'])
    link.set_defaults(func=_link)
    sub.add_parser('capabilities', help='what this host offers'
                   ).set_defaults(func=_capabilities)
    sub.add_parser('reconcile', help='repair after a crash'
                   ).set_defaults(func=_reconcile)
    watch = sub.add_parser(
        'watch', help='heal endpoints as host interfaces come and go, '
                      'until SIGTERM or SIGINT (then print a summary)')
    watch.add_argument('--settle', type=float, default=2.0,
                       metavar='MS', help='quiet time that ends a burst of '
                                          'events (default: %(default)s)')
    watch.add_argument('--burst-settle', type=float, default=25.0,
                       metavar='MS', help='quiet time that ends a burst '
                                          'once several watched devices '
                                          'changed (default: %(default)s)')
    watch.add_argument('--max-hold', type=float, default=250.0,
                       metavar='MS', help='longest a burst is held back '
                                          '(default: %(default)s)')
    watch.add_argument('--guest-retry', type=float, default=5.0,
                       metavar='S', help='seconds between attempts to '
                                         'reach the hypervisor for guest '
                                         'events (default: %(default)s)')
    watch.set_defaults(func=_watch)
    _add_iface_parser(sub)
    policy_cmd.add_parser(sub)
    return parser


def _print(result: Any, as_json: bool) -> None:
    if as_json:
        json.dump(result, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write('\n')
    elif isinstance(result, str):
        sys.stdout.write(result if result.endswith('\n') else result + '\n')
    elif isinstance(result, list):
        for item in result:
            sys.stdout.write(' '.join('%s=%s' % (k, v) for k, v in
                                      sorted(item.items())) + '\n')
    else:
        sys.stdout.write(json.dumps(result, indent=2, sort_keys=True) + '\n')


def setup_conf(args: argparse.Namespace) -> cfg.ConfigOpts:
    """Build the configuration from the common command-line arguments."""
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    logging.register_options(conf)
    conf([], project='vif_plug_dyn', default_config_files=args.config_file)
    if args.state_path:
        conf.set_override('state_path', args.state_path, group=opts.GROUP)
    if args.network_dir:
        conf.set_override('network_dir', args.network_dir, group=opts.GROUP)
    if args.interface_dir:
        conf.set_override('interface_dir', args.interface_dir,
                          group=opts.GROUP)
    conf.set_override('debug', args.debug)
    # NOTE(vpd): standard output carries the command's result (JSON for
    # machines); logs go to standard error, and only when asked for.
    conf.set_override('use_stderr', True)
    logging.setup(conf, 'vif_plug_dyn')
    # NOTE(vpd): a long-running watcher logs what it heals; the one-shot
    # commands stay quiet unless asked.
    if not (args.verbose or args.debug or args.command == 'watch'):
        std_logging.getLogger('vif_plug_dyn').setLevel(std_logging.WARNING)
    return conf


def main(argv: list[str] | None = None) -> int:
    """Run ``vif-plug-dyn``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        conf = setup_conf(args)
        if args.host:
            from vif_plug_dyn.agent import cli as agent_cli
            _print(agent_cli.run(conf, args), args.json)
        elif getattr(args, 'target', None) == 'iface':
            _print(_run_iface(conf, args), args.json)
        elif getattr(args, 'target', None) == 'policy':
            _print(policy_cmd.run(conf, args), args.json)
        else:
            mgr = vif_plug_dyn.initialize(conf)
            _print(args.func(mgr, args), args.json)
    except (exception.VifPlugDynException, OSError) as exc:
        sys.stderr.write('error: %s\n' % exc)
        return EXIT_ERROR
    return 0


def _run_iface(conf: cfg.ConfigOpts, args: argparse.Namespace) -> Any:
    api = None
    try:
        api = hostif_api.HostInterfaceAPI(conf)
        return args.func(api, args)
    finally:
        if api is not None:
            # NOTE(vpd): what happened by itself since the last command
            # (a timed transaction rolled back) is reported once, on
            # standard error, whatever this command did.
            for notice in api.take_notices():
                sys.stderr.write('warning: %s\n' % notice.get('message'))
        # NOTE(vpd): wait for the privileged daemon this command started
        # to exit (it holds the network namespace open).
        privsep.stop()


if __name__ == '__main__':
    sys.exit(main())
