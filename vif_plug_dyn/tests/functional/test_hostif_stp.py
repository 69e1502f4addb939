"""Bridge STP and forward delay changed live, both ways, in a private
namespace: the kernel refuses a forward delay below 2 s while STP is on,
so the order of the two changes matters (``iface start`` and
``change-rollback``)."""

from vif_plug_dyn.tests.functional import hostif_support as support

pytestmark = support.MARKS
ns = support.ns
daemon = support.daemon
conf = support.conf
api = support.api


def _bridge(stp, delay):
    return ("<interface type='bridge' name='br0'><bridge stp='%s' "
            "delay='%s'><interface type='ethernet' name='v0'/></bridge>"
            "</interface>" % (stp, delay))


def _settings(ns):
    data = support.link(ns, 'br0')['linkinfo']['info_data']
    return data['stp_state'], data['forward_delay']


def test_stp_off_with_a_lower_delay_and_back(api, ns):
    support.veth(ns, 'v0', 'v1')
    api.define(_bridge('on', 4))
    api.start('br0')
    assert _settings(ns) == (1, 400)
    before = support.full_dump(ns)
    api.change_begin()
    # STP off and the delay to 0 in one start: STP goes off first.
    api.define(_bridge('off', 0), replace=True)
    assert api.start('br0')['changed']
    assert _settings(ns) == (0, 0)
    # The rollback sets the delay back before it turns STP on.
    assert api.change_rollback()['restored']
    support.assert_same(before, support.full_dump(ns))
    assert _settings(ns) == (1, 400)


def test_rollback_turns_stp_off_before_lowering_the_delay(api, ns):
    support.veth(ns, 'v0', 'v1')
    api.define(_bridge('off', 0))
    api.start('br0')
    assert _settings(ns) == (0, 0)
    before = support.full_dump(ns)
    api.change_begin()
    api.define(_bridge('on', 4), replace=True)
    api.start('br0')
    assert _settings(ns) == (1, 400)
    assert api.change_rollback()['restored']
    support.assert_same(before, support.full_dump(ns))


def test_stp_on_with_a_short_delay_settles_at_two_seconds(api, ns):
    """The kernel raises a delay below 2 s to 2 s when STP is on; the
    library plans for that, so a second start changes nothing."""
    support.veth(ns, 'v0', 'v1')
    api.define(_bridge('on', 0))
    api.start('br0')
    assert _settings(ns) == (1, 200)
    assert api.start('br0')['steps'] == []
