"""Helper operations for host interfaces: adoption, addresses, bridge and
bond settings — validation, the messages built (decoded with pyroute2)
and the parsing of what the kernel reports."""

import struct

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from vif_plug_dyn import exception
from vif_plug_dyn.privsep import addresses
from vif_plug_dyn.privsep import nlmsg
from vif_plug_dyn.privsep import ops
from vif_plug_dyn.privsep import rtnl

HDR = 16
#: struct ifaddrmsg (linux/if_addr.h): family, prefixlen, flags, scope,
#: index.
IFADDRMSG = 8


def _field(excinfo):
    return excinfo.value.kwargs['field']


def _raw_addr_attrs(message):
    """Every top-level attribute of an address message, by type number.

    NOTE(vpd): pyroute2 decodes IFA_RT_PRIORITY (9) and IFA_PROTO (11)
    only in releases newer than the 0.7.10 lower bound of
    requirements.txt (which the library itself does not need for them:
    it builds and parses these attributes on its own). Reading them
    straight from the bytes keeps this check independent of both the
    pyroute2 release and the code under test.
    """
    attrs = {}
    offset = HDR + IFADDRMSG
    while offset + 4 <= len(message):
        length, atype = struct.unpack_from('=HH', message, offset)
        attrs[atype] = bytes(message[offset + 4:offset + length])
        offset += (length + 3) & ~3
    return attrs


def _info(message):
    msg = ifinfmsg(message)
    msg.decode()
    return msg


def _linkinfo(msg):
    info = msg.get_attr('IFLA_LINKINFO')
    data = info.get_attr('IFLA_INFO_DATA')
    return info.get_attr('IFLA_INFO_KIND'), dict(data['attrs'])


class TestMarkers:
    def test_adopted_alias_round_trip(self):
        alias = ops.adopted_alias('hostif.br0')
        assert alias == 'vif_plug_dyn.adopted:hostif.br0'
        assert ops.parse_adopted(alias) == 'hostif.br0'
        # NOTE: an adopted device is not "owned" (never deletable).
        assert ops.parse_alias(alias) == (False, None)

    @pytest.mark.parametrize('alias', [None, '', 'uplink', 'vif_plug_dyn',
                                       'vif_plug_dyn:port-1',
                                       'vif_plug_dyn.adopted'])
    def test_other_aliases_are_not_adoptions(self, alias):
        assert ops.parse_adopted(alias) is None

    def test_release_refuses_a_marker(self):
        for alias in ('vif_plug_dyn', 'vif_plug_dyn:x',
                      'vif_plug_dyn.adopted:x'):
            with pytest.raises(exception.InvalidField) as excinfo:
                ops.release('eth0', alias)
            assert _field(excinfo) == 'op.alias'

    def test_release_alias(self):
        assert ops.release('eth0')['alias'] is None
        assert ops.release('eth0', 'uplink')['alias'] == 'uplink'
        with pytest.raises(exception.InvalidField):
            ops.release('eth0', 'a\nb')
        with pytest.raises(exception.InvalidField):
            ops.release('eth0', 'x' * 256)

    def test_adopt_needs_a_tag(self):
        assert ops.adopt('eth0', 'hostif.eth0')['tag'] == 'hostif.eth0'
        with pytest.raises(exception.InvalidField) as excinfo:
            ops.validate_op({'op': 'adopt', 'name': 'eth0'})
        assert _field(excinfo) == 'op.tag'
        with pytest.raises(exception.InvalidField):
            ops.adopt('eth0', 'bad tag')


