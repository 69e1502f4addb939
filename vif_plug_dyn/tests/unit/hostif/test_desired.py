"""Documents of several definitions, iface apply (dry run, dependency
order, all or nothing, crash recovery) and iface diff, on an in-memory
host."""

import json
import os

import pytest
from oslo_config import cfg

from vif_plug_dyn import exception
from vif_plug_dyn import opts
from vif_plug_dyn.cmd import cli
from vif_plug_dyn.hostif import api as api_mod
from vif_plug_dyn.hostif import desired
from vif_plug_dyn.hostif import document
from vif_plug_dyn.hostif import journal as journal_mod
from vif_plug_dyn.hostif import model
from vif_plug_dyn.tests.unit.hostif.fakehost import FakeHost
from vif_plug_dyn.tests.unit.hostif.livestate import link
from vif_plug_dyn.tests.unit.hostif.test_transactions import Timer

# Listed dependants first: the apply must sort them.
XML = """<interfaces>
  <interface type='vlan' name='bond0.5'>
    <mtu size='1400'/>
    <protocol family='ipv4'><ip address='192.0.2.5' prefix='24'/></protocol>
    <vlan tag='5'><interface name='bond0'/></vlan>
  </interface>
  <interface type='bond' name='bond0'>
    <mtu size='1400'/>
    <bond mode='active-backup'>
      <miimon freq='100'/>
      <interface type='ethernet' name='v0'/>
      <interface type='ethernet' name='v2'/>
    </bond>
  </interface>
</interfaces>"""
YAML = """
interfaces:
  - type: vlan
    name: bond0.5
    mtu: 1400
    ipv4: {addresses: [192.0.2.5/24]}
    vlan: {tag: 5, parent: bond0}
  - type: bond
    name: bond0
    mtu: 1400
    bond:
      mode: active-backup
      miimon: {freq: 100}
      interfaces: [{type: ethernet, name: v0}, {type: ethernet, name: v2}]
"""
BRIDGE = ("<interface type='bridge' name='br0'><bridge>"
          "<interface type='ethernet' name='v1'/>"
          "<interface type='ethernet' name='v3'/></bridge></interface>")


@pytest.fixture
def root(tmp_path):
    return tmp_path / 'root'


@pytest.fixture
def conf(tmp_path, root):
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override('state_path', str(tmp_path / 'state'), opts.GROUP)
    conf.set_override('interface_dir', str(tmp_path / 'ifaces'), opts.GROUP)
    conf.set_override('interface_backends', ['keyfile', 'ifupdown'],
                      opts.GROUP)
    conf.set_override('interface_root', str(root), opts.GROUP)
    conf.set_override('netns', 'vpdt-unit', opts.GROUP)
    return conf


@pytest.fixture
def host():
    return FakeHost(link('v0', 3, 'veth', alias='uplink-a', up=True),
                    link('v1', 4, 'veth'), link('v2', 5, 'veth'),
                    link('v3', 6, 'veth'))


@pytest.fixture
def api(conf, host):
    return api_mod.HostInterfaceAPI(conf, host=host, timer=Timer())


def _files(tmp_path):
    out = {}
    for base, _dirs, names in os.walk(tmp_path):
        if os.path.join('state', 'hostif') in base:
            continue
        for name in names:
            with open(os.path.join(base, name), 'rb') as handle:
                out[os.path.join(base, name)] = handle.read()
    return out


# --- documents ---------------------------------------------------------------

def test_xml_yaml_and_json_read_the_same():
    from_xml = document.parse(XML, 'doc.xml')
    from_yaml = document.parse(YAML, 'doc.yaml')
    import yaml
    from_json = document.parse(json.dumps(yaml.safe_load(YAML)),
                               'doc.json')
    assert from_xml.interfaces == from_yaml.interfaces == \
        from_json.interfaces
    assert [i.name for i in from_xml.interfaces] == ['bond0.5', 'bond0']
    gone = document.parse("<interfaces><absent name='br9'/></interfaces>")
    assert gone.interfaces == () and gone.absent == ('br9',)
    assert document.parse('absent: [br9]').absent == ('br9',)


