"""Plan the privileged work that starts or stops a host interface.

Pure functions: a definition and the host's live state
(:class:`~vif_plug_dyn.hostif.state.HostState`) in, a :class:`Plan` out —
a few named steps, each one batch of helper operations
(:mod:`vif_plug_dyn.privsep.ops`). Only what differs from the live state
is planned, so starting an interface that is up as defined plans nothing.

Starting, in dependency order (bond slaves before the bond, a VLAN's
parent before the VLAN, members before the bridge):

``adopt``
    operator devices the definition names get the adoption marker;
``create``
    bridges, bonds and VLANs that do not exist are created, down, with
    their MTU, STP/forward delay, bond options or VLAN tag;
``links``
    MTU and MAC of existing devices, bridge and bond settings, then
    membership (a bond slave is brought down before it is enslaved, as
    bonding requires);
``addresses``
    the definition's static addresses are added to its top device;
``up``
    every device is brought up, members before their master.

Stopping, in reverse order: ``addresses`` (the definition's addresses
removed from an adopted top device), ``links`` (adopted devices released
from a master that stays, and brought down), ``delete`` (the devices the
definition created, in one request).

Rules for devices that already exist (see the admin guide): a device the
definition created earlier is reconfigured; an operator's device of the
right kind is *adopted* and then configured, never deleted; a device of
another kind, or one another definition or another part of the library
manages, is a :class:`~vif_plug_dyn.exception.HostInterfaceConflict`.

What a live apply does not do is listed in :attr:`Plan.not_applied`:
DHCP, IPv6 autoconfiguration and gateway routes.
"""

import dataclasses
import ipaddress
from typing import Any

from vif_plug_dyn import exception
from vif_plug_dyn.hostif import model
from vif_plug_dyn.hostif import order as ordering
from vif_plug_dyn.hostif import state as state_mod
from vif_plug_dyn.hostif import stp as stp_mod
from vif_plug_dyn.privsep import ops

#: Kernel link kinds that are not ``ethernet`` in a definition.
KERNEL_KINDS = {'bridge': model.BRIDGE, 'bond': model.BOND,
                'vlan': model.VLAN}

Op = dict[str, Any]


@dataclasses.dataclass
class Step:
    """One privileged batch of a plan.

    :ivar name: what the step does (``adopt``, ``create``...).
    :ivar ops: the helper operations, in order.
    """

    name: str
    ops: list[Op]


@dataclasses.dataclass
class Plan:
    """What starting or stopping a definition does to the host.

    :ivar action: ``start`` or ``stop``.
    :ivar definition: the definition's name.
    :ivar steps: non-empty steps, in order.
    :ivar adopted: operator devices adopted by this plan.
    :ivar created: devices created.
    :ivar deleted: devices deleted.
    :ivar not_applied: parts of the definition a live apply leaves out,
        one sentence each.
    """

    action: str
    definition: str
    steps: list[Step] = dataclasses.field(default_factory=list)
    adopted: list[str] = dataclasses.field(default_factory=list)
    created: list[str] = dataclasses.field(default_factory=list)
    deleted: list[str] = dataclasses.field(default_factory=list)
    not_applied: list[str] = dataclasses.field(default_factory=list)

    def add(self, name: str, batch: list[Op]) -> None:
        """Append a step unless it has nothing to do."""
        if batch:
            self.steps.append(Step(name, batch))

    def summary(self) -> dict[str, Any]:
        """A JSON-safe description (for the API's results and the CLI)."""
        return {'action': self.action, 'name': self.definition,
                'steps': [{'step': s.name, 'operations': len(s.ops)}
                          for s in self.steps],
                'adopted': list(self.adopted),
                'created': list(self.created),
                'deleted': list(self.deleted),
                'not_applied': list(self.not_applied),
                'changed': bool(self.steps)}


def model_kind(kernel_kind: str | None) -> str:
    """The definition kind of a live link: bridge, bond and vlan by
    name, anything else (a NIC, veth, tap, macvlan...) is ethernet."""
    return KERNEL_KINDS.get(kernel_kind or '', model.ETHERNET)


def forward_delay_cs(seconds: float) -> int:
    """A forward delay in seconds as the kernel's hundredths."""
    return int(round(seconds * 100))


# --- start -------------------------------------------------------------------

