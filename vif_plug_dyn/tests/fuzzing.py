"""Hypothesis profiles and strategies shared by the fuzz tests.

The profile comes from the environment variable ``VPD_FUZZ_PROFILE``:

``quick`` (default)
    a few dozen examples per test: the whole fuzz suite adds seconds to
    ``tox -e py3`` and ``tox -e functional``;
``fuzz``
    10,000 examples per test (``tox -e fuzz``).

Tests take their settings with ``@fuzzing.SETTINGS`` (or
:func:`settings_for` to scale a slow test down).
"""

import os
import string
import uuid

from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st

from vif_plug_dyn.privsep import ops

#: Environment variable naming the profile.
PROFILE_ENV = 'VPD_FUZZ_PROFILE'

_COMMON = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow,
                                      HealthCheck.function_scoped_fixture,
                                      HealthCheck.data_too_large,
                                      HealthCheck.filter_too_much])
settings.register_profile('quick', max_examples=25, **_COMMON)
settings.register_profile('fuzz', max_examples=10000, **_COMMON)

PROFILE = os.environ.get(PROFILE_ENV, 'quick')
SETTINGS = settings.get_profile(PROFILE)


def settings_for(share: float) -> settings:
    """The profile with ``share`` of its examples (at least 5)."""
    return settings(SETTINGS,
                    max_examples=max(5, int(SETTINGS.max_examples * share)))


# -- values ------------------------------------------------------------------

#: Names an attacker or a careless caller would try.
NASTY_NAMES = ['lo', 'eth0', '', '.', '..', '../etc', '/', 'a/b', 'a\x00b',
               'a\nb', 'a b', ' tap0', 'tap0 ', 'tap\u0430', 'ｔａｐ０',
               'x' * 15, 'y' * 16, 'z' * 300, '-tap', 'tap:0', 'tap%d',
               '\u200btap', 'tap\t', 'TAP0', '*', 'all', 'default',
               'bonding_masters', 'vif_plug_dyn', 'é' * 8]

#: A few well-formed values, so fuzzing reaches past the first check.
GOOD_NAMES = ['tapfz0', 'tapfz1', 'brfz0', 'mvfz0']
GOOD_MACS = ['52:54:00:12:34:56', 'fe:54:00:12:34:57']
BAD_MACS = ['ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:01', '00:00:00:00:00:00',
            '52:54:00:12:34', '52-54-00-12-34-56', 'zz:54:00:12:34:56',
            '52:54:00:12:34:56:78']

scalars = (st.none() | st.booleans() |
           st.integers(min_value=-2 ** 65, max_value=2 ** 65) |
           st.floats(allow_nan=True, allow_infinity=True) |
           st.text(max_size=40) | st.binary(max_size=20) |
           st.sampled_from(NASTY_NAMES + GOOD_NAMES + GOOD_MACS + BAD_MACS))

#: Anything msgpack or JSON could carry, and some things they could not.
junk = st.recursive(
    scalars,
    lambda inner: (st.lists(inner, max_size=4) |
                   st.tuples(inner, inner) |
                   st.dictionaries(st.text(max_size=10) | st.integers(),
                                   inner, max_size=4)),
    max_leaves=12)

names = st.sampled_from(NASTY_NAMES + GOOD_NAMES) | st.text(max_size=20)
uuids = st.uuids().map(str)
macs = st.sampled_from(GOOD_MACS + BAD_MACS) | st.text(
    alphabet=string.hexdigits + ':', max_size=20)
mtus = st.sampled_from([None, 0, 67, 68, 1500, 9000, 65535, 65536, -1,
                        True, 1500.0, '1500'])


def maybe(strategy: st.SearchStrategy, other: st.SearchStrategy = junk
          ) -> st.SearchStrategy:
    """Mostly ``strategy``, sometimes junk."""
    return st.one_of(strategy, strategy, strategy, other)


def random_uuid() -> str:
    return str(uuid.uuid4())


# -- XML ---------------------------------------------------------------------

_XML_TEXT = st.sampled_from(['', 'yes', 'no', '0', '1', '1500', '-1',
                             '65536', 'bridge', 'vepa', 'passthrough',
                             'private', 'eth0', 'br0', 'red', 'x' * 70,
                             '0000:03:10.1', '52:54:00:12:34:56', 'tap0',
                             'openvswitch', '802.1Qbg', 'on', 'off',
                             'dhcp', '10.0.0.1', '24', 'ipv4', 'ipv6',
                             '&amp;', '\u0430']) | st.text(max_size=12)


