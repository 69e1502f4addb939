"""The migration flow, between two noop-driver managers (two state
directories), with a fake migrate callable; and the libvirt migrate
callable against a fake domain."""

import uuid

import libvirt
import pytest
from oslo_config import cfg

from vif_plug_dyn import endpoints as ep
from vif_plug_dyn import exception
from vif_plug_dyn import ledger as ledger_mod
from vif_plug_dyn import manager as manager_mod
from vif_plug_dyn import opts
from vif_plug_dyn import ports as ports_mod
from vif_plug_dyn.tests.unit import conftest
from vif_plug_dyn.tests.unit.virt import fake_libvirt as fake
from vif_plug_dyn.virt import migration
from vif_plug_dyn.virt.libvirt import adapter as adapter_mod
from vif_plug_dyn.virt.libvirt import domain as domain_mod
from vif_plug_dyn.virt.libvirt import migrate as migrate_mod

RED_MAC = '52:54:00:bb:00:01'
BLUE_MAC = '52:54:00:bb:00:02'

SOURCE_NETWORKS = conftest.NOOP_NETWORKS
DEST_NETWORKS = {
    'red': "<network type='bridge'><name>red</name><driver name='noop'/>"
           "<bridge name='br-dst'/></network>",
    'blue': "<network type='direct'><name>blue</name><driver name='noop'/>"
            "<forward mode='vepa'><interface dev='eth7'/></forward>"
            "</network>",
}


def _manager(tmp_path, name, networks):
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override('state_path', str(tmp_path / name / 'state'),
                      opts.GROUP)
    conf.set_override('network_dir', str(tmp_path / name / 'networks'),
                      opts.GROUP)
    for net, xml in networks.items():
        conftest.write_network(str(tmp_path / name / 'networks'), net, xml)
    return manager_mod.EndpointManager(conf)


class Recorder:
    """A migrate callable that records its calls and may fail."""

    def __init__(self, fail=None):
        self.calls = []
        self.fail = fail

    def __call__(self, domain, dest_xml, dest_endpoints):
        self.calls.append((domain, dest_xml, dict(dest_endpoints)))
        if self.fail is not None:
            raise self.fail


class Proxy:
    """A manager wrapper that fails chosen calls."""

    def __init__(self, target, fail_on=None, fail_after=0):
        self.target = target
        self.fail_on = fail_on
        self.fail_after = fail_after
        self.calls = []

    def __getattr__(self, name):
        real = getattr(self.target, name)

        def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            if name == self.fail_on:
                if self.fail_after:
                    self.fail_after -= 1
                else:
                    raise exception.PoolExhausted(
                        network='x', resource='thing',
                        reason='injected failure')
            return real(*args, **kwargs)
        return call


@pytest.fixture
def hosts(tmp_path):
    source = _manager(tmp_path, 'source', SOURCE_NETWORKS)
    dest = _manager(tmp_path, 'dest', DEST_NETWORKS)
    yield source, dest
    source.close()
    dest.close()


@pytest.fixture
def adapter():
    return adapter_mod.LibvirtAdapter()


def _setup(source, adapter, specs=(('red', RED_MAC), ('blue', BLUE_MAC)),
           connected=True, accepted=None):
    made = []
    for network, mac in specs:
        port = conftest.make_port(network=network, mac=mac)
        made.append(source.request_endpoint(
            port, accepted or (ep.BRIDGE, ep.DIRECT, ep.ETHERNET,
                               ep.HOSTDEV), connected=connected))
    ifaces = [adapter.converter.build(e) for e in made]
    xml = domain_mod.new_domain_xml('vm1', ifaces)
    records = [source.ledger.get_port(e.port_id) for e in made]
    return made, xml, records


def _flow(adapter, source, dest, migrate):
    return migration.MigrationFlow(adapter, source, dest, migrate,
                                   destination_name='host-b')


