"""Concurrency on real devices: 16 threads, two managers on one ledger,
random plug / unplug / connect / move / release on shared ports, bridges
and pools with connection limits.

Only typed errors may come back (a port another thread holds, a full
pool...); afterwards every allocation has an owner, no pool interface is
over its limit and the host matches the ledger (:mod:`.invariants`).

The default run is 16 threads x 50 operations; 16 x 500 is marked
``long`` (``tox -e concurrency-full``).
"""

import collections
import random
import threading
import uuid

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn import ports
from vif_plug_dyn.tests.functional import fixtures
from vif_plug_dyn.tests.functional import invariants

NETWORKS = {
    'red': "<network type='bridge'><name>red</name>"
           "<bridge name='br-red'/></network>",
    'blue': "<network type='bridge'><name>blue</name>"
            "<bridge name='br-blue'/></network>",
    'pool': "<network type='direct'><name>pool</name>"
            "<forward mode='bridge'>"
            "<interface dev='up0' maxConnections='6'/>"
            "<interface dev='up1' maxConnections='4'/>"
            "</forward></network>",
    'pool2': "<network type='direct'><name>pool2</name>"
             "<forward mode='vepa'>"
             "<interface dev='up2' maxConnections='5'/>"
             "</forward></network>",
}
THREADS = 16
#: Ports shared by every thread: contention on the same ports is the point.
PORTS = 48


@pytest.fixture(scope='module')
def host():
    with fixtures.private_host('conc') as ns:
        for n in range(3):
            fixtures.uplink(ns, 'up%d' % n, 'wire%d' % n)
        yield ns


def _work(managers, pool, operations, seed, errors, counts):
    rng = random.Random(seed)
    names = list(NETWORKS)
    for _ in range(operations):
        manager = rng.choice(managers)
        port = rng.choice(pool)
        action = rng.choice(['plug', 'plug', 'unplug', 'connect', 'move',
                             'release', 'batch'])
        try:
            if action == 'plug':
                manager.request_endpoint(
                    port.on_network(rng.choice(names)), ['ethernet'],
                    connected=rng.random() < 0.8)
            elif action == 'batch':
                group = rng.sample(pool, 4)
                network = rng.choice(names)
                manager.request_endpoints(
                    [p.on_network(network) for p in group], ['ethernet'])
            elif action == 'unplug':
                manager.disconnect(port.port_id)
            elif action == 'connect':
                manager.connect(port.port_id)
            elif action == 'move':
                manager.connect(port.port_id, rng.choice(names))
            else:
                manager.release_endpoint(port.port_id)
            counts[action + ' ok'] += 1
        except exception.VifPlugDynException as exc:
            counts['%s %s' % (action, type(exc).__name__)] += 1
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append('%s on %s: %r' % (action, port.port_id, exc))


def _run(host, tmp_path, operations):
    managers = [fixtures.make_manager(tmp_path, host.name, NETWORKS)
                for _ in range(2)]
    pool = [ports.Port(port_id=str(uuid.uuid4()),
                       mac='52:54:00:c0:00:%02x' % n, network='red')
            for n in range(PORTS)]
    errors: list[str] = []
    counts: collections.Counter = collections.Counter()
    threads = [threading.Thread(target=_work, args=(
        managers, pool, operations, 1000 + n, errors, counts))
        for n in range(THREADS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=1800)
        assert not any(t.is_alive() for t in threads), 'a thread hangs'
        assert errors == []
        # Every thread got through real work, not only refusals.
        assert counts['plug ok'] + counts['batch ok'] > THREADS
        assert counts['move ok'] > 0 and counts['release ok'] > 0
        assert invariants.check(host, managers[0]) == []
        # Nothing is left half-built to reconcile, and reconciling
        # changes nothing.
        result = managers[0].reconcile()
        assert (result['forgotten'], result['removed']) == ([], [])
        assert invariants.check(host, managers[0]) == []
        return counts
    finally:
        managers[0].release_endpoints([p.port_id for p in pool])
        assert invariants.check(host, managers[0]) == []
        assert {name for name, link in invariants.dump(host).items()
                if invariants.owner_tag(link) is not None} == set()
        for manager in managers:
            manager.close()


def test_sixteen_threads_short(host, tmp_path):
    print(sorted(_run(host, tmp_path, 50).items()))


@pytest.mark.long
def test_sixteen_threads_full(host, tmp_path):
    print(sorted(_run(host, tmp_path, 500).items()))
