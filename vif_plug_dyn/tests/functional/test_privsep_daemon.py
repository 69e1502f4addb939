"""The real privsep daemon: where it runs, what it holds, how it stops."""

import os

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn import privsep
from vif_plug_dyn.privsep import linux_net
from vif_plug_dyn.privsep import ops

CAP_NET_ADMIN, CAP_MKNOD = 12, 27


def _status(pid):
    with open('/proc/%d/status' % pid, encoding='ascii') as handle:
        return dict(line.split(':\t', 1) for line in handle.read().splitlines()
                    if ':\t' in line)


def _gone(pid):
    try:
        return _status(pid)['State'].startswith('Z')
    except FileNotFoundError:
        return True


def test_daemon_runs_in_the_namespace_with_two_capabilities(host, netns):
    info = linux_net.daemon_info()
    assert info['netns_inode'] == netns.inode
    assert info['netns_inode'] != os.stat('/proc/self/ns/net').st_ino
    assert info['pid'] != os.getpid()
    status = _status(info['pid'])
    wanted = (1 << CAP_NET_ADMIN) | (1 << CAP_MKNOD)
    assert int(status['CapEff'], 16) == wanted
    assert int(status['CapPrm'], 16) == wanted


def test_restart_in_another_namespace(host, netns, make_netns):
    first = linux_net.daemon_info()
    other = make_netns()
    privsep.restart(other.name)
    second = linux_net.daemon_info()
    assert second['netns_inode'] == other.inode
    assert _gone(first['pid'])
    host.create_tap('tapother')
    assert 'tapother' in other.names()
    assert 'tapother' not in netns.names()


def test_stop_waits_for_the_daemon(host):
    pid = linux_net.daemon_info()['pid']
    privsep.stop()
    assert not privsep.running()
    assert _gone(pid)


def test_typed_errors_cross_the_real_channel(host):
    with pytest.raises(exception.DeviceNotOwned) as excinfo:
        host.apply_one(ops.delete('lo'))
    assert excinfo.value.kwargs == {'operation': 'delete', 'device': 'lo'}
    with pytest.raises(exception.DeviceNotFound):
        host.get_link('nosuchdev')
    # the daemon validates on its own: bypass the client-side checks
    with pytest.raises(exception.InvalidField) as excinfo:
        linux_net.apply([{'op': 'create_tap', 'name': 'evil/../x'}])
    assert excinfo.value.kwargs['field'] == 'ops[0].name'
    with pytest.raises(exception.NetlinkOperationFailed) as excinfo:
        host.apply_one(ops.create_tap('tapbig', mtu=65535))
    assert excinfo.value.errno == 22
    assert excinfo.value.kwargs['device'] == 'tapbig'
