"""Spanning tree and forward delay of a bridge, in an order the kernel
accepts.

The kernel refuses a forward delay below 2 s while STP is on
(``Numerical result out of range``), and raises a shorter delay to 2 s
when STP is turned on. It applies the forward delay of a request before
its STP state, so one request that turns STP off *and* lowers the delay
fails. :func:`set_bridge_ops` splits such a change in two: STP off first,
then the delay; and when STP is turned on, the delay first, then STP.
Starts (:mod:`.plan`) and restores (:mod:`.restore`) both use it.
"""

from typing import Any

from vif_plug_dyn.privsep import ops

#: Shortest forward delay (hundredths of a second) the kernel keeps
#: while STP is on.
MIN_STP_DELAY = 200


def effective_delay(stp: bool, forward_delay: int) -> int:
    """The forward delay the kernel shows for a requested one.

    :param stp: whether STP is (or will be) on.
    :param forward_delay: the requested delay, in hundredths of a second.
    """
    return max(forward_delay, MIN_STP_DELAY) if stp else forward_delay


def set_bridge_ops(name: str, *, stp_now: bool, stp: bool | None = None,
                   forward_delay: int | None = None
                   ) -> list[dict[str, Any]]:
    """The ``set_bridge`` operations that change STP and forward delay.

    :param name: the bridge.
    :param stp_now: whether STP is on now.
    :param stp: the STP state wanted (``None``: unchanged).
    :param forward_delay: the delay wanted, in hundredths of a second
        (``None``: unchanged); raised to :data:`MIN_STP_DELAY` when STP
        stays or ends up on, as the kernel would.
    :returns: zero to two operations, in the order to apply them.
    """
    if stp is not None and stp == stp_now:
        stp = None
    final = stp_now if stp is None else stp
    if forward_delay is not None:
        forward_delay = effective_delay(final, forward_delay)
    if stp is None:
        return [] if forward_delay is None else [
            ops.set_bridge(name, forward_delay=forward_delay)]
    delay = [] if forward_delay is None else [
        ops.set_bridge(name, forward_delay=forward_delay)]
    switch = [ops.set_bridge(name, stp=stp)]
    # NOTE(vpd): a delay below 2 s is only accepted while STP is off:
    # turn it off before lowering the delay, set the delay before turning
    # it on.
    return switch + delay if not stp else delay + switch
