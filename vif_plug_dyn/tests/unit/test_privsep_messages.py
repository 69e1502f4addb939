"""The netlink messages the helper builds, decoded by pyroute2.

Hand-packed messages (:mod:`nlmsg`) and pyroute2-built ones (:mod:`rtnl`,
:mod:`tc`) are all decoded with pyroute2's message classes here, so the
kernel-facing bytes are checked by an independent implementation —
including VLAN, bond and SR-IOV messages this machine's kernel cannot
run.
"""

import socket
import struct

import pytest
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.tcmsg import tcmsg

from vif_plug_dyn.privsep import nlmsg
from vif_plug_dyn.privsep import rtnl
from vif_plug_dyn.privsep import tc

NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400


def _link(data):
    assert struct.unpack_from('=I', data)[0] == len(data)
    msg = ifinfmsg(data)
    msg.decode()
    return msg


def _tc(data):
    assert struct.unpack_from('=I', data)[0] == len(data)
    msg = tcmsg(data)
    msg.decode()
    return msg


def _info_data(msg):
    info = msg.get_attr('IFLA_LINKINFO')
    return info.get_attr('IFLA_INFO_KIND'), info.get_attr('IFLA_INFO_DATA')


class TestHandPacked:
    def test_setlink_by_name_everything(self):
        msg = _link(nlmsg.setlink(
            7, name='tap0', mtu=1400, mac='52:54:00:12:34:56', master=3,
            group=9, alias='vif_plug_dyn:p1', up=True))
        assert msg['header']['type'] == nlmsg.RTM_NEWLINK
        assert msg['header']['flags'] == NLM_F_REQUEST | NLM_F_ACK
        assert msg['header']['sequence_number'] == 7
        assert msg['index'] == 0
        assert msg.get_attr('IFLA_IFNAME') == 'tap0'
        assert msg.get_attr('IFLA_MTU') == 1400
        assert msg.get_attr('IFLA_ADDRESS') == '52:54:00:12:34:56'
        assert msg.get_attr('IFLA_MASTER') == 3
        assert msg.get_attr('IFLA_GROUP') == 9
        assert msg.get_attr('IFLA_IFALIAS') == 'vif_plug_dyn:p1'
        assert msg['flags'] == 1 and msg['change'] == 1

    def test_setlink_by_index_down_nomaster(self):
        msg = _link(nlmsg.setlink(1, index=42, master=0, up=False))
        assert msg['index'] == 42
        assert msg.get_attr('IFLA_IFNAME') is None
        assert msg.get_attr('IFLA_MASTER') == 0
        assert msg['flags'] == 0 and msg['change'] == 1

    def test_setlink_leaves_flags_alone(self):
        msg = _link(nlmsg.setlink(1, index=42, group=5))
        assert msg['flags'] == 0 and msg['change'] == 0
        assert [a[0] for a in msg['attrs']] == ['IFLA_GROUP']

    def test_setlink_needs_a_target(self):
        with pytest.raises(ValueError):
            nlmsg.setlink(1, mtu=1500)

    def test_dellink(self):
        msg = _link(nlmsg.dellink(3, index=12))
        assert msg['header']['type'] == nlmsg.RTM_DELLINK
        assert msg['index'] == 12 and msg['attrs'] == []
        msg = _link(nlmsg.dellink(4, group=0x80000001))
        assert msg['index'] == 0
        assert msg.get_attr('IFLA_GROUP') == 0x80000001
        with pytest.raises(ValueError):
            nlmsg.dellink(5)
        with pytest.raises(ValueError):
            nlmsg.dellink(5, index=1, group=2)

    def test_getlink(self):
        msg = _link(nlmsg.getlink(9, 'br-red'))
        assert msg['header']['type'] == nlmsg.RTM_GETLINK
        assert msg['header']['flags'] == NLM_F_REQUEST
        assert msg.get_attr('IFLA_IFNAME') == 'br-red'
        assert msg.get_attr('IFLA_EXT_MASK') == nlmsg.RTEXT_FILTER_SKIP_STATS

    def test_dump_filtered_in_kernel(self):
        msg = _link(nlmsg.dumplinks(2, master=5, kind='tun'))
        assert msg['header']['flags'] == NLM_F_REQUEST | nlmsg.NLM_F_DUMP
        assert msg.get_attr('IFLA_MASTER') == 5
        assert msg.get_attr('IFLA_LINKINFO').get_attr(
            'IFLA_INFO_KIND') == 'tun'
        plain = _link(nlmsg.dumplinks(2))
        assert plain.get_attr('IFLA_MASTER') is None
        assert plain.get_attr('IFLA_LINKINFO') is None


