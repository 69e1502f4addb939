"""The privileged boundary under attack, on the real daemon.

Every entrypoint is called the way an attacker holding the unprivileged
side would: through :class:`HostNetwork` and straight at the daemon
(``linux_net.apply`` and friends, skipping every check on the caller's
side). Foreign devices (``lo``, an operator's bridge, a veth the test
made), path tricks, control characters, look-alike and oversized names,
huge batches, malformed operations and namespaces that are not the
library's. Each attempt must be refused with a typed exception and
change nothing: the namespace's full link and qdisc dump is compared
before and after every single attempt.
"""

import json
import re
import subprocess
import time

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn import host as host_mod
from vif_plug_dyn import privsep
from vif_plug_dyn.privsep import linux_net
from vif_plug_dyn.privsep import ops
from vif_plug_dyn.tests.functional import fixtures

#: Operator devices the library must never touch.
FOREIGN = ['lo', 'opbr0', 'opv0', 'opv1']
BAD_NAMES = ['', '.', '..', '../opbr0', '/', '/sys/class/net/lo', 'a/b',
             'lo\x00', 'tap\x00lo', 'tap\n0', 'tap 0', ' lo', 'lo ',
             'tap\t0', 'l\u043e', 'ｌｏ', '\u200blo', 'tap\u0301',
             'x' * 16, 'é' * 8, 'x' * 4096, '-lo', 'tap:0', 'tap*',
             'tap%s', 'tap$(id)', 'tap;rm', 'tap`id`']


@pytest.fixture(scope='module')
def host():
    with fixtures.private_host('attack') as ns:
        # NOTE(vpd): no duplicate address detection: the address dump
        # must not change by itself while the tests compare it.
        for conf in ('all', 'default'):
            ns.run(['sysctl', '-q', '-w',
                    'net.ipv6.conf.%s.accept_dad=0' % conf])
        ns.run(['ip', 'link', 'add', 'opbr0', 'type', 'bridge'])
        ns.run(['ip', 'link', 'add', 'opv0', 'type', 'veth', 'peer', 'name',
                'opv1'])
        ns.run(['ip', 'link', 'set', 'opv1', 'master', 'opbr0'])
        for name in ('opbr0', 'opv0', 'opv1'):
            ns.run(['ip', 'link', 'set', name, 'up'])
        # One device of ours, to mix into attacks.
        host_mod.HostNetwork(tag='mine').create_tap('tapmine0')
        # NOTE(vpd): let link-watch settle the new devices' operstate.
        time.sleep(1)
        yield ns


#: What the kernel changes by itself, later, on a busy machine: link-watch
#: settles operstate and carrier some time after a device comes up.
_DRIFTING = frozenset({'operstate'})


def _without_timers(value):
    # NOTE(vpd): a bridge's and its ports' timers (gc_timer, hello_timer,
    # ...) tick by themselves, and link-watch settles operstate and the
    # carrier flags on its own schedule; everything else must stay as it
    # was.
    if isinstance(value, dict):
        return {k: (sorted(set(v) - {'LOWER_UP', 'NO-CARRIER', 'M-DOWN'})
                    if k == 'flags' else _without_timers(v))
                for k, v in value.items()
                if not k.endswith('_timer') and k not in _DRIFTING}
    if isinstance(value, list):
        return [_without_timers(v) for v in value]
    return value


def _state(ns):
    """The namespace's link, qdisc and address dumps."""
    links = _without_timers(json.loads(ns.check_output(
        ['ip', '-d', '-j', 'link', 'show'])))
    # NOTE(vpd): filters hang off qdiscs: none of these devices has one
    # unless an attack added it, which the qdisc dump shows.
    qdiscs = ns.check_output(['tc', '-j', 'qdisc', 'show'])
    addresses = _without_timers(json.loads(ns.check_output(
        ['ip', '-j', 'addr', 'show'])))
    return links, qdiscs, addresses


