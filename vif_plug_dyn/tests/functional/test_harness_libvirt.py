"""Functional tests of the libvirt test harness itself.

A private libvirtd + QEMU (TCG) guest in a throw-away network namespace:
the guest must see carrier on a bridge NIC and a macvtap NIC, lose it when
libvirt sets the link down, and ping through the bridge to a second
namespace.  Needs root, libvirtd, QEMU and libvirt-python
(bindep-libvirt.txt, requirements-harness.txt); skipped otherwise.
"""

import os
import pathlib
import subprocess
import time

import pytest

from vif_plug_dyn.tests.functional.harness import libvirtd as lvh
from vif_plug_dyn.tests.functional.harness.netns import NetNamespace

_missing = lvh.missing_requirements()
pytestmark = pytest.mark.skipif(_missing is not None,
                                reason=str(_missing))

BR_MAC = "52:54:00:5e:00:01"
DIRECT_MAC = "52:54:00:5e:00:02"
GUEST_IP = "192.0.2.10/24"
PEER_IP = "192.0.2.1"


def _netns_names():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True,
                         text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def images():
    return lvh.guest_images()


def test_netns_removed_after_failure():
    with pytest.raises(RuntimeError, match="boom"):
        with NetNamespace("fail") as ns:
            name = ns.name
            sleeper = ns.popen(["sleep", "300"])
            ns.run(["ip", "link", "add", "vb0", "type", "bridge"])
            assert name in _netns_names()
            raise RuntimeError("boom")
    assert name not in _netns_names()
    assert sleeper.poll() is not None


def test_two_private_daemons_leave_host_config_alone():
    etc_before = sorted((e.name, e.stat().st_mtime_ns)
                        for e in os.scandir("/etc/libvirt"))
    run_existed = os.path.exists("/run/libvirt")
    with NetNamespace("lva") as ns_a, NetNamespace("lvb") as ns_b:
        with lvh.Libvirtd(ns_a) as a, lvh.Libvirtd(ns_b) as b:
            assert a.uri != b.uri
            assert a.conn.listAllDomains() == []
            assert b.conn.listAllDomains() == []
            pids = [p.pid for p in (a._daemons["libvirtd"],
                                    b._daemons["libvirtd"])]
            assert all(_alive(p) for p in pids)
            # the daemons' sockets exist only in the private run dirs
            assert os.path.exists(a.socket_path)
            assert not os.path.exists("/run/libvirt/libvirt-sock")
            roots = [a.root, b.root]
    assert not any(_alive(p) for p in pids)
    assert not any(os.path.exists(r) for r in roots)
    assert sorted((e.name, e.stat().st_mtime_ns)
                  for e in os.scandir("/etc/libvirt")) == etc_before
    assert os.path.exists("/run/libvirt") == run_existed


def test_guest_carrier_link_state_and_ping(images):
    kernel, initrd = images
    ns_before = _netns_names()
    started_pids = []
    our_ns = []
    with NetNamespace("lvh") as host, NetNamespace("peer") as peer:
        our_ns += [host.name, peer.name]
        # host side: br0 <- veth -> peer namespace (192.0.2.1)
        host.run(["ip", "link", "add", "br0", "type", "bridge"])
        host.run(["ip", "link", "add", "vpeer0", "type", "veth",
                  "peer", "name", "vpeer1"])
        host.run(["ip", "link", "set", "vpeer1", "netns", peer.name])
        host.run(["ip", "link", "set", "vpeer0", "master", "br0"])
        for dev in ("br0", "vpeer0"):
            host.run(["ip", "link", "set", dev, "up"])
        peer.run(["ip", "addr", "add", f"{PEER_IP}/24", "dev", "vpeer1"])
        peer.run(["ip", "link", "set", "vpeer1", "up"])
        # lower device for the macvtap: a veth whose peer is up (carrier)
        host.run(["ip", "link", "add", "vlow0", "type", "veth",
                  "peer", "name", "vlow1"])
        for dev in ("vlow0", "vlow1"):
            host.run(["ip", "link", "set", dev, "up"])

        with lvh.Libvirtd(host) as lv:
            started_pids += [p.pid for p in lv._daemons.values()]
            bridge_nic = (f"<interface type='bridge'>"
                          f"<mac address='{BR_MAC}'/>"
                          "<source bridge='br0'/></interface>")
            direct_nic = (f"<interface type='direct'>"
                          f"<mac address='{DIRECT_MAC}'/>"
                          "<source dev='vlow0' mode='bridge'/></interface>")
            guest = lv.guest([bridge_nic, direct_nic],
                             kernel=kernel, initrd=initrd)
            with guest:
                qemu_pid = int(pathlib.Path(
                    lv.run_dir, "libvirt", "qemu",
                    f"{guest.name}.pid").read_text())
                started_pids.append(qemu_pid)
                assert guest.wait_ready(timeout=90) == 2

                # both NICs up with carrier
                assert guest.wait_carrier(BR_MAC, True), guest.lines
                assert guest.wait_carrier(DIRECT_MAC, True), guest.lines
                links = host.check_output(["ip", "-o", "link"])
                assert "macvtap" in links and "vnet" in links, links

                # libvirt link state down -> guest loses carrier (only there)
                mark = guest.mark()
                t_down = time.monotonic()
                guest.set_link(BR_MAC, up=False)
                guest.wait_for(rf"VPD-LINK \S+ {BR_MAC} carrier=0",
                               timeout=15, since=mark)
                t_down = time.monotonic() - t_down
                assert guest.carrier(BR_MAC) is False
                assert guest.carrier(DIRECT_MAC) is True
                assert guest.state() == {BR_MAC: False, DIRECT_MAC: True}
                link = guest.interface_element(BR_MAC).find("link")
                assert link is not None and link.get("state") == "down"

                guest.add_addr(BR_MAC, GUEST_IP)
                down = guest.ping(PEER_IP, count=1)
                assert not down.ok, down

                guest.set_link(BR_MAC, up=True)
                assert guest.wait_carrier(BR_MAC, True), guest.lines[-10:]
                res = guest.ping(PEER_IP, count=3)
                assert res.ok and res.received >= 1, res
                assert res.sent == 3

                t = guest.timings
                print(f"\ntimings: define {t['define']:.2f}s "
                      f"start {t['start']:.2f}s "
                      f"start-to-READY {t['ready']:.2f}s "
                      f"link-down-seen {t_down:.2f}s")
            assert lv.conn.listAllDomains() == []

    # everything we started is gone
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in started_pids) and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in started_pids if _alive(p)]
    after = _netns_names()
    assert not set(our_ns) & after
    # other sessions may add/remove their own namespaces meanwhile; ours
    # must not leave any behind
    assert not {n for n in after - ns_before
                if n.startswith(("vpdt-lvh-", "vpdt-peer-"))}
