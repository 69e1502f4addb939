"""Hand-packed tc and macvlan messages are byte for byte what pyroute2's
message classes encode (the reference the library used before)."""

import socket

import pytest
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.tcmsg import tcmsg

from vif_plug_dyn.privsep import nlmsg
from vif_plug_dyn.privsep import rtnl
from vif_plug_dyn.privsep import tc


def _tc_reference(mtype, flags, seq, index, handle, parent, info, attrs):
    msg = tcmsg()
    msg['family'] = socket.AF_UNSPEC
    msg['index'] = index
    msg['handle'] = handle
    msg['parent'] = parent
    msg['info'] = info
    msg['attrs'] = attrs
    msg['header']['type'] = mtype
    msg['header']['flags'] = flags
    msg['header']['sequence_number'] = seq
    msg.encode()
    return bytes(msg.data[:msg['header']['length']])


CREATE = (nlmsg.NLM_F_REQUEST | nlmsg.NLM_F_ACK | nlmsg.NLM_F_CREATE |
          nlmsg.NLM_F_EXCL)


@pytest.mark.parametrize('kind', ['clsact', 'ingress'])
def test_qdiscs(kind):
    assert tc.add_qdisc(9, 42, kind) == _tc_reference(
        nlmsg.RTM_NEWQDISC, CREATE, 9, 42, tc.INGRESS_HANDLE,
        tc.TC_H_INGRESS, 0, [('TCA_KIND', kind)])
    assert tc.del_qdisc(9, 42, kind) == _tc_reference(
        nlmsg.RTM_DELQDISC, nlmsg.NLM_F_REQUEST | nlmsg.NLM_F_ACK, 9, 42,
        tc.INGRESS_HANDLE, tc.TC_H_INGRESS, 0, [('TCA_KIND', kind)])


@pytest.mark.parametrize('kind', ['clsact', 'ingress'])
@pytest.mark.parametrize('index,target', [(5, 9), (2 ** 31 - 1, 1)])
def test_redirect_filter(kind, index, target):
    mirred = {'attrs': [
        ('TCA_ACT_KIND', 'mirred'),
        ('TCA_ACT_OPTIONS', {'attrs': [
            ('TCA_MIRRED_PARMS', {'index': 0, 'capab': 0,
                                  'action': tc.TC_ACT_STOLEN, 'refcnt': 0,
                                  'bindcnt': 0,
                                  'eaction': tc.TCA_EGRESS_REDIR,
                                  'ifindex': target})]})]}
    options = {'attrs': [
        ('TCA_U32_SEL', {'keys': ['0x0/0x0+0']}),
        ('TCA_U32_ACT', {'attrs': [('TCA_ACT_PRIO_1', mirred)]})]}
    info = (tc.FILTER_PRIO << 16) | socket.htons(tc.ETH_P_ALL)
    assert tc.add_redirect_filter(3, index, target, kind) == _tc_reference(
        nlmsg.RTM_NEWTFILTER, CREATE, 3, index, 0, tc.ingress_parent(kind),
        info, [('TCA_KIND', 'u32'), ('TCA_OPTIONS', options)])


def _link_reference(seq, name, kind, lower, mode, mtu, mac, group, index):
    attrs = [('IFLA_IFNAME', name)]
    if mtu is not None:
        attrs.append(('IFLA_MTU', mtu))
    if mac is not None:
        attrs.append(('IFLA_ADDRESS', mac))
    attrs.append(('IFLA_LINK', lower))
    if group is not None:
        attrs.append(('IFLA_GROUP', group))
    key = 'IFLA_MACVLAN_MODE' if kind == 'macvlan' else 'IFLA_MACVTAP_MODE'
    attrs.append(('IFLA_LINKINFO', {'attrs': [
        ('IFLA_INFO_KIND', kind),
        ('IFLA_INFO_DATA', {'attrs': [(key, rtnl.MACVLAN_MODES[mode])]})]}))
    msg = ifinfmsg()
    msg['family'] = 0
    msg['index'] = index
    msg['flags'] = 0
    msg['change'] = 0
    msg['attrs'] = attrs
    msg['header']['type'] = nlmsg.RTM_NEWLINK
    msg['header']['flags'] = CREATE
    msg['header']['sequence_number'] = seq
    msg.encode()
    return bytes(msg.data[:msg['header']['length']])


@pytest.mark.parametrize('kind', ['macvlan', 'macvtap'])
@pytest.mark.parametrize('mode', sorted(rtnl.MACVLAN_MODES))
@pytest.mark.parametrize('mtu,mac,group,index', [
    (None, None, None, 0), (1400, '52:54:00:12:34:56', 2 ** 31 + 5, 0),
    (9000, 'fe:54:00:00:00:01', 0, 77)])
def test_macvlan(kind, mode, mtu, mac, group, index):
    got = rtnl.new_macvlan(11, 'mvx0', kind, 3, mode, mtu=mtu, mac=mac,
                           group=group, index=index)
    assert got == _link_reference(11, 'mvx0', kind, 3, mode, mtu, mac,
                                  group, index)
