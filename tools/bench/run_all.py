#!/usr/bin/env python3
"""Run every benchmark in one go and write one report.

Everything runs as root inside private network namespaces made here
(``vpdt-bench-...``, always removed) with the real privileged daemon
started inside them; nothing in the root namespace is touched. In the
same run, for each network kind the kernel here supports:

``bridge`` (ports: a persistent tap with MTU, MAC, owner alias, on a bridge)
    plug: this library (:meth:`EndpointManager.request_endpoints`), the
    privileged helper alone (one :meth:`HostNetwork.apply`, no manager or
    ledger), one privileged call per operation (create tap, MTU, master,
    up: the classic agent pattern) and ``ip -batch``;
    unplug: this library (:meth:`EndpointManager.release_endpoints`), one
    ``ip link del group`` (the kernel's floor) and one privileged delete
    per device.
``direct`` (steered: a tap, a macvlan on a pool interface, tc redirects)
    plug: this library, one privileged call per operation (tap, up,
    macvlan, up, redirect) and ``ip -batch`` + ``tc -batch``; unplug as
    for bridge.
``openvswitch`` (a tap and an OVS port on a userspace, netdev bridge of a
private Open vSwitch)
    plug: this library (one privileged batch + one OVSDB transaction,
    waiting for ovs-vswitchd), one ``ovs-vsctl`` transaction adding the
    same ports on taps made beforehand (and ``ip -batch`` + that
    transaction), and os-vif's OVS plugin (``tools/bench/osvif_ovs.py``:
    one VIF at a time, ``create_port`` + ``create_tap``, netdev datapath);
    unplug: this library, one ``ovs-vsctl`` transaction and os-vif.

each at 1, 100 and 1000 ports (and 4000 with ``--full``); then the
latency of connect, move and disconnect with 1000 ports present; XML
rendering throughput (``tools/bench/xml_render.py``); the memory of an
agent process holding 1000 endpoints (4000 with ``--full``,
``tools/bench/agent_memory.py``); when ``tools/bench/watcher.py``
exists, the watcher's recovery latency; and the message bus's cost
(``tools/bench/agent_bus.py``: the agent over a private RabbitMQ against
the same batch in-process, four agents at once, RPC round trip).

Fast methods are timed ``--rounds`` times (median reported); the slow
baselines (per-operation calls, ``ovs-vsctl`` deletes, os-vif) once, and
every Open vSwitch method once above 1000 ports. What is measured is kept
in ``results.partial.json`` as the run goes.
Every timed phase starts after a pause proportional to the port count
(``--settle`` seconds per 1000 ports) and is checked afterwards, untimed.

Writes OUTPUT_DIR/results.json (every sample), results.md (Markdown
tables) and latency.png (latency against port count, if matplotlib is
installed); ``--update-docs`` also rewrites the generated part of
``doc/source/reference/benchmarks.rst`` and its figure.

Usage (root)::

    python tools/bench/run_all.py [--full] [--rounds 3] [--update-docs]
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import ovs_probe  # noqa: E402
import privsep_taps  # noqa: E402
import xml_render  # noqa: E402

from vif_plug_dyn import host as host_mod  # noqa: E402
from vif_plug_dyn import manager as manager_mod  # noqa: E402
from vif_plug_dyn import ovsdb  # noqa: E402
from vif_plug_dyn import ports as ports_mod  # noqa: E402
from vif_plug_dyn.drivers import taps  # noqa: E402
from vif_plug_dyn.privsep import ops  # noqa: E402
from vif_plug_dyn.tests.functional.harness import ovs as ovs_harness  # noqa

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DOC = os.path.join(ROOT, 'doc', 'source', 'reference', 'benchmarks.rst')
DOC_FIGURE = os.path.join(ROOT, 'doc', 'source', 'reference',
                          'benchmarks-latency.png')
BEGIN_MARK = '.. BEGIN GENERATED RESULTS (tools/bench/run_all.py)'
END_MARK = '.. END GENERATED RESULTS'

MTU = 1400
GROUP = 7
#: Link group of the transient "one group delete" baseline.
DEL_GROUP = 9

Timer = Callable[[], float]


class Kind:
    """One network kind: how each method plugs and unplugs COUNT ports.

    Subclasses fill :attr:`plug_methods` and :attr:`unplug_methods`:
    ``{label: (timed, slow)}``. A plug method builds the ports and returns
    the seconds it took; :meth:`after_plug` checks and removes them
    (untimed). An unplug method starts from ports the library built
    (untimed, :meth:`before_unplug`) and returns the seconds the removal
    took; :meth:`after_unplug` checks nothing is left.
    """

    name = ''
    network = 'bench'

    def __init__(self, ns: str, manager: manager_mod.EndpointManager
                 ) -> None:
        self.ns = ns
        self.manager = manager
        self.host = host_mod.HostNetwork(tag='bench')
        self.ports: list[ports_mod.Port] = []
        self.plug_methods: dict[str, tuple[Timer, bool]] = {}
        self.unplug_methods: dict[str, tuple[Timer, bool]] = {}
        self.salt = 0

    # -- helpers -----------------------------------------------------------

    def new_ports(self, count: int) -> None:
        self.salt += 1
        self.ports = common.make_ports(count, self.network, self.salt)

    @property
    def ids(self) -> list[str]:
        return [p.port_id for p in self.ports]

    @property
    def taps(self) -> list[str]:
        return [p.tap_name for p in self.ports]

    def devices(self) -> list[str]:
        """Every device a port of this kind has."""
        return self.taps

    def library_plug(self) -> float:
        return common.timed(lambda: self.manager.request_endpoints(
            self.ports, ['ethernet']))

    def library_unplug(self) -> float:
        return common.timed(lambda: self.manager.release_endpoints(self.ids))

    def group_delete(self) -> float:
        # NOTE(vpd): the same devices, put in one link group (untimed),
        # then deleted by the kernel in one request: the floor.
        common.ip_batch(self.ns, ['link set dev %s group %d' % (n, DEL_GROUP)
                                  for n in self.devices()])
        common.settle(0.2)
        took = privsep_taps.remove_group(self.ns, DEL_GROUP)
        self.manager.ledger.delete_ports(self.ids)
        return took

    def per_op_delete(self) -> float:
        start = time.perf_counter()
        for name in self.devices():
            self.host.delete([name])
        took = time.perf_counter() - start
        self.manager.ledger.delete_ports(self.ids)
        return took

    def count_links(self, kind: str) -> int:
        """Devices of ``kind`` the ports own (Open vSwitch's own
        internal devices are taps too)."""
        return sum(1 for link in self.host.list_links(kind=kind)
                   if link['owned'])

    # -- phases ------------------------------------------------------------

    def before_unplug(self) -> None:
        self.manager.request_endpoints(self.ports, ['ethernet'])
        self.after_plug_check()

    def after_plug_check(self) -> None:
        raise NotImplementedError

    def after_plug(self, label: str) -> None:
        self.after_plug_check()
        if label == 'library':
            self.manager.release_endpoints(self.ids)
        else:
            self.host.delete(self.devices())
        self.after_unplug()

    def after_unplug(self) -> None:
        left = self.count_links('tun')
        if left:
            raise SystemExit('%s: %d taps left' % (self.name, left))
        if self.manager.ledger.port_ids():
            raise SystemExit('%s: ports left in the ledger' % self.name)

    def close(self) -> None:
        self.manager.close()


#: Ports per Linux bridge in the bridge workloads.
#: NOTE(vpd): a Linux bridge holds at most 1023 ports (10-bit port
#: numbers, 0 reserved; the next is refused with EXFULL), so 4000 ports
#: are spread over four bridges of 1000 — the same bridges for every
#: method.
PORTS_PER_BRIDGE = 1000
#: Extra bridges for counts above PORTS_PER_BRIDGE (networks bench-1...).
EXTRA_BRIDGES = 3


def _bridge_network(name: str, bridge: str) -> str:
    return ("<network type='bridge'><name>%s</name>"
            "<bridge name='%s' managed='no'/><mtu size='%d'/></network>"
            % (name, bridge, MTU))


class BridgeKind(Kind):
    name = 'bridge'
    bridge = 'brbench'
    #: network -> bridge; ``bench2`` is where cable moves go.
    bridges = {'bench': 'brbench', 'bench2': 'brbench2',
               **{'bench-%d' % n: 'brbench-%d' % n
                  for n in range(1, EXTRA_BRIDGES + 1)}}
    networks = {name: _bridge_network(name, bridge)
                for name, bridge in bridges.items()}

    def __init__(self, ns: str, manager: manager_mod.EndpointManager
                 ) -> None:
        super().__init__(ns, manager)
        # NOTE(vpd): operator bridges (adopted, never removed by the
        # library), so every method works on the same bridges.
        self.host.run([ops.create_bridge(b) for b in self.bridges.values()])
        self.plug_methods = {
            'library': (self.library_plug, False),
            'helper batch': (self.helper_batch, False),
            'ip -batch': (self.ip_batch, False),
            'per-op calls': (self.per_op, True),
        }
        self.unplug_methods = {
            'library': (self.library_unplug, False),
            'group delete': (self.group_delete, False),
            'per-op calls': (self.per_op_delete, True),
        }

    def new_ports(self, count: int) -> None:
        """``count`` ports, the first 1000 on ``bench``, each next 1000 on
        ``bench-1``, ``bench-2``..."""
        self.salt += 1
        self.ports = []
        for block, start in enumerate(range(0, count, PORTS_PER_BRIDGE)):
            network = self.network if block == 0 else 'bench-%d' % block
            self.ports += common.make_ports(
                min(PORTS_PER_BRIDGE, count - start), network,
                (self.salt << 3) + block)

    def bridge_of(self, port: ports_mod.Port) -> str:
        return self.bridges[port.network]

    def helper_batch(self) -> float:
        batch = [taps.tap_op(p, self.manager.registry.get(p.network),
                             self.bridge_of(p)) for p in self.ports]
        return common.timed(lambda: self.host.run(batch))

    def per_op(self) -> float:
        start = time.perf_counter()
        for port in self.ports:
            name = port.tap_name
            self.host.apply_one(ops.create_tap(
                name, mac=taps.host_mac(port.mac), up=False,
                tag=port.port_id))
            self.host.apply_one(ops.set_mtu(name, MTU))
            self.host.apply_one(ops.set_master(name, self.bridge_of(port)))
            self.host.apply_one(ops.set_state(name, True))
        return time.perf_counter() - start

    def ip_batch(self) -> float:
        lines = []
        for port in self.ports:
            name = port.tap_name
            lines.append('tuntap add dev %s mode tap' % name)
            lines.append('link set dev %s mtu %d address %s master %s '
                         'alias %s up' % (name, MTU, taps.host_mac(port.mac),
                                          self.bridge_of(port),
                                          ops.alias_for(port.port_id)))
        return common.ip_batch(self.ns, lines)

    def after_plug_check(self) -> None:
        for bridge in set(map(self.bridge_of, self.ports)):
            want = sum(1 for p in self.ports if self.bridge_of(p) == bridge)
            on_bridge = self.host.list_links(master=bridge)
            if len(on_bridge) != want:
                raise SystemExit('bridge: %d ports on %s, expected %d' % (
                    len(on_bridge), bridge, want))
        sample = self.host.get_link(self.ports[-1].tap_name)
        want = {'mtu': MTU, 'up': True, 'owned': True,
                'tag': self.ports[-1].port_id, 'kind': 'tun'}
        got = {k: sample[k] for k in want}
        if got != want:
            raise SystemExit('bridge: tap is %r, expected %r' % (got, want))


class DirectKind(Kind):
    name = 'direct'
    network = 'pool'
    lowers = ('low0', 'low1')
    networks = {
        'pool': "<network type='direct'><name>pool</name>"
                "<forward mode='bridge'><interface dev='low0'/>"
                "<interface dev='low1'/></forward></network>",
        'pool2': "<network type='direct'><name>pool2</name>"
                 "<forward mode='bridge'><interface dev='low2'/>"
                 "</forward></network>",
    }

    def __init__(self, ns: str, manager: manager_mod.EndpointManager
                 ) -> None:
        super().__init__(ns, manager)
        for n in range(3):
            subprocess.run(['ip', '-n', ns, 'link', 'add', 'low%d' % n,
                            'type', 'veth', 'peer', 'name', 'wire%d' % n],
                           check=True)
            subprocess.run(['ip', '-n', ns, 'link', 'set', 'low%d' % n,
                            'up'], check=True)
        self.plug_methods = {
            'library': (self.library_plug, False),
            'ip -batch + tc -batch': (self.ip_tc_batch, False),
            'per-op calls': (self.per_op, True),
        }
        self.unplug_methods = {
            'library': (self.library_unplug, False),
            'group delete': (self.group_delete, False),
            'per-op calls': (self.per_op_delete, True),
        }

    def devices(self) -> list[str]:
        return self.taps + [p.macvlan_name for p in self.ports]

    def lower_of(self, i: int) -> str:
        return self.lowers[i % len(self.lowers)]

    def per_op(self) -> float:
        start = time.perf_counter()
        for i, port in enumerate(self.ports):
            tap, mvl = port.tap_name, port.macvlan_name
            self.host.apply_one(ops.create_tap(
                tap, mac=taps.host_mac(port.mac), up=False,
                tag=port.port_id))
            self.host.apply_one(ops.set_state(tap, True))
            self.host.apply_one(ops.create_macvlan(
                mvl, self.lower_of(i), mode='bridge', mac=port.mac,
                up=False, tag=port.port_id))
            self.host.apply_one(ops.set_state(mvl, True))
            self.host.apply_one(ops.redirect(tap, mvl))
        return time.perf_counter() - start

    def ip_tc_batch(self) -> float:
        links, filters = [], []
        for i, port in enumerate(self.ports):
            tap, mvl = port.tap_name, port.macvlan_name
            alias = ops.alias_for(port.port_id)
            links += ['tuntap add dev %s mode tap' % tap,
                      'link set dev %s address %s alias %s up' % (
                          tap, taps.host_mac(port.mac), alias),
                      'link add link %s name %s address %s type macvlan '
                      'mode bridge' % (self.lower_of(i), mvl, port.mac),
                      'link set dev %s alias %s up' % (mvl, alias)]
            for dev, peer in ((tap, mvl), (mvl, tap)):
                filters += ['qdisc add dev %s clsact' % dev,
                            'filter add dev %s ingress protocol all u32 '
                            'match u32 0 0 action mirred egress redirect '
                            'dev %s' % (dev, peer)]
        return common.ip_batch(self.ns, links) + common.tc_batch(self.ns,
                                                                 filters)

    def after_plug_check(self) -> None:
        macvlans = self.count_links('macvlan')
        tun = self.count_links('tun')
        if (macvlans, tun) != (len(self.ports), len(self.ports)):
            raise SystemExit('direct: %d macvlans and %d taps, expected %d'
                             % (macvlans, tun, len(self.ports)))
        port = self.ports[-1]
        out = subprocess.run(['tc', '-n', self.ns, 'filter', 'show', 'dev',
                              port.tap_name, 'ingress'], check=True,
                             capture_output=True, text=True).stdout
        if port.macvlan_name not in out:
            raise SystemExit('direct: %s is not steered to %s' % (
                port.tap_name, port.macvlan_name))

    def after_unplug(self) -> None:
        super().after_unplug()
        if self.count_links('macvlan'):
            raise SystemExit('direct: macvlans left')


class OvsKind(Kind):
    name = 'openvswitch'
    network = 'ovs'
    bridge = 'br-bench'
    networks = {
        'ovs': "<network type='openvswitch'><name>ovs</name>"
               "<bridge name='br-bench' managed='no'/></network>",
        'ovs2': "<network type='openvswitch'><name>ovs2</name>"
                "<bridge name='br-bench2' managed='no'/></network>",
    }

    def __init__(self, ns: str, manager: manager_mod.EndpointManager,
                 switch: ovs_harness.OpenVSwitch, osvif_max: int,
                 no_wait: manager_mod.EndpointManager) -> None:
        super().__init__(ns, manager)
        # NOTE(vpd): ``manager`` waits for ovs-vswitchd to apply each
        # change, like ovs-vsctl; ``no_wait`` is the library's default
        # configuration (ovs_apply_wait = 0: return once OVSDB committed),
        # like os-vif, which does not wait for ovs-vswitchd either.
        self.no_wait = no_wait
        self.switch = switch
        self.osvif_max = osvif_max
        self.db = ovsdb.OvsdbClient(switch.db_sock, timeout=1800)
        for bridge in ('br-bench', 'br-bench2'):
            self.db.ensure_bridge(bridge, datapath_type='netdev', wait=60)
        self.osvif: dict[int, dict[str, Any]] = {}
        self.plug_methods = {
            'library': (self.library_plug, False),
            'library, no wait': (self.no_wait_plug, False),
            'ovs-vsctl (one transaction)': (self.vsctl_add, False),
            'ip -batch + ovs-vsctl': (self.ip_vsctl_add, False),
            'os-vif': (self.osvif_plug, True),
        }
        self.unplug_methods = {
            'library': (self.library_unplug, False),
            'library, no wait': (self.no_wait_unplug, False),
            'ovs-vsctl (one transaction)': (self.vsctl_del, True),
            'os-vif': (self.osvif_unplug, True),
        }

    def no_wait_plug(self) -> float:
        return common.timed(lambda: self.no_wait.request_endpoints(
            self.ports, ['ethernet']))

    def no_wait_unplug(self) -> float:
        # NOTE(vpd): the ports were built by the waiting manager; the
        # no-wait manager's ledger learns them untimed.
        self.manager.ledger.delete_ports(self.ids)
        self.no_wait.ledger.begin_ports(
            [ports_mod.EndpointRequest(port=p, accepted_types=('ethernet',))
             for p in self.ports], 'plugged')
        network = self.no_wait.registry.get(self.network)
        self.no_wait.ledger.activate_ports([
            taps_endpoint(p, network) for p in self.ports])
        self.no_wait.ledger.record_devices(taps.tap_records(
            [ports_mod.EndpointRequest(port=p) for p in self.ports],
            network))
        return common.timed(lambda: self.no_wait.release_endpoints(
            self.ids))

    def specs(self) -> list[ovsdb.PortSpec]:
        return [(p.tap_name, '', {'iface-id': p.port_id,
                                  'attached-mac': p.mac,
                                  'iface-status': 'active',
                                  'vm-uuid': str(p.vm_uuid)})
                for p in self.ports]

    def _vsctl(self, args: list[str]) -> float:
        return common.timed(lambda: self.switch.vsctl(
            '--timeout=1800', *args, timeout=1900))

    def _taps_ip_batch(self) -> float:
        lines = []
        for port in self.ports:
            lines += ['tuntap add dev %s mode tap' % port.tap_name,
                      'link set dev %s address %s alias %s up' % (
                          port.tap_name, taps.host_mac(port.mac),
                          ops.alias_for(port.port_id))]
        return common.ip_batch(self.ns, lines)

    def vsctl_add(self) -> float:
        self._taps_ip_batch()
        common.settle(self._pause)
        return self._vsctl(ovs_probe.vsctl_add_args(self.bridge,
                                                    self.specs()))

    def ip_vsctl_add(self) -> float:
        return self._taps_ip_batch() + self._vsctl(
            ovs_probe.vsctl_add_args(self.bridge, self.specs()))

    def vsctl_del(self) -> float:
        took = self._vsctl(ovs_probe.vsctl_del_args(self.bridge, self.taps))
        self.host.delete(self.taps)
        self.manager.ledger.delete_ports(self.ids)
        return took

    def _run_osvif(self) -> dict[str, Any]:
        count = len(self.ports)
        if count not in self.osvif:
            out = subprocess.run(
                ['ip', 'netns', 'exec', self.ns, sys.executable,
                 os.path.join(HERE, 'osvif_ovs.py'), '--db',
                 self.switch.db_sock, '--bridge', self.bridge, '--count',
                 str(count), '--mtu', '1500'],
                check=True, capture_output=True, text=True,
                timeout=3600).stdout
            result = json.loads(out.strip().splitlines()[-1])
            if (result['ports_after_plug'], result['ports_after_unplug'],
                    result['taps_after_unplug']) != (count, 0, 0):
                raise SystemExit('os-vif: wrong state %r' % result)
            self.osvif[count] = result
        return self.osvif[count]

    def osvif_plug(self) -> float:
        return float(self._run_osvif()['plug_s'])

    def osvif_unplug(self) -> float:
        # NOTE(vpd): os-vif plugged and unplugged in one run (its own
        # process and privileged daemon); the ports the library built
        # for this phase are removed untimed.
        self.manager.release_endpoints(self.ids)
        return float(self._run_osvif()['unplug_s'])

    _pause = 0.5

    def after_plug_check(self) -> None:
        self.db.wait_for_vswitchd(timeout=1800)
        on_bridge = len(self.db.list_ports(self.bridge))
        if on_bridge != len(self.ports):
            raise SystemExit('openvswitch: %d ports on %s, expected %d' % (
                on_bridge, self.bridge, len(self.ports)))

    def after_plug(self, label: str) -> None:
        if label == 'os-vif':
            # os-vif removed its own ports already.
            self.after_unplug()
            return
        self.after_plug_check()
        if label == 'library':
            self.manager.release_endpoints(self.ids)
        elif label == 'library, no wait':
            self.no_wait.release_endpoints(self.ids)
        else:
            self.db.del_ports(self.bridge, self.taps, wait=1800)
            self.host.delete(self.taps)
        self.after_unplug()

    def after_unplug(self) -> None:
        super().after_unplug()
        if self.no_wait.ledger.port_ids(self.network):
            raise SystemExit('openvswitch: ports left in the ledger')
        self.db.wait_for_vswitchd(timeout=1800)
        if self.db.list_ports(self.bridge):
            raise SystemExit('openvswitch: ports left on %s' % self.bridge)

    def skip(self, label: str, count: int, number: int) -> bool:
        """Whether round ``number`` of ``label`` at ``count`` is left out.

        NOTE(vpd): ovs-vswitchd's cost per port grows with the ports its
        netdev bridge already has: plugging 4000 and waiting for it took
        50 s here against 3.3 s for 1000, and every phase also waits for
        the removal of what it built. Above 1000 ports every method is
        timed once, like the slow baselines.
        """
        if label == 'os-vif' and count > self.osvif_max:
            return True
        return count > 1000 and number > 0

    def close(self) -> None:
        super().close()
        self.no_wait.close()
        self.db.close()


def taps_endpoint(port: ports_mod.Port, network: Any) -> Any:
    """The ethernet endpoint the openvswitch driver records for ``port``.
    """
    from vif_plug_dyn import endpoints
    return endpoints.EthernetEndpoint(
        tap=port.tap_name, **taps.common_fields(
            ports_mod.EndpointRequest(port=port), network))


# -- running -----------------------------------------------------------------

def checkpoint(results: dict[str, Any]) -> None:
    """Keep what has been measured so far in ``results.partial.json``
    (beside the final results): a run cut short loses nothing measured."""
    path = results.get('partial_path')
    if path:
        with open(path, 'w', encoding='utf-8') as handle:
            json.dump(results, handle, indent=1)


def plug_unplug(kind: Kind, counts: list[int], rounds: int, settle_s: float,
                results: dict[str, Any]) -> None:
    data = results.setdefault('kinds', {}).setdefault(
        kind.name, {'plug': {}, 'unplug': {}})
    skip = getattr(kind, 'skip', lambda label, count, number: False)
    for count in counts:
        pause = settle_s * max(0.05, count / 1000)
        for number in range(rounds):
            for phase, methods in (('plug', kind.plug_methods),
                                   ('unplug', kind.unplug_methods)):
                labels = list(methods)
                # NOTE(vpd): rotate the order so no method always runs
                # first.
                shift = number % len(labels)
                for label in labels[shift:] + labels[:shift]:
                    timer, slow = methods[label]
                    if (slow and number) or skip(label, count, number):
                        continue
                    kind.new_ports(count)
                    if phase == 'unplug':
                        kind.before_unplug()
                    common.settle(pause)
                    took = timer()
                    if phase == 'plug':
                        kind.after_plug(label)
                    else:
                        kind.after_unplug()
                    data[phase].setdefault(label, {}).setdefault(
                        str(count), []).append(took)
                    print('%s %s %s %d: %.3f s' % (kind.name, phase, label,
                                                   count, took),
                          file=sys.stderr, flush=True)
        checkpoint(results)


def cable_latency(kind: Kind, other: str, count: int, reps: int,
                  results: dict[str, Any]) -> None:
    """Time disconnect, connect and move (to ``other`` and back) of single
    ports while ``count`` ports are present."""
    kind.new_ports(count)
    kind.manager.request_endpoints(kind.ports, ['ethernet'])
    samples: dict[str, list[float]] = {'disconnect': [], 'connect': [],
                                       'move': []}
    rng = random.Random(8)
    mgr = kind.manager
    steps: list[tuple[str, Callable[[str], Any]]] = [
        ('disconnect', mgr.disconnect),
        ('connect', mgr.connect),
        ('move', lambda port_id: mgr.connect(port_id, other)),
        ('move', lambda port_id: mgr.connect(port_id, kind.network))]
    try:
        for _ in range(reps):
            port_id = rng.choice(kind.ports).port_id
            for op, step in steps:
                start = time.perf_counter()
                step(port_id)
                samples[op].append((time.perf_counter() - start) * 1000)
    finally:
        kind.manager.release_endpoints(kind.ids)
    results.setdefault('cable', {})[kind.name] = {
        'ports_present': count, 'samples_ms': samples}
    print('%s cable: %s' % (kind.name, ', '.join(
        '%s p50 %.1f ms' % (k, common.median(v)) for k, v in
        samples.items())), file=sys.stderr, flush=True)


def agent_memory(ns: str, count: int, results: dict[str, Any]) -> None:
    bridges = ['brmem%d' % n for n in range(-(-count // PORTS_PER_BRIDGE))]
    for bridge in bridges:
        subprocess.run(['ip', '-n', ns, 'link', 'add', bridge, 'type',
                        'bridge'], check=True)
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, 'agent_memory.py'), '--netns',
         ns, '--bridges', ','.join(bridges), '--count', str(count)],
        check=True,
        capture_output=True, text=True, timeout=1800).stdout
    results['memory'] = json.loads(out.strip().splitlines()[-1])
    print('memory: %r' % results['memory'], file=sys.stderr, flush=True)


def watcher(output_dir: str, full: bool, results: dict[str, Any]) -> None:
    """The hook for ``tools/bench/watcher.py`` (another benchmark): run it
    when it exists, keep its JSON and its Markdown table."""
    script = os.path.join(HERE, 'watcher.py')
    if not os.path.exists(script):
        results['watcher'] = {'status': 'not present'}
        return
    out_json = os.path.join(output_dir, 'watcher.json')
    argv = [sys.executable, script, '--out', out_json]
    if not full:
        argv += ['--big-reps', '3']
    try:
        proc = subprocess.run(argv, capture_output=True, text=True,
                              timeout=3600)
    except subprocess.TimeoutExpired:
        results['watcher'] = {'status': 'timed out'}
        return
    entry: dict[str, Any] = {'status': 'ok' if proc.returncode == 0 else
                             'failed (exit %d)' % proc.returncode,
                             'table': proc.stdout.strip()}
    if proc.returncode != 0:
        entry['stderr'] = proc.stderr[-2000:]
    if os.path.exists(out_json):
        with open(out_json, encoding='utf-8') as handle:
            entry['data'] = json.load(handle)
    results['watcher'] = entry


def agent_bus(output_dir: str, results: dict[str, Any]) -> None:
    """The bus's cost (``tools/bench/agent_bus.py``): the agent over a
    private RabbitMQ against in-process, 4 agents x 1000 ports, RPC round
    trip; kept with its Markdown table."""
    script = os.path.join(HERE, 'agent_bus.py')
    out_json = os.path.join(output_dir, 'agent_bus.json')
    try:
        proc = subprocess.run([sys.executable, script, '--out', out_json],
                              capture_output=True, text=True, timeout=3600)
    except subprocess.TimeoutExpired:
        results['agent_bus'] = {'status': 'timed out'}
        return
    entry: dict[str, Any] = {'status': 'ok' if proc.returncode == 0 else
                             'failed (exit %d)' % proc.returncode,
                             'table': proc.stdout.strip()}
    if proc.returncode != 0:
        entry['stderr'] = proc.stderr[-2000:]
    if os.path.exists(out_json):
        with open(out_json, encoding='utf-8') as handle:
            entry['data'] = json.load(handle)
    results['agent_bus'] = entry


def run(args: argparse.Namespace) -> dict[str, Any]:
    counts = [1, 100, 1000] + ([4000] if args.full else [])
    if args.counts:
        counts = [int(c) for c in args.counts.split(',')]
    results: dict[str, Any] = {
        'machine': common.machine_facts(), 'mode': 'full' if args.full
        else 'default', 'counts': counts, 'rounds': args.rounds,
        'settle_s_per_1000': args.settle,
        'partial_path': os.path.join(args.output_dir,
                                     'results.partial.json')}
    common.setup_process_conf()
    only = set(args.only.split(',')) if args.only else None

    def wanted(name: str) -> bool:
        return only is None or name in only

    for cls in (BridgeKind, DirectKind):
        if not wanted(cls.name):
            continue
        with common.namespace(cls.name) as ns, common.daemon_in(ns):
            manager = manager_mod.EndpointManager(common.make_conf(
                ns, cls.networks))
            kind = cls(ns, manager)
            try:
                plug_unplug(kind, counts, args.rounds, args.settle, results)
                cable_latency(kind, list(cls.networks)[1], args.cable_ports,
                              args.cable_reps, results)
                if cls is BridgeKind and wanted('memory'):
                    agent_memory(ns, 4000 if args.full else 1000, results)
            finally:
                kind.close()
    if wanted('openvswitch'):
        missing = ovs_harness.missing_binaries()
        if missing:
            results.setdefault('kinds', {})['openvswitch'] = {
                'skipped': 'Open vSwitch is not installed: %s' % ', '.join(
                    missing)}
        else:
            with common.namespace('ovs') as ns, common.daemon_in(ns), \
                    ovs_harness.OpenVSwitch(ns, timeout=60) as switch:
                settings = dict(ovsdb_socket=switch.db_sock,
                                ovs_datapath_type='netdev',
                                ovs_timeout=1800.0)
                manager = manager_mod.EndpointManager(common.make_conf(
                    ns, OvsKind.networks, ovs_apply_wait=1800.0,
                    **settings))
                no_wait = manager_mod.EndpointManager(common.make_conf(
                    ns, OvsKind.networks, **settings))
                ovs_kind = OvsKind(ns, manager, switch, args.osvif_max,
                                   no_wait)
                try:
                    plug_unplug(ovs_kind, counts, args.rounds, args.settle,
                                results)
                    cable_latency(ovs_kind, 'ovs2', args.cable_ports,
                                  args.cable_reps, results)
                finally:
                    ovs_kind.close()
    if wanted('xml'):
        results['xml'] = xml_render.measure(20000, 5, parse=True)
    if wanted('watcher'):
        watcher(args.output_dir, args.full, results)
    if wanted('agent_bus'):
        agent_bus(args.output_dir, results)
    results['targets'] = targets(results)
    return results


# -- targets and report ------------------------------------------------------

def _median(results: dict[str, Any], kind: str, phase: str, label: str,
            count: int) -> float | None:
    try:
        return common.median(
            results['kinds'][kind][phase][label][str(count)])
    except (KeyError, TypeError):
        return None


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return num / den


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of the project, measured or marked not measured."""
    out: list[dict[str, Any]] = []

    def add(label: str, value: float | None, op: str, bound: float,
            unit: str = '') -> None:
        entry: dict[str, Any] = {'label': label, 'value': value,
                                 'target': '%s %s%s' % (op, bound, unit)}
        if value is None:
            entry['met'] = None
        else:
            met = value <= bound if op == '<=' else value >= bound
            entry['met'] = met
            if not met:
                # How far off, as a share of the bound.
                entry['missed_by_pct'] = 100 * (
                    value / bound - 1 if op == '<=' else 1 - value / bound)
        out.append(entry)

    m = _median
    add('bridge: plug 1000, library / ip -batch',
        _ratio(m(results, 'bridge', 'plug', 'library', 1000),
               m(results, 'bridge', 'plug', 'ip -batch', 1000)), '<=', 1.2)
    add('bridge: plug 1000, per-op calls / library',
        _ratio(m(results, 'bridge', 'plug', 'per-op calls', 1000),
               m(results, 'bridge', 'plug', 'library', 1000)), '>=', 5.0)
    for kind in ('bridge', 'direct'):
        add('%s: unplug 1000, library / one group delete' % kind,
            _ratio(m(results, kind, 'unplug', 'library', 1000),
                   m(results, kind, 'unplug', 'group delete', 1000)),
            '<=', 1.2)
    add('openvswitch: plug 1000, library / one ovs-vsctl transaction',
        _ratio(m(results, 'openvswitch', 'plug', 'library', 1000),
               m(results, 'openvswitch', 'plug',
                 'ovs-vsctl (one transaction)', 1000)), '<=', 1.5)
    add('openvswitch: plug 1000, os-vif / library',
        _ratio(m(results, 'openvswitch', 'plug', 'os-vif', 1000),
               m(results, 'openvswitch', 'plug', 'library', 1000)),
        '>=', 20.0)
    add('openvswitch: unplug 1000, os-vif / library',
        _ratio(m(results, 'openvswitch', 'unplug', 'os-vif', 1000),
               m(results, 'openvswitch', 'unplug', 'library', 1000)),
        '>=', 10.0)
    # NOTE(vpd): the same two os-vif targets against the library's
    # default configuration, which like os-vif does not wait for
    # ovs-vswitchd; shown beside the waiting rows, not instead of them.
    add('openvswitch: plug 1000, os-vif / library, no wait',
        _ratio(m(results, 'openvswitch', 'plug', 'os-vif', 1000),
               m(results, 'openvswitch', 'plug', 'library, no wait', 1000)),
        '>=', 20.0)
    add('openvswitch: unplug 1000, os-vif / library, no wait',
        _ratio(m(results, 'openvswitch', 'unplug', 'os-vif', 1000),
               m(results, 'openvswitch', 'unplug', 'library, no wait',
                 1000)), '>=', 10.0)
    for kind in ('bridge', 'direct', 'openvswitch'):
        for phase in ('plug', 'unplug'):
            add('%s: %s, library, time(4000) / time(1000)' % (kind, phase),
                _ratio(m(results, kind, phase, 'library', 4000),
                       m(results, kind, phase, 'library', 1000)), '<=', 4.4)
    xml = results.get('xml')
    add('XML rendering (interfaces/s)',
        xml['render_per_s'] if xml else None, '>=', 20000)
    memory = results.get('memory')
    add('agent RSS at %s endpoints (MB)' % (
        memory['count'] if memory else 4000),
        memory['agent_rss_kb'] / 1024 if memory else None, '<=', 100)
    return out


