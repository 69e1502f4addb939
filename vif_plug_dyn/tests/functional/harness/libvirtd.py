"""A private libvirtd + virtlogd in a test network namespace, and a guest.

::

    with NetNamespace("lv") as ns, Libvirtd(ns) as lv:
        with lv.guest([BRIDGE_XML, DIRECT_XML]) as g:
            g.wait_ready()
            assert g.wait_carrier("52:54:00:00:00:01", True)
            g.set_link("52:54:00:00:00:01", up=False)
            g.add_addr("52:54:00:00:00:01", "192.0.2.10/24")
            assert g.ping("192.0.2.1").ok

How the daemon is kept private (libvirt 9.0 as root always runs in
"system" mode, with compiled-in paths: /etc/libvirt, /run/libvirt,
/var/lib/libvirt, /var/log/libvirt, /var/cache/libvirt):

* a holder process ``ip netns exec NS unshare --mount --propagation
  private sleep infinity`` owns a private mount namespace inside the test
  network namespace (``ip netns exec`` also remounts /sys for the netns);
* private directories are bind-mounted, in that mount namespace only, over
  /etc/libvirt, /run and /var (a private /var holding lib/libvirt,
  log/libvirt, cache/libvirt, tmp and run -> /run), so nothing is written
  to the host's /etc/libvirt, /run or /var, and no mountpoint has to be
  created on the host;
* virtlogd and libvirtd run in the foreground via ``nsenter --target
  HOLDER --mount --net``, so their PIDs are known and every tap/macvtap
  they create lands in the test namespace;
* clients connect from outside through the socket's path in the private
  run directory: ``qemu+unix:///system?socket=<dir>/run/libvirt/libvirt-sock``;
* with ``listen_tcp=ADDRESS`` (an address of the test namespace) libvirtd
  also listens on TCP there, unauthenticated, with a host UUID of its own
  (``tcp_uri``): two such daemons in two namespaces joined by a veth can
  migrate a guest peer to peer (``test_libvirt_migration.py``).

qemu.conf sets ``user = "root"`` / ``group = "root"`` (with the default
``libvirt-qemu`` user every define took ~52 s on a host whose /dev/kvm is
unusable), no security driver, no cgroups, no per-domain mount namespace.
libvirt's QEMU driver still looks up the compiled-in ``libvirt-qemu`` user
and group at start, so they (and the ``kvm`` group) are created on the
host if missing: the only host change, and the one Debian's
libvirt-daemon-system package would make.
"""

import collections
import grp
import os
import pathlib
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET

from vif_plug_dyn.tests.functional.harness import netns as netns_mod

REPO_ROOT = pathlib.Path(__file__).resolve().parents[4]
BUILD_GUEST = REPO_ROOT / "tools" / "guest" / "build-guest.sh"
# QEMU capabilities probed by a private libvirtd are copied here when it
# stops and into the next one when it starts: saves ~4-5 s on its first
# define.  $VPD_LIBVIRT_CAPS_CACHE overrides; set it empty to disable.
DEFAULT_CAPS_CACHE = REPO_ROOT / "tools" / "guest" / "out" / "qemu-caps"
GUEST_CMDLINE = "console=ttyS0 quiet panic=-1"

QEMU_CONF = """\
# private qemu.conf written by the vif_plug_dyn test harness
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
"""

LIBVIRTD_CONF = """\
# private libvirtd.conf written by the vif_plug_dyn test harness
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "{level}:file:/var/log/libvirt/libvirtd.log"
"""

LIBVIRTD_TCP_CONF = """\
listen_tls = 0
listen_tcp = 1
listen_addr = "{addr}"
auth_tcp = "none"
host_uuid = "{host_uuid}"
"""

VIRTLOGD_CONF = """\
# private virtlogd.conf written by the vif_plug_dyn test harness
log_outputs = "3:file:/var/log/libvirt/virtlogd.log"
"""

_ANSI_RE = re.compile(rb"\x1b(\[[0-9;?]*[A-Za-z]|[@-Z\\-_])")


