"""The watcher with a thousand steered ports over twenty lower devices
(root, no QEMU): lower devices deleted, recreated and bounced in bursts,
with a normal receive buffer and with one too small for two events; the
host must equal the ledger after every burst."""

import random
import time

import pytest

from vif_plug_dyn import ledger as ledger_mod
from vif_plug_dyn.runtime import watcher as watcher_mod
from vif_plug_dyn.tests.functional import fixtures
from vif_plug_dyn.tests.functional.steering import \
    check_host_matches_ledger
from vif_plug_dyn.tests.functional.steering import direct_network as _direct
from vif_plug_dyn.tests.functional.steering import run_until
from vif_plug_dyn.tests.functional.steering import steered_port as _port


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
                        watcher_mod.DEFAULT_RCVBUF, rounds=3, seed=1)
    assert not any(r.failed for r in reports)


def test_thousand_ports_lost_events(scale_host, scale_manager):
    """A receive buffer too small for two events: nearly every burst is
    lost and rebuilt from a dump."""
    reports = _scenario(scale_host, scale_manager, 1, rounds=2, seed=2)
    assert sum(r.resyncs for r in reports) >= 6
    assert not any(r.failed for r in reports)


@pytest.mark.long
@pytest.mark.parametrize('rcvbuf', [watcher_mod.DEFAULT_RCVBUF, 1, 16384])
def test_thousand_ports_many_rounds(scale_host, scale_manager, rcvbuf):
    reports = _scenario(scale_host, scale_manager, rcvbuf, rounds=8,
                        seed=rcvbuf)
    assert not any(r.failed for r in reports)

