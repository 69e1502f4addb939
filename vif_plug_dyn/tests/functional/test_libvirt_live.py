"""The libvirt adapter's live operations on a real libvirtd + QEMU guest.

One busybox guest (tools/guest) is booted for the whole module under a
private libvirtd in a throw-away network namespace; its two NICs are the
adapter's rendering of a ``bridge`` endpoint (on br-a) and a ``direct``
endpoint (a macvtap on a veth end). The tests run in file order and share
it: link down/up, a live move from br-a to br-b (and a ping through br-b
to a peer namespace), what libvirt refuses live, live attach of an
``ethernet`` endpoint and detach with the DEVICE_REMOVED wait, and a
detach the guest does not answer (paused) ending in a typed error.

Needs root, libvirtd, QEMU and libvirt-python (bindep-libvirt.txt);
skipped otherwise. Everything is removed afterwards: the domains, the
daemons (by PID) and the namespaces with their devices.
"""

import dataclasses
import json
import os
import time
import uuid
import xml.etree.ElementTree as ET

import pytest
from oslo_config import cfg

from vif_plug_dyn import endpoints as ep
from vif_plug_dyn import exception
from vif_plug_dyn import opts
from vif_plug_dyn.tests.functional.harness import libvirtd as lvh
from vif_plug_dyn.tests.functional.harness.netns import NetNamespace

_missing = lvh.missing_requirements()
pytestmark = pytest.mark.skipif(_missing is not None, reason=str(_missing))

if _missing is None:
    import libvirt

    from vif_plug_dyn.virt.libvirt import adapter as adapter_mod
    from vif_plug_dyn.virt.libvirt import host as host_mod
    from vif_plug_dyn.virt.libvirt import live as live_mod

BR_MAC = "52:54:00:5f:00:01"
DIRECT_MAC = "52:54:00:5f:00:02"
ETH_MAC = "52:54:00:5f:00:03"
SLOW_MAC = "52:54:00:5f:00:04"
GUEST_IP = "192.0.2.10/24"
PEER_IP = "192.0.2.1"
PORT = str(uuid.uuid4())


@dataclasses.dataclass
class Env:
    host: NetNamespace
    lv: "lvh.Libvirtd"
    adapter: "adapter_mod.LibvirtAdapter"
    guest: "lvh.Guest"
    bridge_ep: ep.BridgeEndpoint
    direct_ep: ep.DirectEndpoint
    images: tuple

    @property
    def name(self):
        return self.guest.name

    def xml(self, inactive=False):
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        return ET.fromstring(self.guest.dom.XMLDesc(flags))

    def iface(self, mac, inactive=False):
        for iface in self.xml(inactive).iter("interface"):
            if iface.find("mac").get("address") == mac:
                return iface
        return None

    def master(self, dev):
        info = json.loads(self.host.check_output(
            ["ip", "-j", "link", "show", "dev", dev]))
        return info[0].get("master")


def _conf(uri):
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override("uri", uri, opts.LIBVIRT_GROUP)
    conf.set_override("detach_timeout", 10.0, opts.LIBVIRT_GROUP)
    conf.set_override("detach_attempts", 3, opts.LIBVIRT_GROUP)
    return conf


