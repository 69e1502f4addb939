#!/usr/bin/env python3
"""Benchmark: create, configure and remove many taps, three ways.

Inside a private network namespace (made here, always removed), with the
real privsep daemon started inside it, each round:

* creates COUNT taps, each with MTU 1400, master bridge, link group,
  owner alias and up:
  - ``batched``: one :meth:`HostNetwork.apply` call (this library; the
    link group is the batch's, chosen by the daemon);
  - ``per_op``: one privileged call per operation (create, MTU, master,
    up: four calls per tap; callers cannot set a link group);
  - ``ip_batch``: ``ip -batch`` with ``tuntap add`` + ``link set`` lines;
* removes COUNT taps made by the batched path:
  - ``ours``: one ``delete`` operation (transient group + group delete);
  - ``group``: ``ip link del group G`` (one kernel group delete);
  - ``one_by_one``: ``ip -batch`` with one ``link del`` per tap.

The batched creation therefore has three samples per round, the others
one. Phases are rotated from round to round and each starts after a
pause (``--settle``) so no method pays for another's leftover kernel work.

Every creation is checked (count of ports on the bridge, one tap's
attributes) and every removal too, outside the timed part. Medians over
the rounds and the ratios the project targets are printed as a Markdown
table and written, with every sample, to OUTPUT_DIR/privsep_taps.json and
.md.

Usage (root)::

    python tools/bench/privsep_taps.py [--count 1000] [--rounds 3]
        [--output-dir .cache/bench]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

from vif_plug_dyn import host as host_mod
from vif_plug_dyn.privsep import ops

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

BRIDGE = 'brbench'
GROUP = 7
MTU = 1400
TAG = 'bench'

TARGETS = [
    # (label, numerator, denominator, comparison, bound)
    ('batched create / ip -batch create', 'create.batched',
     'create.ip_batch', '<=', 1.2),
    ('per-op create / batched create', 'create.per_op', 'create.batched',
     '>=', 5.0),
    ('our removal / one group delete', 'remove.ours', 'remove.group',
     '<=', 1.2),
    ('one-by-one removal / our removal', 'remove.one_by_one',
     'remove.ours', '>=', 30.0),
]


class Bench:
    """Taps on one bridge, made and removed in every way compared.

    :param ns: the namespace (its daemon already started).
    :param count: how many taps.
    :param names: their names (``bt0``... when omitted).
    :param bridge: the bridge they join (made by the caller).
    """

    def __init__(self, ns: str, count: int, names: list[str] | None = None,
                 bridge: str = BRIDGE, settle: float = 2.0) -> None:
        self.ns = ns
        self.settle = settle
        self.count = count
        self.names = names or ['bt%d' % i for i in range(count)]
        self.bridge = bridge
        self.host = host_mod.HostNetwork(tag=TAG)
        #: The link group of the taps made last (``None``: several).
        self.group: int | None = None

    # -- checks (not timed) ------------------------------------------------

    def check_created(self, how: str) -> None:
        ports = self.host.list_links(master=self.bridge)
        if len(ports) != self.count:
            raise SystemExit('expected %d ports on %s, found %d' % (
                self.count, self.bridge, len(ports)))
        sample = self.host.get_link(self.names[-1])
        want = {'mtu': MTU, 'up': True, 'owned': True, 'tag': TAG,
                'kind': 'tun'}
        got = {k: sample[k] for k in want}
        if got != want:
            raise SystemExit('tap %s is %r, expected %r' % (
                self.names[-1], got, want))
        groups = {p['group'] for p in ports}
        self.group = groups.pop() if len(groups) == 1 else None
        if how == 'ip_batch' and self.group != GROUP or \
                how == 'batched' and self.group is None:
            raise SystemExit('taps made by %s are in groups %r' % (
                how, groups or self.group))

    def check_removed(self) -> None:
        left = self.host.list_links(kind='tun')
        if left:
            raise SystemExit('%d taps left after removal' % len(left))

    # -- creation ----------------------------------------------------------

    def create_batched(self) -> float:
        batch = [ops.create_tap(n, mtu=MTU, master=self.bridge)
                 for n in self.names]
        start = time.perf_counter()
        results = self.host.apply(batch)
        took = time.perf_counter() - start
        bad = [r for r in results if r['status'] != 'ok']
        if bad:
            raise SystemExit('batched create failed: %r' % bad[:3])
        return took

    def create_per_op(self) -> float:
        start = time.perf_counter()
        for name in self.names:
            self.host.apply_one(ops.create_tap(name, up=False))
            self.host.apply_one(ops.set_mtu(name, MTU))
            self.host.apply_one(ops.set_master(name, self.bridge))
            self.host.apply_one(ops.set_state(name, True))
        return time.perf_counter() - start

    def create_ip_batch(self) -> float:
        lines = []
        for name in self.names:
            lines.append('tuntap add dev %s mode tap' % name)
            lines.append('link set dev %s mtu %d master %s group %d '
                         'alias %s up' % (name, MTU, self.bridge, GROUP,
                                          ops.alias_for(TAG)))
        return common.ip_batch(self.ns, lines)

    # -- removal -------------------------------------------------------------

    def remove_ours(self) -> float:
        start = time.perf_counter()
        result = self.host.apply([ops.delete(self.names)])[0]
        took = time.perf_counter() - start
        if result['status'] != 'ok' or len(result['deleted']) != self.count:
            raise SystemExit('our removal failed: %r' % result)
        return took

    def remove_group(self) -> float:
        if self.group is None:
            # NOTE(vpd): taps made one call each are in as many groups;
            # removed untimed, through the library.
            return self.remove_ours()
        if self.group != GROUP:
            # NOTE(vpd): ip reads a group as a signed integer: it cannot
            # name the daemon's groups (2^31 and up). Untimed, the taps
            # move to GROUP first, and the kernel is given the same pause
            # as before every timed phase.
            common.ip_batch(self.ns, ['link set dev %s group %d' % (
                n, GROUP) for n in self.names])
            common.settle(self.settle)
        return remove_group(self.ns, GROUP)

    def remove_one_by_one(self) -> float:
        return common.ip_batch(self.ns, ['link del dev %s' % n
                                         for n in self.names])


def remove_group(ns: str, group: int) -> float:
    """Time ``ip link del group GROUP``: one kernel request deleting
    every device of the group (the floor for removing many devices)."""
    return common.timed(lambda: subprocess.run(
        ['ip', '-n', ns, 'link', 'del', 'group', str(group)], check=True))


def run(ns: str, count: int, rounds: int,
        pause: float) -> dict[str, list[float]]:
    bench = Bench(ns, count, settle=pause)
    bench.host.run([ops.create_bridge(BRIDGE)])
    samples: dict[str, list[float]] = {}
    # NOTE(vpd): every removal method deletes taps made the same way (the
    # batched path): how taps were made changes what their removal costs
    # (1000 taps brought up in 0.5 s leave more kernel work pending than
    # taps brought up over 3 s), which would otherwise skew the removal
    # comparison. Creations by the other methods are removed untimed.
    phases = [('batched', bench.create_batched, 'ours', bench.remove_ours),
              ('batched', bench.create_batched, 'group',
               bench.remove_group),
              ('batched', bench.create_batched, 'one_by_one',
               bench.remove_one_by_one),
              ('per_op', bench.create_per_op, None, bench.remove_group),
              ('ip_batch', bench.create_ip_batch, None,
               bench.remove_group)]
    for number in range(rounds):
        # NOTE(vpd): rotate the order so no method always runs first.
        shift = number % len(phases)
        for create_label, create, remove_label, remove in (
                phases[shift:] + phases[:shift]):
            common.settle(pause)
            took = create()
            bench.check_created(create_label)
            samples.setdefault('create.' + create_label, []).append(took)
            common.settle(pause)
            took = remove()
            bench.check_removed()
            if remove_label is not None:
                samples.setdefault('remove.' + remove_label, []).append(
                    took)
        print('round %d/%d: %s' % (number + 1, rounds, ', '.join(
            '%s %.3fs' % (k, v[-1]) for k, v in sorted(samples.items()))),
            file=sys.stderr)
    return samples


def report(samples: dict[str, list[float]], count: int, rounds: int,
           settle_s: float) -> tuple[dict[str, Any], str]:
    medians = {k: statistics.median(v) for k, v in samples.items()}
    ratios = []
    for label, num, den, op, bound in TARGETS:
        ratio = medians[num] / medians[den]
        met = ratio <= bound if op == '<=' else ratio >= bound
        ratios.append({'label': label, 'ratio': ratio,
                       'target': '%s %s' % (op, bound), 'met': met})
    data = {'count': count, 'rounds': rounds, 'settle_s': settle_s,
            'kernel': platform.release(), 'python': platform.python_version(),
            'samples_s': samples, 'medians_s': medians, 'ratios': ratios}
    lines = ['| %d taps, median of %d rounds | seconds |' % (count, rounds),
             '|---|---:|']
    for key in sorted(medians):
        lines.append('| %s | %.3f |' % (key, medians[key]))
    lines += ['', '| ratio | value | target | met |', '|---|---:|---|---|']
    for item in ratios:
        lines.append('| %s | %.2f | %s | %s |' % (
            item['label'], item['ratio'], item['target'],
            'yes' if item['met'] else '**no**'))
    return data, '\n'.join(lines) + '\n'


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--count', type=int, default=1000)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--settle', type=float, default=2.0,
                        help='seconds of pause before each timed phase')
    parser.add_argument('--output-dir', default=os.path.join('.cache',
                                                             'bench'))
    args = parser.parse_args(argv)
    common.require_root('privsep_taps')
    with common.namespace('taps') as ns, common.daemon_in(ns):
        samples = run(ns, args.count, args.rounds, args.settle)
    data, table = report(samples, args.count, args.rounds, args.settle)
    os.makedirs(args.output_dir, exist_ok=True)
    base = os.path.join(args.output_dir, 'privsep_taps')
    with open(base + '.json', 'w', encoding='utf-8') as handle:
        json.dump(data, handle, indent=2)
    with open(base + '.md', 'w', encoding='utf-8') as handle:
        handle.write(table)
    print(table)
    print('written: %s.json %s.md' % (base, base))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
