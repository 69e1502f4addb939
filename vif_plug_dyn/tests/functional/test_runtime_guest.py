"""The runtime cable with a real QEMU guest (issue: boot unplugged, plug,
move, heal — with no PCI hot-plug in the guest).

One busybox guest boots under a private libvirtd inside host *alpha*, a
namespace that also runs the privileged helper daemon. Its only NIC is
the libvirt adapter's rendering of an ``ethernet`` endpoint the library
built on *red* (a Linux bridge) with its cable out. The tests run in file
order and share the guest: plug into red and ping, move to *blue* (a
steered direct network on ``up0``, whose far end is in the *lan*
namespace) and ping there, all on the same guest PCI device.
"""

import uuid
import xml.etree.ElementTree as ET

import pytest

from vif_plug_dyn import manager as manager_mod
from vif_plug_dyn import opts
from vif_plug_dyn import ports
from vif_plug_dyn.runtime import watcher as watcher_mod
from vif_plug_dyn.tests.functional import fixtures
from vif_plug_dyn.tests.functional.harness import libvirtd as lvh
from vif_plug_dyn.tests.functional.harness.netns import NetNamespace

_missing = lvh.missing_requirements()
pytestmark = pytest.mark.skipif(_missing is not None, reason=str(_missing))

MAC = '52:54:00:6a:00:01'
NETWORKS = {
    'red': "<network type='bridge'><name>red</name>"
           "<bridge name='br-red'/></network>",
    'blue': "<network type='direct'><name>blue</name>"
            "<forward mode='bridge'><interface dev='up0'/></forward>"
            "</network>",
}


class World:
    pass


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    from vif_plug_dyn.virt.libvirt import adapter as adapter_mod
    images = lvh.guest_images()
    tmp = tmp_path_factory.mktemp('runtime')
    with fixtures.private_host('rtq') as host, NetNamespace('rtqlan') as lan:
        fixtures.uplink(host, 'up0', 'lan0', 'netns', lan.name)
        lan.run(['ip', 'link', 'set', 'lan0', 'up'])
        lan.run(['ip', 'addr', 'add', '198.51.100.1/24', 'dev', 'lan0'])
        with lvh.Libvirtd(host) as lv:
            conf = fixtures.make_conf(tmp, host.name, NETWORKS)
            conf.set_override('uri', lv.uri, opts.LIBVIRT_GROUP)
            adapter = adapter_mod.LibvirtAdapter(conf)
            mgr = manager_mod.EndpointManager(conf, hypervisor=adapter)
            watcher = watcher_mod.Watcher(mgr)
            vm = str(uuid.uuid4())
            port = ports.Port(port_id=str(uuid.uuid4()), mac=MAC,
                              network='red', vm_uuid=vm)
            endpoint = mgr.request_endpoint(port, adapter.accepted_types(),
                                            connected=False)
            guest = lv.guest([adapter.interface_config(endpoint,
                                                       link_up=False)],
                             uuid=vm, kernel=images[0], initrd=images[1])
            world = World()
            world.__dict__.update(host=host, lan=lan, lv=lv, mgr=mgr,
                                  adapter=adapter, port=port, guest=guest,
                                  endpoint=endpoint)
            try:
                assert guest.wait_ready(timeout=90) == 1
                watcher.start()
                yield world
            finally:
                watcher.stop()
                watcher.close()
                mgr.release_endpoint(port.port_id)
                mgr.close()
                adapter.close()
                guest.destroy()


def _pci_address(world):
    root = ET.fromstring(world.guest.dom.XMLDesc(0))
    for iface in root.iter('interface'):
        if iface.find('mac').get('address') == MAC:
            address = iface.find('address')
            return tuple(sorted(address.attrib.items()))
    raise AssertionError('the NIC is gone')


def test_boots_with_its_cable_out(world):
    assert world.endpoint.type == 'ethernet'
    assert world.guest.wait_carrier(MAC, False), world.guest.lines
    assert fixtures.master_of(world.host, world.endpoint.tap) is None
    world.pci = _pci_address(world)


def test_plugged_into_red_carries_traffic(world):
    world.mgr.connect(world.port.port_id)
    assert world.guest.wait_carrier(MAC, True), world.guest.lines
    assert fixtures.master_of(world.host, world.endpoint.tap) == 'br-red'
    world.host.run(['ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'br-red'])
    world.guest.add_addr(MAC, '192.0.2.10/24')
    result = world.guest.ping('192.0.2.1', count=3)
    assert result.ok, result


def test_moved_to_blue_same_nic_traffic_there(world):
    world.mgr.connect(world.port.port_id, 'blue')
    links = fixtures.links(world.host)
    assert links[world.endpoint.tap].get('master') is None
    assert links[world.port.macvlan_name]['link'] == 'up0'
    assert _pci_address(world) == world.pci
    assert world.guest.carrier(MAC) is True
    world.guest.add_addr(MAC, '198.51.100.10/24')
    result = world.guest.ping('198.51.100.1', count=3)
    assert result.ok, result
    assert not world.guest.ping('192.0.2.1', count=1).ok


def test_unplugged_guest_loses_carrier_keeps_nic(world):
    world.mgr.disconnect(world.port.port_id)
    assert world.guest.wait_carrier(MAC, False), world.guest.lines
    assert world.port.macvlan_name not in fixtures.links(world.host)
    assert _pci_address(world) == world.pci
    world.mgr.connect(world.port.port_id)
    assert world.guest.wait_carrier(MAC, True), world.guest.lines
    assert world.guest.ping('198.51.100.1', count=3).ok


def test_lower_device_lost_and_back_without_hot_unplug(world):
    """The watcher drops the guest's link when blue's lower device goes
    and rebuilds the host side when it returns; the guest keeps its NIC."""
    world.host.run(['ip', 'link', 'set', 'up0', 'netns', world.lan.name])
    assert world.guest.wait_carrier(MAC, False), world.guest.lines
    assert world.mgr.ledger.get_port(world.port.port_id).health == \
        'degraded'
    world.lan.run(['ip', 'link', 'set', 'up0', 'netns', world.host.name])
    world.host.run(['ip', 'link', 'set', 'up0', 'up'])
    assert world.guest.wait_carrier(MAC, True), world.guest.lines
    assert world.mgr.ledger.get_port(world.port.port_id).health == 'ok'
    assert fixtures.links(world.host)[world.port.macvlan_name]['link'] == \
        'up0'
    assert _pci_address(world) == world.pci
    assert world.guest.ping('198.51.100.1', count=3).ok