def changes(before, after):
    """What differs between two :func:`_state` dumps, for messages."""
    out = []
    for part, old, new in zip(('links', 'qdiscs', 'addresses'), before,
                              after, strict=True):
        if old == new:
            continue
        if not isinstance(old, list):
            out.append('%s: %r -> %r' % (part, old, new))
            continue
        olds = {item.get('ifname'): item for item in old}
        news = {item.get('ifname'): item for item in new}
        for name in sorted(set(olds) | set(news)):
            a, b = olds.get(name), news.get(name)
            if a == b:
                continue
            if a is None or b is None:
                out.append('%s %s: %s' % (part, name, 'appeared' if a is
                                          None else 'gone'))
                continue
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    out.append('%s %s.%s: %r -> %r' % (
                        part, name, key, a.get(key), b.get(key)))
    return '; '.join(out)


def _refused(ns, call, *expected, compare=True):
    """``call()`` must raise one of ``expected`` (typed) and change
    nothing at all (``compare=False``: the caller compares around a
    whole sweep of attempts)."""
    before = _state(ns) if compare else None
    with pytest.raises(expected or (exception.VifPlugDynException,)) as err:
        call()
    assert isinstance(err.value, exception.VifPlugDynException)
    if compare:
        after = _state(ns)
        assert after == before, changes(before, after)
    return err.value


NOT_OWNED = (exception.DeviceNotOwned,)
FOREIGN_OPS = [
    *[ops.delete([name]) for name in FOREIGN],
    ops.delete(['tapmine0', 'lo']),
    ops.delete(['opbr0', 'tapmine0']),
    *[ops.set_mtu(name, 1400) for name in FOREIGN],
    *[ops.set_state(name, False) for name in FOREIGN],
    ops.set_master('opv0', 'opbr0'),
    ops.set_nomaster('opv1'),
    ops.set_alias('opv0', 'mine'),
    ops.set_link('opbr0', mac='52:54:00:00:00:99'),
    ops.redirect('opv0', 'opv1'),
    ops.redirect('tapmine0', 'opv0'),
    ops.redirect('lo', 'tapmine0'),
    ops.unredirect('opv0', 'tapmine0'),
]


@pytest.mark.parametrize('op', FOREIGN_OPS, ids=lambda op: '%s-%s' % (
    op['op'], op.get('name') or ','.join(op.get('names', []))))
def test_foreign_devices_refused(host, op):
    mine = host_mod.HostNetwork()
    _refused(host, lambda: mine.run([op]), *NOT_OWNED)
    _refused(host, lambda: linux_net.apply_one(op), *NOT_OWNED)
    # A whole batch with one foreign operation at the end is undone.
    _refused(host, lambda: mine.run([ops.create_tap('tapatk0'), op]),
             *NOT_OWNED)


@pytest.mark.parametrize('op', [
    ops.create_tap('lo'), ops.create_bridge('opbr0'),
    ops.create_macvlan('opv0', 'opv1'),
    ops.create_veth('tapatk1', 'opv1'),
])
def test_creating_over_foreign_names_refused(host, op):
    mine = host_mod.HostNetwork()
    err = _refused(host, lambda: mine.run([op]),
                   exception.NetlinkOperationFailed)
    assert err.errno is not None


def _with_name(field, value):
    builders = {
        'name': {'op': 'create_tap', 'name': value},
        'master': {'op': 'create_tap', 'name': 'tapatk2', 'master': value},
        'lower': {'op': 'create_macvlan', 'name': 'mvatk0', 'lower': value},
        'peer': {'op': 'create_veth', 'name': 'vatk0', 'peer': value},
        'pf': {'op': 'set_vf', 'pf': value, 'vf': 0, 'spoofchk': True},
        'names': {'op': 'delete', 'names': ['tapmine0', value]},
        'set_link': {'op': 'set_link', 'name': value, 'up': True},
    }
    return builders[field]


@pytest.mark.parametrize('field', ['name', 'master', 'lower', 'peer', 'pf',
                                   'names', 'set_link'])
