"""The guest told through the command line alone (issue 14): every step is
a ``vif-plug-dyn --config-file ...`` process, as an operator or an agent
would run it; no manager is built in this process.

Host *alpha* is a private namespace with a private libvirtd; the CLI
processes start their own privileged helper inside it (``[vif_plug_dyn]
netns``) and reach libvirtd through ``[vif_plug_dyn_libvirt] uri``. One
busybox guest boots with the libvirt adapter's rendering of the port's
``ethernet`` endpoint, *without* a link state in its XML (as nova renders
it): whatever link the guest shows comes from the library. *red* is a
Linux bridge, *blue* a steered direct network on ``up0`` whose peer sits
in the *lan* namespace. The tests run in file order and share the guest.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from vif_plug_dyn import endpoints
from vif_plug_dyn import ports
from vif_plug_dyn.tests.functional import fixtures
from vif_plug_dyn.tests.functional.harness import libvirtd as lvh
from vif_plug_dyn.tests.functional.harness.netns import NetNamespace

_missing = lvh.missing_requirements()
pytestmark = pytest.mark.skipif(_missing is not None, reason=str(_missing))

MAC = '52:54:00:6b:00:01'
NETWORKS = {
    'red': "<network type='bridge'><name>red</name>"
           "<bridge name='br-red'/></network>",
    'blue': "<network type='direct'><name>blue</name>"
            "<forward mode='bridge'><interface dev='up0'/></forward>"
            "</network>",
}
CONF = """[vif_plug_dyn]
state_path = {state}
network_dir = {nets}
netns = {netns}

