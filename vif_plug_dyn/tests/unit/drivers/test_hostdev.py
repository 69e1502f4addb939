"""The hostdev driver with a fake sysfs tree and a recording host."""

import os
import uuid

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn import manager as manager_mod
from vif_plug_dyn import opts
from vif_plug_dyn import ports
from vif_plug_dyn import sriov
from vif_plug_dyn.tests.unit.conftest import write_network

FAST = ("<network type='hostdev'><name>fast</name><forward mode='hostdev'>"
        "<pf dev='ens1f0'/><pf dev='ens1f1'/></forward>"
        "<vlan><tag id='42'/></vlan></network>")


def make_pf(root, pf, vfs, netdevs=True):
    device = root / 'class' / 'net' / pf / 'device'
    device.mkdir(parents=True)
    (device / 'sriov_totalvfs').write_text('%d\n' % vfs)
    (device / 'sriov_numvfs').write_text('%d\n' % vfs)
    bus = {'ens1f0': 0x3b, 'ens1f1': 0x3c}[pf]
    for index in range(vfs):
        address = '0000:%02x:10.%d' % (bus, index)
        target = root / 'bus' / 'pci' / 'devices' / address
        target.mkdir(parents=True)
        if netdevs:
            (target / 'net' / ('%sv%d' % (pf, index))).mkdir(parents=True)
        os.symlink(target, device / ('virtfn%d' % index))


class RecordingHost:
    def __init__(self, fail=False):
        self.batches = []
        self.fail = fail

    def run(self, batch):
        self.batches.append(batch)
        if self.fail:
            raise exception.NetlinkOperationFailed(
                operation='set_vf', device='ens1f0', reason='No VFs',
                errno=95)
        return [{'status': 'ok'} for _ in batch]

    def apply(self, batch, stop_on_error=True):
        self.batches.append(batch)
        return [{'status': 'ok'} for _ in batch]


@pytest.fixture
def sysfs(tmp_path):
    root = tmp_path / 'sys'
    make_pf(root, 'ens1f0', 2)
    make_pf(root, 'ens1f1', 1)
    return root


def _manager(conf, sysfs, tmp_path, host):
    conf.set_override('sysfs_root', str(sysfs), opts.GROUP)
    write_network(str(tmp_path / 'networks'), 'fast', FAST)
    return manager_mod.EndpointManager(conf, host=host)


def _port(n):
    return ports.Port(port_id=str(uuid.uuid4()),
                      mac='52:54:00:50:00:%02x' % n, network='fast')


def test_sysfs_reader(sysfs):
    vfs = sriov.virtual_functions(str(sysfs), 'ens1f0')
    assert [(v.index, v.pci_address, v.netdev) for v in vfs] == [
        (0, '0000:3b:10.0', 'ens1f0v0'), (1, '0000:3b:10.1', 'ens1f0v1')]
    assert sriov.pf_exists(str(sysfs), 'ens1f0')
    assert not sriov.pf_exists(str(sysfs), 'eth0')
    assert sriov.virtual_functions(str(sysfs), 'eth0') == []


def test_vfs_allocated_exclusively_and_configured(conf, sysfs, tmp_path):
    host = RecordingHost()
    mgr = _manager(conf, sysfs, tmp_path, host)
    assert mgr.host_capabilities()['networks']['fast'][
        'endpoint_types'] == ['hostdev', 'direct']
    made = mgr.request_endpoints([_port(n) for n in range(3)], ['hostdev'])
    assert sorted(e.pci_address for e in made) == [
        '0000:3b:10.0', '0000:3b:10.1', '0000:3c:10.0']
    assert {e.vlan for e in made} == {42}
    (batch,) = host.batches
    assert [(op['op'], op['pf'], op['vf'], op['mac'], op['vlan'],
             op['spoofchk']) for op in batch] == [
        ('set_vf', 'ens1f0', 0, made[0].mac, 42, True),
        ('set_vf', 'ens1f0', 1, made[1].mac, 42, True),
        ('set_vf', 'ens1f1', 0, made[2].mac, 42, True)]
    with pytest.raises(exception.PoolExhausted):
        mgr.request_endpoint(_port(9), ['hostdev'])
    mgr.release_endpoint(made[1].port_id)
    reset = host.batches[-1]
    assert [(op['pf'], op['vf'], op['mac'], op['vlan']) for op in reset] \
        == [('ens1f0', 1, '00:00:00:00:00:00', 0)]
    again = mgr.request_endpoint(_port(10), ['hostdev'])
    assert again.pci_address == '0000:3b:10.1'


def test_direct_passthrough_on_the_vf_netdev(conf, sysfs, tmp_path):
    mgr = _manager(conf, sysfs, tmp_path, RecordingHost())
    endpoint = mgr.request_endpoint(_port(1), ['direct'])
    assert (endpoint.type, endpoint.mode, endpoint.source_dev) == (
        'direct', 'passthrough', 'ens1f0v0')


def test_failed_vf_configuration_releases_everything(conf, sysfs,
                                                     tmp_path):
    mgr = _manager(conf, sysfs, tmp_path, RecordingHost(fail=True))
    with pytest.raises(exception.NetlinkOperationFailed, match='set_vf'):
        mgr.request_endpoints([_port(1), _port(2)], ['hostdev'])
    assert mgr.ledger.allocations() == {}
    assert mgr.ledger.list_ports() == []


def test_no_vfs_offers_nothing(conf, tmp_path):
    mgr = _manager(conf, tmp_path / 'empty', tmp_path, RecordingHost())
    caps = mgr.host_capabilities()['networks']['fast']
    assert caps['endpoint_types'] == []
    with pytest.raises(exception.NoMatchingEndpointType,
                       match='offers nothing'):
        mgr.request_endpoint(_port(1), ['hostdev'])