def test_bad_names_refused_everywhere(host, field):
    """A sweep of every bad name in one field; the host is compared
    around the whole sweep (each attempt is refused before any kernel
    call, so none could be undone by a later one)."""
    mine = host_mod.HostNetwork()
    before = _state(host)
    for value in BAD_NAMES:
        op = _with_name(field, value)
        # The caller's side refuses first...
        _refused(host, lambda: mine.run([op]), exception.InvalidField,
                 compare=False)
        # ...and the daemon again when the caller is bypassed.
        err = _refused(host, lambda: linux_net.apply([op]),
                       exception.InvalidField, compare=False)
        assert err.kwargs['field'].startswith('ops[0].'), err
        _refused(host, lambda: linux_net.apply_one(op),
                 exception.InvalidField, compare=False)
    if field == 'name':
        for value in BAD_NAMES:
            for call in (lambda: mine.get_link(value),
                         lambda: linux_net.get_link(value),
                         lambda: linux_net.list_links(value, None)):
                _refused(host, call, exception.InvalidField, compare=False)
            if not re.fullmatch(r'[a-z0-9_]{1,16}', value):
                _refused(host, lambda: linux_net.list_links(None, value),
                         exception.InvalidField, compare=False)
    after = _state(host)
    assert after == before, changes(before, after)


MALFORMED = [
    None, 'delete lo', b'\x00', 42, 4.2, True, [], {}, {'op': None},
    {'op': 'delete'}, {'op': 'delete', 'names': 'lo'},
    {'op': 'delete', 'names': ['tapmine0'], 'extra': 1},
    {'op': 'delete', 'names': ['tapmine0', 'tapmine0']},
    {'op': 'delete', 'names': []},
    {'op': 'delete', 'names': [['lo']]},
    {'op': 'delete', 'names': [{'name': 'lo'}]},
    {'op': 'delete', 'names': ['tapmine0'], 'missing_ok': 'yes'},
    {'op': 'create_tap'},
    {'op': 'create_tap', 'name': 123},
    {'op': 'create_tap', 'name': ['tapatk3']},
    {'op': 'create_tap', 'name': 'tapatk3', 'up': 'true'},
    {'op': 'create_tap', 'name': 'tapatk3', 'mtu': '1500'},
    {'op': 'create_tap', 'name': 'tapatk3', 'mtu': 1500.0},
    {'op': 'create_tap', 'name': 'tapatk3', 'mtu': 70000},
    {'op': 'create_tap', 'name': 'tapatk3', 'mtu': True},
    {'op': 'create_tap', 'name': 'tapatk3', 'mac': 'ff:ff:ff:ff:ff:ff'},
    {'op': 'create_tap', 'name': 'tapatk3', 'owner': -1},
    {'op': 'create_tap', 'name': 'tapatk3', 'owner': 2 ** 32 - 1},
    {'op': 'create_tap', 'name': 'tapatk3', 'group': 2 ** 32},
    {'op': 'create_tap', 'name': 'tapatk3', 'group': 7},
    {'op': 'set_link', 'name': 'tapmine0', 'group': 7},
    {'op': 'set_link', 'name': 'lo', 'group': 7},
    {'op': 'create_tap', 'name': 'tapatk3', 'tag': 'a b'},
    {'op': 'create_tap', 'name': 'tapatk3', 'tag': 'x' * 129},
    {'op': 'create_tap', 'name': 'tapatk3', 'tag': 'ünïcode'},
    {'op': 'create_tap', 'name': 'tapatk3', 'tag': 'a\nb'},
    {'op': 'create_tap', 'name': 'tapatk3', 'netns': 'other'},
    {'op': 'create_tap', 'name': 'tapatk3', 'master': 'tapatk3'},
    {'op': 'create_macvlan', 'name': 'mvatk1', 'lower': 'opv0',
     'mode': 'source'},
    {'op': 'set_link', 'name': 'tapmine0'},
    {'op': 'set_link', 'name': 'tapmine0', 'master': 'opbr0',
     'nomaster': True},
    {'op': 'set_vf', 'pf': 'opv0', 'vf': -1, 'mac': '52:54:00:00:00:01'},
    {'op': 'set_vf', 'pf': 'opv0', 'vf': 0},
    {'op': 'redirect', 'name': 'tapmine0', 'peer': 'tapmine0'},
    {'op': 'redirect', 'name': 'tapmine0', 'peer': 'opv0',
     'qdisc': 'root'},
    {'op': 'rm -rf /', 'name': 'lo'},
    {'op': '__class__'},
    {'op': 'delete', 'names': ['tapmine0'], '__proto__': {}},
]