@pytest.mark.parametrize('text,reason', [
    ('<interface/>', 'root element must be <interfaces>'),
    ("<interfaces><network/></interfaces>", 'expected <interface>'),
    ("<interfaces><absent/></interfaces>", 'expected <interface>'),
    ("<interfaces><absent name='a b'/></interfaces>", r'absent\[1\]/@name'),
    ('- 1', 'expected a mapping'),
    ('interfaces: {}', 'must be lists'),
    ('interfaces: [{type: bridge, name: br0, colour: red}]',
     r'interfaces\[1\].colour: unknown key'),
    ('interfaces: [{type: bridge, name: br0, bridge: {stp: maybe}}]',
     r'interfaces\[1\]: bridge/@stp must be a boolean'),
    ('interfaces: [{type: ethernet, name: e0, bond: {}}]',
     'not used by ethernet'),
    ('interfaces: [{type: ethernet, name: e0, ipv4: {addresses: '
     '[192.0.2.1/x]}}]', 'prefix must be a number'),
    ('interfaces: [{type: ethernet, name: e0, ipv6: {addresses: '
     '["fe80::1%eth0/64"]}}]', 'zone id'),
    ('a: &x [1]\nb: *x', 'aliases and tags'),
    ('interfaces: !!python/object:os.system {}', 'aliases and tags'),
    ('interfaces: [{type: ethernet, name: e0}, {type: ethernet, '
     'name: e0}]', 'named twice'),
    ('{', 'not valid YAML'),
])
def test_bad_documents_are_refused_typed(text, reason):
    with pytest.raises(exception.InvalidInterfaceDocument, match=reason):
        document.parse(text, 'doc')


def test_an_invalid_xml_definition_names_its_place():
    with pytest.raises(exception.InvalidHostInterface,
                       match=r'doc, /interfaces/\*\[1\]'):
        document.parse("<interfaces><interface type='bridge' name='b'>"
                       "</interface></interfaces>", 'doc')


def test_deep_nesting_is_refused_typed():
    for text in ('[' * 100000 + ']' * 100000,
                 '<interfaces>' + "<interface type='bridge' name='b'>"
                 "<bridge>" * 3000 + '</bridge></interface>' * 3000 +
                 '</interfaces>'):
        with pytest.raises(exception.InvalidInterfaceDocument,
                           match='nested too deeply'):
            document.parse(text)


def test_size_limits():
    with pytest.raises(exception.InvalidInterfaceDocument,
                       match='larger than'):
        document.parse(' ' * (document.MAX_DOCUMENT + 1))


# --- apply -------------------------------------------------------------------

def test_dry_run_changes_nothing_and_says_what_would(api, host, tmp_path):
    before, files = host.snapshot(), _files(tmp_path)
    calls = len(host.calls)
    plan = api.apply(XML, dry_run=True, source='doc.xml')
    assert plan['applied'] is False and plan['changed'] is True
    assert host.snapshot() == before and len(host.calls) == calls
    assert _files(tmp_path) == files
    assert plan['definitions'] == [{'name': 'bond0', 'action': 'define'},
                                   {'name': 'bond0.5', 'action': 'define'}]
    actions = {d['device']: d['action'] for d in plan['devices']}
    assert actions == {'v0': 'adopt', 'v2': 'adopt', 'bond0': 'create',
                       'bond0.5': 'create'}
    fields = {(d['device'], f['field']): (f['from'], f['to'])
              for d in plan['devices'] for f in d['fields']}
    assert fields[('v0', 'mtu/@size')] == (1500, 1400)
    assert fields[('v0', 'master')] == (None, 'bond0')
    assert fields[('bond0.5', 'vlan/@tag')] == (None, 5)
    assert fields[('bond0.5', "protocol[@family='ipv4']/ip[1]")] == (
        'missing', '192.0.2.5/24')
    paths = {os.path.relpath(f['path'], tmp_path): f['action']
             for f in plan['files']}
    assert paths['ifaces/bond0.xml'] == 'create'
    assert paths['root/etc/network/interfaces.d/bond0.5'] == 'create'
    assert paths['root/etc/NetworkManager/system-connections/'
                 'v2.nmconnection'] == 'create'


