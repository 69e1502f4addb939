"""Shared pieces of the functional tests: a private host with its own
privileged helper daemon, and managers on it."""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest
from oslo_config import cfg

from vif_plug_dyn import manager as manager_mod
from vif_plug_dyn import opts
from vif_plug_dyn import privsep
from vif_plug_dyn.tests.functional.harness.netns import NetNamespace


def require_root():
    if os.geteuid() != 0:
        pytest.skip('needs root: creates network namespaces')


@contextlib.contextmanager
def daemon_policy(policy, **options):
    """Make the next daemon enforce ``policy`` (the text of a policy
    file), the way a deployment does: a root-owned file named by a
    configuration file on the daemon's command line.

    :param options: more ``[vif_plug_dyn_privileged]`` options for the
        daemon (``require_policy``...).
    :returns: (context) the policy file's path.
    """
    require_root()
    helper = os.path.join(os.path.dirname(sys.executable), 'privsep-helper')
    if not os.path.exists(helper):
        pytest.skip('privsep-helper not installed next to %s' %
                    sys.executable)
    tmp = tempfile.mkdtemp(prefix='vpdt-policy-')
    path = os.path.join(tmp, 'policy.conf')
    try:
        if policy is not None:
            with open(path, 'w', encoding='utf-8') as handle:
                handle.write(policy)
            os.chmod(path, 0o644)
        conf_file = os.path.join(tmp, 'daemon.conf')
        lines = ['[%s]' % opts.PRIVSEP_GROUP, 'policy_files = %s' % path]
        lines += ['%s = %s' % item for item in sorted(options.items())]
        with open(conf_file, 'w', encoding='utf-8') as handle:
            handle.write('\n'.join(lines) + '\n')
        cfg.CONF.set_override('helper_command', '%s --config-file %s' % (
            helper, conf_file), group=opts.PRIVSEP_GROUP)
        yield path
    finally:
        cfg.CONF.clear_override('helper_command', group=opts.PRIVSEP_GROUP)
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def private_host(prefix, policy=None, **policy_options):
    """A namespace with the privileged helper daemon started inside it.

    The daemon is one per process: the context stops it on exit so the
    namespace (and every device in it) can go.

    :param policy: the text of a policy file the daemon enforces
        (``None``: no policy file, compatibility mode).
    :param policy_options: more daemon options (see
        :func:`daemon_policy`).
    :raises RuntimeError: a daemon already runs in this process. NOTE(vpd):
        oslo.privsep would keep it, in its namespace, and every call of
        the second host would silently change the first one's.
    """
    require_root()
    if privsep.running():
        raise RuntimeError(
            'the privileged daemon of this process already runs (in '
            'namespace %s): stop it before opening another private host'
            % privsep.vif_plug_dyn_pctxt.netns)
    with contextlib.ExitStack() as stack:
        if policy is not None or policy_options:
            stack.enter_context(daemon_policy(policy, **policy_options))
        ns = stack.enter_context(NetNamespace(prefix))
        privsep.start(netns=ns.name)
        try:
            yield ns
        finally:
            privsep.stop()
            privsep.set_netns(None)


def make_conf(tmp_path, netns, networks, **overrides):
    """A configuration with ``networks`` ({name: xml}) defined."""
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], default_config_files=[])
    net_dir = tmp_path / 'networks'
    net_dir.mkdir(exist_ok=True)
    for name, xml in networks.items():
        (net_dir / (name + '.xml')).write_text(xml)
    conf.set_override('state_path', str(tmp_path / 'state'), opts.GROUP)
    conf.set_override('network_dir', str(net_dir), opts.GROUP)
    conf.set_override('netns', netns, opts.GROUP)
    for key, value in overrides.items():
        conf.set_override(key, value, opts.GROUP)
    return conf


def make_manager(tmp_path, netns, networks, **overrides):
    """A manager on ``netns`` with ``networks`` ({name: xml}) defined."""
    return manager_mod.EndpointManager(
        make_conf(tmp_path, netns, networks, **overrides))


@contextlib.contextmanager
def managed(tmp_path, netns, networks, **overrides):
    """:func:`make_manager`, releasing every port it holds and closing on
    exit so the next test finds the namespace as it was."""
    mgr = make_manager(tmp_path, netns, networks, **overrides)
    try:
        yield mgr
    finally:
        mgr.release_endpoints(
            [r.port.port_id for r in mgr.ledger.list_ports()])
        mgr.close()


def uplink(ns, name, peer, *extra):
    """A veth pair in ``ns`` with ``name`` up: an operator's NIC.

    :param extra: more ``ip link add`` words for the peer, e.g.
        ``('netns', other.name)``.
    """
    ns.run(['ip', 'link', 'add', name, 'type', 'veth', 'peer', 'name',
            peer] + list(extra))
    ns.run(['ip', 'link', 'set', name, 'up'])


def links(ns):
    """``{name: link}`` of the namespace, from ``ip -d -j link``."""
    out = ns.check_output(['ip', '-d', '-j', 'link', 'show'])
    return {link['ifname']: link for link in json.loads(out)}


def master_of(ns, name):
    return links(ns)[name].get('master')


@contextlib.contextmanager
def tap_guest(ns, tap, mac, ip):
    """A stand-in guest answering ARP and ping on ``tap``."""
    proc = ns.popen([sys.executable, '-m',
                     'vif_plug_dyn.demo.tapguest',
                     '--tap', tap, '--mac', mac, '--ip', ip],
                    stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == 'READY'
        yield proc
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def ping(ns, address, count=2):
    """Whether ``address`` answers a ping from ``ns``."""
    result = ns.run(['ping', '-n', '-q', '-c', str(count), '-i', '0.2',
                     '-W', '1', address], check=False)
    return result.returncode == 0


_SET_GROUP = '''
import sys
from pyroute2 import IPRoute
with IPRoute() as ipr:
    (index,) = ipr.link_lookup(ifname=sys.argv[1])
    ipr.link('set', index=index, group=int(sys.argv[2]))
'''


def set_link_group(netns, device, group):
    """Put ``device`` of namespace ``netns`` (a name) in link group
    ``group``, as root would.

    NOTE(vpd): ``ip`` reads a group as a signed integer and cannot name
    the privileged helper's groups (2^31 and up); pyroute2 can.
    """
    subprocess.run(['ip', 'netns', 'exec', netns, sys.executable, '-c',
                    _SET_GROUP, device, str(group)], check=True,
                   capture_output=True)