def plan_start(definition: model.HostInterface,
               live: state_mod.HostState) -> Plan:
    """Plan bringing a definition up on the host.

    :param definition: a top-level definition.
    :param live: the host's current links and addresses.
    :returns: the plan (no steps when the host is already as defined).
    :raises HostInterfaceDependencyMissing: a VLAN's parent is neither in
        the definition nor on the host.
    :raises HostInterfaceConflict: a device exists with another kind, VLAN
        tag, parent or bond mode, or belongs to someone else; or an
        ethernet device does not exist.
    """
    name = str(definition.name)
    tag = state_mod.definition_tag(name)
    plan = Plan('start', name)
    devices = ordering.dependency_order([definition],
                                        present=live.links).apply
    adopt: list[Op] = []
    create: list[Op] = []
    links: list[Op] = []
    ups: list[Op] = []
    named = {d.name for d in devices}
    for device in devices:
        link = live.get(device.name)
        role = _role(definition, device, link)
        mtu = _mtu(definition, device, live, named, plan)
        if role == 'adopt':
            adopt.append(ops.adopt(device.name, tag))
            plan.adopted.append(device.name)
        if link is None:
            create.append(_create(device, mtu, tag))
            plan.created.append(device.name)
        else:
            links.extend(_reconfigure(device, mtu, link, live))
        joins = _membership(device, link, live)
        links.extend(joins)
        brought_down = any(op['up'] is False for op in joins
                           if op['op'] == 'set_link')
        if link is None or not link['up'] or brought_down:
            ups.append(ops.set_link(device.name, up=True))
    plan.add('adopt', adopt)
    plan.add('create', create)
    plan.add('links', links)
    plan.add('addresses', _add_addresses(definition, live))
    plan.add('up', ups)
    plan.not_applied.extend(not_applied(definition))
    return plan


def _role(definition: model.HostInterface, device: model.Device,
          link: dict[str, Any] | None) -> str:
    """``new``, ``ours`` (created or adopted by this definition) or
    ``adopt`` (an operator's device); raises on a conflict."""
    def conflict(reason: str) -> exception.HostInterfaceConflict:
        return exception.HostInterfaceConflict(
            name=definition.name, device=device.name, reason=reason)

    if link is None:
        if device.kind == model.ETHERNET:
            raise conflict('it does not exist; an ethernet interface is '
                           'a device the host has, the library never '
                           'creates one')
        return 'new'
    kind = model_kind(link['kind'])
    if kind != device.kind:
        raise conflict('it is a %s (kernel kind %s), the definition says '
                       '%s' % (kind, link['kind'] or 'none', device.kind))
    role, owner = state_mod.marker(link)
    if role in (state_mod.CREATED, state_mod.ADOPTED) and \
            owner == definition.name:
        return 'ours'
    if role == state_mod.FOREIGN:
        return 'adopt'
    if owner is not None and role != state_mod.OTHER:
        raise conflict('it is managed by host interface definition %s'
                       % owner)
    raise conflict('it is managed by another part of vif_plug_dyn '
                   '(alias %s)' % link['alias'])


def _mtu(definition: model.HostInterface, device: model.Device,
         live: state_mod.HostState, named: set[str],
         plan: Plan) -> int | None:
    """The MTU a device of the definition gets.

    NOTE(vpd): members have no MTU of their own in a definition; they
    follow the device that takes them (a bridge port with a smaller MTU
    would drop the bridge's larger frames). A member VLAN whose parent is
    not part of the definition cannot exceed that parent's MTU, which is
    not ours to change: it keeps the parent's, and the plan says so.
    """
    mtu = definition.mtu
    if mtu is None or device.name == definition.name or \
            device.kind != model.VLAN:
        return mtu
    parent = str(device.interface.parent)
    link = live.get(parent)
    if parent in named or link is None or link['mtu'] is None or \
            link['mtu'] >= mtu:
        return mtu
    plan.not_applied.append(
        'vlan %s: MTU %d is more than its parent %s has (%d); it keeps '
        '%d' % (device.name, mtu, parent, link['mtu'], link['mtu']))
    return None


def _bond_options(iface: model.HostInterface) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if iface.miimon is not None:
        mii = iface.miimon
        options.update(miimon=mii.freq, updelay=mii.updelay,
                       downdelay=mii.downdelay)
        if mii.carrier is not None:
            options['use_carrier'] = mii.carrier == 'netif'
    if iface.arpmon is not None:
        arp = iface.arpmon
        options.update(arp_interval=arp.interval, arp_targets=[arp.target],
                       arp_validate=arp.validate)
    return {k: v for k, v in options.items() if v is not None}