def _fmt_s(value: float | None) -> str:
    if value is None:
        return '-'
    return '%.3f' % value if value < 100 else '%.0f' % value


def tables(results: dict[str, Any]) -> list[tuple[str, list[str],
                                                  list[list[str]]]]:
    """The report as (title, header, rows) tables."""
    out = []
    counts = results['counts']
    for kind, data in results.get('kinds', {}).items():
        if 'skipped' in data:
            out.append(('%s: skipped' % kind, ['reason'],
                        [[data['skipped']]]))
            continue
        for phase in ('plug', 'unplug'):
            rows = []
            for label, by_count in data[phase].items():
                rows.append([label] + [
                    _fmt_s(common.median(by_count[str(c)]))
                    if str(c) in by_count else '-' for c in counts])
            out.append(('%s: %s, seconds (median)' % (kind, phase),
                        ['method'] + ['%d ports' % c for c in counts],
                        rows))
    rows = []
    for kind, entry in results.get('cable', {}).items():
        for op, values in entry['samples_ms'].items():
            rows.append([kind, op, '%.1f' % common.percentile(values, 0.5),
                         '%.1f' % common.percentile(values, 0.95),
                         '%.1f' % max(values), str(len(values))])
    if rows:
        present = next(iter(results['cable'].values()))['ports_present']
        out.append(('cable latency with %d ports present, ms' % present,
                    ['kind', 'operation', 'p50', 'p95', 'max', 'samples'],
                    rows))
    xml = results.get('xml')
    if xml:
        out.append(('XML (libvirt <interface>), %d interfaces, best of 5'
                    % xml['count'], ['work', 'interfaces/s'],
                    [['render', '%.0f' % xml['render_per_s']],
                     ['parse', '%.0f' % xml.get('parse_per_s', 0)]]))
    memory = results.get('memory')
    if memory:
        out.append(('memory, %d endpoints' % memory['count'],
                    ['process', 'RSS MB', 'peak MB'],
                    [['agent (after 1 endpoint)',
                      '%.1f' % (memory['baseline_rss_kb'] / 1024), '-'],
                     ['agent', '%.1f' % (memory['agent_rss_kb'] / 1024),
                      '%.1f' % (memory['agent_hwm_kb'] / 1024)],
                     ['privileged daemon',
                      '%.1f' % (memory['daemon_rss_kb'] / 1024),
                      '%.1f' % (memory['daemon_hwm_kb'] / 1024)]]))
    rows = []
    for item in results['targets']:
        if item['met'] is None:
            verdict = 'not measured'
        elif item['met']:
            verdict = 'met'
        else:
            verdict = 'MISSED by %.0f%%' % item['missed_by_pct']
        value = item['value']
        rows.append([item['label'], '-' if value is None else
                     ('%.2f' % value if value < 1000 else '%.0f' % value),
                     item['target'], verdict])
    out.append(('targets', ['ratio', 'value', 'target', 'verdict'], rows))
    return out


