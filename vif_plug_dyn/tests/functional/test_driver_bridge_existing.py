"""Bridge endpoints on bridges that already exist, on real devices: an
operator's bridge (``managed='no'``) and the library's own once it has a
first port; both endpoint types; a hundred ports one at a time."""

import uuid

import pytest

from vif_plug_dyn import ports
from vif_plug_dyn.tests.functional import fixtures

NETWORKS = {
    'ops': "<network type='bridge'><name>ops</name>"
           "<bridge name='br-ops' managed='no'/></network>",
    'lan': "<network type='bridge'><name>lan</name>"
           "<bridge name='br-lan'/></network>",
}


@pytest.fixture(scope='module')
def host():
    with fixtures.private_host('brex') as ns:
        yield ns


@pytest.fixture
def manager(host, tmp_path):
    with fixtures.managed(tmp_path, host.name, NETWORKS) as mgr:
        yield mgr


@pytest.fixture
def operator_bridge(host):
    host.run(['ip', 'link', 'add', 'br-ops', 'type', 'bridge'])
    host.run(['ip', 'link', 'set', 'br-ops', 'up'])
    try:
        yield 'br-ops'
    finally:
        host.run(['ip', 'link', 'del', 'br-ops'])


def _port(network, n):
    return ports.Port(port_id=str(uuid.uuid4()),
                      mac='52:54:00:62:%02x:%02x' % (n >> 8, n & 0xff),
                      network=network)


def _hypervisor_taps(host, names, bridge):
    """What libvirt does for <interface type='bridge'> at guest start."""
    lines = ['tuntap add %s mode tap' % n for n in names]
    lines += ['link set %s master %s up' % (n, bridge) for n in names]
    host.run(['ip', '-batch', '-'], input='\n'.join(lines) + '\n')


@pytest.mark.parametrize('network', ['ops', 'lan'])
def test_second_and_third_bridge_ports(host, manager, operator_bridge,
                                       network):
    bridge = 'br-' + network
    made = []
    for n in range(3):
        endpoint = manager.request_endpoint(_port(network, n), ['bridge'])
        assert endpoint.bridge == bridge
        made.append(endpoint)
    taps = [e.tap for e in made]
    _hypervisor_taps(host, taps, bridge)
    links = fixtures.links(host)
    assert all(links[t]['master'] == bridge for t in taps)
    manager.disconnect(made[1].port_id)
    manager.connect(made[1].port_id)
    manager.release_endpoint(made[0].port_id)
    assert bridge in fixtures.links(host)
    manager.release_endpoints([e.port_id for e in made[1:]])
    links = fixtures.links(host)
    # The hypervisor's taps are never the library's to delete.
    assert all(t in links for t in taps)
    host.run(['ip', '-batch', '-'],
             input=''.join('link del %s\n' % t for t in taps))
    # The operator's bridge stays; the library's goes with its last port.
    assert (bridge in fixtures.links(host)) == (network == 'ops')
    assert manager.ledger.list_ports() == []


@pytest.mark.parametrize('network', ['ops', 'lan'])
def test_second_and_third_ethernet_ports(host, manager, operator_bridge,
                                         network):
    bridge = 'br-' + network
    made = [manager.request_endpoint(_port(network, n), ['ethernet'])
            for n in range(3)]
    links = fixtures.links(host)
    assert [links[e.tap]['master'] for e in made] == [bridge] * 3
    manager.connect(made[2].port_id, 'lan' if network == 'ops' else 'ops')
    manager.release_endpoints([e.port_id for e in made])
    links = fixtures.links(host)
    assert not [e.tap for e in made if e.tap in links]
    assert ('br-ops' in links, 'br-lan' in links) == (True, False)
    assert manager.ledger.devices() == []


def test_hundred_bridge_ports_on_an_operator_bridge(host, manager,
                                                    operator_bridge):
    batch = [_port('ops', n) for n in range(100)]
    made = [manager.request_endpoint(port, ['bridge']) for port in batch]
    assert {e.bridge for e in made} == {'br-ops'}
    taps = [e.tap for e in made]
    _hypervisor_taps(host, taps, 'br-ops')
    assert len(fixtures.links(host)) >= 101
    for endpoint in (made[0], made[99]):
        manager.disconnect(endpoint.port_id)
        manager.connect(endpoint.port_id)
    for endpoint in made:
        manager.release_endpoint(endpoint.port_id)
    links = fixtures.links(host)
    assert 'br-ops' in links and all(t in links for t in taps)
    assert manager.ledger.list_ports() == []
    host.run(['ip', '-batch', '-'],
             input=''.join('link del %s\n' % t for t in taps))