@pytest.fixture(scope="module")
def env():
    images = lvh.guest_images()
    with NetNamespace("lvl") as host, NetNamespace("lvp") as peer:
        for br in ("br-a", "br-b"):
            host.run(["ip", "link", "add", br, "type", "bridge"])
            host.run(["ip", "link", "set", br, "up"])
        # br-b reaches the peer namespace; br-a reaches nothing
        host.run(["ip", "link", "add", "vpeer0", "type", "veth",
                  "peer", "name", "vpeer1"])
        host.run(["ip", "link", "set", "vpeer1", "netns", peer.name])
        host.run(["ip", "link", "set", "vpeer0", "master", "br-b", "up"])
        peer.run(["ip", "addr", "add", f"{PEER_IP}/24", "dev", "vpeer1"])
        peer.run(["ip", "link", "set", "vpeer1", "up"])
        # the direct endpoint's lower device: a veth whose peer is up
        host.run(["ip", "link", "add", "vlow0", "type", "veth",
                  "peer", "name", "vlow1"])
        for dev in ("vlow0", "vlow1"):
            host.run(["ip", "link", "set", dev, "up"])
        with lvh.Libvirtd(host) as lv:
            adapter = adapter_mod.LibvirtAdapter(_conf(lv.uri))
            bridge_ep = ep.BridgeEndpoint(
                port_id=PORT, network="red", mac=BR_MAC, bridge="br-a",
                tap="vpdtb" + uuid.uuid4().hex[:6], mtu=1500)
            direct_ep = ep.DirectEndpoint(
                port_id=str(uuid.uuid4()), network="blue", mac=DIRECT_MAC,
                source_dev="vlow0", mode="bridge")
            guest = lv.guest(
                [adapter.interface_config(bridge_ep),
                 adapter.interface_config(direct_ep)],
                kernel=images[0], initrd=images[1])
            try:
                assert guest.wait_ready(timeout=90) == 2
                yield Env(host, lv, adapter, guest, bridge_ep, direct_ep,
                          images)
            finally:
                adapter.close()
                guest.destroy()


def test_boot_with_nics_from_endpoints(env):
    assert env.guest.wait_carrier(BR_MAC, True), env.guest.lines
    assert env.guest.wait_carrier(DIRECT_MAC, True), env.guest.lines
    bridge = env.iface(BR_MAC)
    assert bridge.get("type") == "bridge"
    assert bridge.find("source").get("bridge") == "br-a"
    assert bridge.find("target").get("dev") == env.bridge_ep.tap
    assert env.master(env.bridge_ep.tap) == "br-a"
    direct = env.iface(DIRECT_MAC)
    assert direct.get("type") == "direct"
    assert direct.find("source").get("dev") == "vlow0"
    macvtap = direct.find("target").get("dev")
    assert "macvtap" in env.host.check_output(
        ["ip", "-d", "link", "show", "dev", macvtap])


@pytest.mark.parametrize("mac", [BR_MAC, DIRECT_MAC])
def test_link_down_up_seen_by_guest(env, mac):
    guest = env.guest
    for _round in range(2):
        for up in (False, True):
            mark = guest.mark()
            env.adapter.set_link_state(env.name, mac, up)
            guest.wait_for(rf"VPD-LINK \S+ {mac} carrier={int(up)}",
                           timeout=15, since=mark)
            for inactive in (False, True):
                links = env.iface(mac, inactive).findall("link")
                assert [link.get("state") for link in links] == [
                    "up" if up else "down"], (mac, inactive)
    assert guest.state() == {BR_MAC: True, DIRECT_MAC: True}


def test_move_bridge_nic_live_and_ping_through_br_b(env):
    guest = env.guest
    guest.add_addr(BR_MAC, GUEST_IP)
    nowhere = guest.ping(PEER_IP, count=1)
    assert not nowhere.ok, nowhere           # br-a has no peer
    t = time.monotonic()
    env.adapter.update_source(env.name, env.bridge_ep.replace(bridge="br-b"))
    took = time.monotonic() - t
    assert env.master(env.bridge_ep.tap) == "br-b"
    for inactive in (False, True):
        iface = env.iface(BR_MAC, inactive)
        assert iface.find("source").get("bridge") == "br-b"
        assert iface.find("target").get("dev") == env.bridge_ep.tap
    # the guest never lost the NIC
    assert guest.carrier(BR_MAC) is True
    res = guest.ping(PEER_IP, count=3)
    assert res.ok and res.received >= 1, res
    print(f"\nupdate_source br-a -> br-b: {took * 1000:.1f} ms")


