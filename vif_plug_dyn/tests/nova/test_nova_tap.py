"""nova's own code and the library on one host, as a deployment runs them.

Neutron binds the port with vif_type ``tap`` (as networking-calico
does) on a host running the library's agent. nova 34 (from PyPI, run
by ``tox -e nova``) then does what nova-compute does for such a port:
``LibvirtGenericVIFDriver.plug`` makes the tap, ``get_config`` renders
the ``<interface>``, the libvirt driver defines and starts the guest,
and ``unplug`` deletes the tap when the guest is gone. The agent's part
is the ``vif-plug-dyn`` command line (a process of its own, like the
agent): ``plug --hypervisor-tap``, ``connect``, ``disconnect``,
``unplug``, with ``vif-plug-dyn watch`` running throughout.

Everything happens in a private network namespace (the host): nova's
privileged calls run in a process started there (see
:mod:`.novacompute`), the guest under a private libvirtd + QEMU there,
the library's privileged helper daemon there. The tests run in file
order and share the guest.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET

import pytest

from vif_plug_dyn import opts
from vif_plug_dyn.tests.functional import fixtures
from vif_plug_dyn.tests.functional.harness import libvirtd as lvh
from vif_plug_dyn.tests.functional.harness.netns import NetNamespace

nova = pytest.importorskip('nova', reason='nova is not installed '
                                          '(tox -e nova installs it)')
_missing = lvh.missing_requirements()
pytestmark = pytest.mark.skipif(_missing is not None, reason=str(_missing))

MAC = '52:54:00:6b:00:01'
TAP_MAC = 'fe:54:00:6b:00:01'
NETWORKS = {
    'red': "<network type='bridge'><name>red</name>"
           "<bridge name='br-red' managed='no'/><mtu size='1400'/>"
           "</network>",
    'blue': "<network type='bridge'><name>blue</name>"
            "<bridge name='br-blue'/><mtu size='1400'/></network>",
}
RED, BLUE = '192.0.2.', '198.51.100.'


class World:
    """What the tests share."""


def _script():
    path = shutil.which('vif-plug-dyn') or os.path.join(
        os.path.dirname(sys.executable), 'vif-plug-dyn')
    if not os.path.exists(path):
        pytest.skip('vif-plug-dyn console script is not installed')
    return path


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('nova')
    images = lvh.guest_images()
    with NetNamespace('nova') as host, lvh.Libvirtd(host) as lv:
        host.run(['ip', 'link', 'add', 'br-red', 'type', 'bridge'])
        host.run(['ip', 'link', 'set', 'br-red', 'up'])
        host.run(['ip', 'addr', 'add', RED + '1/24', 'dev', 'br-red'])
        conf = fixtures.make_conf(tmp, host.name, NETWORKS)
        conf_file = tmp / 'vif_plug_dyn.conf'
        conf_file.write_text(
            '[vif_plug_dyn]\nnetns = %s\nstate_path = %s\n'
            'network_dir = %s\n[%s]\nuri = %s\n' % (
                host.name, conf[opts.GROUP].state_path,
                conf[opts.GROUP].network_dir, opts.LIBVIRT_GROUP, lv.uri))
        w = World()
        w.host, w.lv, w.images, w.conf = host, lv, images, conf
        conf.set_override('uri', lv.uri, opts.LIBVIRT_GROUP)
        w.cli = [_script(), '--config-file', str(conf_file), '--json']
        w.vm = str(uuid.uuid4())
        w.port_id = str(uuid.uuid4())
        w.tap = 'tap' + w.port_id[:11]
        w.spec = {'instance': {'uuid': w.vm, 'name': 'vm-nova'},
                  'port': {'id': w.port_id, 'mac': MAC, 'devname': w.tap},
                  'network': {'id': str(uuid.uuid4()), 'label': 'red',
                              'mtu': 1400},
                  'tap_mac': TAP_MAC}
        w.guest = None
        w.watch = subprocess.Popen(
            w.cli + ['watch', '--settle', '2'], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            yield w
        finally:
            if w.guest is not None:
                w.guest.destroy()
            if w.watch.poll() is None:
                w.watch.kill()
                w.watch.communicate()
            # NOTE(vpd): whatever a failed test left: the port (its
            # daemon is stopped by the CLI process), then the tap.
            subprocess.run(w.cli + ['unplug', w.port_id],
                           capture_output=True, timeout=60)
            host.run(['ip', 'link', 'del', w.tap], check=False)


def cli(world, *argv):
    result = subprocess.run(world.cli + list(argv), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def nova_compute(world, action, **changes):
    """Run nova's VIF driver in the host namespace (see novacompute)."""
    spec = dict(world.spec, **changes)
    result = world.host.run(
        [sys.executable, '-m', 'vif_plug_dyn.tests.nova.novacompute',
         action, json.dumps(spec)], check=False, timeout=120)
    return result


def _record(world):
    return cli(world, 'endpoint', 'show', world.port_id)


def _wait(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.05)


