"""A real live migration between two private libvirtds, driven by the
migration flow.

Two network namespaces (source and destination) joined by a veth with
private addresses; a libvirtd in each listens on TCP on its end of it
only. Each host has its own definition of network ``red`` (noop driver:
bridge ``br-src`` on the source, ``br-dst`` on the destination, made here
by hand) and its own ledger. A busybox guest boots on the source with the
NIC the source manager's endpoint renders; the flow requests the
destination endpoint, rewrites the definition and migrates with
``migrateToURI3`` (peer to peer, TCP on the veth); afterwards the guest's
tap is on ``br-dst`` and the guest, still running, pings a peer namespace
through it. A migration to a daemon that is not there fails first, typed,
and releases the destination endpoint again.

Needs root, libvirtd, QEMU and libvirt-python; skipped otherwise.
"""

import json
import os
import time
import uuid
import xml.etree.ElementTree as ET

import pytest
from oslo_config import cfg

from vif_plug_dyn import endpoints as ep
from vif_plug_dyn import exception
from vif_plug_dyn import manager as manager_mod
from vif_plug_dyn import opts
from vif_plug_dyn import ports
from vif_plug_dyn.tests.functional.harness import libvirtd as lvh
from vif_plug_dyn.tests.functional.harness.netns import NetNamespace

_missing = lvh.missing_requirements()
pytestmark = pytest.mark.skipif(_missing is not None, reason=str(_missing))

if _missing is None:
    import libvirt

    from vif_plug_dyn.virt import migration
    from vif_plug_dyn.virt.libvirt import adapter as adapter_mod
    from vif_plug_dyn.virt.libvirt import migrate as migrate_mod

# TEST-NET-style private addresses, only ever inside our namespaces
SRC_ADDR = "198.18.0.1"
DST_ADDR = "198.18.0.2"
GUEST_IP = "192.0.2.20/24"
PEER_IP = "192.0.2.1"
MAC = "52:54:00:6e:00:01"


def _manager(root, bridge):
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override("state_path", os.path.join(root, "state"), opts.GROUP)
    netdir = os.path.join(root, "networks")
    os.makedirs(netdir)
    with open(os.path.join(netdir, "red.xml"), "w") as f:
        f.write("<network type='bridge'><name>red</name>"
                f"<driver name='noop'/><bridge name='{bridge}'/></network>")
    conf.set_override("network_dir", netdir, opts.GROUP)
    return manager_mod.EndpointManager(conf)


def _adapter(uri):
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override("uri", uri, opts.LIBVIRT_GROUP)
    return adapter_mod.LibvirtAdapter(conf)


def _master(ns, dev):
    return json.loads(ns.check_output(
        ["ip", "-j", "link", "show", "dev", dev]))[0].get("master")


