"""The helper's ownership rules for adopted devices, checked on the batch
engine with a fake netlink socket (no kernel): what is sent, what is
refused before anything is sent."""

import errno
import struct

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from vif_plug_dyn.privsep import addresses
from vif_plug_dyn.privsep import batch
from vif_plug_dyn.privsep import nlmsg
from vif_plug_dyn.privsep import ops
from vif_plug_dyn.privsep import tuntap
from vif_plug_dyn.tests.unit import fake_rtnl

_HDR = struct.Struct('=IHHII')


class FakeSocket:
    """Answers RTM_GETLINK from a table, acks every other request and
    keeps it (decoded) in :attr:`sent`."""

    def __init__(self, links):
        self.links = links
        self.sent = []
        self._pending = []
        self._seq = 0

    def queue(self, build, cookie):
        self._seq += 1
        self._pending.append((build(self._seq), cookie))

    def flush(self):
        pending, self._pending = self._pending, []
        answers = []
        for message, cookie in pending:
            mtype = _HDR.unpack_from(message)[1]
            if mtype == nlmsg.RTM_GETLINK:
                name = self._name(message)
                if name in self.links:
                    answers.append((cookie, 0, None, self._payload(name)))
                else:
                    answers.append((cookie, errno.ENODEV, None, None))
                continue
            decoder = ifaddrmsg if mtype in (
                addresses.RTM_NEWADDR, addresses.RTM_DELADDR) else ifinfmsg
            msg = decoder(message)
            msg.decode()
            self.sent.append(msg)
            answers.append((cookie, 0, None, None))
        return answers

    def dump(self, build, visit=None):
        payloads = [self._payload(name) for name in self.links]
        if visit is None:
            return payloads
        for payload in payloads:
            visit(memoryview(payload), 0, len(payload))
        return []

    @staticmethod
    def _name(message):
        for atype, start, end in nlmsg.attrs(message, 16 + 16,
                                             len(message)):
            if atype == nlmsg.IFLA_IFNAME:
                return message[start:end].split(b'\0')[0].decode()
        return None

    def _payload(self, name):
        info = self.links[name]
        attrs = nlmsg.nla_str(nlmsg.IFLA_IFNAME, name)
        if info.get('alias'):
            attrs += nlmsg.nla(nlmsg.IFLA_IFALIAS, info['alias'].encode())
        attrs += nlmsg.nla_nested(nlmsg.IFLA_LINKINFO, nlmsg.nla_str(
            nlmsg.IFLA_INFO_KIND, info.get('kind', 'veth')))
        return nlmsg.ifinfo(info['index']) + attrs


LINKS = {
    'eth0': {'index': 2, 'alias': 'uplink'},
    'eth1': {'index': 3, 'alias': 'vif_plug_dyn.adopted:hostif.br0'},
    'br0': {'index': 4, 'alias': 'vif_plug_dyn:hostif.br0',
            'kind': 'bridge'},
    'tap1': {'index': 5, 'alias': 'vif_plug_dyn:port-1', 'kind': 'tun'},
}


def run(*batch_ops, stop=True):
    sock = FakeSocket({k: dict(v) for k, v in LINKS.items()})
    results = batch.Batch(sock, stop).run(ops.validate_batch(list(
        batch_ops)))
    return results, sock.sent


def error_type(result):
    return (result['error'] or {}).get('type')


def test_adopting_a_foreign_device_sets_the_marker():
    results, sent = run(ops.adopt('eth0', 'hostif.eth0'),
                        ops.set_link('eth0', mtu=9000, up=True))
    assert [r['status'] for r in results] == ['ok', 'ok']
    assert results[0]['previous_alias'] == 'uplink'
    assert sent[0]['index'] == 2
    # The marker records a digest of the alias it had.
    assert sent[0].get_attr('IFLA_IFALIAS') == \
        'vif_plug_dyn.adopted:hostif.eth0#' + ops.alias_digest('uplink')
    assert sent[1].get_attr('IFLA_MTU') == 9000


def test_a_device_the_library_created_is_not_adopted():
    results, sent = run(ops.adopt('br0', 'hostif.x'))
    assert error_type(results[0]) == 'DeviceAlreadyOwned'
    assert sent == []


def test_foreign_devices_stay_out_of_reach():
    for op in (ops.set_link('eth0', mtu=1400), ops.release('eth0'),
               ops.add_address('eth0', '192.0.2.1', 24),
               ops.del_address('eth0', '192.0.2.1', 24),
               ops.delete('eth0')):
        results, sent = run(op)
        assert error_type(results[0]) == 'DeviceNotOwned', op
        assert sent == []


def test_adopted_devices_are_configured_but_never_deleted():
    results, sent = run(ops.set_link('eth1', mtu=1400, master='br0'),
                        ops.add_address('eth1', '192.0.2.1', 24),
                        ops.del_address('eth1', '2001:db8::1', 64))
    assert [r['status'] for r in results] == ['ok'] * 3
    assert sent[0].get_attr('IFLA_MASTER') == 4
    assert sent[1]['index'] == 3 and sent[1]['prefixlen'] == 24
    assert sent[2]['header']['type'] == addresses.RTM_DELADDR
    results, sent = run(ops.delete('eth1'))
    assert error_type(results[0]) == 'DeviceNotOwned' and sent == []
    # Its marker is only changed by adopt/release, never turned into a
    # "created" one (which could be deleted).
    results, sent = run(ops.set_link('eth1', tag='hostif.br0'))
    assert error_type(results[0]) == 'DeviceNotOwned' and sent == []