def _bond_mode(iface: model.HostInterface) -> str:
    # NOTE(vpd): libvirt's (and the kernel's) default mode.
    return iface.bond_mode or 'balance-rr'


def _create(device: model.Device, mtu: int | None, tag: str) -> Op:
    iface = device.interface
    # NOTE(vpd): created down; the "up" step brings every device up once
    # members are in place, so nothing forwards half configured.
    if device.kind == model.BRIDGE:
        delay = 0.0 if iface.delay is None else iface.delay
        return ops.create_bridge(
            device.name, mtu=mtu, up=False, tag=tag, stp=bool(iface.stp),
            forward_delay=stp_mod.effective_delay(bool(iface.stp),
                                                  forward_delay_cs(delay)))
    if device.kind == model.BOND:
        return ops.create_bond(device.name, mode=_bond_mode(iface), mtu=mtu,
                               up=False, tag=tag, **_bond_options(iface))
    return ops.create_vlan(device.name, str(iface.parent), iface.tag or 0,
                           mtu=mtu, up=False, tag=tag)


def _reconfigure(device: model.Device, mtu: int | None,
                 link: dict[str, Any], live: state_mod.HostState
                 ) -> list[Op]:
    """Changes to an existing device (MTU, MAC, bridge and bond
    settings)."""
    iface = device.interface
    out: list[Op] = []
    changes: dict[str, Any] = {}
    if mtu is not None and link['mtu'] != mtu:
        changes['mtu'] = mtu
    if iface.mac is not None and link['mac'] != iface.mac:
        changes['mac'] = iface.mac
    if changes:
        out.append(ops.set_link(device.name, **changes))
    data = link.get('data') or {}
    if device.kind == model.BRIDGE:
        stp = bool(iface.stp)
        delay = None
        if iface.delay is not None:
            delay = stp_mod.effective_delay(stp,
                                            forward_delay_cs(iface.delay))
            if data.get('forward_delay') == delay:
                delay = None
        out.extend(stp_mod.set_bridge_ops(
            device.name, stp_now=bool(data.get('stp_state')), stp=stp,
            forward_delay=delay))
    elif device.kind == model.BOND:
        out.extend(_reconfigure_bond(device, data))
    elif device.kind == model.VLAN:
        lower = live.lower_of(device.name)
        if data.get('vlan_id') not in (None, iface.tag) or \
                lower not in (None, iface.parent):
            raise exception.HostInterfaceConflict(
                name=device.definition, device=device.name,
                reason='it is VLAN %s on %s, the definition says %s on %s; '
                       'stop the interface first' % (
                           data.get('vlan_id'), lower or '?', iface.tag,
                           iface.parent))
    return out


def _reconfigure_bond(device: model.Device,
                      data: dict[str, Any]) -> list[Op]:
    iface = device.interface
    mode = ops.BOND_MODES[_bond_mode(iface)]
    if data.get('mode') not in (None, mode):
        # NOTE(vpd): the kernel only changes the mode of a bond that is
        # down and has no slaves.
        raise exception.HostInterfaceConflict(
            name=device.definition, device=device.name,
            reason='it is a bond in mode %s, the definition says %s; stop '
                   'the interface first' % (data.get('mode'),
                                            _bond_mode(iface)))
    wanted = _bond_options(iface)
    live_targets = data.get('arp_targets') or []
    differs = {k: v for k, v in wanted.items()
               if (live_targets if k == 'arp_targets' else
                   _live_bond_value(k, data)) != v}
    return [ops.set_bond(device.name, **differs)] if differs else []


def _live_bond_value(key: str, data: dict[str, Any]) -> Any:
    value = data.get(key)
    if key == 'use_carrier' and value is not None:
        return bool(value)
    if key == 'arp_validate' and value is not None:
        return ops.ARP_VALIDATE[value] if value < len(ops.ARP_VALIDATE) \
            else value
    return value


def _membership(device: model.Device, link: dict[str, Any] | None,
                live: state_mod.HostState) -> list[Op]:
    """Enslave a member to its bridge or bond; set a bond's primary once
    its slaves are in (the bond comes after them)."""
    out: list[Op] = []
    current = None if link is None else live.master_of(device.name)
    if device.master is not None and current != device.master:
        if device.master_kind == model.BOND and link is not None and \
                link['up']:
            # NOTE(vpd): bonding refuses to enslave a device that is up.
            out.append(ops.set_link(device.name, up=False))
        out.append(ops.set_link(device.name, master=device.master))
    primary = device.interface.primary
    if device.kind == model.BOND and primary is not None:
        data = (link or {}).get('data') or {}
        slave = live.get(primary)
        if link is None or slave is None or \
                data.get('primary') != slave['index']:
            out.append(ops.set_bond(device.name, primary=primary))
    return out


