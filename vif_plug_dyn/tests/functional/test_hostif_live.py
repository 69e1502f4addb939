"""Host interfaces applied live, in private network namespaces (see
:mod:`.hostif_support` for the namespace, daemon and dump helpers)."""

import dataclasses
import json
import subprocess
import sys

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn.hostif import model
from vif_plug_dyn.privsep import ops
from vif_plug_dyn.tests.functional import hostif_support as support

pytestmark = support.MARKS
HELPER = support.HELPER
ns = support.ns
daemon = support.daemon
conf = support.conf
api = support.api
full_dump = support.full_dump
assert_same = support.assert_same
link = support.link
exists = support.exists
addresses = support.addresses
veth = support.veth
kernel_has = support.kernel_has
_config = support.config_file
_cli = support.cli
ETH = support.ETH
BRIDGE = support.BRIDGE


def _bare(iface):
    """A definition as a live dump shows it: no start mode; members
    compared by name and kind."""
    members = tuple(sorted((m.name, m.kind) for m in iface.members))
    return dataclasses.replace(iface, start_mode=None, members=()), members


# --- applying ----------------------------------------------------------------

def test_ethernet_on_a_veth_end(api, ns):
    veth(ns, 'v0', 'v1')
    ns.run(['ip', 'link', 'set', 'v0', 'alias', 'uplink-a'])
    api.define(ETH)
    result = api.start('v0')
    assert result['adopted'] == ['v0'] and result['created'] == []
    assert [s['step'] for s in result['steps']] == [
        'adopt', 'links', 'addresses', 'up']
    dev = link(ns, 'v0')
    assert dev['mtu'] == 1400 and dev['address'] == '02:00:00:00:00:10'
    assert 'UP' in dev['flags']
    # The marker records a digest of the alias it had (uplink-a).
    assert dev['ifalias'] == ops.adopted_alias(
        'hostif.v0', ops.alias_digest('uplink-a'))
    assert addresses(ns, 'v0') == {'192.0.2.10/24', '2001:db8::10/64'}
    live = api.dump_live('v0')
    wanted = model.HostInterface.from_xml(ETH)
    assert _bare(live) == _bare(wanted)
    # Starting again changes nothing.
    assert api.start('v0')['steps'] == []
    assert [i for i in api.list() if i['name'] == 'v0'] == [
        {'name': 'v0', 'kind': 'ethernet', 'defined': True, 'active': True,
         'present': True, 'managed': 'adopted'}]
    result = api.stop('v0')
    assert result['deleted'] == []
    dev = link(ns, 'v0')
    assert 'UP' not in dev['flags'] and addresses(ns, 'v0') == set()
    # Adopted devices are never deleted, and get their alias back when
    # the definition goes.
    assert api.undefine('v0')['released'] == ['v0']
    assert link(ns, 'v0')['ifalias'] == 'uplink-a'


def test_bridge_with_veth_members(api, ns):
    veth(ns, 'v0', 'v1')
    veth(ns, 'v2', 'v3')
    api.define(BRIDGE)
    result = api.start('br0')
    assert result['created'] == ['br0']
    assert sorted(result['adopted']) == ['v0', 'v2']
    assert [s['step'] for s in result['steps']] == [
        'adopt', 'create', 'links', 'addresses', 'up']
    bridge = link(ns, 'br0')
    assert bridge['linkinfo']['info_kind'] == 'bridge'
    assert bridge['mtu'] == 9000 and 'UP' in bridge['flags']
    assert bridge['ifalias'] == 'vif_plug_dyn:hostif.br0'
    assert bridge['linkinfo']['info_data']['stp_state'] == 0
    assert bridge['linkinfo']['info_data']['forward_delay'] == 0
    for member in ('v0', 'v2'):
        dev = link(ns, member)
        assert dev['master'] == 'br0' and dev['mtu'] == 9000
        assert 'UP' in dev['flags']
    assert link(ns, 'v2')['address'] == '02:00:00:00:00:22'
    assert addresses(ns, 'br0') == {'198.51.100.1/24', '2001:db8:1::1/64'}
    live, members = _bare(api.dump_live('br0'))
    wanted, wanted_members = _bare(model.HostInterface.from_xml(BRIDGE))
    assert (live, members) == (wanted, wanted_members)
    assert '<link state=' in api.dump_xml('v0', live=True)
    api.stop('br0')
    assert not exists(ns, 'br0')
    for member in ('v0', 'v2'):
        dev = link(ns, member)
        assert 'master' not in dev and 'UP' not in dev['flags']