@pytest.mark.parametrize("change,words", [
    (lambda e: e.direct_ep.replace(mode="vepa"),
     "a direct (macvtap) source device or mode"),
    (lambda e: e.bridge_ep.replace(bridge="br-b", mtu=1400), "the MTU"),
    (lambda e: e.bridge_ep.replace(bridge="br-b", tap="vpdother0"),
     "the tap name"),
    (lambda e: e.bridge_ep.replace(bridge="br-b", virtualport=ep.VirtualPort(
        type="openvswitch", interface_id=PORT)), "the virtual port"),
])
def test_live_source_changes_libvirt_refuses(env, change, words):
    before = ET.tostring(env.iface(BR_MAC)), ET.tostring(
        env.iface(DIRECT_MAC))
    with pytest.raises(exception.LiveUpdateRefused) as info:
        env.adapter.update_source(env.name, change(env))
    assert words in str(info.value)
    assert env.name in str(info.value)
    assert (ET.tostring(env.iface(BR_MAC)),
            ET.tostring(env.iface(DIRECT_MAC))) == before


def test_libvirt_itself_refuses_what_we_refuse(env):
    # The pre-checks mirror libvirt: sent anyway, libvirt refuses too, and
    # the error arrives typed.
    iface = env.iface(BR_MAC)
    iface.find("mtu").set("size", "1400")
    with pytest.raises(libvirt.libvirtError) as raw:
        env.guest.dom.updateDeviceFlags(ET.tostring(iface, "unicode"),
                                        libvirt.VIR_DOMAIN_AFFECT_LIVE)
    assert raw.value.get_error_code() == \
        libvirt.VIR_ERR_OPERATION_UNSUPPORTED
    typed = host_mod.translate(raw.value, "changing the MTU", env.name)
    assert isinstance(typed, exception.LiveUpdateRefused)
    assert "cannot modify MTU" in str(typed)


def _tap(env, name):
    env.host.run(["ip", "tuntap", "add", "dev", name, "mode", "tap"])
    env.host.run(["ip", "link", "set", name, "up"])


def test_attach_and_detach_ethernet_endpoint(env):
    guest = env.guest
    tap = "vpdte" + uuid.uuid4().hex[:6]
    _tap(env, tap)
    eth = ep.EthernetEndpoint(port_id=str(uuid.uuid4()), network="red",
                              mac=ETH_MAC, tap=tap)
    mark = guest.mark()
    env.adapter.attach(env.name, eth)
    guest.wait_for(rf"VPD-LINK \S+ {ETH_MAC} carrier=1", timeout=20,
                   since=mark)
    for inactive in (False, True):
        iface = env.iface(ETH_MAC, inactive)
        assert iface.get("type") == "ethernet"
        assert iface.find("target").get("dev") == tap
        assert iface.find("target").get("managed") == "no"
    assert ETH_MAC in guest.state()

    mark = guest.mark()
    t = time.monotonic()
    env.adapter.detach(env.name, ETH_MAC)
    took = time.monotonic() - t
    # returned only once libvirt removed it: gone from both definitions
    assert env.iface(ETH_MAC) is None
    assert env.iface(ETH_MAC, inactive=True) is None
    guest.wait_for(rf"VPD-GONE \S+ {ETH_MAC}", timeout=15, since=mark)
    assert ETH_MAC not in guest.state()
    assert took < 10, took
    # managed='no': the tap is ours, libvirt left it alone
    env.host.run(["ip", "link", "show", "dev", tap])
    env.host.run(["ip", "link", "del", tap])
    print(f"\ndetach with DEVICE_REMOVED wait: {took:.2f} s")


def test_detach_guest_does_not_answer(env):
    """A paused guest cannot acknowledge the ACPI unplug: bounded retries
    end in a typed error; once resumed, the guest releases the device."""
    guest = env.guest
    tap = "vpdts" + uuid.uuid4().hex[:6]
    _tap(env, tap)
    slow = ep.EthernetEndpoint(port_id=str(uuid.uuid4()), network="red",
                               mac=SLOW_MAC, tap=tap)
    mark = guest.mark()
    env.adapter.attach(env.name, slow)
    guest.wait_for(rf"VPD-LINK \S+ {SLOW_MAC} carrier=1", timeout=20,
                   since=mark)
    ops = live_mod.LiveOperations(env.adapter.host, detach_timeout=0.5,
                                  detach_attempts=2)
    mark = guest.mark()
    guest.dom.suspend()
    try:
        t = time.monotonic()
        with pytest.raises(exception.HypervisorOperationFailed) as info:
            ops.detach(env.name, SLOW_MAC)
        took = time.monotonic() - t
        assert 1.0 <= took < 4, took
        message = str(info.value)
        assert "after 2 request(s)" in message
        assert "persistent definition no longer has it" in message
        assert env.iface(SLOW_MAC) is not None
        assert env.iface(SLOW_MAC, inactive=True) is None
    finally:
        guest.dom.resume()
    deadline = time.monotonic() + 20
    while env.iface(SLOW_MAC) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert env.iface(SLOW_MAC) is None
    guest.wait_for(rf"VPD-GONE \S+ {SLOW_MAC}", timeout=15, since=mark)
    env.host.run(["ip", "link", "del", tap])


