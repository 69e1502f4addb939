"""The privileged boundary under attack, with a policy in force.

A real daemon in a private namespace enforces a root-owned policy (given
the way a deployment gives it: a file named by a configuration file on
the daemon's command line). Everything here is what a compromised
unprivileged process could try through the entrypoints: link-group
tricks, adopting ``lo``, uplinks and operator bridges, changing an adopted
device beyond what the policy allows, putting the library's devices on
foreign bridges, stacking macvlan/macvtap/VLAN devices on foreign lower
devices, configuring VFs of a foreign PF, oversized messages and a daemon
killed in the middle of a batch. Each is refused with a typed error and
the namespace's link, qdisc and address dumps are compared before and
after.
"""

import os
import signal
import threading
import time
import uuid

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn import host as host_mod
from vif_plug_dyn import ports
from vif_plug_dyn import privsep
from vif_plug_dyn.privsep import linux_net
from vif_plug_dyn.privsep import ops
from vif_plug_dyn.tests.functional import fixtures
from vif_plug_dyn.tests.functional.test_privsep_attack import _state
from vif_plug_dyn.tests.functional.test_privsep_attack import changes
from vif_plug_dyn.tests.unit.drivers.test_hostdev import make_pf

POLICY = """
[adopt]
opad0 = state, mtu, master:opbr1
[bridges]
opbr1 =
[lower]
oplow0 = bridge, vepa
[vf]
oppf0 =
"""
#: The operator's devices the policy does not name.
FOREIGN = ['lo', 'opbr0', 'opv0', 'opv1']
DENIED = (exception.PolicyDenied,)


@pytest.fixture(scope='module')
def host():
    with fixtures.private_host('atkpol', policy=POLICY) as ns:
        # NOTE(vpd): no duplicate address detection: the address dump
        # must not change by itself while the tests compare it.
        for conf in ('all', 'default'):
            ns.run(['sysctl', '-q', '-w',
                    'net.ipv6.conf.%s.accept_dad=0' % conf])
        # NOTE(vpd): bridges with a MAC of their own: one that takes its
        # ports' would keep a MAC a test's port gave it.
        for number, bridge in enumerate(('opbr0', 'opbr1'), 1):
            ns.run(['ip', 'link', 'add', bridge, 'address',
                    '02:00:00:00:00:%02x' % number, 'type', 'bridge'])
        for name, peer in (('opv0', 'opv1'), ('opad0', 'opad1'),
                           ('oplow0', 'oplow1'), ('oppf0', 'oppf1')):
            ns.run(['ip', 'link', 'add', name, 'type', 'veth', 'peer',
                    'name', peer])
        ns.run(['ip', 'link', 'set', 'opv1', 'master', 'opbr0'])
        ns.run(['ip', 'link', 'set', 'opad0', 'alias', 'uplink-a'])
        for name in ('opbr0', 'opbr1', 'opv0', 'opv1', 'opad0', 'opad1',
                     'oplow0', 'oplow1'):
            ns.run(['ip', 'link', 'set', name, 'up'])
        host_mod.HostNetwork(tag='mine').run([
            ops.create_tap('tapmine0'),
            ops.create_bridge('brmine0', mac='02:00:00:00:00:10')])
        # NOTE(vpd): a bridge keeps the offload limits (tso_max_size...)
        # of the first port it had: give the bridges the tests join one
        # now, so the dumps compare what the tests do.
        for bridge in ('opbr1', 'brmine0'):
            ns.run(['ip', 'tuntap', 'add', 'dev', 'tapwarm', 'mode', 'tap'])
            ns.run(['ip', 'link', 'set', 'tapwarm', 'master', bridge])
            ns.run(['ip', 'link', 'del', 'tapwarm'])
        # Another port's tap, made in a batch of its own.
        host_mod.HostNetwork(tag='other').create_tap('tapother0')
        time.sleep(1)
        yield ns


def _refused(ns, call, *expected):
    """``call()`` raises one of ``expected`` and changes nothing."""
    before = _state(ns)
    with pytest.raises(expected or (exception.VifPlugDynException,)) as err:
        call()
    assert isinstance(err.value, exception.VifPlugDynException)
    after = _state(ns)
    assert after == before, changes(before, after)
    return err.value


def _unchanged(ns, before):
    after = _state(ns)
    assert after == before, changes(before, after)


def _every_way(ns, op, *expected):
    """Refused through HostNetwork, straight at the daemon, and at the
    end of a batch that made a device first (which is undone)."""
    mine = host_mod.HostNetwork(tag='atk')
    _refused(ns, lambda: mine.run([op]), *expected)
    _refused(ns, lambda: linux_net.apply_one(op), *expected)
    _refused(ns, lambda: mine.run([ops.create_tap('tapatk0'), op]),
             *expected)


