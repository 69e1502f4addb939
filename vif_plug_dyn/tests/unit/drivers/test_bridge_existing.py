"""Bridge endpoints on bridges that already exist: an operator's
(``managed='no'``) or the library's own once it has a first port.

The fake host knows which devices exist and refuses an empty batch the
way the real helper does, so a driver sending one fails here.
"""

import uuid

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn import manager as manager_mod
from vif_plug_dyn import ports
from vif_plug_dyn.tests.unit.conftest import FakeHost
from vif_plug_dyn.tests.unit.conftest import write_network

NETWORKS = {
    'ops': "<network type='bridge'><name>ops</name>"
           "<bridge name='br-ops' managed='no'/></network>",
    'lan': "<network type='bridge'><name>lan</name>"
           "<bridge name='br-lan'/></network>",
}


@pytest.fixture
def setup(conf, tmp_path):
    for name, xml in NETWORKS.items():
        write_network(str(tmp_path / 'networks'), name, xml)
    host = FakeHost()
    mgr = manager_mod.EndpointManager(conf, host=host)
    yield mgr, host
    mgr.close()


def _port(network, n):
    return ports.Port(port_id=str(uuid.uuid4()),
                      mac='52:54:00:61:%02x:%02x' % (n >> 8, n & 0xff),
                      network=network)


def _ops(host):
    return [(op['op'], op.get('name')) for batch in host.batches
            for op in batch]


def test_fake_host_refuses_an_empty_batch_like_the_helper():
    with pytest.raises(exception.InvalidField, match='must not be empty'):
        FakeHost().run([])


def test_hundred_bridge_ports_on_an_operator_bridge(setup):
    mgr, host = setup
    host.add_link('br-ops')
    made = [mgr.request_endpoint(_port('ops', n), ['bridge'])
            for n in range(100)]
    assert {e.bridge for e in made} == {'br-ops'}
    # The hypervisor makes the taps and the bridge is the operator's:
    # nothing to do on the host, and no privileged call at all.
    assert host.batches == []
    for endpoint in made[:2]:
        mgr.disconnect(endpoint.port_id)
        mgr.connect(endpoint.port_id)
    mgr.release_endpoints([e.port_id for e in made])
    assert host.batches == []
    assert 'br-ops' in host.links
    assert mgr.ledger.list_ports() == []


def test_ethernet_ports_on_an_operator_bridge(setup):
    mgr, host = setup
    host.add_link('br-ops')
    first = mgr.request_endpoint(_port('ops', 1), ['ethernet'])
    second = mgr.request_endpoint(_port('ops', 2), ['ethernet'])
    assert _ops(host) == [('create_tap', first.tap),
                          ('create_tap', second.tap)]
    assert host.links[second.tap]['master'] == 'br-ops'
    mgr.release_endpoints([first.port_id, second.port_id])
    assert set(host.links) == {'br-ops'}


@pytest.mark.parametrize('types', [['bridge'], ['ethernet']])
def test_managed_bridge_made_once(setup, types):
    mgr, host = setup
    made = [mgr.request_endpoint(_port('lan', n), types)
            for n in range(3)]
    created = [name for op, name in _ops(host) if op == 'create_bridge']
    assert created == ['br-lan']
    assert host.links['br-lan']['owned']
    mgr.release_endpoint(made[0].port_id)
    assert 'br-lan' in host.links
    mgr.release_endpoints([e.port_id for e in made[1:]])
    assert 'br-lan' not in host.links


def test_missing_operator_bridge_is_refused(setup):
    mgr, host = setup
    with pytest.raises(exception.LowerDeviceMissing, match='br-ops'):
        mgr.request_endpoint(_port('ops', 1), ['bridge'])
    assert host.batches == [] and mgr.ledger.list_ports() == []
