"""The os-vif plugin with real os-vif objects (no mock of os-vif).

Networks use the noop driver (no host work) except the hostdev ones, which
use the real hostdev driver on a fake sysfs tree and a recording host.
"""

import uuid

import pytest
from oslo_config import cfg

os_vif = pytest.importorskip('os_vif')

from os_vif import exception as osv_exception  # noqa: E402
from os_vif import objects as osv_objects  # noqa: E402

from vif_plug_dyn import endpoints  # noqa: E402
from vif_plug_dyn import exception  # noqa: E402
from vif_plug_dyn import opts  # noqa: E402
from vif_plug_dyn import osvif  # noqa: E402
from vif_plug_dyn.osvif import plugin as plugin_mod  # noqa: E402
from vif_plug_dyn.tests.unit.conftest import write_network  # noqa: E402
from vif_plug_dyn.tests.unit.drivers.test_hostdev import (  # noqa: E402
    RecordingHost, make_pf)

osv_objects.register_all()
osv_vif = osv_objects.vif
osv_fields = osv_objects.fields

VM = str(uuid.uuid4())
EXTRA_NETWORKS = {
    'green': "<network type='openvswitch'><name>green</name>"
             "<driver name='noop'/><bridge name='br-green'/></network>",
    'green-42': "<network type='openvswitch'><name>green-42</name>"
                "<driver name='noop'/><bridge name='br-green'/>"
                "<vlan><tag id='42'/></vlan></network>",
    'fast': "<network type='hostdev'><name>fast</name>"
            "<forward mode='hostdev'><pf dev='ens1f0'/></forward></network>",
}


@pytest.fixture
def sysfs(tmp_path):
    root = tmp_path / 'sys'
    make_pf(root, 'ens1f0', 3)
    return root


@pytest.fixture
def host():
    return RecordingHost()


@pytest.fixture
def plugconf(conf, tmp_path, sysfs):
    for name, xml in EXTRA_NETWORKS.items():
        write_network(str(tmp_path / 'networks'), name, xml)
    conf.set_override('sysfs_root', str(sysfs), opts.GROUP)
    osvif.register_opts(conf)
    return conf


@pytest.fixture
def plugin(plugconf, host):
    made = plugin_mod.VifPlugDynPlugin.from_conf(plugconf, host=host)
    yield made
    if made._manager is not None:
        made._manager.close()


def _network(label='red', bridge=None, mtu=None, net_id=None):
    net = osv_objects.network.Network(id=net_id or str(uuid.uuid4()),
                                      label=label)
    if bridge is not None:
        net.bridge = bridge
    if mtu is not None:
        net.mtu = mtu
    return net


def _info():
    return osv_objects.instance_info.InstanceInfo(uuid=VM, name='vm-1',
                                                  project_id='demo')


def _common(kw, label):
    port_id = kw.pop('id', None) or str(uuid.uuid4())
    network = kw.pop('network', None) or _network(label)
    return dict(id=port_id, address=kw.pop('address', '52:54:00:aa:00:01'),
                network=network, plugin='vif_plug_dyn', **kw)


def vif_bridge(label='red', **kw):
    fields = _common(kw, label)
    fields.setdefault('vif_name', 'tap' + fields['id'][:11])
    fields.setdefault('bridge_name', 'br-red')
    if fields['bridge_name'] is None:
        del fields['bridge_name']
    return osv_vif.VIFBridge(**fields)


def ovs_profile(interface_id, **kw):
    return osv_vif.VIFPortProfileOpenVSwitch(interface_id=interface_id, **kw)


def vif_ovs(label='green', profile_kw=None, **kw):
    fields = _common(kw, label)
    fields.setdefault('vif_name', 'tap' + fields['id'][:11])
    fields.setdefault('bridge_name', 'br-green')
    if 'port_profile' not in fields:
        fields['port_profile'] = ovs_profile(fields['id'],
                                             **(profile_kw or {}))
    return osv_vif.VIFOpenVSwitch(**fields)


def vif_direct(label='blue', mode='bridge', **kw):
    fields = _common(kw, label)
    fields.setdefault('vif_name', 'mvt' + fields['id'][:11])
    return osv_vif.VIFDirect(mode=mode, **fields)


