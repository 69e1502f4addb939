"""Injection through every field of every host interface persisted
format: the definition XML store, NetworkManager keyfiles, ifupdown.

Two layers, each tested on its own:

* the user's path: a definition document with one attribute (or the
  uuid processing instruction) carrying a newline, ``#``, ``;``, a NUL
  or 5,000 characters is refused typed by ``iface define`` (the API and
  the command line), and no file changes;
* the writers themselves: a definition object whose field was forced
  past the model's checks is refused by each writer with
  :class:`UnsafeHostInterfaceValue` naming that field, and no file
  changes.
"""

import dataclasses
import os
import xml.etree.ElementTree as ET

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn.cmd import cli
from vif_plug_dyn.hostif import addressing
from vif_plug_dyn.hostif import model
from vif_plug_dyn.hostif import safety
from vif_plug_dyn.hostif import store as store_mod
from vif_plug_dyn.hostif import xml as ifxml
from vif_plug_dyn.hostif.backends import ifupdown
from vif_plug_dyn.hostif.backends import keyfile

UUID = '6f1c1d2e-8f47-4b7e-9a39-2f7a8f6f0c11'
#: Between them, every element and attribute of the format.
DOCUMENTS = {
    'eth9': """<interface type='ethernet' name='eth9'>
  <?vif-plug-dyn uuid="%s"?>
  <start mode='onboot'/>
  <mac address='52:54:00:00:00:09'/>
  <mtu size='1500'/>
  <protocol family='ipv4'>
    <dhcp peerdns='no'/>
    <ip address='192.0.2.9' prefix='24'/>
    <route gateway='192.0.2.1'/>
  </protocol>
  <protocol family='ipv6'>
    <autoconf/>
    <ip address='2001:db8::9' prefix='64'/>
    <route gateway='fe80::1'/>
  </protocol>
</interface>""" % UUID,
    'br9': """<interface type='bridge' name='br9'>
  <start mode='hotplug'/>
  <bridge stp='on' delay='2.5'>
    <interface type='ethernet' name='eth8'>
      <mac address='52:54:00:00:00:08'/>
    </interface>
    <interface type='vlan' name='eth7.5'>
      <vlan tag='5'><interface name='eth7'/></vlan>
    </interface>
    <interface type='bond' name='bond9'>
      <bond mode='active-backup'>
        <miimon freq='100' downdelay='200' updelay='200' carrier='netif'/>
        <interface type='ethernet' name='eth5'/>
        <interface type='ethernet' name='eth6'/>
      </bond>
    </interface>
  </bridge>
</interface>""",
    'bond8': """<interface type='bond' name='bond8'>
  <bond mode='balance-xor'>
    <arpmon interval='100' target='192.0.2.1' validate='all'/>
    <interface type='ethernet' name='eth4'/>
  </bond>
</interface>""",
}
#: What an attacker appends, or (the long one) uses instead.
EVIL = {'newline': '\n    up touch /tmp/pwned', 'hash': '#', 'semicolon': ';',
        'nul': '\x00', 'long': 'x' * 5000}
PI = "processing-instruction('vif-plug-dyn')"


def _fields():
    """(document, element index in document order, attribute) for every
    attribute of every document, and the uuid instruction."""
    out = []
    for name, text in DOCUMENTS.items():
        root = ET.fromstring(text)
        for index, element in enumerate(root.iter()):
            for attr in sorted(element.attrib):
                out.append((name, index, attr))
    out.append(('eth9', None, PI))
    return out


FIELDS = _fields()


def _inject(document, index, attr, evil):
    text = DOCUMENTS[document]
    if attr == PI:
        value = UUID + EVIL[evil] if evil != 'long' else EVIL[evil]
        return text.replace(UUID, value.replace('\n', '&#10;')
                            .replace('\x00', '&#0;'))
    # NOTE(vpd): the same parse as _fields() (instructions dropped), so
    # the element indexes match.
    root = ET.fromstring(text)
    element = list(root.iter())[index]
    old = element.get(attr)
    element.set(attr, EVIL[evil] if evil == 'long' else old + EVIL[evil])
    return ET.tostring(root, encoding='unicode')


def _tree(root):
    """Every file under ``root``: path -> content."""
    out = {}
    for base, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(base, name)
            with open(path, 'rb') as handle:
                out[path] = handle.read()
    return out


@pytest.fixture
def store(tmp_path):
    root = tmp_path / 'root'
    backends = [keyfile.KeyfileBackend(str(root)),
                ifupdown.IfupdownBackend(str(root))]
    made = store_mod.InterfaceStore(str(tmp_path / 'ifaces'), backends)
    # Something on disk already, which must stay exactly as it is.
    made.define(DOCUMENTS['bond8'])
    return made