def test_errors_are_typed(env):
    with pytest.raises(exception.DomainNotFound) as info:
        env.adapter.detach("vpdt-no-such-domain", BR_MAC)
    assert "vpdt-no-such-domain" in str(info.value)
    with pytest.raises(exception.InterfaceNotFound):
        env.adapter.detach(env.name, "52:54:00:5f:00:ff")
    with pytest.raises(exception.InterfaceNotFound):
        env.adapter.set_link_state(env.name, "52:54:00:5f:00:ff", True)
    with pytest.raises(exception.InterfaceExists):
        env.adapter.attach(env.name, env.bridge_ep)
    # a UUID works as well as a name
    env.adapter.set_link_state(env.guest.dom.UUIDString(), BR_MAC, True)


def test_shut_off_domain_changes_only_its_definition(env):
    kernel, initrd = env.images
    other = env.lv.guest([], start=False, kernel=kernel, initrd=initrd)
    with other:
        eth = ep.EthernetEndpoint(port_id=str(uuid.uuid4()), network="red",
                                  mac=ETH_MAC, tap="vpdoff0")
        env.adapter.attach(other.name, eth, link_up=False)
        root = ET.fromstring(other.dom.XMLDesc(
            libvirt.VIR_DOMAIN_XML_INACTIVE))
        assert len(root.findall("devices/interface")) == 1
        assert not other.dom.isActive()
        env.adapter.set_link_state(other.name, ETH_MAC, True)
        # a shut-off definition takes what a running NIC would refuse
        env.adapter.update_source(other.name, ep.DirectEndpoint(
            port_id=eth.port_id, network="blue", mac=ETH_MAC,
            source_dev="vlow0", mode="vepa"))
        iface = ET.fromstring(other.dom.XMLDesc(
            libvirt.VIR_DOMAIN_XML_INACTIVE)).find("devices/interface")
        assert iface.get("type") == "direct"
        assert [x.get("state") for x in iface.findall("link")] == ["up"]
        with pytest.raises(exception.HypervisorOperationFailed):
            env.adapter.attach(other.name, env.bridge_ep.replace(
                mac="52:54:00:5f:00:0e"), persistent=False)
        env.adapter.detach(other.name, ETH_MAC)
        root = ET.fromstring(other.dom.XMLDesc(
            libvirt.VIR_DOMAIN_XML_INACTIVE))
        assert root.findall("devices/interface") == []


def test_transient_domain_changes_only_live(env):
    kernel, initrd = env.images
    other = lvh.Guest(env.lv, [], kernel=kernel, initrd=initrd)
    os.makedirs(other.dir, exist_ok=True)
    dom = env.lv.conn.createXML(other.domain_xml(), 0)
    try:
        assert dom.isActive() and not dom.isPersistent()
        _tap(env, "vpdtr0")
        eth = ep.EthernetEndpoint(port_id=str(uuid.uuid4()), network="red",
                                  mac=ETH_MAC, tap="vpdtr0")
        flags = env.adapter.live.attach(other.name, eth)
        assert flags == libvirt.VIR_DOMAIN_AFFECT_LIVE
        assert ETH_MAC in dom.XMLDesc(0)
        assert env.adapter.live.set_link_state(
            other.name, ETH_MAC, False) == libvirt.VIR_DOMAIN_AFFECT_LIVE
    finally:
        dom.destroy()
        env.host.run(["ip", "link", "del", "vpdtr0"], check=False)