def markdown(results: dict[str, Any]) -> str:
    facts = results['machine']
    lines = ['Machine: %s, %s cores, %s GiB, kernel %s, Python %s; %s; '
             'mode %s, %d round(s).' % (
                 facts['cpu'], facts['cores'], facts['memory_gib'],
                 facts['kernel'], facts['python'], facts['date'],
                 results['mode'], results['rounds']), '']
    for title, header, rows in tables(results):
        lines += ['**%s**' % title, '', '| ' + ' | '.join(header) + ' |',
                  '|' + '---|' * len(header)]
        lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
        lines.append('')
    watcher_entry = results.get('watcher', {})
    lines.append('**watcher** (tools/bench/watcher.py): %s' %
                 watcher_entry.get('status', 'not run'))
    if watcher_entry.get('table'):
        lines += ['', watcher_entry['table']]
    bus_entry = results.get('agent_bus', {})
    lines += ['', '**agent over RabbitMQ** (tools/bench/agent_bus.py): %s'
              % bus_entry.get('status', 'not run')]
    if bus_entry.get('table'):
        lines += ['', bus_entry['table']]
    return '\n'.join(lines) + '\n'


def rst(results: dict[str, Any]) -> str:
    facts = results['machine']
    lines = ['Generated by ``tox -e %s`` on %s.' % (
        'bench-full' if results['mode'] == 'full' else 'bench',
        facts['date']), '',
        '* CPU: %s, %s cores, %s GiB of memory' % (
            facts['cpu'], facts['cores'], facts['memory_gib']),
        '* kernel %s, Python %s' % (facts['kernel'], facts['python']),
        '* %d round(s) of the fast methods (median shown), the slow '
        'baselines once' % results['rounds'], '']
    for title, header, rows in tables(results):
        lines += ['.. list-table:: %s' % title, '   :header-rows: 1', '']
        for row in [header] + rows:
            lines.append('   * - %s' % _rst_cell(row[0]))
            lines += ['     - %s' % _rst_cell(cell) for cell in row[1:]]
        lines.append('')
    lines += ['.. figure:: benchmarks-latency.png', '   :width: 100%', '',
              '   Plug and unplug latency against port count (log-log).',
              '']
    watcher_entry = results.get('watcher', {})
    lines.append('Watcher recovery (``tools/bench/watcher.py``): %s.' %
                 watcher_entry.get('status', 'not run'))
    if watcher_entry.get('table'):
        lines += ['', '.. code-block:: text', '']
        lines += ['   ' + line for line in
                  watcher_entry['table'].splitlines()]
    bus_entry = results.get('agent_bus', {})
    lines += ['', 'The agent over RabbitMQ (``tools/bench/agent_bus.py``): '
              '%s.' % bus_entry.get('status', 'not run')]
    if bus_entry.get('table'):
        lines += ['', '.. code-block:: text', '']
        lines += ['   ' + line for line in
                  bus_entry['table'].splitlines()]
    return '\n'.join(lines) + '\n'


