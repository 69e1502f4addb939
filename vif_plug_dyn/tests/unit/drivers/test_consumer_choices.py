"""Driver options a consumer that renders its own hypervisor configuration
needs (the os-vif plugin): the hypervisor's tap on a Linux bridge, and a
pinned SR-IOV VF."""

import uuid

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn import manager as manager_mod
from vif_plug_dyn import opts
from vif_plug_dyn import ports
from vif_plug_dyn.tests.unit.conftest import write_network
from vif_plug_dyn.tests.unit.drivers.test_hostdev import FAST
from vif_plug_dyn.tests.unit.drivers.test_hostdev import RecordingHost
from vif_plug_dyn.tests.unit.drivers.test_hostdev import make_pf

LAN = ("<network type='bridge'><name>lan</name>"
       "<bridge name='br-lan'/></network>")


class BridgeHost:
    """Records batches; knows the devices they made."""

    def __init__(self):
        self.batches = []
        self.links = {}

    def exists(self, name):
        return name in self.links

    def get_link(self, name):
        if name not in self.links:
            raise exception.DeviceNotFound(device=name)
        return self.links[name]

    def run(self, batch):
        self.batches.append(batch)
        for op in batch:
            if op['op'].startswith('create_'):
                self.links[op['name']] = {'owned': True, 'tag': op['tag']}
            if op['op'] == 'delete':
                for name in op['names']:
                    self.links.pop(name, None)
        return [{'status': 'ok'} for _ in batch]

    def delete(self, names, missing_ok=True):
        return self.run([{'op': 'delete', 'names': list(names)}])[0]


def _port(network, n=1, tap=None):
    return ports.Port(port_id=str(uuid.uuid4()),
                      mac='52:54:00:60:00:%02x' % n, network=network,
                      tap=tap)


@pytest.fixture
def bridge_manager(conf, tmp_path):
    write_network(str(tmp_path / 'networks'), 'lan', LAN)
    host = BridgeHost()
    mgr = manager_mod.EndpointManager(conf, host=host)
    yield mgr, host
    mgr.close()


def test_bridge_endpoint_makes_the_bridge_only(bridge_manager):
    mgr, host = bridge_manager
    port = _port('lan', tap='tapfromnova0')
    endpoint = mgr.request_endpoint(port, ['bridge'])
    assert (endpoint.bridge, endpoint.tap) == ('br-lan', 'tapfromnova0')
    made = [op['op'] for batch in host.batches for op in batch]
    assert made == ['create_bridge']
    assert [d.name for d in mgr.ledger.devices()] == []
    # The hypervisor makes its tap; releasing never deletes it.
    host.links['tapfromnova0'] = {'owned': False, 'tag': None}
    mgr.release_endpoint(port.port_id)
    deleted = [name for batch in host.batches for op in batch
               if op['op'] == 'delete' for name in op['names']]
    assert deleted == ['br-lan']
    assert 'tapfromnova0' in host.links


def test_ethernet_tap_under_the_consumers_name(bridge_manager):
    mgr, host = bridge_manager
    port = _port('lan', tap='tapfromnova1')
    mgr.request_endpoint(port, ['ethernet'])
    created = [op['name'] for batch in host.batches for op in batch
               if op['op'] == 'create_tap']
    assert created == ['tapfromnova1']
    mgr.release_endpoint(port.port_id)
    assert 'tapfromnova1' not in host.links


def test_port_tap_survives_serialisation():
    port = _port('lan', tap='tapfromnova2')
    assert ports.Port.from_primitive(port.to_primitive()) == port
    older = port.to_primitive('1.0')
    assert 'tap' not in older['vpd.data']
    assert ports.Port.from_primitive(older).tap_name.startswith('vpd')
    with pytest.raises(exception.InvalidField, match='tap'):
        _port('lan', tap='a-name-far-too-long')


@pytest.fixture
def hostdev_manager(conf, tmp_path):
    root = tmp_path / 'sys'
    make_pf(root, 'ens1f0', 2)
    conf.set_override('sysfs_root', str(root), opts.GROUP)
    write_network(str(tmp_path / 'networks'), 'fast', FAST)
    host = RecordingHost()
    mgr = manager_mod.EndpointManager(conf, host=host)
    yield mgr, host
    mgr.close()


def test_pinned_vf(hostdev_manager):
    mgr, host = hostdev_manager
    endpoint = mgr.request_endpoint(_port('fast'), ['hostdev'],
                                    {'pci_address': '0000:3B:10.1'})
    assert endpoint.pci_address == '0000:3b:10.1'
    assert host.batches[-1][0]['vf'] == 1
    with pytest.raises(exception.PoolExhausted):
        mgr.request_endpoint(_port('fast', n=2), ['hostdev'],
                             {'pci_address': '0000:3b:10.1'})
    # Unpinned, the other VF is still there.
    other = mgr.request_endpoint(_port('fast', n=3), ['hostdev'])
    assert other.pci_address == '0000:3b:10.0'


def test_pinned_vf_outside_the_network(hostdev_manager):
    mgr, _host = hostdev_manager
    with pytest.raises(exception.InvalidField, match='not a usable VF'):
        mgr.request_endpoint(_port('fast'), ['hostdev'],
                             {'pci_address': '0000:3c:10.0'})
    assert mgr.ledger.list_ports() == []