class TestAddressOps:
    def test_host_prefix_by_default(self):
        assert ops.add_address('eth0', '192.0.2.1')['prefix'] == 32
        assert ops.add_address('eth0', '2001:DB8::1')['prefix'] == 128
        assert ops.add_address('eth0', '2001:DB8::1')['address'] == \
            '2001:db8::1'

    def test_validated_again_in_the_daemon(self):
        op = ops.add_address('eth0', '192.0.2.1', 24, scope='link',
                             flags=['nodad', 'noprefixroute'])
        assert ops.validate_batch([op])[0] == op
        assert op['scope'] == 253

    @pytest.mark.parametrize('kwargs,field', [
        ({'address': '192.0.2.1', 'prefix': 33}, 'op.prefix'),
        ({'address': '2001:db8::1', 'prefix': 129}, 'op.prefix'),
        ({'address': '0.0.0.0'}, 'op.address'),
        ({'address': 'nope'}, 'op.address'),
        ({'address': '192.0.2.1', 'peer': '2001:db8::1'}, 'op.peer'),
        ({'address': '2001:db8::1', 'broadcast': '192.0.2.255'},
         'op.broadcast'),
        ({'address': '2001:db8::1', 'label': 'eth0'}, 'op.label'),
        ({'address': '192.0.2.1', 'label': 'x' * 16}, 'op.label'),
        ({'address': '192.0.2.1', 'flags': ['permanent']}, 'op.flags'),
        ({'address': '192.0.2.1', 'flags': 'nodad'}, 'op.flags'),
        ({'address': '192.0.2.1', 'scope': 300}, 'op.scope'),
        ({'address': '192.0.2.1', 'valid_lft': 0}, 'op.valid_lft'),
        ({'address': '192.0.2.1', 'valid_lft': 5, 'preferred_lft': 6},
         'op.preferred_lft'),
        ({'address': '192.0.2.1', 'proto': 256}, 'op.proto'),
    ])
    def test_bad_values(self, kwargs, field):
        with pytest.raises(exception.InvalidField) as excinfo:
            ops.add_address('eth0', **kwargs)
        assert _field(excinfo) == field

    def test_del_address(self):
        op = ops.del_address('eth0', '192.0.2.1', 24)
        assert op['missing_ok'] is True and op['prefix'] == 24


class TestAddressMessages:
    def test_newaddr_ipv4_every_field(self):
        message = addresses.newaddr(
            7, index=3, address='192.0.2.1', prefix=24,
            broadcast='192.0.2.255', label='eth0:1', scope=0,
            flags=['noprefixroute', 'nodad'], valid_lft=100,
            preferred_lft=50, proto=3, metric=9)
        msg = ifaddrmsg(message)
        msg.decode()
        assert msg['header']['type'] == addresses.RTM_NEWADDR
        assert msg['header']['flags'] & nlmsg.NLM_F_EXCL
        assert (msg['family'], msg['prefixlen'], msg['index']) == (2, 24, 3)
        assert msg.get_attr('IFA_LOCAL') == '192.0.2.1'
        assert msg.get_attr('IFA_ADDRESS') == '192.0.2.1'
        assert msg.get_attr('IFA_BROADCAST') == '192.0.2.255'
        assert msg.get_attr('IFA_LABEL') == 'eth0:1'
        assert msg.get_attr('IFA_FLAGS') == 0x202
        assert msg['flags'] == 0x02
        assert msg.get_attr('IFA_CACHEINFO')['ifa_valid'] == 100
        assert msg.get_attr('IFA_CACHEINFO')['ifa_preferred'] == 50
        raw = _raw_addr_attrs(message)
        # IFA_RT_PRIORITY = 9 (u32), IFA_PROTO = 11 (u8): linux/if_addr.h
        assert struct.unpack('=I', raw[9]) == (9,)
        assert raw[11] == bytes([3])

    def test_newaddr_ipv6_peer_and_forever(self):
        msg = ifaddrmsg(addresses.newaddr(1, index=9, address='2001:db8::1',
                                          prefix=64, peer='2001:db8::2'))
        msg.decode()
        assert msg['family'] == 10
        assert msg.get_attr('IFA_LOCAL') == '2001:db8::1'
        assert msg.get_attr('IFA_ADDRESS') == '2001:db8::2'
        assert msg.get_attr('IFA_CACHEINFO') is None

    def test_deladdr(self):
        msg = ifaddrmsg(addresses.deladdr(2, index=4, address='192.0.2.1',
                                          prefix=24))
        msg.decode()
        assert msg['header']['type'] == addresses.RTM_DELADDR
        assert (msg['prefixlen'], msg['index']) == (24, 4)
        assert msg.get_attr('IFA_LOCAL') == '192.0.2.1'

    def test_parse_is_the_inverse_of_newaddr(self):
        fields = dict(address='192.0.2.1', prefix=24,
                      broadcast='192.0.2.255', label='eth0', scope=0,
                      flags=['noprefixroute'], valid_lft=100,
                      preferred_lft=50, proto=4, metric=7, peer=None)
        message = addresses.newaddr(1, index=5, **fields)
        parsed = addresses.parse_addr(message, HDR, len(message))
        assert parsed == dict(fields, index=5, family='inet')

    def test_parse_ipv6_without_local(self):
        # The kernel reports an IPv6 address in IFA_ADDRESS only.
        msg = ifaddrmsg()
        msg['family'] = 10
        msg['prefixlen'] = 64
        msg['scope'] = 253
        msg['index'] = 2
        msg['flags'] = 0x80
        msg['attrs'] = [('IFA_ADDRESS', 'fe80::1'), ('IFA_FLAGS', 0x80)]
        msg.encode()
        raw = bytes(msg.data[:msg['header']['length']])
        parsed = addresses.parse_addr(raw, HDR, len(raw))
        assert parsed['address'] == 'fe80::1' and parsed['peer'] is None
        assert parsed['flags'] == ['permanent'] and parsed['scope'] == 253
        assert parsed['valid_lft'] is None and parsed['label'] is None

    def test_dump_request(self):
        message = addresses.dumpaddrs(3)
        msg = ifaddrmsg(message)
        msg.decode()
        assert msg['header']['flags'] & nlmsg.NLM_F_DUMP == nlmsg.NLM_F_DUMP


