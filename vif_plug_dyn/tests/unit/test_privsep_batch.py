"""The batch engine's logic against a fake kernel (see fake_rtnl)."""

import errno
import fcntl
import os
import time

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn.privsep import batch
from vif_plug_dyn.privsep import handlers
from vif_plug_dyn.privsep import netlink
from vif_plug_dyn.privsep import ops
from vif_plug_dyn.privsep import tuntap
from vif_plug_dyn.tests.unit import fake_rtnl

OURS = 'vif_plug_dyn:t'


@pytest.fixture
def kernel(monkeypatch):
    fake = fake_rtnl.FakeKernel()
    fake.ioctl_taps = []

    def create_tap(name, multi_queue=False, owner=None, owner_group=None):
        if name in fake.links:
            raise OSError(errno.EBUSY, 'busy')
        fake.ioctl_taps.append((name, multi_queue, owner, owner_group))
        fake.add(name, kind='tun')

    monkeypatch.setattr(tuntap, 'create_tap', create_tap)
    monkeypatch.setattr(tuntap, 'macvtap_dev_number',
                        lambda name, index, sysfs='/sys': _macvtap_rdev(
                            fake, name, index))
    fake.nodes = []
    monkeypatch.setattr(tuntap, 'ensure_macvtap_node',
                        lambda index, rdev, dev='/dev': (
                            fake.nodes.append(index) or
                            ('/dev/tap%d' % index, True)))
    monkeypatch.setattr(tuntap, 'remove_macvtap_node',
                        lambda index, rdev, dev='/dev': fake.nodes.remove(
                            index) or True)
    return fake


def _macvtap_rdev(fake, name, index):
    link = fake.links.get(name)
    if link is None or link.kind != 'macvtap':
        raise FileNotFoundError(errno.ENOENT, 'no macvtap')
    return 0xF000 + index


def run(kernel, batch_ops, stop=True):
    return batch.Batch(kernel, stop).run(ops.validate_batch(batch_ops))


def statuses(results):
    return [r['status'] for r in results]


def kinds_sent(kernel):
    return [k for k, _m in kernel.log]


class TestCreate:
    def test_bridge_and_tap_on_it(self, kernel):
        results = run(kernel, [
            ops.create_bridge('br0', tag='t', mtu=1450),
            ops.create_tap('tap0', master='br0', mtu=1450, tag='t',
                           multi_queue=True, owner=107)])
        assert statuses(results) == ['ok', 'ok']
        br, tap = kernel.links['br0'], kernel.links['tap0']
        assert br.kind == 'bridge' and br.alias == OURS and br.up
        assert tap.master == br.index and tap.mtu == 1450
        assert tap.alias == OURS and tap.up
        # Both in the batch's creation group, chosen by the daemon.
        low, high = batch.TRANSIENT_GROUP_RANGE
        assert low <= tap.group <= high and br.group == tap.group
        assert kernel.ioctl_taps == [('tap0', True, 107, None)]
        # NOTE(vpd): link-watch sync (getlink) before the tap is enslaved
        setlinks = [m for m in kernel.sent('newlink')
                    if m.get_attr('IFLA_IFNAME') == 'tap0']
        assert setlinks[-1].get_attr('IFLA_MASTER') == br.index
        kinds = kinds_sent(kernel)
        tap_sync = max(i for i, (k, m) in enumerate(kernel.log)
                       if k == 'getlink' and
                       m.get_attr('IFLA_IFNAME') == 'tap0')
        assert tap_sync < len(kinds) - 1

    def test_existing_name_refused_without_kernel_change(self, kernel):
        kernel.add('tap0', kind='tun')
        results = run(kernel, [ops.create_tap('tap0')])
        assert results[0]['status'] == 'error'
        assert results[0]['error']['type'] == 'NetlinkOperationFailed'
        assert results[0]['error']['kwargs']['errno'] == errno.EEXIST
        assert kernel.ioctl_taps == []
        assert set(kinds_sent(kernel)) == {'getlink'}

    def test_missing_master_refused(self, kernel):
        results = run(kernel, [ops.create_tap('tap0', master='nobr')])
        assert results[0]['error']['type'] == 'DeviceNotFound'
        assert kernel.ioctl_taps == []

    def test_veth_both_ends_marked(self, kernel):
        results = run(kernel, [ops.create_veth('va', 'vb', tag='t')])
        assert statuses(results) == ['ok']
        assert kernel.links['va'].alias == OURS
        assert kernel.links['vb'].alias == OURS

    def test_macvtap_gets_its_node(self, kernel):
        kernel.add('eth0', kind=None, up=True)
        result = run(kernel, [ops.create_macvtap('mt0', 'eth0',
                                                 mode='vepa')])[0]
        index = kernel.links['mt0'].index
        assert result['status'] == 'ok'
        assert result['ifindex'] == index
        assert result['dev_node'] == '/dev/tap%d' % index
        assert kernel.nodes == [index]
        newlink = kernel.sent('newlink')[0]
        assert newlink.get_attr('IFLA_LINK') == kernel.links['eth0'].index
        # deleting it removes the node it made
        run(kernel, [ops.delete(['mt0'])])
        assert kernel.nodes == []