def test_bridge_options_on_an_adopted_bridge(api, ns):
    """An operator's bridge named by a definition is adopted, configured
    (STP, forward delay, MTU, address) and never deleted."""
    ns.run(['ip', 'link', 'add', 'br9', 'type', 'bridge'])
    veth(ns, 'v0', 'v1')
    api.define("<interface type='bridge' name='br9'><mtu size='1450'/>"
               "<protocol family='ipv4'><ip address='203.0.113.9' "
               "prefix='28'/></protocol><bridge stp='on' delay='4'>"
               "<interface type='ethernet' name='v0'/></bridge>"
               "</interface>")
    result = api.start('br9')
    assert sorted(result['adopted']) == ['br9', 'v0']
    data = link(ns, 'br9')['linkinfo']['info_data']
    assert data['stp_state'] == 1 and data['forward_delay'] == 400
    assert link(ns, 'br9')['mtu'] == 1450
    assert api.dump_live('br9').delay == 4.0
    api.stop('br9')
    assert exists(ns, 'br9') and 'master' not in link(ns, 'v0')
    assert addresses(ns, 'br9') == set()


def test_conflicts_are_refused_before_any_change(api, ns):
    ns.run(['ip', 'link', 'add', 'br5', 'type', 'bridge'])
    before = full_dump(ns)
    api.define("<interface type='ethernet' name='br5'/>")
    with pytest.raises(exception.HostInterfaceConflict,
                       match='it is a bridge'):
        api.start('br5')
    api.define("<interface type='ethernet' name='nic9'/>")
    with pytest.raises(exception.HostInterfaceConflict,
                       match='does not exist'):
        api.start('nic9')
    assert_same(before, full_dump(ns))


def test_bond_with_veth_slaves(api, ns):
    kernel_has(ns, 'bonding driver (link kind bond)', 'probe0', 'type',
               'bond')
    veth(ns, 'v0', 'v1')
    veth(ns, 'v2', 'v3')
    ns.run(['ip', 'link', 'set', 'v0', 'up'])
    api.define("<interface type='bond' name='bond0'><mtu size='1400'/>"
               "<bond mode='active-backup'><miimon freq='100'/>"
               "<interface type='ethernet' name='v0'/>"
               "<interface type='ethernet' name='v2'/></bond>"
               "</interface>")
    api.start('bond0')
    assert link(ns, 'bond0')['linkinfo']['info_data']['mode'] == \
        'active-backup'
    assert link(ns, 'v0')['master'] == 'bond0'
    assert link(ns, 'v2')['master'] == 'bond0'
    api.stop('bond0')
    assert not exists(ns, 'bond0')


def test_vlan_on_a_veth_end(api, ns):
    veth(ns, 'v0', 'v1')
    kernel_has(ns, '802.1Q VLAN support (8021q, link kind vlan)', 'link',
               'v0', 'name', 'probe0', 'type', 'vlan', 'id', '2')
    api.define("<interface type='vlan' name='v0.42'><mtu size='1400'/>"
               "<vlan tag='42'><interface name='v0'/></vlan></interface>")
    api.start('v0.42')
    data = link(ns, 'v0.42')
    assert data['linkinfo']['info_data']['id'] == 42
    assert data['link'] == 'v0'
    assert api.dump_live('v0.42').parent == 'v0'
    api.stop('v0.42')
    assert not exists(ns, 'v0.42') and exists(ns, 'v0')


# --- failures half way -------------------------------------------------------

class Boom(RuntimeError):
    pass


def _fail_at(number):
    def hook(action, step, name):
        if step == number:
            raise Boom('injected failure before step %d (%s)' % (step,
                                                                  name))
    return hook