def _pci_address(world):
    root = ET.fromstring(world.guest.dom.XMLDesc(0))
    for iface in root.iter('interface'):
        if iface.find('mac').get('address') == MAC:
            return tuple(sorted(iface.find('address').attrib.items()))
    raise AssertionError('the NIC is gone')


def test_nova_34_refuses_bridge_vif_type(world):
    """Why the os-vif ``linux_bridge`` route ends at nova 33."""
    result = nova_compute(world, 'plug-bridge')
    assert result.returncode != 0
    assert 'Linux bridge VIF type is no longer supported' in result.stderr


def test_agent_plugs_before_nova_makes_the_tap(world):
    endpoint = cli(world, 'plug', '--port-id', world.port_id, '--mac', MAC,
                   '--network', 'red', '--vm-uuid', world.vm,
                   '--hypervisor-tap')
    data = endpoint['vpd.data']
    assert endpoint['vpd.name'] == 'EthernetEndpoint'
    assert (data['tap'], data['borrowed']) == (world.tap, True)
    record = _record(world)
    assert (record['cable'], record['health']) == ('plugged', 'waiting')
    assert world.tap not in fixtures.links(world.host)


def test_nova_plug_makes_the_tap_the_watcher_cables_it(world):
    result = nova_compute(world, 'plug')
    assert result.returncode == 0, result.stderr
    _wait(lambda: _record(world)['health'] == 'ok')
    link = fixtures.links(world.host)[world.tap]
    assert link['linkinfo']['info_kind'] == 'tun'
    # nova's MAC and MTU, the library's cable and marker.
    assert (link['address'], link['mtu']) == (TAP_MAC, 1400)
    assert link['master'] == 'br-red'
    assert link['ifalias'] == 'vif_plug_dyn.borrowed:' + world.port_id


def test_nova_config_starts_the_guest(world):
    result = nova_compute(world, 'config')
    assert result.returncode == 0, result.stderr
    xml = json.loads(result.stdout)['xml']
    iface = ET.fromstring(xml)
    assert iface.get('type') == 'ethernet'
    target = iface.find('target')
    assert (target.get('dev'), target.get('managed')) == (world.tap, 'no')
    assert iface.find('mtu').get('size') == '1400'
    world.guest = world.lv.guest([xml], uuid=world.vm,
                                 kernel=world.images[0],
                                 initrd=world.images[1])
    assert world.guest.wait_ready(timeout=90) == 1
    assert world.guest.wait_carrier(MAC, True), world.guest.lines
    world.pci = _pci_address(world)
    world.guest.add_addr(MAC, RED + '10/24')
    result = world.guest.ping(RED + '1', count=3)
    assert result.ok, result


def test_move_to_blue_same_nic(world):
    cli(world, 'connect', world.port_id, 'blue')
    assert fixtures.master_of(world.host, world.tap) == 'br-blue'
    world.host.run(['ip', 'addr', 'add', BLUE + '1/24', 'dev', 'br-blue'])
    world.guest.add_addr(MAC, BLUE + '10/24')
    result = world.guest.ping(BLUE + '1', count=3)
    assert result.ok, result
    assert not world.guest.ping(RED + '1', count=1).ok
    assert _pci_address(world) == world.pci


def test_unplug_the_cable_and_back(world):
    cli(world, 'disconnect', world.port_id)
    assert fixtures.master_of(world.host, world.tap) is None
    assert not world.guest.ping(BLUE + '1', count=1).ok
    cli(world, 'connect', world.port_id)
    assert world.guest.ping(BLUE + '1', count=3).ok
    assert _pci_address(world) == world.pci


def test_guest_carrier_follows_the_cable(world):
    cli(world, 'disconnect', world.port_id)
    assert world.guest.wait_carrier(MAC, False), world.guest.lines
    cli(world, 'connect', world.port_id)
    assert world.guest.wait_carrier(MAC, True), world.guest.lines
    assert world.guest.ping(BLUE + '1', count=3).ok
    assert _pci_address(world) == world.pci


def test_nova_unplug_then_the_agent_unplugs(world):
    # nova's destroy: the guest goes, then unplug_tap deletes the tap.
    world.guest.destroy()
    world.guest = None
    result = nova_compute(world, 'unplug')
    assert result.returncode == 0, result.stderr
    assert world.tap not in fixtures.links(world.host)
    _wait(lambda: _record(world)['health'] == 'waiting')
    # Neutron unbinds the port: the agent unplugs it.
    assert cli(world, 'unplug', world.port_id) == {
        'released': world.port_id}
    assert cli(world, 'endpoint', 'list') == []
    assert cli(world, 'reconcile')['removed'] == []
    links = fixtures.links(world.host)
    assert 'br-blue' not in links and 'br-red' in links
    assert not [n for n, link in links.items()
                if 'vif_plug_dyn' in link.get('ifalias', '')]
    world.watch.send_signal(signal.SIGTERM)
    out, err = world.watch.communicate(timeout=30)
    assert world.watch.returncode == 0, err
    summary = json.loads(out)
    assert summary['failed'] == 0 and summary['restored'] >= 1