def vif_hostdev(label='fast', address='0000:3b:10.1', **kw):
    fields = _common(kw, label)
    fields.setdefault('dev_type', osv_fields.VIFHostDeviceDevType.ETHERNET)
    return osv_vif.VIFHostDevice(dev_address=address, **fields)


def bind(plugin, vif):
    return plugin.mapper().bind(vif, _info())


# -- describe() ---------------------------------------------------------------

def test_describe_reports_installed_versions(plugin):
    info = plugin.describe()
    assert isinstance(info, osv_objects.host_info.HostPluginInfo)
    assert info.plugin_name == 'vif_plug_dyn'
    by_name = {v.vif_object_name: v for v in info.vif_info}
    assert sorted(by_name) == ['VIFBridge', 'VIFDirect', 'VIFHostDevice',
                               'VIFOpenVSwitch']
    for name, vif_info in by_name.items():
        assert vif_info.min_version == '1.0'
        assert vif_info.max_version == getattr(osv_vif, name).VERSION
        # os-vif itself can pick a version both sides speak.
        assert vif_info.get_common_version() == getattr(osv_vif,
                                                        name).VERSION
    profiles = {name: [(p.profile_object_name, p.max_version)
                       for p in v.supported_port_profiles]
                for name, v in by_name.items()}
    assert profiles == {
        'VIFBridge': [],
        'VIFOpenVSwitch': [('VIFPortProfileOpenVSwitch',
                            osv_vif.VIFPortProfileOpenVSwitch.VERSION)],
        'VIFDirect': [('VIFPortProfile8021Qbg',
                       osv_vif.VIFPortProfile8021Qbg.VERSION),
                      ('VIFPortProfile8021Qbh',
                       osv_vif.VIFPortProfile8021Qbh.VERSION)],
        'VIFHostDevice': [],
    }
    # The primitive crosses to nova/neutron like os-vif's own plugins'.
    primitive = info.obj_to_primitive()
    back = osv_objects.host_info.HostPluginInfo.obj_from_primitive(primitive)
    assert back.has_vif('VIFOpenVSwitch')


def test_linux_bridge_alias_describes_vifbridge_only(plugconf):
    alias = plugin_mod.LinuxBridgePlugin.from_conf(plugconf)
    info = alias.describe()
    assert info.plugin_name == 'linux_bridge'
    assert [v.vif_object_name for v in info.vif_info] == ['VIFBridge']
    assert alias.CONFIG_OPTS == []


def test_load_remembers_the_entry_point_name():
    loaded = plugin_mod.VifPlugDynPlugin.load('my_name')
    assert loaded.describe().plugin_name == 'my_name'
    # os-vif's convention: the options live in os_vif_<name>.
    assert 'network_map' in cfg.CONF['os_vif_my_name']


def test_os_vif_initialize_finds_both_entry_points():
    os_vif.initialize(reset=True)
    manager = os_vif._EXT_MANAGER
    assert isinstance(manager['vif_plug_dyn'].obj,
                      plugin_mod.VifPlugDynPlugin)
    assert type(manager['linux_bridge'].obj) is plugin_mod.LinuxBridgePlugin
    info = os_vif.host_info()
    assert info.get_plugin('vif_plug_dyn').has_vif('VIFHostDevice')
    assert info.get_plugin('linux_bridge').has_vif('VIFBridge')


# -- VIF -> port and endpoint types -------------------------------------------

def test_vifbridge_binding(plugin):
    vif = vif_bridge(network=_network('red', bridge='br-red', mtu=1400))
    binding = bind(plugin, vif)
    port = binding.port
    assert (port.port_id, port.mac, port.network, port.mtu, port.vm_uuid,
            port.tap) == (vif.id, vif.address, 'red', 1400, VM,
                          vif.vif_name)
    assert port.tap_name == vif.vif_name
    assert binding.accepted_types == (endpoints.BRIDGE,)
    # The hypervisor makes the tap: libvirt refuses an existing one.
    assert binding.options == {}
    assert binding.bridge == 'br-red'


def test_vifbridge_refuses_hybrid_plug(plugin):
    vif = vif_bridge(port_profile=ovs_profile(str(uuid.uuid4())))
    with pytest.raises(exception.UnsupportedVIF, match='hybrid plug'):
        bind(plugin, vif)


def test_vifbridge_on_another_bridge_is_refused(plugin):
    vif = vif_bridge(bridge_name='brq-other')
    with pytest.raises(exception.VIFMismatch) as info:
        bind(plugin, vif)
    assert 'br-red' in str(info.value) and 'brq-other' in str(info.value)