@pytest.mark.parametrize('op', MALFORMED, ids=repr)
def test_malformed_operations_refused(host, op):
    mine = host_mod.HostNetwork()
    _refused(host, lambda: mine.apply([op]), exception.InvalidField)
    _refused(host, lambda: linux_net.apply([op]), exception.InvalidField)
    _refused(host, lambda: linux_net.apply([ops.create_tap('tapatk4'), op]),
             exception.InvalidField)
    _refused(host, lambda: linux_net.apply_one(op), exception.InvalidField)


@pytest.mark.parametrize('batch', [
    None, 'ops', {'op': 'delete', 'names': ['tapmine0']}, [], 42, b'ops',
    [[{'op': 'delete'}]], [{'op': 'delete', 'names': ['lo']}, None],
], ids=repr)
def test_malformed_batches_refused(host, batch):
    _refused(host, lambda: linux_net.apply(batch), exception.InvalidField)


def test_stop_on_error_must_be_a_boolean(host):
    for value in ('no', 0, None, [], {}):
        _refused(host, lambda: linux_net.apply([ops.create_tap('tapatk6')],
                                               value),
                 exception.InvalidField)


def test_huge_batches_refused(host):
    too_many = [{'op': 'set_link', 'name': 'tapmine0', 'up': True}] * (
        ops.MAX_OPS + 1)
    _refused(host, lambda: linux_net.apply(too_many),
             exception.InvalidField)
    names = ['t%d' % n for n in range(ops.MAX_OPS + 1)]
    _refused(host, lambda: linux_net.apply([{'op': 'delete',
                                             'names': names}]),
             exception.InvalidField)
    # A large batch of foreign changes is refused at its first operation.
    mine = host_mod.HostNetwork()
    _refused(host, lambda: mine.run(
        [ops.set_mtu('opv0', 1400 + n % 100) for n in range(5000)]),
        exception.DeviceNotOwned)
    before = _state(host)
    results = linux_net.apply([ops.set_mtu('opv0', 1400 + n % 100)
                               for n in range(5000)])
    assert results[0]['error']['type'] == 'DeviceNotOwned'
    assert {r['status'] for r in results[1:]} == {'skipped'}
    assert _state(host) == before


@pytest.mark.parametrize('netns', [
    '', '.', '..', '../../proc/1/ns/net', '/run/netns/x', 'a/b', 'a b',
    'ns\x00', 'ns\n', 'ｎｓ', 'x' * 65, '-ns', 42, ['ns']])
def test_namespace_names_refused(netns):
    with pytest.raises(exception.InvalidField):
        privsep.set_netns(netns)
    with pytest.raises(exception.InvalidField):
        privsep.netns_command(['privsep-helper'], netns)


def test_a_namespace_that_is_not_the_librarys(host):
    """A daemon cannot be pointed at a namespace that does not exist (or
    one the caller names but no one made): the start fails typed, no
    daemon is left behind and the served namespace is untouched."""
    before = _state(host)
    running_pid = linux_net.daemon_info()['pid']
    privsep.stop()
    try:
        with pytest.raises(exception.PrivilegedHelperFailed):
            privsep.start('vpdt-nowhere-0000')
        assert not privsep.running()
        out = subprocess.run(['ip', 'netns', 'list'], capture_output=True,
                             text=True).stdout
        assert 'vpdt-nowhere-0000' not in out
    finally:
        privsep.set_netns(host.name)
        privsep.start(host.name)
    assert linux_net.daemon_info()['pid'] != running_pid
    assert _state(host) == before


def test_arguments_msgpack_cannot_carry_are_refused_typed(host):
    """Found by fuzzing: an integer beyond 64 bits failed in msgpack, in
    the client, with a raw OverflowError."""
    before = _state(host)
    with pytest.raises(exception.InvalidField,
                       match='privileged boundary'):
        linux_net.apply_one({2 ** 64: None})
    assert _state(host) == before