class TestOwnership:
    def test_lo_is_not_ours(self, kernel):
        for op in (ops.delete(['lo']), ops.set_mtu('lo', 1500),
                   ops.set_state('lo', False), ops.set_nomaster('lo'),
                   ops.set_mac('lo', '52:54:00:00:00:09'),
                   ops.set_alias('lo', 'mine-now')):
            kernel.log.clear()
            result = run(kernel, [op])[0]
            assert result['status'] == 'error'
            assert result['error']['type'] == 'DeviceNotOwned'
            assert set(kinds_sent(kernel)) <= {'getlink'}

    def test_delete_refused_as_a_whole(self, kernel):
        kernel.add('tap1', kind='tun', alias=OURS)
        kernel.add('br-op', kind='bridge', alias='uplink bridge')
        result = run(kernel, [ops.delete(['tap1', 'br-op'])])[0]
        assert result['error']['type'] == 'DeviceNotOwned'
        assert result['error']['kwargs']['device'] == 'br-op'
        assert 'tap1' in kernel.links and 'br-op' in kernel.links
        assert kernel.sent('dellink') == []

    def test_adopting_an_operator_bridge(self, kernel):
        br = kernel.add('br-op', kind='bridge')
        results = run(kernel, [ops.create_tap('tap1', master='br-op'),
                               ops.set_master('tap1', 'br-op')])
        assert statuses(results) == ['ok', 'ok']
        assert kernel.links['tap1'].master == br.index
        # but not reconfiguring it
        result = run(kernel, [ops.set_mtu('br-op', 9000)])[0]
        assert result['error']['type'] == 'DeviceNotOwned'

    def test_foreign_port_cannot_be_released(self, kernel):
        br = kernel.add('br-op', kind='bridge')
        kernel.add('eth1', master=br.index)
        result = run(kernel, [ops.set_nomaster('eth1')])[0]
        assert result['error']['type'] == 'DeviceNotOwned'
        assert kernel.links['eth1'].master == br.index

    def test_redirect_needs_both_ours(self, kernel):
        kernel.add('tap1', kind='tun', alias=OURS)
        kernel.add('eth0')
        result = run(kernel, [ops.redirect('tap1', 'eth0')])[0]
        assert result['error']['type'] == 'DeviceNotOwned'
        assert kernel.sent('newqdisc') == []

    def test_vf_on_operator_pf_allowed(self, kernel):
        pf = kernel.add('enp1s0f0')
        result = run(kernel, [ops.set_vf('enp1s0f0', 2, vlan=10,
                                         spoofchk=True)])[0]
        assert result['status'] == 'ok'
        msg = kernel.sent('newlink')[-1]
        assert msg['index'] == pf.index
        info = msg.get_attr('IFLA_VFINFO_LIST').get_attr('IFLA_VF_INFO')
        assert info.get_attr('IFLA_VF_VLAN')['vlan'] == 10


