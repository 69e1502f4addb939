"""The order in which host interface devices are applied and stopped.

Every definition is flattened into its :class:`~vif_plug_dyn.hostif.model.
Device` records; a device comes after everything it requires: bond slaves
before the bond, a VLAN's parent before the VLAN, members before the
bridge. Stopping runs the same list backwards.
"""

import dataclasses
import heapq
from collections.abc import Iterable

from vif_plug_dyn import exception
from vif_plug_dyn.hostif import model


@dataclasses.dataclass(frozen=True)
class Order:
    """The result of :func:`dependency_order`.

    :ivar apply: devices in the order to create and configure them.
    :ivar stop: the same devices in the order to bring them down.
    """

    apply: tuple[model.Device, ...]
    stop: tuple[model.Device, ...]

    def names(self) -> list[str]:
        """The device names of :attr:`apply`, for logs and tests."""
        return [device.name for device in self.apply]


def collect_devices(definitions: Iterable[model.HostInterface]
                    ) -> dict[str, model.Device]:
    """Flatten definitions into their devices, by name.

    :param definitions: top-level definitions.
    :returns: every device of every definition.
    :raises InvalidHostInterface: two definitions configure the same
        device (a device has one definition and at most one master).
    """
    devices: dict[str, model.Device] = {}
    for definition in definitions:
        for device in definition.devices():
            other = devices.get(device.name)
            if other is not None:
                raise exception.InvalidHostInterface(
                    name=definition.name, element=device.element + '/@name',
                    reason='device %s is already configured by definition '
                           '%s at %s' % (device.name, other.definition,
                                         other.element))
            devices[device.name] = device
    return devices


def dependency_order(definitions: Iterable[model.HostInterface],
                     present: Iterable[str] = (),
                     missing_ok: bool = False) -> Order:
    """Sort the devices of some definitions so dependencies come first.

    Ties are broken by device name, so the result does not depend on the
    order of ``definitions``.

    :param definitions: top-level definitions.
    :param present: names of devices that exist outside these definitions
        (physical NICs, devices of other tools) and satisfy a dependency.
    :param missing_ok: accept dependencies on devices neither defined nor
        present (used when checking a store, where a VLAN's parent may be a
        NIC that is simply not configured by us).
    :returns: the apply and stop orders.
    :raises InvalidHostInterface: two definitions configure one device.
    :raises HostInterfaceDependencyMissing: a device requires one that is
        neither defined nor present, and ``missing_ok`` is false.
    :raises HostInterfaceCycle: devices depend on each other in a loop.
    """
    devices = collect_devices(definitions)
    present = set(present)
    needs: dict[str, set[str]] = {}
    users: dict[str, set[str]] = {name: set() for name in devices}
    for name in sorted(devices):
        device = devices[name]
        needs[name] = set()
        for required in device.requires:
            if required in devices:
                needs[name].add(required)
                users[required].add(name)
            elif required not in present and not missing_ok:
                raise exception.HostInterfaceDependencyMissing(
                    name=name, definition=device.definition,
                    needs=required)
    waiting = {name: len(deps) for name, deps in needs.items()}
    ready = [name for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    ordered: list[model.Device] = []
    while ready:
        name = heapq.heappop(ready)
        ordered.append(devices[name])
        for user in users[name]:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, user)
    if len(ordered) != len(devices):
        left = {name for name, count in waiting.items() if count > 0}
        raise exception.HostInterfaceCycle(
            cycle=' -> '.join(_find_cycle(left, needs)))
    return Order(apply=tuple(ordered), stop=tuple(reversed(ordered)))


def _find_cycle(left: set[str], needs: dict[str, set[str]]) -> list[str]:
    # NOTE(vpd): every device left over still waits for another left-over
    # device, so walking "requires" edges from any of them must revisit
    # one: that revisit closes the cycle we report.
    path: list[str] = []
    seen: dict[str, int] = {}
    name = min(left)
    while name not in seen:
        seen[name] = len(path)
        path.append(name)
        name = min(needs[name] & left)
    return path[seen[name]:] + [name]


def apply_order(definitions: Iterable[model.HostInterface],
                present: Iterable[str] = ()) -> tuple[model.Device, ...]:
    """Shorthand for ``dependency_order(definitions, present).apply``.

    :param definitions: top-level definitions.
    :param present: devices that exist outside the definitions.
    :raises HostInterfaceDependencyMissing: see :func:`dependency_order`.
    :raises HostInterfaceCycle: see :func:`dependency_order`.
    """
    return dependency_order(definitions, present).apply


def stop_order(definitions: Iterable[model.HostInterface],
               present: Iterable[str] = ()) -> tuple[model.Device, ...]:
    """Shorthand for ``dependency_order(definitions, present).stop``.

    :param definitions: top-level definitions.
    :param present: devices that exist outside the definitions.
    :raises HostInterfaceDependencyMissing: see :func:`dependency_order`.
    :raises HostInterfaceCycle: see :func:`dependency_order`.
    """
    return dependency_order(definitions, present).stop