def test_the_documents_are_valid_and_cover_the_format(store):
    for text in DOCUMENTS.values():
        store.define(text, replace=True)
    covered = set()
    for text in DOCUMENTS.values():
        root = ET.fromstring(text)
        parents = {child: parent for parent in root.iter()
                   for child in parent}
        for element in root.iter():
            tag = element.tag
            if tag == 'interface' and element in parents and \
                    parents[element].tag == 'vlan':
                tag = 'vlan-parent'
            covered.update((tag, attr) for attr in element.attrib)
    # Every attribute the parser accepts, but the live status element
    # (<link state=.../>), which it ignores.
    assert covered == {(tag, attr) for tag, attrs in ifxml._ATTRS.items()
                       for attr in attrs if tag != 'link'}


@pytest.mark.parametrize('evil', sorted(EVIL))
@pytest.mark.parametrize('document,index,attr', FIELDS)
def test_define_refuses_injection_typed(store, tmp_path, document, index,
                                        attr, evil):
    before = _tree(tmp_path)
    text = _inject(document, index, attr, evil)
    with pytest.raises(exception.InvalidHostInterface) as info:
        store.define(text, replace=True)
    # Bounded: a 5,000 character value is never repeated whole.
    assert len(str(info.value)) < 400
    assert _tree(tmp_path) == before


@pytest.mark.parametrize('evil', sorted(EVIL))
def test_cli_define_refuses_a_zone_id_injection(tmp_path, capsys, evil):
    """The report's own example, through the command line with both
    persistent backends configured."""
    config = tmp_path / 'vpd.conf'
    config.write_text('[vif_plug_dyn]\ninterface_backends = keyfile,'
                      'ifupdown\ninterface_root = %s\n' % (tmp_path / 'r'))
    value = 'fe80::1%x' + EVIL[evil]
    path = tmp_path / 'eth9.xml'
    path.write_text(
        "<interface type='ethernet' name='eth9'><protocol family='ipv6'>"
        "<ip address='2001:db8::9' prefix='64'/><route gateway='%s'/>"
        "</protocol></interface>" % value.replace('\n', '&#10;')
        .replace('\x00', '&#0;'))
    before = _tree(tmp_path)
    status = cli.main(['--config-file', str(config), '--state-path',
                       str(tmp_path / 'state'), '--interface-dir',
                       str(tmp_path / 'ifaces'), 'iface', 'define',
                       str(path)])
    err = capsys.readouterr().err
    assert status == cli.EXIT_ERROR
    assert err.startswith('error: Invalid host interface ')
    assert 'Traceback' not in err and len(err) < 400
    assert _tree(tmp_path) == before


def test_zone_ids_are_refused():
    for value in ('fe80::1%eth0', 'fe80::1%x\n    up touch pwned',
                  'fe80::1%25'):
        with pytest.raises(exception.InvalidField, match='zone id'):
            addressing.IPAddress(address=value)
        with pytest.raises(exception.InvalidField, match='zone id'):
            addressing.Protocol(
                family='ipv6', gateway=value, addresses=(
                    addressing.IPAddress(address='2001:db8::1'),))
    with pytest.raises(exception.InvalidField, match='not an IP'):
        addressing.IPAddress(address='192.0.2.1\n')


# --- the writers, past the model ---------------------------------------------

def _forced(iface, path, value):
    """A copy of ``iface`` with one field forced to ``value``, past the
    model's checks. ``path`` is a list of attribute names and member
    indexes."""
    def force(obj, steps):
        obj = dataclasses.replace(obj)
        head = steps[0]
        if len(steps) == 1:
            object.__setattr__(obj, head, value)
            return obj
        if isinstance(steps[1], int):
            items = list(getattr(obj, head))
            items[steps[1]] = force(items[steps[1]], steps[2:])
            object.__setattr__(obj, head, tuple(items))
            return obj
        object.__setattr__(obj, head, force(getattr(obj, head), steps[1:]))
        return obj
    return force(iface, path)