class TestLinkSettings:
    def test_create_bridge_with_stp_and_delay(self):
        op = ops.create_bridge('br0', stp=True, forward_delay=1500,
                               index=40)
        msg = _info(rtnl.new_bridge(1, 'br0', stp=op['stp'],
                                    forward_delay=op['forward_delay'],
                                    index=op['index']))
        assert msg['index'] == 40
        kind, data = _linkinfo(msg)
        assert kind == 'bridge'
        assert data == {'IFLA_BR_FORWARD_DELAY': 1500,
                        'IFLA_BR_STP_STATE': 1}

    def test_forward_delay_bounds(self):
        with pytest.raises(exception.InvalidField) as excinfo:
            ops.create_bridge('br0', forward_delay=3001)
        assert _field(excinfo) == 'op.forward_delay'

    def test_set_bridge(self):
        msg = _info(rtnl.set_bridge(1, 7, stp=False))
        assert msg['index'] == 7
        assert not msg['header']['flags'] & nlmsg.NLM_F_CREATE
        assert _linkinfo(msg) == ('bridge', {'IFLA_BR_STP_STATE': 0})
        with pytest.raises(exception.InvalidField, match='changes nothing'):
            ops.set_bridge('br0')

    def test_create_bond_with_every_option(self):
        op = ops.create_bond('bond0', mode='active-backup', miimon=100,
                             updelay=200, downdelay=300, use_carrier=False,
                             index=9)
        msg = _info(rtnl.new_bond(
            1, 'bond0', ops.BOND_MODES[op['mode']], miimon=op['miimon'],
            updelay=op['updelay'], downdelay=op['downdelay'],
            use_carrier=op['use_carrier'], index=9))
        assert msg['index'] == 9
        assert _linkinfo(msg) == ('bond', {
            'IFLA_BOND_MODE': 1, 'IFLA_BOND_MIIMON': 100,
            'IFLA_BOND_UPDELAY': 200, 'IFLA_BOND_DOWNDELAY': 300,
            'IFLA_BOND_USE_CARRIER': 0})

    def test_bond_arp_options(self):
        op = ops.create_bond('bond0', mode='balance-xor', arp_interval=1000,
                             arp_targets=['192.0.2.254'],
                             arp_validate='all')
        msg = _info(rtnl.new_bond(1, 'bond0', 2,
                                  arp_interval=op['arp_interval'],
                                  arp_targets=op['arp_targets'],
                                  arp_validate=op['arp_validate']))
        _kind, data = _linkinfo(msg)
        assert data['IFLA_BOND_ARP_IP_TARGET'] == ['192.0.2.254']
        assert data['IFLA_BOND_ARP_VALIDATE'] == 3
        with pytest.raises(exception.InvalidField):
            ops.create_bond('bond0', arp_targets=['2001:db8::1'])
        with pytest.raises(exception.InvalidField):
            ops.create_bond('bond0', arp_targets=['192.0.2.1'] * 17)
        with pytest.raises(exception.InvalidField):
            ops.create_bond('bond0', unknown_option=1)

    def test_set_bond_primary_is_resolved_by_the_helper(self):
        op = ops.set_bond('bond0', primary='eth3')
        assert op['primary'] == 'eth3'
        msg = _info(rtnl.set_bond(1, 5, primary=11))
        assert _linkinfo(msg) == ('bond', {'IFLA_BOND_PRIMARY': 11})
        with pytest.raises(exception.InvalidField):
            ops.set_bond('bond0', primary='bond0')
        with pytest.raises(exception.InvalidField, match='changes nothing'):
            ops.set_bond('bond0')

    def test_create_vlan_ifindex(self):
        op = ops.create_vlan('eth0.5', 'eth0', 5, index=33)
        msg = _info(rtnl.new_vlan(1, 'eth0.5', 2, 5, index=op['index']))
        assert msg['index'] == 33 and msg.get_attr('IFLA_LINK') == 2
        with pytest.raises(exception.InvalidField):
            ops.create_vlan('eth0.5', 'eth0', 5, index=0)