def _kernel_link(**fields):
    """An RTM_NEWLINK as the kernel would send it, built by pyroute2."""
    msg = ifinfmsg()
    msg['index'] = fields.pop('index', 5)
    msg['flags'] = fields.pop('flags', 0x11043)
    msg['change'] = 0
    attrs = [('IFLA_IFNAME', fields.pop('name', 'tap0')),
             ('IFLA_TXQLEN', 1000), ('IFLA_MTU', 1400), ('IFLA_GROUP', 7),
             ('IFLA_MASTER', 3)]
    if 'alias' in fields:
        attrs.append(('IFLA_IFALIAS', fields.pop('alias')))
    attrs += [('IFLA_ADDRESS', '52:54:00:00:00:01'),
              ('IFLA_LINKINFO', {'attrs': [('IFLA_INFO_KIND', 'tun'),
                                           ('IFLA_INFO_SLAVE_KIND',
                                            'bridge')]})]
    msg['attrs'] = attrs
    msg['header']['type'] = nlmsg.RTM_NEWLINK
    msg.encode()
    return bytes(msg.data[:msg['header']['length']])


class TestParsing:
    def test_parse_link(self):
        data = _kernel_link(alias='vif_plug_dyn:p1')
        info = nlmsg.parse_link(data, 16, len(data))
        assert info == {'index': 5, 'flags': 0x11043, 'name': 'tap0',
                        'mtu': 1400, 'mac': '52:54:00:00:00:01',
                        'master': 3, 'link': None, 'group': 7,
                        'alias': 'vif_plug_dyn:p1', 'kind': 'tun',
                        'slave_kind': 'bridge', 'operstate': None,
                        'data': None}

    def test_parse_owner_with_and_without_alias(self):
        data = _kernel_link(alias='vif_plug_dyn')
        assert nlmsg.parse_owner(data, 16, len(data)) == {
            'index': 5, 'alias': 'vif_plug_dyn', 'group': 7}
        data = _kernel_link()
        assert nlmsg.parse_owner(data, 16, len(data)) == {
            'index': 5, 'alias': None, 'group': 7}

    def test_name_and_group_peek(self):
        data = _kernel_link(name='eth0')
        assert nlmsg.link_name(data, 16, len(data)) == 'eth0'
        assert nlmsg.link_group(data, 16, len(data)) == 7

    def test_messages_walk_a_datagram(self):
        one, two = _kernel_link(index=1), _kernel_link(index=2)
        found = list(nlmsg.messages(memoryview(one + two)))
        assert [(m[0], m[3]) for m in found] == [
            (nlmsg.RTM_NEWLINK, 16), (nlmsg.RTM_NEWLINK, len(one) + 16)]

    def test_truncated_datagram_stops(self):
        data = _kernel_link()
        assert list(nlmsg.messages(data[:-8])) == []

    def test_parse_error_with_extended_ack(self):
        text = nlmsg.nla_str(nlmsg.NLMSGERR_ATTR_MSG, 'mtu too big')
        payload = struct.pack('=i', -22) + struct.pack(
            '=IHHII', 32, 16, 5, 9, 0) + text
        flags = nlmsg.NLM_F_CAPPED | nlmsg.NLM_F_ACK_TLVS
        assert nlmsg.parse_error(payload, 0, len(payload), flags) == (
            22, 'mtu too big')
        assert nlmsg.parse_error(payload, 0, 20, 0) == (22, None)
        ack = struct.pack('=i', 0) + struct.pack('=IHHII', 32, 16, 5, 9, 0)
        assert nlmsg.parse_error(ack, 0, len(ack), 0) == (0, None)


