"""A live migration driven over the bus: the controller (this test
process) asks the source host's agent to migrate a guest by name; the
agent runs the library's :class:`~vif_plug_dyn.virt.migration.
MigrationFlow` with the destination host's agent reached through the
private RabbitMQ (capability pre-check, endpoint request, rollback) and
libvirt's peer-to-peer migration between two private libvirtds.

Like ``test_libvirt_migration.py``: two namespaces joined by a veth (the
"management network" of the libvirtds), network ``red`` defined on both
(noop driver: ``br-src`` here, ``br-dst`` there, made by hand); a
busybox guest boots on the source. First a migration to a libvirtd that
is not there fails, typed, over the bus, and the destination endpoint is
released again; then the real one: afterwards the guest runs on the
destination, its NIC on ``br-dst``, it pings a peer through it, the
source's ledger forgot the port and the destination's holds it, and the
controller got the unplugged (source) and plugged (destination)
notifications.

Root, RabbitMQ, libvirtd, QEMU; skipped otherwise.
"""

import os
import time
import uuid
import xml.etree.ElementTree as ET

import pytest
from oslo_config import cfg

from vif_plug_dyn import agent as agent_mod
from vif_plug_dyn import endpoints as ep
from vif_plug_dyn import exception
from vif_plug_dyn import opts
from vif_plug_dyn import ports
from vif_plug_dyn.tests.functional import bus as bus_mod
from vif_plug_dyn.tests.functional import fixtures
from vif_plug_dyn.tests.functional.harness import libvirtd as lvh
from vif_plug_dyn.tests.functional.harness.netns import NetNamespace

_missing = lvh.missing_requirements()
pytestmark = pytest.mark.skipif(_missing is not None, reason=str(_missing))

if _missing is None:
    from vif_plug_dyn.virt.libvirt import adapter as adapter_mod

SRC_ADDR = '198.18.0.5'
DST_ADDR = '198.18.0.6'
GUEST_IP = '192.0.2.30/24'
PEER_IP = '192.0.2.1'
MAC = '52:54:00:18:00:01'


def _red(bridge):
    return ("<network type='bridge'><name>red</name><driver name='noop'/>"
            "<bridge name='%s'/></network>" % bridge)


def _xml_adapter():
    """An adapter for rendering NIC XML only (no connection)."""
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], default_config_files=[])
    return adapter_mod.LibvirtAdapter(conf)


def test_migrate_by_name_over_the_bus(tmp_path):
    fixtures.require_root()
    kernel, initrd = lvh.guest_images()
    with bus_mod.Bus(tmp_path / 'bus') as bus, \
            NetNamespace('mas') as src, NetNamespace('mad') as dst, \
            NetNamespace('map') as peer:
        src.run(['ip', 'link', 'add', 'vmig0', 'type', 'veth', 'peer',
                 'name', 'vmig1'])
        src.run(['ip', 'link', 'set', 'vmig1', 'netns', dst.name])
        src.run(['ip', 'addr', 'add', SRC_ADDR + '/30', 'dev', 'vmig0'])
        src.run(['ip', 'link', 'set', 'vmig0', 'up'])
        dst.run(['ip', 'addr', 'add', DST_ADDR + '/30', 'dev', 'vmig1'])
        dst.run(['ip', 'link', 'set', 'vmig1', 'up'])
        for ns, bridge in ((src, 'br-src'), (dst, 'br-dst')):
            ns.run(['ip', 'link', 'add', bridge, 'type', 'bridge'])
            ns.run(['ip', 'link', 'set', bridge, 'up'])
        dst.run(['ip', 'link', 'add', 'vpeer0', 'type', 'veth', 'peer',
                 'name', 'vpeer1'])
        dst.run(['ip', 'link', 'set', 'vpeer1', 'netns', peer.name])
        dst.run(['ip', 'link', 'set', 'vpeer0', 'master', 'br-dst', 'up'])
        peer.run(['ip', 'addr', 'add', PEER_IP + '/24', 'dev', 'vpeer1'])
        peer.run(['ip', 'link', 'set', 'vpeer1', 'up'])

        with lvh.Libvirtd(src, listen_tcp=SRC_ADDR) as a, \
                lvh.Libvirtd(dst, listen_tcp=DST_ADDR) as b:
            agents = []
            for name, ns, daemon, bridge in (('src', src, a, 'br-src'),
                                             ('dst', dst, b, 'br-dst')):
                agents.append(bus_mod.Agent(
                    bus, name, ns.name, tmp_path, {'red': _red(bridge)},
                    extra={'vif_plug_dyn_libvirt': {'uri': daemon.uri},
                           'vif_plug_dyn_agent': {'watch': 'false'}}))
            src_agent, dst_agent = agents
            notes = bus.notifications()
            try:
                for agent in agents:
                    agent.start()
                _run(bus, src_agent, dst_agent, a, b, src, dst, notes,
                     kernel, initrd)
            finally:
                notes.stop()
                for agent in agents:
                    assert agent.stop() in (0, None), agent.log_text()


