"""The host interface definition store."""

import os

import pytest
from oslo_config import cfg

from vif_plug_dyn import exception
from vif_plug_dyn import opts
from vif_plug_dyn.hostif import model
from vif_plug_dyn.hostif import store as store_mod
from vif_plug_dyn.hostif.backends import ifupdown
from vif_plug_dyn.hostif.backends import keyfile
from vif_plug_dyn.tests.unit.hostif import fixtures

H = model.HostInterface


@pytest.fixture
def root(tmp_path):
    return tmp_path / 'root'


@pytest.fixture
def store(tmp_path, root):
    backends = [keyfile.KeyfileBackend(str(root)),
                ifupdown.IfupdownBackend(str(root))]
    return store_mod.InterfaceStore(str(tmp_path / 'defs'), backends)


def nm_files(root):
    path = root / 'etc/NetworkManager/system-connections'
    return sorted(os.listdir(path)) if path.exists() else []


def ifupdown_files(root):
    path = root / 'etc/network/interfaces.d'
    return sorted(os.listdir(path)) if path.exists() else []


def test_interface_dir_option():
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([])
    assert conf.vif_plug_dyn.interface_dir == '/etc/vif_plug_dyn/interfaces'
    names = [o.name for group, options in opts.list_opts()
             if group == opts.GROUP for o in options]
    assert 'interface_dir' in names


def test_define_get_list_undefine(store, root, tmp_path):
    bond = store.define(fixtures.case('bond'))
    store.define(fixtures.case_text('vlan-named'))
    assert [i.name for i in store.list()] == ['bond0', 'mgmt']
    assert store.get('bond0') == bond
    path = tmp_path / 'defs' / 'bond0.xml'
    assert H.from_xml(path.read_text()) == bond
    assert nm_files(root) == ['bond0.nmconnection', 'eth3.nmconnection',
                              'eth4.nmconnection', 'mgmt.nmconnection']
    assert ifupdown_files(root) == ['bond0', 'mgmt']
    store.undefine('mgmt')
    assert [i.name for i in store] == ['bond0']
    assert ifupdown_files(root) == ['bond0']
    assert not (tmp_path / 'defs' / 'mgmt.xml').exists()
    with pytest.raises(exception.HostInterfaceNotFound):
        store.get('mgmt')
    with pytest.raises(exception.HostInterfaceNotFound):
        store.undefine('mgmt')


def test_definitions_survive_a_reload(store, tmp_path):
    # NOTE(vpd): cases whose devices do not overlap (bridge reuses the
    # bond's slaves, ethernet-dhcp names eth1 like the bridge's port).
    for name in ('bond', 'bond-arpmon', 'bridge-empty', 'ethernet-bare',
                 'ethernet-static', 'vlan', 'vlan-named'):
        store.define(fixtures.case(name))
    fresh = store_mod.InterfaceStore(str(tmp_path / 'defs'))
    assert fresh.load() == store.list()
    assert [n for n in os.listdir(tmp_path / 'defs')
            if not n.endswith('.xml')] == []


def test_define_existing_needs_replace(store):
    store.define(fixtures.case('bond'))
    with pytest.raises(exception.HostInterfaceExists):
        store.define(fixtures.case('bond'))
    changed = H.from_xml(fixtures.case_text('bond').replace("'9000'",
                                                            "'1500'"))
    assert store.define(changed, replace=True).mtu == 1500
    assert store.get('bond0').mtu == 1500


def test_redefine_with_fewer_members_drops_their_files(store, root):
    store.define(fixtures.case('bond'))
    smaller = H(kind='bond', name='bond0', start_mode='onboot',
                members=(H(kind='ethernet', name='eth4'),))
    store.define(smaller, replace=True)
    assert nm_files(root) == ['bond0.nmconnection', 'eth4.nmconnection']