def test_vifopenvswitch_hypervisor_makes_the_port(plugin):
    vif = vif_ovs()
    binding = bind(plugin, vif)
    assert binding.accepted_types == (endpoints.BRIDGE,)
    assert binding.interface_id == vif.id
    assert binding.bridge == 'br-green'
    assert binding.port.tap == vif.vif_name


def test_vifopenvswitch_plugin_makes_the_tap_and_port(plugin):
    binding = bind(plugin, vif_ovs(profile_kw={'create_tap': True,
                                               'create_port': True}))
    assert binding.accepted_types == (endpoints.ETHERNET,)
    assert binding.interface_id is None


def test_vifopenvswitch_create_port_alone_stays_the_hypervisors(plugin):
    # The consumer still renders a bridge interface, and libvirt refuses
    # a tap that exists: no tap may be made for it.
    binding = bind(plugin, vif_ovs(profile_kw={'create_port': True}))
    assert binding.accepted_types == (endpoints.BRIDGE,)


def test_vifopenvswitch_refusals(plugin):
    cases = [
        (vif_ovs(profile_kw={'create_tap': True, 'multiqueue': True}),
         'multiqueue'),
        (vif_ovs(port_profile=ovs_profile(str(uuid.uuid4()))),
         'interface id'),
        (vif_ovs(port_profile=osv_vif.VIFPortProfileOVSRepresentor(
            interface_id=str(uuid.uuid4()))), 'VIFPortProfileOVSRepresentor'),
        (vif_ovs(port_profile=osv_vif.VIFPortProfile8021Qbh(
            profile_id='p')), 'VIFPortProfile8021Qbh'),
    ]
    plain = vif_ovs()
    del plain.port_profile
    cases.append((plain, 'needs a VIFPortProfileOpenVSwitch'))
    offloaded = vif_ovs()
    offloaded.port_profile.datapath_offload = \
        osv_vif.DatapathOffloadRepresentor(representor_name='r0')
    cases.append((offloaded, 'datapath offload'))
    for vif, text in cases:
        with pytest.raises(exception.UnsupportedVIF, match=text):
            bind(plugin, vif)


def test_vifdirect_binding(plugin):
    profile = osv_vif.VIFPortProfile8021Qbh(profile_id='gold')
    binding = bind(plugin, vif_direct(port_profile=profile))
    assert binding.accepted_types == (endpoints.DIRECT,)
    assert binding.mode == 'bridge'
    assert binding.port.virtualport == endpoints.VirtualPort(
        type='802.1Qbh', profile_id='gold')
    assert binding.port.tap is None
    qbg = osv_vif.VIFPortProfile8021Qbg(manager_id=1, type_id=2,
                                        type_id_version=3,
                                        instance_id=str(uuid.uuid4()))
    binding = bind(plugin, vif_direct(port_profile=qbg))
    assert (binding.port.virtualport.type,
            binding.port.virtualport.type_id) == ('802.1Qbg', 2)


def test_vifdirect_mode_must_match(plugin):
    with pytest.raises(exception.VIFMismatch, match='vepa'):
        bind(plugin, vif_direct(mode='vepa'))


def test_vifdirect_on_hostdev_network_is_passthrough_on_the_vf(plugin):
    vif = vif_direct(label='fast', mode='passthrough',
                     dev_address='0000:3b:10.2')
    binding = bind(plugin, vif)
    assert binding.options == {'pci_address': '0000:3b:10.2'}
    with pytest.raises(exception.VIFMismatch, match='passthrough'):
        bind(plugin, vif_direct(label='fast', mode='bridge'))


def test_vifhostdevice_binding(plugin):
    binding = bind(plugin, vif_hostdev(address='0000:3B:10.1'))
    assert binding.accepted_types == (endpoints.HOSTDEV,)
    assert binding.options == {'pci_address': '0000:3b:10.1'}
    assert binding.pci_address == '0000:3b:10.1'


def test_vifhostdevice_generic_is_refused(plugin):
    vif = vif_hostdev(dev_type=osv_fields.VIFHostDeviceDevType.GENERIC)
    with pytest.raises(exception.UnsupportedVIF, match='generic'):
        bind(plugin, vif)


