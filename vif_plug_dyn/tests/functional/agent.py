"""A stand-in network agent for the fault tests, run as its own process.

``python -m vif_plug_dyn.tests.functional.agent --netns NS --state DIR
--networks DIR --plan FILE`` builds a manager on that ledger (with its own
privileged daemon started inside NS), prints ``DAEMON <pid>``, then plugs
the ports listed in the plan file (JSON: ``[[network, port_id, mac],
...]``) in batches of ``--batch`` through
:meth:`~vif_plug_dyn.manager.EndpointManager.request_endpoints`, printing
``DONE <n>`` after each batch, and ``ALL`` at the end. The test kills it
with SIGKILL part way.
"""

import argparse
import json
import os
import sys

from oslo_config import cfg

from vif_plug_dyn import manager as manager_mod
from vif_plug_dyn import opts
from vif_plug_dyn import ports
from vif_plug_dyn.privsep import linux_net


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('--netns', required=True)
    parser.add_argument('--state', required=True)
    parser.add_argument('--networks', required=True)
    parser.add_argument('--plan', required=True)
    parser.add_argument('--batch', type=int, default=25)
    args = parser.parse_args(argv)
    opts.register_opts(cfg.CONF)
    cfg.CONF([], project='vif_plug_dyn_agent', default_config_files=[])
    cfg.CONF.set_override(
        'helper_command', os.path.join(os.path.dirname(sys.executable),
                                       'privsep-helper'),
        group=opts.PRIVSEP_GROUP)
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override('state_path', args.state, opts.GROUP)
    conf.set_override('network_dir', args.networks, opts.GROUP)
    conf.set_override('netns', args.netns, opts.GROUP)
    manager = manager_mod.EndpointManager(conf)
    with open(args.plan, encoding='utf-8') as handle:
        plan = [ports.Port(port_id=port_id, mac=mac, network=network)
                for network, port_id, mac in json.load(handle)]
    print('DAEMON %d' % linux_net.daemon_info()['pid'], flush=True)
    for at in range(0, len(plan), args.batch):
        manager.request_endpoints(plan[at:at + args.batch], ['ethernet'])
        print('DONE %d' % min(at + args.batch, len(plan)), flush=True)
    print('ALL', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
