"""Timed transactions, automatic rollback, notices and verify-after-apply
on an in-memory host (the functional tests run the real watchdog)."""

import os
import sys
import time

import pytest
from oslo_config import cfg

from vif_plug_dyn import exception
from vif_plug_dyn import opts
from vif_plug_dyn.hostif import api as api_mod
from vif_plug_dyn.hostif import journal as journal_mod
from vif_plug_dyn.hostif import transactions
from vif_plug_dyn.hostif import verify
from vif_plug_dyn.hostif import watchdog
from vif_plug_dyn.tests.unit.hostif.fakehost import FakeHost
from vif_plug_dyn.tests.unit.hostif.livestate import addr
from vif_plug_dyn.tests.unit.hostif.livestate import link
from vif_plug_dyn.tests.unit.hostif.test_api import BRIDGE
from vif_plug_dyn.tests.unit.hostif.test_api import ETH


class Timer:
    def __init__(self, fail=False):
        self.armed, self.disarmed, self.fail = [], [], fail

    def arm(self, transaction):
        if self.fail:
            raise exception.TransactionError(reason='no watchdog here')
        self.armed.append(transaction)
        return {'pid': 4242}

    def disarm(self, transaction):
        self.disarmed.append(transaction['id'])


@pytest.fixture
def conf(tmp_path):
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override('state_path', str(tmp_path / 'state'), opts.GROUP)
    conf.set_override('interface_dir', str(tmp_path / 'ifaces'), opts.GROUP)
    conf.set_override('netns', 'vpdt-unit', opts.GROUP)
    return conf


@pytest.fixture
def host():
    return FakeHost(link('v0', 3, 'veth', alias='uplink-a'),
                    link('v1', 4, 'veth', up=True),
                    link('v2', 5, 'veth'),
                    addresses=[addr(4, '192.0.2.99', 24, name='v1')])


@pytest.fixture
def timer():
    return Timer()


@pytest.fixture
def api(conf, host, timer):
    return api_mod.HostInterfaceAPI(conf, host=host, timer=timer)


def _expire_now(api):
    """Move the open transaction's deadline into the past."""
    document = api.journal.load(journal_mod.TRANSACTION)
    document['deadline'] -= 3600
    api.journal.save(journal_mod.TRANSACTION, document)


def test_a_timed_transaction_arms_the_timer(api, timer):
    result = api.change_begin(timeout=30)
    assert result['timeout'] == 30.0 and result['watchdog'] == {'pid': 4242}
    armed = timer.armed[0]
    assert armed['directory'] == api.journal.directory
    assert 25 < armed['deadline'] - time.time() <= 30
    status = api.transaction()
    assert status['timeout'] == 30.0 and 0 < status['remaining'] <= 30
    assert status['watchdog'] == {'pid': 4242}
    api.change_commit()
    assert timer.disarmed == [armed['id']]
    # Without a timeout there is no timer.
    api.change_begin()
    api.change_rollback()
    assert len(timer.armed) == 1 and len(timer.disarmed) == 1


def test_expire_before_and_after_the_deadline(api, host):
    api.define(ETH)
    before = host.snapshot()
    api.change_begin(timeout=60)
    token = api.journal.load(journal_mod.TRANSACTION)['id']
    api.start('v1')
    assert api.expire(token) is None, 'not due yet'
    assert api.expire('another') is None
    _expire_now(api)
    report = api.expire(token)
    assert report['restored'] and report['rolled_back']
    assert host.snapshot() == before
    assert api.transaction() is None
    notices = api.take_notices()
    assert len(notices) == 1 and notices[0]['event'] == 'timeout-rollback'
    assert 'not committed within 60s' in notices[0]['message']
    assert 'as it was at change-begin' in notices[0]['message']
    assert api.take_notices() == []
    assert api.expire(token) is None


def test_the_next_command_rolls_back_an_expired_transaction(api, host,
                                                            timer):
    """The watchdog died: the deadline still holds."""
    before = host.snapshot()
    api.change_begin(timeout=5)
    api.define(ETH)
    api.start('v1')
    _expire_now(api)
    with pytest.raises(exception.TransactionError,
                       match='timeout expired and it was rolled back '
                             'automatically'):
        api.change_commit()
    assert host.snapshot() == before
    assert api.store.list() == []
    assert timer.disarmed, 'the timer is told the transaction ended'
    assert api.take_notices()[0]['restored'] is True


def test_a_timer_that_cannot_be_armed_leaves_no_transaction(conf, host):
    api = api_mod.HostInterfaceAPI(conf, host=host, timer=Timer(fail=True))
    with pytest.raises(exception.TransactionError, match='no watchdog'):
        api.change_begin(timeout=10)
    assert api.transaction() is None


@pytest.mark.parametrize('value', [0, -1, float('nan'), float('inf'),
                                   True, '10', 86401])
def test_bad_timeouts_are_refused(api, value):
    with pytest.raises(exception.InvalidField, match='field timeout'):
        api.change_begin(timeout=value)
    assert api.transaction() is None


def test_notices_need_no_state_directory(api):
    assert api.take_notices() == []
    assert not os.path.exists(api.journal.directory)


# --- verify after apply ------------------------------------------------------

def _ignore_mtu_of(host, name):
    """The "kernel" accepts MTU changes of ``name`` but keeps the old
    one (what a driver capping the MTU does)."""
    original = host._set_link

    def set_link(op):
        if op['name'] == name and op['mtu'] is not None:
            op = dict(op, mtu=None)
        return original(op)
    host._set_link = set_link


