"""The watcher on a real kernel (root, no QEMU): lower devices of steered
ports vanish and come back, alone and by the hundred, with and without
lost events; the host must end up as the ledger says every time, and
traffic must flow again."""

import json
import random
import subprocess
import time
import uuid

import pytest

from vif_plug_dyn import ledger as ledger_mod
from vif_plug_dyn import ports
from vif_plug_dyn.runtime import watcher as watcher_mod
from vif_plug_dyn.tests.functional import fixtures
from vif_plug_dyn.tests.functional.harness.netns import NetNamespace

FAR_IP, GUEST_IP = '198.51.100.1', '198.51.100.10'


def _direct(name, devs, mode='bridge', limit=None):
    lim = '' if limit is None else " maxConnections='%d'" % limit
    return ("<network type='direct'><name>%s</name><forward mode='%s'>%s"
            "</forward></network>" % (name, mode, ''.join(
                "<interface dev='%s'%s/>" % (dev, lim) for dev in devs)))


def _port(network, n):
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


# --- one port: devices and traffic -------------------------------------------


@pytest.fixture(scope='module')
def host():
    with fixtures.private_host('watch') as ns:
        yield ns


@pytest.fixture
def far(host):
    """A namespace behind lower device ``up0`` (a veth: deleting ``up0``
    takes ``wire0`` with it)."""
    with NetNamespace('watch-far') as ns:
        _make_up0(host, ns)
        yield ns
    host.run(['ip', 'link', 'del', 'up0'], check=False)


def _make_up0(host, far):
    host.run(['ip', 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name',
              'wire0', 'netns', far.name])
    host.run(['ip', 'link', 'set', 'up0', 'up'])
    far.run(['ip', 'link', 'set', 'wire0', 'up'])
    far.run(['ip', 'addr', 'add', FAR_IP + '/24', 'dev', 'wire0'])


@pytest.fixture
def manager(host, tmp_path):
    mgr = fixtures.make_manager(tmp_path, host.name, {
        'blue': _direct('blue', ['up0']),
        'late': _direct('late', ['later0'], mode='vepa')})
    yield mgr
    mgr.release_endpoints([r.port.port_id for r in mgr.ledger.list_ports()])
    mgr.close()


def test_lower_device_loss_and_return_carry_traffic_again(host, far,
                                                          manager):
    port = _port('blue', 1)
    endpoint = manager.request_endpoint(port, ['ethernet'])
    watcher = watcher_mod.Watcher(manager)
    assert watcher.netns == host.name
    try:
        watcher.run_once(0)
        with fixtures.tap_guest(host, endpoint.tap, port.mac, GUEST_IP):
            assert fixtures.ping(far, GUEST_IP)
            host.run(['ip', 'link', 'del', 'up0'])
            report = run_until(watcher, lambda: manager.ledger.get_port(
                port.port_id).health == ledger_mod.DEGRADED)
            assert report.degraded == [port.port_id]
            assert report.lost_calls == {'blue': 1}
            links = fixtures.links(host)
            assert port.macvlan_name not in links and endpoint.tap in links
            assert redirects(host, [endpoint.tap]) == {endpoint.tap: []}
            check_host_matches_ledger(host, manager, [])

            _make_up0(host, far)
            report = run_until(watcher, lambda: manager.ledger.get_port(
                port.port_id).health == ledger_mod.HEALTHY)
            assert report.restored == [port.port_id]
            check_host_matches_ledger(host, manager, ['up0'])
            assert fixtures.ping(far, GUEST_IP)
    finally:
        watcher.close()