def test_the_daemon_reads_its_policy(host):
    info = linux_net.daemon_info()
    assert info['policy']['enforcing'] is True
    assert {k: list(v) for k, v in info['policy']['adopt'].items()} == {
        'opad0': ['master:opbr1', 'mtu', 'state']}
    assert info['netns_id'].startswith('c')


# -- link groups --------------------------------------------------------------

@pytest.mark.parametrize('op', [
    {'op': 'set_link', 'name': 'tapmine0', 'group': 2 ** 31 + 5},
    {'op': 'set_link', 'name': 'tapmine0', 'group': 0},
    {'op': 'create_tap', 'name': 'tapatk1', 'group': 2 ** 31 + 5},
    {'op': 'create_bridge', 'name': 'bratk1', 'group': 1},
    {'op': 'create_macvlan', 'name': 'mvatk1', 'lower': 'oplow0',
     'group': 1}], ids=lambda op: op['op'])
def test_callers_cannot_set_link_groups(host, op):
    for call in (lambda: linux_net.apply([op]),
                 lambda: linux_net.apply_one(op)):
        err = _refused(host, call, exception.InvalidField)
        assert 'group' in str(err)


def test_a_group_delete_takes_exactly_the_devices_asked_for(host):
    """Root put an operator's bridge and another port's tap in the link
    group of a batch's taps: deleting some, then the rest, of those taps
    takes exactly them."""
    before = _state(host)
    mine = host_mod.HostNetwork(tag='grp')
    names = ['tapgrp%d' % i for i in range(4)]
    mine.run([ops.create_tap(n) for n in names])
    group = mine.get_link(names[0])['group']
    strangers = {'opbr0': mine.get_link('opbr0')['group'],
                 'tapother0': mine.get_link('tapother0')['group']}
    for name in strangers:
        fixtures.set_link_group(host.name, name, group)
    try:
        assert mine.delete(names[:2])['deleted'] == names[:2]
        assert mine.delete(names[2:])['deleted'] == names[2:]
        for name in strangers:
            assert mine.get_link(name)['group'] == group
    finally:
        for name, old in strangers.items():
            fixtures.set_link_group(host.name, name, old)
    _unchanged(host, before)


# -- adoption -----------------------------------------------------------------

@pytest.mark.parametrize('name', ['lo', 'opbr0', 'opv0', 'opv1', 'oplow0',
                                  'oppf0'])
def test_adopting_what_the_policy_does_not_name(host, name):
    _every_way(host, ops.adopt(name, 'atk'), *DENIED)


def test_an_adopted_device_changes_only_as_the_policy_allows(host):
    before = _state(host)
    mine = host_mod.HostNetwork(tag='atk')
    result = mine.run([ops.adopt('opad0', 'atk')])[0]
    assert result['previous_alias'] == 'uplink-a'
    try:
        # Allowed: state, MTU, the one master named.
        mine.run([ops.set_link('opad0', mtu=1400, up=False),
                  ops.set_link('opad0', master='opbr1'),
                  ops.set_nomaster('opad0')])
        for op in (ops.set_mac('opad0', '52:54:00:00:00:42'),
                   ops.set_master('opad0', 'opbr0'),
                   ops.set_master('opad0', 'brmine0'),
                   ops.add_address('opad0', '192.0.2.9', 24),
                   ops.set_bridge('opad0', stp=True),
                   ops.release('opad0', 'pwned'),
                   ops.delete(['opad0']),
                   ops.set_alias('opad0', 'mine')):
            err = _refused(host, lambda: mine.run([op]),
                           exception.PolicyDenied, exception.DeviceNotOwned,
                           exception.InvalidField)
            if op['op'] in ('set_link', 'add_address', 'set_bridge') and \
                    op.get('tag') is None:
                assert isinstance(err, exception.PolicyDenied), op
        mine.run([ops.set_link('opad0', mtu=1500, up=True)])
    finally:
        # Only the alias it had comes back.
        mine.run([ops.release('opad0', 'uplink-a')])
    _unchanged(host, before)


# -- masters ------------------------------------------------------------------

@pytest.mark.parametrize('op', [
    ops.create_tap('tapatk2', master='opbr0'),
    ops.set_master('tapmine0', 'opbr0'),
    ops.set_master('tapmine0', 'opv0'),
    ops.create_veth('vatk0', 'vatk1', master='opbr0'),
    ops.create_veth('vatk0', 'vatk1', peer_master='opbr0'),
    ops.create_tap('tapatk2', master='opad0'),
], ids=lambda op: '%s-%s' % (op['op'], op['name']))
def test_the_librarys_devices_stay_off_foreign_bridges(host, op):
    _every_way(host, op, *DENIED)


