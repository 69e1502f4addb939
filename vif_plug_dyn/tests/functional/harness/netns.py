"""A throw-away network namespace for functional tests.

::

    with NetNamespace("br") as ns:
        ns.run(["ip", "link", "add", "br0", "type", "bridge"])
        out = ns.check_output(["ip", "-o", "link"])
        proc = ns.popen(["sleep", "100"])     # killed on exit

Needs root and iproute2.  Commands are argv lists run through
``ip netns exec`` (never a shell).  On exit, even after a failure, every
process started through :meth:`popen` is killed by PID, then any process
still inside the namespace (only ones this namespace's users started can
be there: nobody else knows its random name, e.g. a QEMU started by a
libvirtd we ran in it) is killed by PID, then the namespace is deleted;
its devices go with it.
"""

import os
import re
import secrets
import signal
import subprocess
import time

NAME_PREFIX = "vpdt-"
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_-]{1,20}$")


class NetNamespaceError(RuntimeError):
    pass


class CommandFailed(subprocess.CalledProcessError):
    """A command run in a namespace exited non-zero (message has stderr)."""

    def __str__(self):
        err = (self.stderr or "").strip()
        return f"{super().__str__()}{': ' + err if err else ''}"


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purpose (it holds no namespace).
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state != b"Z"
    except (OSError, IndexError):
        return False


def kill_pids(pids, timeout=5.0):
    """SIGTERM the given PIDs, SIGKILL those alive after ``timeout``.

    ``pids`` holds ints or :class:`subprocess.Popen` objects (which are also
    reaped).  Returns the PIDs that survived SIGKILL (should be none).
    """
    procs = [p for p in pids if isinstance(p, subprocess.Popen)]
    raw = [p for p in pids if not isinstance(p, subprocess.Popen)]

    def alive():
        left = [p for p in procs if p.poll() is None]
        return left, [p for p in raw if _pid_alive(p)]

    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        left_procs, left_raw = alive()
        if not left_procs and not left_raw:
            return []
        for p in left_procs:
            try:
                p.send_signal(sig)
            except ProcessLookupError:
                pass
        for pid in left_raw:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            left_procs, left_raw = alive()
            if not left_procs and not left_raw:
                return []
            time.sleep(0.05)
    left_procs, left_raw = alive()
    return [p.pid for p in left_procs] + left_raw


class NetNamespace:
    """Context manager owning one uniquely named network namespace."""

    def __init__(self, prefix="t"):
        if not _PREFIX_RE.match(prefix):
            raise ValueError(f"bad namespace prefix {prefix!r}")
        self.prefix = prefix
        self.name = None
        self._procs = []

    # -- lifecycle -------------------------------------------------------
    def __enter__(self):
        for _ in range(5):
            name = f"{NAME_PREFIX}{self.prefix}-{secrets.token_hex(3)}"
            res = subprocess.run(["ip", "netns", "add", name], check=False,
                                 capture_output=True, text=True)
            if res.returncode == 0:
                self.name = name
                break
            if "exists" not in res.stderr:
                raise NetNamespaceError(
                    f"ip netns add {name} failed: {res.stderr.strip()}")
        else:
            raise NetNamespaceError("could not pick a free namespace name")
        try:
            self.run(["ip", "link", "set", "lo", "up"])
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        """Kill what we started, then delete the namespace.  Idempotent."""
        if self.name is None:
            return
        errors = []
        try:
            survivors = kill_pids(self._procs)
            if survivors:
                errors.append(f"processes survived SIGKILL: {survivors}")
            self._procs = []
            # Anything else still in the namespace descends from what we
            # started (e.g. QEMU under a libvirtd we ran); it pins the
            # namespace, so end it too, by PID.
            survivors = kill_pids(self.pids())
            if survivors:
                errors.append(f"processes in {self.name} survived: "
                              f"{survivors}")
        finally:
            res = subprocess.run(["ip", "netns", "delete", self.name],
                                 check=False, capture_output=True, text=True)
            if res.returncode != 0:
                errors.append(f"ip netns delete {self.name}: "
                              f"{res.stderr.strip()}")
            self.name = None
        if errors:
            raise NetNamespaceError("; ".join(errors))

    # -- running things inside -------------------------------------------
    @property
    def exec_prefix(self):
        """argv prefix that runs a command inside this namespace."""
        self._check_open()
        return ["ip", "netns", "exec", self.name]

    def _check_open(self):
        if self.name is None:
            raise NetNamespaceError("namespace is not open")

    def run(self, argv, check=True, timeout=60, **kwargs):
        """Run argv inside the namespace; returns CompletedProcess (text).

        Output is captured unless ``stdout``/``stderr`` are given.  With
        ``check`` a non-zero exit raises :class:`CommandFailed` (a
        CalledProcessError whose message includes stderr).
        """
        argv = self._argv(argv)
        if "stdout" not in kwargs and "stderr" not in kwargs:
            kwargs["capture_output"] = True
        kwargs.setdefault("text", True)
        res = subprocess.run(argv, check=False, timeout=timeout, **kwargs)
        if check and res.returncode != 0:
            raise CommandFailed(res.returncode, argv, res.stdout, res.stderr)
        return res

    def check_output(self, argv, timeout=60, **kwargs):
        """Run argv inside the namespace and return its stdout (text)."""
        return self.run(argv, check=True, timeout=timeout, **kwargs).stdout

    def popen(self, argv, **kwargs):
        """Start argv inside the namespace; killed by PID on exit.

        ``ip netns exec`` execs the command, so ``Popen.pid`` is the PID of
        the command itself.
        """
        proc = subprocess.Popen(self._argv(argv), **kwargs)
        self._procs.append(proc)
        return proc

    def pids(self):
        """PIDs of all processes currently in this namespace."""
        self._check_open()
        res = subprocess.run(["ip", "netns", "pids", self.name],
                             check=False, capture_output=True, text=True)
        return [int(p) for p in res.stdout.split() if p.isdigit()
                and int(p) != os.getpid()]

    def _argv(self, argv):
        if isinstance(argv, (str, bytes)):
            raise TypeError("argv must be a list, not a string")
        return self.exec_prefix + [str(a) for a in argv]

    def __repr__(self):
        return f"<NetNamespace {self.name or '(closed)'}>"
