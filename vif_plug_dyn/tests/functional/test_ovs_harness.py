"""Functional tests: a private Open vSwitch and the OVSDB client, for real.

Everything happens in network namespaces made here: a "switch" namespace
runs ovsdb-server + ovs-vswitchd (userspace ``netdev`` datapath, since this
kind of host has no openvswitch kernel module), and two "guest" namespaces
are wired to its bridge with veth pairs, so a ping between them crosses the
userspace switch.  Addresses come from TEST-NET-1 (192.0.2.0/24) and exist
only inside these namespaces.

Needs root and the Debian package openvswitch-switch; skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from vif_plug_dyn import ovsdb
from vif_plug_dyn.tests.functional.harness import ovs as ovs_harness
from vif_plug_dyn.tests.functional.harness._netns import NetNamespace
from vif_plug_dyn.tests.functional.harness.ovs import OpenVSwitch

_MISSING = ovs_harness.missing_binaries()
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0,
                       reason='needs root (network namespaces, OVS)'),
    pytest.mark.skipif(bool(_MISSING),
                       reason='Open vSwitch not installed (Debian package '
                       'openvswitch-switch); missing: %s'
                       % ', '.join(_MISSING)),
]

BRIDGE = 'br-vpd'
HOST_OVS_RUNDIR = '/var/run/openvswitch'


def _host_rundir_state() -> list[str] | None:
    try:
        return sorted(os.listdir(HOST_OVS_RUNDIR))
    except FileNotFoundError:
        return None


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        with open('/proc/%d/stat' % pid) as f:
            state = f.read().rsplit(')', 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != 'Z'


def _vsctl_interfaces(ovs: OpenVSwitch) -> dict[str, dict[str, Any]]:
    """Interface rows as ovs-vsctl sees them: {name: {column: value}}."""
    out = json.loads(ovs.vsctl('--format=json', '--columns=name,type,'
                               'external_ids,ofport', 'list', 'Interface'))
    rows = {}
    for row in out['data']:
        rec = dict(zip(out['headings'], row, strict=True))
        ext = rec['external_ids']
        rec['external_ids'] = dict(ext[1]) if ext[0] == 'map' else {}
        rows[rec['name']] = rec
    return rows


def _ping(ns: NetNamespace, addr: str, count: int = 3) -> bool:
    res = ns.run('ping', '-n', '-c', str(count), '-i', '0.2', '-W', '2',
                 addr, check=False, timeout=30)
    return res.returncode == 0


class _CountingClient(ovsdb.OvsdbClient):
    """Records every transaction so tests can count the writes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.transactions: list[list[dict[str, Any]]] = []

    def transact(self, ops: Any) -> list[dict[str, Any]]:
        ops = list(ops)
        self.transactions.append(ops)
        return super().transact(ops)

    def writes(self) -> list[list[dict[str, Any]]]:
        return [t for t in self.transactions
                if any(op['op'] not in ('select', 'wait') for op in t)]


@pytest.fixture
def switch() -> Iterator[tuple[NetNamespace, OpenVSwitch]]:
    with NetNamespace('vpdsw') as ns, OpenVSwitch(ns.name) as ovs:
        yield ns, ovs


@pytest.fixture
def client(switch: tuple[NetNamespace, OpenVSwitch]
           ) -> Iterator[_CountingClient]:
    with _CountingClient(switch[1].db_sock, timeout=30) as c:
        yield c