def test_release_gives_the_alias_back():
    results, sent = run(ops.release('eth1', 'uplink-b'))
    assert results[0]['status'] == 'ok'
    assert sent[0].get_attr('IFLA_IFALIAS') == 'uplink-b'
    results, sent = run(ops.release('eth1'), ops.set_link('eth1', mtu=1400),
                        stop=False)
    # An empty alias clears it; after the release the device is foreign.
    assert sent[0].get_attr('IFLA_IFALIAS') in ('', None)
    assert error_type(results[1]) == 'DeviceNotOwned'


def test_only_adopted_devices_are_released():
    for name in ('br0', 'eth0'):
        results, _sent = run(ops.release(name))
        assert error_type(results[0]) == 'DeviceNotOwned'


@pytest.mark.parametrize('op', [ops.set_bridge('eth1', stp=True),
                                ops.set_bond('br0', miimon=100)])
def test_settings_need_the_right_kind(op):
    results, sent = run(op)
    assert error_type(results[0]) == 'InvalidField' and sent == []


def test_set_bridge_on_our_bridge():
    results, sent = run(ops.set_bridge('br0', stp=True,
                                       forward_delay=200))
    assert results[0]['status'] == 'ok'
    data = sent[0].get_attr('IFLA_LINKINFO').get_attr('IFLA_INFO_DATA')
    assert dict(data['attrs']) == {'IFLA_BR_FORWARD_DELAY': 200,
                                   'IFLA_BR_STP_STATE': 1}


# --- the same rules on the fake kernel (handlers + engine as merged) --------

@pytest.fixture
def kernel(monkeypatch):
    fake = fake_rtnl.FakeKernel()

    def create_tap(name, multi_queue=False, owner=None, owner_group=None):
        fake.add(name, kind='tun')

    monkeypatch.setattr(tuntap, 'create_tap', create_tap)
    fake.add('eth0', alias='uplink')
    fake.add('eth1', alias='vif_plug_dyn.adopted:hostif.br1')
    fake.add('br1', kind='bridge', alias='vif_plug_dyn.adopted:hostif.br1')
    return fake


def _run(kernel, batch_ops, stop=True):
    return batch.Batch(kernel, stop).run(ops.validate_batch(batch_ops))


def test_kind_is_read_when_the_owner_lookup_left_it_out(kernel):
    # The bridge made here is looked up again (for its index) when the
    # tap joins it; set_bridge must still see a bridge.
    results = _run(kernel, [
        ops.create_bridge('br9', tag='hostif.br9'),
        ops.create_tap('t9', master='br9', tag='p9'),
        ops.set_bridge('br9', stp=True, forward_delay=300)])
    assert [r['status'] for r in results] == ['ok'] * 3
    change = kernel.sent('newlink')[-1]
    assert change['index'] == kernel.links['br9'].index
    info = change.get_attr('IFLA_LINKINFO')
    assert info.get_attr('IFLA_INFO_KIND') == 'bridge'
    assert dict(info.get_attr('IFLA_INFO_DATA')['attrs']) == {
        'IFLA_BR_FORWARD_DELAY': 300, 'IFLA_BR_STP_STATE': 1}


def test_adopted_devices_in_a_dumped_batch(kernel):
    # Over DUMP_THRESHOLD names: ownership comes from one dump.
    taps = [ops.create_tap('t%d' % n, tag='p') for n in range(40)]
    results = _run(kernel, taps + [
        ops.set_link('eth1', master='br1', mtu=9000),
        ops.set_bridge('br1', forward_delay=0),
        ops.set_link('eth0', mtu=9000)], stop=False)
    assert [r['status'] for r in results[:-1]] == ['ok'] * 42
    assert error_type(results[-1]) == 'DeviceNotOwned'
    assert kernel.links['eth1'].master == kernel.links['br1'].index
    assert kernel.links['eth1'].mtu == 9000
    assert kernel.links['eth0'].mtu == 1500
    assert kernel.dumps, 'the batch was expected to dump'


def test_adopted_devices_are_never_deleted_even_in_a_group(kernel):
    kernel.add('t1', kind='tun', alias='vif_plug_dyn:p')
    results = _run(kernel, [ops.delete(['t1', 'br1'])])
    assert error_type(results[0]) == 'DeviceNotOwned'
    assert {'t1', 'br1'} <= set(kernel.links)
    assert kernel.sent('dellink') == []


def test_adopt_then_configure_in_one_batch(kernel):
    results = _run(kernel, [ops.adopt('eth0', 'hostif.eth0'),
                            ops.set_link('eth0', mtu=9000, up=True)])
    assert [r['status'] for r in results] == ['ok', 'ok']
    assert results[0]['previous_alias'] == 'uplink'
    assert kernel.links['eth0'].alias == ops.adopted_alias(
        'hostif.eth0', ops.alias_digest('uplink'))
    assert kernel.links['eth0'].mtu == 9000


def test_a_failed_adoption_configures_nothing(kernel):
    kernel.fail[('setlink', 'eth0')] = errno.EPERM
    results = _run(kernel, [ops.adopt('eth0', 'hostif.eth0'),
                            ops.set_link('eth0', mtu=9000)], stop=False)
    assert error_type(results[0]) == 'NetlinkOperationFailed'
    assert error_type(results[1]) == 'DeviceNotOwned'
    assert kernel.links['eth0'].alias == 'uplink'


def test_release_then_nothing_more(kernel):
    results = _run(kernel, [ops.release('eth1', 'uplink-1'),
                            ops.set_link('eth1', mtu=1400)], stop=False)
    assert results[0]['status'] == 'ok'
    assert error_type(results[1]) == 'DeviceNotOwned'
    assert kernel.links['eth1'].alias == 'uplink-1'
    assert kernel.links['eth1'].mtu == 1500
