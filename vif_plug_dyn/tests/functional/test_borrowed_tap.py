"""A tap its hypervisor makes (nova's ``tap`` VIF type), cabled by the
library on a real kernel through the real privileged helper: the tap is
made and deleted with the very commands nova's ``plug_tap`` and
``unplug_tap`` run (``nova.privsep.linux_net``), traffic goes through a
stand-in guest on it, and the watcher follows the tap as it comes and
goes. nova's own code drives the same path in ``tox -e nova``
(``vif_plug_dyn/tests/nova``)."""

import uuid

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn import ledger as ledger_mod
from vif_plug_dyn import ports
from vif_plug_dyn.runtime import watcher as watcher_mod
from vif_plug_dyn.tests.functional import fixtures
from vif_plug_dyn.tests.functional.steering import run_until

NETWORKS = {
    'red': "<network type='bridge'><name>red</name>"
           "<bridge name='br-red' managed='no'/></network>",
    'blue': "<network type='bridge'><name>blue</name>"
            "<bridge name='br-blue'/><mtu size='1400'/></network>",
}
LENT = {'tap_maker': 'hypervisor'}
RED_IP, BLUE_IP, GUEST_IP = '192.0.2.1', '192.0.2.2', '192.0.2.10'


@pytest.fixture(scope='module')
def host():
    with fixtures.private_host('borrow') as ns:
        ns.run(['ip', 'link', 'add', 'br-red', 'type', 'bridge'])
        ns.run(['ip', 'link', 'set', 'br-red', 'up'])
        yield ns


@pytest.fixture
def manager(host, tmp_path):
    with fixtures.managed(tmp_path, host.name, NETWORKS) as mgr:
        yield mgr


def _port(n=1):
    port_id = str(uuid.uuid4())
    return ports.Port(port_id=port_id, mac='52:54:00:64:00:%02x' % n,
                      network='red', tap='tap' + port_id[:11])


def nova_plug_tap(ns, dev, mac, mtu=1400):
    """What nova 34's ``plug_tap`` runs (create_tap_dev, set_device_mtu)."""
    ns.run(['ip', 'tuntap', 'add', dev, 'mode', 'tap'])
    ns.run(['ip', 'link', 'set', dev, 'address', mac])
    ns.run(['ip', 'link', 'set', dev, 'up'])
    ns.run(['ip', 'link', 'set', dev, 'mtu', str(mtu)])


def nova_unplug_tap(ns, dev):
    """What nova 34's ``unplug_tap`` runs (delete_net_dev)."""
    ns.run(['ip', 'link', 'delete', dev])


def test_cable_a_tap_nova_made(host, manager):
    port = _port()
    nova_plug_tap(host, port.tap, 'fe:16:3e:64:00:01')
    try:
        endpoint = manager.request_endpoint(port, ['ethernet'], LENT)
        assert (endpoint.type, endpoint.tap, endpoint.borrowed) == (
            'ethernet', port.tap, True)
        link = fixtures.links(host)[port.tap]
        assert link['ifalias'] == 'vif_plug_dyn.borrowed:' + port.port_id
        assert link['master'] == 'br-red'
        # Cabled, never changed otherwise: nova's MAC and MTU stay.
        assert (link['address'], link['mtu']) == ('fe:16:3e:64:00:01',
                                                  1400)
        host.run(['ip', 'addr', 'add', RED_IP + '/24', 'dev', 'br-red'])
        with fixtures.tap_guest(host, port.tap, port.mac, GUEST_IP):
            assert fixtures.ping(host, GUEST_IP)
            manager.connect(port.port_id, 'blue')
            assert fixtures.master_of(host, port.tap) == 'br-blue'
            host.run(['ip', 'addr', 'del', RED_IP + '/24', 'dev', 'br-red'])
            host.run(['ip', 'addr', 'add', BLUE_IP + '/24', 'dev',
                      'br-blue'])
            assert fixtures.ping(host, GUEST_IP)
            manager.disconnect(port.port_id)
            assert fixtures.master_of(host, port.tap) is None
            assert not fixtures.ping(host, GUEST_IP, count=1)
            manager.connect(port.port_id)
            assert fixtures.ping(host, GUEST_IP)
        # The helper refuses to delete it, or to change more than its
        # cable, whoever asks.
        with pytest.raises(exception.DeviceNotOwned):
            manager.context.host.delete([port.tap])
        with pytest.raises(exception.DeviceNotOwned):
            manager.context.host.set_link(port.tap, mtu=1500)
        manager.release_endpoint(port.port_id)
        link = fixtures.links(host)[port.tap]
        assert 'ifalias' not in link and 'master' not in link
        assert 'br-blue' not in fixtures.links(host)
        assert manager.ledger.list_ports() == []
    finally:
        nova_unplug_tap(host, port.tap)


def test_only_a_foreign_tap_is_borrowed(host, manager):
    port = _port(2)
    # A layer-3 tun of that name is not a guest's tap.
    host.run(['ip', 'tuntap', 'add', port.tap, 'mode', 'tun'])
    try:
        with pytest.raises(exception.DeviceNotBorrowable) as err:
            manager.request_endpoint(port, ['ethernet'], LENT)
        assert port.tap in str(err.value) and 'tun' in str(err.value)
        assert manager.ledger.list_ports() == []
        assert 'ifalias' not in fixtures.links(host)[port.tap]
    finally:
        host.run(['ip', 'link', 'del', port.tap])
    # A tap the library made is its own, not borrowed.
    mine = manager.request_endpoint(_port(3), ['ethernet'])
    with pytest.raises(exception.DeviceNotBorrowable):
        manager.context.host.run([{'op': 'borrow', 'name': mine.tap,
                                   'tag': mine.port_id}])


def test_watcher_follows_the_tap(host, manager):
    port = _port(4)
    manager.request_endpoint(port, ['ethernet'], LENT)
    assert manager.ledger.get_port(port.port_id).health == \
        ledger_mod.WAITING
    watcher = watcher_mod.Watcher(manager)

    def health():
        return manager.ledger.get_port(port.port_id).health

    try:
        watcher.run_once(0)
        # nova plugs after the agent: cabled the moment it appears.
        nova_plug_tap(host, port.tap, 'fe:16:3e:64:00:04')
        report = run_until(watcher, lambda: health() == ledger_mod.HEALTHY)
        assert report.restored == [port.port_id] and not report.failed
        assert fixtures.master_of(host, port.tap) == 'br-red'
        # nova's unplug (or a hard reboot): the port waits, no error.
        nova_unplug_tap(host, port.tap)
        report = run_until(watcher, lambda: health() == ledger_mod.WAITING)
        assert report.waiting == [port.port_id]
        assert (report.degraded, report.failed) == ([], [])
        # ...and the next tap is cabled again.
        nova_plug_tap(host, port.tap, 'fe:16:3e:64:00:04')
        run_until(watcher, lambda: health() == ledger_mod.HEALTHY)
        assert fixtures.master_of(host, port.tap) == 'br-red'
        manager.release_endpoint(port.port_id)
        nova_unplug_tap(host, port.tap)
        report = watcher.run_once(0.5)
        assert (report.waiting, report.degraded, report.failed) == (
            [], [], [])
        assert watcher.map.deps == {}
    finally:
        watcher.close()
        host.run(['ip', 'link', 'del', port.tap], check=False)