def _newlink(attrs):
    msg = ifinfmsg()
    msg['index'] = 4
    msg['flags'] = 1
    msg['change'] = 0
    msg['family'] = 0
    msg['attrs'] = attrs
    msg.encode()
    raw = bytes(msg.data[:msg['header']['length']])
    return nlmsg.parse_link(raw, HDR, len(raw))


class TestLinkParsing:
    def test_bridge_settings_and_operstate(self):
        link = _newlink([
            ('IFLA_IFNAME', 'br0'), ('IFLA_OPERSTATE', 'UP'),
            ('IFLA_LINKINFO', {'attrs': [
                ('IFLA_INFO_KIND', 'bridge'),
                ('IFLA_INFO_DATA', {'attrs': [
                    ('IFLA_BR_FORWARD_DELAY', 400),
                    ('IFLA_BR_HELLO_TIME', 200),
                    ('IFLA_BR_STP_STATE', 1)]})]})])
        assert link['kind'] == 'bridge' and link['operstate'] == 'up'
        assert link['data'] == {'forward_delay': 400, 'stp_state': 1}

    def test_vlan_settings(self):
        link = _newlink([
            ('IFLA_IFNAME', 'eth0.42'), ('IFLA_LINK', 2),
            ('IFLA_LINKINFO', {'attrs': [
                ('IFLA_INFO_KIND', 'vlan'),
                ('IFLA_INFO_DATA', {'attrs': [('IFLA_VLAN_ID', 42)]})]})])
        assert link['data'] == {'vlan_id': 42} and link['link'] == 2

    def test_bond_settings(self):
        link = _newlink([
            ('IFLA_IFNAME', 'bond0'),
            ('IFLA_LINKINFO', {'attrs': [
                ('IFLA_INFO_KIND', 'bond'),
                ('IFLA_INFO_DATA', {'attrs': [
                    ('IFLA_BOND_MODE', 4), ('IFLA_BOND_MIIMON', 100),
                    ('IFLA_BOND_USE_CARRIER', 1),
                    ('IFLA_BOND_ARP_IP_TARGET', ['192.0.2.1', '192.0.2.2']),
                    ('IFLA_BOND_PRIMARY', 7)]})]})])
        assert link['data'] == {'mode': 4, 'miimon': 100, 'use_carrier': 1,
                                'arp_targets': ['192.0.2.1', '192.0.2.2'],
                                'primary': 7}

    def test_other_kinds_have_no_settings(self):
        link = _newlink([('IFLA_IFNAME', 'v0'), ('IFLA_LINKINFO', {
            'attrs': [('IFLA_INFO_KIND', 'veth')]})])
        assert link['kind'] == 'veth' and link['data'] is None
        assert link['operstate'] is None
