"""The os-vif plugin through the real os-vif package, on real devices.

``os_vif.initialize()`` loads the plugin through its entry point, exactly
as nova-compute does; ``os_vif.plug()``/``unplug()`` then drive the library
with the privileged helper daemon started inside a private network
namespace, against named networks defined in a temporary ``network_dir``
(and, for Open vSwitch, a private ovsdb-server + ovs-vswitchd in the same
namespace). Needs root and os-vif; the Open vSwitch tests also need Open
vSwitch.
"""

import json
import uuid

import pytest
from oslo_config import cfg

from vif_plug_dyn import opts
from vif_plug_dyn import osvif
from vif_plug_dyn.tests.functional import fixtures
from vif_plug_dyn.tests.functional.harness import ovs as ovs_harness

if not osvif.os_vif_installed():
    pytest.skip('os-vif is not installed (pip install vif_plug_dyn[os-vif])',
                allow_module_level=True)

import os_vif  # noqa: E402
from os_vif import exception as osv_exception  # noqa: E402
from os_vif import objects as osv_objects  # noqa: E402

osv_objects.register_all()

NETWORKS = {
    'lan': "<network type='bridge'><name>lan</name>"
           "<bridge name='br-lan'/><mtu size='1400'/></network>",
    'green': "<network type='openvswitch'><name>green</name>"
             "<bridge name='br-green'/></network>",
}
VM = str(uuid.uuid4())


@pytest.fixture(scope='module')
def private_ns():
    """A namespace with the privileged helper daemon inside, and a private
    Open vSwitch when it is installed."""
    with fixtures.private_host('osvif') as ns:
        if ovs_harness.missing_binaries():
            yield ns, None
            return
        with ovs_harness.OpenVSwitch(ns.name) as ovs:
            yield ns, ovs


@pytest.fixture
def osvif_loaded(private_ns, tmp_path):
    """os-vif initialised on the process configuration, as nova does."""
    ns, ovs = private_ns
    net_dir = tmp_path / 'networks'
    net_dir.mkdir()
    for name, xml in NETWORKS.items():
        (net_dir / (name + '.xml')).write_text(xml)
    opts.register_opts(cfg.CONF)
    overrides = {'state_path': str(tmp_path / 'state'),
                 'network_dir': str(net_dir), 'netns': ns.name,
                 'ovs_datapath_type': 'netdev', 'ovs_apply_wait': 10.0}
    if ovs is not None:
        overrides['ovsdb_socket'] = ovs.db_sock
    for key, value in overrides.items():
        cfg.CONF.set_override(key, value, opts.GROUP)
    os_vif.initialize(reset=True)
    plugin = os_vif._EXT_MANAGER[osvif.PLUGIN_NAME].obj
    try:
        yield ns, ovs, plugin
    finally:
        if plugin._manager is not None:
            manager = plugin._manager
            manager.release_endpoints([r.port.port_id
                                       for r in manager.ledger.list_ports()])
            manager.close()
        for key in overrides:
            cfg.CONF.clear_override(key, opts.GROUP)
        os_vif.initialize(reset=True)


def _links(ns):
    out = ns.check_output(['ip', '-d', '-j', 'link', 'show'])
    return {link['ifname']: link for link in json.loads(out)}


def _network(label, bridge):
    return osv_objects.network.Network(id=str(uuid.uuid4()), label=label,
                                       bridge=bridge)


def _info():
    return osv_objects.instance_info.InstanceInfo(uuid=VM, name='vm-1',
                                                  project_id='demo')


def test_initialize_finds_the_plugin(osvif_loaded):
    _ns, _ovs, plugin = osvif_loaded
    names = os_vif._EXT_MANAGER.names()
    assert osvif.PLUGIN_NAME in names and 'ovs' in names
    info = os_vif.host_info(permitted_vif_type_names=['VIFBridge'])
    assert info.get_plugin(osvif.PLUGIN_NAME).has_vif('VIFBridge')
    assert type(plugin).__name__ == 'VifPlugDynPlugin'


def test_vifbridge_plug_unplug(osvif_loaded):
    ns, _ovs, _plugin = osvif_loaded
    port_id = str(uuid.uuid4())
    vif = osv_objects.vif.VIFBridge(
        id=port_id, address='52:54:00:70:00:01', plugin='vif_plug_dyn',
        network=_network('lan', 'br-lan'), vif_name='tap' + port_id[:11],
        bridge_name='br-lan')
    os_vif.plug(vif, _info())
    links = _links(ns)
    assert 'bridge' == links['br-lan']['linkinfo']['info_kind']
    assert links['br-lan']['mtu'] == 1400
    # NOTE(vpd): nova renders <interface type='bridge'> with <target
    # dev=vif_name>: libvirt makes that tap and refuses one that exists,
    # so the library must not have made it.
    assert vif.vif_name not in links
    # What libvirt does when the guest starts: its tap joins the bridge.
    ns.run(['ip', 'tuntap', 'add', 'dev', vif.vif_name, 'mode', 'tap'])
    ns.run(['ip', 'link', 'set', vif.vif_name, 'master', 'br-lan', 'up'])
    assert _links(ns)[vif.vif_name]['master'] == 'br-lan'
    # Plugging again (nova does at every compute start) changes nothing.
    os_vif.plug(vif, _info())
    assert _links(ns)[vif.vif_name]['master'] == 'br-lan'
    # The guest is gone (libvirt removes its tap), then nova unplugs: the
    # library removes the bridge it made, with its last port.
    ns.run(['ip', 'link', 'del', vif.vif_name])
    os_vif.unplug(vif, _info())
    links = _links(ns)
    assert 'br-lan' not in links and vif.vif_name not in links