def _wanted_addresses(definition: model.HostInterface
                      ) -> list[tuple[str, int]]:
    out = []
    for protocol in (definition.ipv4, definition.ipv6):
        if protocol is None:
            continue
        for item in protocol.addresses:
            prefix = item.prefix
            if prefix is None:
                prefix = 32 if item.version == 4 else 128
            out.append((item.address, prefix))
    return out


def _add_addresses(definition: model.HostInterface,
                   live: state_mod.HostState) -> list[Op]:
    name = str(definition.name)
    have = {(a['address'], a['prefix']) for a in live.addresses_of(name)}
    out = []
    for address, prefix in _wanted_addresses(definition):
        if (address, prefix) in have:
            continue
        network = ipaddress.ip_interface('%s/%d' % (address, prefix))
        broadcast = None
        if network.version == 4 and prefix <= 30:
            # NOTE(vpd): NetworkManager and ifupdown both give an IPv4
            # address its subnet's broadcast; so does the live apply.
            broadcast = str(network.network.broadcast_address)
        out.append(ops.add_address(name, address, prefix,
                                   broadcast=broadcast))
    return out


def not_applied(definition: model.HostInterface) -> list[str]:
    """What a live apply leaves to the host's network tooling.

    :returns: one sentence per item.
    """
    out = []
    for protocol in (definition.ipv4, definition.ipv6):
        if protocol is None:
            continue
        family = protocol.family
        if protocol.dhcp:
            out.append('%s: <dhcp/> is not run by a live apply (no DHCP '
                       'client is started); the host\'s network tooling '
                       'does it from the persistent configuration'
                       % family)
        if protocol.autoconf:
            out.append('%s: <autoconf/> is left to the kernel (SLAAC '
                       'follows the accept_ra setting of the device)'
                       % family)
        if protocol.gateway is not None:
            out.append('%s: <route gateway=\'%s\'/> is not applied live '
                       '(no routes are changed); it is in the persistent '
                       'configuration' % (family, protocol.gateway))
    return out


# --- stop --------------------------------------------------------------------

def plan_stop(definition: model.HostInterface,
              live: state_mod.HostState) -> Plan:
    """Plan taking a definition down.

    Devices the definition created are deleted; devices it adopted lose
    the definition's addresses and their membership of a master that
    stays, and are brought down — they keep the adoption marker until the
    definition is undefined. Devices it does not manage are left alone.

    :param definition: a top-level definition.
    :param live: the host's current links and addresses.
    """
    name = str(definition.name)
    plan = Plan('stop', name)
    devices = ordering.dependency_order([definition], present=live.links,
                                        missing_ok=True).stop
    ours: dict[str, str] = {}
    for device in devices:
        link = live.get(device.name)
        if link is None:
            continue
        role, owner = state_mod.marker(link)
        if owner == name and role in (state_mod.CREATED, state_mod.ADOPTED):
            ours[device.name] = role
    deleted = [n for n in ours if ours[n] == state_mod.CREATED]
    addresses: list[Op] = []
    if ours.get(name) == state_mod.ADOPTED:
        wanted = set(_wanted_addresses(definition))
        for item in live.addresses_of(name):
            if (item['address'], item['prefix']) in wanted:
                addresses.append(ops.del_address(
                    name, item['address'], item['prefix'],
                    peer=item['peer']))
    links: list[Op] = []
    for device in devices:
        if ours.get(device.name) != state_mod.ADOPTED:
            continue
        link = live.links[device.name]
        master = live.master_of(device.name)
        if master is not None and master == device.master and \
                master not in deleted:
            links.append(ops.set_link(device.name, nomaster=True))
        if link['up']:
            links.append(ops.set_link(device.name, up=False))
    plan.add('addresses', addresses)
    plan.add('links', links)
    if deleted:
        plan.add('delete', [ops.delete(deleted)])
        plan.deleted.extend(deleted)
    return plan


# NOTE(vpd): the same rules, for the read-back after an apply (.verify)
# and the plan of a whole document (.desired).
bond_options = _bond_options
live_bond_value = _live_bond_value
wanted_addresses = _wanted_addresses
role = _role
