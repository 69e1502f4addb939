"""The helper's rules for borrowed taps (a hypervisor's, cabled by the
library), checked on the batch engine with a fake netlink socket: what is
sent, what is refused before anything is sent."""

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn.privsep import batch
from vif_plug_dyn.privsep import nlmsg
from vif_plug_dyn.privsep import ops
from vif_plug_dyn.tests.unit import test_privsep_adoption as adoption

PORT = '7d3c2a8e-1b4f-4c55-9d0a-2f6b8e9c1a3d'
MARK = 'vif_plug_dyn.borrowed:' + PORT


class MacSocket(adoption.FakeSocket):
    """Also answers with the MAC address of the links that have one."""

    def _payload(self, name):
        payload = super()._payload(name)
        mac = self.links[name].get('mac')
        if mac:
            payload += nlmsg.nla(nlmsg.IFLA_ADDRESS, bytes.fromhex(
                mac.replace(':', '')))
        return payload


LINKS = {
    'tapnova00001': {'index': 7, 'kind': 'tun', 'mac': 'fe:16:3e:00:00:01'},
    'tapnova00002': {'index': 8, 'kind': 'tun', 'mac': 'fe:16:3e:00:00:02',
                     'alias': MARK},
    'tunvpn0': {'index': 9, 'kind': 'tun'},
    'tapforeign0': {'index': 10, 'kind': 'tun', 'mac': 'fe:16:3e:00:00:03',
                    'alias': 'someone else'},
    'vpd0': {'index': 11, 'kind': 'tun', 'mac': 'fe:16:3e:00:00:04',
             'alias': 'vif_plug_dyn:' + PORT},
    'eth1': {'index': 3, 'alias': 'vif_plug_dyn.adopted:hostif.eth1',
             'mac': '52:54:00:00:00:09'},
    'veth0': {'index': 12, 'kind': 'veth', 'mac': '52:54:00:00:00:0a'},
    'br-red': {'index': 4, 'kind': 'bridge', 'mac': '52:54:00:00:00:0b'},
}


def run(*batch_ops, stop=True):
    sock = MacSocket({k: dict(v) for k, v in LINKS.items()})
    results = batch.Batch(sock, stop).run(ops.validate_batch(list(
        batch_ops)))
    return results, sock.sent


def error(result):
    return (result['error'] or {}).get('type'), \
        (result['error'] or {}).get('message') or ''


def test_borrow_marks_the_tap_then_it_may_be_cabled():
    results, sent = run(ops.borrow('tapnova00001', PORT),
                        ops.set_link('tapnova00001', master='br-red',
                                     up=True),
                        ops.set_nomaster('tapnova00001'),
                        ops.set_link('tapnova00001', up=False))
    assert [r['status'] for r in results] == ['ok'] * 4
    assert sent[0]['index'] == 7
    assert sent[0].get_attr('IFLA_IFALIAS') == MARK
    assert sent[1].get_attr('IFLA_MASTER') == 4
    assert sent[2].get_attr('IFLA_MASTER') == 0


def test_borrowing_again_under_a_new_tag_is_fine():
    results, sent = run(ops.borrow('tapnova00002', 'another-port'))
    assert results[0]['status'] == 'ok'
    assert sent[0].get_attr('IFLA_IFALIAS') == \
        'vif_plug_dyn.borrowed:another-port'


@pytest.mark.parametrize('name, reason', [
    ('vpd0', 'vif_plug_dyn created it'),
    ('eth1', 'adopted host interface'),
    ('tunvpn0', 'a tun device, not a tap'),
    ('veth0', 'a veth device, not a tap'),
    ('br-red', 'a bridge device, not a tap'),
    ('tapforeign0', "alias 'someone else'"),
])
def test_only_an_unmarked_foreign_tap_is_borrowed(name, reason):
    results, sent = run(ops.borrow(name, PORT))
    kind, message = error(results[0])
    assert kind == 'DeviceNotBorrowable'
    assert name in message and reason in message
    assert sent == []


def test_a_missing_tap_is_not_borrowed():
    results, sent = run(ops.borrow('tapgone00001', PORT))
    assert error(results[0])[0] == 'DeviceNotFound' and sent == []


@pytest.mark.parametrize('change', [
    {'mtu': 1400}, {'mac': '52:54:00:00:00:99'}])
def test_a_borrowed_tap_changes_only_its_cable(change):
    results, sent = run(ops.set_link('tapnova00002', **change))
    kind, message = error(results[0])
    assert kind == 'DeviceNotOwned' and 'tapnova00002' in message
    assert sent == []


def test_a_borrowed_tap_is_never_deleted_or_retagged():
    for op in (ops.delete(['tapnova00002']),
               ops.set_alias('tapnova00002', 'mine-now'),
               ops.release('tapnova00002'),
               ops.redirect('tapnova00002', 'vpd0')):
        results, sent = run(op)
        assert error(results[0])[0] == 'DeviceNotOwned', op
        assert sent == []


def test_unborrowed_taps_stay_out_of_reach():
    results, sent = run(ops.set_link('tapnova00001', master='br-red'))
    assert error(results[0])[0] == 'DeviceNotOwned' and sent == []


def test_give_back_clears_the_marker():
    results, sent = run(ops.set_nomaster('tapnova00002'),
                        ops.give_back('tapnova00002'),
                        ops.set_link('tapnova00002', master='br-red'))
    assert [r['status'] for r in results][:2] == ['ok', 'ok']
    assert sent[1].get_attr('IFLA_IFALIAS') == ''
    # Given back, it is out of reach again (nothing more was sent).
    assert error(results[2])[0] == 'DeviceNotOwned' and len(sent) == 2


def test_give_back_of_a_tap_its_maker_deleted():
    results, sent = run(ops.give_back('tapgone00001'))
    assert results[0]['status'] == 'ok' and results[0]['missing']
    results, sent = run(ops.give_back('tapgone00001', missing_ok=False))
    assert error(results[0])[0] == 'DeviceNotFound' and sent == []


def test_give_back_of_a_tap_never_borrowed():
    results, sent = run(ops.give_back('tapnova00001'))
    assert error(results[0])[0] == 'DeviceNotOwned' and sent == []


def test_builders_validate():
    with pytest.raises(exception.InvalidField):
        ops.borrow('tap with space', PORT)
    with pytest.raises(exception.InvalidField):
        ops.borrow('tapnova00001', 'bad tag')
    assert ops.parse_borrowed(MARK) == PORT
    assert ops.parse_alias(MARK) == (False, None)
    assert ops.parse_adopted(MARK) is None
    with pytest.raises(exception.InvalidField):
        ops.release('eth1', alias=MARK)
