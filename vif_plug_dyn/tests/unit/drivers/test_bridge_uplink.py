"""The bridge driver's tagged uplink: the requests built (this kernel has
no 802.1Q support, so the functional tests cannot make the VLAN device)."""

import uuid

from vif_plug_dyn import manager as manager_mod
from vif_plug_dyn import ports
from vif_plug_dyn.tests.unit.conftest import FakeHost
from vif_plug_dyn.tests.unit.conftest import write_network

TAGGED = ("<network type='bridge'><name>lab</name>"
          "<bridge name='br-lab'/><uplink dev='eth1' vlan='42'/>"
          "<mtu size='1450'/></network>")


def test_tagged_uplink_requests(conf, tmp_path):
    write_network(str(tmp_path / 'networks'), 'lab', TAGGED)
    host = FakeHost()
    mgr = manager_mod.EndpointManager(conf, host=host)
    port = ports.Port(port_id=str(uuid.uuid4()), mac='52:54:00:90:00:01',
                      network='lab')
    endpoint = mgr.request_endpoint(port, ['ethernet'])
    (batch,) = host.batches
    assert [(op['op'], op['name']) for op in batch] == [
        ('create_bridge', 'br-lab'), ('create_vlan', 'eth1.42'),
        ('set_link', 'eth1.42'), ('create_tap', endpoint.tap)]
    vlan = batch[1]
    assert (vlan['lower'], vlan['vlan_id'], vlan['mtu'], vlan['tag']) == (
        'eth1', 42, 1450, 'net:lab')
    assert batch[2]['master'] == 'br-lab'
    assert batch[3]['master'] == 'br-lab' and batch[3]['mtu'] == 1450
    driver = mgr.drivers.for_network(mgr.registry.get('lab'))
    assert driver.dependencies(endpoint, mgr.registry.get('lab')) == (
        'eth1',)