class HarnessError(RuntimeError):
    pass


def missing_requirements():
    """Why a real libvirtd+QEMU test cannot run here, or None if it can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, libvirtd in system mode)"
    for tool in ("libvirtd", "virtlogd", "qemu-system-x86_64", "ip",
                 "unshare", "nsenter", "mount"):
        if shutil.which(tool) is None and not os.path.exists(
                f"/usr/sbin/{tool}"):
            return f"{tool} is not installed (see bindep-libvirt.txt)"
    if not os.path.isdir("/etc/libvirt"):
        return "/etc/libvirt is missing (libvirt0 not installed?)"
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return "libvirt-python is not installed (requirements-harness.txt)"
    return None


def _tool(name):
    path = shutil.which(name)
    if path is None and os.path.exists(f"/usr/sbin/{name}"):
        path = f"/usr/sbin/{name}"
    if path is None:
        raise HarnessError(f"{name} not found")
    return path


def ensure_qemu_ids():
    """Create group kvm, group+user libvirt-qemu if missing (see above)."""
    for group in ("kvm", "libvirt-qemu"):
        try:
            grp.getgrnam(group)
        except KeyError:
            subprocess.run(["groupadd", "--system", group], check=True,
                           capture_output=True)
    try:
        pwd.getpwnam("libvirt-qemu")
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home",
             "--home-dir", "/var/lib/libvirt", "--shell", "/usr/sbin/nologin",
             "--gid", "libvirt-qemu", "--groups", "kvm", "libvirt-qemu"],
            check=True, capture_output=True)


def guest_images(outdir=None, build=True):
    """Return (vmlinuz, initrd) paths, building them if needed.

    ``outdir`` defaults to $VPD_GUEST_DIR or tools/guest/out.
    """
    outdir = pathlib.Path(outdir or os.environ.get("VPD_GUEST_DIR")
                          or REPO_ROOT / "tools" / "guest" / "out")
    if build:
        res = subprocess.run(["bash", str(BUILD_GUEST), str(outdir)],
                             check=False, capture_output=True, text=True,
                             timeout=900)
        if res.returncode != 0:
            raise HarnessError(f"build-guest.sh failed: {res.stderr.strip()}")
    kernel, initrd = outdir / "vmlinuz", outdir / "initrd.img"
    for f in (kernel, initrd):
        if not f.is_file():
            raise HarnessError(f"missing guest image {f}")
    return kernel, initrd


SKIP_GROUP = 32030


def skip_ifindexes(netns, max_pairs=1000):
    """Advance the namespace's ifindex counter by a random amount.

    libvirt opens a macvtap as /dev/tap<ifindex>. ifindexes are per
    namespace but /dev is not: two macvtaps with the same ifindex in two
    namespaces share one /dev/tapN node (the first one's), so a second
    libvirtd would open the first one's macvtap.  Fresh namespaces number
    devices alike, so spread them: create and delete 0..2*max_pairs
    ifindexes' worth of veths (~0.3 s per 1000 ifindexes).
    Guest.start() also checks the nodes (check_macvtap_nodes()).
    """
    pairs = secrets.randbelow(max_pairs)
    if not pairs:
        return
    tag = secrets.token_hex(2)
    batch = "".join(
        f"link add name vpds{tag}a{i} group {SKIP_GROUP} type veth "
        f"peer name vpds{tag}b{i} group {SKIP_GROUP}\n"
        for i in range(pairs))
    netns.run(["ip", "-batch", "-"], input=batch)
    netns.run(["ip", "link", "del", "group", str(SKIP_GROUP)])


def _wait(pred, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        val = pred()
        if val:
            return val
        if time.monotonic() >= deadline:
            return val
        time.sleep(interval)


def _qemu_pid_files(run_dir):
    qdir = pathlib.Path(run_dir) / "libvirt" / "qemu"
    pids = []
    for f in qdir.glob("*.pid") if qdir.is_dir() else ():
        try:
            pid = int(f.read_text().strip())
            with open(f"/proc/{pid}/cmdline", "rb") as c:
                if b"qemu" in c.read():
                    pids.append(pid)
        except (OSError, ValueError):
            pass
    return pids


class Libvirtd:
    """Context manager: a private libvirtd + virtlogd inside ``netns``.

    Attributes once entered: ``uri``, ``socket_path``, ``root`` (the
    private directory), ``conn`` (a libvirt connection, opened lazily).
    On exit: destroys and undefines every domain (all of them are ours),
    stops the daemons by PID, kills any QEMU left (by the PIDs in its pid
    files), ends the mount namespace and removes the private directory
    (kept if $VPD_KEEP_LIBVIRTD is set, for post-mortems).
    """

    def __init__(self, netns, debug=False, start_timeout=30,
                 caps_cache=None, spread_ifindex=True, listen_tcp=None):
        self.netns = netns
        # An address of netns to listen on with TCP (no auth, no TLS), for
        # peer-to-peer migration between two private daemons; each gets a
        # host UUID of its own (libvirt refuses to migrate to "the same
        # host", which it judges by that UUID).
        self.listen_tcp = listen_tcp
        self.tcp_uri = (f"qemu+tcp://{listen_tcp}/system"
                        if listen_tcp else None)
        self.spread_ifindex = spread_ifindex
        if caps_cache is None:
            caps_cache = os.environ.get("VPD_LIBVIRT_CAPS_CACHE",
                                        str(DEFAULT_CAPS_CACHE))
        self.caps_cache = caps_cache or None
        self.debug = debug
        self.start_timeout = start_timeout
        self.root = None
        self.uri = None
        self.socket_path = None
        self._conn = None
        self._holder = None
        self._daemons = {}        # name -> Popen
        self._guests = []

    # -- paths -----------------------------------------------------------
    @property
    def log_dir(self):
        return os.path.join(self.root, "var", "log", "libvirt")

    @property
    def run_dir(self):
        return os.path.join(self.root, "run")

    @property
    def _caps_dir(self):
        return os.path.join(self.root, "var", "cache", "libvirt", "qemu",
                            "capabilities")

    def _load_caps_cache(self):
        if not self.caps_cache or not os.path.isdir(self.caps_cache):
            return
        os.makedirs(self._caps_dir, exist_ok=True)
        for f in os.listdir(self.caps_cache):
            if f.endswith(".xml"):
                shutil.copy2(os.path.join(self.caps_cache, f),
                             os.path.join(self._caps_dir, f))

    def _save_caps_cache(self):
        """Copy (atomically, per file) the daemon's probe results back."""
        if not self.caps_cache or not os.path.isdir(self._caps_dir):
            return
        try:
            os.makedirs(self.caps_cache, exist_ok=True)
            for f in os.listdir(self._caps_dir):
                if not f.endswith(".xml"):
                    continue
                tmp = os.path.join(self.caps_cache, f".{f}.{os.getpid()}")
                shutil.copy2(os.path.join(self._caps_dir, f), tmp)
                os.replace(tmp, os.path.join(self.caps_cache, f))
        except OSError:
            pass                # only a cache

    # -- lifecycle -------------------------------------------------------
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        ensure_qemu_ids()
        self.root = tempfile.mkdtemp(prefix="vpdt-libvirtd-")
        os.chmod(self.root, 0o755)
        etc = os.path.join(self.root, "etc")
        var = os.path.join(self.root, "var")
        for d in (os.path.join(etc, "qemu"), self.run_dir,
                  os.path.join(var, "lib", "libvirt"),
                  os.path.join(var, "log", "libvirt", "qemu"),
                  os.path.join(var, "cache", "libvirt"),
                  os.path.join(var, "tmp"),
                  os.path.join(self.root, "guests")):
            os.makedirs(d, exist_ok=True)
        os.chmod(os.path.join(var, "tmp"), 0o1777)
        self._load_caps_cache()
        os.symlink("/run", os.path.join(var, "run"))
        os.symlink("/run/lock", os.path.join(var, "lock"))
        with open(os.path.join(etc, "qemu.conf"), "w") as f:
            f.write(QEMU_CONF)
        with open(os.path.join(etc, "libvirtd.conf"), "w") as f:
            f.write(LIBVIRTD_CONF.format(level=1 if self.debug else 3))
            if self.listen_tcp:
                f.write(LIBVIRTD_TCP_CONF.format(
                    addr=self.listen_tcp, host_uuid=uuid.uuid4()))
        with open(os.path.join(etc, "virtlogd.conf"), "w") as f:
            f.write(VIRTLOGD_CONF)

        self._holder = self.netns.popen(
            ["unshare", "--mount", "--propagation", "private",
             "sleep", "infinity"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        hpid = self._holder.pid

        def holder_ready():
            if self._holder.poll() is not None:
                raise HarnessError("mount namespace holder exited "
                                   f"({self._holder.returncode})")
            try:
                with open(f"/proc/{hpid}/comm") as f:
                    return f.read().strip() == "sleep"
            except OSError:
                return False
        if not _wait(holder_ready, 10):
            raise HarnessError("mount namespace holder did not start")

        for src, dst in ((etc, "/etc/libvirt"), (self.run_dir, "/run"),
                         (var, "/var")):
            subprocess.run(
                ["nsenter", f"--target={hpid}", "--mount", "--",
                 "mount", "--no-mtab", "--bind", src, dst],
                check=True, capture_output=True, timeout=30)

        if self.spread_ifindex:
            skip_ifindexes(self.netns)
        self._spawn("virtlogd")
        self._wait_socket("virtlogd",
                          os.path.join(self.run_dir, "libvirt",
                                       "virtlogd-sock"))
        self._spawn("libvirtd")
        self.socket_path = os.path.join(self.run_dir, "libvirt",
                                        "libvirt-sock")
        self._wait_socket("libvirtd", self.socket_path)
        self.uri = f"qemu+unix:///system?socket={self.socket_path}"
        conn = self._open_with_retry()
        conn.listAllDomains()        # fails if the QEMU driver did not load
        return self

    def _spawn(self, name):
        out = open(os.path.join(self.log_dir, f"{name}.stderr"), "wb")
        try:
            env = dict(os.environ, LC_ALL="C")
            env = {k: v for k, v in env.items()
                   if not k.startswith(("LIBVIRT_", "VIR_"))}
            self._daemons[name] = subprocess.Popen(
                ["nsenter", f"--target={self._holder.pid}", "--mount",
                 "--net", "--", _tool(name)]
                + (["--listen"] if name == "libvirtd" and self.listen_tcp
                   else []),
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)
        finally:
            out.close()

    def _wait_socket(self, name, path):
        proc = self._daemons[name]

        def ready():
            if proc.poll() is not None:
                raise HarnessError(f"{name} exited with {proc.returncode}:"
                                   f"\n{self.log_text()}")
            return os.path.exists(path)
        if not _wait(ready, self.start_timeout):
            raise HarnessError(f"{name} did not create {path} in "
                               f"{self.start_timeout}s:\n{self.log_text()}")

    def _open_with_retry(self):
        import libvirt
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                self._conn = libvirt.open(self.uri)
                return self._conn
            except libvirt.libvirtError as e:
                if (time.monotonic() > deadline
                        or self._daemons["libvirtd"].poll() is not None):
                    raise HarnessError(f"cannot connect to {self.uri}: {e}"
                                       f"\n{self.log_text()}") from e
                time.sleep(0.1)

    @property
    def conn(self):
        if self._conn is None:
            self._open_with_retry()
        return self._conn

    def stop(self):
        """Tear everything down; safe to call twice or after a failed start."""
        errors = []
        if self._conn is not None:
            try:
                self._destroy_all_domains()
            except Exception as e:          # keep tearing down
                errors.append(f"destroying domains: {e}")
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None
        qemu_pids = _qemu_pid_files(self.run_dir) if self.root else []
        for name in ("libvirtd", "virtlogd"):
            proc = self._daemons.pop(name, None)
            if proc is not None and netns_mod.kill_pids([proc], timeout=10):
                errors.append(f"{name} (pid {proc.pid}) survived SIGKILL")
        if self.root:
            qemu_pids += _qemu_pid_files(self.run_dir)
        if qemu_pids and netns_mod.kill_pids(sorted(set(qemu_pids))):
            errors.append(f"QEMU processes survived: {qemu_pids}")
        if self._holder is not None:
            netns_mod.kill_pids([self._holder])
            self._holder = None
        if self.root:
            self._save_caps_cache()
        if self.root and not os.environ.get("VPD_KEEP_LIBVIRTD"):
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
        if errors:
            raise HarnessError("; ".join(errors))

    def _destroy_all_domains(self):
        import libvirt
        for g in list(self._guests):
            g.close_command_channel()
        for dom in self._conn.listAllDomains():
            try:
                if dom.isActive():
                    dom.destroy()
            except libvirt.libvirtError:
                if dom.isActive():
                    raise
            dom.undefine()
        self._guests = []

    # -- diagnostics -----------------------------------------------------
    def log_text(self, limit=4000):
        """Tail of the daemons' logs (and QEMU logs), for error messages."""
        if not self.root:
            return ""
        parts = []
        for path in sorted(pathlib.Path(self.log_dir).rglob("*")):
            if path.is_file():
                text = path.read_text(errors="replace")[-limit:]
                if text.strip():
                    parts.append(f"--- {path.name}\n{text}")
        return "\n".join(parts)

    # -- guests ----------------------------------------------------------
    def guest(self, interfaces=(), name=None, start=True, **kwargs):
        """Define (and start) a test guest; see :class:`Guest`."""
        g = Guest(self, interfaces, name=name, **kwargs)
        self._guests.append(g)
        g.define()
        if start:
            g.start()
        return g


PingResult = collections.namedtuple("PingResult",
                                    "ok sent received output")
CommandResult = collections.namedtuple("CommandResult", "rc output lines")


class Guest:
    """A busybox guest (tools/guest) with the given ``<interface>``s.

    ``interfaces``: XML strings or Elements.  Missing ``<mac>`` (a random
    52:54:00:xx:xx:xx), ``<model type='virtio'/>`` (the only NIC model the
    cloud kernel drives) and ``<rom enabled='no'/>`` (no iPXE: faster boot)
    are added.  ``macs`` lists the MACs in order.

    ttyS0 goes to ``console_path`` (a file); ``lines`` holds its lines
    (``\\r`` and terminal escapes removed).  ttyS1 is a unix socket at
    ``command_path`` for :meth:`command`.
    """

    def __init__(self, daemon, interfaces=(), name=None, memory_mib=128,
                 vcpus=1, kernel=None, initrd=None, cmdline=GUEST_CMDLINE,
                 extra_devices=(), uuid=None):
        self.daemon = daemon
        self.uuid = uuid
        self.name = name or f"vpdt-{secrets.token_hex(3)}"
        if kernel is None or initrd is None:
            kernel, initrd = guest_images()
        self.kernel, self.initrd = str(kernel), str(initrd)
        self.cmdline = cmdline
        self.memory_mib = memory_mib
        self.vcpus = vcpus
        self.dir = os.path.join(daemon.root, "guests", self.name)
        self.console_path = os.path.join(self.dir, "console.log")
        self.command_path = os.path.join(self.dir, "cmd.sock")
        self.interfaces = [self._normalise_interface(i) for i in interfaces]
        self.macs = [i.find("mac").get("address") for i in self.interfaces]
        self.extra_devices = [
            ET.fromstring(d) if isinstance(d, str) else d
            for d in extra_devices]
        self.dom = None
        self.lines = []
        self.timings = {}
        self._console_pos = 0
        self._partial = b""
        self._sock = None
        self._sock_buf = b""
        self._cmd_seq = 0
        self._lock = threading.Lock()

    # -- XML -------------------------------------------------------------
    @staticmethod
    def _normalise_interface(iface):
        el = ET.fromstring(iface) if isinstance(iface, str) else iface
        if el.tag != "interface":
            raise ValueError(f"not an <interface>: {el.tag}")
        mac = el.find("mac")
        if mac is None:
            mac = ET.SubElement(el, "mac")
            mac.set("address", "52:54:00:%02x:%02x:%02x" % tuple(
                secrets.token_bytes(3)))
        mac.set("address", mac.get("address").lower())
        if el.find("model") is None:
            ET.SubElement(el, "model").set("type", "virtio")
        if el.find("rom") is None:
            ET.SubElement(el, "rom").set("enabled", "no")
        return el

    def domain_xml(self):
        dom = ET.Element("domain", type="qemu")
        ET.SubElement(dom, "name").text = self.name
        if self.uuid:
            ET.SubElement(dom, "uuid").text = self.uuid
        ET.SubElement(dom, "memory", unit="MiB").text = str(self.memory_mib)
        ET.SubElement(dom, "vcpu").text = str(self.vcpus)
        os_el = ET.SubElement(dom, "os")
        ET.SubElement(os_el, "type", arch="x86_64", machine="pc").text = "hvm"
        ET.SubElement(os_el, "kernel").text = self.kernel
        ET.SubElement(os_el, "initrd").text = self.initrd
        ET.SubElement(os_el, "cmdline").text = self.cmdline
        feats = ET.SubElement(dom, "features")
        ET.SubElement(feats, "acpi")        # PCI hot-plug needs ACPI on 'pc'
        for ev in ("on_poweroff", "on_reboot", "on_crash"):
            ET.SubElement(dom, ev).text = "destroy"
        devs = ET.SubElement(dom, "devices")
        s0 = ET.SubElement(devs, "serial", type="file")
        ET.SubElement(s0, "source", path=self.console_path)
        ET.SubElement(s0, "target", port="0")
        s1 = ET.SubElement(devs, "serial", type="unix")
        ET.SubElement(s1, "source", mode="bind", path=self.command_path)
        ET.SubElement(s1, "target", port="1")
        devs.extend(self.interfaces)
        devs.extend(self.extra_devices)
        ET.SubElement(devs, "controller", type="usb", model="none")
        ET.SubElement(devs, "memballoon", model="none")
        return ET.tostring(dom, encoding="unicode")

    # -- lifecycle -------------------------------------------------------
    def define(self):
        os.makedirs(self.dir, exist_ok=True)
        t = time.monotonic()
        self.dom = self.daemon.conn.defineXML(self.domain_xml())
        self.timings["define"] = time.monotonic() - t

    def start(self):
        self.close_command_channel()
        self.timings.pop("ready", None)
        self.lines, self._console_pos, self._partial = [], 0, b""
        t = time.monotonic()
        self.dom.create()
        self._started = time.monotonic()
        self.timings["start"] = self._started - t
        self.check_macvtap_nodes()

    def check_macvtap_nodes(self):
        """Make sure libvirt opened *our* macvtaps (see skip_ifindexes()).

        For each ``type='direct'`` NIC, /dev/tap<ifindex> must be the char
        device of that macvtap in our namespace; raises HarnessError if it
        is another namespace's (a /dev/tapN collision).
        """
        root = ET.fromstring(self.dom.XMLDesc(0))
        for iface in root.iter("interface"):
            if iface.get("type") != "direct":
                continue
            target = iface.find("target")
            if target is None or not target.get("dev"):
                continue
            dev = target.get("dev")
            idx = self.daemon.netns.check_output(
                ["cat", f"/sys/class/net/{dev}/ifindex"]).strip()
            majmin = self.daemon.netns.check_output(
                ["cat", f"/sys/class/net/{dev}/macvtap/tap{idx}/dev"]).strip()
            major, minor = (int(x) for x in majmin.split(":"))
            try:
                rdev = os.stat(f"/dev/tap{idx}").st_rdev
            except FileNotFoundError:
                rdev = None
            if rdev != os.makedev(major, minor):
                raise HarnessError(
                    f"{self.name}: /dev/tap{idx} is not {dev}'s device "
                    f"({majmin}); another namespace has a macvtap with "
                    f"ifindex {idx}, so QEMU got the wrong one")

    def destroy(self):
        """Stop the guest (if running) and undefine it."""
        self.close_command_channel()
        if self.dom is None:
            return
        if self.dom.isActive():
            self.dom.destroy()
        self.dom.undefine()
        self.dom = None
        if self in self.daemon._guests:
            self.daemon._guests.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()
        return False

    # -- console (ttyS0) -------------------------------------------------
    def poll(self):
        """Read new console output into ``lines``; returns the new lines."""
        try:
            with open(self.console_path, "rb") as f:
                f.seek(self._console_pos)
                data = f.read()
        except FileNotFoundError:
            return []
        self._console_pos += len(data)
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        new = [_ANSI_RE.sub(b"", ln).replace(b"\r", b"").decode(
            "utf-8", "replace") for ln in complete]
        self.lines.extend(new)
        return new

    def mark(self):
        """Index to pass as ``since`` to only see lines printed later."""
        self.poll()
        return len(self.lines)

    def wait_for(self, regex, timeout=30, since=0):
        """Wait for a console line matching ``regex`` (re.search); returns
        the match.  Raises HarnessError with the console tail on timeout."""
        pat = re.compile(regex)
        pos = since
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            for ln in self.lines[pos:]:
                m = pat.search(ln)
                if m:
                    return m
            pos = len(self.lines)
            if time.monotonic() >= deadline:
                raise HarnessError(
                    f"{self.name}: no console line matching {regex!r} in "
                    f"{timeout}s; last lines:\n"
                    + "\n".join(self.lines[-20:]) + self._dead_suffix())
            time.sleep(0.05)

    def _dead_suffix(self):
        try:
            if self.dom is not None and not self.dom.isActive():
                return "\n(domain is not running)\n" + self.daemon.log_text()
        except Exception:
            pass
        return ""

    def wait_ready(self, timeout=60):
        """Wait for VPD-READY; records ``timings['ready']`` (from start)."""
        m = self.wait_for(r"VPD-READY nics=(\d+)", timeout)
        self.timings.setdefault("ready", time.monotonic() - self._started)
        return int(m.group(1))

    def link_states(self):
        """{mac: True/False/None} from the console's VPD-LINK/GONE lines."""
        self.poll()
        states = {}
        for ln in self.lines:
            m = re.search(r"VPD-LINK (\S+) (\S+) carrier=(\S+)", ln)
            if m:
                states[m.group(2).lower()] = {"1": True, "0": False}.get(
                    m.group(3))
                continue
            m = re.search(r"VPD-GONE (\S+) (\S+)", ln)
            if m:
                states[m.group(2).lower()] = None
        return states

    def carrier(self, mac):
        """Last carrier the guest reported for ``mac``: True, False, or
        None (never seen, gone, or unreadable)."""
        return self.link_states().get(mac.lower())

    def wait_carrier(self, mac, expected, timeout=15):
        """Wait until carrier(mac) == expected; returns whether it did."""
        return _wait(lambda: self.carrier(mac) == expected, timeout) or \
            self.carrier(mac) == expected

    # -- live device changes ---------------------------------------------
    def interface_element(self, mac):
        """The live ``<interface>`` Element with this MAC."""
        root = ET.fromstring(self.dom.XMLDesc(0))
        for iface in root.iter("interface"):
            m = iface.find("mac")
            if m is not None and m.get("address", "").lower() == mac.lower():
                return iface
        raise HarnessError(f"{self.name}: no interface with MAC {mac}")

    def set_link(self, mac, up):
        """Set the guest-visible link state with updateDeviceFlags."""
        import libvirt
        iface = self.interface_element(mac)
        link = iface.find("link")
        if link is None:
            link = ET.SubElement(iface, "link")
        link.set("state", "up" if up else "down")
        self.dom.updateDeviceFlags(ET.tostring(iface, encoding="unicode"),
                                   libvirt.VIR_DOMAIN_AFFECT_LIVE)

    # -- command channel (ttyS1) -----------------------------------------
    def _connect(self, timeout):
        if self._sock is not None:
            return
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.monotonic() + timeout
        while True:
            try:
                s.connect(self.command_path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() >= deadline:
                    s.close()
                    raise
                time.sleep(0.05)
        self._sock = s
        self._sock_buf = b""

    def close_command_channel(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def command(self, verb, *args, timeout=30):
        """Send ``verb args`` on ttyS1 and wait for its VPD-DONE.

        Waits for VPD-READY first (bytes sent before the guest's UART is set
        up would be lost).  Returns CommandResult(rc, output lines from
        VPD-OUT, all reply lines).
        """
        words = [str(verb)] + [str(a) for a in args]
        for w in words:
            if not w or re.search(r"\s", w):
                raise ValueError(f"bad command word {w!r}")
        with self._lock:
            if "ready" not in self.timings:
                self.wait_ready()
            self._connect(timeout)
            self._cmd_seq += 1
            cid = f"c{self._cmd_seq}"
            self._sock.sendall((" ".join([cid] + words) + "\n").encode())
            lines = []
            done = re.compile(rf"^VPD-DONE {cid} rc=(-?\d+)$")
            deadline = time.monotonic() + timeout
            while True:
                while b"\n" in self._sock_buf:
                    raw, self._sock_buf = self._sock_buf.split(b"\n", 1)
                    ln = raw.replace(b"\r", b"").decode("utf-8", "replace")
                    parts = ln.split(" ", 2)
                    if len(parts) < 2 or parts[1] != cid:
                        continue            # stale reply or noise
                    lines.append(ln)
                    m = done.match(ln)
                    if m:
                        out = [x.split(" ", 2)[2] if x.count(" ") >= 2
                               else "" for x in lines
                               if x.startswith("VPD-OUT ")]
                        return CommandResult(int(m.group(1)), out, lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HarnessError(
                        f"{self.name}: command {' '.join(words)!r} got no "
                        f"VPD-DONE in {timeout}s; got {lines}"
                        + self._dead_suffix())
                self._sock.settimeout(left)
                try:
                    data = self._sock.recv(4096)
                except TimeoutError:
                    continue
                if not data:
                    raise HarnessError(f"{self.name}: command channel closed"
                                       + self._dead_suffix())
                self._sock_buf += data

    def run(self, *argv, timeout=30):
        """Run a busybox command in the guest (MACs in argv are replaced
        by the name of the NIC that has that MAC)."""
        return self.command("run", *argv, timeout=timeout)

    def state(self):
        """Ask the guest now: {mac: True/False/None} for every NIC."""
        states = {}
        for ln in self.command("state").output:
            m = re.match(r"VPD-LINK (\S+) (\S+) carrier=(\S+)", ln)
            if m:
                states[m.group(2).lower()] = {"1": True, "0": False}.get(
                    m.group(3))
        return states

    def add_addr(self, mac, cidr):
        """``ip addr add CIDR dev <NIC with MAC>`` in the guest."""
        res = self.command("addr", mac, cidr)
        if res.rc != 0:
            raise HarnessError(f"{self.name}: ip addr add {cidr} on {mac} "
                               f"failed: {res.output}")
        return res

    def ping(self, addr, count=3, timeout=None):
        """``ping -c COUNT -W 1 ADDR`` from the guest -> PingResult (ok =
        at least one reply)."""
        res = self.command("ping", int(count), addr,
                           timeout=timeout or (count * 2 + 15))
        for ln in res.lines:
            m = re.match(r"VPD-PING \S+ (ok|fail) addr=\S+ sent=(\d+) "
                         r"recv=(\d+)", ln)
            if m:
                return PingResult(m.group(1) == "ok", int(m.group(2)),
                                  int(m.group(3)), res.output)
        raise HarnessError(f"{self.name}: no VPD-PING line in {res.lines}")