class TestLinkKinds:
    def test_bridge_forward_delay_0_stp_off(self):
        msg = _link(rtnl.new_bridge(3, 'br0', mtu=9000,
                                    mac='52:54:00:00:00:02', group=4))
        assert msg['header']['flags'] == (NLM_F_REQUEST | NLM_F_ACK |
                                          NLM_F_CREATE | NLM_F_EXCL)
        assert msg.get_attr('IFLA_IFNAME') == 'br0'
        assert msg.get_attr('IFLA_MTU') == 9000
        assert msg.get_attr('IFLA_GROUP') == 4
        kind, data = _info_data(msg)
        assert kind == 'bridge'
        assert data.get_attr('IFLA_BR_FORWARD_DELAY') == 0
        assert data.get_attr('IFLA_BR_STP_STATE') == 0

    def test_veth_peer(self):
        msg = _link(rtnl.new_veth(3, 'va', 'vb', mtu=1450,
                                  peer_mac='52:54:00:00:00:03'))
        kind, data = _info_data(msg)
        assert kind == 'veth'
        peer = data.get_attr('VETH_INFO_PEER')
        assert peer.get_attr('IFLA_IFNAME') == 'vb'
        assert peer.get_attr('IFLA_MTU') == 1450
        assert peer.get_attr('IFLA_ADDRESS') == '52:54:00:00:00:03'

    @pytest.mark.parametrize('mode,value', [('private', 1), ('vepa', 2),
                                            ('bridge', 4),
                                            ('passthrough', 8)])
    @pytest.mark.parametrize('kind', ['macvlan', 'macvtap'])
    def test_macvlan_modes(self, kind, mode, value):
        data = rtnl.new_macvlan(3, 'mv0', kind, 12, mode)
        msg = _link(data)
        assert msg.get_attr('IFLA_LINK') == 12
        got_kind, info = _info_data(msg)
        assert got_kind == kind
        # NOTE(vpd): pyroute2 decodes the mode to a name; check the raw
        # u32 too (last attribute of the message).
        assert struct.unpack_from('=I', data, len(data) - 4)[0] == value
        key = 'IFLA_MACVLAN_MODE' if kind == 'macvlan' else \
            'IFLA_MACVTAP_MODE'
        assert info.get_attr(key) in (value, {
            1: 'private', 2: 'vepa', 4: 'bridge', 8: 'passthru'}[value])

    def test_macvtap_chosen_index(self):
        msg = _link(rtnl.new_macvlan(3, 'mt0', 'macvtap', 12, 'bridge',
                                     index=123456))
        assert msg['index'] == 123456

    def test_macvlan_kind_checked(self):
        with pytest.raises(ValueError):
            rtnl.new_macvlan(3, 'x', 'ipvlan', 1, 'bridge')

    def test_vlan(self):
        msg = _link(rtnl.new_vlan(3, 'eth0.100', 2, 100, mtu=1496))
        assert msg.get_attr('IFLA_LINK') == 2
        assert msg.get_attr('IFLA_MTU') == 1496
        kind, data = _info_data(msg)
        assert kind == 'vlan'
        assert data.get_attr('IFLA_VLAN_ID') == 100

    def test_bond(self):
        msg = _link(rtnl.new_bond(3, 'bond0', 4, miimon=100))
        kind, data = _info_data(msg)
        assert kind == 'bond'
        assert data.get_attr('IFLA_BOND_MODE') == 4
        assert data.get_attr('IFLA_BOND_MIIMON') == 100

    def test_vf_everything(self):
        msg = _link(rtnl.set_vf(5, 7, 3, mac='52:54:00:00:00:04', vlan=100,
                                qos=2, trust=True, spoofchk=False))
        assert msg['index'] == 7
        assert msg['header']['flags'] == NLM_F_REQUEST | NLM_F_ACK
        info = msg.get_attr('IFLA_VFINFO_LIST').get_attr('IFLA_VF_INFO')
        assert info.get_attr('IFLA_VF_MAC') == {
            'vf': 3, 'mac': '52:54:00:00:00:04'}
        assert info.get_attr('IFLA_VF_VLAN') == {'vf': 3, 'vlan': 100,
                                                 'qos': 2}
        assert info.get_attr('IFLA_VF_TRUST') == {'vf': 3, 'trust': 1}
        assert info.get_attr('IFLA_VF_SPOOFCHK') == {'vf': 3, 'spoofchk': 0}

    def test_vf_only_what_is_asked(self):
        msg = _link(rtnl.set_vf(5, 7, 0, spoofchk=True))
        info = msg.get_attr('IFLA_VFINFO_LIST').get_attr('IFLA_VF_INFO')
        assert [a[0] for a in info['attrs']] == ['IFLA_VF_SPOOFCHK']
        assert info.get_attr('IFLA_VF_SPOOFCHK') == {'vf': 0, 'spoofchk': 1}
        with pytest.raises(ValueError):
            rtnl.set_vf(5, 7, 0)