def _rst_cell(text: str) -> str:
    return text.replace('*', r'\*').replace('|', r'\|') or '-'


def plot(results: dict[str, Any], path: str) -> bool:
    """Latency against port count, one panel per kind; False when
    matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        from matplotlib import pyplot
    except ImportError:
        return False
    kinds = [k for k, v in results.get('kinds', {}).items()
             if 'skipped' not in v]
    if not kinds:
        return False
    fig, axes = pyplot.subplots(1, len(kinds), figsize=(5 * len(kinds), 4.2),
                                squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=True):
        data = results['kinds'][kind]
        for phase, style in (('plug', '-o'), ('unplug', '--s')):
            for label, by_count in data[phase].items():
                xs = sorted(int(c) for c in by_count)
                ys = [common.median(by_count[str(c)]) for c in xs]
                ax.plot(xs, ys, style, label='%s %s' % (phase, label),
                        markersize=4)
        ax.set_xscale('log')
        ax.set_yscale('log')
        ax.set_title(kind)
        ax.set_xlabel('ports')
        ax.set_ylabel('seconds')
        ax.grid(True, which='both', alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def update_docs(report: str, figure: str | None) -> None:
    with open(DOC, encoding='utf-8') as handle:
        text = handle.read()
    begin = text.index(BEGIN_MARK) + len(BEGIN_MARK)
    end = text.index(END_MARK)
    text = text[:begin] + '\n\n' + report + '\n' + text[end:]
    with open(DOC, 'w', encoding='utf-8') as handle:
        handle.write(text)
    if figure:
        shutil.copyfile(figure, DOC_FIGURE)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--full', action='store_true',
                        help='also 4000 ports; memory at 4000 endpoints')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--settle', type=float, default=1.0,
                        help='seconds of pause per 1000 ports before each '
                             'timed phase')
    parser.add_argument('--cable-ports', type=int, default=1000)
    parser.add_argument('--cable-reps', type=int, default=50)
    parser.add_argument('--osvif-max', type=int, default=1000,
                        help='largest count os-vif is run at (it plugs one '
                             'VIF at a time)')
    parser.add_argument('--counts', default='',
                        help='comma-separated port counts instead of the '
                             'defaults (quick trials)')
    parser.add_argument('--only', default='',
                        help='comma-separated: bridge, direct, '
                             'openvswitch, memory, xml, watcher, '
                             'agent_bus')
    parser.add_argument('--output-dir', default=os.path.join('.cache',
                                                             'bench'))
    parser.add_argument('--update-docs', action='store_true',
                        help='rewrite the generated part of '
                             'doc/source/reference/benchmarks.rst')
    args = parser.parse_args(argv)
    common.require_root('run_all')
    os.makedirs(args.output_dir, exist_ok=True)
    started = time.monotonic()
    results = run(args)
    results['duration_s'] = time.monotonic() - started
    base = os.path.join(args.output_dir, 'results')
    with open(base + '.json', 'w', encoding='utf-8') as handle:
        json.dump(results, handle, indent=1)
    if os.path.exists(results['partial_path']):
        os.unlink(results['partial_path'])
    report = markdown(results)
    with open(base + '.md', 'w', encoding='utf-8') as handle:
        handle.write(report)
    figure = os.path.join(args.output_dir, 'latency.png')
    has_figure = plot(results, figure)
    print(report)
    print('written: %s.json %s.md%s (%.0f s)' % (
        base, base, ' ' + figure if has_figure else '',
        results['duration_s']))
    if args.update_docs:
        update_docs(rst(results), figure if has_figure else None)
        print('updated %s' % DOC)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