def test_migration_moves_the_endpoints(hosts, adapter):
    source, dest = hosts
    made, xml, records = _setup(source, adapter)
    migrate = Recorder()
    result = _flow(adapter, source, dest, migrate).run('vm1', xml, records)
    assert len(migrate.calls) == 1
    domain, dest_xml, dest_eps = migrate.calls[0]
    assert domain == 'vm1' and dest_xml == result.dest_xml
    red = dest_eps[RED_MAC]
    assert (red.type, red.bridge, red.network) == ('bridge', 'br-dst',
                                                   'red')
    blue = dest_eps[BLUE_MAC]
    assert (blue.type, blue.source_dev, blue.mode) == ('direct', 'eth7',
                                                       'vepa')
    ifaces = domain_mod.list_interfaces(dest_xml)
    assert ifaces[RED_MAC].source_bridge == 'br-dst'
    assert ifaces[BLUE_MAC].source_dev == 'eth7'
    # the destination ledger has the ports, the source none
    assert {r.port.port_id for r in dest.ledger.list_ports()} == {
        e.port_id for e in made}
    assert source.ledger.list_ports() == []
    assert result.released == [e.port_id for e in made]


def test_missing_network_refused_before_anything(hosts, adapter):
    source, dest = hosts
    made, xml, records = _setup(source, adapter, specs=(
        ('red', RED_MAC), ('nat', BLUE_MAC)),
        accepted=(ep.BRIDGE, ep.NETWORK))
    spy = Proxy(dest)
    migrate = Recorder()
    with pytest.raises(exception.MigrationNetworkMissing) as info:
        _flow(adapter, source, spy, migrate).run('vm1', xml, records)
    message = str(info.value)
    assert 'nat' in message and made[1].port_id in message
    assert 'host-b' in message and 'nothing was changed' in message
    assert [c[0] for c in spy.calls] == ['host_capabilities']
    assert migrate.calls == []
    assert dest.ledger.list_ports() == []
    assert len(source.ledger.list_ports()) == 2


def test_no_acceptable_type_on_destination(hosts, adapter):
    source, dest = hosts
    # this port takes only bridge, and the destination's red (made to)
    # offer only direct
    _made, xml, records = _setup(source, adapter, specs=(('red', RED_MAC),),
                                 accepted=(ep.BRIDGE,))

    class OnlyDirect(Proxy):
        def host_capabilities(self):
            caps = self.target.host_capabilities()
            caps['networks']['red']['endpoint_types'] = ['direct']
            return caps
    migrate = Recorder()
    with pytest.raises(exception.MigrationNotPossible) as info:
        _flow(adapter, source, OnlyDirect(dest), migrate).run(
            'vm1', xml, records)
    assert 'offers endpoint types direct' in str(info.value)
    assert 'the port can take bridge' in str(info.value)
    assert migrate.calls == [] and dest.ledger.list_ports() == []


def test_network_in_error_on_destination(hosts, adapter):
    source, dest = hosts
    _made, xml, records = _setup(source, adapter, specs=(('red', RED_MAC),))

    class Broken(Proxy):
        def host_capabilities(self):
            return {'networks': {'red': {'endpoint_types': [],
                                         'error': 'driver gone'}}}
    with pytest.raises(exception.MigrationNotPossible) as info:
        _flow(adapter, source, Broken(dest), Recorder()).run(
            'vm1', xml, records)
    assert 'driver gone' in str(info.value)


def test_domain_nic_without_port(hosts, adapter):
    source, dest = hosts
    _made, xml, records = _setup(source, adapter)
    migrate = Recorder()
    with pytest.raises(exception.MigrationEndpointMissing) as info:
        _flow(adapter, source, dest, migrate).run('vm1', xml, records[:1])
    assert BLUE_MAC in str(info.value)
    assert migrate.calls == [] and dest.ledger.list_ports() == []


