"""The host interface API on an in-memory host: definitions, start/stop,
automatic rollback, transactions, recovery, adoption records."""

import os

import pytest
from oslo_config import cfg

from vif_plug_dyn import exception
from vif_plug_dyn import opts
from vif_plug_dyn.hostif import api as api_mod
from vif_plug_dyn.hostif import journal as journal_mod
from vif_plug_dyn.hostif import state as state_mod
from vif_plug_dyn.tests.unit.hostif.fakehost import FakeHost
from vif_plug_dyn.tests.unit.hostif.livestate import addr
from vif_plug_dyn.tests.unit.hostif.livestate import link

BRIDGE = """<interface type='bridge' name='br0'>
  <mtu size='9000'/>
  <protocol family='ipv4'><ip address='198.51.100.1' prefix='24'/>
  </protocol>
  <bridge><interface type='ethernet' name='v0'/>
  <interface type='ethernet' name='v2'/></bridge>
</interface>"""
ETH = """<interface type='ethernet' name='v1'>
  <mtu size='1400'/>
  <protocol family='ipv4'><ip address='192.0.2.1' prefix='24'/></protocol>
</interface>"""


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
def api(conf, host):
    return api_mod.HostInterfaceAPI(conf, host=host)


def test_define_start_stop_undefine(api, host):
    api.define(BRIDGE)
    result = api.start('br0')
    assert result['created'] == ['br0']
    assert sorted(result['adopted']) == ['v0', 'v2']
    assert host.links['v0']['master_index'] == host.links['br0']['index']
    assert host.links['v0']['mtu'] == 9000 and host.links['br0']['up']
    assert api.list() == [{'name': 'br0', 'kind': 'bridge',
                           'defined': True, 'active': True,
                           'present': True, 'managed': 'created'}]
    assert "<interface type=\"ethernet\" name=\"v0\">" in api.dump_xml(
        'br0', live=True)
    assert api.dump_live('br0').mtu == 9000
    # One privileged call per step, plus none when nothing changes.
    calls = len(host.calls)
    assert api.start('br0')['steps'] == [] and len(host.calls) == calls
    api.stop('br0')
    assert 'br0' not in host.links
    assert api.journal.adoptions() == {'v0': 'uplink-a', 'v2': None}
    assert api.undefine('br0') == {'undefined': 'br0',
                                   'released': ['v0', 'v2'],
                                   'not_released': []}
    assert host.links['v0']['alias'] == 'uplink-a'
    assert host.links['v2']['alias'] is None
    assert api.journal.adoptions() == {}
    assert api.list() == []


def test_orphans_are_listed(api, host):
    api.define(BRIDGE)
    api.start('br0')
    api.store.undefine('br0')
    assert {(i['name'], i['managed'], i['definition'])
            for i in api.list()} == {('br0', 'created', 'br0'),
                                     ('v0', 'adopted', 'br0'),
                                     ('v2', 'adopted', 'br0')}


@pytest.mark.parametrize('number', range(5))
def test_a_failed_step_puts_the_host_back(api, host, number):
    api.define(BRIDGE)
    before = host.snapshot()

    def hook(action, step, name):
        if step == number:
            raise RuntimeError('boom')
    api.live.step_hook = hook
    with pytest.raises(exception.HostInterfaceApplyFailed) as info:
        api.start('br0')
    assert 'failed at step %d' % number in str(info.value)
    assert 'put back as it was' in str(info.value)
    assert info.value.kwargs['report']['restored']
    assert host.snapshot() == before
    assert api.journal.load(journal_mod.APPLY) is None


def test_a_refusal_puts_the_host_back(api, host):
    api.define(BRIDGE)
    before = host.snapshot()
    host.fail = lambda op: op['op'] == 'add_address'
    with pytest.raises(exception.HostInterfaceApplyFailed,
                       match=r'step 3 \(addresses\): Kernel refused'):
        api.start('br0')
    assert host.snapshot() == before


