"""The privsep context, its helper command and the error channel."""

import msgpack
import pytest
from oslo_config import cfg
from oslo_privsep import capabilities as caps
from oslo_privsep import priv_context
from oslo_utils import importutils

from vif_plug_dyn import exception
from vif_plug_dyn import opts
from vif_plug_dyn import privsep
from vif_plug_dyn.privsep import linux_net


@pytest.fixture
def helper_command():
    cfg.CONF.set_override('helper_command', '/venv/bin/privsep-helper',
                          group=opts.PRIVSEP_GROUP)
    yield
    cfg.CONF.clear_override('helper_command', group=opts.PRIVSEP_GROUP)
    privsep.set_netns(None)


def _over_the_wire(exc):
    """What oslo.privsep does with an exception raised in the daemon:
    send (class path, args) through msgpack, then ``cls(*args)``."""
    cls = type(exc)
    wire = msgpack.packb(('%s.%s' % (cls.__module__, cls.__name__),
                          exc.args), use_bin_type=True)
    name, args = msgpack.unpackb(wire, raw=False, use_list=False)
    return importutils.import_class(name)(*args)


class TestErrorsCrossTheChannel:
    @pytest.mark.parametrize('exc', [
        exception.NetlinkOperationFailed(operation='setlink', device='tap0',
                                         errno=22, reason='Invalid'),
        exception.DeviceNotOwned(operation='delete', device='lo'),
        exception.DeviceNotFound(device='tap9'),
        exception.InvalidField(field='ops[0].name', value='a/b',
                               reason='bad'),
        exception.PrivilegedHelperFailed(operation='apply', reason='x'),
    ])
    def test_round_trip(self, exc):
        back = _over_the_wire(exc)
        assert type(back) is type(exc)
        assert back.kwargs == exc.kwargs
        assert str(back) == str(exc)
        assert back.args == exc.args

    def test_errno_survives(self):
        back = _over_the_wire(exception.NetlinkOperationFailed(
            operation='newlink', device='vl0', errno=95, reason='nope'))
        assert back.errno == 95
        assert isinstance(back, OSError)
        assert back.strerror == 'nope'

    def test_oserror_subclasses_keep_a_sane_errno(self):
        exc = exception.DeviceNotOwned(operation='delete', device='lo')
        assert exc.errno is None
        assert isinstance(exc, PermissionError)

    def test_unserialisable_values_become_repr(self):
        exc = exception.InvalidField(field='f', value=object(), reason='r')
        back = _over_the_wire(exc)
        assert back.kwargs['value'].startswith('<object object')
        # the original keeps the real object
        assert not isinstance(exc.kwargs['value'], str)

    def test_explicit_message_kept(self):
        exc = exception.VifPlugDynException('custom text')
        back = _over_the_wire(exc)
        assert str(back) == 'custom text'


class TestContext:
    def test_capabilities(self):
        assert sorted(cfg.CONF[opts.PRIVSEP_GROUP].capabilities) == sorted(
            [caps.CAP_NET_ADMIN, caps.CAP_MKNOD])

    def test_entrypoints_registered(self):
        ctx = privsep.vif_plug_dyn_pctxt
        for func in (linux_net.apply, linux_net.apply_one,
                     linux_net.get_link, linux_net.list_links,
                     linux_net.daemon_info):
            assert ctx.is_entrypoint(func)

    def test_pypath_resolves_to_the_context(self):
        assert importutils.import_class(
            privsep.vif_plug_dyn_pctxt.pypath) is privsep.vif_plug_dyn_pctxt

    def test_helper_command_plain(self, helper_command):
        cmd = privsep.vif_plug_dyn_pctxt.helper_command('/tmp/s.sock')
        assert cmd == ['/venv/bin/privsep-helper', '--privsep_context',
                       'vif_plug_dyn.privsep.vif_plug_dyn_pctxt',
                       '--privsep_sock_path', '/tmp/s.sock']

    def test_helper_command_in_netns(self, helper_command):
        privsep.set_netns('vpdt-1')
        cmd = privsep.vif_plug_dyn_pctxt.helper_command('/tmp/s.sock')
        assert cmd[:5] == ['ip', 'netns', 'exec', 'vpdt-1',
                           '/venv/bin/privsep-helper']

    def test_helper_path_only_without_a_root_helper(self, monkeypatch):
        import os
        import sys
        beside = os.path.join(os.path.dirname(sys.executable),
                              'privsep-helper')
        monkeypatch.setattr(priv_context, '_HELPER_COMMAND_PREFIX',
                            ['sudo'])
        monkeypatch.setattr(privsep.os, 'access', lambda path, mode: True)
        monkeypatch.setattr(privsep.os, 'geteuid', lambda: 0)
        ctx = privsep.vif_plug_dyn_pctxt
        assert ctx.helper_command('/tmp/s.sock')[0] == beside
        # Behind sudo or rootwrap the word stays bare, as sudoers and the
        # rootwrap filters name it.
        monkeypatch.setattr(privsep.os, 'geteuid', lambda: 1000)
        assert ctx.helper_command('/tmp/s.sock')[:2] == [
            'sudo', 'privsep-helper']

    def test_netns_goes_after_a_root_helper(self):
        cmd = privsep.netns_command(
            ['sudo', 'nova-rootwrap', '/etc/r.conf', 'privsep-helper',
             '--x'], 'ns1')
        assert cmd == ['sudo', 'nova-rootwrap', '/etc/r.conf', 'ip', 'netns',
                       'exec', 'ns1', 'privsep-helper', '--x']
        assert privsep.netns_command(['my-helper', '--y'], 'ns1') == [
            'ip', 'netns', 'exec', 'ns1', 'my-helper', '--y']

    @pytest.mark.parametrize('bad', ['../x', 'a b', '', 'n/s', 'x\n'])
    def test_bad_netns_refused(self, bad):
        with pytest.raises(exception.InvalidField):
            privsep.set_netns(bad)
        with pytest.raises(exception.InvalidField):
            privsep.netns_command(['privsep-helper'], bad)

    def test_fork_refused_in_a_netns(self, helper_command):
        privsep.set_netns('vpdt-2')
        with pytest.raises(exception.InvalidField):
            privsep.start(method=priv_context.Method.FORK)
        assert privsep.vif_plug_dyn_pctxt.channel is None

    def test_start_failure_is_typed(self, helper_command, monkeypatch):
        def boom(method):
            raise RuntimeError('helper exited non-zero')
        monkeypatch.setattr(privsep.vif_plug_dyn_pctxt, 'start', boom)
        with pytest.raises(exception.PrivilegedHelperFailed) as excinfo:
            privsep.start()
        assert 'non-zero' in str(excinfo.value)

    def test_stop_without_daemon(self):
        assert not privsep.running()
        privsep.stop()