def test_port_without_domain_nic(hosts, adapter):
    source, dest = hosts
    made, _xml, records = _setup(source, adapter)
    xml = domain_mod.new_domain_xml(
        'vm1', [adapter.converter.build(made[0])])
    with pytest.raises(exception.InterfaceNotFound) as info:
        _flow(adapter, source, dest, Recorder()).run('vm1', xml, records)
    assert BLUE_MAC in str(info.value)
    assert dest.ledger.list_ports() == []


def test_port_still_being_built(hosts, adapter):
    source, dest = hosts
    _made, xml, records = _setup(source, adapter, specs=(('red', RED_MAC),))
    building = ledger_mod.PortRecord(
        request=records[0].request, endpoint=None, state='building',
        cable='plugged', health='ok', updated=0.0)
    with pytest.raises(exception.MigrationNotPossible) as info:
        _flow(adapter, source, dest, Recorder()).run('vm1', xml,
                                                     [building])
    assert 'still being built' in str(info.value)


def test_failure_requesting_rolls_back_earlier_groups(hosts, adapter):
    source, dest = hosts
    # unplugged and plugged ports are two requests; the second fails
    made, xml, records = _setup(source, adapter, specs=(('red', RED_MAC),))
    port = conftest.make_port(network='blue', mac=BLUE_MAC)
    made.append(source.request_endpoint(port, connected=False))
    records.append(source.ledger.get_port(port.port_id))
    xml = domain_mod.new_domain_xml(
        'vm1', [adapter.converter.build(e) for e in made])
    spy = Proxy(dest, fail_on='request_endpoints', fail_after=1)
    migrate = Recorder()
    with pytest.raises(exception.PoolExhausted):
        _flow(adapter, source, spy, migrate).run('vm1', xml, records)
    names = [c[0] for c in spy.calls]
    assert names == ['host_capabilities', 'request_endpoints',
                     'request_endpoints', 'release_endpoints']
    assert spy.calls[-1][1][0] == [made[0].port_id]
    assert dest.ledger.list_ports() == []
    assert migrate.calls == []
    assert len(source.ledger.list_ports()) == 2


def test_failure_rewriting_rolls_back(hosts, adapter):
    source, dest = hosts
    made, _xml, records = _setup(source, adapter, specs=(('red', RED_MAC),))
    # the source definition contradicts the ledger: a VF where the ledger
    # has a bridge endpoint; the rewrite refuses it
    vf = ep.HostdevEndpoint(port_id=made[0].port_id, network='red',
                            mac=RED_MAC, pci_address='0000:03:10.2')
    xml = domain_mod.new_domain_xml('vm1', [adapter.converter.build(vf)])
    migrate = Recorder()
    with pytest.raises(exception.MigrationNotPossible):
        _flow(adapter, source, dest, migrate).run('vm1', xml, records)
    assert migrate.calls == []
    assert dest.ledger.list_ports() == []
    assert len(source.ledger.list_ports()) == 1


def test_failure_migrating_rolls_back(hosts, adapter):
    source, dest = hosts
    _made, xml, records = _setup(source, adapter)
    boom = exception.HypervisorOperationFailed(
        operation='migration to qemu+tcp://b/system', domain='vm1',
        reason='connection refused')
    migrate = Recorder(fail=boom)
    with pytest.raises(exception.HypervisorOperationFailed) as info:
        _flow(adapter, source, dest, migrate).run('vm1', xml, records)
    assert info.value is boom
    assert len(migrate.calls) == 1
    assert dest.ledger.list_ports() == []
    assert len(source.ledger.list_ports()) == 2


def test_rollback_failure_is_noted(hosts, adapter):
    source, dest = hosts
    _made, xml, records = _setup(source, adapter)
    boom = RuntimeError('migration died')
    spy = Proxy(dest, fail_on='release_endpoints')
    with pytest.raises(RuntimeError) as info:
        _flow(adapter, source, spy, Recorder(fail=boom)).run(
            'vm1', xml, records)
    assert info.value is boom
    assert any('injected failure' in note
               for note in getattr(info.value, '__notes__', []))