ALL = ('definition file', 'networkmanager', 'ifupdown')
#: Model fields a writer puts in a file, the XPath every writer's error
#: names, and the writers that write it.
FORCED = [
    ('eth9', ['name'], '/interface/@name', ALL),
    ('eth9', ['uuid'], "/interface/processing-instruction('vif-plug-dyn')",
     ('definition file', 'networkmanager')),
    ('eth9', ['mac'], '/interface/mac/@address', ALL),
    ('eth9', ['mtu'], '/interface/mtu/@size', ALL),
    ('eth9', ['ipv4', 'addresses', 0, 'address'],
     "/interface/protocol[@family='ipv4']/ip[1]/@address", ALL),
    ('eth9', ['ipv4', 'addresses', 0, 'prefix'],
     "/interface/protocol[@family='ipv4']/ip[1]/@prefix", ALL),
    ('eth9', ['ipv4', 'gateway'],
     "/interface/protocol[@family='ipv4']/route/@gateway", ALL),
    ('eth9', ['ipv6', 'gateway'],
     "/interface/protocol[@family='ipv6']/route/@gateway", ALL),
    ('br9', ['delay'], '/interface/bridge/@delay', ALL),
    ('br9', ['members', 0, 'name'], '/interface/bridge/interface[1]/@name',
     ALL),
    ('br9', ['members', 0, 'mac'],
     '/interface/bridge/interface[1]/mac/@address', ALL),
    ('br9', ['members', 1, 'tag'], '/interface/bridge/interface[2]/vlan/'
     '@tag', ALL),
    ('br9', ['members', 1, 'parent'],
     '/interface/bridge/interface[2]/vlan/interface/@name', ALL),
    ('br9', ['members', 2, 'bond_mode'],
     '/interface/bridge/interface[3]/bond/@mode', ALL),
    ('br9', ['members', 2, 'miimon', 'freq'],
     '/interface/bridge/interface[3]/bond/miimon/@freq', ALL),
    ('br9', ['members', 2, 'miimon', 'updelay'],
     '/interface/bridge/interface[3]/bond/miimon/@updelay', ALL),
    ('br9', ['members', 2, 'miimon', 'downdelay'],
     '/interface/bridge/interface[3]/bond/miimon/@downdelay', ALL),
    ('br9', ['members', 2, 'members', 1, 'name'],
     '/interface/bridge/interface[3]/bond/interface[2]/@name', ALL),
    ('bond8', ['arpmon', 'target'], '/interface/bond/arpmon/@target', ALL),
    ('bond8', ['arpmon', 'interval'], '/interface/bond/arpmon/@interval',
     ALL),
    ('bond8', ['arpmon', 'validate'], '/interface/bond/arpmon/@validate',
     ALL),
]


@pytest.mark.parametrize('evil', sorted(EVIL))
@pytest.mark.parametrize('document,path,field,writers', FORCED)
def test_each_writer_refuses_a_forced_value(store, tmp_path, document,
                                            path, field, writers, evil):
    iface = _forced(model.HostInterface.from_xml(DOCUMENTS[document]),
                    path, 'a' + EVIL[evil])
    before = _tree(tmp_path)
    write = {'definition file': lambda: store.define(iface, replace=True)}
    for backend in store.backends:
        write[backend.name] = lambda b=backend: b.write(iface)
    assert sorted(write) == sorted(ALL)
    for label in writers:
        with pytest.raises(exception.UnsafeHostInterfaceValue) as info:
            write[label]()
        message = str(info.value)
        assert ': %s ' % field in message, (label, message)
        assert len(message) < 600, label
        assert _tree(tmp_path) == before, label


def test_token_rules():
    for good in ('eth0', '2001:db8::1/64', '::2', '52:54:00:00:00:01',
                 'balance-rr', '802.3ad', UUID, 1500, '1e-05'):
        assert safety.token(good, 'f') == str(good)
    for bad in ('', 'a b', 'a=b', 'a#', 'a;', 'a\n', 'a\x00', '[a]', 'a%b',
                '"a"', 'x' * 65, True, None, 1.5):
        with pytest.raises(safety.Unsafe):
            safety.token(bad, 'f')
    for bad_name in ('a/b', 'a:b', 'x' * 16, '.a', ':a'):
        with pytest.raises(safety.Unsafe):
            safety.token(bad_name, '/interface/@name')
    assert safety.token('eth0.42', '/interface/@name') == 'eth0.42'
    with pytest.raises(safety.Unsafe):
        safety.seconds(float('nan'), 'd')
    with pytest.raises(safety.Unsafe, match='prefix'):
        safety.cidr('192.0.2.1', '24\n', 'ip')
    assert safety.cidr('192.0.2.1', None, 'ip') == '192.0.2.1/32'


def test_a_stored_file_never_gets_a_value_the_parser_would_not_give():
    iface = model.HostInterface.from_xml(DOCUMENTS['br9'])
    assert store_mod.model.HostInterface.from_xml(iface.to_xml()) == iface