def test_transaction_rollback(api, host):
    api.define(BRIDGE)
    api.start('br0')
    before = host.snapshot()
    api.change_begin()
    assert api.transaction()['netns'] == 'vpdt-unit'
    api.stop('br0')
    api.undefine('br0')
    api.define(ETH)
    api.start('v1')
    assert host.snapshot() != before
    report = api.change_rollback()
    assert report['restored'], report
    assert report['definitions'] == {'undefined': ['v1'],
                                     'redefined': ['br0'], 'errors': []}
    assert host.snapshot() == before
    assert [d.name for d in api.store.list()] == ['br0']
    assert api.journal.adoptions() == {'v0': 'uplink-a', 'v2': None}
    assert api.transaction() is None


def test_transaction_commit_and_misuse(api, host):
    with pytest.raises(exception.TransactionError, match='no transaction'):
        api.change_commit()
    with pytest.raises(exception.TransactionError, match='no transaction'):
        api.change_rollback()
    api.change_begin()
    with pytest.raises(exception.TransactionError, match='already open'):
        api.change_begin()
    api.define(ETH)
    api.start('v1')
    after = host.snapshot()
    assert api.change_commit()['committed']
    assert host.snapshot() == after


def test_the_transaction_survives_the_process(conf, host, api):
    api.define(ETH)
    before = host.snapshot()
    api.change_begin()
    api.start('v1')
    # A new API object (another process) rolls back from the journal.
    other = api_mod.HostInterfaceAPI(conf, host=host)
    assert other.change_rollback()['restored']
    assert host.snapshot() == before


def test_a_half_done_apply_is_undone_first(api, host):
    api.define(ETH)
    before = host.snapshot()
    snapshot = api.live.state()
    # What a crash half way leaves: the journal and half the changes.
    api.journal.save(journal_mod.APPLY, {
        'action': 'start', 'name': 'v1', 'netns': 'vpdt-unit',
        'state': snapshot.to_primitive()})
    host.apply([{'op': 'adopt', 'name': 'v1', 'tag': 'hostif.v1'},
                {'op': 'set_link', 'name': 'v1', 'mtu': 1400}])
    assert host.snapshot() != before
    # Any change recovers first; recover() does only that.
    assert api.recover()['restored']
    assert host.snapshot() == before
    assert api.recover() is None


def test_a_journal_of_another_namespace_is_refused(api, conf, host):
    api.change_begin()
    conf.set_override('netns', 'elsewhere', opts.GROUP)
    other = api_mod.HostInterfaceAPI(conf, host=host)
    with pytest.raises(exception.TransactionError,
                       match='namespace vpdt-unit'):
        other.change_rollback()


def test_persistent_backends_follow_the_definitions(conf, host, tmp_path):
    conf.set_override('interface_backends', ['keyfile', 'ifupdown'],
                      opts.GROUP)
    conf.set_override('interface_root', str(tmp_path / 'root'), opts.GROUP)
    api = api_mod.HostInterfaceAPI(conf, host=host)
    api.define(ETH)
    assert os.path.exists(tmp_path / 'root' / 'etc' / 'network' /
                          'interfaces.d' / 'v1')
    assert os.path.exists(tmp_path / 'root' / 'etc' / 'NetworkManager' /
                          'system-connections' / 'v1.nmconnection')
    api.undefine('v1')
    assert not os.path.exists(tmp_path / 'root' / 'etc' / 'network' /
                              'interfaces.d' / 'v1')
    with pytest.raises(exception.InvalidField, match='interface_backends'):
        api_mod.make_backends(['systemd-networkd'])


def test_dhcp_is_reported_not_applied(api, host):
    api.define("<interface type='ethernet' name='v2'><protocol "
               "family='ipv4'><dhcp/></protocol></interface>")
    result = api.start('v2')
    assert result['not_applied'][0].startswith(
        'ipv4: <dhcp/> is not run by a live apply')
    assert [a for a in host.addresses if a['index'] == 5] == []


def test_state_markers():
    assert state_mod.marker(link('a', 1, alias='vif_plug_dyn:hostif.x')) \
        == (state_mod.CREATED, 'x')
    assert state_mod.marker(link('a', 1, alias='vif_plug_dyn:port-1')) \
        == (state_mod.OTHER, 'port-1')
    assert state_mod.marker(link('a', 1, alias='vif_plug_dyn.adopted:y')) \
        == (state_mod.ADOPTED, None)
    assert state_mod.marker(link('a', 1)) == (state_mod.FOREIGN, None)
