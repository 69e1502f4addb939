"""tc messages for "steered" endpoints: redirect every frame between two
links, in both directions, packed by hand.

For each direction the source link gets a clsact (or ingress) qdisc and,
on its ingress hook, a u32 filter matching every frame (one key with mask
0) whose action is a mirred *egress redirect* to the other link: what the
guest's tap receives from QEMU leaves through the macvlan, and what the
macvlan receives goes out of the tap to the guest.

NOTE(vpd): u32 rather than matchall: this kernel has no cls_matchall; a
u32 selector with a zero mask is the portable match-all. The selector
needs TC_U32_TERMINAL or the action never runs.

NOTE(vpd): packed with :mod:`struct` rather than pyroute2's ``tcmsg``
classes: steering 1000 ports is 4000 of these messages, and pyroute2
spent about a second encoding them, longer than the kernel took to apply
them. The unit tests check the bytes against pyroute2's encoding.

Pure functions: validated primitives in, message bytes out.
"""

import functools
import socket
import struct
from collections.abc import Callable
from typing import Any

from pyroute2.netlink.rtnl.tcmsg import tcmsg

from vif_plug_dyn.privsep import nlmsg

# linux/pkt_sched.h
TC_H_ROOT = 0xFFFFFFFF
TC_H_INGRESS = 0xFFFFFFF1
TC_H_CLSACT = TC_H_INGRESS
TC_H_MIN_INGRESS = 0xFFF2
INGRESS_HANDLE = 0xFFFF0000
ETH_P_ALL = 0x0003
#: Priority of our filter (lower runs first).
FILTER_PRIO = 1
# linux/tc_act/tc_mirred.h and linux/pkt_cls.h
TCA_EGRESS_REDIR = 1
TC_ACT_STOLEN = 4


# linux/rtnetlink.h, linux/pkt_cls.h, linux/tc_act/tc_mirred.h
TCA_KIND = 1
TCA_OPTIONS = 2
TCA_U32_SEL = 5
TCA_U32_ACT = 7
TCA_ACT_PRIO_1 = 1
TCA_ACT_KIND = 1
TCA_ACT_OPTIONS = 2
TCA_MIRRED_PARMS = 2
TC_U32_TERMINAL = 1

#: struct tcmsg: family, pads, ifindex, handle, parent, info.
_TCMSG = struct.Struct('=BBHiIII')
#: struct tc_u32_sel: flags, offshift, nkeys, (pad), offmask, off, offoff,
#: hoff, hmask; then one struct tc_u32_key: mask, val, off, offmask.
_U32_SEL_ONE_KEY = struct.Struct('=BBBxHHhhIIIii')
#: struct tc_mirred: index, capab, action, refcnt, bindcnt, eaction,
#: ifindex.
_MIRRED = struct.Struct('=IIiiiiI')
_CREATE = (nlmsg.NLM_F_REQUEST | nlmsg.NLM_F_ACK | nlmsg.NLM_F_CREATE |
           nlmsg.NLM_F_EXCL)


def _encode(mtype: int, flags: int, seq: int, index: int, handle: int,
            parent: int, info: int, attrs: bytes) -> bytes:
    return nlmsg.message(mtype, flags, seq, _TCMSG.pack(
        socket.AF_UNSPEC, 0, 0, index, handle, parent, info) + attrs)


def _add_qdisc(seq: int, index: int, kind: str) -> bytes:
    """RTM_NEWQDISC adding a clsact or ingress qdisc (exclusive).

    :param index: the link's index.
    :param kind: ``clsact`` or ``ingress``.
    """
    if kind not in ('clsact', 'ingress'):
        raise ValueError('kind must be clsact or ingress')
    return _encode(nlmsg.RTM_NEWQDISC, _CREATE, seq, index, INGRESS_HANDLE,
                   TC_H_INGRESS, 0, nlmsg.nla_str(TCA_KIND, kind))


def _del_qdisc(seq: int, index: int, kind: str) -> bytes:
    """RTM_DELQDISC removing a clsact or ingress qdisc and its filters."""
    if kind not in ('clsact', 'ingress'):
        raise ValueError('kind must be clsact or ingress')
    return _encode(nlmsg.RTM_DELQDISC, nlmsg.NLM_F_REQUEST | nlmsg.NLM_F_ACK,
                   seq, index, INGRESS_HANDLE, TC_H_INGRESS, 0,
                   nlmsg.nla_str(TCA_KIND, kind))


