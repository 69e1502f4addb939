"""A private RabbitMQ broker in a test network namespace.

::

    with NetNamespace("bus") as ns, RabbitMQ(ns, tmp_path) as broker:
        url = broker.transport_url      # rabbit://vpd:...@127.0.0.1:PORT/
        ...

What keeps it private (Debian ``rabbitmq-server`` 3.10):

* its own Erlang node name (``vpd<random>@localhost``), its own ports
  (AMQP, Erlang distribution, epmd) on 127.0.0.1 *of the namespace* —
  nothing outside the namespace can reach it, nothing it does reaches
  out;
* every directory and file it writes (database, logs, PID file, feature
  flags, plugins, config, crash dumps, ``HOME`` with its Erlang cookie)
  under the test's temporary directory;
* the broker's own scripts are run directly, as root like the test (the
  Debian wrapper ``/usr/sbin/rabbitmq-server`` would switch to the
  ``rabbitmq`` user, who cannot enter pytest's private temporary
  directories, and would write its logs to /var/log/rabbitmq);
* a user and password of its own (the default ``guest`` user is never
  created, so no well-known credentials work).

Ready when ``rabbitmqctl -q status`` (same environment) succeeds and
the AMQP port accepts connections. Stopped with ``rabbitmqctl stop``,
then what is left of it (the ``epmd`` it started) is ended by PID: the
processes of this test's namespace whose environment names this broker's
node.
"""

import os
import secrets
import socket
import subprocess
import time

from vif_plug_dyn.tests.functional.harness import netns as netns_mod

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"


class BrokerError(RuntimeError):
    pass


