"""STP and forward delay changes in an order the kernel accepts."""

from vif_plug_dyn.hostif import stp
from vif_plug_dyn.privsep import ops


def test_turning_stp_off_comes_before_a_lower_delay():
    assert stp.set_bridge_ops('br0', stp_now=True, stp=False,
                              forward_delay=0) == [
        ops.set_bridge('br0', stp=False),
        ops.set_bridge('br0', forward_delay=0)]


def test_the_delay_comes_before_turning_stp_on():
    assert stp.set_bridge_ops('br0', stp_now=False, stp=True,
                              forward_delay=400) == [
        ops.set_bridge('br0', forward_delay=400),
        ops.set_bridge('br0', stp=True)]


def test_with_stp_on_the_delay_is_at_least_two_seconds():
    assert stp.effective_delay(True, 0) == 200
    assert stp.effective_delay(False, 0) == 0
    assert stp.set_bridge_ops('br0', stp_now=True, stp=True,
                              forward_delay=50) == [
        ops.set_bridge('br0', forward_delay=200)]
    assert stp.set_bridge_ops('br0', stp_now=False, stp=True,
                              forward_delay=50) == [
        ops.set_bridge('br0', forward_delay=200),
        ops.set_bridge('br0', stp=True)]


def test_nothing_to_do():
    assert stp.set_bridge_ops('br0', stp_now=True, stp=True) == []
    assert stp.set_bridge_ops('br0', stp_now=False) == []
    assert stp.set_bridge_ops('br0', stp_now=False,
                              forward_delay=0) == [
        ops.set_bridge('br0', forward_delay=0)]
