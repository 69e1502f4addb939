"""Operation builders and validation (both sides of the boundary)."""

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn.privsep import ops


def _field(excinfo):
    return excinfo.value.kwargs['field']


class TestNames:
    @pytest.mark.parametrize('name', [
        '', 'a' * 16, 'bad/name', 'sp ace', 'tab\tx', '-lead', '.', '..',
        'tap0\n',
        'colon:x', 'é' * 8, 5, None.__class__, b'tap0'])
    def test_bad_names_refused(self, name):
        with pytest.raises(exception.InvalidField) as excinfo:
            ops.create_tap(name)
        assert _field(excinfo) == 'op.name'

    def test_longest_name_accepted(self):
        assert ops.create_tap('a' * 15)['name'] == 'a' * 15

    def test_master_and_lower_checked(self):
        with pytest.raises(exception.InvalidField) as excinfo:
            ops.create_tap('tap0', master='br/0')
        assert _field(excinfo) == 'op.master'
        with pytest.raises(exception.InvalidField) as excinfo:
            ops.create_macvlan('mv0', 'x' * 16)
        assert _field(excinfo) == 'op.lower'

    def test_delete_names(self):
        assert ops.delete('tap0')['names'] == ['tap0']
        assert ops.delete(['a', 'b'])['names'] == ['a', 'b']
        with pytest.raises(exception.InvalidField) as excinfo:
            ops.delete(['a', 'b/c'])
        assert _field(excinfo) == 'op.names[1]'
        with pytest.raises(exception.InvalidField):
            ops.delete(['a', 'a'])
        with pytest.raises(exception.InvalidField):
            ops.delete([])


class TestValues:
    @pytest.mark.parametrize('mtu', [0, 67, 65536, -1, '1500x', True, 1.5])
    def test_bad_mtu(self, mtu):
        with pytest.raises(exception.InvalidField) as excinfo:
            ops.create_tap('tap0', mtu=mtu)
        assert _field(excinfo) == 'op.mtu'

    @pytest.mark.parametrize('mac', [
        '01:00:5e:00:00:01', '00:00:00:00:00:00', '52:54:00:12:34',
        '52-54-00-12-34-56', 'zz:54:00:12:34:56', 5])
    def test_bad_mac(self, mac):
        with pytest.raises(exception.InvalidField):
            ops.create_tap('tap0', mac=mac)

    def test_mac_normalised(self):
        assert ops.set_mac('t', '52:54:00:AB:CD:EF')['mac'] == \
            '52:54:00:ab:cd:ef'

    @pytest.mark.parametrize('mode', ['vepa', 'bridge', 'private',
                                      'passthrough'])
    def test_macvtap_modes(self, mode):
        assert ops.create_macvtap('mt0', 'eth0', mode=mode)['mode'] == mode
        assert ops.create_macvlan('mv0', 'eth0', mode=mode)['mode'] == mode

    @pytest.mark.parametrize('mode', ['passthru', 'source', 'BRIDGE', ''])
    def test_bad_mode(self, mode):
        with pytest.raises(exception.InvalidField):
            ops.create_macvtap('mt0', 'eth0', mode=mode)

    @pytest.mark.parametrize('vlan', [0, 4095, -5, 'x', True])
    def test_bad_vlan(self, vlan):
        with pytest.raises(exception.InvalidField):
            ops.create_vlan('v0', 'eth0', vlan)

    def test_bond_modes(self):
        assert ops.create_bond('bond0', mode='802.3ad')['mode'] == '802.3ad'
        with pytest.raises(exception.InvalidField):
            ops.create_bond('bond0', mode='lacp')

    @pytest.mark.parametrize('tag', ['', 'has space', 'a' * 129, 'x\n',
                                     ':lead', 5])
    def test_bad_tag(self, tag):
        with pytest.raises(exception.InvalidField):
            ops.create_tap('tap0', tag=tag)

    @pytest.mark.parametrize('op', [
        {'op': 'set_link', 'name': 't', 'group': 7},
        {'op': 'create_tap', 'name': 't', 'group': 0},
        {'op': 'create_bridge', 'name': 't', 'group': 2 ** 31},
        {'op': 'create_macvlan', 'name': 't', 'lower': 'e', 'group': 1}])
    def test_link_groups_are_not_the_callers(self, op):
        # NOTE(vpd): the daemon owns link groups; a caller that could set
        # one could make a group delete take a device it never named.
        with pytest.raises(exception.InvalidField, match='group'):
            ops.validate_op(op)

    def test_owner_ranges(self):
        with pytest.raises(exception.InvalidField):
            ops.create_tap('t', owner=2 ** 32 - 1)
        with pytest.raises(exception.InvalidField):
            ops.create_tap('t', owner=-1)

    def test_booleans_are_strict(self):
        with pytest.raises(exception.InvalidField):
            ops.create_tap('t', up=1)
        with pytest.raises(exception.InvalidField):
            ops.set_vf('eth0', 1, trust='yes')


