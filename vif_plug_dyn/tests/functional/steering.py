"""Helpers of the watcher's functional tests (and its benchmark): steered
ports, their redirects as the kernel reports them, and the check that the
host is what the ledger says."""

import json
import time
import uuid

from vif_plug_dyn import ledger as ledger_mod
from vif_plug_dyn import ports
from vif_plug_dyn.runtime import watcher as watcher_mod
from vif_plug_dyn.tests.functional import fixtures


def direct_network(name, devs, mode='bridge', limit=None):
    """A direct network's XML: a pool of ``devs`` in ``mode``."""
    lim = '' if limit is None else " maxConnections='%d'" % limit
    return ("<network type='direct'><name>%s</name><forward mode='%s'>%s"
            "</forward></network>" % (name, mode, ''.join(
                "<interface dev='%s'%s/>" % (dev, lim) for dev in devs)))


def steered_port(network, n):
    """A port on ``network`` whose MAC is numbered ``n``."""
    return ports.Port(port_id=str(uuid.uuid4()),
                      mac='52:54:00:%02x:%02x:%02x' % (
                          n >> 16 & 0xff, n >> 8 & 0xff, n & 0xff),
                      network=network)


def run_until(watcher, done, timeout=20.0, step=0.5):
    """Run watcher rounds until ``done()`` holds, then one more round to
    take what the last repair stirred up; returns the rounds' reports
    merged."""
    total = watcher_mod.Report()
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, 'the watcher did not converge'
        total.merge(watcher.run_once(step))
    while True:
        report = watcher.run_once(0.2)
        total.merge(report)
        if not (report.degraded or report.restored or report.failed):
            return total


def redirects(ns, names):
    """``{device: [redirect targets of its ingress filters]}`` from one
    ``tc -batch`` (every name must exist)."""
    names = sorted(names)
    if not names:
        return {}
    script = ''.join('filter show dev %s ingress\n' % n for n in names)
    out = ns.run(['tc', '-j', '-batch', '-'], input=script).stdout
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == len(names), out
    found = {}
    for name, line in zip(names, lines, strict=True):
        targets = []
        for entry in json.loads(line):
            for action in entry.get('options', {}).get('actions', []):
                if action.get('kind') == 'mirred':
                    targets.append(action['to_dev'])
        found[name] = targets
    return found


def check_host_matches_ledger(ns, mgr, infrastructure):
    """Every plugged steered port whose lower device exists has its
    macvlan on that device with the guest's MAC and mode and both
    redirects, and is healthy; every other is degraded (or waiting) with
    no macvlan and no redirect left on its tap; the library owns nothing
    else; the ledger's device records match.

    :param infrastructure: names of the test's own devices.
    """
    links = fixtures.links(ns)
    expected = set(infrastructure)
    wanted_redirects = {}
    problems = []
    for record in mgr.ledger.list_ports():
        port = record.port
        lower = mgr.ledger.allocation(port.port_id, record.network)
        tap, macvlan = port.tap_name, port.macvlan_name
        expected.add(tap)
        mode = mgr.registry.get(record.network).mode
        if lower in links:
            expected.add(macvlan)
            link = links.get(macvlan)
            if record.health != ledger_mod.HEALTHY:
                problems.append('%s %s with %s present' % (
                    port.port_id, record.health, lower))
            if link is None:
                problems.append('%s: no macvlan' % port.port_id)
                continue
            info = link['linkinfo']['info_data']
            if (link.get('link'), link['address'], info['mode']) != (
                    lower, port.mac, mode):
                problems.append('%s: macvlan %s' % (port.port_id, link))
            wanted_redirects[tap] = [macvlan]
            wanted_redirects[macvlan] = [tap]
        else:
            if record.health == ledger_mod.HEALTHY:
                problems.append('%s healthy, %s missing' % (port.port_id,
                                                             lower))
            wanted_redirects[tap] = []
    leaked = sorted(set(links) - expected - {'lo'})
    missing = sorted(expected - set(links))
    if leaked or missing:
        problems.append('leaked %s, missing %s' % (leaked[:5], missing[:5]))
    got = redirects(ns, [n for n in wanted_redirects if n in links])
    wrong = {n: (got.get(n), want) for n, want in wanted_redirects.items()
             if got.get(n) != want}
    if wrong:
        problems.append('%d redirect(s) wrong, e.g. %s' % (
            len(wrong), sorted(wrong.items())[:3]))
    recorded = {d.name for d in mgr.ledger.devices()}
    owned = (expected - set(infrastructure))
    if recorded != owned:
        problems.append('device records: extra %s, missing %s' % (
            sorted(recorded - owned)[:3], sorted(owned - recorded)[:3]))
    assert not problems, problems


