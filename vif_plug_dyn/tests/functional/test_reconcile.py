"""reconcile() on real devices: rebuild what the ledger wants, remove what
no one claims."""

import uuid

import pytest

from vif_plug_dyn import ports
from vif_plug_dyn.tests.functional import fixtures

NETWORKS = {
    'red': "<network type='bridge'><name>red</name>"
           "<bridge name='br-red'/></network>",
    'blue': "<network type='direct'><name>blue</name>"
            "<forward mode='bridge'><interface dev='up0'/></forward>"
            "</network>",
}


@pytest.fixture(scope='module')
def host():
    with fixtures.private_host('recon') as ns:
        fixtures.uplink(ns, 'up0', 'wire0')
        yield ns


@pytest.fixture
def manager(host, tmp_path):
    with fixtures.managed(tmp_path, host.name, NETWORKS) as mgr:
        yield mgr


def _port(network, n):
    return ports.Port(port_id=str(uuid.uuid4()),
                      mac='52:54:00:70:00:%02x' % n, network=network)


def test_reconcile_rebuilds_after_a_reboot(host, manager):
    plugged, unplugged = _port('red', 1), _port('red', 2)
    steered = _port('blue', 3)
    manager.request_endpoints([plugged], ['ethernet'])
    manager.request_endpoints([unplugged], ['ethernet'], connected=False)
    manager.request_endpoint(steered, ['ethernet'])
    # What a reboot does: every device the library made is gone.
    host.run(['ip', 'link', 'del', plugged.tap_name])
    host.run(['ip', 'link', 'del', unplugged.tap_name])
    host.run(['ip', 'link', 'del', 'br-red'])
    host.run(['ip', 'link', 'del', steered.macvlan_name])
    result = manager.reconcile()
    assert result['restored'] == ['blue', 'red']
    links = fixtures.links(host)
    assert links[plugged.tap_name]['master'] == 'br-red'
    assert links[unplugged.tap_name].get('master') is None
    assert links[steered.macvlan_name]['link'] == 'up0'
    # A second reconcile finds nothing to do and changes nothing.
    assert manager.reconcile()['removed'] == []
    assert fixtures.links(host).keys() == links.keys()


def test_reconcile_removes_leaks_only(host, manager):
    kept = _port('red', 4)
    manager.request_endpoint(kept, ['ethernet'])
    leaked_tag = str(uuid.uuid4())
    manager.context.host.create_tap('vpdleaked0', tag=leaked_tag)
    host.run(['ip', 'link', 'add', 'operator0', 'type', 'bridge'])
    try:
        result = manager.reconcile()
        assert result['removed'] == ['vpdleaked0']
        links = fixtures.links(host)
        assert 'vpdleaked0' not in links
        assert 'operator0' in links and kept.tap_name in links
    finally:
        host.run(['ip', 'link', 'del', 'operator0'])
