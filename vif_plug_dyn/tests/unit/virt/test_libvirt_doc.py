"""The XML shown in doc/source/user/libvirt-adapter.rst is what the code
produces."""

import os
import re

import pytest

from vif_plug_dyn import endpoints as ep
from vif_plug_dyn.virt import base
from vif_plug_dyn.virt.libvirt import vif

DOC = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'doc',
                   'source', 'user', 'libvirt-adapter.rst')
P = '0b9e5cbd-8a7a-4cf0-a3ba-5e2a3e5d6f01'
INSTANCE = '7e2a3f0c-9d7b-4f43-8a5e-6a4d1c2b3e4f'


def _examples():
    eth = ep.EthernetEndpoint(port_id=P, network='red',
                              mac='52:54:00:12:34:05', tap='vpd-p5',
                              mtu=1500)
    none = base.NicOptions()
    return [
        (ep.BridgeEndpoint(
            port_id=P, network='green', mac='52:54:00:12:34:01',
            bridge='br-int', tap='tap-p1', mtu=1450, queues=4,
            virtualport=ep.VirtualPort(type='openvswitch',
                                       interface_id=P)), none),
        (ep.DirectEndpoint(
            port_id=P, network='blue', mac='52:54:00:12:34:02',
            source_dev='eth2', mode='vepa', virtualport=ep.VirtualPort(
                type='802.1Qbg', manager_id=11, type_id=1193047,
                type_id_version=2, instance_id=INSTANCE)), none),
        (ep.DirectEndpoint(
            port_id=P, network='blue', mac='52:54:00:12:34:03',
            source_dev='eth3', mode='private', virtualport=ep.VirtualPort(
                type='802.1Qbh', profile_id='finance')), none),
        (ep.HostdevEndpoint(
            port_id=P, network='fast', mac='52:54:00:12:34:04',
            pci_address='0000:03:10.2', vlan=42), none),
        (eth, none),
        (ep.NetworkEndpoint(
            port_id=P, network='nat', mac='52:54:00:12:34:06',
            source_network='default', portgroup='web'), none),
        (eth, base.NicOptions(link_up=False, guest_address='0000:00:05.0',
                              alias='ua-p5')),
    ]


def _doc_blocks():
    if not os.path.exists(DOC):
        pytest.skip('documentation sources are not installed')
    with open(DOC, encoding='utf-8') as handle:
        text = handle.read()
    blocks = re.findall(r'\.\. code-block:: xml\n\n((?:   .*\n|\n)+)', text)
    return ['\n'.join(line[3:] for line in block.strip('\n').split('\n'))
            for block in blocks]


def test_doc_examples_match_the_code():
    converter = vif.EndpointToInterface()
    generated = [converter.build(e, o).to_xml(pretty=True)
                 for e, o in _examples()]
    assert _doc_blocks() == generated
