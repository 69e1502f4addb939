#!/usr/bin/env python3
"""Benchmark helper: the memory of an agent holding COUNT endpoints.

A fresh process plays the network agent: it loads the library through
its public API (:func:`vif_plug_dyn.initialize`), requests COUNT
``ethernet`` endpoints on bridge networks with
:func:`vif_plug_dyn.request_endpoints` (in batches of ``--batch``, each
on the next of ``--bridges``: a Linux bridge holds at most 1023 ports), then
reads its own resident set size (``VmRSS``, and the peak ``VmHWM``) and
that of its privileged daemon (started by this process inside
``--netns``). It releases everything before it exits.

Prints one JSON object: ``{"count", "agent_rss_kb", "agent_hwm_kb",
"daemon_rss_kb", "daemon_hwm_kb", "baseline_rss_kb", "plug_s"}``;
``baseline_rss_kb`` is the agent's RSS after ``initialize()`` and one
endpoint, before the COUNT.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import vif_plug_dyn  # noqa: E402
from vif_plug_dyn.privsep import linux_net  # noqa: E402


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--netns', required=True)
    parser.add_argument('--bridges', required=True,
                        help='existing bridges in the namespace, comma '
                             'separated; batches go to each in turn')
    parser.add_argument('--count', type=int, required=True)
    parser.add_argument('--batch', type=int, default=1000)
    args = parser.parse_args(argv)
    bridges = args.bridges.split(',')
    if args.count > len(bridges) * min(args.batch, 1000):
        parser.error('%d ports need more bridges (1000 per bridge)'
                     % args.count)
    common.setup_process_conf()
    names = ['mem-%d' % n for n in range(len(bridges))]
    conf = common.make_conf(args.netns, {
        name: "<network type='bridge'><name>%s</name><bridge name='%s' "
              "managed='no'/></network>" % (name, bridge)
        for name, bridge in zip(names, bridges, strict=True)})
    vif_plug_dyn.initialize(conf)
    manager = vif_plug_dyn.get_manager()
    try:
        warm = common.make_ports(1, names[-1], salt=255)
        vif_plug_dyn.request_endpoints(warm, ['ethernet'])
        baseline = common.rss_kb()['VmRSS']
        batches = [common.make_ports(min(args.batch, args.count - at),
                                     names[n % len(names)], salt=n)
                   for n, at in enumerate(range(0, args.count, args.batch))]
        made = [port for batch in batches for port in batch]
        start = time.perf_counter()
        for batch in batches:
            vif_plug_dyn.request_endpoints(batch, ['ethernet'])
        plug_s = time.perf_counter() - start
        assert len(manager.ledger.port_ids()) == args.count + 1
        agent = common.rss_kb()
        daemon = common.rss_kb(int(linux_net.daemon_info()['pid']))
        vif_plug_dyn.release_endpoints([p.port_id for p in warm + made])
    finally:
        manager.close()
        from vif_plug_dyn import privsep
        privsep.stop()
    print(json.dumps({'count': args.count, 'agent_rss_kb': agent['VmRSS'],
                      'agent_hwm_kb': agent['VmHWM'],
                      'daemon_rss_kb': daemon['VmRSS'],
                      'daemon_hwm_kb': daemon['VmHWM'],
                      'baseline_rss_kb': baseline, 'plug_s': plug_s}))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
