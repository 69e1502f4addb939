#!/usr/bin/env python3
"""What the message bus costs: the agent over RabbitMQ against the same
work in-process.

Everything runs as root in private namespaces made here: a private
RabbitMQ in a "bus" namespace (the harness of the functional tests),
this process joins it as the controller; each host is a namespace of its
own with ``red`` a Linux bridge.

* **1000 ports, one agent**: ``request_endpoints`` of 1000 ports
  (ethernet endpoints: tap, MTU, MAC, on ``br-red``) and
  ``release_endpoints`` of them, (a) in-process on an
  :class:`~vif_plug_dyn.manager.EndpointManager` whose privileged daemon
  runs in the host's namespace, (b) through
  :class:`~vif_plug_dyn.rpc.AgentClient` to a ``vif-plug-dyn-agent``
  process serving another namespace the same way (its notifications on:
  1000 ``plugged`` and 1000 ``unplugged`` sent meanwhile). Each
  ``--rounds`` times, the median reported, and the bus's cost per port.
* **4 agents x 1000 ports**: one controller asks four agents (four
  namespaces, four processes, four privileged daemons) for 1000 ports
  each at the same time (:func:`~vif_plug_dyn.rpc.call_many`), then
  releases them: the wall time against one agent's.
* **RPC round trip**: ``--calls`` sequential ``port_status([])`` calls
  (the cheapest call: one ledger read of nothing), p50 and p99, against
  the same read in-process.

The machine's load average is recorded before and after.

Usage (root)::

    python tools/bench/agent_bus.py [--ports 1000] [--agents 4]
        [--rounds 3] [--calls 1000] [--out FILE.json]

Prints a Markdown table on standard output.
"""

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

from vif_plug_dyn import manager as manager_mod  # noqa: E402
from vif_plug_dyn import rpc  # noqa: E402
from vif_plug_dyn.tests.functional import bus as bus_mod  # noqa: E402
from vif_plug_dyn.tests.functional.harness import netns as netns_mod  # noqa

RED = ("<network type='bridge'><name>red</name>"
       "<bridge name='br-red'/></network>")
TYPES = ['ethernet']


def _warm(target: Any) -> None:
    """One port requested and released, untimed: the privileged daemon
    started (an agent starts its own on its first call), the bridge made,
    the ledger opened."""
    batch = common.make_ports(1, 'red', salt=999)
    target.request_endpoints(batch, TYPES)
    target.release_endpoints([batch[0].port_id])


def _inprocess(ns: str, count: int, rounds: int, calls: int
               ) -> dict[str, Any]:
    found: dict[str, Any] = {'plug': [], 'unplug': []}
    with common.daemon_in(ns):
        mgr = manager_mod.EndpointManager(common.make_conf(ns, {'red': RED}))
        try:
            _warm(mgr)
            for r in range(rounds):
                batch = common.make_ports(count, 'red', salt=r)
                common.settle(0.5)
                found['plug'].append(common.timed(
                    lambda b=batch: mgr.request_endpoints(b, TYPES)))
                assert len(mgr.ledger.list_ports()) == count
                common.settle(0.5)
                found['unplug'].append(common.timed(
                    lambda b=batch: mgr.release_endpoints(
                        [p.port_id for p in b])))
            samples = []
            for _ in range(calls):
                start = time.perf_counter()
                mgr.ledger.get_ports([])
                samples.append(time.perf_counter() - start)
            found['read'] = samples
        finally:
            mgr.close()
    return found


def _over_bus(client: rpc.AgentClient, count: int, rounds: int,
              calls: int) -> dict[str, Any]:
    found: dict[str, Any] = {'plug': [], 'unplug': []}
    _warm(client)
    for r in range(rounds):
        batch = common.make_ports(count, 'red', salt=100 + r)
        common.settle(0.5)
        found['plug'].append(common.timed(
            lambda b=batch: client.request_endpoints(b, TYPES,
                                                     timeout=600)))
        assert len(client.port_status()) == count
        common.settle(0.5)
        found['unplug'].append(common.timed(
            lambda b=batch: client.release_endpoints(
                [p.port_id for p in b], timeout=600)))
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        client.port_status([])
        samples.append(time.perf_counter() - start)
    found['rtt'] = samples
    return found


