"""Fault injection on real devices: a killed privileged daemon, a killed
agent process, a lower device deleted under a running batch.

Each fault is injected while a large batch is in flight; what must hold
afterwards is the same every time: the caller gets a typed error, the
library recovers by itself on the next call, and after ``reconcile()``
the host matches the ledger (:mod:`.invariants`) with no leaked device.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn import ports
from vif_plug_dyn.privsep import linux_net
from vif_plug_dyn.tests.functional import fixtures
from vif_plug_dyn.tests.functional import invariants

NETWORKS = {
    'red': "<network type='bridge'><name>red</name>"
           "<bridge name='br-red'/></network>",
    'pool': "<network type='direct'><name>pool</name>"
            "<forward mode='bridge'>"
            "<interface dev='up0' maxConnections='120'/>"
            "<interface dev='up1' maxConnections='100'/>"
            "<interface dev='up2' maxConnections='80'/>"
            "</forward></network>",
    'solo': "<network type='direct'><name>solo</name>"
            "<forward mode='vepa'><interface dev='lone0'/></forward>"
            "</network>",
}
#: Bounded attempts at landing a fault inside a batch.
ATTEMPTS = 4


@pytest.fixture(scope='module')
def host():
    with fixtures.private_host('fault') as ns:
        for n in range(3):
            fixtures.uplink(ns, 'up%d' % n, 'pup%d' % n)
        yield ns


@pytest.fixture
def manager(host, tmp_path):
    with fixtures.managed(tmp_path, host.name, NETWORKS) as mgr:
        yield mgr


def _ports(network, count, salt):
    return [ports.Port(port_id=str(uuid.uuid4()),
                       mac='52:54:%02x:00:%02x:%02x' % (salt, n >> 8,
                                                        n & 0xff),
                       network=network) for n in range(count)]


def _owned(ns):
    return {name for name, link in invariants.dump(ns).items()
            if invariants.owner_tag(link) is not None}


def _count(ns, kind):
    out = ns.check_output(['ip', '-j', 'link', 'show', 'type', kind])
    return len(json.loads(out))


def _during(call, ns, kind, inject, timeout=60.0):
    """Run ``call()`` in a thread; once a device of ``kind`` exists in
    ``ns`` (the batch is under way), ``inject()``. Returns (injected,
    error or None)."""
    outcome = {}

    def target():
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome['error'] = exc

    before = _count(ns, kind)
    worker = threading.Thread(target=target)
    worker.start()
    injected = False
    deadline = time.monotonic() + timeout
    while worker.is_alive() and time.monotonic() < deadline:
        if _count(ns, kind) > before:
            inject()
            injected = True
            break
    worker.join(timeout)
    assert not worker.is_alive(), 'the batch never returned'
    return injected, outcome.get('error')


def _gone(pid, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open('/proc/%d/stat' % pid) as handle:
                if handle.read().rsplit(')', 1)[1].split()[0] == 'Z':
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def test_daemon_killed_mid_batch(host, manager):
    """SIGKILL the privileged daemon while it builds 1000 taps."""
    before = _owned(host)
    for attempt in range(ATTEMPTS):
        pid = linux_net.daemon_info()['pid']
        batch = _ports('red', 1000, attempt)
        injected, error = _during(
            lambda: manager.request_endpoints(batch, ['ethernet']),
            host, 'tun', lambda: os.kill(pid, signal.SIGKILL))
        if injected and error is not None:
            break
        # The batch beat the kill: start again with a fresh daemon.
        manager.release_endpoints([p.port_id for p in batch])
    else:
        pytest.fail('could not kill the daemon inside a batch in %d tries'
                    % ATTEMPTS)
    assert isinstance(error, exception.PrivilegedHelperFailed), repr(error)
    assert _gone(pid)
    # The failed call forgot its ports; the next call starts a new daemon.
    assert manager.ledger.list_ports() == []
    again = _ports('red', 3, 200)
    manager.request_endpoints(again, ['ethernet'])
    assert linux_net.daemon_info()['pid'] != pid
    result = manager.reconcile()
    assert invariants.check(host, manager) == []
    assert _owned(host) - before == {p.tap_name for p in again} | {'br-red'}
    leaked = {p.tap_name for p in batch} & set(invariants.dump(host))
    assert leaked == set()
    assert set(result['removed']) <= {p.tap_name for p in batch} | {
        'br-red'}


def test_lower_device_deleted_mid_batch(host, manager):
    """The only pool interface of a network vanishes while 1000 steered
    ports are being built on it."""
    before = invariants.dump(host)
    try:
        for attempt in range(ATTEMPTS):
            fixtures.uplink(host, 'lone0', 'plone0')
            batch = _ports('solo', 1000, 10 + attempt)
            injected, error = _during(
                lambda: manager.request_endpoints(batch, ['ethernet']),
                host, 'macvlan',
                lambda: host.run(['ip', 'link', 'del', 'lone0']))
            if injected and error is not None:
                break
            manager.release_endpoints([p.port_id for p in batch])
            host.run(['ip', 'link', 'del', 'lone0'], check=False)
        else:
            pytest.fail('could not delete the lower device inside a '
                        'batch in %d tries' % ATTEMPTS)
        assert isinstance(error, exception.VifPlugDynException), repr(error)
        # Nothing half-built: no device, no record, no allocation.
        after = invariants.dump(host)
        assert set(after) == set(before)
        assert manager.ledger.list_ports() == []
        assert manager.ledger.allocations() == {}
        assert manager.ledger.devices() == []
        assert invariants.check(host, manager) == []
    finally:
        host.run(['ip', 'link', 'del', 'lone0'], check=False)


def test_agent_killed_mid_plugging(host, tmp_path):
    """SIGKILL an agent process plugging 500 ports; a new agent on the
    same ledger reconciles and carries on."""
    net_dir = tmp_path / 'networks'
    net_dir.mkdir()
    for name, xml in NETWORKS.items():
        (net_dir / (name + '.xml')).write_text(xml)
    plan = []
    for n in range(500):
        network = 'red' if n % 2 else 'pool'
        plan.append([network, str(uuid.uuid4()),
                     '52:54:00:a0:%02x:%02x' % (n >> 8, n & 0xff)])
    plan_file = tmp_path / 'plan.json'
    plan_file.write_text(json.dumps(plan))
    agent = subprocess.Popen(
        [sys.executable, '-m', 'vif_plug_dyn.tests.functional.agent',
         '--netns', host.name, '--state', str(tmp_path / 'state'),
         '--networks', str(net_dir), '--plan', str(plan_file),
         '--batch', '25'],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        daemon = int(agent.stdout.readline().split()[1])
        done = 0
        while done < 150:
            line = agent.stdout.readline()
            assert line.startswith('DONE'), line
            done = int(line.split()[1])
        # NOTE(vpd): a few milliseconds into the next batch.
        time.sleep(0.01)
        agent.send_signal(signal.SIGKILL)
        agent.wait(timeout=30)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        agent.stdout.close()
    # The agent's daemon leaves with it (its channel closed).
    assert _gone(daemon)
    manager = fixtures.make_manager(tmp_path, host.name, NETWORKS)
    try:
        recorded = {r.port.port_id for r in manager.ledger.list_ports()}
        assert len(recorded) >= done
        result = manager.reconcile()
        assert invariants.check(host, manager) == []
        assert set(result['forgotten']) <= recorded
        # The new agent carries on with the whole plan: what is recorded
        # is kept, what was forgotten is built again, nothing is doubled.
        todo = [ports.Port(port_id=i, mac=mac, network=net)
                for net, i, mac in plan]
        for at in range(0, len(todo), 100):
            manager.request_endpoints(todo[at:at + 100], ['ethernet'])
        assert len(manager.ledger.list_ports()) == 500
        assert invariants.check(host, manager) == []
        loads = {res: len(held) for (_net, res), held in
                 manager.ledger.allocations('pool').items()}
        assert sum(loads.values()) == 250
        assert loads['up0'] <= 120 and loads['up1'] <= 100 and \
            loads['up2'] <= 80
        manager.release_endpoints([p.port_id for p in todo])
        assert invariants.check(host, manager) == []
        assert _owned(host) == set()
    finally:
        manager.close()