def xml_documents(tags: list[str], attributes: list[str],
                  roots: list[str]) -> st.SearchStrategy:
    """XML text built from a vocabulary (so parsers get past the root
    element), plus raw text and truncations."""
    attr = st.dictionaries(st.sampled_from(attributes), _XML_TEXT,
                           max_size=3)

    def element(children: st.SearchStrategy) -> st.SearchStrategy:
        return st.tuples(st.sampled_from(tags), attr,
                         st.lists(children, max_size=4),
                         st.one_of(st.just(''), _XML_TEXT))

    leaf = st.tuples(st.sampled_from(tags), attr, st.just([]),
                     st.one_of(st.just(''), _XML_TEXT))
    tree = st.recursive(leaf, element, max_leaves=15)
    document = st.tuples(st.sampled_from(roots), attr,
                         st.lists(tree, max_size=6), st.just(''))
    text = document.map(_render)
    return st.one_of(
        text, text, text,
        st.tuples(text, st.integers(min_value=0, max_value=400)).map(
            lambda pair: pair[0][:pair[1]]),
        st.text(max_size=200),
        st.binary(max_size=200))


def _escape(value: str) -> str:
    return (value.replace('&', '&amp;').replace('<', '&lt;')
            .replace('"', '&quot;').replace("'", '&apos;'))


def _render(node: tuple) -> str:
    tag, attrs, children, text = node
    attr_text = ''.join(' %s="%s"' % (k, _escape(v))
                        for k, v in attrs.items())
    inner = _escape(text) + ''.join(_render(c) for c in children)
    return '<%s%s>%s</%s>' % (tag, attr_text, inner, tag)


# -- privileged operations --------------------------------------------------

FIELD_VALUES = {
    'name': names, 'master': names, 'lower': names,
    'peer': names, 'pf': names,
    'peer_master': names,
    'mtu': mtus, 'mac': macs, 'peer_mac': macs,
    'up': maybe(st.booleans()), 'nomaster': maybe(st.booleans()),
    'multi_queue': maybe(st.booleans()),
    'missing_ok': maybe(st.booleans()), 'trust': maybe(st.booleans()),
    'spoofchk': maybe(st.booleans()),
    'tag': maybe(st.sampled_from(['fz', 'bad tag', '', 'x' * 200,
                                  'net:red'])),
    'group': maybe(st.integers(-1, 2 ** 33)),
    'names': maybe(st.lists(names, max_size=4)),
    'mode': maybe(st.sampled_from(['bridge', 'vepa', 'private',
                                   'passthrough', 'active-backup', 'x'])),
    'qdisc': maybe(st.sampled_from(['clsact', 'ingress', 'root'])),
}
INTS = maybe(st.integers(-5, 70000))


@st.composite
def op_dicts(draw):
    kind = draw(maybe(st.sampled_from(sorted(ops.SCHEMAS))))
    schema = ops.SCHEMAS.get(kind, {}) if isinstance(kind, str) else {}
    op = {} if draw(st.integers(0, 20)) == 0 else {'op': kind}
    for field in schema:
        if draw(st.booleans()):
            op[field] = draw(FIELD_VALUES.get(field, INTS))
    if draw(st.integers(0, 8)) == 0:
        op[draw(st.text(max_size=6) | st.integers() | st.none())] = \
            draw(junk)
    return op


batches = maybe(st.lists(op_dicts(), min_size=1, max_size=5))


HOST_CALLS = st.one_of(
    st.tuples(st.just('apply'), batches, maybe(st.booleans())),
    st.tuples(st.just('run'), batches),
    st.tuples(st.just('apply_one'), maybe(op_dicts())),
    st.tuples(st.just('get_link'), names),
    st.tuples(st.just('list_links'), maybe(st.none() | names),
              maybe(st.none() | st.sampled_from(['tun', 'bridge', 'x y']))),
    st.tuples(st.just('exists'), names),
    st.tuples(st.just('delete'), maybe(st.lists(names, max_size=3)),
              maybe(st.booleans())),
    st.tuples(st.just('create_tap'), names),
    st.tuples(st.just('create_bridge'), names),
    st.tuples(st.just('create_macvlan'), names, names),
    st.tuples(st.just('set_master'), names, names),
    st.tuples(st.just('set_nomaster'), names),
    st.tuples(st.just('redirect'), names, names),
    st.tuples(st.just('unredirect'), names, names),
    st.tuples(st.just('set_vf'), names, INTS),
)


ENTRYPOINT_CALLS = st.one_of(
    st.tuples(st.just('apply'), batches | junk, junk),
    st.tuples(st.just('apply_one'), junk | op_dicts()),
    st.tuples(st.just('get_link'), junk | names),
    st.tuples(st.just('list_links'), junk, junk),
)
