"""The daemon's policy: its file format, where it may come from, and what
the batch engine refuses with it (on the fake kernel)."""

import os
import stat

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn.privsep import batch
from vif_plug_dyn.privsep import ops
from vif_plug_dyn.privsep import policy as policy_mod
from vif_plug_dyn.privsep import tuntap
from vif_plug_dyn.tests.unit import fake_rtnl

TEXT = """
# comment
[adopt]
eth1 = state, mtu, master:br-host
br-op = state, bridge, addresses
[bridges]
br-ex =
[lower]
eth2 = bridge, vepa, vlan:42
eth3 = vlan
[vf]
ens1f0 =
"""


class TestFormat:
    def test_parse(self):
        policy = policy_mod.parse(TEXT, 'p.conf')
        assert policy.adopt == {
            'eth1': frozenset({'state', 'mtu', 'master:br-host'}),
            'br-op': frozenset({'state', 'bridge', 'addresses'})}
        assert policy.bridges == {'br-ex'}
        assert policy.lower['eth2'] == {'bridge', 'vepa', 'vlan:42'}
        assert policy.vf == {'ens1f0'} and policy.enforcing

    def test_round_trip(self):
        policy = policy_mod.parse(TEXT)
        text = policy_mod.dump(policy, ['header'], {('vf', 'ens1f0'):
                                                    ['from x']})
        assert '# from x\nens1f0 =\n' in text
        again = policy_mod.parse(text)
        assert again.to_dict() | {'source': 'x'} == \
            policy.to_dict() | {'source': 'x'}

    def test_names_are_case_sensitive(self):
        policy = policy_mod.parse('[bridges]\nBr0 =\n')
        assert policy.bridges == {'Br0'}

    @pytest.mark.parametrize('text', [
        '[adopt]\neth1 = everything\n',
        '[adopt]\neth1 = master:a/b\n',
        '[adopt]\nlo/x = state\n',
        '[lower]\neth2 = source\n',
        '[lower]\neth2 = vlan:0\n',
        '[lower]\neth2 = vlan:5000\n',
        '[bridges]\nbr0 = yes\n',
        '[vf]\npf0 = 1\n',
        '[network]\nx =\n',
        '[adopt]\neth1 = state\neth1 = mtu\n',
        '[adopt]\neth1: state\n',
        'eth1 = state\n',
        '[adopt]\n%s = state\n' % ('x' * 5000),
    ])
    def test_refused(self, text):
        with pytest.raises(ValueError) as err:
            policy_mod.parse(text, 'bad.conf')
        assert str(err.value).startswith('bad.conf: ')
        assert len(str(err.value)) < 400


class TestChecks:
    policy = policy_mod.parse(TEXT, 'p.conf')

    def test_adopt(self):
        self.policy.check_adopt('eth1')
        with pytest.raises(exception.PolicyDenied) as err:
            self.policy.check_adopt('lo')
        assert err.value.kwargs['device'] == 'lo'
        assert 'p.conf' in str(err.value)

    def test_changes(self):
        self.policy.check_change('set_link', 'eth1', 'mtu')
        self.policy.check_change('set_link', 'eth1', 'nomaster')
        for change in ('mac', 'addresses', 'master:br-ex'):
            with pytest.raises(exception.PolicyDenied):
                self.policy.check_change('set_link', 'eth1', change)
        with pytest.raises(exception.PolicyDenied):
            self.policy.check_change('set_link', 'br-op', 'nomaster')

    def test_masters(self):
        check = self.policy.check_master
        check('set_link', 'tap0', False, 'br-ex', False)
        check('set_link', 'tap0', False, 'br-mine', True)
        check('set_link', 'eth1', True, 'br-host', False)
        with pytest.raises(exception.PolicyDenied):
            check('set_link', 'tap0', False, 'br-op', False)
        # An adopted device goes only where its entry says, even to a
        # bridge of the library's.
        with pytest.raises(exception.PolicyDenied):
            check('set_link', 'eth1', True, 'br-mine', True)

    def test_lower(self):
        check = self.policy.check_lower
        check('create_macvlan', 'eth2', False, 'vepa')
        check('create_vlan', 'eth2', False, 'vlan:42')
        check('create_vlan', 'eth3', False, 'vlan:7')
        check('create_macvlan', 'veth-mine', True, 'passthrough')
        for lower, carries in (('eth2', 'passthrough'), ('eth2', 'vlan:7'),
                               ('eth3', 'bridge'), ('lo', 'bridge')):
            with pytest.raises(exception.PolicyDenied):
                check('create_macvlan', lower, False, carries)

    def test_vf(self):
        self.policy.check_vf('ens1f0')
        with pytest.raises(exception.PolicyDenied):
            self.policy.check_vf('ens1f1')

    def test_compatibility_mode_allows_and_warns_once(self, caplog):
        loose = policy_mod.permissive('none: /x')
        for _ in range(3):
            loose.check_adopt('lo')
            loose.check_vf('ens9')
        warnings = [r for r in caplog.records
                    if 'No privileged helper policy' in r.getMessage()]
        assert len(warnings) == 2

    def test_deny_all(self):
        with pytest.raises(exception.PolicyDenied):
            policy_mod.deny_all('unusable: x').check_adopt('eth1')


