"""Fixtures for functional tests: private network namespaces and the real
privsep daemon started inside them.

Everything a test makes lives in namespaces named ``vpdt-ps-<random>``
that are deleted at teardown, pass or fail; the daemon is stopped (and
waited for) before its namespace goes.
"""

import json
import os
import secrets
import shutil
import subprocess
import sys

import pytest
from oslo_config import cfg

from vif_plug_dyn import host as host_mod
from vif_plug_dyn import opts
from vif_plug_dyn import privsep


def require_root() -> None:
    """Skip unless network namespaces can be made here."""
    if os.geteuid() != 0:
        pytest.skip('needs root: creates network namespaces and starts the '
                    'privileged daemon')
    if shutil.which('ip') is None:
        pytest.skip('needs iproute2 (ip) to create network namespaces')


class Netns:
    """A private network namespace and shell-free helpers to inspect it."""

    def __init__(self) -> None:
        self.name = 'vpdt-ps-' + secrets.token_hex(4)

    def run(self, *cmd: str, check: bool = True
            ) -> subprocess.CompletedProcess:
        """Run a command inside the namespace."""
        return subprocess.run(['ip', 'netns', 'exec', self.name, *cmd],
                              check=check, capture_output=True, text=True)

    def ip(self, *args: str, check: bool = True
           ) -> subprocess.CompletedProcess:
        """``ip -n NAME ARGS``."""
        return subprocess.run(['ip', '-n', self.name, *args], check=check,
                              capture_output=True, text=True)

    def link(self, name: str) -> dict | None:
        """``ip -d -j link show dev NAME`` as a dict, ``None`` if absent."""
        out = self.ip('-d', '-j', 'link', 'show', 'dev', name, check=False)
        if out.returncode != 0:
            return None
        return json.loads(out.stdout)[0]

    def names(self) -> set[str]:
        """Every link name in the namespace."""
        out = self.ip('-j', 'link', 'show')
        return {link['ifname'] for link in json.loads(out.stdout)}

    @property
    def inode(self) -> int:
        return os.stat('/run/netns/' + self.name).st_ino


@pytest.fixture
def make_netns():
    """Factory of namespaces, all deleted at teardown."""
    require_root()
    made: list[Netns] = []

    def make() -> Netns:
        ns = Netns()
        subprocess.run(['ip', 'netns', 'add', ns.name], check=True)
        made.append(ns)
        ns.ip('link', 'set', 'lo', 'up')
        return ns

    yield make
    for ns in made:
        subprocess.run(['ip', 'netns', 'del', ns.name], check=False)


@pytest.fixture
def netns(make_netns):
    """One private namespace (the daemon's)."""
    return make_netns()


@pytest.fixture
def helper_command():
    """The privsep-helper of this interpreter (tests run as root: no sudo
    or rootwrap prefix)."""
    require_root()
    helper = os.path.join(os.path.dirname(sys.executable), 'privsep-helper')
    if not os.path.exists(helper):
        pytest.skip('privsep-helper not installed next to %s' %
                    sys.executable)
    opts.register_opts(cfg.CONF)
    cfg.CONF.set_override('helper_command', helper,
                          group=opts.PRIVSEP_GROUP)
    yield helper
    privsep.stop()
    privsep.set_netns(None)
    cfg.CONF.clear_override('helper_command', group=opts.PRIVSEP_GROUP)


@pytest.fixture
def host(netns, helper_command):
    """A HostNetwork whose real daemon runs inside ``netns``."""
    privsep.restart(netns.name)
    yield host_mod.HostNetwork(tag='fn')
    privsep.stop()