def test_daemons_are_private_and_stopped() -> None:
    before = _host_rundir_state()
    with NetNamespace('vpdsw') as ns:
        with OpenVSwitch(ns.name) as ovs:
            workdir = ovs.workdir
            pids = (ovs.ovsdb_pid, ovs.vswitchd_pid)
            assert all(_alive(p) for p in pids)
            assert ovs.db_sock.startswith(workdir + os.sep)
            # The pid files the daemons wrote name the processes we hold.
            for name, pid in zip(('ovsdb-server', 'ovs-vswitchd'), pids,
                                 strict=True):
                with open(ovs.path(name + '.pid')) as f:
                    assert int(f.read()) == pid
            # The harness waited for ovs-vswitchd to apply the database.
            cfg = ovs.vsctl('get', 'Open_vSwitch', '.', 'cur_cfg')
            assert int(cfg) >= 1
            # vswitchd runs inside the namespace: the devices of a netdev
            # bridge appear there and not in ours.
            ovs.vsctl('add-br', 'br-priv', '--', 'set', 'Bridge',
                      'br-priv', 'datapath_type=netdev')
            links = ns.ip('-o', 'link', 'show').stdout
            assert 'ovs-netdev' in links and 'br-priv' in links
            host_links = subprocess.run(
                ['ip', '-o', 'link', 'show'], capture_output=True,
                text=True, check=True).stdout
            assert 'br-priv' not in host_links
        assert not any(_alive(p) for p in pids)
        assert not os.path.exists(workdir)
    assert _host_rundir_state() == before


def test_two_instances_coexist() -> None:
    with NetNamespace('vpdsw') as ns1, NetNamespace('vpdsw') as ns2, \
            OpenVSwitch(ns1.name) as ovs1, OpenVSwitch(ns2.name) as ovs2:
        assert ovs1.db_sock != ovs2.db_sock
        with ovsdb.OvsdbClient(ovs1.db_sock) as c1, \
                ovsdb.OvsdbClient(ovs2.db_sock) as c2:
            c1.ensure_bridge('br-one')
            c2.ensure_bridge('br-two')
            c1.wait_for_vswitchd()
            c2.wait_for_vswitchd()
        assert ovs1.vsctl('list-br').split() == ['br-one']
        assert ovs2.vsctl('list-br').split() == ['br-two']
        assert 'br-one' in ns1.ip('-o', 'link', 'show').stdout
        assert 'br-one' not in ns2.ip('-o', 'link', 'show').stdout
        pids = [ovs1.ovsdb_pid, ovs1.vswitchd_pid,
                ovs2.ovsdb_pid, ovs2.vswitchd_pid]
        assert len(set(pids)) == 4
    assert not any(_alive(p) for p in pids)


def test_cleanup_when_the_body_fails() -> None:
    with NetNamespace('vpdsw') as ns:
        with pytest.raises(RuntimeError, match='boom'):
            with OpenVSwitch(ns.name) as ovs:
                pids = (ovs.ovsdb_pid, ovs.vswitchd_pid)
                workdir = ovs.workdir
                raise RuntimeError('boom')
        assert not any(_alive(p) for p in pids)
        assert not os.path.exists(workdir)


def test_daemons_die_with_a_killed_test_process() -> None:
    # A test process killed with SIGKILL runs no cleanup at all: the
    # daemons must still go (parent-death signal), not linger.
    script = (
        'import sys, time\n'
        'from vif_plug_dyn.tests.functional.harness.ovs import OpenVSwitch\n'
        'with OpenVSwitch(sys.argv[1]) as ovs:\n'
        '    print(ovs.ovsdb_pid, ovs.vswitchd_pid, ovs.workdir,'
        ' flush=True)\n'
        '    time.sleep(120)\n')
    repo = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))))
    with NetNamespace('vpdsw') as ns:
        child = subprocess.Popen([sys.executable, '-c', script, ns.name],
                                 stdout=subprocess.PIPE, text=True,
                                 cwd=repo)
        workdir = ''
        pids: list[int] = []
        try:
            assert child.stdout is not None
            line = child.stdout.readline().split()
            assert len(line) == 3, 'harness did not start in the child'
            pids = [int(line[0]), int(line[1])]
            workdir = line[2]
            assert all(_alive(p) for p in pids)
            child.kill()
            child.wait(10)
            deadline = time.monotonic() + 10
            while any(_alive(p) for p in pids) and \
                    time.monotonic() < deadline:
                time.sleep(0.05)
            assert not any(_alive(p) for p in pids)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(10)
            if child.stdout is not None:
                child.stdout.close()
            for pid in pids:   # if the assertion failed: do not leak them
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
            if workdir.startswith('/tmp/vpdovs.'):
                shutil.rmtree(workdir, ignore_errors=True)