def test_other_vif_types_are_refused(plugin):
    vif = osv_vif.VIFVHostUser(id=str(uuid.uuid4()),
                               address='52:54:00:aa:00:09',
                               network=_network(), plugin='vif_plug_dyn',
                               path='/tmp/sock', mode='client',
                               vif_name='vhu0')
    with pytest.raises(exception.UnsupportedVIF, match='VIFVHostUser'):
        bind(plugin, vif)


def test_alias_serves_vifbridge_only(plugconf):
    alias = plugin_mod.LinuxBridgePlugin.from_conf(plugconf)
    try:
        assert bind(alias, vif_bridge()).network.name == 'red'
        with pytest.raises(exception.UnsupportedVIF, match='VIFBridge'):
            bind(alias, vif_ovs())
    finally:
        alias.manager.close()


def test_vif_without_mac_is_refused(plugin):
    with pytest.raises(exception.UnsupportedVIF, match='MAC'):
        bind(plugin, vif_bridge(address=None))


# -- which network ------------------------------------------------------------

def test_network_by_label_then_bridge(plugin):
    assert bind(plugin, vif_bridge(label='red')).network.name == 'red'
    # No network is labelled "tenant-net": the one on br-red answers.
    assert bind(plugin, vif_bridge(label='tenant-net')).network.name == 'red'


def test_network_map_precedence(plugin, plugconf):
    net = _network('tenant-net', bridge='br-green', net_id=str(uuid.uuid4()))
    plugconf.set_override('network_map', {'br-green': 'green-42',
                                          'tenant-net': 'green',
                                          net.id: 'green'},
                          osvif.CONFIG_GROUP)
    vif = vif_ovs(network=net)
    assert bind(plugin, vif).network.name == 'green'
    plugconf.set_override('network_map', {'br-green': 'green-42'},
                          osvif.CONFIG_GROUP)
    assert bind(plugin, vif).network.name == 'green-42'


def test_shared_bridge_needs_the_map(plugin):
    vif = vif_ovs(label='tenant-net')
    with pytest.raises(exception.NoNetworkForVIF) as info:
        bind(plugin, vif)
    text = str(info.value)
    assert 'green, green-42' in text and 'network_map' in text


def test_no_network(plugin):
    vif = vif_bridge(label='nowhere', bridge_name='br-nowhere')
    with pytest.raises(exception.NoNetworkForVIF) as info:
        bind(plugin, vif)
    assert 'label nowhere' in str(info.value)
    assert 'bridge br-nowhere' in str(info.value)


def test_map_to_undefined_network(plugin, plugconf):
    plugconf.set_override('network_map', {'red': 'purple'},
                          osvif.CONFIG_GROUP)
    with pytest.raises(exception.NetworkNotFound, match='purple'):
        bind(plugin, vif_bridge())


def test_network_kind_must_fit(plugin):
    with pytest.raises(exception.VIFMismatch, match='a direct network'):
        bind(plugin, vif_bridge(label='blue', bridge_name=None))


# -- plug and unplug ----------------------------------------------------------

def test_plug_unplug_bridge(plugin):
    vif = vif_bridge()
    plugin.plug(vif, _info())
    endpoint = plugin.manager.get_endpoint(vif.id)
    assert isinstance(endpoint, endpoints.BridgeEndpoint)
    assert (endpoint.bridge, endpoint.tap, endpoint.network) == (
        'br-red', vif.vif_name, 'red')
    record = plugin.manager.ledger.get_port(vif.id)
    assert record.port.vm_uuid == VM
    assert record.request.options == {}
    # Plugging again (nova does at every host start) changes nothing.
    plugin.plug(vif, _info())
    assert plugin.manager.get_endpoint(vif.id) == endpoint
    plugin.unplug(vif, _info())
    assert plugin.manager.ledger.get_port(vif.id) is None
    # Unplugging what is not plugged is a no-op.
    plugin.unplug(vif, _info())


def test_plug_ovs_ethernet(plugin):
    vif = vif_ovs(profile_kw={'create_tap': True})
    plugin.plug(vif, _info())
    endpoint = plugin.manager.get_endpoint(vif.id)
    assert isinstance(endpoint, endpoints.EthernetEndpoint)
    assert endpoint.tap == vif.vif_name
    plugin.unplug(vif, _info())


