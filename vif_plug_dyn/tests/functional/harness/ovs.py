"""A private Open vSwitch (ovsdb-server + ovs-vswitchd) for functional tests.

``OpenVSwitch(netns)`` starts both daemons inside an existing network
namespace (through ``ip netns exec``), each with its own database file,
run dir, log dir, pid files and control sockets in a fresh temporary
directory, so it never reads or disturbs the host's ``/var/run/openvswitch``
and two instances (in two namespaces) can run at the same time.

NOTE(vif_plug_dyn): the host here has no openvswitch kernel module, so every
bridge must use ``datapath_type=netdev`` (the userspace datapath inside
ovs-vswitchd).  ovs-vswitchd then opens ports with AF_PACKET sockets (or
/dev/net/tun for ``type=tap``) and creates its ``ovs-netdev`` and bridge
internal devices as taps -- all in the namespace it runs in, which is why it
must be started inside the namespace rather than moved there.

Two instances in the *same* namespace are not supported: both would create
the ``ovs-netdev`` device.

Usage::

    with NetNamespace() as ns, OpenVSwitch(ns.name) as ovs:
        ovs.vsctl('add-br', 'br0', '--', 'set', 'Bridge', 'br0',
                  'datapath_type=netdev')
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from typing import IO, Self

LOG = logging.getLogger(__name__)

SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema'
BINARIES = ('ovsdb-tool', 'ovsdb-server', 'ovs-vswitchd', 'ovs-vsctl',
            'ovs-appctl')

# NOTE(vif_plug_dyn): AF_UNIX paths are limited to 108 bytes (sun_path),
# and ovs-vswitchd adds "<bridge>.mgmt"/"<bridge>.snoop" sockets in the run
# dir: keep the temporary directory short and directly under /tmp.
_MAX_SOCK_PATH = 107

_live: weakref.WeakSet[OpenVSwitch] = weakref.WeakSet()

_PR_SET_PDEATHSIG = 1
# Resolved once here: nothing but the prctl call itself runs between fork
# and exec (see _die_with_parent).
_libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)


def missing_binaries() -> list[str]:
    """Return the OVS programs (and the schema) that are not installed."""
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if not os.path.exists(SCHEMA):
        missing.append(SCHEMA)
    return missing


class OvsHarnessError(RuntimeError):
    """The private Open vSwitch could not be started or driven."""


class OpenVSwitch:
    """Context manager running a private ovsdb-server and ovs-vswitchd.

    :param netns_name: an existing network namespace (``ip netns`` name).
    :param start_vswitchd: also start ovs-vswitchd (False gives a database
        server only, enough for pure OVSDB tests).
    :param timeout: seconds allowed for each daemon to become ready.

    Attributes once entered: ``workdir``, ``db_sock`` (unix socket path),
    ``db`` (``unix:`` + db_sock), ``env`` (the OVS_* environment),
    ``ovsdb_pid`` and ``vswitchd_pid``.
    """

    def __init__(self, netns_name: str, start_vswitchd: bool = True,
                 timeout: float = 20.0) -> None:
        self.netns = netns_name
        self.start_vswitchd = start_vswitchd
        self.timeout = timeout
        self.workdir = ''
        self.db_sock = ''
        self.env: dict[str, str] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._outputs: list[IO[bytes]] = []

    # -- life cycle ---------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self._log_tails()
        self.stop()

    @property
    def db(self) -> str:
        return 'unix:' + self.db_sock

    @property
    def ovsdb_pid(self) -> int | None:
        proc = self._procs.get('ovsdb-server')
        return proc.pid if proc else None

    @property
    def vswitchd_pid(self) -> int | None:
        proc = self._procs.get('ovs-vswitchd')
        return proc.pid if proc else None

    def path(self, name: str) -> str:
        return os.path.join(self.workdir, name)

    def start(self) -> None:
        """Create the private directory and database, start the daemons.

        On any failure everything started so far is stopped and removed
        before the exception propagates.
        """
        missing = missing_binaries()
        if missing:
            raise OvsHarnessError('Open vSwitch is not installed (missing: %s)'
                                  % ', '.join(missing))
        if not os.path.exists(os.path.join('/run/netns', self.netns)):
            raise OvsHarnessError('no network namespace %s' % self.netns)
        self.workdir = tempfile.mkdtemp(prefix='vpdovs.', dir='/tmp')
        _live.add(self)
        try:
            self._start()
        except BaseException:
            self._log_tails()
            self.stop()
            raise

    def _start(self) -> None:
        self.db_sock = self.path('db.sock')
        if len(self.path('%s.snoop' % ('x' * 15))) > _MAX_SOCK_PATH:
            raise OvsHarnessError('work dir path too long for unix sockets: '
                                  '%s' % self.workdir)
        # NOTE(vif_plug_dyn): every default path of the OVS tools derives
        # from these variables; with them set, even a stray default
        # (ovs-vsctl without --db, ovs-appctl without -t, the bridge .mgmt
        # sockets of ovs-vswitchd, the system-id file) stays private.
        self.env = dict(os.environ)
        for var in ('OVS_RUNDIR', 'OVS_DBDIR', 'OVS_LOGDIR',
                    'OVS_SYSCONFDIR'):
            self.env[var] = self.workdir
        self.env['OVS_PKGDATADIR'] = os.path.dirname(SCHEMA)

        self._run(['ovsdb-tool', 'create', self.path('conf.db'), SCHEMA])
        self._spawn('ovsdb-server', [
            self.path('conf.db'),
            '--remote=punix:' + self.db_sock,
            '--unixctl=' + self.path('ovsdb-server.ctl'),
        ])
        self._wait_for_socket('ovsdb-server', self.db_sock)
        self.vsctl('--no-wait', 'init')
        if not self.start_vswitchd:
            return
        self._spawn('ovs-vswitchd', [
            self.db,
            '--unixctl=' + self.path('ovs-vswitchd.ctl'),
        ])
        self._wait_for_socket('ovs-vswitchd',
                              self.path('ovs-vswitchd.ctl'))
        # NOTE(vif_plug_dyn): readiness = ovs-vswitchd has applied the
        # database.  A command that changes something makes ovs-vsctl bump
        # next_cfg and wait until ovs-vswitchd reports it in cur_cfg (an
        # unchanged transaction -- or the very first "init", which creates
        # the row -- does not wait), hence this harmless marker key.
        self.vsctl('--timeout=%d' % max(1, int(self.timeout)), 'set',
                   'Open_vSwitch', '.',
                   'external_ids:vif_plug_dyn-harness=ready')

    def _spawn(self, name: str, args: list[str]) -> None:
        # NOTE(vif_plug_dyn): no --detach: "ip netns exec" execs the daemon
        # in place, so Popen's pid *is* the daemon's pid and it stays our
        # child (reaped by wait(), killed by pid, never by name).  Its own
        # log file and pid file are private; console output goes to a file
        # too, to keep pytest's capture clean.
        out = open(self.path(name + '.out'), 'wb')
        self._outputs.append(out)
        argv = ['ip', 'netns', 'exec', self.netns, name] + args + [
            '--pidfile=' + self.path(name + '.pid'),
            '--log-file=' + self.path(name + '.log'),
            '--no-chdir',
            '-vconsole:emer',
        ]
        LOG.debug('starting %s', argv)
        parent = os.getpid()
        self._procs[name] = subprocess.Popen(
            argv, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=lambda: _die_with_parent(parent))

    def _wait_for_socket(self, name: str, sock_path: str) -> None:
        proc = self._procs[name]
        deadline = time.monotonic() + self.timeout
        while not os.path.exists(sock_path):
            if proc.poll() is not None:
                raise OvsHarnessError('%s exited with status %s at start'
                                      % (name, proc.returncode))
            if time.monotonic() > deadline:
                raise OvsHarnessError('%s did not create %s within %.0f s'
                                      % (name, sock_path, self.timeout))
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the daemons (by pid) and remove the private directory.

        Idempotent; safe after a partial start.
        """
        # vswitchd first: it is a client of the database server.
        for name in ('ovs-vswitchd', 'ovsdb-server'):
            proc = self._procs.pop(name, None)
            if proc is not None:
                _terminate(proc, name)
        for out in self._outputs:
            out.close()
        self._outputs = []
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = ''
        _live.discard(self)

    # -- tools --------------------------------------------------------------

    def _run(self, argv: list[str], timeout: float | None = None
             ) -> str:
        try:
            res = subprocess.run(argv, env=self.env, capture_output=True,
                                 text=True,
                                 timeout=timeout or self.timeout + 10)
        except subprocess.TimeoutExpired as exc:
            raise OvsHarnessError('%s timed out after %s s'
                                  % (argv[0], exc.timeout)) from exc
        if res.returncode != 0:
            raise OvsHarnessError('%s failed (status %d): %s'
                                  % (' '.join(argv[:6]), res.returncode,
                                     res.stderr.strip()))
        return res.stdout

    def vsctl(self, *args: str, timeout: float | None = None) -> str:
        """Run ``ovs-vsctl --db=unix:SOCK ARGS...`` and return its stdout.

        :raises OvsHarnessError: non-zero exit (stderr in the message).
        """
        # NOTE(vif_plug_dyn): ovs-vsctl is a pure OVSDB client: it need not
        # run inside the namespace, only reach the socket.
        return self._run(['ovs-vsctl', '--db=' + self.db] + list(args),
                         timeout=timeout)

    def appctl(self, target: str, *args: str) -> str:
        """Run ``ovs-appctl -t <private ctl socket of TARGET> ARGS...``.

        :param target: ``ovs-vswitchd`` or ``ovsdb-server``.
        """
        return self._run(['ovs-appctl', '-t',
                          self.path(target + '.ctl')] + list(args))

    def log(self, name: str = 'ovs-vswitchd') -> str:
        """Return a daemon's log file contents (empty if none)."""
        try:
            with open(self.path(name + '.log'), errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def _log_tails(self, lines: int = 30) -> None:
        if not self.workdir:
            return
        for name in ('ovsdb-server', 'ovs-vswitchd'):
            text = self.log(name)
            if text:
                LOG.warning('last lines of %s log:\n%s', name,
                            '\n'.join(text.splitlines()[-lines:]))


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to SIGTERM this process when its parent dies.

    NOTE(vif_plug_dyn): runs in the child between fork and exec.  It is
    the safety net for a test run killed with SIGKILL (no __exit__, no
    atexit): the daemons must not outlive it.  The setting survives the
    exec of ``ip`` and ip's own exec of the daemon (neither is setuid).
    It fires when the *thread* that started the daemon exits, so start
    the harness from a thread that outlives it (pytest's main thread).
    """
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:   # the parent died before prctl
        os._exit(1)


def _terminate(proc: subprocess.Popen[bytes], name: str,
               grace: float = 5.0) -> None:
    """SIGTERM *proc*, then SIGKILL after *grace* seconds; reap it."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        LOG.warning('%s (pid %d) ignored SIGTERM; killing it', name,
                    proc.pid)
        proc.kill()
        proc.wait(timeout=grace)
    except ProcessLookupError:  # pragma: no cover (raced with its exit)
        pass


@atexit.register
def _stop_leftovers() -> None:
    # NOTE(vif_plug_dyn): last line of defence (an interrupted test run that
    # never reached __exit__): no daemon of ours outlives the interpreter.
    for ovs in list(_live):
        ovs.stop()