def test_start_in_missing_namespace_fails_cleanly() -> None:
    with pytest.raises(ovs_harness.OvsHarnessError, match='namespace'):
        with OpenVSwitch('vpd-no-such-netns'):
            pass


def test_ports_external_ids_traffic_and_bulk_delete(
        switch: tuple[NetNamespace, OpenVSwitch],
        client: _CountingClient) -> None:
    sw, ovs = switch
    client.ensure_bridge(BRIDGE, datapath_type='netdev',
                         external_ids={'owner': 'vif_plug_dyn-test'})
    with NetNamespace('vpdg1') as g1, NetNamespace('vpdg2') as g2:
        # Two "guests", each a namespace whose eth0 is the far end of a
        # veth pair; the near ends become OVS ports.  Plus two plain taps
        # (what a hypervisor would hand over) to add alongside.
        ports: list[ovsdb.PortSpec] = []
        for i, (guest, mac) in enumerate(((g1, '02:00:00:00:00:01'),
                                          (g2, '02:00:00:00:00:02')), 1):
            near = 'vpdv%d' % i
            sw.ip('link', 'add', near, 'type', 'veth', 'peer', 'name',
                  'eth0', 'netns', guest.name)
            sw.ip('link', 'set', near, 'up')
            guest.ip('link', 'set', 'eth0', 'address', mac)
            guest.ip('addr', 'add', '192.0.2.%d/24' % i, 'dev', 'eth0')
            guest.ip('link', 'set', 'eth0', 'up')
            ports.append((near, '', {
                'iface-id': '00000000-0000-4000-8000-00000000000%d' % i,
                'attached-mac': mac,
                'vm-uuid': '11111111-0000-4000-8000-00000000000%d' % i,
            }))
        for i in (3, 4):
            tap = 'vpdtap%d' % i
            sw.ip('tuntap', 'add', tap, 'mode', 'tap')
            sw.ip('link', 'set', tap, 'up')
            ports.append((tap, '', {
                'iface-id': '00000000-0000-4000-8000-00000000000%d' % i,
                'attached-mac': '02:00:00:00:00:0%d' % i,
                'vm-uuid': '11111111-0000-4000-8000-00000000000%d' % i,
            }))
        expected = {name: dict(ext) for name, _t, ext in ports}

        # Before the ports exist the guests cannot reach each other.
        assert not _ping(g1, '192.0.2.2', count=1)

        client.transactions.clear()
        added = client.add_ports(BRIDGE, ports, wait=30)
        assert sorted(added) == sorted(expected)
        assert len(client.writes()) == 1, 'all ports in one transaction'

        # Seen by our client...
        assert client.list_ports(BRIDGE) == expected
        # ...and by ovs-vsctl, with real OpenFlow port numbers assigned
        # by ovs-vswitchd (so it has opened every device).
        assert sorted(ovs.vsctl('list-ports', BRIDGE).split()) == \
            sorted(expected)
        rows = _vsctl_interfaces(ovs)
        for name, ext in expected.items():
            assert rows[name]['external_ids'] == ext
            assert rows[name]['type'] == ''
            assert isinstance(rows[name]['ofport'], int)
            assert rows[name]['ofport'] > 0, rows[name]

        # Adding the same ports again is a no-op write of the same ids.
        assert client.add_ports(BRIDGE, ports) == []
        assert client.list_ports(BRIDGE) == expected

        # Real traffic across the userspace bridge, both ways.
        assert _ping(g1, '192.0.2.2'), ovs.log()[-2000:]
        assert _ping(g2, '192.0.2.1'), ovs.log()[-2000:]

        # Delete all four with one write (one Bridge.ports mutation).
        client.transactions.clear()
        removed = client.del_ports(BRIDGE, list(expected) + ['not-a-port'],
                                   wait=30)
        assert sorted(removed) == sorted(expected)
        writes = client.writes()
        assert len(writes) == 1
        # optimistic check, the Bridge.ports deletion, next_cfg bump
        assert [op['op'] for op in writes[0]] == ['wait', 'mutate',
                                                  'mutate', 'select']
        assert writes[0][1]['mutations'][0][:2] == ['ports', 'delete']
        assert client.list_ports(BRIDGE) == {}
        assert ovs.vsctl('list-ports', BRIDGE).split() == []
        remaining = _vsctl_interfaces(ovs)
        assert not set(expected) & set(remaining)
        # The taps themselves are left alone (type '' ports are only
        # opened by OVS, not owned): the driver deletes them.
        assert 'vpdtap3' in sw.ip('-o', 'link', 'show').stdout

        # And the cable is really unplugged.
        assert not _ping(g1, '192.0.2.2', count=1)