def test_live_migration_moves_the_nic(tmp_path):
    kernel, initrd = lvh.guest_images()
    with NetNamespace("mgs") as src, NetNamespace("mgd") as dst, \
            NetNamespace("mgp") as peer:
        # the "management network": a veth between the two hosts
        src.run(["ip", "link", "add", "vmig0", "type", "veth",
                 "peer", "name", "vmig1"])
        src.run(["ip", "link", "set", "vmig1", "netns", dst.name])
        src.run(["ip", "addr", "add", f"{SRC_ADDR}/30", "dev", "vmig0"])
        src.run(["ip", "link", "set", "vmig0", "up"])
        dst.run(["ip", "addr", "add", f"{DST_ADDR}/30", "dev", "vmig1"])
        dst.run(["ip", "link", "set", "vmig1", "up"])
        # network red: br-src here, br-dst there (with a peer behind it)
        src.run(["ip", "link", "add", "br-src", "type", "bridge"])
        src.run(["ip", "link", "set", "br-src", "up"])
        dst.run(["ip", "link", "add", "br-dst", "type", "bridge"])
        dst.run(["ip", "link", "set", "br-dst", "up"])
        dst.run(["ip", "link", "add", "vpeer0", "type", "veth",
                 "peer", "name", "vpeer1"])
        dst.run(["ip", "link", "set", "vpeer1", "netns", peer.name])
        dst.run(["ip", "link", "set", "vpeer0", "master", "br-dst", "up"])
        peer.run(["ip", "addr", "add", f"{PEER_IP}/24", "dev", "vpeer1"])
        peer.run(["ip", "link", "set", "vpeer1", "up"])

        source = _manager(str(tmp_path / "src"), "br-src")
        dest = _manager(str(tmp_path / "dst"), "br-dst")
        with lvh.Libvirtd(src, listen_tcp=SRC_ADDR) as a, \
                lvh.Libvirtd(dst, listen_tcp=DST_ADDR) as b:
            adapter = _adapter(a.uri)
            try:
                port = ports.Port(port_id=str(uuid.uuid4()), mac=MAC,
                                  network="red")
                src_ep = source.request_endpoint(port, (ep.BRIDGE,))
                assert src_ep.bridge == "br-src"
                guest = a.guest([adapter.interface_config(src_ep)],
                                kernel=kernel, initrd=initrd)
                assert guest.wait_ready(timeout=90) == 1
                assert guest.wait_carrier(MAC, True)
                assert _master(src, src_ep.tap) == "br-src"

                dst_dir = os.path.join(b.root, "guests", guest.name)
                os.makedirs(dst_dir)

                # NOTE: both daemons run on one machine, so the guest's
                # serial console file and command socket need other paths
                # on the destination (a real pair of hosts would share
                # the layout).
                def rewrite(xml):
                    return xml.replace(guest.dir, dst_dir)

                records = [source.ledger.get_port(port.port_id)]
                uptime_before = float(guest.run(
                    "cat", "/proc/uptime").output[0].split()[0])

                # 1. a destination daemon that is not there: typed error,
                # destination endpoint released, guest still on the source
                nowhere = migration.MigrationFlow(
                    adapter, source, dest, migrate_mod.LibvirtMigrator(
                        adapter, f"qemu+tcp://{DST_ADDR}:1/system",
                        migrate_uri=f"tcp://{DST_ADDR}", rewrite=rewrite),
                    destination_name="nowhere")
                with pytest.raises(exception.HypervisorOperationFailed) as e:
                    nowhere.run(guest.name, adapter.domain_xml(
                        guest.name, migratable=True), records)
                assert f"migration to qemu+tcp://{DST_ADDR}:1/system" in \
                    str(e.value)
                assert dest.ledger.list_ports() == []
                assert source.ledger.get_port(port.port_id) is not None
                assert guest.dom.isActive()

                # 2. the real thing
                flow = migration.MigrationFlow(
                    adapter, source, dest, migrate_mod.LibvirtMigrator(
                        adapter, b.tcp_uri, migrate_uri=f"tcp://{DST_ADDR}",
                        rewrite=rewrite),
                    destination_name="host-b")
                t = time.monotonic()
                result = flow.run(guest.name, adapter.domain_xml(
                    guest.name, migratable=True), records)
                took = time.monotonic() - t
                print(f"\nmigration flow (TCG, 128 MiB): {took:.2f} s")

                # the source forgot the guest and the port
                assert a.conn.listAllDomains() == []
                assert source.ledger.list_ports() == []
                # the destination runs it, persistently, on br-dst
                dom = b.conn.lookupByName(guest.name)
                assert dom.isActive() and dom.isPersistent()
                dest_ep = result.dest_endpoints[MAC]
                assert dest.get_endpoint(port.port_id) == dest_ep
                assert dest_ep.bridge == "br-dst"
                for flags in (0, libvirt.VIR_DOMAIN_XML_INACTIVE):
                    ifaces = ET.fromstring(dom.XMLDesc(flags)).findall(
                        "devices/interface")
                    assert len(ifaces) == 1
                    assert ifaces[0].find("mac").get("address") == MAC
                    assert ifaces[0].find("source").get("bridge") == \
                        "br-dst"
                assert _master(dst, dest_ep.tap) == "br-dst"

                # the same guest (no reboot) now reaches the peer via br-dst
                guest.dom = dom
                guest.close_command_channel()
                guest.command_path = os.path.join(dst_dir, "cmd.sock")
                uptime = guest.run("cat", "/proc/uptime").output[0]
                assert float(uptime.split()[0]) > uptime_before
                guest.add_addr(MAC, GUEST_IP)
                res = guest.ping(PEER_IP, count=3)
                assert res.ok and res.received >= 1, res
                assert guest.state() == {MAC: True}
            finally:
                adapter.close()
                source.close()
                dest.close()
