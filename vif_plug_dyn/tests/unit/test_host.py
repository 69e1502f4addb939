"""HostNetwork, the facade drivers use (entrypoints mocked)."""

from unittest import mock

import pytest
from oslo_config import cfg

from vif_plug_dyn import exception
from vif_plug_dyn import host as host_mod
from vif_plug_dyn import opts
from vif_plug_dyn import privsep
from vif_plug_dyn.privsep import linux_net
from vif_plug_dyn.privsep import ops


@pytest.fixture
def conf():
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], project='vif_plug_dyn_test')
    yield conf
    privsep.set_netns(None)


@pytest.fixture
def entry(monkeypatch):
    calls = mock.MagicMock()
    monkeypatch.setattr(linux_net, 'apply', calls.apply)
    monkeypatch.setattr(linux_net, 'apply_one', calls.apply_one)
    monkeypatch.setattr(linux_net, 'get_link', calls.get_link)
    monkeypatch.setattr(linux_net, 'list_links', calls.list_links)
    return calls


def _ok(op, **extra):
    return dict({'index': 0, 'op': op, 'status': 'ok', 'error': None},
                **extra)


class TestBuild:
    def test_netns_option_reaches_the_context(self, conf):
        conf.set_override('netns', 'vpdt-host', group='vif_plug_dyn')
        host_mod.HostNetwork(conf)
        assert privsep.vif_plug_dyn_pctxt.netns == 'vpdt-host'

    def test_bad_tag(self, conf):
        with pytest.raises(exception.InvalidField):
            host_mod.HostNetwork(conf, tag='no spaces')


class TestApply:
    def test_validates_before_calling(self, conf, entry):
        host = host_mod.HostNetwork(conf)
        with pytest.raises(exception.InvalidField):
            host.apply([ops.create_tap('tap0'),
                        {'op': 'create_tap', 'name': 'bad/name'}])
        entry.apply.assert_not_called()

    def test_default_tag_fills_creations_only(self, conf, entry):
        entry.apply.return_value = ((_ok('create_tap'),),)
        host = host_mod.HostNetwork(conf, tag='port-1')
        host.apply([ops.create_tap('tap0'), ops.create_tap('tap1', tag='x'),
                    ops.set_mtu('tap0', 1400)])
        sent, stop = entry.apply.call_args[0]
        assert [op.get('tag') for op in sent] == ['port-1', 'x', None]
        assert stop is True

    def test_tuples_become_lists(self, conf, entry):
        entry.apply.return_value = (
            _ok('delete', deleted=('a', 'b'), missing=()),)
        result = host_mod.HostNetwork(conf).apply([ops.delete(['a', 'b'])])
        assert result == [_ok('delete', deleted=['a', 'b'], missing=[])]

    def test_best_effort_passed(self, conf, entry):
        entry.apply.return_value = ()
        host_mod.HostNetwork(conf).apply([ops.create_tap('t')],
                                         stop_on_error=False)
        assert entry.apply.call_args[0][1] is False

    def test_run_raises_the_typed_error(self, conf, entry):
        err = exception.DeviceNotOwned(operation='delete', device='lo')
        entry.apply.return_value = ({
            'index': 0, 'op': 'delete', 'status': 'error',
            'error': {'type': 'DeviceNotOwned', 'message': err.message,
                      'kwargs': err.kwargs}},)
        with pytest.raises(exception.DeviceNotOwned) as excinfo:
            host_mod.HostNetwork(conf).run([ops.delete('lo')])
        assert excinfo.value.kwargs == {'operation': 'delete',
                                        'device': 'lo'}

    def test_helpers_are_one_operation_batches(self, conf, entry):
        entry.apply.return_value = (_ok('create_tap', name='tap0'),)
        host = host_mod.HostNetwork(conf)
        assert host.create_tap('tap0', mtu=1400,
                               master='br0')['name'] == 'tap0'
        (sent, _stop) = entry.apply.call_args[0]
        assert sent == [dict(ops.create_tap('tap0', mtu=1400,
                                            master='br0'))]
        entry.apply.return_value = (_ok('set_link'),)
        host.set_master('tap0', 'br1')
        assert entry.apply.call_args[0][0][0]['master'] == 'br1'
        host.delete(['tap0'])
        assert entry.apply.call_args[0][0][0]['op'] == 'delete'

    def test_apply_one(self, conf, entry):
        entry.apply_one.side_effect = exception.NetlinkOperationFailed(
            operation='newlink', device='v0', errno=95, reason='nope')
        with pytest.raises(exception.NetlinkOperationFailed) as excinfo:
            host_mod.HostNetwork(conf).apply_one(ops.create_vlan('v0', 'e',
                                                                 5))
        assert excinfo.value.errno == 95