def test_source_release_failure_after_the_move(hosts, adapter):
    source, dest = hosts
    made, xml, records = _setup(source, adapter)
    spy = Proxy(source, fail_on='release_endpoints')
    migrate = Recorder()
    with pytest.raises(exception.MigrationSourceCleanupFailed) as info:
        _flow(adapter, spy, dest, migrate).run('vm1', xml, records)
    assert 'now runs on host-b' in str(info.value)
    assert info.value.result.released == [e.port_id for e in made]
    assert set(info.value.result.dest_endpoints) == {RED_MAC, BLUE_MAC}
    assert len(dest.ledger.list_ports()) == 2


def test_cable_state_and_types_follow_the_port(hosts, adapter):
    source, dest = hosts
    _made, xml, records = _setup(source, adapter, connected=False,
                                 specs=(('red', RED_MAC),))
    spy = Proxy(dest)
    _flow(adapter, source, spy, Recorder()).run('vm1', xml, records)
    _name, args, kwargs = [c for c in spy.calls
                           if c[0] == 'request_endpoints'][0]
    assert kwargs['connected'] is False
    # an emulated NIC is never offered a VF on the destination
    assert ep.HOSTDEV not in kwargs['accepted_types']
    assert dest.ledger.list_ports()[0].cable == ledger_mod.UNPLUGGED


def test_hostdev_port_asks_for_a_vf_only(hosts, adapter):
    source, dest = hosts
    port = conftest.make_port(network='red', mac=RED_MAC)
    vf = ep.HostdevEndpoint(port_id=port.port_id, network='red',
                            mac=RED_MAC, pci_address='0000:03:10.2')
    record = ledger_mod.PortRecord(
        request=ports_mod.EndpointRequest(port=port),
        endpoint=vf, state='active', cable='plugged', health='ok',
        updated=0.0)
    xml = domain_mod.new_domain_xml('vm1', [adapter.converter.build(vf)])
    with pytest.raises(exception.MigrationNotPossible) as info:
        _flow(adapter, source, dest, Recorder()).run('vm1', xml, [record])
    # red (a bridge network) offers no VF on the destination
    assert 'the port can take hostdev' in str(info.value)
    assert dest.ledger.list_ports() == []


def test_duplicate_macs_refused(hosts, adapter):
    source, dest = hosts
    _made, xml, records = _setup(source, adapter, specs=(('red', RED_MAC),))
    with pytest.raises(exception.InvalidField):
        _flow(adapter, source, dest, Recorder()).run(
            'vm1', xml, records + records)


# -- the libvirt migrate callable -------------------------------------------

def _migrating_domain(persistent=True):
    conn = fake.FakeConnection()
    dom = conn.add('vm1', [fake.interface_xml(RED_MAC, bridge='br-src',
                                              tap='vpdsrc0')],
                   persistent=persistent)
    # a NIC hot-plugged into the running guest only
    dom.live_xml = domain_mod.add_interface(
        dom.live_xml, adapter_mod.LibvirtAdapter().converter.build(
            ep.BridgeEndpoint(port_id=str(uuid.uuid4()), network='red',
                              mac=BLUE_MAC, bridge='br-src', tap='vpdsrc1')))
    calls = []

    def migrate_to_uri3(uri, params, flags):
        calls.append((uri, params, flags))
    dom.migrateToURI3 = migrate_to_uri3
    return conn, dom, calls


def _dest_eps():
    return {mac: ep.BridgeEndpoint(port_id=str(uuid.uuid4()), network='red',
                                   mac=mac, bridge='br-dst', tap=tap)
            for mac, tap in ((RED_MAC, 'vpddst0'), (BLUE_MAC, 'vpddst1'))}


