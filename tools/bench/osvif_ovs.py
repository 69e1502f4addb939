#!/usr/bin/env python3
"""Benchmark helper: os-vif's Open vSwitch plugin plugging and unplugging
COUNT ports, one VIF at a time, the way nova-compute calls it.

Run *inside* the namespace whose Open vSwitch serves ``--db`` (``ip netns
exec NS python tools/bench/osvif_ovs.py ...``): os-vif's own privileged
daemon (``vif_plug_ovs.privsep.vif_plug``) is started by this process and
so lands in the same namespace, where it creates and deletes the taps.

os-vif is configured exactly as an operator would: a configuration file
with ``[os_vif_ovs] ovsdb_connection = unix:SOCKET`` (the private
ovsdb-server, native OVSDB interface) and ``[vif_plug_ovs_privileged]
helper_command`` (the ``privsep-helper`` beside this interpreter; already
root, no sudo). Each VIF is a ``VIFOpenVSwitch`` whose port profile asks
for the ``netdev`` datapath (userspace Open vSwitch; this host has no
kernel datapath), ``create_port`` (os-vif adds the OVS port itself) and
``create_tap`` (os-vif makes the tap, MAC and MTU set).

Prints one JSON object: ``{"count", "plug_s", "unplug_s", "ports_after_plug",
"ports_after_unplug", "taps_after_unplug"}``.
"""

import argparse
import json
import os
import sys
import tempfile
import time
import uuid

from oslo_config import cfg

from vif_plug_dyn import ovsdb


def _config_file(db_sock: str) -> str:
    helper = os.path.join(os.path.dirname(sys.executable), 'privsep-helper')
    text = ('[os_vif_ovs]\n'
            'ovsdb_connection = unix:%s\n'
            'ovs_vsctl_timeout = 600\n'
            '[vif_plug_ovs_privileged]\n'
            'helper_command = %s\n' % (db_sock, helper))
    handle = tempfile.NamedTemporaryFile('w', suffix='.conf', delete=False)
    with handle:
        handle.write(text)
    return handle.name


def _tap_count() -> int:
    # NOTE(vpd): unprivileged netlink dump through pyroute2 (what os-vif
    # itself uses): this process runs inside the namespace.
    from pyroute2 import IPRoute
    with IPRoute() as ipr:
        return sum(1 for link in ipr.get_links()
                   if (link.get_attr('IFLA_IFNAME') or '').startswith('tap')
                   and link.get_attr('IFLA_LINKINFO') is not None and
                   link.get_attr('IFLA_LINKINFO').get_attr(
                       'IFLA_INFO_KIND') == 'tun')


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--db', required=True, help='ovsdb-server socket')
    parser.add_argument('--bridge', required=True)
    parser.add_argument('--count', type=int, required=True)
    parser.add_argument('--mtu', type=int, default=1500)
    args = parser.parse_args(argv)

    conf_file = _config_file(args.db)
    try:
        cfg.CONF(['--config-file', conf_file], project='osvif_bench')
        import os_vif
        from os_vif import objects as osv_objects
        os_vif.initialize()
        osv_objects.register_all()
        network = osv_objects.network.Network(
            id=str(uuid.uuid4()), bridge=args.bridge, mtu=args.mtu)
        info = osv_objects.instance_info.InstanceInfo(
            uuid=str(uuid.uuid4()), name='bench', project_id='bench')
        vifs = []
        for i in range(args.count + 1):
            port_id = str(uuid.uuid4())
            profile = osv_objects.vif.VIFPortProfileOpenVSwitch(
                interface_id=port_id, datapath_type='netdev',
                create_port=True, create_tap=True)
            vifs.append(osv_objects.vif.VIFOpenVSwitch(
                id=port_id, address='52:54:01:%02x:%02x:%02x' % (
                    i >> 16 & 255, i >> 8 & 255, i & 255),
                network=network, plugin='ovs', port_profile=profile,
                vif_name=('tap' + port_id)[:14], bridge_name=args.bridge,
                has_traffic_filtering=True, preserve_on_delete=False,
                active=False))
        # NOTE(vpd): one VIF plugged and unplugged untimed first, so that
        # os-vif's privileged daemon and OVSDB connection are up before
        # the clock starts, as the library's are.
        warm = vifs.pop()
        os_vif.plug(warm, info)
        os_vif.unplug(warm, info)
        start = time.perf_counter()
        for vif in vifs:
            os_vif.plug(vif, info)
        plug_s = time.perf_counter() - start
        with ovsdb.OvsdbClient(args.db, timeout=600) as client:
            after_plug = len(client.list_ports(args.bridge))
            taps_after_plug = _tap_count()
            start = time.perf_counter()
            for vif in vifs:
                os_vif.unplug(vif, info)
            unplug_s = time.perf_counter() - start
            after_unplug = len(client.list_ports(args.bridge))
        print(json.dumps({'count': args.count, 'plug_s': plug_s,
                          'unplug_s': unplug_s,
                          'ports_after_plug': after_plug,
                          'taps_after_plug': taps_after_plug,
                          'ports_after_unplug': after_unplug,
                          'taps_after_unplug': _tap_count()}))
    finally:
        os.unlink(conf_file)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