def ingress_parent(kind: str) -> int:
    """The parent id a filter on the ingress hook of ``kind`` uses."""
    if kind == 'clsact':
        return (TC_H_CLSACT & 0xFFFF0000) | TC_H_MIN_INGRESS
    return INGRESS_HANDLE


def _add_redirect_filter(seq: int, index: int, target: int,
                         kind: str) -> bytes:
    """RTM_NEWTFILTER: u32 match-all on ``index``'s ingress, mirred
    egress redirect to ``target``.

    :param index: the link frames arrive on.
    :param target: the link they are sent out of.
    :param kind: the qdisc kind on ``index`` (``clsact`` or ``ingress``).
    """
    info = (FILTER_PRIO << 16) | socket.htons(ETH_P_ALL)
    mirred = nlmsg.nla(TCA_ACT_PRIO_1, nlmsg.nla_str(
        TCA_ACT_KIND, 'mirred') + nlmsg.nla_nested(
        TCA_ACT_OPTIONS, nlmsg.nla(TCA_MIRRED_PARMS, _MIRRED.pack(
            0, 0, TC_ACT_STOLEN, 0, 0, TCA_EGRESS_REDIR, target))))
    selector = _U32_SEL_ONE_KEY.pack(TC_U32_TERMINAL, 0, 1, 0, 0, 0, 0, 0,
                                     0, 0, 0, 0)
    options = nlmsg.nla(TCA_OPTIONS, nlmsg.nla(TCA_U32_SEL, selector) +
                        nlmsg.nla(TCA_U32_ACT, mirred))
    return _encode(nlmsg.RTM_NEWTFILTER, _CREATE, seq, index, 0,
                   ingress_parent(kind), info,
                   [('TCA_KIND', 'u32'), ('TCA_OPTIONS', options)])


# --- templates -------------------------------------------------------------
#
# NOTE(vpd): pyroute2 takes about 0.5 ms to encode one of these messages;
# a steered port needs six (two qdiscs replaced, two filters), which made
# encoding most of the cost of rebuilding a thousand ports (about 3.5 s of
# 4). The messages of one qdisc kind differ only in the sequence number
# and two interface indexes, so each is encoded once by pyroute2 with
# sentinel values, the sentinels' offsets are found, and later messages
# are that template with the numbers written in.

_U32 = struct.Struct('=I')
_I32 = struct.Struct('=i')
_SENTINELS = (0x5A3C1D7B, 0x3B1D5A7C, 0x1C7B3D5A)


@functools.cache
def _template(build: Callable[..., bytes], kind: str, fields: int
              ) -> tuple[bytes, tuple[tuple[int, ...], ...]]:
    """Encode with sentinel numbers and find where each one sits."""
    data = build(*_SENTINELS[:fields], kind=kind)
    offsets = []
    for value in _SENTINELS[:fields]:
        packed = _U32.pack(value)
        found, at = [], data.find(packed)
        while at != -1:
            found.append(at)
            at = data.find(packed, at + 1)
        if not found:
            raise AssertionError('sentinel %#x not found in %s' % (
                value, build.__name__))
        offsets.append(tuple(found))
    return data, tuple(offsets)


def _fill(build: Callable[..., bytes], kind: str, *values: int) -> bytes:
    data, offsets = _template(build, kind, len(values))
    out = bytearray(data)
    for value, places in zip(values, offsets, strict=True):
        for at in places:
            (_I32 if value < 0 else _U32).pack_into(out, at, value)
    return bytes(out)


def add_qdisc(seq: int, index: int, kind: str) -> bytes:
    """RTM_NEWQDISC adding a clsact or ingress qdisc (exclusive).

    :param index: the link's index.
    :param kind: ``clsact`` or ``ingress``.
    """
    if kind not in ('clsact', 'ingress'):
        raise ValueError('kind must be clsact or ingress')
    return _fill(_add_qdisc, kind, seq, index)


def del_qdisc(seq: int, index: int, kind: str) -> bytes:
    """RTM_DELQDISC removing a clsact or ingress qdisc and its filters."""
    if kind not in ('clsact', 'ingress'):
        raise ValueError('kind must be clsact or ingress')
    return _fill(_del_qdisc, kind, seq, index)


def add_redirect_filter(seq: int, index: int, target: int,
                        kind: str) -> bytes:
    """RTM_NEWTFILTER: u32 match-all on ``index``'s ingress, mirred
    egress redirect to ``target``.

    :param index: the link frames arrive on.
    :param target: the link they are sent out of.
    :param kind: the qdisc kind on ``index`` (``clsact`` or ``ingress``).
    """
    return _fill(_add_redirect_filter, kind, seq, index, target)