class TestDelete:
    def test_many_go_through_one_transient_group(self, kernel, monkeypatch):
        for i in range(5):
            kernel.add('tap%d' % i, kind='tun', alias=OURS, group=7)
        foreign = kernel.add('eth9', group=0x80000001)
        draws = iter([0x80000001, 0x90000000])
        monkeypatch.setattr(batch.random, 'randint',
                            lambda low, high: next(draws))
        result = run(kernel, [ops.delete(['tap%d' % i for i in range(5)])])[0]
        assert result['status'] == 'ok'
        assert result['deleted'] == ['tap%d' % i for i in range(5)]
        # the group already used by eth9 was skipped
        groups = {m.get_attr('IFLA_GROUP') for m in kernel.sent('newlink')}
        assert groups == {0x90000000}
        dellinks = kernel.sent('dellink')
        assert len(dellinks) == 1
        assert dellinks[0].get_attr('IFLA_GROUP') == 0x90000000
        assert list(kernel.links) == ['lo', 'eth9']
        assert kernel.links['eth9'].group == foreign.group

    def test_one_is_a_plain_dellink(self, kernel):
        tap = kernel.add('tap0', kind='tun', alias=OURS)
        run(kernel, [ops.delete('tap0')])
        dellinks = kernel.sent('dellink')
        assert [m['index'] for m in dellinks] == [tap.index]
        assert kernel.sent('newlink') == []

    def test_missing(self, kernel):
        kernel.add('tap0', kind='tun', alias=OURS)
        result = run(kernel, [ops.delete(['tap0', 'gone'])])[0]
        assert result['status'] == 'ok' and result['missing'] == ['gone']
        kernel.add('tap0', kind='tun', alias=OURS)
        result = run(kernel, [ops.delete(['tap0', 'gone'],
                                         missing_ok=False)])[0]
        assert result['error']['type'] == 'DeviceNotFound'
        assert 'tap0' in kernel.links

    def test_big_batches_use_one_dump(self, kernel):
        names = ['tap%d' % i for i in range(40)]
        for name in names:
            kernel.add(name, kind='tun', alias=OURS)
        run(kernel, [ops.delete(names)])
        # one full dump, one the kernel filters to macvtaps
        assert kernel.dumps == [(None, None), (None, 'macvtap')]
        assert kernel.sent('getlink') == []
        assert list(kernel.links) == ['lo']

    def test_small_batches_look_names_up(self, kernel):
        run(kernel, [ops.create_tap('tap0')])
        assert kernel.dumps == []


class TestStopAndRollback:
    def test_kernel_error_rolls_back_what_the_batch_made(self, kernel):
        kernel.fail[('setlink', 'tap1')] = errno.EINVAL
        results = run(kernel, [ops.create_bridge('br0'),
                               ops.create_tap('tap0', master='br0'),
                               ops.create_tap('tap1', master='br0'),
                               ops.create_tap('tap2', master='br0')])
        assert statuses(results) == ['rolled_back', 'rolled_back', 'error',
                                     'rolled_back']
        error = results[2]['error']
        assert error['type'] == 'NetlinkOperationFailed'
        assert error['kwargs']['errno'] == errno.EINVAL
        assert error['kwargs']['operation'] == 'setlink'
        assert error['kwargs']['device'] == 'tap1'
        assert list(kernel.links) == ['lo']

    def test_barrier_not_sent_after_an_error(self, kernel):
        kernel.add('old', kind='tun', alias=OURS, mtu=1500)
        kernel.fail[('setlink', 'tap0')] = errno.EINVAL
        results = run(kernel, [ops.create_tap('tap0'),
                               ops.set_mtu('old', 1400),
                               ops.create_tap('tap1')])
        assert statuses(results) == ['error', 'skipped', 'skipped']
        assert kernel.links['old'].mtu == 1500
        assert 'tap0' not in kernel.links and 'tap1' not in kernel.links

    def test_barrier_applied_stays_applied(self, kernel):
        kernel.add('old', kind='tun', alias=OURS, mtu=1500)
        kernel.fail[('setlink', 'tap1')] = errno.EINVAL
        results = run(kernel, [ops.set_mtu('old', 1450),
                               ops.create_tap('tap1')])
        # a change to a device the batch did not create is not undone
        assert statuses(results) == ['ok', 'error']
        assert kernel.links['old'].mtu == 1450
        assert 'tap1' not in kernel.links

    def test_rollback_failure_is_reported(self, kernel):
        kernel.fail[('setlink', 'tap1')] = errno.EINVAL
        kernel.fail[('dellink', 'tap1')] = errno.EBUSY
        results = run(kernel, [ops.create_tap('tap0'),
                               ops.create_tap('tap1')])
        assert statuses(results) == ['rolled_back', 'error']
        assert 'tap1' in results[1]['rollback_error']
        assert 'tap0' not in kernel.links

    def test_refusal_stops_before_the_kernel(self, kernel):
        results = run(kernel, [ops.create_tap('tap0'), ops.delete(['lo']),
                               ops.create_tap('tap1')])
        assert statuses(results) == ['rolled_back', 'error', 'skipped']
        assert 'tap0' not in kernel.links and 'tap1' not in kernel.links
        assert [r['name'] for r in (results[0], results[2])] == [
            'tap0', 'tap1']

    def test_failed_create_never_deletes_a_stranger(self, kernel):
        # the name appears between lookup and create: EEXIST from the
        # kernel; rollback must not delete the other owner's device.
        kernel.fail[('create', 'br0')] = errno.EEXIST
        results = run(kernel, [ops.create_tap('tap0'),
                               ops.create_bridge('br0')])
        assert statuses(results) == ['rolled_back', 'error']
        assert [m['index'] for m in kernel.sent('dellink')] != []
        stranger = kernel.add('br0', kind='bridge')
        assert kernel.links['br0'] is stranger

    def test_rollback_of_veth_pair(self, kernel):
        kernel.fail[('setlink', 'tapx')] = errno.EINVAL
        results = run(kernel, [ops.create_veth('va', 'vb'),
                               ops.create_tap('tapx')])
        assert statuses(results) == ['rolled_back', 'error']
        assert list(kernel.links) == ['lo']