[vif_plug_dyn_libvirt]
uri = {uri}
"""
#: How long a guest under TCG on a busy machine may take to see a change.
CARRIER_TIMEOUT = 45


def _script():
    path = shutil.which('vif-plug-dyn') or os.path.join(
        os.path.dirname(sys.executable), 'vif-plug-dyn')
    if not os.path.exists(path):
        pytest.skip('vif-plug-dyn console script is not installed')
    return path


class Cli:
    """``vif-plug-dyn --config-file CONF --json ...`` as a process."""

    def __init__(self, conf):
        self.base = [_script(), '--config-file', str(conf), '--json']

    def run(self, *args, ok=True):
        result = subprocess.run(self.base + list(args), capture_output=True,
                                text=True, timeout=120)
        if ok:
            assert result.returncode == 0, result.stderr
        return result

    def json(self, *args):
        return json.loads(self.run(*args).stdout)

    def popen(self, *args, stderr):
        return subprocess.Popen(self.base + list(args),
                                stdout=subprocess.PIPE, stderr=stderr,
                                text=True)


class World:
    watch = None


def _wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    from vif_plug_dyn.virt.libvirt import adapter as adapter_mod
    images = lvh.guest_images()
    tmp = tmp_path_factory.mktemp('cliguest')
    nets = tmp / 'networks'
    nets.mkdir()
    for name, xml in NETWORKS.items():
        (nets / (name + '.xml')).write_text(xml)
    with NetNamespace('cg') as host, NetNamespace('cglan') as lan:
        fixtures.uplink(host, 'up0', 'lan0', 'netns', lan.name)
        lan.run(['ip', 'link', 'set', 'lan0', 'up'])
        lan.run(['ip', 'addr', 'add', '198.51.100.1/24', 'dev', 'lan0'])
        with lvh.Libvirtd(host) as lv:
            good = tmp / 'good.conf'
            good.write_text(CONF.format(state=tmp / 'state', nets=nets,
                                        netns=host.name, uri=lv.uri))
            # The same host, but a libvirtd nobody listens for.
            bad = tmp / 'unreachable.conf'
            bad.write_text(CONF.format(
                state=tmp / 'state', nets=nets, netns=host.name,
                uri='qemu+unix:///system?socket=%s' % (tmp / 'nobody.sock')))
            world = World()
            world.__dict__.update(
                host=host, lan=lan, lv=lv, images=images, tmp=tmp,
                cli=Cli(good), unreachable=Cli(bad), vm=str(uuid.uuid4()),
                port_id=str(uuid.uuid4()), guest=None,
                adapter=adapter_mod.LibvirtAdapter())
            try:
                yield world
            finally:
                if world.watch is not None and world.watch.poll() is None:
                    world.watch.kill()
                    world.watch.wait()
                world.cli.run('unplug', world.port_id, ok=False)
                if world.guest is not None:
                    world.guest.destroy()


def _show(world):
    return world.cli.json('endpoint', 'show', world.port_id)


def _tap_master(world):
    return fixtures.master_of(world.host, world.endpoint.tap)


def test_port_requested_before_its_guest_exists_is_pending(world):
    result = world.cli.run(
        'endpoint', 'request', '--port-id', world.port_id, '--mac', MAC,
        '--network', 'red', '--vm-uuid', world.vm, '--unplugged',
        '--types', 'ethernet,bridge,direct')
    world.endpoint = endpoints.from_primitive(json.loads(result.stdout))
    assert world.endpoint.type == 'ethernet'
    assert 'note: the guest link of port %s (down) is pending' % (
        world.port_id) in result.stderr
    guest = _show(world)['guest']
    assert (guest['state'], guest['link']) == ('pending', 'down')
    assert 'not defined on this host' in guest['reason']


def test_watch_gives_a_booting_guest_its_link(world):
    log = open(world.tmp / 'watch.log', 'w')
    world.watch_log = world.tmp / 'watch.log'
    world.watch = world.cli.popen('watch', '--guest-retry', '1', stderr=log)
    log.close()
    assert _wait(lambda: 'Following guest events' in
                 world.watch_log.read_text()), world.watch_log.read_text()
    # As nova renders it: no <link state=...>; the guest would boot with
    # carrier up if nobody told it otherwise.
    xml = world.adapter.interface_config(world.endpoint)
    assert '<link' not in xml
    world.guest = world.lv.guest([xml], uuid=world.vm,
                                 kernel=world.images[0],
                                 initrd=world.images[1])
    assert world.guest.wait_ready(timeout=120) == 1
    assert world.guest.wait_carrier(MAC, False, CARRIER_TIMEOUT), \
        world.guest.lines
    assert _wait(lambda: _show(world)['guest']['state'] == 'applied')
    assert _tap_master(world) is None


def test_connect_gives_carrier_and_traffic(world):
    result = world.cli.run('connect', world.port_id)
    assert 'note:' not in result.stderr
    assert world.guest.wait_carrier(MAC, True, CARRIER_TIMEOUT), \
        world.guest.lines
    assert _tap_master(world) == 'br-red'
    world.host.run(['ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'br-red'])
    world.guest.add_addr(MAC, '192.0.2.10/24')
    assert world.guest.ping('192.0.2.1', count=3).ok


def test_disconnect_takes_carrier_away(world):
    world.cli.run('disconnect', world.port_id)
    assert world.guest.wait_carrier(MAC, False, CARRIER_TIMEOUT), \
        world.guest.lines
    assert _tap_master(world) is None
    assert _show(world)['guest'] == {**_show(world)['guest'],
                                     'state': 'applied', 'link': 'down'}


def test_unreachable_hypervisor_defers_until_reconcile(world):
    result = world.unreachable.run('connect', world.port_id)
    # The host side is done and the command succeeds...
    assert _tap_master(world) == 'br-red'
    assert 'cannot be reached' in result.stderr
    assert 'note: the guest link of port %s (up) is pending' % (
        world.port_id) in result.stderr
    # ...the guest was not told, and the ledger says so.
    time.sleep(2)
    assert world.guest.carrier(MAC) is False
    guest = _show(world)['guest']
    assert (guest['state'], guest['link']) == ('pending', 'up')
    assert 'Cannot reach the hypervisor' in guest['reason']
    assert world.cli.json('reconcile')['guests_pending'] == []
    assert world.guest.wait_carrier(MAC, True, CARRIER_TIMEOUT), \
        world.guest.lines
    assert _show(world)['guest']['state'] == 'applied'
    assert world.guest.ping('192.0.2.1', count=3).ok


def test_moved_to_steered_direct_carries_traffic(world):
    world.cli.run('connect', world.port_id, 'blue')
    macvlan = ports.Port(port_id=world.port_id, mac=MAC,
                         network='blue').macvlan_name
    assert fixtures.links(world.host)[macvlan]['link'] == 'up0'
    assert world.guest.carrier(MAC) is True
    world.guest.add_addr(MAC, '198.51.100.10/24')
    assert world.guest.ping('198.51.100.1', count=3).ok


def test_lower_device_deleted_and_recreated_under_watch(world):
    world.host.run(['ip', 'link', 'del', 'up0'])
    assert world.guest.wait_carrier(MAC, False, CARRIER_TIMEOUT), \
        world.guest.lines
    assert _wait(lambda: _show(world)['health'] == 'degraded')
    fixtures.uplink(world.host, 'up0', 'lan0', 'netns', world.lan.name)
    world.lan.run(['ip', 'link', 'set', 'lan0', 'up'])
    world.lan.run(['ip', 'addr', 'add', '198.51.100.1/24', 'dev', 'lan0'])
    assert world.guest.wait_carrier(MAC, True, CARRIER_TIMEOUT), \
        world.guest.lines
    assert _wait(lambda: _show(world)['health'] == 'ok')
    assert world.guest.ping('198.51.100.1', count=3).ok


def test_watch_stops_on_sigterm_with_a_summary(world):
    world.watch.send_signal(signal.SIGTERM)
    out, _ = world.watch.communicate(timeout=60)
    assert world.watch.returncode == 0, world.watch_log.read_text()
    summary = json.loads(out)
    assert summary['guests_started'] >= 1
    assert summary['degraded'] >= 1 and summary['restored'] >= 1
    world.watch = None


def test_guest_redefined_while_away_gets_its_link_at_reconcile(world):
    """No watcher now: the guest is shut off, its cable pulled, and it is
    defined again from XML without a link state (as nova does on a hard
    reboot) and started: it boots with carrier until ``reconcile``."""
    world.guest.dom.destroy()
    result = world.cli.run('disconnect', world.port_id)
    assert 'is pending' in result.stderr and 'not running' in result.stderr
    world.guest.define()
    world.guest.start()
    assert world.guest.wait_ready(timeout=120) == 1
    assert world.guest.wait_carrier(MAC, True, CARRIER_TIMEOUT), \
        world.guest.lines
    assert _show(world)['guest']['state'] == 'pending'
    assert world.cli.json('reconcile')['guests_pending'] == []
    assert world.guest.wait_carrier(MAC, False, CARRIER_TIMEOUT), \
        world.guest.lines
    assert _show(world)['guest']['state'] == 'applied'