def _operator_devices(ns):
    """Operator state the rollback tests start from: veths, one up with
    an alias, addresses (IPv4 and IPv6) and a bridge of the operator."""
    veth(ns, 'v0', 'v1')
    veth(ns, 'v2', 'v3')
    ns.run(['ip', 'link', 'set', 'v0', 'alias', 'uplink-a'])
    ns.run(['ip', 'link', 'set', 'v3', 'up'])
    ns.run(['ip', 'link', 'set', 'v2', 'up'])
    ns.run(['ip', 'address', 'add', '192.0.2.99/24', 'dev', 'v2'])
    ns.run(['ip', 'address', 'add', '2001:db8:9::9/64', 'dev', 'v2'])
    ns.run(['ip', 'link', 'add', 'br-op', 'type', 'bridge'])
    ns.run(['ip', 'link', 'set', 'v1', 'master', 'br-op'])


START_STEPS = {
    'br0': ['adopt', 'create', 'links', 'addresses', 'up'],
    'v2': ['adopt', 'links', 'addresses'],
}
V2 = ETH.replace("name='v0'", "name='v2'")


@pytest.mark.parametrize('name,number', [
    (name, number) for name, steps in sorted(START_STEPS.items())
    for number in range(len(steps))])
def test_failed_start_restores_the_namespace(api, ns, name, number):
    _operator_devices(ns)
    api.define(BRIDGE if name == 'br0' else V2)
    assert [s.name for s in api.live.plan_start(
        api.get(name)).steps] == START_STEPS[name]
    before = full_dump(ns)
    api.live.step_hook = _fail_at(number)
    with pytest.raises(exception.HostInterfaceApplyFailed) as info:
        api.start(name)
    assert 'failed at step %d (%s)' % (
        number, START_STEPS[name][number]) in str(info.value)
    assert 'put back as it was' in str(info.value)
    assert_same(before, full_dump(ns))
    assert api.journal.load('apply') is None
    # Without the fault it works from there.
    api.live.step_hook = None
    assert api.start(name)['changed']


STOP_STEPS = {'br0': ['links', 'delete'], 'v2': ['addresses', 'links']}


@pytest.mark.parametrize('name,number', [
    (name, number) for name, steps in sorted(STOP_STEPS.items())
    for number in range(len(steps))])
def test_failed_stop_restores_the_namespace(api, ns, name, number):
    _operator_devices(ns)
    api.define(BRIDGE if name == 'br0' else V2)
    api.start(name)
    assert [s.name for s in api.live.plan_stop(
        api.get(name)).steps] == STOP_STEPS[name]
    before = full_dump(ns)
    api.live.step_hook = _fail_at(number)
    with pytest.raises(exception.HostInterfaceApplyFailed):
        api.stop(name)
    assert_same(before, full_dump(ns))


def test_kernel_refusal_rolls_back(api, ns):
    """Invalid values the kernel refuses at a later step: an IPv6 address
    on a device whose MTU is below 1280 (addresses step), and an MTU
    above what a macvlan's lower device allows (links step)."""
    _operator_devices(ns)
    before = full_dump(ns)
    api.define(V2.replace("size='1400'", "size='1000'"))
    with pytest.raises(exception.HostInterfaceApplyFailed,
                       match=r'step 2 \(addresses\).*put back as it was'):
        api.start('v2')
    assert_same(before, full_dump(ns))
    ns.run(['ip', 'link', 'add', 'link', 'v2', 'name', 'mv0', 'type',
            'macvlan'])
    before = full_dump(ns)
    api.define("<interface type='ethernet' name='mv0'><mtu size='9000'/>"
               "</interface>")
    with pytest.raises(exception.HostInterfaceApplyFailed,
                       match=r'step 1 \(links\).*put back as it was'):
        api.start('mv0')
    assert_same(before, full_dump(ns))


def test_a_foreign_upper_device_is_reported_not_hidden(api, ns):
    """Lowering an adopted device's MTU lowers the MTU of an operator's
    macvlan on it; the kernel does not raise it back, and the helper may
    not change the operator's device: the rollback says so."""
    _operator_devices(ns)
    ns.run(['ip', 'link', 'add', 'link', 'v2', 'name', 'mv0', 'type',
            'macvlan'])
    api.define(V2.replace("size='1400'", "size='1000'"))
    with pytest.raises(exception.HostInterfaceApplyFailed) as info:
        api.start('v2')
    assert 'the MTU of mv0 (on v2) followed its lower device to 1000' in \
        str(info.value)
    assert link(ns, 'mv0')['mtu'] == 1000 and link(ns, 'v2')['mtu'] == 1500


# --- transactions ------------------------------------------------------------

