"""Endpoints of every type with every option, shared by the libvirt XML
tests (unit and functional)."""

import itertools

from vif_plug_dyn import endpoints as ep
from vif_plug_dyn.virt import base

PORT = '0b9e5cbd-8a7a-4cf0-a3ba-5e2a3e5d6f01'
IFACE_ID = '7e2a3f0c-9d7b-4f43-8a5e-6a4d1c2b3e4f'
INSTANCE_ID = '09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f'

_macs = itertools.count(0x10)


def mac() -> str:
    """A fresh locally administered unicast MAC."""
    return '52:54:00:00:%02x:%02x' % divmod(next(_macs), 256)


def _common(**kw):
    base_fields = {'port_id': PORT, 'network': 'red', 'mac': mac()}
    base_fields.update(kw)
    return base_fields


def cases() -> list[tuple[str, ep.Endpoint, base.NicOptions]]:
    """``(name, endpoint, options)`` for every type and option."""
    ovs = ep.VirtualPort(type='openvswitch', interface_id=IFACE_ID)
    ovs_profile = ep.VirtualPort(type='openvswitch', interface_id=IFACE_ID,
                                 profile_id='gold')
    qbg = ep.VirtualPort(type='802.1Qbg', manager_id=11, type_id=1193047,
                         type_id_version=2, instance_id=INSTANCE_ID)
    qbg_min = ep.VirtualPort(type='802.1Qbg', manager_id=0, type_id=0,
                             type_id_version=0)
    qbh = ep.VirtualPort(type='802.1Qbh', profile_id='finance')
    full = base.NicOptions(model='virtio', link_up=True,
                           guest_address='0000:00:05.0', alias='ua-net-a')
    down = base.NicOptions(link_up=False, guest_address='0000:00:1f.7')
    none = base.NicOptions()
    out = [
        ('bridge-plain', ep.BridgeEndpoint(
            bridge='br0', tap='tap-a', **_common()), none),
        ('bridge-ovs', ep.BridgeEndpoint(
            bridge='br-int', tap='tap-b', virtualport=ovs,
            **_common(mtu=1450)), full),
        ('bridge-ovs-profile-queues', ep.BridgeEndpoint(
            bridge='br-int', tap='tap-c', virtualport=ovs_profile,
            **_common(mtu=9000, queues=4)), down),
        ('bridge-e1000', ep.BridgeEndpoint(
            bridge='br0', tap='tap-d', **_common()),
         base.NicOptions(model='e1000')),
        ('direct-qbg', ep.DirectEndpoint(
            source_dev='eth0', mode='vepa', virtualport=qbg,
            **_common(queues=2)), full),
        ('direct-qbg-min', ep.DirectEndpoint(
            source_dev='eth0', mode='vepa', virtualport=qbg_min,
            **_common()), none),
        ('direct-qbh', ep.DirectEndpoint(
            source_dev='eth1', mode='private', virtualport=qbh,
            **_common()), down),
        ('direct-passthrough-mtu-ignored', ep.DirectEndpoint(
            source_dev='eth2', mode='passthrough', **_common(mtu=9000)),
         none),
    ]
    for mode in ('bridge',):
        out.append(('direct-' + mode, ep.DirectEndpoint(
            source_dev='eth3', mode=mode, **_common()), none))
    out += [
        ('hostdev-vlan', ep.HostdevEndpoint(
            pci_address='0000:03:10.2', vlan=42, **_common()), none),
        ('hostdev-plain', ep.HostdevEndpoint(
            pci_address='0001:af:1f.7', **_common(mtu=1500, queues=8)),
         base.NicOptions(guest_address='0000:00:06.0', alias='ua-vf0')),
        ('ethernet', ep.EthernetEndpoint(tap='vpd-tap0', **_common()),
         none),
        ('ethernet-full', ep.EthernetEndpoint(
            tap='vpd-tap1', **_common(mtu=1400, queues=2)), full),
        ('network', ep.NetworkEndpoint(
            source_network='default', **_common()), none),
        ('network-portgroup', ep.NetworkEndpoint(
            source_network='default', portgroup='web',
            **_common(mtu=1500)), down),
    ]
    return out


def ids(case_list) -> list[str]:
    return [c[0] for c in case_list]
