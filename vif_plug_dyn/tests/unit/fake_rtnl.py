"""A fake rtnetlink kernel for unit tests of the batch engine.

It stands in for :class:`vif_plug_dyn.privsep.netlink.RtnlSocket`: every
request is decoded with pyroute2 (so what the engine sends is checked as
bytes), applied to an in-memory table of links, and answered the way the
kernel answers (errno per request, RTM_NEWLINK for lookups and dumps).
"""

import errno
import struct

from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.tcmsg import tcmsg

from vif_plug_dyn.privsep import nlmsg

_NAMES = {nlmsg.RTM_NEWLINK: 'newlink', nlmsg.RTM_DELLINK: 'dellink',
          nlmsg.RTM_GETLINK: 'getlink', nlmsg.RTM_NEWQDISC: 'newqdisc',
          nlmsg.RTM_DELQDISC: 'delqdisc', nlmsg.RTM_NEWTFILTER: 'newfilter'}


class FakeLink:
    def __init__(self, name, index, kind=None, alias=None, group=0,
                 master=0, mtu=1500, up=False):
        self.name, self.index, self.kind = name, index, kind
        self.alias, self.group, self.master = alias, group, master
        self.mtu, self.up = mtu, up
        self.qdisc = None

    def encode(self):
        msg = ifinfmsg()
        msg['index'] = self.index
        msg['flags'] = 1 if self.up else 0
        msg['change'] = 0
        attrs = [('IFLA_IFNAME', self.name), ('IFLA_TXQLEN', 1000),
                 ('IFLA_MTU', self.mtu), ('IFLA_GROUP', self.group)]
        if self.master:
            attrs.append(('IFLA_MASTER', self.master))
        if self.alias is not None:
            attrs.append(('IFLA_IFALIAS', self.alias))
        if self.kind:
            attrs.append(('IFLA_LINKINFO', {
                'attrs': [('IFLA_INFO_KIND', self.kind)]}))
        msg['attrs'] = attrs
        msg['header']['type'] = nlmsg.RTM_NEWLINK
        msg.encode()
        return bytes(msg.data[:msg['header']['length']])[16:]


class FakeKernel:
    """The links, the log of requests, and injectable failures.

    :ivar log: every request as ``(kind, decoded message)``.
    :ivar fail: ``{(kind, name): errno}`` makes that request fail; kind is
        ``create`` (new link), ``setlink``, ``dellink`` or ``getlink``.
    """

    def __init__(self):
        self.links = {}
        self.next_index = 1
        self.log = []
        self.fail = {}
        self.dumps = []
        self._pending = []
        self._seq = 0
        self.add('lo', kind=None)

    # -- table -------------------------------------------------------------

    def add(self, name, **fields):
        link = FakeLink(name, self.next_index, **fields)
        self.next_index += 1
        self.links[name] = link
        return link

    def by_index(self, index):
        return next((lk for lk in self.links.values() if lk.index == index),
                    None)

    def sent(self, kind):
        return [m for k, m in self.log if k == kind]

    # -- RtnlSocket interface ------------------------------------------------

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    @property
    def pending(self):
        return len(self._pending)

    def next_seq(self):
        self._seq += 1
        return self._seq

    def queue(self, build, cookie):
        seq = self.next_seq()
        self._pending.append((build(seq), cookie))

    def flush(self):
        pending, self._pending = self._pending, []
        return [(cookie,) + self._handle(data) for data, cookie in pending]

    def request(self, build):
        self.queue(build, None)
        return self.flush()[-1]

    def dump(self, build, visit=None):
        """A dump, filtered like the kernel does on master and kind."""
        assert not self._pending
        msg = ifinfmsg(build(self.next_seq()))
        msg.decode()
        master = msg.get_attr('IFLA_MASTER')
        info = msg.get_attr('IFLA_LINKINFO')
        kind = info.get_attr('IFLA_INFO_KIND') if info else None
        self.dumps.append((master, kind))
        out = []
        for link in list(self.links.values()):
            if master is not None and link.master != master:
                continue
            if kind is not None and link.kind != kind:
                continue
            payload = link.encode()
            if visit is None:
                out.append(payload)
            else:
                visit(memoryview(payload), 0, len(payload))
        return out

    # -- request handling ----------------------------------------------------

    def _handle(self, data):
        mtype = struct.unpack_from('=H', data, 4)[0]
        kind = _NAMES[mtype]
        cls = tcmsg if mtype in (nlmsg.RTM_NEWQDISC, nlmsg.RTM_DELQDISC,
                                 nlmsg.RTM_NEWTFILTER) else ifinfmsg
        msg = cls(data)
        msg.decode()
        self.log.append((kind, msg))
        err = getattr(self, '_' + kind)(msg)
        if isinstance(err, bytes):
            return 0, None, err
        return err, None, None

    def _target(self, msg):
        if msg['index']:
            return self.by_index(msg['index'])
        return self.links.get(msg.get_attr('IFLA_IFNAME'))

    def _getlink(self, msg):
        link = self.links.get(msg.get_attr('IFLA_IFNAME'))
        if link is None:
            return errno.ENODEV
        err = self.fail.get(('getlink', link.name))
        return err if err else link.encode()

    def _newlink(self, msg):
        info = msg.get_attr('IFLA_LINKINFO')
        if msg['header']['flags'] & nlmsg.NLM_F_CREATE:
            name = msg.get_attr('IFLA_IFNAME')
            if name in self.links:
                return errno.EEXIST
            if ('create', name) in self.fail:
                return self.fail[('create', name)]
            kind = info.get_attr('IFLA_INFO_KIND')
            self.add(name, kind=kind, group=msg.get_attr('IFLA_GROUP') or 0)
            if kind == 'veth':
                peer = info.get_attr('IFLA_INFO_DATA').get_attr(
                    'VETH_INFO_PEER')
                self.add(peer.get_attr('IFLA_IFNAME'), kind='veth')
            return 0
        link = self._target(msg)
        if link is None:
            return errno.ENODEV
        err = self.fail.get(('setlink', link.name))
        if err:
            return err
        if msg.get_attr('IFLA_VFINFO_LIST') is not None:
            return 0
        for attr, field in (('IFLA_MTU', 'mtu'), ('IFLA_GROUP', 'group'),
                            ('IFLA_IFALIAS', 'alias'),
                            ('IFLA_MASTER', 'master')):
            value = msg.get_attr(attr)
            if value is not None:
                setattr(link, field, value)
        if msg['change'] & 1:
            link.up = bool(msg['flags'] & 1)
        return 0

    def _dellink(self, msg):
        group = msg.get_attr('IFLA_GROUP')
        if group is not None and not msg['index']:
            doomed = [lk for lk in self.links.values() if lk.group == group]
            if not doomed:
                return errno.ENODEV
        else:
            link = self.by_index(msg['index'])
            if link is None:
                return errno.ENODEV
            err = self.fail.get(('dellink', link.name))
            if err:
                return err
            doomed = [link]
        for link in doomed:
            del self.links[link.name]
        return 0

    def _newqdisc(self, msg):
        link = self.by_index(msg['index'])
        if link is None:
            return errno.ENODEV
        if link.qdisc is not None:
            return errno.EEXIST
        link.qdisc = msg.get_attr('TCA_KIND')
        return 0

    def _delqdisc(self, msg):
        link = self.by_index(msg['index'])
        if link is None:
            return errno.ENODEV
        if link.qdisc is None:
            return errno.ENOENT
        link.qdisc = None
        return 0

    def _newfilter(self, msg):
        return 0 if self.by_index(msg['index']) else errno.ENODEV