class TestFailures:
    def test_foreign_errors_become_helper_failures(self, conf, entry):
        entry.apply.side_effect = EOFError('daemon went away')
        with pytest.raises(exception.PrivilegedHelperFailed) as excinfo:
            host_mod.HostNetwork(conf).apply([ops.create_tap('t')])
        assert 'daemon went away' in str(excinfo.value)

    def test_our_errors_pass_through(self, conf, entry):
        entry.get_link.side_effect = exception.DeviceNotFound(device='x')
        host = host_mod.HostNetwork(conf)
        with pytest.raises(exception.DeviceNotFound):
            host.get_link('x')
        assert host.exists('x') is False
        entry.get_link.side_effect = None
        entry.get_link.return_value = {'name': 'x'}
        assert host.exists('x') is True

    def test_list_links_filters_passed(self, conf, entry):
        entry.list_links.return_value = ({'name': 'tap0'},)
        assert host_mod.HostNetwork(conf).list_links(
            master='br0', kind='tun') == [{'name': 'tap0'}]
        entry.list_links.assert_called_once_with('br0', 'tun')


class _Channel:
    """A stand-in privsep channel: only what replace_dead looks at."""

    def __init__(self, running):
        self.running = running
        self.closed = False

    def close(self):
        self.closed = True
        raise OSError(107, 'Transport endpoint is not connected')


class TestDeadDaemon:
    @pytest.fixture
    def starts(self, monkeypatch):
        started = []
        monkeypatch.setattr(privsep.vif_plug_dyn_pctxt, 'start',
                            lambda method=None: started.append(method))
        yield started
        privsep.vif_plug_dyn_pctxt.channel = None

    def test_a_dead_channel_is_replaced_before_the_call(self, conf, entry,
                                                        starts):
        dead = _Channel(running=False)
        privsep.vif_plug_dyn_pctxt.channel = dead
        entry.get_link.return_value = {'name': 'tap0'}
        assert host_mod.HostNetwork(conf).get_link('tap0') == {
            'name': 'tap0'}
        assert dead.closed and len(starts) == 1

    def test_a_live_channel_is_kept(self, conf, entry, starts):
        live = _Channel(running=True)
        privsep.vif_plug_dyn_pctxt.channel = live
        entry.get_link.return_value = {}
        host_mod.HostNetwork(conf).get_link('tap0')
        assert not live.closed and starts == []

    def test_broken_pipe_restarts_once_and_retries(self, conf, entry,
                                                   starts):
        privsep.vif_plug_dyn_pctxt.channel = _Channel(running=True)
        entry.get_link.side_effect = [BrokenPipeError(32, 'pipe'),
                                      {'name': 'tap0'}]
        assert host_mod.HostNetwork(conf).get_link('tap0') == {
            'name': 'tap0'}
        assert len(starts) == 1

    def test_broken_pipe_twice_is_typed(self, conf, entry, starts):
        privsep.vif_plug_dyn_pctxt.channel = _Channel(running=True)
        entry.get_link.side_effect = BrokenPipeError(32, 'pipe')
        with pytest.raises(exception.PrivilegedHelperFailed):
            host_mod.HostNetwork(conf).get_link('tap0')
        assert len(starts) == 1

    def test_death_in_flight_is_not_repeated(self, conf, entry, starts):
        privsep.vif_plug_dyn_pctxt.channel = _Channel(running=True)
        entry.apply.side_effect = OSError(
            'Premature eof waiting for privileged process')
        with pytest.raises(exception.PrivilegedHelperFailed) as err:
            host_mod.HostNetwork(conf).apply([ops.create_tap('tap0')])
        assert 'Premature eof' in str(err.value)
        assert entry.apply.call_count == 1 and starts == []
