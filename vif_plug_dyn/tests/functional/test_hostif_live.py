"""Host interfaces applied live, in private network namespaces.

Every test gets its own namespace (``vpdt-hl-<random>``) with the real
privsep daemon started *inside* it, and checks the kernel's view with
``ip`` run in that namespace. Nothing touches the root namespace.

Rollbacks are checked against a full dump of the namespace
(``ip -d -j link show`` + ``ip -j address show``), normalised only for
what the kernel changes by itself (see :func:`full_dump`).
"""

import dataclasses
import difflib
import json
import os
import shutil
import subprocess
import sys

import pytest
from oslo_config import cfg

from vif_plug_dyn import exception
from vif_plug_dyn import opts
from vif_plug_dyn import privsep
from vif_plug_dyn.hostif import api as api_mod
from vif_plug_dyn.hostif import model
from vif_plug_dyn.privsep import linux_net
from vif_plug_dyn.privsep import ops
from vif_plug_dyn.tests.functional.harness.netns import NetNamespace

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0,
                       reason='needs root (network namespaces)'),
    pytest.mark.skipif(shutil.which('ip') is None,
                       reason='needs iproute2 (ip)'),
]

HELPER = os.path.join(os.path.dirname(sys.executable), 'privsep-helper')

# NOTE(vpd): keys the kernel changes on its own, unrelated to what a
# rollback restores: timers and learned-entry counters tick, and a device
# brought up once keeps the default qdisc the kernel attached on its
# first open ("noop" -> "noqueue"; noqueue has no handle, it cannot be
# deleted), so "qdisc" is dropped too.
# The link group is the privileged helper's own bookkeeping: a device it
# recreates joins that batch's group (see vif_plug_dyn.privsep.batch).
VOLATILE = frozenset({'qdisc', 'fdb_n_learned', 'group'})
FOREVER = 4294967295


def _normalise(value):
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in VOLATILE or key.endswith('_timer'):
                continue
            if key in ('valid_life_time', 'preferred_life_time') and \
                    item != FOREVER:
                item = 'finite'
            out[key] = _normalise(item)
        return out
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def settle(ns):
    """Let the kernel finish pending link-state work on every link.

    NOTE(vpd): carrier changes are processed by the kernel's link-watch
    work up to a second later (a bridge gets its IPv6 link-local address
    then); asking for one link runs that work for it at once, a dump does
    not. ``ip link show dev X`` for every device, in one ``ip -batch``.
    """
    names = [link['ifname'] for link in json.loads(
        ns.check_output(['ip', '-j', 'link', 'show']))]
    ns.run(['ip', '-batch', '-'], input=''.join(
        'link show dev %s\n' % name for name in names))


def full_dump(ns):
    """Every link (with details) and every address of the namespace."""
    settle(ns)
    links = json.loads(ns.check_output(['ip', '-d', '-j', 'link', 'show']))
    addrs = json.loads(ns.check_output(['ip', '-j', 'address', 'show']))
    return _normalise({'links': links, 'addresses': addrs})


def assert_same(before, after):
    """Compare two full dumps; on a difference, show it as a diff."""
    if before != after:
        old = json.dumps(before, indent=1, sort_keys=True).splitlines()
        new = json.dumps(after, indent=1, sort_keys=True).splitlines()
        pytest.fail('the namespace differs from before:\n' + '\n'.join(
            difflib.unified_diff(old, new, 'before', 'after', lineterm='',
                                 n=8)))


def link(ns, name):
    return json.loads(ns.check_output(['ip', '-d', '-j', 'link', 'show',
                                       'dev', name]))[0]


def exists(ns, name):
    return ns.run(['ip', 'link', 'show', 'dev', name],
                  check=False).returncode == 0


def addresses(ns, name):
    data = json.loads(ns.check_output(['ip', '-j', 'address', 'show',
                                       'dev', name]))[0]
    return {'%s/%s' % (a['local'], a['prefixlen'])
            for a in data['addr_info'] if a['scope'] != 'link'}


