"""One process, one namespace: a helper configured for another namespace
than the one this process's privileged daemon serves is refused with an
error naming both, before anything is sent (the real daemon is exercised
by ``tests/functional/test_one_namespace.py``)."""

import pytest
from oslo_config import cfg
from oslo_privsep import priv_context

from vif_plug_dyn import exception
from vif_plug_dyn import host as host_mod
from vif_plug_dyn import opts
from vif_plug_dyn import privsep
from vif_plug_dyn.privsep import linux_net

CTX = privsep.vif_plug_dyn_pctxt


class FakeChannel:
    def __init__(self, running=True):
        self.running = running

    def close(self):
        self.running = False


@pytest.fixture(autouse=True)
def _no_daemon():
    assert CTX.channel is None
    yield
    CTX.channel = None
    CTX.served = None
    privsep.set_netns(None)


def _conf(netns=None):
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override('netns', netns, opts.GROUP)
    return conf


def _daemon_in(netns):
    CTX.channel = FakeChannel()
    CTX.served = netns


def test_another_namespace_is_refused_naming_both():
    _daemon_in('ns-a')
    with pytest.raises(exception.NamespaceMismatch) as info:
        host_mod.HostNetwork(_conf('ns-b'))
    assert 'serves network namespace ns-a' in str(info.value)
    assert 'asks for network namespace ns-b' in str(info.value)
    # Its own namespace, or none configured, is fine.
    host_mod.HostNetwork(_conf('ns-a'))
    host_mod.HostNetwork(_conf())


def test_the_process_namespace_is_named_too():
    _daemon_in(None)
    with pytest.raises(exception.NamespaceMismatch,
                       match="serves network namespace \\(none: the "
                             "process's own\\).*namespace ns-b"):
        host_mod.HostNetwork(_conf('ns-b'))


def test_checked_on_every_call_nothing_sent(monkeypatch):
    sent = []
    monkeypatch.setattr(linux_net, 'get_link',
                        lambda name: sent.append(name) or {'name': name})
    host = host_mod.HostNetwork(_conf('ns-b'))
    assert CTX.netns == 'ns-b'
    # Another helper of this process started the daemon in its namespace
    # since this one was made.
    _daemon_in('ns-a')
    with pytest.raises(exception.NamespaceMismatch):
        host.get_link('tap0')
    assert sent == []
    _daemon_in('ns-b')
    assert host.get_link('tap0') == {'name': 'tap0'}
    assert sent == ['tap0']


def test_a_dead_daemon_frees_the_process_for_another_namespace():
    _daemon_in('ns-a')
    CTX.channel.running = False
    host_mod.HostNetwork(_conf('ns-b'))
    assert CTX.netns == 'ns-b'


def test_start_records_the_namespace_served(monkeypatch):
    def fake_start(self, method=priv_context.Method.ROOTWRAP):
        self.channel = FakeChannel()

    monkeypatch.setattr(priv_context.PrivContext, 'start', fake_start)
    privsep.set_netns('ns-c')
    CTX.start()
    assert CTX.served == 'ns-c' and privsep.served_netns() == 'ns-c'
    # Choosing the next namespace does not change what runs.
    privsep.set_netns('ns-d')
    assert privsep.served_netns() == 'ns-c'
    with pytest.raises(exception.NamespaceMismatch):
        privsep.claim('ns-d')
    CTX.channel = None
    assert privsep.served_netns() is None


def test_the_first_call_holds_the_namespace_until_it_started_the_daemon(
        monkeypatch):
    """Two threads of one process, two namespaces, no daemon yet: the one
    whose call starts the daemon keeps the namespace chosen until it has;
    the other is refused, never served in the wrong namespace."""
    import threading

    inside = threading.Event()
    proceed = threading.Event()
    outcome = {}

    def fake_start(self, method=priv_context.Method.ROOTWRAP):
        self.channel = FakeChannel()

    monkeypatch.setattr(priv_context.PrivContext, 'start', fake_start)

    def first():
        with privsep.claimed('ns-a'):
            inside.set()
            proceed.wait(5)
            CTX.start()          # what oslo.privsep does on the first call

    def second():
        try:
            privsep.claim('ns-b')
        except exception.NamespaceMismatch as exc:
            outcome['second'] = exc

    one = threading.Thread(target=first)
    one.start()
    assert inside.wait(5)
    two = threading.Thread(target=second)
    two.start()
    two.join(0.2)
    assert two.is_alive(), 'the second thread did not wait'
    assert CTX.netns == 'ns-a'
    proceed.set()
    one.join(5)
    two.join(5)
    assert CTX.served == 'ns-a'
    assert 'ns-a' in str(outcome['second'])
