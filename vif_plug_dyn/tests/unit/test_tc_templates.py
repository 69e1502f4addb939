"""The tc messages built from templates are byte for byte what pyroute2
encodes for the same numbers."""

import random

import pytest

from vif_plug_dyn.privsep import tc


@pytest.mark.parametrize('kind', ['clsact', 'ingress'])
def test_templates_equal_pyroute2(kind):
    rng = random.Random(kind)
    for _ in range(200):
        seq = rng.randrange(1, 0x7FFFFFFF)
        index = rng.randrange(1, 0x7FFFFFFF)
        target = rng.randrange(1, 0x7FFFFFFF)
        assert tc.add_qdisc(seq, index, kind) == \
            tc._add_qdisc(seq, index, kind)
        assert tc.del_qdisc(seq, index, kind) == \
            tc._del_qdisc(seq, index, kind)
        assert tc.add_redirect_filter(seq, index, target, kind) == \
            tc._add_redirect_filter(seq, index, target, kind)


def test_small_numbers_and_same_index_and_target():
    for seq, index, target in ((1, 1, 1), (2, 7, 7), (0x7FFFFFFF, 3, 4)):
        assert tc.add_redirect_filter(seq, index, target, 'clsact') == \
            tc._add_redirect_filter(seq, index, target, 'clsact')


def test_templates_keep_validation():
    with pytest.raises(ValueError):
        tc.add_qdisc(1, 1, 'htb')
    with pytest.raises(ValueError):
        tc.del_qdisc(1, 1, 'htb')