def _run(bus, src_agent, dst_agent, a, b, src, dst, notes, kernel, initrd):
    source, dest = src_agent.client, dst_agent.client
    port = ports.Port(port_id=str(uuid.uuid4()), mac=MAC, network='red')
    [src_ep] = source.request_endpoints([port], [ep.BRIDGE])
    assert src_ep.bridge == 'br-src'
    guest = a.guest([_xml_adapter().interface_config(src_ep)],
                    kernel=kernel, initrd=initrd)
    assert guest.wait_ready(timeout=90) == 1
    assert guest.wait_carrier(MAC, True)
    dst_dir = os.path.join(b.root, 'guests', guest.name)
    os.makedirs(dst_dir)
    # NOTE: both daemons run on one machine: the guest's console and
    # command socket need other paths on the destination.
    rewrites = {guest.dir: dst_dir}

    # 1. a destination libvirtd that is not there: typed, rolled back
    with pytest.raises(exception.HypervisorOperationFailed) as err:
        source.migrate(guest.name, 'dst', 'qemu+tcp://%s:1/system' % DST_ADDR,
                       migrate_uri='tcp://' + DST_ADDR, rewrites=rewrites)
    assert 'migration to qemu+tcp://%s:1/system' % DST_ADDR in \
        str(err.value)
    assert dest.port_status() == []
    assert [r.port.port_id for r in source.port_status()] == [port.port_id]
    assert guest.dom.isActive()
    # 2. a destination host with no agent: typed timeout, nothing moved
    with pytest.raises(exception.AgentTimeout):
        bus.client('nohost', timeout=3).capabilities()

    # 3. the real thing, by name, over the bus
    uptime_before = float(guest.run('cat', '/proc/uptime').output[0].split()
                          [0])
    started = time.monotonic()
    result = source.migrate(guest.name, 'dst', b.tcp_uri,
                            migrate_uri='tcp://' + DST_ADDR,
                            rewrites=rewrites)
    print('\nmigration over the bus (TCG, 128 MiB): %.2f s (flow %.2f s)'
          % (time.monotonic() - started, result['took']))
    assert result['released'] == [port.port_id]
    dest_ep = result['dest_endpoints'][MAC]
    assert isinstance(dest_ep, ep.BridgeEndpoint)
    assert dest_ep.bridge == 'br-dst'
    assert a.conn.listAllDomains() == []
    assert source.port_status() == []
    [record] = dest.port_status()
    assert record.endpoint == dest_ep and record.cable == 'plugged'
    dom = b.conn.lookupByName(guest.name)
    assert dom.isActive() and dom.isPersistent()
    iface = ET.fromstring(dom.XMLDesc(0)).find('devices/interface')
    assert iface.find('source').get('bridge') == 'br-dst'
    assert fixtures.master_of(dst, dest_ep.tap) == 'br-dst'
    # (the rollback of 1. unplugged the port on dst once already)
    unplugged = notes.wait_for(
        lambda n: n['event_type'] == agent_mod.EVENT_UNPLUGGED and
        n['port_id'] == port.port_id and n['host'] == 'src')
    assert unplugged['migrated_to'] == 'dst'
    plugged = notes.wait_for(
        lambda n: n['event_type'] == agent_mod.EVENT_PLUGGED and
        n['port_id'] == port.port_id and n['host'] == 'dst')
    assert plugged['network'] == 'red'

    # the same guest, not rebooted, reaches the peer behind br-dst
    guest.dom = dom
    guest.close_command_channel()
    guest.command_path = os.path.join(dst_dir, 'cmd.sock')
    assert float(guest.run('cat', '/proc/uptime').output[0].split()[0]) \
        > uptime_before
    guest.add_addr(MAC, GUEST_IP)
    res = guest.ping(PEER_IP, count=3)
    assert res.ok and res.received >= 1, res
    dest.release_endpoints([port.port_id])