def test_bridges_the_policy_names_and_the_librarys_own(host):
    before = _state(host)
    mine = host_mod.HostNetwork(tag='atk')
    mine.run([ops.create_tap('tapok0', master='opbr1'),
              ops.create_tap('tapok1', master='brmine0')])
    assert mine.get_link('tapok0')['master_index'] == \
        mine.get_link('opbr1')['index']
    mine.delete(['tapok0', 'tapok1'])
    _unchanged(host, before)


def test_a_borrowed_tap_joins_only_what_the_librarys_devices_may(host):
    """A hypervisor's tap (made by root here, no alias) borrowed by the
    library: its cable goes only to the library's bridges and those the
    policy names."""
    host.run(['ip', 'tuntap', 'add', 'dev', 'tapnova0', 'mode', 'tap'])
    try:
        before = _state(host)
        mine = host_mod.HostNetwork()
        mine.run([ops.borrow('tapnova0', 'port-nova')])
        for master in ('opbr0', 'opv0', 'opad0'):
            _refused(host, lambda: mine.run([ops.set_master('tapnova0',
                                                            master)]),
                     *DENIED)
        mine.run([ops.set_master('tapnova0', 'opbr1')])
        mine.run([ops.set_master('tapnova0', 'brmine0')])
        mine.run([ops.set_nomaster('tapnova0'), ops.set_state('tapnova0',
                                                               False),
                  ops.give_back('tapnova0')])
        _unchanged(host, before)
    finally:
        host.run(['ip', 'link', 'del', 'tapnova0'])


# -- lower devices ------------------------------------------------------------

@pytest.mark.parametrize('op', [
    ops.create_macvlan('mvatk0', 'opv0'),
    ops.create_macvtap('mtatk0', 'opv0'),
    ops.create_macvlan('mvatk0', 'lo'),
    ops.create_macvlan('mvatk0', 'oplow0', mode='passthrough'),
    ops.create_macvtap('mtatk0', 'oplow0', mode='passthrough'),
    ops.create_macvtap('mtatk0', 'oplow0', mode='private'),
    ops.create_macvlan('mvatk0', 'opbr1'),
    ops.create_vlan('vlatk0', 'opv0', 5),
    ops.create_vlan('vlatk0', 'oplow0', 5),
], ids=lambda op: '%s-%s-%s' % (op['op'], op['lower'], op.get('mode')))
def test_no_stacking_on_foreign_lower_devices(host, op):
    _every_way(host, op, *DENIED)


def test_lower_devices_the_policy_names_and_the_librarys_own(host):
    before = _state(host)
    mine = host_mod.HostNetwork(tag='atk')
    mine.run([ops.create_macvlan('mvok0', 'oplow0', mode='vepa'),
              ops.create_macvtap('mtok0', 'oplow0', mode='bridge'),
              ops.create_veth('vok0', 'vok1'),
              ops.create_macvlan('mvok1', 'vok0', mode='passthrough')])
    mine.delete(['mvok0', 'mtok0', 'mvok1', 'vok0'])
    _unchanged(host, before)


# -- VFs ----------------------------------------------------------------------

def test_vfs_of_a_foreign_pf(host):
    mine = host_mod.HostNetwork()
    for pf in ('opv0', 'lo', 'oplow0'):
        _refused(host, lambda: mine.set_vf(pf, 0, mac='52:54:00:00:00:07'),
                 *DENIED)
        _refused(host, lambda: linux_net.apply_one(ops.set_vf(
            pf, 0, spoofchk=False)), *DENIED)
    # The PF the policy names gets through to the kernel (a veth has no
    # VFs: the kernel's own refusal, typed).
    err = _refused(host, lambda: mine.set_vf('oppf0', 0, spoofchk=True),
                   exception.NetlinkOperationFailed)
    assert err.errno is not None


def test_a_hostdev_network_the_caller_defined_on_a_foreign_pf(host,
                                                              tmp_path):
    """The unprivileged side may write network definitions; the policy
    (root's) does not follow them."""
    host.run(['ip', 'link', 'add', 'ens1f0', 'type', 'veth', 'peer',
              'name', 'ens1f0p'])
    make_pf(tmp_path / 'sys', 'ens1f0', 2)
    networks = {'grab': "<network type='hostdev'><name>grab</name>"
                        "<forward mode='hostdev'><pf dev='ens1f0'/>"
                        "</forward></network>"}
    mgr = fixtures.make_manager(tmp_path, host.name, networks,
                                sysfs_root=str(tmp_path / 'sys'))
    try:
        port = ports.Port(port_id=str(uuid.uuid4()),
                          mac='52:54:00:60:00:09', network='grab')
        _refused(host, lambda: mgr.request_endpoint(port, ['hostdev']),
                 *DENIED)
        assert mgr.ledger.allocations() == {}
        assert mgr.ledger.list_ports() == []
    finally:
        mgr.close()
        host.run(['ip', 'link', 'del', 'ens1f0'])