def test_port_requested_before_its_lower_device_exists(host, manager):
    """The watcher in its thread connects a waiting port as soon as its
    device appears."""
    port = _port('late', 2)
    endpoint = manager.request_endpoint(port, ['direct', 'ethernet'])
    assert endpoint.type == 'ethernet'
    assert manager.ledger.get_port(port.port_id).health == \
        ledger_mod.WAITING
    watcher = watcher_mod.Watcher(manager)
    watcher.start()
    try:
        time.sleep(0.2)
        assert manager.ledger.get_port(port.port_id).health == \
            ledger_mod.WAITING
        started = time.monotonic()
        host.run(['ip', 'link', 'add', 'later0', 'type', 'veth', 'peer',
                  'name', 'later0p'])
        while manager.ledger.get_port(port.port_id).health != \
                ledger_mod.HEALTHY:
            assert time.monotonic() - started < 10
            time.sleep(0.005)
        check_host_matches_ledger(host, manager, ['later0', 'later0p'])
        assert fixtures.links(host)[port.macvlan_name][
            'linkinfo']['info_data']['mode'] == 'vepa'
    finally:
        watcher.stop()
        watcher.close()
        host.run(['ip', 'link', 'del', 'later0'], check=False)
    assert watcher.total.restored == [port.port_id]