class TestBestEffort:
    def test_others_applied_failed_one_cleaned(self, kernel):
        kernel.fail[('setlink', 'tap1')] = errno.EINVAL
        results = run(kernel, [ops.create_tap('tap0'),
                               ops.create_tap('tap1'),
                               ops.create_tap('tap2'),
                               ops.delete(['lo'])], stop=False)
        assert statuses(results) == ['ok', 'error', 'ok', 'error']
        assert sorted(kernel.links) == ['lo', 'tap0', 'tap2']


class TestRedirect:
    def test_steering_devices_made_in_the_batch(self, kernel):
        """Creations first, redirects after: the batch learns every new
        ifindex in one round and replaces no qdisc on a new device."""
        kernel.add('eth0', kind='veth')
        count = 40
        batch = [ops.create_tap('tap%d' % n) for n in range(count)]
        batch += [ops.create_macvlan('mv%d' % n, 'eth0')
                  for n in range(count)]
        batch += [ops.redirect('tap%d' % n, 'mv%d' % n)
                  for n in range(count)]
        dumps_before = len(kernel.dumps)
        results = run(kernel, batch)
        assert set(statuses(results)) == {'ok'}
        assert kernel.sent('delqdisc') == []
        assert len(kernel.sent('newqdisc')) == 2 * count
        assert len(kernel.sent('newfilter')) == 2 * count
        # One dump before the batch, one to learn every new index.
        assert len(kernel.dumps) - dumps_before == 2
        assert kernel.sent('getlink') == []
        pairs = set()
        for msg in kernel.sent('newfilter'):
            act = msg.get_attr('TCA_OPTIONS').get_attr(
                'TCA_U32_ACT').get_attr('TCA_ACT_PRIO_1')
            pairs.add((msg['index'], act.get_attr('TCA_ACT_OPTIONS')
                       .get_attr('TCA_MIRRED_PARMS')['ifindex']))
        tap, mv = kernel.links['tap7'], kernel.links['mv7']
        assert (tap.index, mv.index) in pairs and \
            (mv.index, tap.index) in pairs

    def test_both_directions(self, kernel):
        tap = kernel.add('tap0', kind='tun', alias=OURS)
        mv = kernel.add('mv0', kind='macvlan', alias=OURS)
        tap.qdisc = 'clsact'  # an old one of ours is replaced
        result = run(kernel, [ops.redirect('tap0', 'mv0')])[0]
        assert result['status'] == 'ok'
        filters = kernel.sent('newfilter')
        assert len(filters) == 2
        pairs = []
        for msg in filters:
            act = msg.get_attr('TCA_OPTIONS').get_attr(
                'TCA_U32_ACT').get_attr('TCA_ACT_PRIO_1')
            target = act.get_attr('TCA_ACT_OPTIONS').get_attr(
                'TCA_MIRRED_PARMS')['ifindex']
            pairs.append((msg['index'], target))
        assert sorted(pairs) == sorted([(tap.index, mv.index),
                                        (mv.index, tap.index)])
        assert tap.qdisc == 'clsact' and mv.qdisc == 'clsact'
        result = run(kernel, [ops.unredirect('tap0', 'mv0')])[0]
        assert result['status'] == 'ok'
        assert tap.qdisc is None and mv.qdisc is None
        # again: nothing to remove is fine
        assert run(kernel, [ops.unredirect('tap0', 'mv0')])[0][
            'status'] == 'ok'


