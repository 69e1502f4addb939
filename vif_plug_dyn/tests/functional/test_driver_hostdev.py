"""The hostdev driver through the real privileged helper.

This machine has no SR-IOV device: the PF is a veth and the VFs come from
a fake sysfs tree, so the kernel refuses the VF request. What this proves
is the path: the VF operation reaches the kernel through the daemon, its
refusal comes back as a typed error naming the operation and the device,
and the request leaves no allocation and no record behind.
"""

import uuid

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn import ports
from vif_plug_dyn.tests.functional import fixtures
from vif_plug_dyn.tests.unit.drivers.test_hostdev import make_pf

NETWORKS = {
    'fast': "<network type='hostdev'><name>fast</name>"
            "<forward mode='hostdev'><pf dev='ens1f0'/></forward>"
            "</network>",
}


def test_vf_request_reaches_the_kernel_and_rolls_back(tmp_path):
    with fixtures.private_host('drvhd') as ns:
        ns.run(['ip', 'link', 'add', 'ens1f0', 'type', 'veth', 'peer',
                'name', 'ens1f0p'])
        make_pf(tmp_path / 'sys', 'ens1f0', 2)
        mgr = fixtures.make_manager(tmp_path, ns.name, NETWORKS,
                                    sysfs_root=str(tmp_path / 'sys'))
        try:
            port = ports.Port(port_id=str(uuid.uuid4()),
                              mac='52:54:00:60:00:01', network='fast')
            with pytest.raises(exception.NetlinkOperationFailed) as err:
                mgr.request_endpoint(port, ['hostdev'])
            assert 'ens1f0' in str(err.value)
            assert err.value.errno is not None
            assert mgr.ledger.allocations() == {}
            assert mgr.ledger.list_ports() == []
        finally:
            mgr.close()
