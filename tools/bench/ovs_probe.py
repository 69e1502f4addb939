#!/usr/bin/env python3
"""Measure bulk OVS port add/delete: vif_plug_dyn.ovsdb vs one ovs-vsctl.

Not a test.  Needs root and openvswitch-switch.  In a private network
namespace it starts a private ovsdb-server + ovs-vswitchd (netdev
datapath), pre-creates N taps with one ``ip -batch``, and then times:

(a) the OVSDB client: all N ports in one transaction (``add_ports``), then
    deleted with one ``Bridge.ports`` mutation (``del_ports``);
(b) one ``ovs-vsctl`` call chaining N ``-- add-port``, then one chaining
    N ``-- del-port``;
(c) the same with ``ovs-vsctl --no-wait`` (its own cost, without waiting
    for ovs-vswitchd).

For the client, "commit" is until ovsdb-server answered; "commit+applied"
is a separate add/delete with ``wait=`` (``next_cfg`` bumped in the same
transaction), until ovs-vswitchd reported the change in ``cur_cfg``.
``ovs-vsctl`` without ``--no-wait`` always waits for that, so compare it
with "commit+applied", and ``ovs-vsctl --no-wait`` with "commit".  Ports
carry the same three external_ids in both cases.  Everything is removed
at the end (the namespace takes the taps with it).

Usage (from the repository root)::

    sudo python3 tools/bench/ovs_probe.py [--ports 1000] [--rounds 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from vif_plug_dyn import ovsdb  # noqa: E402
from vif_plug_dyn.tests.functional.harness import ovs as ovs_harness  # noqa
from vif_plug_dyn.tests.functional.harness._netns import NetNamespace  # noqa

BRIDGE = 'br-bench'


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _vsctl_timed(ovs: ovs_harness.OpenVSwitch, argv: list[str]) -> float:
    start = time.perf_counter()
    ovs.vsctl(*argv, timeout=960)
    return time.perf_counter() - start


def make_taps(netns: str, names: list[str]) -> float:
    """Create taps (up) with one ``ip -batch``; return the seconds."""
    lines = []
    for name in names:
        lines.append('tuntap add %s mode tap' % name)
        lines.append('link set %s up' % name)
    start = time.perf_counter()
    subprocess.run(['ip', '-n', netns, '-batch', '-'],
                   input='\n'.join(lines) + '\n', text=True, check=True)
    return time.perf_counter() - start


def port_specs(names: list[str]) -> list[ovsdb.PortSpec]:
    """Ports with the three external_ids os-vif and this library set."""
    return [(name, '', {'iface-id': 'port-%d' % i,
                        'attached-mac': '02:00:00:%02x:%02x:%02x'
                        % (i >> 16 & 255, i >> 8 & 255, i & 255),
                        'vm-uuid': 'vm-%d' % i})
            for i, name in enumerate(names)]


def vsctl_add_args(bridge: str, specs: list[ovsdb.PortSpec]) -> list[str]:
    """One ``ovs-vsctl`` command line adding every port of ``specs``
    (chained ``add-port`` + ``set Interface external_ids``)."""
    args: list[str] = []
    for name, _type, ext in specs:
        args += ['--', 'add-port', bridge, name,
                 '--', 'set', 'Interface', name]
        args += ['external_ids:%s=%s' % kv for kv in ext.items()]
    return args


def vsctl_del_args(bridge: str, names: list[str]) -> list[str]:
    """One ``ovs-vsctl`` command line deleting every port of ``names``."""
    args: list[str] = []
    for name in names:
        args += ['--', 'del-port', bridge, name]
    return args


def _check_count(client: ovsdb.OvsdbClient, expected: int) -> None:
    got = len(client.list_ports(BRIDGE))
    if got != expected:
        raise SystemExit('expected %d ports on %s, found %d'
                         % (expected, BRIDGE, got))


def bench(n_ports: int, rounds: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}

    def record(key: str, value: float) -> None:
        results.setdefault(key, []).append(value)
        print('  %-34s %8.3f s' % (key, value), flush=True)

    names = ['vpdb%d' % i for i in range(n_ports)]
    with NetNamespace('vpdbench') as ns, \
            ovs_harness.OpenVSwitch(ns.name, timeout=60) as ovs, \
            ovsdb.OvsdbClient(ovs.db_sock, timeout=900) as client:
        client.ensure_bridge(BRIDGE, datapath_type='netdev')
        client.wait_for_vswitchd()
        print('taps: %d created in %.3f s (ip -batch)'
              % (n_ports, make_taps(ns.name, names)), flush=True)
        specs = port_specs(names)
        # NOTE: same work as the client: each port with its three
        # external_ids, the way os-vif calls ovs-vsctl.
        add_args = vsctl_add_args(BRIDGE, specs)

        for rnd in range(1, rounds + 1):
            print('round %d/%d, %d ports' % (rnd, rounds, n_ports))
            # (a) this client
            record('client add: commit', _timed(
                lambda: client.add_ports(BRIDGE, specs)))
            client.wait_for_vswitchd(timeout=900)
            _check_count(client, n_ports)
            record('client list_ports', _timed(
                lambda: client.list_ports(BRIDGE)))
            record('client del: commit', _timed(
                lambda: client.del_ports(BRIDGE, names)))
            client.wait_for_vswitchd(timeout=900)
            _check_count(client, 0)
            # The same, waiting for ovs-vswitchd like ovs-vsctl does
            # (next_cfg bumped in the same transaction).
            record('client add: commit+applied', _timed(
                lambda: client.add_ports(BRIDGE, specs, wait=900)))
            _check_count(client, n_ports)
            record('client del: commit+applied', _timed(
                lambda: client.del_ports(BRIDGE, names, wait=900)))
            _check_count(client, 0)

            # (b) one ovs-vsctl call, N chained commands (waits for
            # ovs-vswitchd like any ovs-vsctl without --no-wait).
            argv: list[str] = ['--timeout=900'] + add_args
            record('ovs-vsctl add (waits)',
                   _vsctl_timed(ovs, argv))
            _check_count(client, n_ports)
            argv = ['--timeout=900'] + vsctl_del_args(BRIDGE, names)
            record('ovs-vsctl del (waits)',
                   _vsctl_timed(ovs, argv))
            _check_count(client, 0)

            # (c) the same with --no-wait: ovs-vsctl's own cost, to compare
            # with the client's commit time; ovs-vswitchd catches up
            # before the next step.
            argv = ['--no-wait', '--timeout=900'] + add_args
            record('ovs-vsctl --no-wait add',
                   _vsctl_timed(ovs, argv))
            client.wait_for_vswitchd(timeout=900)
            _check_count(client, n_ports)
            argv = ['--no-wait', '--timeout=900'] + vsctl_del_args(BRIDGE,
                                                                    names)
            record('ovs-vsctl --no-wait del',
                   _vsctl_timed(ovs, argv))
            client.wait_for_vswitchd(timeout=900)
            _check_count(client, 0)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ports', type=int, default=1000)
    parser.add_argument('--rounds', type=int, default=1)
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error('needs root')
    missing = ovs_harness.missing_binaries()
    if missing:
        parser.error('Open vSwitch not installed: %s' % ', '.join(missing))

    res = bench(args.ports, args.rounds)
    best = {k: min(v) for k, v in res.items()}
    print('\nbest of %d round(s), %d ports, netdev datapath:'
          % (args.rounds, args.ports))
    for key, value in best.items():
        print('  %-34s %8.3f s' % (key, value))

    def ratio(a: str, b: str) -> None:
        print('  %-52s x%.1f' % ('%s / %s' % (a, b), best[a] / best[b]))
    print('ratios (how many times slower):')
    ratio('ovs-vsctl add (waits)', 'client add: commit+applied')
    ratio('ovs-vsctl del (waits)', 'client del: commit+applied')
    ratio('ovs-vsctl --no-wait add', 'client add: commit')
    ratio('ovs-vsctl --no-wait del', 'client del: commit')
    return 0


if __name__ == '__main__':
    sys.exit(main())