class TestOperations:
    def test_defaults_filled(self):
        op = ops.create_tap('tap0')
        assert op == {'op': 'create_tap', 'name': 'tap0', 'mtu': None,
                      'mac': None, 'up': True, 'tag': None,
                      'master': None, 'owner': None, 'owner_group': None,
                      'multi_queue': False}

    def test_unknown_operation_and_field(self):
        with pytest.raises(exception.InvalidField) as excinfo:
            ops.validate_op({'op': 'format_disk'})
        assert _field(excinfo) == 'op.op'
        with pytest.raises(exception.InvalidField) as excinfo:
            ops.validate_op({'op': 'create_tap', 'name': 't',
                             'shell': 'rm -rf /'})
        assert 'shell' in excinfo.value.kwargs['reason']
        with pytest.raises(exception.InvalidField):
            ops.validate_op(['create_tap', 't'])

    def test_required_field(self):
        with pytest.raises(exception.InvalidField) as excinfo:
            ops.validate_op({'op': 'create_veth', 'name': 'a'})
        assert _field(excinfo) == 'op.peer'

    def test_set_link_relations(self):
        with pytest.raises(exception.InvalidField):
            ops.set_link('t')
        with pytest.raises(exception.InvalidField):
            ops.set_link('t', master='br0', nomaster=True)
        with pytest.raises(exception.InvalidField):
            ops.set_master('t', 't')
        assert ops.set_nomaster('t')['nomaster'] is True
        assert ops.set_state('t', False)['up'] is False
        assert ops.set_alias('t', 'port-1')['tag'] == 'port-1'

    def test_peer_must_differ(self):
        with pytest.raises(exception.InvalidField):
            ops.create_veth('a', 'a')
        with pytest.raises(exception.InvalidField):
            ops.redirect('a', 'a')
        with pytest.raises(exception.InvalidField):
            ops.create_veth('a', 'b', peer_master='b')

    def test_vf(self):
        op = ops.set_vf('eth0', 3, mac='00:00:00:00:00:00', vlan=0,
                        spoofchk=True)
        assert op['mac'] == '00:00:00:00:00:00' and op['vlan'] == 0
        with pytest.raises(exception.InvalidField):
            ops.set_vf('eth0', 3)
        with pytest.raises(exception.InvalidField):
            ops.set_vf('eth0', 3, qos=2)
        with pytest.raises(exception.InvalidField):
            ops.set_vf('eth0', -1, trust=True)

    def test_redirect_qdisc(self):
        assert ops.redirect('a', 'b')['qdisc'] == 'clsact'
        assert ops.redirect('a', 'b', 'ingress')['qdisc'] == 'ingress'
        with pytest.raises(exception.InvalidField):
            ops.redirect('a', 'b', 'matchall')

    def test_batch_errors_name_the_index(self):
        good = ops.create_tap('tap0')
        with pytest.raises(exception.InvalidField) as excinfo:
            ops.validate_batch([good, dict(good, mtu=5)])
        assert _field(excinfo) == 'ops[1].mtu'
        for bad in ([], 'create_tap', {'op': 'create_tap'}, None):
            with pytest.raises(exception.InvalidField):
                ops.validate_batch(bad)

    def test_batch_limit(self):
        with pytest.raises(exception.InvalidField):
            ops.validate_batch([ops.create_tap('t')] * (ops.MAX_OPS + 1))

    def test_checked_ops_are_not_checked_twice_on_the_client(self):
        built = ops.create_tap('tap0', mtu=1400)
        plain = dict(built)
        checked = ops.validate_batch([built, plain])
        assert isinstance(built, ops.CheckedOp)
        assert checked[0] is built
        assert checked[1] is not plain and checked[1] == plain
        # Changed after it was built: the client lets it through, and the
        # daemon, which receives a plain dict, still refuses it.
        built['mtu'] = 5
        assert ops.validate_batch([built])[0] is built
        with pytest.raises(exception.InvalidField) as excinfo:
            ops.validate_batch([dict(built)])
        assert _field(excinfo) == 'ops[0].mtu'

    def test_validation_is_idempotent(self):
        for op in (ops.create_tap('t', mtu=1400), ops.delete(['a', 'b']),
                   ops.set_vf('eth0', 1, vlan=5, qos=1),
                   ops.redirect('a', 'b')):
            assert ops.validate_op(op) == op


class TestOwnership:
    def test_alias(self):
        assert ops.alias_for(None) == 'vif_plug_dyn'
        assert ops.alias_for('port-1') == 'vif_plug_dyn:port-1'

    @pytest.mark.parametrize('alias,expected', [
        ('vif_plug_dyn', (True, None)),
        ('vif_plug_dyn:port-1', (True, 'port-1')),
        ('vif_plug_dyn:', (True, '')),
        (None, (False, None)),
        ('', (False, None)),
        ('uplink to rack 3', (False, None)),
        ('vif_plug_dynamo', (False, None)),
        ('x vif_plug_dyn:y', (False, None)),
    ])
    def test_parse_alias(self, alias, expected):
        assert ops.parse_alias(alias) == expected


class TestResults:
    def test_error_rebuilt_typed(self):
        exc = exception.NetlinkOperationFailed(
            operation='setlink', device='tap0', errno=22, reason='bad')
        result = {'status': 'error', 'error': {
            'type': 'NetlinkOperationFailed', 'message': exc.message,
            'kwargs': exc.kwargs}}
        rebuilt = ops.error_from_result(result)
        assert isinstance(rebuilt, exception.NetlinkOperationFailed)
        assert rebuilt.errno == 22 and rebuilt.kwargs['device'] == 'tap0'
        assert str(rebuilt) == str(exc)

    def test_unknown_type_falls_back_to_base(self):
        rebuilt = ops.error_from_result({'error': {
            'type': 'SystemExit', 'message': 'm', 'kwargs': {}}})
        assert type(rebuilt) is exception.VifPlugDynException
        assert str(rebuilt) == 'm'

    def test_no_error(self):
        assert ops.error_from_result({'status': 'ok', 'error': None}) is None
