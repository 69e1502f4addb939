"""Read a live host interface into the definition model, as
``virsh iface-dumpxml`` does.

:func:`dump_live` turns a device of a :class:`~vif_plug_dyn.hostif.state.
HostState` into a :class:`~vif_plug_dyn.hostif.model.HostInterface`:

* the kind comes from the kernel's link kind: ``bridge``, ``bond`` and
  ``vlan`` by name, every other device (a NIC, veth, tap, macvlan...) is
  an ``ethernet``;
* the MTU, and the MAC address of ethernet interfaces (libvirt's format
  has no MAC for the others);
* static addresses of the top device (global, site and host scope;
  kernel-made link-local addresses are left out so the dump can be
  defined again);
* bridge STP and forward delay, and its members; bond mode, monitoring
  and slaves; VLAN tag and parent.

Members are *bare* interfaces, as in a definition: their addresses, if
any, are not shown. :func:`dump_live_xml` adds libvirt's status element
``<link state='...'/>`` (the kernel's operational state) to every
interface that has one in libvirt's schema (not bridges).
"""

import xml.etree.ElementTree as ET
from typing import Any

from vif_plug_dyn import exception
from vif_plug_dyn import validate
from vif_plug_dyn.hostif import addressing
from vif_plug_dyn.hostif import model
from vif_plug_dyn.hostif import plan as plan_mod
from vif_plug_dyn.hostif import state as state_mod
from vif_plug_dyn.hostif import xml as ifxml
from vif_plug_dyn.privsep import ops
from vif_plug_dyn.privsep import rtnl

#: Address scopes shown (link-local 253 and nowhere 255 are not).
_SHOWN_SCOPES = (0, 200, 254)
MIN_MTU, MAX_MTU = 68, 65535
_ARP_VALIDATE = {v: k for k, v in rtnl.ARP_VALIDATE.items()}
_BOND_MODES = {v: k for k, v in ops.BOND_MODES.items()}


def dump_live(name: str, live: state_mod.HostState) -> model.HostInterface:
    """Describe a live device as a definition.

    :param name: the device.
    :param live: the host's links and addresses.
    :returns: the interface, without a start mode (live state has none).
    :raises DeviceNotFound: no such device.
    :raises InvalidHostInterface: the device cannot be described in
        libvirt's format (a bond without slaves, a name the format
        refuses...).
    """
    if live.get(name) is None:
        raise exception.DeviceNotFound(device=name)
    try:
        return _interface(name, live, top=True, seen=set())
    except exception.InvalidField as exc:
        raise exception.InvalidHostInterface(
            name=name, element='/interface/' + str(exc.kwargs.get('field')),
            reason='the live device cannot be described: %s'
                   % exc.kwargs.get('reason')) from None


def _interface(name: str, live: state_mod.HostState, top: bool,
               seen: set[str]) -> model.HostInterface:
    link = live.links[name]
    seen.add(name)
    kind = plan_mod.model_kind(link['kind'])
    data = link.get('data') or {}
    fields: dict[str, Any] = {'kind': kind, 'name': name}
    if kind == model.ETHERNET and _unicast(link.get('mac')):
        fields['mac'] = link['mac']
    if top and link.get('mtu') is not None and \
            MIN_MTU <= link['mtu'] <= MAX_MTU:
        # NOTE(vpd): loopback's 65536 is beyond what a definition takes.
        fields['mtu'] = link['mtu']
        fields.update(_protocols(live.addresses_of(name)))
    if kind in (model.BRIDGE, model.BOND):
        fields['members'] = tuple(
            _interface(m['name'], live, False, seen)
            for m in live.members(name) if m['name'] not in seen)
    if kind == model.BRIDGE:
        fields['stp'] = bool(data.get('stp_state'))
        if data.get('forward_delay') is not None:
            fields['delay'] = data['forward_delay'] / 100.0
    elif kind == model.BOND:
        fields.update(_bond(data))
    elif kind == model.VLAN:
        fields['tag'] = data.get('vlan_id')
        fields['parent'] = live.lower_of(name)
    return model.HostInterface(**fields)


def _unicast(mac: str | None) -> bool:
    # NOTE(vpd): loopback's all-zero address (and any MAC a definition
    # could not carry) is left out rather than failing the dump.
    if not mac:
        return False
    try:
        validate.mac(mac)
    except exception.InvalidField:
        return False
    return True


def _protocols(items: list[dict[str, Any]]) -> dict[str, Any]:
    found: dict[str, list[addressing.IPAddress]] = {
        addressing.IPV4: [], addressing.IPV6: []}
    for item in items:
        if item['scope'] not in _SHOWN_SCOPES or item['address'] is None:
            continue
        family = (addressing.IPV4 if item['family'] == 'inet'
                  else addressing.IPV6)
        found[family].append(addressing.IPAddress(address=item['address'],
                                                  prefix=item['prefix']))
    out: dict[str, Any] = {}
    for family, addrs in found.items():
        if addrs:
            out[family] = addressing.Protocol(family=family,
                                              addresses=tuple(addrs))
    return out


def _bond(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if data.get('mode') is not None:
        out['bond_mode'] = _BOND_MODES.get(data['mode'])
    if data.get('miimon'):
        carrier = None
        if data.get('use_carrier') is not None:
            carrier = 'netif' if data['use_carrier'] else 'ioctl'
        out['miimon'] = model.MiiMon(
            freq=data['miimon'], updelay=data.get('updelay'),
            downdelay=data.get('downdelay'), carrier=carrier)
    elif data.get('arp_interval') and data.get('arp_targets'):
        validate = data.get('arp_validate')
        out['arpmon'] = model.ArpMon(
            interval=data['arp_interval'], target=data['arp_targets'][0],
            validate=None if validate is None else _ARP_VALIDATE.get(
                validate))
    return out


def dump_live_xml(name: str, live: state_mod.HostState) -> str:
    """:func:`dump_live` as libvirt XML with ``<link state='...'/>``.

    :raises DeviceNotFound: no such device.
    :raises InvalidHostInterface: see :func:`dump_live`.
    """
    iface = dump_live(name, live)
    root = ifxml.element(iface)
    for element in root.iter('interface'):
        kind = element.get('type')
        link = live.get(element.get('name') or '')
        # NOTE(vpd): the <interface name=.../> inside <vlan> names the
        # parent and has no type; libvirt's schema gives bridges no link
        # element.
        if kind is None or kind == model.BRIDGE or link is None:
            continue
        status = ET.Element('link', state=link.get('operstate') or
                            'unknown')
        element.insert(0, status)
    ET.indent(root)
    return ET.tostring(root, encoding='unicode') + '\n'