class TestTc:
    @pytest.mark.parametrize('kind', ['clsact', 'ingress'])
    def test_qdisc(self, kind):
        msg = _tc(tc.add_qdisc(4, 9, kind))
        assert msg['header']['type'] == nlmsg.RTM_NEWQDISC
        assert msg['header']['flags'] == (NLM_F_REQUEST | NLM_F_ACK |
                                          NLM_F_CREATE | NLM_F_EXCL)
        assert msg['index'] == 9
        assert msg['handle'] == 0xFFFF0000
        assert msg['parent'] == 0xFFFFFFF1
        assert msg.get_attr('TCA_KIND') == kind
        msg = _tc(tc.del_qdisc(5, 9, kind))
        assert msg['header']['type'] == nlmsg.RTM_DELQDISC
        assert msg.get_attr('TCA_KIND') == kind

    def test_qdisc_kind_checked(self):
        with pytest.raises(ValueError):
            tc.add_qdisc(1, 1, 'htb')

    @pytest.mark.parametrize('kind,parent', [('clsact', 0xFFFFFFF2),
                                             ('ingress', 0xFFFF0000)])
    def test_redirect_filter(self, kind, parent):
        msg = _tc(tc.add_redirect_filter(6, 9, 11, kind))
        assert msg['header']['type'] == nlmsg.RTM_NEWTFILTER
        assert msg['index'] == 9
        assert msg['parent'] == parent
        assert msg['info'] >> 16 == tc.FILTER_PRIO
        assert msg['info'] & 0xFFFF == socket.htons(0x0003)  # ETH_P_ALL
        assert msg.get_attr('TCA_KIND') == 'u32'
        options = msg.get_attr('TCA_OPTIONS')
        sel = options.get_attr('TCA_U32_SEL')
        assert sel['flags'] & 1  # TC_U32_TERMINAL: run the action
        assert sel['nkeys'] == 1
        assert sel['keys'] == [{'key_mask': 0, 'key_val': 0, 'key_off': 0,
                                'key_offmask': 0}]
        assert options.get_attr('TCA_U32_CLASSID') is None
        act = options.get_attr('TCA_U32_ACT').get_attr('TCA_ACT_PRIO_1')
        assert act.get_attr('TCA_ACT_KIND') == 'mirred'
        parms = act.get_attr('TCA_ACT_OPTIONS').get_attr('TCA_MIRRED_PARMS')
        assert parms['eaction'] == 1  # TCA_EGRESS_REDIR
        assert parms['action'] == 4  # TC_ACT_STOLEN
        assert parms['ifindex'] == 11
