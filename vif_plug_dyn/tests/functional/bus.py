"""The message bus of the agent's functional tests: a private RabbitMQ,
agents as real processes, and a controller's view of them.

* :class:`Bus`: a network namespace with a private broker
  (:mod:`~vif_plug_dyn.tests.functional.harness.rabbitmq`) on its
  127.0.0.1 — the deployment's "management network". The test process
  *joins* it for the test (its main thread's network namespace, and so
  every thread it starts: oslo.messaging's reply and heartbeat threads)
  and leaves it at the end; agents run inside it.
* :class:`Agent`: one ``vif-plug-dyn-agent`` process (the installed
  console script) in the bus namespace, serving a host whose devices are
  in another namespace (``[vif_plug_dyn] netns``: its privileged daemon
  starts there, its watcher listens there).
* :class:`Notifications`: a notification listener collecting what the
  agents send.
"""

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from oslo_config import cfg

from vif_plug_dyn import _messaging
from vif_plug_dyn import agent as agent_mod
from vif_plug_dyn import rpc
from vif_plug_dyn._messaging import oslo_messaging
from vif_plug_dyn.tests.functional.harness import rabbitmq
from vif_plug_dyn.tests.functional.harness.netns import NetNamespace

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def joined(netns):
    """Run the calling thread (and the threads it starts meanwhile) in
    network namespace ``netns``; back where it was at the end."""
    own = os.open('/proc/thread-self/ns/net', os.O_RDONLY | os.O_CLOEXEC)
    target = os.open('/run/netns/' + netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)
        os.close(target)


def script(name):
    """An installed console script of this interpreter's environment."""
    path = os.path.join(os.path.dirname(sys.executable), name)
    if not os.path.exists(path):
        path = shutil.which(name) or path
    if not os.path.exists(path):
        pytest.skip('%s is not installed' % name)
    return path


def controller_conf():
    """A controller's configuration (library and agent options)."""
    conf = cfg.ConfigOpts()
    agent_mod.register_opts(conf)
    conf([], default_config_files=[])
    _messaging.prepare_conf(conf)
    return conf


class Bus:
    """A namespace with a private broker, joined by the test process."""

    def __init__(self, base_dir):
        self.base_dir = str(base_dir)
        self.ns = None
        self.broker = None
        self.transport = None
        self.notification_transport = None
        self.conf = None
        self._stack = contextlib.ExitStack()

    @property
    def url(self):
        return self.broker.transport_url

    def __enter__(self):
        missing = rabbitmq.missing_requirements()
        if missing:
            pytest.skip(missing)
        try:
            self.ns = self._stack.enter_context(NetNamespace('bus'))
            self.broker = self._stack.enter_context(
                rabbitmq.RabbitMQ(self.ns, self.base_dir))
            self._stack.enter_context(joined(self.ns.name))
            self.conf = controller_conf()
            self.transport = rpc.get_transport(self.conf, url=self.url)
            self._stack.callback(self.transport.cleanup)
            self.notification_transport = \
                oslo_messaging.get_notification_transport(self.conf,
                                                          url=self.url)
            self._stack.callback(self.notification_transport.cleanup)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc):
        self._stack.close()
        return False

    def client(self, host, **kwargs):
        """An :class:`~vif_plug_dyn.rpc.AgentClient` on the shared
        transport."""
        return rpc.AgentClient(host, self.conf, transport=self.transport,
                               **kwargs)

    def notifications(self):
        """A started :class:`Notifications` listener (stop it)."""
        return Notifications(self.notification_transport)


class Agent:
    """One ``vif-plug-dyn-agent`` process.

    :param bus: the :class:`Bus`.
    :param host: the agent's host name.
    :param netns: the namespace of the host's devices.
    :param base_dir: where its configuration, ledger, networks and log go.
    :param networks: ``{name: xml}`` written to its network directory.
    :param extra: ``{group: {option: value}}`` added to its configuration.
    """

    def __init__(self, bus, host, netns, base_dir, networks, extra=None):
        self.bus = bus
        self.host = host
        self.netns = netns
        self.dir = os.path.join(str(base_dir), 'agent-' + host)
        self.net_dir = os.path.join(self.dir, 'networks')
        self.state = os.path.join(self.dir, 'state')
        self.log = os.path.join(self.dir, 'agent.log')
        self.config = os.path.join(self.dir, 'agent.conf')
        os.makedirs(self.net_dir, exist_ok=True)
        for name, xml in networks.items():
            self.define(name, xml)
        groups = {
            'DEFAULT': {'transport_url': bus.url, 'log_file': self.log,
                        'debug': 'false'},
            'vif_plug_dyn': {'state_path': self.state,
                             'network_dir': self.net_dir,
                             'netns': netns},
            'vif_plug_dyn_agent': {'host': host},
        }
        for group, values in (extra or {}).items():
            groups.setdefault(group, {}).update(values)
        with open(self.config, 'w') as f:
            for group, values in groups.items():
                f.write('[%s]\n' % group)
                for key, value in values.items():
                    f.write('%s = %s\n' % (key, value))
        self.proc = None
        self.client = bus.client(host)

    def define(self, name, xml):
        with open(os.path.join(self.net_dir, name + '.xml'), 'w') as f:
            f.write(xml)

    def start(self, timeout=90):
        """Start the process and wait until it answers a call."""
        self.proc = self.bus.ns.popen(
            [script('vif-plug-dyn-agent'), '--config-file', self.config],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.log + '.stderr', 'ab'))
        try:
            return rpc.wait_for_agent(self.client, timeout=timeout)
        except Exception as exc:
            raise AssertionError('agent %s did not come up (exit %s): %s' % (
                self.host, self.proc.poll(), self.log_text())) from exc

    def signal(self, signum):
        self.proc.send_signal(signum)

    def stop(self, timeout=60):
        """SIGTERM; returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self):
        """SIGKILL, now."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def log_text(self, limit=6000):
        text = ''
        for path in (self.log, self.log + '.stderr'):
            with contextlib.suppress(OSError), open(path, 'rb') as f:
                text += f.read()[-limit:].decode('utf-8', 'replace')
        return text


class Notifications:
    """Collects notifications from the agents (a listener on its own
    pool, so that several collectors each see everything)."""

    def __init__(self, transport):
        self.received = []
        self._cond = threading.Condition()
        target = oslo_messaging.Target(topic=agent_mod.NOTIFICATION_TOPIC)
        self.listener = oslo_messaging.get_notification_listener(
            transport, [target], [self],
            pool='test-' + secrets.token_hex(4))
        self.listener.start()

    def _got(self, priority, publisher_id, event_type, payload):
        with self._cond:
            self.received.append(dict(payload, event_type=event_type,
                                      priority=priority,
                                      publisher_id=publisher_id))
            self._cond.notify_all()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self._got('info', publisher_id, event_type, payload)

    def warn(self, ctxt, publisher_id, event_type, payload, metadata):
        self._got('warn', publisher_id, event_type, payload)

    def wait_for(self, pred, timeout=30.0):
        """Wait for a notification matching ``pred``; return it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for item in self.received:
                    if pred(item):
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError('no such notification in %.0f s; '
                                         'got %r' % (timeout, self.received))
                self._cond.wait(left)

    def of(self, event_type, port_id=None):
        with self._cond:
            return [n for n in self.received if n['event_type'] ==
                    event_type and (port_id is None or
                                    n['port_id'] == port_id)]

    def stop(self):
        self.listener.stop()
        self.listener.wait()