class TestFiles:
    @pytest.fixture
    def root_owned(self, monkeypatch):
        """Pretend the files of the test belong to root."""
        real = os.stat

        def fake(path, *args, **kwargs):
            info = real(path, *args, **kwargs)
            values = list(info)
            values[stat.ST_UID] = 0
            return os.stat_result(values)

        monkeypatch.setattr(policy_mod.os, 'stat', fake)

    def _write(self, tmp_path, text, mode=0o644):
        tmp_path.chmod(0o755)
        path = tmp_path / 'policy.conf'
        path.write_text(text)
        path.chmod(mode)
        return str(path)

    def test_missing_is_compatibility_mode(self, tmp_path):
        policy = policy_mod.read([str(tmp_path / 'none.conf')], False)
        assert not policy.enforcing
        policy = policy_mod.read([str(tmp_path / 'none.conf')], True)
        assert policy.enforcing and not policy.adopt

    def test_trusted_file_is_read(self, tmp_path, root_owned):
        path = self._write(tmp_path, TEXT)
        policy = policy_mod.read([path, str(tmp_path / 'extra.conf')],
                                 False)
        assert policy.enforcing and 'eth1' in policy.adopt
        assert policy.source == path

    @pytest.mark.parametrize('mode', [0o664, 0o646, 0o666])
    def test_writable_by_others_fails_closed(self, tmp_path, root_owned,
                                             mode):
        path = self._write(tmp_path, TEXT, mode)
        policy = policy_mod.read([path], False)
        assert policy.enforcing and not policy.adopt
        assert policy.source.startswith('unusable')

    def test_writable_directory_fails_closed(self, tmp_path, root_owned):
        path = self._write(tmp_path, TEXT)
        tmp_path.chmod(0o777)
        try:
            assert not policy_mod.read([path], False).adopt
        finally:
            tmp_path.chmod(0o755)

    def test_not_roots_fails_closed(self, tmp_path):
        if os.geteuid() == 0:
            path = self._write(tmp_path, TEXT)
            os.chown(path, 65534, 65534)
        else:
            path = self._write(tmp_path, TEXT)
        assert not policy_mod.read([path], False).adopt

    def test_bad_content_fails_closed(self, tmp_path, root_owned):
        path = self._write(tmp_path, '[adopt]\neth1 = anything\n')
        policy = policy_mod.read([path], False)
        assert policy.enforcing and not policy.adopt

    def test_reread_when_changed_never_back_to_compatibility(
            self, tmp_path, root_owned):
        path = self._write(tmp_path, TEXT)
        assert 'eth1' in policy_mod.configure([path], False).adopt
        self._write(tmp_path, '[adopt]\neth9 = state\n')
        os.utime(path, ns=(1, 1))
        assert set(policy_mod.current().adopt) == {'eth9'}
        os.unlink(path)
        assert set(policy_mod.current().adopt) == {'eth9'}
        policy_mod.use(policy_mod.permissive('unit tests'))


# --- the engine with a policy ------------------------------------------------

@pytest.fixture
def kernel(monkeypatch):
    fake = fake_rtnl.FakeKernel()

    def create_tap(name, multi_queue=False, owner=None, owner_group=None):
        fake.add(name, kind='tun')

    monkeypatch.setattr(tuntap, 'create_tap', create_tap)
    monkeypatch.setattr(tuntap, 'macvtap_dev_number',
                        lambda name, index, sysfs='/sys': 0xF000 + index)
    monkeypatch.setattr(tuntap, 'ensure_macvtap_node',
                        lambda index, rdev, dev='/dev': ('/dev/tapx', True))
    for name in ('eth1', 'eth2', 'eth3', 'ens1f0', 'ens1f1'):
        fake.add(name, alias='nic %s' % name)
    fake.add('br-op', kind='bridge', alias='ops bridge')
    fake.add('br-ex', kind='bridge')
    fake.add('br-host', kind='bridge', alias='vif_plug_dyn:hostif.host')
    return fake