def test_every_operation_has_a_handler():
    assert set(handlers.HANDLERS) == set(ops.SCHEMAS)


def _journal_file(pid, lines):
    """Another daemon's journal in this namespace."""
    from vif_plug_dyn.privsep import journal
    path = os.path.join(journal.JOURNAL_DIR, 'creating-%s-%d' % (
        journal.namespace_id(), pid))
    os.makedirs(journal.JOURNAL_DIR, exist_ok=True)
    with open(path, 'w') as handle:
        handle.write(''.join('%s %s\n' % line for line in lines))
    return path


class TestJournal:
    def test_a_dead_daemons_unmarked_devices_go_first(self, kernel):
        path = _journal_file(999999999, [
            ('tun', 'tapdead'), ('macvlan', 'mvdead'), ('tun', 'tapmarked'),
            ('tun', 'brwrongkind'), ('tun', 'tapnever')])
        kernel.add('tapdead', kind='tun')
        kernel.add('mvdead', kind='macvlan')
        kernel.add('tapmarked', kind='tun', alias=OURS)
        kernel.add('brwrongkind', kind='bridge')
        gone = batch.Batch(kernel, True).remove_orphans()
        assert sorted(gone) == ['mvdead', 'tapdead']
        assert 'tapmarked' in kernel.links and 'brwrongkind' in kernel.links
        # Handled once: the journal is gone.
        assert not os.path.exists(path)
        assert batch.Batch(kernel, True).remove_orphans() == []

    def test_a_live_daemons_journal_is_left_alone(self, kernel):
        path = _journal_file(999999998, [('tun', 'tapbusy')])
        kernel.add('tapbusy', kind='tun')
        fd = os.open(path, os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            assert batch.Batch(kernel, True).remove_orphans() == []
            assert 'tapbusy' in kernel.links and os.path.exists(path)
        finally:
            os.close(fd)

    def test_every_batch_ends_with_an_empty_journal(self, kernel,
                                                    monkeypatch):
        from vif_plug_dyn.privsep import journal
        monkeypatch.setattr(netlink, 'RtnlSocket', lambda: kernel)
        results = batch.apply(ops.validate_batch([ops.create_tap('tapj0'),
                                                  ops.create_tap('lo')]))
        assert statuses(results) == ['rolled_back', 'error']
        assert 'tapj0' not in kernel.links
        own = journal.JOURNAL._file(*journal.JOURNAL._key)
        assert os.path.getsize(own) == 0


class TestJournalIdentity:
    @pytest.fixture
    def journal(self):
        from vif_plug_dyn.privsep import journal
        journal.JOURNAL.close()
        os.makedirs(journal.JOURNAL_DIR, exist_ok=True)
        return journal

    def _file(self, journal, name, lines=(), age=0):
        path = os.path.join(journal.JOURNAL_DIR, name)
        with open(path, 'w') as handle:
            handle.write(''.join('%s %s\n' % line for line in lines))
        if age:
            stamp = time.time() - age
            os.utime(path, (stamp, stamp))
        return path

    def test_keyed_by_the_namespace_cookie(self, journal):
        namespace = journal.namespace_id()
        # NOTE(vpd): SO_NETNS_COOKIE exists since Linux 5.14.
        assert namespace.startswith('c') and namespace[1:].isdigit()
        journal.JOURNAL.note('tun', 'tapx')
        own = journal.JOURNAL._file(*journal.JOURNAL._key)
        assert os.path.basename(own) == 'creating-%s-%d' % (namespace,
                                                             os.getpid())

    def test_without_cookies_the_inode(self, journal, monkeypatch):
        def refuse(*args):
            raise OSError(92, 'Protocol not available')

        monkeypatch.setattr(journal.socket.socket, 'getsockopt', refuse)
        assert journal.namespace_id() == 'i%d' % os.stat(
            '/proc/self/ns/net').st_ino

    def test_stale_journals_are_removed(self, journal, kernel):
        other = 'c%d' % (2 ** 60 + 7)
        gone = [self._file(journal, 'creating-%s-11' % other),
                self._file(journal, 'creating-4026532178-12',
                           [('tun', 'tapold')],
                           age=journal.STALE_AFTER + 60),
                self._file(journal, 'creating-%s-13' % other,
                           [('tun', 'tapx')], age=journal.STALE_AFTER + 60)]
        kept = [self._file(journal, 'creating-%s-14' % other,
                           [('tun', 'tapy')]),
                self._file(journal, 'creating-%s-15' % other),
                self._file(journal, 'creating-4026532179-16',
                           [('tun', 'tapold')])]
        kernel.add('tapold', kind='tun')
        fd = os.open(kept[1], os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            batch.Batch(kernel, True).remove_orphans()
        finally:
            os.close(fd)
        assert [os.path.exists(p) for p in gone] == [False] * 3
        assert [os.path.exists(p) for p in kept] == [True] * 3
        # What an inode-keyed journal lists is never acted on: that inode
        # may be another namespace's now.
        assert 'tapold' in kernel.links

    def test_an_exiting_daemon_removes_its_empty_journal(self, journal):
        journal.JOURNAL.note('tun', 'tapx')
        own = journal.JOURNAL._file(*journal.JOURNAL._key)
        journal.JOURNAL.remove()
        assert os.path.exists(own)      # it lists a device: kept
        journal.JOURNAL.clear()
        journal.JOURNAL.remove()
        assert not os.path.exists(own)


class TestCreationGroups:
    def test_a_batch_released_whole_is_one_group_delete(self, kernel):
        names = ['tapg%d' % n for n in range(40)]
        run(kernel, [ops.create_tap(n) for n in names])
        groups = {kernel.links[n].group for n in names}
        assert len(groups) == 1
        (group,) = groups
        low, high = batch.TRANSIENT_GROUP_RANGE
        assert low <= group <= high
        setlinks_before = len(kernel.sent('setlink'))
        results = run(kernel, [ops.delete(names)])
        assert results[0]['status'] == 'ok'
        assert not set(names) & set(kernel.links)
        # No device was moved into a transient group first.
        assert len(kernel.sent('setlink')) == setlinks_before
        assert [m.get_attr('IFLA_GROUP') for m in kernel.sent('dellink')
                ][-1] == group

    def test_part_of_a_batch_goes_through_a_transient_group(self, kernel):
        names = ['tapg%d' % n for n in range(40)]
        run(kernel, [ops.create_tap(n) for n in names])
        (group,) = {kernel.links[n].group for n in names}
        run(kernel, [ops.delete(names[:39])])
        assert sorted(kernel.links) == sorted(['lo', names[39]])
        assert kernel.links[names[39]].group == group

    def test_a_stranger_in_the_group_is_never_deleted(self, kernel):
        names = ['tapg%d' % n for n in range(4)]
        run(kernel, [ops.create_tap(n) for n in names])
        (group,) = {kernel.links[n].group for n in names}
        # Someone (root, not the caller) puts a device of theirs in it.
        kernel.add('optap', kind='tun', group=group)
        results = run(kernel, [ops.delete(names)])
        assert results[0]['deleted'] == names
        assert sorted(kernel.links) == ['lo', 'optap']
        # Not a group delete of the creation group: a transient one.
        assert group not in [m.get_attr('IFLA_GROUP')
                             for m in kernel.sent('dellink')]

    def test_groups_checked_after_the_batchs_own_changes(self, kernel):
        """The group-delete decision reads every device's group and
        owner from one dump taken after the batch's last request."""
        mine = ['tapg%d' % n for n in range(3)]
        run(kernel, [ops.create_tap(n) for n in mine])
        (group,) = {kernel.links[n].group for n in mine}
        results = run(kernel, [ops.set_link('tapg2', mtu=1400),
                               ops.delete(mine[:2])])
        assert [r['status'] for r in results] == ['ok', 'ok']
        assert sorted(kernel.links) == ['lo', 'tapg2']
        assert kernel.links['tapg2'].group == group

    def test_a_device_that_stopped_being_ours_stops_the_delete(self,
                                                               kernel):
        names = ['tapg%d' % n for n in range(3)]
        run(kernel, [ops.create_tap(n) for n in names])
        b = batch.Batch(kernel, True)
        b._prefetch([ops.delete(names)])
        # Changed (by root) after the batch looked: the decision reads the
        # kernel again.
        kernel.links['tapg1'].alias = 'someone else'
        b.sizes_fresh = False
        with pytest.raises(exception.DeviceNotOwned):
            b.delete_links(0, names, True)
        assert set(names) <= set(kernel.links)
