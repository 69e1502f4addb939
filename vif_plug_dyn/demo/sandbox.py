"""Private network namespaces for the demo, removed with everything in
them when the demo ends, even when it fails or is interrupted."""

import contextlib
import os
import secrets
import signal
import subprocess
from collections.abc import Iterator


class Sandbox:
    """A set of private namespaces and the processes started in them.

    Every namespace is named ``vpd-demo-<role>-<random>``; only processes
    this object started (by PID) and processes inside its own namespaces
    are ever ended.
    """

    def __init__(self) -> None:
        self.token = secrets.token_hex(3)
        self.namespaces: list[str] = []
        self._procs: list[subprocess.Popen[str]] = []

    def namespace(self, role: str) -> str:
        """Create a namespace (with ``lo`` up) and return its name."""
        name = 'vpd-demo-%s-%s' % (role, self.token)
        subprocess.run(['ip', 'netns', 'add', name], check=True)
        self.namespaces.append(name)
        self.run(name, ['ip', 'link', 'set', 'lo', 'up'])
        return name

    def run(self, netns: str, argv: list[str], check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside ``netns`` (never through a shell)."""
        return subprocess.run(['ip', 'netns', 'exec', netns] + argv,
                              check=check, capture_output=True, text=True,
                              timeout=60)

    def popen(self, netns: str, argv: list[str]) -> 'subprocess.Popen[str]':
        """Start ``argv`` inside ``netns``; it is ended when the sandbox
        closes."""
        proc = subprocess.Popen(['ip', 'netns', 'exec', netns] + argv,
                                stdout=subprocess.PIPE, text=True)
        self._procs.append(proc)
        return proc

    def close(self) -> None:
        """End what was started and delete every namespace."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        self._procs = []
        for name in reversed(self.namespaces):
            pids = subprocess.run(['ip', 'netns', 'pids', name],
                                  capture_output=True, text=True).stdout
            for pid in pids.split():
                if pid.isdigit() and int(pid) != os.getpid():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
            subprocess.run(['ip', 'netns', 'delete', name],
                           capture_output=True)
        self.namespaces = []

    def leftovers(self) -> list[str]:
        """Namespaces of this sandbox still present (empty after close)."""
        listed = subprocess.run(['ip', 'netns', 'list'], capture_output=True,
                                text=True).stdout
        return [line.split()[0] for line in listed.splitlines()
                if self.token in line]


@contextlib.contextmanager
def sandbox() -> Iterator[Sandbox]:
    """A :class:`Sandbox` closed on exit, whatever happens."""
    box = Sandbox()
    try:
        yield box
    finally:
        box.close()