def _run(kernel, batch_ops, stop=True):
    return batch.Batch(kernel, stop, policy_mod.parse(TEXT, 'p.conf')).run(
        ops.validate_batch(batch_ops))


def _refused(kernel, op):
    sent = len(kernel.log)
    results = _run(kernel, [op])
    assert results[0]['error']['type'] == 'PolicyDenied', results
    # Refused before anything reached the kernel (lookups only).
    assert {k for k, _m in kernel.log[sent:]} <= {'getlink'}


@pytest.mark.parametrize('op', [
    ops.adopt('lo', 'x'), ops.adopt('eth2', 'x'),
    ops.create_tap('tap0', master='br-op'),
    ops.create_veth('va', 'vb', peer_master='br-op'),
    ops.create_macvlan('mv0', 'eth1'),
    ops.create_macvtap('mt0', 'eth2', mode='passthrough'),
    ops.create_vlan('vl0', 'eth2', 7),
    ops.set_vf('ens1f1', 0, mac='52:54:00:00:00:01'),
], ids=lambda op: op['op'])
def test_refused_before_the_kernel(kernel, op):
    _refused(kernel, op)


def test_allowed(kernel):
    results = _run(kernel, [
        ops.adopt('eth1', 'x'),
        ops.set_link('eth1', mtu=9000, up=True, master='br-host'),
        ops.create_tap('tap0', master='br-ex'),
        ops.create_tap('tap1', master='br-host'),
        ops.create_macvlan('mv0', 'eth2', mode='vepa'),
        ops.create_vlan('vl0', 'eth3', 99),
        ops.create_veth('va', 'vb'),
        ops.create_macvlan('mv1', 'va', mode='passthrough'),
        ops.set_vf('ens1f0', 1, spoofchk=True)])
    assert [r['status'] for r in results] == ['ok'] * 9


def test_an_adopted_device_changes_only_as_allowed(kernel):
    assert _run(kernel, [ops.adopt('eth1', 'x')])[0]['status'] == 'ok'
    for op in (ops.set_mac('eth1', '52:54:00:00:00:09'),
               ops.set_master('eth1', 'br-ex'),
               ops.add_address('eth1', '192.0.2.1', 24)):
        _refused(kernel, op)
    assert _run(kernel, [ops.adopt('br-op', 'y')])[0]['status'] == 'ok'
    _refused(kernel, ops.set_link('br-op', mtu=1400))
    assert _run(kernel, [ops.set_bridge('br-op', stp=True),
                         ops.add_address('br-op', '192.0.2.1', 24)])[0][
        'status'] == 'ok'


def test_release_restores_only_the_recorded_alias(kernel):
    _run(kernel, [ops.adopt('eth1', 'x')])
    marker = kernel.links['eth1'].alias
    assert marker == ops.adopted_alias('x', ops.alias_digest('nic eth1'))
    _refused(kernel, ops.release('eth1', 'pwned'))
    assert kernel.links['eth1'].alias == marker
    # Adopted again (another tag): the digest of the first alias stays.
    _run(kernel, [ops.adopt('eth1', 'y')])
    assert kernel.links['eth1'].alias.endswith(ops.alias_digest('nic eth1'))
    assert _run(kernel, [ops.release('eth1', 'nic eth1')])[0][
        'status'] == 'ok'
    assert kernel.links['eth1'].alias == 'nic eth1'


def test_release_of_a_device_with_no_recorded_alias(kernel):
    kernel.links['eth2'].alias = 'vif_plug_dyn.adopted:old'
    _refused(kernel, ops.release('eth2', 'anything'))
    assert _run(kernel, [ops.release('eth2')])[0]['status'] == 'ok'


def test_parse_adopted_reads_both_forms():
    assert ops.parse_adopted('vif_plug_dyn.adopted:hostif.x') == 'hostif.x'
    marker = ops.adopted_alias('hostif.x', ops.alias_digest('a'))
    assert ops.parse_adopted(marker) == 'hostif.x'
    assert ops.adopted_digest(marker) == ops.alias_digest('a')
    assert ops.adopted_digest('vif_plug_dyn.adopted:hostif.x') is None
    assert ops.adopted_digest('other#1') is None