def test_watch_command_heals_until_sigterm(host, tmp_path):
    """``vif-plug-dyn watch`` as a process: heals, logs, stops on
    SIGTERM with a summary."""
    mgr = fixtures.make_manager(tmp_path, host.name,
                                {'cmd': _direct('cmd', ['cmdlow0'])})
    port = _port('cmd', 3)
    mgr.request_endpoint(port, ['ethernet'])
    conf_file = tmp_path / 'vpd.conf'
    conf_file.write_text('[vif_plug_dyn]\nnetns = %s\nstate_path = %s\n'
                         'network_dir = %s\n' % (
                             host.name, tmp_path / 'state',
                             tmp_path / 'networks'))
    script = fixtures_script()
    proc = subprocess.Popen([script, '--config-file', str(conf_file),
                             '--json', 'watch', '--settle', '2'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 20
        host.run(['ip', 'link', 'add', 'cmdlow0', 'type', 'veth', 'peer',
                  'name', 'cmdlow0p'])
        while mgr.ledger.get_port(port.port_id).health != \
                ledger_mod.HEALTHY:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        host.run(['ip', 'link', 'del', 'cmdlow0'])
        while mgr.ledger.get_port(port.port_id).health != \
                ledger_mod.DEGRADED:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        mgr.release_endpoint(port.port_id)
        mgr.close()
        host.run(['ip', 'link', 'del', 'cmdlow0'], check=False)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary['restored'] >= 1 and summary['degraded'] == 1
    assert 'restored 1 port(s)' in err and 'cmdlow0 gone' in err


def fixtures_script():
    import os
    import shutil
    import sys
    path = shutil.which('vif-plug-dyn') or os.path.join(
        os.path.dirname(sys.executable), 'vif-plug-dyn')
    if not os.path.exists(path):
        pytest.skip('vif-plug-dyn console script is not installed')
    return path


# --- a thousand ports --------------------------------------------------------

NETS, LOWERS_PER_NET, PORTS = 4, 5, 1000


def _lower(net, n):
    return 'lw%d%02d' % (net, n)


def _scale_networks():
    return {'pool%d' % net: _direct(
        'pool%d' % net, [_lower(net, n) for n in range(LOWERS_PER_NET)],
        mode=('bridge', 'vepa', 'private', 'bridge')[net],
        limit=PORTS // NETS // LOWERS_PER_NET)
        for net in range(NETS)}


ALL_LOWERS = [_lower(net, n) for net in range(NETS)
              for n in range(LOWERS_PER_NET)]


def _create_lines(names):
    return ''.join('link add %s type veth peer name %sp\nlink set %s up\n'
                   % (n, n, n) for n in names)


def _delete_lines(names):
    return ''.join('link del %s\n' % n for n in names)


def _ip_batch(ns, script):
    ns.run(['ip', '-batch', '-'], input=script)


@pytest.fixture(scope='module')
def scale_host():
    with fixtures.private_host('watchk') as ns:
        _ip_batch(ns, _create_lines(ALL_LOWERS))
        yield ns


@pytest.fixture(scope='module')
def scale_manager(scale_host, tmp_path_factory):
    mgr = fixtures.make_manager(tmp_path_factory.mktemp('scale'),
                                scale_host.name, _scale_networks())
    started = time.monotonic()
    for net in range(NETS):
        mgr.request_endpoints([_port('pool%d' % net, net * 4096 + n)
                               for n in range(PORTS // NETS)],
                              ['ethernet'])
    print('\n%d steered ports built in %.1f s' % (
        PORTS, time.monotonic() - started))
    yield mgr
    mgr.close()


def _infrastructure(ns):
    return [name for name in fixtures.links(ns)
            if name.startswith('lw')]


def _converged(mgr, ns):
    present = set(fixtures.links(ns))

    def done():
        for record in mgr.ledger.list_ports():
            lower = mgr.ledger.allocation(record.port.port_id,
                                          record.network)
            if (record.health == ledger_mod.HEALTHY) != (lower in present):
                return False
        return True
    return done


def _round(ns, mgr, watcher, script):
    _ip_batch(ns, script)
    started = time.monotonic()
    report = run_until(watcher, _converged(mgr, ns), timeout=60)
    elapsed = time.monotonic() - started
    check_host_matches_ledger(ns, mgr, _infrastructure(ns))
    return report, elapsed


def _scenario(ns, mgr, rcvbuf, rounds, seed):
    """Bursts of lower devices deleted, recreated, and bounced within one
    burst; the host checked against the ledger after each."""
    rng = random.Random(seed)
    watcher = watcher_mod.Watcher(mgr, rcvbuf=rcvbuf)
    reports = []
    try:
        started = time.monotonic()
        watcher.run_once(0)
        print('rcvbuf %d: start (restore every port) %.2f s' % (
            rcvbuf, time.monotonic() - started))
        check_host_matches_ledger(ns, mgr, _infrastructure(ns))
        for number in range(rounds):
            gone = sorted(rng.sample(ALL_LOWERS, 10))
            report, took = _round(ns, mgr, watcher, _delete_lines(gone))
            reports.append(report)
            assert len(report.degraded) == 10 * PORTS // len(ALL_LOWERS)
            print('round %d: 10 lower devices deleted, %d ports degraded '
                  'in %.2f s (resyncs %d)' % (number, len(report.degraded),
                                              took, report.resyncs))
            report, took = _round(ns, mgr, watcher, _create_lines(gone))
            reports.append(report)
            assert len(set(report.restored)) == 10 * PORTS // len(ALL_LOWERS)
            if rcvbuf == watcher_mod.DEFAULT_RCVBUF:
                # One burst, one restore() per network: not one per
                # device.
                assert max(report.restore_calls.values()) == 1, \
                    report.restore_calls
            print('round %d: back, %d ports restored in %.2f s with %s '
                  'restore calls (resyncs %d)' % (
                      number, len(set(report.restored)), took,
                      report.restore_calls, report.resyncs))
            bounce = sorted(rng.sample(ALL_LOWERS, 3))
            report, took = _round(ns, mgr, watcher, _delete_lines(bounce) +
                                  _create_lines(bounce))
            reports.append(report)
            print('round %d: 3 lower devices bounced in one burst, %d '
                  'ports rebuilt in %.2f s' % (
                      number, len(set(report.restored)), took))
    finally:
        watcher.close()
    return reports


def test_thousand_ports_bursts(scale_host, scale_manager):
    reports = _scenario(scale_host, scale_manager,
                        watcher_mod.DEFAULT_RCVBUF, rounds=1, seed=1)
    assert not any(r.failed for r in reports)


def test_thousand_ports_lost_events(scale_host, scale_manager):
    """A receive buffer too small for two events: nearly every burst is
    lost and rebuilt from a dump."""
    reports = _scenario(scale_host, scale_manager, 1, rounds=1, seed=2)
    assert sum(r.resyncs for r in reports) >= 3
    assert not any(r.failed for r in reports)


@pytest.mark.long
@pytest.mark.parametrize('rcvbuf', [watcher_mod.DEFAULT_RCVBUF, 1, 16384])
def test_thousand_ports_many_rounds(scale_host, scale_manager, rcvbuf):
    reports = _scenario(scale_host, scale_manager, rcvbuf, rounds=8,
                        seed=rcvbuf)
    assert not any(r.failed for r in reports)
