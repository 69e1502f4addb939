"""Compare what the kernel shows with what a definition sets.

After every live apply the host is read back and checked
(:func:`check_start`, :func:`check_stop`): a start reports success only
when the kernel shows every device of the definition, with the master,
MTU, MAC, bridge/bond/VLAN settings and addresses the definition sets,
and up. The same comparison, made *before* a start, is what the start
would change: :func:`check_start` feeds ``iface diff`` and the plan of
``iface apply --dry-run``.

Each difference is a :class:`Mismatch` naming the device, the XPath of
its ``<interface>`` in the definition and the field (an XPath relative to
it, or ``master``/``state`` for what libvirt's format has no attribute
for).
"""

import dataclasses
from typing import Any

from vif_plug_dyn.hostif import model
from vif_plug_dyn.hostif import plan as plan_mod
from vif_plug_dyn.hostif import state as state_mod
from vif_plug_dyn.hostif import stp as stp_mod
from vif_plug_dyn.privsep import ops

#: ``found`` of a device that does not exist.
MISSING = 'missing'


@dataclasses.dataclass(frozen=True)
class Mismatch:
    """One field the kernel does not show as the definition sets it.

    :ivar device: the device.
    :ivar element: XPath of its ``<interface>`` in the definition.
    :ivar field: what differs (``mtu/@size``, ``master``, ``state``...).
    :ivar wanted: what the definition sets.
    :ivar found: what the kernel shows (:data:`MISSING`: no device).
    """

    device: str
    element: str
    field: str
    wanted: Any
    found: Any

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form (for the CLI)."""
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        return '%s %s is %s, the definition sets %s' % (
            self.device, self.field, shown(self.found), shown(self.wanted))


def shown(value: Any) -> str:
    """A value of a :class:`Mismatch` as the messages show it."""
    if value is None:
        return 'nothing'
    if isinstance(value, bool):
        return 'on' if value else 'off'
    return str(value)


def _mtu(definition: model.HostInterface, device: model.Device,
         live: state_mod.HostState, named: set[str]) -> int | None:
    # NOTE(vpd): as plan._mtu: members follow the definition's MTU, but a
    # member VLAN on a parent outside the definition with a smaller MTU
    # keeps the parent's (the plan says so in not_applied).
    mtu = definition.mtu
    if mtu is None or device.name == definition.name or \
            device.kind != model.VLAN:
        return mtu
    parent = live.get(str(device.interface.parent))
    if str(device.interface.parent) not in named and parent is not None \
            and parent['mtu'] is not None and parent['mtu'] < mtu:
        return None
    return mtu


def check_start(definition: model.HostInterface,
                live: state_mod.HostState) -> list[Mismatch]:
    """What differs from a started definition.

    :param definition: a top-level definition.
    :param live: the host's links and addresses.
    :returns: one :class:`Mismatch` per field (none: as defined).
    """
    out: list[Mismatch] = []
    devices = definition.devices()
    named = {d.name for d in devices}
    for device in devices:
        def add(field: str, wanted: Any, found: Any,
                device: model.Device = device) -> None:
            out.append(Mismatch(device.name, device.element, field, wanted,
                                found))

        link = live.get(device.name)
        if link is None:
            add('@name', 'present', MISSING)
            continue
        kind = plan_mod.model_kind(link['kind'])
        if kind != device.kind:
            add('@type', device.kind, kind)
            continue
        mtu = _mtu(definition, device, live, named)
        if mtu is not None and link['mtu'] != mtu:
            add('mtu/@size', mtu, link['mtu'])
        iface = device.interface
        # NOTE(vpd): bonding gives its slaves the bond's MAC (in most
        # modes); a slave's <mac> identifies the NIC for the tooling.
        if iface.mac is not None and link['mac'] != iface.mac and \
                device.master_kind != model.BOND:
            add('mac/@address', iface.mac, link['mac'])
        if device.master is not None and \
                live.master_of(device.name) != device.master:
            add('master', device.master, live.master_of(device.name))
        _settings(device, link, live, add)
        if not link['up']:
            add('state', 'up', 'down')
    _addresses(definition, live, out)
    return out


def _settings(device: model.Device, link: dict[str, Any],
              live: state_mod.HostState, add: Any) -> None:
    iface = device.interface
    data = link.get('data') or {}
    if device.kind == model.BRIDGE:
        stp = bool(iface.stp)
        if bool(data.get('stp_state')) != stp:
            add('bridge/@stp', stp, bool(data.get('stp_state')))
        if iface.delay is not None:
            wanted = stp_mod.effective_delay(
                stp, plan_mod.forward_delay_cs(iface.delay))
            if data.get('forward_delay') != wanted:
                found = data.get('forward_delay')
                add('bridge/@delay', wanted / 100.0,
                    None if found is None else found / 100.0)
    elif device.kind == model.BOND:
        mode = iface.bond_mode or 'balance-rr'
        if data.get('mode') != ops.BOND_MODES[mode]:
            names = {v: k for k, v in ops.BOND_MODES.items()}
            add('bond/@mode', mode, names.get(data.get('mode') or -1,
                                              data.get('mode')))
        for key, value in plan_mod.bond_options(iface).items():
            found = (data.get('arp_targets') or [] if key == 'arp_targets'
                     else plan_mod.live_bond_value(key, data))
            if found != value:
                add('bond/%s' % key, value, found)
        primary = iface.primary
        if primary is not None:
            slave = live.get(primary)
            if slave is None or data.get('primary') != slave['index']:
                add('bond/@primary', primary,
                    live.name_of(data.get('primary')))
    elif device.kind == model.VLAN:
        if data.get('vlan_id') != iface.tag:
            add('vlan/@tag', iface.tag, data.get('vlan_id'))
        lower = live.lower_of(device.name)
        if lower != iface.parent:
            add('vlan/interface/@name', iface.parent, lower)


def _addresses(definition: model.HostInterface, live: state_mod.HostState,
               out: list[Mismatch]) -> None:
    name = str(definition.name)
    if live.get(name) is None:
        return
    have = {(a['address'], a['prefix']) for a in live.addresses_of(name)}
    for family, protocol in (('ipv4', definition.ipv4),
                             ('ipv6', definition.ipv6)):
        if protocol is None:
            continue
        for index, item in enumerate(protocol.addresses, 1):
            cidr = item.cidr
            address, _sep, prefix = cidr.partition('/')
            if (address, int(prefix)) not in have:
                out.append(Mismatch(
                    name, '/interface', "protocol[@family='%s']/ip[%d]"
                    % (family, index), cidr, MISSING))


def check_stop(definition: model.HostInterface, plan: plan_mod.Plan,
               live: state_mod.HostState) -> list[Mismatch]:
    """What differs from a stopped definition: the devices it created
    are gone; those it adopted are down, out of a master that stays, and
    without the definition's addresses.

    :param definition: a top-level definition.
    :param plan: the stop plan that was applied.
    :param live: the host's links and addresses afterwards.
    """
    out: list[Mismatch] = []
    tag = state_mod.definition_tag(str(definition.name))
    deleted = set(plan.deleted)
    for device in definition.devices():
        link = live.get(device.name)
        if device.name in deleted:
            if link is not None:
                out.append(Mismatch(device.name, device.element, '@name',
                                    MISSING, 'present'))
            continue
        if link is None or link.get('adopted_tag') != tag:
            continue
        if link['up']:
            out.append(Mismatch(device.name, device.element, 'state',
                                'down', 'up'))
        master = live.master_of(device.name)
        if master is not None and master == device.master:
            out.append(Mismatch(device.name, device.element, 'master',
                                None, master))
    name = str(definition.name)
    link = live.get(name)
    if link is not None and link.get('adopted_tag') == tag:
        wanted = {(a, p) for a, p in plan_mod.wanted_addresses(definition)}
        for item in live.addresses_of(name):
            if (item['address'], item['prefix']) in wanted:
                out.append(Mismatch(
                    name, '/interface', 'protocol/ip', MISSING,
                    '%s/%s' % (item['address'], item['prefix'])))
    return out