def test_device_of_another_definition_is_refused(store, tmp_path):
    store.define(fixtures.case('bond'))
    with pytest.raises(exception.InvalidHostInterface) as info:
        store.define(H(kind='bridge', name='br9',
                       members=(H(kind='ethernet', name='eth3'),)))
    assert info.value.kwargs['element'] == \
        '/interface/bridge/interface[1]/@name'
    assert not (tmp_path / 'defs' / 'br9.xml').exists()
    with pytest.raises(exception.HostInterfaceNotFound):
        store.get('br9')


def test_cycle_is_refused(store):
    store.define(H(kind='vlan', name='a', tag=1, parent='b'))
    with pytest.raises(exception.HostInterfaceCycle):
        store.define(H(kind='vlan', name='b', tag=1, parent='a'))
    assert [i.name for i in store.list()] == ['a']


def test_parent_in_use_cannot_be_undefined(store):
    store.define(fixtures.case('bond'))
    store.define(fixtures.case('vlan-named'))  # mgmt sits on bond0
    with pytest.raises(exception.HostInterfaceInUse) as info:
        store.undefine('bond0')
    assert info.value.kwargs == {'name': 'bond0', 'user': 'mgmt',
                                 'device': 'bond0'}
    # Dropping only a slave that nobody else needs is fine.
    store.define(H(kind='bond', name='bond0',
                   members=(H(kind='ethernet', name='eth4'),)),
                 replace=True)
    store.undefine('mgmt')
    store.undefine('bond0')
    assert store.list() == []


def test_store_order(store):
    store.define(fixtures.case('vlan-named'))
    store.define(fixtures.case('bond'))
    assert store.order().names() == ['eth3', 'eth4', 'bond0', 'mgmt']
    store.define(fixtures.case('vlan'))
    with pytest.raises(exception.HostInterfaceDependencyMissing):
        store.order()
    assert store.order(present=['eth0']).names()[-1] == 'mgmt'


def test_foreign_file_blocks_define_and_changes_nothing(store, root,
                                                        tmp_path):
    directory = root / 'etc/network/interfaces.d'
    directory.mkdir(parents=True)
    (directory / 'bond0').write_text('auto bond0\n')
    with pytest.raises(exception.ForeignFile):
        store.define(fixtures.case('bond'))
    assert (directory / 'bond0').read_text() == 'auto bond0\n'
    assert nm_files(root) == []
    assert not (tmp_path / 'defs' / 'bond0.xml').exists()
    assert store.list() == []


def test_foreign_file_blocks_undefine(store, root):
    store.define(fixtures.case('bond'))
    path = root / 'etc/NetworkManager/system-connections/eth4.nmconnection'
    path.write_text('[connection]\nid=eth4\n')
    with pytest.raises(exception.ForeignFile):
        store.undefine('bond0')
    assert store.get('bond0') is not None
    assert ifupdown_files(root) == ['bond0']
    assert path.read_text() == '[connection]\nid=eth4\n'


def test_load_reports_the_bad_file(tmp_path):
    directory = tmp_path / 'defs'
    directory.mkdir()
    (directory / 'bad.xml').write_text(
        "<interface type='ethernet' name='eth0'><mtu size='5'/></interface>")
    with pytest.raises(exception.InvalidHostInterface) as info:
        store_mod.InterfaceStore(str(directory)).load()
    assert str(directory / 'bad.xml') in str(info.value)
    assert info.value.kwargs['element'] == '/interface/mtu/@size'


def test_load_refuses_two_files_with_one_name(tmp_path):
    directory = tmp_path / 'defs'
    directory.mkdir()
    text = "<interface type='ethernet' name='eth0'/>"
    (directory / 'a.xml').write_text(text)
    (directory / 'b.xml').write_text(text)
    (directory / 'notes.txt').write_text('ignored')
    with pytest.raises(exception.InvalidHostInterface) as info:
        store_mod.InterfaceStore(str(directory)).load()
    assert 'a.xml' in str(info.value)


def test_load_of_missing_directory_is_empty(tmp_path):
    assert store_mod.InterfaceStore(str(tmp_path / 'none')).load() == []