def test_apply_defines_and_starts_in_dependency_order(api, host):
    result = api.apply(YAML, source='doc.yaml')
    assert result['applied'] is True
    assert sorted(d.name for d in api.store.list()) == ['bond0', 'bond0.5']
    assert host.links['bond0.5']['link_index'] == host.links['bond0'][
        'index']
    assert host.links['v0']['master_index'] == host.links['bond0']['index']
    assert api.diff('bond0')['in_sync'] and api.diff('bond0.5')['in_sync']
    # Applying it again changes nothing on the host.
    calls = len(host.calls)
    again = api.apply(XML, dry_run=True)
    assert again['changed'] is False
    assert {d['action'] for d in again['devices']} == {'unchanged'}
    assert api.apply(XML)['applied'] and len(host.calls) == calls


def test_a_failure_half_way_leaves_nothing(api, host, tmp_path):
    api.define(BRIDGE)
    before, files = host.snapshot(), _files(tmp_path)
    definitions = [d.to_xml() for d in api.store.list()]
    # bond0 is applied first and works; bond0.5 fails at its address.
    host.fail = lambda op: op['op'] == 'add_address'
    with pytest.raises(exception.HostInterfaceApplyFailed) as info:
        api.apply(XML, source='doc.xml')
    message = str(info.value)
    assert message.startswith('Start of host interface bond0.5 failed at '
                              'step 1 (addresses)')
    assert 'nothing of doc.xml was applied: the host and the definitions ' \
        'were put back as they were' in message
    assert host.snapshot() == before
    assert _files(tmp_path) == files
    assert [d.to_xml() for d in api.store.list()] == definitions
    assert api.journal.load(journal_mod.DOCUMENT) is None


def test_a_failed_read_back_inside_a_transaction_rolls_it_back(api, host):
    before = host.snapshot()
    api.change_begin()
    api.define(BRIDGE)
    original = host._set_link

    def stubborn(op):
        if op['name'] == 'v2' and op['mtu'] is not None:
            op = dict(op, mtu=None)
        return original(op)
    host._set_link = stubborn
    with pytest.raises(exception.HostInterfaceVerifyFailed,
                       match='v2 mtu/@size is 1500, the definition sets '
                             '1400.*transaction begun'):
        api.apply(XML)
    assert host.snapshot() == before and api.store.list() == []
    assert api.transaction() is None


def test_absent_and_redefinition(api, host):
    api.define(BRIDGE)
    api.start('br0')
    # br0 loses v3 (given back to the operator), bond0 comes.
    smaller = BRIDGE.replace("<interface type='ethernet' name='v3'/>", '')
    plan = api.apply('<interfaces>%s</interfaces>' % smaller, dry_run=True)
    assert plan['definitions'] == [{'name': 'br0', 'action': 'redefine'}]
    assert {d['device']: d['action'] for d in plan['devices']}['v3'] == \
        'release'
    api.apply('<interfaces>%s</interfaces>' % smaller)
    assert host.links['v3']['master_index'] is None
    assert not host.links['v3']['adopted']
    assert api.journal.adoptions() == {'v1': None}
    result = api.apply("<interfaces><absent name='br0'/></interfaces>")
    assert result['definitions'] == [{'name': 'br0', 'action': 'undefine'}]
    assert 'br0' not in host.links and api.store.list() == []
    assert not host.links['v1']['adopted']


def test_what_another_definition_needs_cannot_go(api, host):
    api.apply(XML)
    before = host.snapshot()
    with pytest.raises(exception.HostInterfaceInUse,
                       match='bond0.5 needs its device bond0'):
        api.apply("<interfaces><absent name='bond0'/></interfaces>")
    assert host.snapshot() == before