def test_functional_tests_skip_when_not_root(monkeypatch):
    from vif_plug_dyn.tests.functional import conftest
    monkeypatch.setattr(conftest.os, 'geteuid', lambda: 1000)
    with pytest.raises(pytest.skip.Exception) as excinfo:
        conftest.require_root()
    assert 'needs root' in str(excinfo.value)


class _Channel:
    running = True

    def __init__(self, error):
        self.error = error
        self.calls = []

    def remote_call(self, name, args, kwargs, timeout):
        self.calls.append(name)
        raise self.error


class TestBoundary:
    """What the context does on both sides of the channel."""

    @pytest.fixture
    def channel(self):
        def use(error):
            privsep.vif_plug_dyn_pctxt.channel = _Channel(error)
            return privsep.vif_plug_dyn_pctxt.channel
        yield use
        privsep.vif_plug_dyn_pctxt.channel = None

    def test_entrypoints_are_named_by_their_function(self):
        assert privsep.entrypoint_name(linux_net.apply) == 'apply'
        assert privsep.entrypoint_name(linux_net.get_link) == 'get_link'

    def test_a_dead_daemon_is_typed_and_named(self, channel):
        channel(BrokenPipeError(32, 'Broken pipe'))
        with pytest.raises(exception.PrivilegedHelperUnreachable) as err:
            linux_net.get_link('tap0')
        assert err.value.kwargs['operation'] == 'get_link'
        channel(OSError('Premature eof waiting for privileged process'))
        with pytest.raises(exception.PrivilegedHelperFailed) as err:
            linux_net.apply([{'op': 'create_tap', 'name': 'tap0'}])
        assert not isinstance(err.value,
                              exception.PrivilegedHelperUnreachable)
        assert err.value.kwargs['operation'] == 'apply'
        assert 'Premature eof' in str(err.value)

    def test_the_librarys_errors_pass(self, channel):
        channel(exception.DeviceNotFound(device='tap0'))
        with pytest.raises(exception.DeviceNotFound):
            linux_net.get_link('tap0')

    def test_oversized_calls_are_not_sent(self, channel, monkeypatch):
        sent = channel(AssertionError('must not be sent'))
        monkeypatch.setattr(privsep, 'MAX_MESSAGE_BYTES', 1000)
        with pytest.raises(exception.PrivilegedMessageTooLarge) as err:
            linux_net.get_link('x' * 1001)
        assert err.value.kwargs['operation'] == 'get_link'
        assert err.value.kwargs['limit'] == 1000
        assert len(str(err.value)) < 200
        assert sent.calls == []

    def test_daemon_side_errors_are_cut_down(self):
        privsep.vif_plug_dyn_pctxt.set_client_mode(False)
        try:
            with pytest.raises(exception.InvalidField) as err:
                linux_net.get_link('x' * 10_000_000)
            assert len(str(err.value)) < 300
            assert len(repr(err.value.args)) < 600
            with pytest.raises(exception.InvalidField) as err:
                linux_net.apply([{'op': 'delete', 'y' * 10_000: 1,
                                  'names': ['a']}])
            assert len(str(err.value)) < 300
            with pytest.raises(exception.PrivilegedHelperFailed) as err:
                linux_net.apply(*range(10))
            assert err.value.kwargs['operation'] == 'apply'
            assert 'TypeError' in str(err.value)
        finally:
            privsep.vif_plug_dyn_pctxt.set_client_mode(True)


class TestShorten:
    @pytest.mark.parametrize('value', [
        'x' * 100_000, b'\0' * 100_000, list(range(100_000)),
        {str(i): i for i in range(100)}, 2 ** 100_000,
        [['a' * 5000] * 3] * 3, object()],
        ids=lambda value: type(value).__name__)
    def test_bounded(self, value):
        from vif_plug_dyn.privsep import limits
        assert len(repr(limits.shorten(value))) < 1000

    def test_small_values_kept(self):
        from vif_plug_dyn.privsep import limits
        for value in ('tap0', 7, None, True, ['a', 1], {'k': 'v'}):
            assert limits.shorten(value) == value

    def test_bounded_error_keeps_the_type_and_the_keys(self):
        from vif_plug_dyn.privsep import limits
        exc = exception.InvalidField('m' * 100_000, {'field': 'f',
                                                     'value': 'v' * 5000})
        message, kwargs = limits.bounded_error(exc)
        assert len(message) < 3000 and set(kwargs) == {'field', 'value'}
        assert len(kwargs['value']) < 400