def missing_requirements():
    """Why a private broker cannot run here, or ``None`` if it can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for path in (SERVER, CTL):
        if not os.path.exists(path):
            return ("RabbitMQ is not installed (Debian rabbitmq-server, "
                    "see bindep.txt)")
    return None


def _free_ports(ns, count):
    """``count`` distinct ports nothing listens on in the namespace.

    NOTE(vpd): the namespace is private, so any port is free unless this
    test already used it; random ones from the ephemeral-free range keep
    two brokers of one test apart.
    """
    rng = secrets.SystemRandom()
    return rng.sample(range(20000, 30000), count)


class RabbitMQ:
    """One private broker in ``ns`` with its data under ``base_dir``."""

    def __init__(self, ns, base_dir, start_timeout=90):
        self.ns = ns
        self.root = os.path.join(str(base_dir), "rabbitmq-" +
                                 secrets.token_hex(3))
        self.start_timeout = start_timeout
        self.node = "vpd%s@localhost" % secrets.token_hex(4)
        self.port, self.dist_port, self.epmd_port = _free_ports(ns, 3)
        self.user = "vpd"
        self.password = secrets.token_hex(12)
        self.proc = None

    # -- environment ---------------------------------------------------------

    def _path(self, *parts):
        return os.path.join(self.root, *parts)

    @property
    def env(self):
        """The environment of the broker and of ``rabbitmqctl``."""
        return {
            "PATH": "/usr/lib/rabbitmq/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": self._path("home"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": self._path("mnesia"),
            "RABBITMQ_MNESIA_DIR": self._path("mnesia", self.node),
            "RABBITMQ_LOG_BASE": self._path("log"),
            "RABBITMQ_PID_FILE": self._path("rabbitmq.pid"),
            "RABBITMQ_FEATURE_FLAGS_FILE": self._path("feature_flags"),
            "RABBITMQ_QUORUM_DIR": self._path("quorum"),
            "RABBITMQ_STREAM_DIR": self._path("stream"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": self._path("plugins-expand"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": self._path("enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": self._path("rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": self._path("rabbitmq-env.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": self._path("advanced.config"),
            "ERL_CRASH_DUMP": self._path("erl_crash.dump"),
        }

    @property
    def transport_url(self):
        """The oslo.messaging transport URL of the broker."""
        return "rabbit://%s:%s@127.0.0.1:%d/" % (self.user, self.password,
                                                 self.port)

    def ctl(self, *args, timeout=60, check=True):
        """Run ``rabbitmqctl ARGS`` against this broker."""
        res = subprocess.run(self.ns.exec_prefix + [CTL, "-n", self.node] +
                             list(args), env=self.env, cwd=self.root,
                             capture_output=True, text=True,
                             timeout=timeout, check=False)
        if check and res.returncode != 0:
            raise BrokerError("rabbitmqctl %s: %s %s" % (
                " ".join(args), res.stdout.strip(), res.stderr.strip()))
        return res

    # -- life cycle ----------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def _prepare(self):
        for sub in ("home", "mnesia", "log", "quorum", "stream",
                    "plugins-expand"):
            os.makedirs(self._path(sub), exist_ok=True)
        with open(self._path("enabled_plugins"), "w") as f:
            f.write("[].\n")
        with open(self._path("rabbitmq.conf"), "w") as f:
            # NOTE(vpd): the default guest/guest user is not created; the
            # test's own user is added once the broker runs.
            f.write("default_user = %s\ndefault_pass = %s\n"
                    "loopback_users = none\n"
                    "listeners.tcp.default = 127.0.0.1:%d\n"
                    "log.console = false\nlog.file.level = warning\n" % (
                        self.user, self.password, self.port))
        with open(self._path("rabbitmq-env.conf"), "w") as f:
            f.write("# private: every setting comes from the environment\n")
        with open(self._path("advanced.config"), "w") as f:
            f.write("[].\n")
        # the Erlang cookie, private to this broker and its rabbitmqctl
        cookie = self._path("home", ".erlang.cookie")
        with open(cookie, "w") as f:
            f.write(secrets.token_hex(16).upper())
        os.chmod(cookie, 0o400)

    def start(self):
        """Start the broker and wait until it answers."""
        missing = missing_requirements()
        if missing:
            raise BrokerError(missing)
        self._prepare()
        self._log = open(self._path("server.out"), "wb")
        self.proc = self.ns.popen(
            [SERVER], env=self.env, cwd=self.root, stdout=self._log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout
        try:
            while True:
                if self.proc.poll() is not None:
                    raise BrokerError("rabbitmq-server exited with %s: %s"
                                      % (self.proc.returncode,
                                         self.log_text()))
                if self.ctl("-q", "status", timeout=30,
                            check=False).returncode == 0 and \
                        self._amqp_open():
                    break
                if time.monotonic() > deadline:
                    raise BrokerError("rabbitmq-server did not answer in "
                                      "%d s: %s" % (self.start_timeout,
                                                    self.log_text()))
                time.sleep(0.5)
        except BaseException:
            self.stop()
            raise

    def _amqp_open(self):
        """Whether the AMQP port accepts connections (in the namespace)."""
        res = self.ns.run(["python3", "-c",
                           "import socket; socket.create_connection("
                           "('127.0.0.1', %d), 2).close()" % self.port],
                          check=False, timeout=10)
        return res.returncode == 0

    def pids(self):
        """PIDs of the broker's processes (beam, epmd, their helpers): the
        processes of the namespace whose environment names this node."""
        mark = ("RABBITMQ_NODENAME=%s" % self.node).encode()
        found = []
        for pid in self.ns.pids():
            try:
                with open("/proc/%d/environ" % pid, "rb") as f:
                    if mark in f.read().split(b"\0"):
                        found.append(pid)
            except OSError:
                pass
        return found

    def log_text(self, limit=3000):
        text = ""
        for name in ("server.out",):
            try:
                with open(self._path(name), "rb") as f:
                    text += f.read()[-limit:].decode("utf-8", "replace")
            except OSError:
                pass
        log_dir = self._path("log")
        if os.path.isdir(log_dir):
            for name in sorted(os.listdir(log_dir)):
                try:
                    with open(os.path.join(log_dir, name), "rb") as f:
                        text += "\n[%s] " % name + f.read()[-limit:].decode(
                            "utf-8", "replace")
                except OSError:
                    pass
        return text

    def stop(self):
        """``rabbitmqctl stop``, then end what is left (epmd) by PID."""
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                self.ctl("stop", timeout=60, check=False)
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            left = netns_mod.kill_pids([self.proc] + self.pids())
            self.proc = None
            self._log.close()
            if left:
                raise BrokerError("broker processes survived: %s" % left)


def wait_port(host, port, timeout=10.0):
    """Wait until ``host:port`` accepts a TCP connection (this thread's
    namespace)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), 1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