def test_vifbridge_hypervisor_tap_is_never_deleted(osvif_loaded):
    ns, _ovs, _plugin = osvif_loaded
    port_id = str(uuid.uuid4())
    vif = osv_objects.vif.VIFBridge(
        id=port_id, address='52:54:00:70:00:02', plugin='vif_plug_dyn',
        network=_network('lan', 'br-lan'), vif_name='tap' + port_id[:11],
        bridge_name='br-lan')
    os_vif.plug(vif, _info())
    ns.run(['ip', 'tuntap', 'add', 'dev', vif.vif_name, 'mode', 'tap'])
    ns.run(['ip', 'link', 'set', vif.vif_name, 'master', 'br-lan'])
    os_vif.unplug(vif, _info())
    links = _links(ns)
    assert 'br-lan' not in links
    assert vif.vif_name in links   # not the library's to delete
    ns.run(['ip', 'link', 'del', vif.vif_name])


def test_plug_failure_is_os_vif_plug_exception(osvif_loaded):
    ns, _ovs, _plugin = osvif_loaded
    port_id = str(uuid.uuid4())
    vif = osv_objects.vif.VIFBridge(
        id=port_id, address='52:54:00:70:00:03', plugin='vif_plug_dyn',
        network=_network('elsewhere', 'br-elsewhere'),
        vif_name='tap' + port_id[:11], bridge_name='br-elsewhere')
    with pytest.raises(osv_exception.PlugException) as info:
        os_vif.plug(vif, _info())
    assert 'No host network' in str(info.value)
    assert 'br-elsewhere' not in _links(ns)


def _ovs_vif(**profile):
    port_id = str(uuid.uuid4())
    return osv_objects.vif.VIFOpenVSwitch(
        id=port_id, address='52:54:00:71:00:01', plugin='vif_plug_dyn',
        network=_network('green', 'br-green'),
        vif_name='tap' + port_id[:11], bridge_name='br-green',
        port_profile=osv_objects.vif.VIFPortProfileOpenVSwitch(
            interface_id=port_id, **profile))


@pytest.fixture
def switch(osvif_loaded):
    ns, ovs, plugin = osvif_loaded
    if ovs is None:
        pytest.skip('Open vSwitch is not installed: %s' %
                    ', '.join(ovs_harness.missing_binaries()))
    return ns, ovs


def test_vifopenvswitch_plugin_makes_tap_and_port(switch):
    ns, ovs = switch
    vif = _ovs_vif(create_tap=True, create_port=True)
    os_vif.plug(vif, _info())
    assert ovs.vsctl('list-ports', 'br-green').split() == [vif.vif_name]
    ids = ovs.vsctl('get', 'Interface', vif.vif_name, 'external_ids')
    assert 'iface-id="%s"' % vif.id in ids
    assert 'attached-mac="%s"' % vif.address in ids
    assert 'vm-uuid="%s"' % VM in ids
    assert 'iface-status=active' in ids
    assert _links(ns)[vif.vif_name]['linkinfo']['info_kind'] == 'tun'
    os_vif.unplug(vif, _info())
    assert vif.vif_name not in _links(ns)
    assert 'br-green' not in ovs.vsctl('list-br').split()


@pytest.mark.parametrize('profile', [{}, {'create_port': True}])
def test_vifopenvswitch_hypervisor_makes_tap_and_port(switch, profile):
    ns, ovs = switch
    vif = _ovs_vif(**profile)
    os_vif.plug(vif, _info())
    # The library made the bridge; libvirt will add the tap and the port
    # (<virtualport type='openvswitch'> with interfaceid = vif.id).
    assert 'br-green' in ovs.vsctl('list-br').split()
    assert ovs.vsctl('list-ports', 'br-green').split() == []
    assert vif.vif_name not in _links(ns)
    os_vif.unplug(vif, _info())
    assert 'br-green' not in ovs.vsctl('list-br').split()


def test_second_vifbridge_on_the_same_bridge(osvif_loaded):
    """nova 31-33's route (Neutron bridge ports, os-vif 5): the second
    VM's VIF finds its bridge already there (the library's, made for the
    first)."""
    ns, _ovs, _plugin = osvif_loaded
    assert osvif.linux_bridge_providers() == []
    alias = os_vif._EXT_MANAGER[osvif.LINUX_BRIDGE_NAME].obj
    assert type(alias).__name__ == 'LinuxBridgePlugin'
    vifs = []
    for n in range(3):
        port_id = str(uuid.uuid4())
        vifs.append(osv_objects.vif.VIFBridge(
            id=port_id, address='52:54:00:70:01:%02x' % n,
            plugin=osvif.LINUX_BRIDGE_NAME,
            network=_network('lan', 'br-lan'),
            vif_name='tap' + port_id[:11], bridge_name='br-lan'))
    for vif in vifs:
        os_vif.plug(vif, _info())
    assert 'br-lan' in _links(ns)
    os_vif.unplug(vifs[0], _info())
    assert 'br-lan' in _links(ns)
    for vif in vifs[1:]:
        os_vif.unplug(vif, _info())
    assert 'br-lan' not in _links(ns)