def test_definition_level_cycles_are_refused():
    a = model.HostInterface.from_xml(
        "<interface type='bridge' name='a'><bridge><interface type='vlan' "
        "name='b0.1'><vlan tag='1'><interface name='b0'/></vlan>"
        "</interface></bridge></interface>")
    b = model.HostInterface.from_xml(
        "<interface type='bridge' name='b'><bridge><interface type='bond' "
        "name='b0'><bond><interface type='ethernet' name='e1'/></bond>"
        "</interface><interface type='vlan' name='a.2'><vlan tag='2'>"
        "<interface name='a'/></vlan></interface></bridge></interface>")
    with pytest.raises(exception.HostInterfaceCycle):
        desired.definition_order([a, b])


def test_a_crash_half_way_is_undone_by_the_next_command(api, host):
    api.define(BRIDGE)
    before = host.snapshot()
    definitions = [d.to_xml() for d in api.store.list()]
    # What a crash in the middle of an apply leaves: its snapshot, and
    # part of its work (a definition replaced, a device changed).
    api.journal.save(journal_mod.DOCUMENT, {
        'netns': 'vpdt-unit', 'state': api.live.state().to_primitive(),
        'definitions': {'br0': definitions[0]}, 'adoptions': {},
        'source': 'doc'})
    api.store.undefine('br0')
    api.store.define(XML[XML.index('<interface type'):
                         XML.index('</interface>')] + '</interface>')
    host.apply([{'op': 'adopt', 'name': 'v1', 'tag': 'hostif.x'},
                {'op': 'set_link', 'name': 'v1', 'mtu': 1400}])
    assert host.snapshot() != before
    # Every command puts it back first; recover() does only that.
    assert api.recover()['restored']
    assert host.snapshot() == before
    assert [d.to_xml() for d in api.store.list()] == definitions
    assert api.journal.load(journal_mod.DOCUMENT) is None


# --- diff --------------------------------------------------------------------

def test_diff_live_and_persisted(api, host, root):
    api.define(BRIDGE)
    found = api.diff('br0')
    assert not found['in_sync']
    assert {(d['device'], d['field']) for d in found['live']} >= {
        ('br0', '@name'), ('v1', 'master'), ('v3', 'master')}
    assert {p['state'] for p in found['persisted']} == {'same'}
    api.start('br0')
    assert api.diff('br0')['in_sync']
    path = root / 'etc' / 'network' / 'interfaces.d' / 'br0'
    path.write_text(path.read_text().replace('bridge_stp off',
                                             'bridge_stp on'))
    host.links['v1']['master_index'] = None
    found = api.diff('br0')
    assert found['live'] == [{'device': 'v1',
                              'element': '/interface/bridge/interface[1]',
                              'field': 'master', 'definition': 'br0',
                              'live': None}]
    entry = [p for p in found['persisted'] if p['backend'] == 'ifupdown'][0]
    assert entry['state'] == 'differs'
    assert '-    bridge_stp on' in entry['diff']
    assert '+    bridge_stp off' in entry['diff']
    path.write_text('# mine\n')
    assert [p['state'] for p in api.diff('br0')['persisted']
            if p['backend'] == 'ifupdown'] == ['foreign']
    with pytest.raises(exception.HostInterfaceNotFound):
        api.diff('nope')


def test_cli_apply_dry_run_and_diff(tmp_path, capsys):
    path = tmp_path / 'doc.yaml'
    path.write_text(YAML)
    base = ['--state-path', str(tmp_path / 'state'), '--interface-dir',
            str(tmp_path / 'ifaces'), '--json']
    status = cli.main(base + ['iface', 'apply', '--dry-run',
                              str(tmp_path / 'missing.yaml')])
    captured = capsys.readouterr()
    assert status == 2 and captured.err.startswith('error: ')
    big = tmp_path / 'big.yaml'
    big.write_text(' ' * (document.MAX_DOCUMENT + 10))
    status = cli.main(base + ['iface', 'apply', str(big)])
    assert status == 2 and 'larger than' in capsys.readouterr().err
    status = cli.main(base + ['iface', 'diff', 'nope'])
    assert status == 2 and 'is not defined' in capsys.readouterr().err