def test_verify_failure_restores_the_apply(api, host):
    api.define(BRIDGE)
    before = host.snapshot()
    _ignore_mtu_of(host, 'v2')
    with pytest.raises(exception.HostInterfaceVerifyFailed) as info:
        api.start('br0')
    assert str(info.value).startswith(
        'Host interface br0: after the start, v2 mtu/@size is 1500, the '
        'definition sets 9000; the host was put back as it was')
    assert info.value.kwargs['mismatches'] == [{
        'device': 'v2', 'element': '/interface/bridge/interface[2]',
        'field': 'mtu/@size', 'wanted': 9000, 'found': 1500}]
    assert host.snapshot() == before
    assert api.journal.load(journal_mod.APPLY) is None
    assert [d.name for d in api.store.list()] == ['br0']


def test_verify_failure_inside_a_transaction_rolls_it_back(api, host):
    before = host.snapshot()
    api.change_begin()
    api.define(ETH)
    api.start('v1')
    api.define(BRIDGE)
    _ignore_mtu_of(host, 'v0')
    with pytest.raises(exception.HostInterfaceVerifyFailed,
                       match='the transaction begun .* was rolled back: '
                             'the host was put back as it was'):
        api.start('br0')
    assert host.snapshot() == before
    assert api.store.list() == [] and api.transaction() is None


def test_verify_reads_every_field_a_definition_sets():
    from vif_plug_dyn.hostif import model
    from vif_plug_dyn.tests.unit.hostif.livestate import ADOPTED
    from vif_plug_dyn.tests.unit.hostif.livestate import CREATED
    from vif_plug_dyn.tests.unit.hostif.livestate import state
    definition = model.HostInterface.from_xml(
        "<interface type='bridge' name='br0'><mtu size='9000'/>"
        "<protocol family='ipv4'><ip address='192.0.2.1' prefix='24'/>"
        "</protocol><bridge stp='on' delay='4'>"
        "<interface type='bond' name='bond0'><bond mode='active-backup'>"
        "<miimon freq='100'/><interface type='ethernet' name='eth1'/>"
        "</bond></interface><interface type='vlan' name='eth2.7'>"
        "<vlan tag='7'><interface name='eth2'/></vlan></interface>"
        "</bridge></interface>")
    good = state(
        link('br0', 2, 'bridge', mtu=9000, up=True, alias=CREATED % 'br0',
             data={'stp_state': 1, 'forward_delay': 400}),
        link('bond0', 3, 'bond', mtu=9000, up=True, master=2,
             alias=CREATED % 'br0', data={'mode': 1, 'miimon': 100,
                                          'primary': 4}),
        link('eth1', 4, mtu=9000, up=True, master=3,
             alias=ADOPTED % 'br0'),
        link('eth2', 5, mtu=9000, up=True),
        link('eth2.7', 6, 'vlan', mtu=9000, up=True, master=2, lower=5,
             alias=CREATED % 'br0', data={'vlan_id': 7}),
        addresses=[addr(2, '192.0.2.1', 24)])
    assert verify.check_start(definition, good) == []
    bad = state(
        link('br0', 2, 'bridge', mtu=1500, up=False, alias=CREATED % 'br0',
             data={'stp_state': 0, 'forward_delay': 0}),
        link('bond0', 3, 'bond', mtu=9000, up=True, alias=CREATED % 'br0',
             data={'mode': 0, 'miimon': 0}),
        link('eth1', 4, mtu=9000, up=True, alias=ADOPTED % 'br0'),
        link('eth2', 5, mtu=9000, up=True),
        link('eth3', 7, mtu=9000, up=True),
        link('eth2.7', 6, 'vlan', mtu=9000, up=True, master=2, lower=7,
             alias=CREATED % 'br0', data={'vlan_id': 8}))
    fields = {(m.device, m.field) for m in verify.check_start(definition,
                                                               bad)}
    assert fields == {
        ('br0', 'mtu/@size'), ('br0', 'state'), ('br0', 'bridge/@stp'),
        ('br0', 'bridge/@delay'), ('bond0', 'master'),
        ('bond0', 'bond/@mode'), ('bond0', 'bond/miimon'),
        ('bond0', 'bond/@primary'), ('eth1', 'master'),
        ('eth2.7', 'vlan/@tag'), ('eth2.7', 'vlan/interface/@name'),
        ('br0', "protocol[@family='ipv4']/ip[1]")}


# --- the watchdog's plumbing -------------------------------------------------

def test_settings_round_trip(conf):
    conf.set_override('interface_backends', ['keyfile'], opts.GROUP)
    settings = watchdog.conf_settings(conf)
    assert settings[opts.GROUP]['interface_backends'] == ['keyfile']
    assert settings[opts.GROUP]['netns'] == 'vpdt-unit'
    rebuilt = watchdog.build_conf(settings)
    for name in ('state_path', 'interface_dir', 'netns',
                 'interface_backends'):
        assert rebuilt[opts.GROUP][name] == conf[opts.GROUP][name]


def test_is_watchdog_checks_the_command_line():
    assert not watchdog.is_watchdog(os.getpid(), 'token')
    assert not watchdog.is_watchdog(2 ** 22 + 1, 'token')


def test_a_watchdog_that_cannot_start_is_an_error(conf, monkeypatch):
    monkeypatch.setattr(sys, 'executable', '/bin/false')
    timer = watchdog.ProcessTimer(conf)
    with pytest.raises(exception.TransactionError,
                       match='the watchdog did not start'):
        timer.arm({'id': 'abc', 'deadline': 0, 'directory': '/tmp'})
    timer.disarm({'id': 'abc', 'watchdog': {'pid': os.getpid()}})


def test_check_timeout():
    assert transactions.check_timeout(None) is None
    assert transactions.check_timeout(10) == 10.0