def _fleet(bus: bus_mod.Bus, agents: list[bus_mod.Agent], count: int
           ) -> dict[str, Any]:
    batches = {a.host: common.make_ports(count, 'red', salt=200 + i)
               for i, a in enumerate(agents)}
    clients = [a.client for a in agents]
    for client in clients[1:]:
        _warm(client)
    common.settle(1.0)
    start = time.perf_counter()
    made = rpc.call_many(clients, 'request_endpoints', kwargs_by_host={
        h: {'ports': b, 'accepted_types': TYPES} for h, b in
        batches.items()}, timeout=900)
    plug = time.perf_counter() - start
    for host, result in made.items():
        assert isinstance(result, list) and len(result) == count, (host,
                                                                   result)
    common.settle(1.0)
    start = time.perf_counter()
    gone = rpc.call_many(clients, 'release_endpoints', kwargs_by_host={
        h: {'port_ids': [p.port_id for p in b]} for h, b in
        batches.items()}, timeout=900)
    unplug = time.perf_counter() - start
    assert all(r is None for r in gone.values()), gone
    return {'agents': len(agents), 'plug': plug, 'unplug': unplug}


def measure(count: int, n_agents: int, rounds: int, calls: int
            ) -> dict[str, Any]:
    results: dict[str, Any] = {'machine': common.machine_facts(),
                               'ports': count, 'rounds': rounds,
                               'calls': calls,
                               'load_before': os.getloadavg()}
    common.setup_process_conf()
    base = tempfile.mkdtemp(prefix='vpd-bench-bus-')
    with common.namespace('inproc') as ns:
        results['inprocess'] = _inprocess(ns, count, rounds, calls)
    with contextlib.ExitStack() as stack:
        bus = stack.enter_context(bus_mod.Bus(base))
        hosts = [stack.enter_context(netns_mod.NetNamespace('bh%d' % i))
                 for i in range(n_agents)]
        agents = [bus_mod.Agent(bus, 'bench%d' % i, ns.name, base,
                                {'red': RED},
                                extra={'vif_plug_dyn_agent': {
                                    'watch': 'false'},
                                    'vif_plug_dyn': {'hypervisor': 'none'}})
                  for i, ns in enumerate(hosts)]
        try:
            for agent in agents:
                agent.start(timeout=180)
            results['bus'] = _over_bus(agents[0].client, count, rounds,
                                       calls)
            results['fleet'] = _fleet(bus, agents, count)
            results['notifications'] = 'on (messagingv2)'
        finally:
            for agent in agents:
                agent.stop()
    results['load_after'] = os.getloadavg()
    return results


def table(results: dict[str, Any]) -> str:
    med, pct = common.median, common.percentile
    count = results['ports']
    inp, bus, fleet = results['inprocess'], results['bus'], results['fleet']
    lines = [
        '| %d ports, ethernet on a bridge | in-process | one agent over '
        'RabbitMQ | bus cost per port |' % count,
        '|---|---|---|---|']
    for phase in ('plug', 'unplug'):
        a, b = med(inp[phase]), med(bus[phase])
        lines.append('| %s (median of %d) | %.2f s | %.2f s | %.2f ms |' % (
            phase, len(inp[phase]), a, b, (b - a) * 1000.0 / count))
    lines += [
        '',
        '| %d agents x %d ports, one controller | wall time | ports/s | '
        'one agent (median) |' % (fleet['agents'], count),
        '|---|---|---|---|']
    for phase in ('plug', 'unplug'):
        total = fleet['agents'] * count
        lines.append('| %s | %.2f s | %.0f | %.2f s |' % (
            phase, fleet[phase], total / fleet[phase], med(bus[phase])))
    rtt, read = bus['rtt'], inp['read']
    lines += [
        '',
        '| round trip (%d calls of port_status([])) | p50 | p99 |'
        % len(rtt), '|---|---|---|',
        '| over RabbitMQ | %.2f ms | %.2f ms |' % (
            med(rtt) * 1000.0, pct(rtt, 99) * 1000.0),
        '| in-process (the same ledger read) | %.3f ms | %.3f ms |' % (
            med(read) * 1000.0, pct(read, 99) * 1000.0),
        '',
        'Load average (1, 5, 15 min) before: %s; after: %s.' % (
            ', '.join('%.2f' % v for v in results['load_before']),
            ', '.join('%.2f' % v for v in results['load_after']))]
    return '\n'.join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ports', type=int, default=1000)
    parser.add_argument('--agents', type=int, default=4)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--calls', type=int, default=1000)
    parser.add_argument('--out', help='write the samples as JSON here')
    args = parser.parse_args()
    common.require_root('agent_bus')
    results = measure(args.ports, args.agents, args.rounds, args.calls)
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as handle:
            json.dump(results, handle, indent=1)
    print(table(results))
    return 0


if __name__ == '__main__':
    sys.exit(main())
