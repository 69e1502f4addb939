"""A tiny network namespace context manager, private to the OVS harness.

NOTE(vif_plug_dyn): another harness module (``harness/netns.py``) is the
project's general one; this file stays private (leading underscore) so the
two never clash.  It only does what the OVS tests and the benchmark need.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Sequence
from typing import Self


def ip(*args: str, netns: str | None = None, check: bool = True,
       timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run ``ip [-n NS] ARGS...`` (argv list, never a shell)."""
    argv = ['ip']
    if netns is not None:
        argv += ['-n', netns]
    argv += list(args)
    return subprocess.run(argv, check=check, capture_output=True,
                          text=True, timeout=timeout)


def netns_exists(name: str) -> bool:
    return os.path.exists(os.path.join('/run/netns', name))


class NetNamespace:
    """Create a named network namespace on enter, delete it on exit.

    The loopback device is brought up.  :meth:`exec_argv` gives the argv
    prefix to run a command inside it.  Deleting the namespace removes
    every device inside it; veth peers in other namespaces go too.
    """

    def __init__(self, prefix: str = 'vpdovs') -> None:
        # NOTE(vif_plug_dyn): random suffix so parallel runs never collide,
        # short so that derived device names fit IFNAMSIZ where needed.
        self.name = '%s-%s' % (prefix, uuid.uuid4().hex[:8])

    def __enter__(self) -> Self:
        ip('netns', 'add', self.name)
        try:
            ip('link', 'set', 'lo', 'up', netns=self.name)
        except BaseException:
            self.delete()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.delete()

    def delete(self) -> None:
        if netns_exists(self.name):
            ip('netns', 'del', self.name, check=False)

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        return ['ip', 'netns', 'exec', self.name] + list(argv)

    def run(self, *argv: str, check: bool = True, timeout: float = 60.0
            ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace and capture its output."""
        return subprocess.run(self.exec_argv(argv), check=check,
                              capture_output=True, text=True,
                              timeout=timeout)

    def ip(self, *args: str, check: bool = True
           ) -> subprocess.CompletedProcess[str]:
        return ip(*args, netns=self.name, check=check)
