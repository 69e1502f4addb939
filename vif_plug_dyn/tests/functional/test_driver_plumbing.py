"""Drivers start the host interfaces their networks stand on: a direct
pool on a defined (not yet existing) bridge device, and a bridge network
whose untagged uplink is a defined ethernet (adopted, then enslaved)."""

import uuid

import pytest

from vif_plug_dyn import ports
from vif_plug_dyn.tests.functional import fixtures

NETWORKS = {
    'blue': "<network type='direct'><name>blue</name>"
            "<forward mode='bridge'><interface dev='pool0'/></forward>"
            "</network>",
    'red': "<network type='bridge'><name>red</name>"
           "<bridge name='br-up'/><uplink dev='eth9'/></network>",
    'plain': "<network type='bridge'><name>plain</name>"
             "<bridge name='br-plain'/><uplink dev='eth8'/></network>",
}
INTERFACES = {
    'pool0': "<interface type='bridge' name='pool0'>"
             "<start mode='onboot'/><bridge stp='off' delay='0'/>"
             "</interface>",
    'eth9': "<interface type='ethernet' name='eth9'>"
            "<start mode='onboot'/><mtu size='1400'/></interface>",
}


@pytest.fixture(scope='module')
def host():
    with fixtures.private_host('plumb') as ns:
        for dev, peer in (('eth9', 'far9'), ('eth8', 'far8')):
            ns.run(['ip', 'link', 'add', dev, 'type', 'veth', 'peer',
                    'name', peer])
        yield ns


@pytest.fixture
def manager(host, tmp_path):
    iface_dir = tmp_path / 'interfaces'
    iface_dir.mkdir()
    for name, xml in INTERFACES.items():
        (iface_dir / (name + '.xml')).write_text(xml)
    with fixtures.managed(tmp_path, host.name, NETWORKS,
                          interface_dir=str(iface_dir)) as mgr:
        yield mgr


def _port(network):
    return ports.Port(port_id=str(uuid.uuid4()), mac='52:54:00:a0:00:01',
                      network=network)


def test_direct_pool_device_started_on_demand(host, manager):
    assert 'pool0' not in fixtures.links(host)
    port = _port('blue')
    manager.request_endpoint(port, ['ethernet'])
    links = fixtures.links(host)
    assert links['pool0']['linkinfo']['info_kind'] == 'bridge'
    assert 'UP' in links['pool0']['flags']
    assert links[port.macvlan_name]['link'] == 'pool0'


def test_defined_uplink_is_enslaved(host, manager):
    port = _port('red')
    manager.request_endpoint(port, ['ethernet'])
    links = fixtures.links(host)
    assert links['eth9']['master'] == 'br-up'
    assert links['eth9']['mtu'] == 1400
    assert links['eth9']['ifalias'].startswith('vif_plug_dyn.adopted:')


def test_undefined_uplink_is_left_alone(host, manager):
    manager.request_endpoint(_port('plain'), ['ethernet'])
    links = fixtures.links(host)
    assert 'br-plain' in links and links['eth8'].get('master') is None
    assert 'ifalias' not in links['eth8']
