"""Benchmark: libvirt <interface> elements rendered per second.

Renders a mix of every endpoint type (bridge with an Open vSwitch port,
direct with 802.1Qbg and 802.1Qbh ports, hostdev with a VLAN, ethernet,
network with a port group; half of them with guest options) from endpoint
to XML text, the work done for each NIC of a domain being defined.

Usage: python tools/bench/xml_render.py [--count N] [--repeat R] [--parse]

``--parse`` also times parsing the text back. Prints the best of R runs.
Not a test: the number depends on the machine (target: >= 20,000/s).
"""

import argparse
import sys
import time

from vif_plug_dyn import endpoints as ep
from vif_plug_dyn.virt import base
from vif_plug_dyn.virt.libvirt import config
from vif_plug_dyn.virt.libvirt import vif

PORT = '0b9e5cbd-8a7a-4cf0-a3ba-5e2a3e5d6f01'
UUID = '7e2a3f0c-9d7b-4f43-8a5e-6a4d1c2b3e4f'


def mix(count: int) -> list[tuple[ep.Endpoint, base.NicOptions]]:
    """``count`` endpoints cycling through every type."""
    out: list[tuple[ep.Endpoint, base.NicOptions]] = []
    for i in range(count):
        mac = '52:54:00:%02x:%02x:%02x' % (i >> 16 & 0xff, i >> 8 & 0xff,
                                           i & 0xff)
        common = {'port_id': PORT, 'network': 'red', 'mac': mac}
        kind = i % 6
        endpoint: ep.Endpoint
        if kind == 0:
            endpoint = ep.BridgeEndpoint(
                bridge='br-int', tap='tap%d' % i, mtu=1450, queues=4,
                virtualport=ep.VirtualPort(type='openvswitch',
                                           interface_id=UUID), **common)
        elif kind == 1:
            endpoint = ep.DirectEndpoint(
                source_dev='eth0', mode='vepa', virtualport=ep.VirtualPort(
                    type='802.1Qbg', manager_id=11, type_id=1193047,
                    type_id_version=2, instance_id=UUID), **common)
        elif kind == 2:
            endpoint = ep.DirectEndpoint(
                source_dev='eth1', mode='private', virtualport=ep.VirtualPort(
                    type='802.1Qbh', profile_id='finance'), **common)
        elif kind == 3:
            endpoint = ep.HostdevEndpoint(pci_address='0000:03:10.%d' % (
                i % 8), vlan=42, **common)
        elif kind == 4:
            endpoint = ep.EthernetEndpoint(tap='vpd%d' % i, mtu=1500,
                                           **common)
        else:
            endpoint = ep.NetworkEndpoint(source_network='default',
                                          portgroup='web', **common)
        if i % 2 and kind != 3:
            options = base.NicOptions(
                link_up=False, alias='ua-n%d' % i,
                guest_address='0000:00:%02x.0' % (i % 32))
        else:
            options = base.NicOptions()
        out.append((endpoint, options))
    return out


def measure(count: int, repeat: int, parse: bool = False
            ) -> dict[str, float]:
    """Render ``count`` interfaces ``repeat`` times (and parse them back
    when ``parse``); return the best rates in interfaces per second."""
    work = mix(count)
    converter = vif.EndpointToInterface()
    best = float('inf')
    texts: list[str] = []
    for _ in range(repeat):
        start = time.perf_counter()
        texts = [converter.build(e, o).to_xml() for e, o in work]
        best = min(best, time.perf_counter() - start)
    result = {'count': count, 'render_s': best, 'render_per_s': count / best}
    if parse:
        best = float('inf')
        for _ in range(repeat):
            start = time.perf_counter()
            for text in texts:
                config.InterfaceConfig.parse_str(text)
            best = min(best, time.perf_counter() - start)
        result.update(parse_s=best, parse_per_s=count / best)
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=20000)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--parse', action='store_true')
    args = parser.parse_args(argv)
    result = measure(args.count, args.repeat, args.parse)
    print('rendered %d interfaces in %.3f s: %.0f interfaces/s' % (
        args.count, result['render_s'], result['render_per_s']))
    if args.parse:
        print('parsed %d interfaces in %.3f s: %.0f interfaces/s' % (
            args.count, result['parse_s'], result['parse_per_s']))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
