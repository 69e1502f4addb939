"""What the benchmark scripts share: private namespaces, the privileged
daemon inside them, timing, ``ip``/``tc`` batches and machine facts.

Every benchmark runs as root inside network namespaces it makes itself
(named ``vpdt-bench-...``) and removes, pass or fail; nothing in the root
namespace is ever changed.
"""

import contextlib
import datetime
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from oslo_config import cfg

from vif_plug_dyn import opts
from vif_plug_dyn import ports
from vif_plug_dyn import privsep

#: Prefix of every namespace a benchmark makes.
NS_PREFIX = 'vpdt-bench-'

_CONF_READY = False


def require_root(name: str) -> None:
    """Exit with a message unless running as root."""
    if os.geteuid() != 0:
        print('%s: needs root (network namespaces)' % name, file=sys.stderr)
        raise SystemExit(2)


def helper_command() -> str:
    """The ``privsep-helper`` beside this interpreter (run as root
    already: no sudo/rootwrap prefix)."""
    return os.path.join(os.path.dirname(sys.executable), 'privsep-helper')


def setup_process_conf() -> None:
    """Register the options on the process configuration and point the
    privileged daemon at this interpreter's ``privsep-helper``."""
    global _CONF_READY
    if not _CONF_READY:
        cfg.CONF([], project='vif_plug_dyn_bench', default_config_files=[])
        _CONF_READY = True
    opts.register_opts(cfg.CONF)
    cfg.CONF.set_override('helper_command', helper_command(),
                          group=opts.PRIVSEP_GROUP)


@contextlib.contextmanager
def namespace(label: str) -> Iterator[str]:
    """A fresh network namespace (loopback up), always deleted.

    Any daemon this process started inside it is stopped first.
    """
    name = '%s%s-%s' % (NS_PREFIX, label, secrets.token_hex(3))
    subprocess.run(['ip', 'netns', 'add', name], check=True)
    try:
        subprocess.run(['ip', '-n', name, 'link', 'set', 'lo', 'up'],
                       check=True)
        yield name
    finally:
        with contextlib.suppress(Exception):
            privsep.stop()
        subprocess.run(['ip', 'netns', 'del', name], check=False)


@contextlib.contextmanager
def daemon_in(ns: str) -> Iterator[None]:
    """The privileged daemon of this process, started inside ``ns``."""
    setup_process_conf()
    privsep.restart(ns)
    try:
        yield
    finally:
        privsep.stop()
        privsep.set_netns(None)


def make_conf(ns: str, networks: dict[str, str], **overrides: Any
              ) -> cfg.ConfigOpts:
    """A private configuration: a temporary state path and network
    directory holding ``networks`` ({name: XML})."""
    base = tempfile.mkdtemp(prefix='vpd-bench-')
    net_dir = os.path.join(base, 'networks')
    os.makedirs(net_dir)
    for name, xml in networks.items():
        with open(os.path.join(net_dir, name + '.xml'), 'w',
                  encoding='utf-8') as handle:
            handle.write(xml)
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override('state_path', os.path.join(base, 'state'), opts.GROUP)
    conf.set_override('network_dir', net_dir, opts.GROUP)
    conf.set_override('netns', ns, opts.GROUP)
    for key, value in overrides.items():
        conf.set_override(key, value, opts.GROUP)
    return conf


def make_ports(count: int, network: str, salt: int = 0
               ) -> list[ports.Port]:
    """``count`` ports with distinct MACs on ``network``."""
    out = []
    for i in range(count):
        n = (salt << 16) + i
        out.append(ports.Port(
            port_id=str(uuid.uuid4()),
            mac='52:54:%02x:%02x:%02x:%02x' % (n >> 24 & 0xff, n >> 16 & 0xff,
                                               n >> 8 & 0xff, n & 0xff),
            network=network, vm_uuid=str(uuid.uuid4())))
    return out


def timed(func: Callable[[], Any]) -> float:
    """Seconds ``func()`` took."""
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def batch_file(tool: list[str], lines: list[str]) -> float:
    """Run ``TOOL -batch FILE`` with ``lines``; return the seconds it took
    (writing the file is not timed)."""
    with tempfile.NamedTemporaryFile('w', suffix='.batch',
                                     delete=False) as handle:
        handle.write('\n'.join(lines) + '\n')
        path = handle.name
    try:
        start = time.perf_counter()
        subprocess.run([*tool, '-batch', path], check=True)
        return time.perf_counter() - start
    finally:
        os.unlink(path)


def ip_batch(ns: str, lines: list[str]) -> float:
    """``ip -n NS -batch`` (timed)."""
    return batch_file(['ip', '-n', ns], lines)


def tc_batch(ns: str, lines: list[str]) -> float:
    """``tc -n NS -batch`` (timed)."""
    return batch_file(['tc', '-n', ns], lines)


def settle(seconds: float) -> None:
    """Let the kernel finish the background work of the last phase.

    NOTE(vpd): bringing 1000 taps up queues IPv6 address configuration
    and link-watch work that holds the RTNL lock for a while; whatever is
    timed next would pay for it. Every timed phase starts after the same
    pause so no method inherits another's leftovers.
    """
    time.sleep(seconds)


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``, nearest rank."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(q * len(ordered))) - 1))
    return ordered[rank]


def machine_facts() -> dict[str, Any]:
    """CPU model, cores, memory, kernel, Python and the date."""
    model = platform.processor() or 'unknown'
    with contextlib.suppress(OSError):
        with open('/proc/cpuinfo', encoding='utf-8') as handle:
            for line in handle:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    memory_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open('/proc/meminfo', encoding='utf-8') as handle:
            memory_kb = int(handle.readline().split()[1])
    return {'cpu': model, 'cores': os.cpu_count(),
            'memory_gib': round(memory_kb / 1024 / 1024, 1),
            'kernel': platform.release(),
            'python': platform.python_version(),
            'date': datetime.datetime.now(datetime.UTC).strftime(
                '%Y-%m-%d %H:%M UTC')}


def rss_kb(pid: int | str = 'self') -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in KiB."""
    found = {}
    with open('/proc/%s/status' % pid, encoding='ascii') as handle:
        for line in handle:
            key, _, value = line.partition(':')
            if key in ('VmRSS', 'VmHWM'):
                found[key] = int(value.split()[0])
    return found