def test_errors_from_a_real_server(
        switch: tuple[NetNamespace, OpenVSwitch],
        client: _CountingClient) -> None:
    _sw, ovs = switch
    client.ensure_bridge('br-a')
    client.ensure_bridge('br-b')
    client.add_ports('br-a', [('p1', 'internal', {'iface-id': 'x'})])

    with pytest.raises(ovsdb.OvsdbError, match='no bridge named br-z'):
        client.add_ports('br-z', [('p2', 'internal', {})])
    with pytest.raises(ovsdb.OvsdbError, match='already exists'):
        client.add_ports('br-a', [('p1', 'internal', {})], may_exist=False)
    with pytest.raises(ovsdb.OvsdbError, match='another bridge'):
        client.add_ports('br-b', [('p1', 'internal', {})])
    with pytest.raises(ovsdb.OvsdbError, match='no port p9'):
        client.del_ports('br-a', ['p1', 'p9'], if_exists=False)
    # Nothing was deleted by the refused call.
    assert list(client.list_ports('br-a')) == ['p1']

    # A server-side error names the operation that failed.
    bad = {'op': 'insert', 'table': 'No_Such_Table', 'row': {}}
    with pytest.raises(ovsdb.OvsdbError) as info:
        client.transact([{'op': 'comment', 'comment': 'x'}, bad])
    assert info.value.error == 'syntax error'
    assert 'No_Such_Table' in str(info.value)

    # A commit-time error: a second Bridge named br-a, referenced from
    # the root row (unreferenced, it would just be garbage-collected),
    # breaks the Bridge name index.
    dup = [{'op': 'insert', 'table': 'Bridge', 'uuid-name': 'b',
            'row': {'name': 'br-a'}},
           {'op': 'mutate', 'table': 'Open_vSwitch', 'where': [],
            'mutations': [['bridges', 'insert',
                           ['set', [['named-uuid', 'b']]]]]}]
    with pytest.raises(ovsdb.OvsdbError) as info:
        client.transact(dup)
    assert info.value.error == 'constraint violation'
    assert info.value.op is None   # the commit failed, not an operation

    # The merge of external_ids keeps other keys.
    client.add_ports('br-a', [('p1', 'internal', {'vm-uuid': 'v'})])
    assert client.list_ports('br-a') == {'p1': {'iface-id': 'x',
                                                'vm-uuid': 'v'}}
    assert client.del_bridge('br-a') is True
    assert client.del_bridge('br-a') is False
    assert ovs.vsctl('list-br').split() == ['br-b']
    # Port and Interface rows went with the bridge (garbage collection).
    assert 'p1' not in _vsctl_interfaces(ovs)