def test_plug_hostdev_pins_the_vf(plugin, host):
    vif = vif_hostdev(address='0000:3b:10.2')
    plugin.plug(vif, _info())
    endpoint = plugin.manager.get_endpoint(vif.id)
    assert endpoint.pci_address == '0000:3b:10.2'
    set_vf = host.batches[-1][0]
    assert (set_vf['op'], set_vf['pf'], set_vf['vf'], set_vf['mac']) == (
        'set_vf', 'ens1f0', 2, vif.address)
    # The same VF cannot serve a second port.
    other = vif_hostdev(address='0000:3b:10.2')
    with pytest.raises(osv_exception.PlugException) as info:
        plugin.plug(other, _info())
    assert isinstance(info.value.kwargs['err'], exception.PoolExhausted)
    plugin.unplug(vif, _info())


def test_plug_hostdev_unknown_vf(plugin):
    with pytest.raises(osv_exception.PlugException) as info:
        plugin.plug(vif_hostdev(address='0000:3b:11.7'), _info())
    assert isinstance(info.value.__cause__, exception.InvalidField)
    assert 'not a usable VF' in str(info.value)


def test_plug_errors_are_os_vif_exceptions(plugin):
    vif = vif_bridge(label='nowhere', bridge_name='br-nowhere')
    with pytest.raises(osv_exception.PlugException) as info:
        plugin.plug(vif, _info())
    err = info.value.kwargs['err']
    assert isinstance(err, exception.NoNetworkForVIF)
    assert info.value.__cause__ is err
    assert vif.id in str(info.value)


def test_replug_with_another_mac_is_refused_and_kept(plugin):
    vif = vif_bridge()
    plugin.plug(vif, _info())
    clash = vif_bridge(id=vif.id, address='52:54:00:aa:00:7f')
    with pytest.raises(osv_exception.PlugException) as info:
        plugin.plug(clash, _info())
    assert isinstance(info.value.kwargs['err'], exception.VIFMismatch)
    assert 'MAC' in str(info.value)
    # The recorded port was not the failed call's to remove.
    assert plugin.manager.get_endpoint(vif.id).mac == vif.address
    plugin.unplug(vif, _info())


def test_unplug_errors_are_os_vif_exceptions(plugin, monkeypatch):
    vif = vif_bridge()
    plugin.plug(vif, _info())

    def broken(port_id):
        raise exception.LedgerError(path='ledger', reason='disk full')

    monkeypatch.setattr(plugin.manager, 'release_endpoint', broken)
    with pytest.raises(osv_exception.UnplugException) as info:
        plugin.unplug(vif, _info())
    assert isinstance(info.value.kwargs['err'], exception.LedgerError)
    assert 'disk full' in str(info.value)


# -- through os-vif's own entry points ----------------------------------------

@pytest.fixture
def global_conf(plugconf, tmp_path, sysfs):
    """os-vif builds its plugins on oslo_config.cfg.CONF."""
    opts.register_opts(cfg.CONF)
    overrides = {'state_path': str(tmp_path / 'state'),
                 'network_dir': str(tmp_path / 'networks'),
                 'sysfs_root': str(sysfs)}
    for key, value in overrides.items():
        cfg.CONF.set_override(key, value, opts.GROUP)
    yield cfg.CONF
    for key in overrides:
        cfg.CONF.clear_override(key, opts.GROUP)
    os_vif.initialize(reset=True)


def test_os_vif_plug_and_unplug(global_conf):
    os_vif.initialize(reset=True)
    loaded = os_vif._EXT_MANAGER['vif_plug_dyn'].obj
    vif = vif_bridge()
    os_vif.plug(vif, _info())
    assert loaded.manager.get_endpoint(vif.id).tap == vif.vif_name
    os_vif.unplug(vif, _info())
    assert loaded.manager.ledger.get_port(vif.id) is None
    loaded.manager.close()


def test_os_vif_plug_wraps_once_more(global_conf):
    os_vif.initialize(reset=True)
    vif = vif_bridge(label='nowhere', bridge_name='br-nowhere')
    with pytest.raises(osv_exception.PlugException) as info:
        os_vif.plug(vif, _info())
    # os-vif wraps whatever a plugin raises; ours is inside.
    inner = info.value.kwargs['err']
    assert isinstance(inner, osv_exception.PlugException)
    assert isinstance(inner.kwargs['err'], exception.NoNetworkForVIF)
    os_vif._EXT_MANAGER['vif_plug_dyn'].obj.manager.close()