def test_libvirt_migrator_parameters():
    conn, dom, calls = _migrating_domain()
    adapter = adapter_mod.LibvirtAdapter(connection=conn)
    dest_eps = _dest_eps()
    dest_xml = adapter.migration_xml(dom.live_xml, dest_eps)
    migrator = migrate_mod.LibvirtMigrator(
        adapter, 'qemu+tcp://198.18.0.2/system',
        migrate_uri='tcp://198.18.0.2',
        rewrite=lambda xml: xml.replace('vm1', 'vm1'),
        params={libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 100})
    migrator('vm1', dest_xml, dest_eps)
    (uri, params, flags), = calls
    assert uri == 'qemu+tcp://198.18.0.2/system'
    assert flags == (libvirt.VIR_MIGRATE_LIVE |
                     libvirt.VIR_MIGRATE_PEER2PEER |
                     libvirt.VIR_MIGRATE_PERSIST_DEST |
                     libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)
    assert params[libvirt.VIR_MIGRATE_PARAM_DEST_XML] == dest_xml
    assert params[libvirt.VIR_MIGRATE_PARAM_URI] == 'tcp://198.18.0.2'
    assert params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] == 100
    # the persistent definition, rewritten for the NIC it has
    persist = domain_mod.list_interfaces(
        params[libvirt.VIR_MIGRATE_PARAM_PERSIST_XML])
    assert list(persist) == [RED_MAC]
    assert persist[RED_MAC].source_bridge == 'br-dst'
    assert persist[RED_MAC].target_dev == 'vpddst0'


def test_libvirt_migrator_transient_and_rewrite():
    conn, _dom, calls = _migrating_domain(persistent=False)
    adapter = adapter_mod.LibvirtAdapter(connection=conn)
    migrator = migrate_mod.LibvirtMigrator(
        adapter, 'qemu+tcp://b/system', rewrite=lambda x: x + '<!-- b -->')
    migrator('vm1', '<domain/>', _dest_eps())
    params = calls[0][1]
    assert libvirt.VIR_MIGRATE_PARAM_PERSIST_XML not in params
    assert libvirt.VIR_MIGRATE_PARAM_URI not in params
    assert params[libvirt.VIR_MIGRATE_PARAM_DEST_XML] == \
        '<domain/><!-- b -->'


def test_libvirt_migrator_errors_are_typed():
    conn, dom, _calls = _migrating_domain()

    def refuse(uri, params, flags):
        raise fake.error(libvirt.VIR_ERR_OPERATION_FAILED,
                         'Attempt to migrate guest to the same host')
    dom.migrateToURI3 = refuse
    adapter = adapter_mod.LibvirtAdapter(connection=conn)
    migrator = migrate_mod.LibvirtMigrator(adapter, 'qemu+tcp://b/system')
    with pytest.raises(exception.HypervisorOperationFailed) as info:
        migrator('vm1', dom.live_xml, _dest_eps())
    assert 'migration to qemu+tcp://b/system on domain vm1' in str(
        info.value)
    assert 'same host' in str(info.value)
    with pytest.raises(exception.DomainNotFound):
        migrator('vm2', dom.live_xml, _dest_eps())


def test_flow_with_the_libvirt_migrator(hosts):
    """The pieces together: ledger records -> flow -> migrateToURI3."""
    source, dest = hosts
    conn = fake.FakeConnection()
    adapter = adapter_mod.LibvirtAdapter(connection=conn)
    made, xml, records = _setup(source, adapter, specs=(('red', RED_MAC),))
    dom = conn.add('vm1', [adapter.interface_config(made[0])])
    calls = []
    dom.migrateToURI3 = lambda uri, params, flags: calls.append(params)
    flow = migration.MigrationFlow(
        adapter, source, dest,
        migrate_mod.LibvirtMigrator(adapter, 'qemu+tcp://b/system'))
    flow.run('vm1', adapter.domain_xml('vm1', migratable=True), records)
    for key in (libvirt.VIR_MIGRATE_PARAM_DEST_XML,
                libvirt.VIR_MIGRATE_PARAM_PERSIST_XML):
        iface = domain_mod.get_interface(calls[0][key], RED_MAC)
        assert iface.source_bridge == 'br-dst'
    assert source.ledger.list_ports() == []