def test_rollback_restores_the_exact_dump(api, ns):
    _operator_devices(ns)
    api.define(BRIDGE)
    api.start('br0')
    api.define(V2.replace("name='v2'", "name='v1'").replace(
        "02:00:00:00:00:10", "02:00:00:00:00:11"))
    before = full_dump(ns)
    defined = {d.name: d.to_xml() for d in api.store.list()}
    api.change_begin()
    # Delete the definition's bridge, give its members back, adopt and
    # configure another device, move a port out of an operator's bridge.
    api.stop('br0')
    api.undefine('br0')
    assert link(ns, 'v0')['ifalias'] == 'uplink-a'
    api.start('v1')
    api.define(ETH.replace("name='v0'", "name='v3'"))
    assert full_dump(ns) != before
    report = api.change_rollback()
    assert report['restored'], report
    assert_same(before, full_dump(ns))
    assert {d.name: d.to_xml() for d in api.store.list()} == defined
    assert api.transaction() is None
    # The adoption records came back too: undefining br0 now gives v0
    # its operator alias back.
    api.stop('br0')
    api.undefine('br0')
    assert link(ns, 'v0')['ifalias'] == 'uplink-a'


def test_commit_keeps_the_changes(api, ns):
    _operator_devices(ns)
    api.define(BRIDGE)
    api.change_begin()
    api.start('br0')
    after = full_dump(ns)
    assert api.change_commit()['committed']
    assert_same(after, full_dump(ns)) and exists(ns, 'br0')
    with pytest.raises(exception.TransactionError, match='no transaction'):
        api.change_rollback()
    api.change_begin()
    with pytest.raises(exception.TransactionError, match='already open'):
        api.change_begin()
    api.change_commit()


CRASH = r"""
import os, sys
from oslo_config import cfg
from vif_plug_dyn import opts
from vif_plug_dyn.hostif import api as api_mod

conf = cfg.ConfigOpts()
opts.register_opts(conf)
conf(['--config-file', sys.argv[1]])
def die(action, step, name):
    if step == 2:
        os._exit(17)      # a crash half way: no rollback, no cleanup
api_mod.HostInterfaceAPI(conf, step_hook=die).start('br0')
"""


def test_a_crash_half_way_is_undone_by_the_next_change(api, ns, tmp_path):
    _operator_devices(ns)
    api.define(BRIDGE)
    before = full_dump(ns)
    child = subprocess.run([sys.executable, '-c', CRASH,
                            _config(tmp_path, ns)], capture_output=True,
                           text=True, timeout=120)
    assert child.returncode == 17, child.stderr
    assert exists(ns, 'br0'), 'the child must have died half way'
    assert api.journal.load('apply') is not None
    report = api.recover()
    assert report is not None and report['restored'], report
    assert_same(before, full_dump(ns))
    assert api.recover() is None


def test_cli_transaction_across_processes(api, ns, tmp_path):
    """Each command is its own process (and daemon): the snapshot taken
    by change-begin survives until change-rollback."""
    _operator_devices(ns)
    config = _config(tmp_path, ns)
    xml = tmp_path / 'br0.xml'
    xml.write_text(BRIDGE)
    before = full_dump(ns)
    assert _cli(config, 'iface', 'define', str(xml)).returncode == 0
    assert _cli(config, 'iface', 'change-begin').returncode == 0
    started = _cli(config, 'iface', 'start', 'br0')
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)['created'] == ['br0']
    listed = json.loads(_cli(config, 'iface', 'list').stdout)
    assert listed[0]['active'] is True
    dumped = _cli(config, 'iface', 'dumpxml', '--live', 'br0')
    assert "<bridge stp=\"off\" delay=\"0\">" in json.loads(dumped.stdout)
    rolled = _cli(config, 'iface', 'change-rollback')
    assert rolled.returncode == 0, rolled.stderr
    assert json.loads(rolled.stdout)['restored'] is True
    assert_same(before, full_dump(ns))
    # The definition was made before change-begin: it stays.
    assert json.loads(_cli(config, 'iface', 'list').stdout)[0][
        'active'] is False
    bad = _cli(config, 'iface', 'change-commit')
    assert bad.returncode == 2
    assert bad.stderr.startswith('error: Host interface transaction: no '
                                 'transaction is open')
