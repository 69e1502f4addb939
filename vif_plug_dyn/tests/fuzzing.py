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
