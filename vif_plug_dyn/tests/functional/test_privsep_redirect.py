"""A "steered" direct endpoint carrying real packets.

Three namespaces::

    guest G           host H (the daemon's)                  remote B
    gv 10.77.0.1 =veth= hv <-tc mirred-> mv (macvlan) on low =veth= rv
                                                          10.77.0.2

``hv`` plays the guest's tap; ``low`` is the operator's NIC; ``mv`` is
our macvlan carrying the guest's MAC. Only the redirect joins hv and mv:
without it the guest cannot reach B.
"""

import json

import pytest


def _ping(ns, address, count=3):
    return ns.run('ping', '-n', '-q', '-c', str(count), '-i', '0.2', '-W',
                  '1', address, check=False).returncode == 0


@pytest.fixture
def topology(host, netns, make_netns):
    guest, remote = make_netns(), make_netns()
    host.create_veth('hv', 'gv')
    netns.ip('link', 'set', 'gv', 'netns', guest.name)
    guest.ip('addr', 'add', '10.77.0.1/24', 'dev', 'gv')
    guest.ip('link', 'set', 'gv', 'up')
    mac = json.loads(guest.ip('-j', 'link', 'show', 'dev', 'gv').stdout)[0][
        'address']
    # the operator's NIC
    netns.ip('link', 'add', 'low', 'type', 'veth', 'peer', 'name', 'rv')
    netns.ip('link', 'set', 'rv', 'netns', remote.name)
    netns.ip('link', 'set', 'low', 'up')
    remote.ip('addr', 'add', '10.77.0.2/24', 'dev', 'rv')
    remote.ip('link', 'set', 'rv', 'up')
    host.create_macvlan('mv', 'low', mode='bridge', mac=mac)
    return guest, remote


@pytest.mark.parametrize('qdisc', ['clsact', 'ingress'])
def test_redirect_carries_packets_both_ways(host, netns, topology, qdisc):
    guest, remote = topology
    assert not _ping(guest, '10.77.0.2', count=1), \
        'reachable before the redirect: the test proves nothing'
    host.redirect('hv', 'mv', qdisc)
    for dev in ('hv', 'mv'):
        shown = netns.run('tc', 'filter', 'show', 'dev', dev,
                          'ingress').stdout
        assert 'u32' in shown and 'mirred' in shown
    assert _ping(guest, '10.77.0.2')
    # and the other way round
    assert _ping(remote, '10.77.0.1')
    host.unredirect('hv', 'mv', qdisc)
    assert not _ping(guest, '10.77.0.2', count=2)


def test_redirect_survives_a_rebuilt_macvlan(host, netns, topology):
    """The lower side goes away and comes back; the tap stays."""
    guest, _remote = topology
    host.redirect('hv', 'mv')
    assert _ping(guest, '10.77.0.2')
    mac = host.get_link('mv')['mac']
    host.delete('mv')
    assert not _ping(guest, '10.77.0.2', count=1)
    host.create_macvlan('mv', 'low', mode='bridge', mac=mac)
    host.redirect('hv', 'mv')
    assert _ping(guest, '10.77.0.2')