# -- sizes --------------------------------------------------------------------

def _hwm_kb(pid):
    with open('/proc/%d/status' % pid, encoding='ascii') as handle:
        for line in handle:
            if line.startswith('VmHWM:'):
                return int(line.split()[1])
    raise AssertionError('no VmHWM')


def test_oversized_calls_are_refused_before_sending(host):
    pid = linux_net.daemon_info()['pid']
    huge = 'x' * (privsep.MAX_MESSAGE_BYTES + 1)
    mine = host_mod.HostNetwork()
    for call in (lambda: linux_net.apply([{'op': 'create_tap',
                                           'name': huge}]),
                 lambda: linux_net.get_link(huge),
                 lambda: mine.get_link(huge),
                 lambda: linux_net.apply(
                     [{'op': 'delete', 'names': ['t%07d' % n
                                                 for n in range(80000)]}]
                     * 60)):
        err = _refused(host, call, exception.PrivilegedMessageTooLarge)
        assert len(str(err)) < 300
    assert linux_net.daemon_info()['pid'] == pid


def test_large_values_sent_anyway_come_back_short(host):
    """A caller that skips the library's check sends a 50 MB name (within
    what the channel carries): the daemon refuses it typed, with a short
    message, without a memory spike, and keeps serving."""
    pid = linux_net.daemon_info()['pid']
    channel = privsep.vif_plug_dyn_pctxt.channel
    name = 'y' * 50_000_000
    for entry, args in (('get_link', (name,)),
                        ('apply', ([{'op': 'create_tap', 'name': name}],)),
                        ('apply', ([{'op': 'delete', name: 1}],)),
                        ('apply', (name,))):
        before = _state(host)
        with pytest.raises(exception.InvalidField) as err:
            channel.remote_call('vif_plug_dyn.privsep.linux_net.' + entry,
                                args, {}, None)
        assert len(str(err.value)) < 1000
        _unchanged(host, before)
    del name
    assert linux_net.daemon_info()['pid'] == pid
    # NOTE(vpd): repeating the value whole once peaked at 696 MB.
    assert _hwm_kb(pid) < 400 * 1024


def test_a_message_beyond_the_channel_ends_only_that_daemon(host):
    """More than oslo.privsep's channel carries (100 MiB), written
    straight to the socket: the daemon ends (as it would if the caller
    closed the socket); the library starts a new one, typed errors only,
    host unchanged."""
    before = _state(host)
    pid = linux_net.daemon_info()['pid']
    channel = privsep.vif_plug_dyn_pctxt.channel
    with pytest.raises(OSError):
        channel.remote_call('vif_plug_dyn.privsep.linux_net.get_link',
                            ('z' * 120_000_000,), {}, 60)
    deadline = time.monotonic() + 10
    while privsep._alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not privsep._alive(pid)
    mine = host_mod.HostNetwork()
    assert mine.get_link('lo')['name'] == 'lo'
    assert linux_net.daemon_info()['pid'] != pid
    _unchanged(host, before)


# -- a daemon killed in a batch -----------------------------------------------

def _foreign(state):
    links, qdiscs, addresses = state
    return ([link for link in links if link['ifname'] in FOREIGN + [
        'opbr1', 'opad0', 'oplow0', 'oppf0', 'tapmine0', 'tapother0']],
            qdiscs, [a for a in addresses if a['ifname'] in FOREIGN])


@pytest.mark.parametrize('entry', ['raw', 'host'])
def test_a_daemon_killed_mid_batch(host, entry):
    """The caller gets PrivilegedHelperFailed (never a socket error), no
    device that is not the batch's changes, and what the batch left is
    removed by the next daemon (its journal) and the caller's delete."""
    before = _state(host)
    pid = linux_net.daemon_info()['pid']
    names = ['tapkill%d' % i for i in range(3000)]
    batch_ops = [ops.create_tap(n, master='brmine0') for n in names]
    outcome = {}
    call = (linux_net.apply if entry == 'raw' else
            host_mod.HostNetwork(tag='kill').apply)

    def run():
        try:
            outcome['result'] = call(batch_ops)
        except Exception as exc:  # noqa: BLE001 - the test reads it
            outcome['error'] = exc

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if host.run(['ip', 'link', 'show', 'tapkill50'],
                    check=False).returncode == 0:
            break
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    worker.join(60)
    assert not worker.is_alive()
    assert 'result' not in outcome, 'the batch finished before the kill'
    assert isinstance(outcome['error'], exception.PrivilegedHelperFailed)
    assert _foreign(_state(host)) == _foreign(before)
    host_mod.HostNetwork().delete(names, missing_ok=True)
    _unchanged(host, before)