def veth(ns, name, peer, *extra):
    ns.run(['ip', 'link', 'add', name, 'type', 'veth', 'peer', 'name',
            peer] + list(extra))


def kernel_has(ns, feature, *spec):
    """Skip unless the namespace's kernel can create the link ``spec``
    describes (``ip link add probe0 SPEC...``)."""
    res = ns.run(['ip', 'link', 'add'] + list(spec), check=False)
    if res.returncode != 0:
        pytest.skip('the kernel has no %s: %s' % (feature,
                                                  res.stderr.strip()))
    ns.run(['ip', 'link', 'del', 'probe0'])


@pytest.fixture
def ns():
    with NetNamespace('hl') as space:
        # NOTE(vpd): duplicate address detection keeps a new IPv6 address
        # "tentative" for a second: a transient state, not something a
        # rollback restores. Dumps are compared right after changes, so
        # DAD is off in these (private) namespaces.
        space.run(['sysctl', '-q', '-w',
                   'net.ipv6.conf.all.accept_dad=0',
                   'net.ipv6.conf.default.accept_dad=0'])
        yield space


@pytest.fixture
def daemon(ns):
    """The real privsep daemon, started inside the test's namespace."""
    cfg.CONF.set_override('helper_command', HELPER,
                          group=opts.PRIVSEP_GROUP)
    try:
        privsep.start(netns=ns.name)
        inode = os.stat('/run/netns/' + ns.name).st_ino
        assert linux_net.daemon_info()['netns_inode'] == inode, \
            'the daemon must run in the test namespace'
        yield ns
    finally:
        privsep.stop()
        privsep.set_netns(None)
        cfg.CONF.clear_override('helper_command', group=opts.PRIVSEP_GROUP)


@pytest.fixture
def conf(tmp_path, ns):
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override('state_path', str(tmp_path / 'state'), opts.GROUP)
    conf.set_override('interface_dir', str(tmp_path / 'ifaces'), opts.GROUP)
    conf.set_override('netns', ns.name, opts.GROUP)
    return conf


@pytest.fixture
def api(daemon, conf):
    return api_mod.HostInterfaceAPI(conf)


ETH = """<interface type='ethernet' name='v0'>
  <start mode='onboot'/>
  <mac address='02:00:00:00:00:10'/>
  <mtu size='1400'/>
  <protocol family='ipv4'><ip address='192.0.2.10' prefix='24'/></protocol>
  <protocol family='ipv6'><ip address='2001:db8::10' prefix='64'/></protocol>
</interface>"""

BRIDGE = """<interface type='bridge' name='br0'>
  <start mode='onboot'/>
  <mtu size='9000'/>
  <protocol family='ipv4'><ip address='198.51.100.1' prefix='24'/></protocol>
  <protocol family='ipv6'><ip address='2001:db8:1::1' prefix='64'/>
  </protocol>
  <bridge stp='off' delay='0'>
    <interface type='ethernet' name='v0'/>
    <interface type='ethernet' name='v2'>
      <mac address='02:00:00:00:00:22'/>
    </interface>
  </bridge>
</interface>"""


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


# --- failures half way ---------------------------------------------------

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


def _config(tmp_path, ns):
    path = tmp_path / 'vif_plug_dyn.conf'
    path.write_text(
        '[vif_plug_dyn]\nstate_path = %s\ninterface_dir = %s\nnetns = %s\n'
        '[vif_plug_dyn_privileged]\nhelper_command = %s\n' % (
            tmp_path / 'state', tmp_path / 'ifaces', ns.name, HELPER))
    return str(path)


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


def _cli(config, *args):
    script = shutil.which('vif-plug-dyn') or os.path.join(
        os.path.dirname(sys.executable), 'vif-plug-dyn')
    if not os.path.exists(script):
        pytest.skip('vif-plug-dyn console script is not installed')
    return subprocess.run([script, '--config-file', config, '--json'] +
                          list(args), capture_output=True, text=True,
                          timeout=120)


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
