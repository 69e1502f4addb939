"""Shared pieces of the host interface functional tests.

Every test gets its own namespace (``vpdt-hl-<random>``) with the real
privsep daemon started *inside* it, and checks the kernel's view with
``ip`` run in that namespace. Nothing touches the root namespace.

Rollbacks are checked against a full dump of the namespace
(``ip -d -j link show`` + ``ip -j address show``), normalised only for
what the kernel changes by itself (see :func:`full_dump`).

Test modules take the fixtures by assignment (``api = support.api``).
"""

import difflib
import json
import os
import shutil
import subprocess
import sys

import pytest
from oslo_config import cfg

from vif_plug_dyn import opts
from vif_plug_dyn import privsep
from vif_plug_dyn.hostif import api as api_mod
from vif_plug_dyn.privsep import linux_net
from vif_plug_dyn.tests.functional.harness.netns import NetNamespace

MARKS = [
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


def config_file(tmp_path, ns):
    path = tmp_path / 'vif_plug_dyn.conf'
    path.write_text(
        '[vif_plug_dyn]\nstate_path = %s\ninterface_dir = %s\nnetns = %s\n'
        '[vif_plug_dyn_privileged]\nhelper_command = %s\n' % (
            tmp_path / 'state', tmp_path / 'ifaces', ns.name, HELPER))
    return str(path)


def cli(config, *args):
    script = shutil.which('vif-plug-dyn') or os.path.join(
        os.path.dirname(sys.executable), 'vif-plug-dyn')
    if not os.path.exists(script):
        pytest.skip('vif-plug-dyn console script is not installed')
    return subprocess.run([script, '--config-file', config, '--json'] +
                          list(args), capture_output=True, text=True,
                          timeout=120)
