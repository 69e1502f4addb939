"""Generated XML defines in libvirt's own parser and reads back the same.

libvirt's ``test:///default`` driver runs inside the client library (no
daemon, no root), parses domains with the same code as the QEMU driver and
writes them back with ``XMLDesc()``. It refuses live device operations,
so only definitions are checked here.
"""

import itertools
import uuid

import pytest

from vif_plug_dyn import endpoints as ep
from vif_plug_dyn.tests.unit.virt import samples
from vif_plug_dyn.virt.libvirt import config
from vif_plug_dyn.virt.libvirt import domain
from vif_plug_dyn.virt.libvirt import vif

libvirt = pytest.importorskip('libvirt', reason='libvirt-python is not '
                                                'installed')

CASES = samples.cases()
CONVERTER = vif.EndpointToInterface()
_names = itertools.count()


@pytest.fixture(scope='module')
def conn():
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    connection = libvirt.open('test:///default')
    yield connection
    connection.close()


def _define(conn, xml):
    dom = conn.defineXML(xml)
    try:
        return dom.XMLDesc(0)
    finally:
        dom.undefine()


def _normalise(generated, read):
    """What libvirt adds on its own to an interface it was given."""
    # NOTE(vpd): the test driver names a target device for every NIC that
    # has none (testnet0, ...), as QEMU names taps vnetN; nothing else may
    # differ.
    if generated.target_dev is None and read.target_dev is not None:
        assert read.target_dev.startswith('testnet'), read.target_dev
        read.target_dev = None
    # libvirt makes up the VSI instance id of an 802.1Qbg port that has
    # none (the switch needs one); it is a UUID.
    vport, read_vport = generated.virtualport, read.virtualport
    if vport is not None and read_vport is not None and \
            vport.type == '802.1Qbg' and vport.instance_id is None:
        assert uuid.UUID(read_vport.instance_id)
        read_vport.instance_id = None
    return read


def _name():
    return 'vpd-%d-%s' % (next(_names), uuid.uuid4().hex[:8])


@pytest.mark.parametrize('name,endpoint,options', CASES,
                         ids=samples.ids(CASES))
def test_each_interface_defines_and_reads_back(conn, name, endpoint,
                                               options):
    iface = CONVERTER.build(endpoint, options)
    read = domain.list_interfaces(_define(
        conn, domain.new_domain_xml(_name(), [iface], 'test')))
    assert list(read) == [endpoint.mac]
    assert _normalise(iface, read[endpoint.mac]) == iface


def test_full_domain_with_every_type(conn):
    # Every case at once, with distinct guest PCI slots.
    ifaces = []
    for slot, (_name_, endpoint, options) in enumerate(CASES, start=3):
        iface = CONVERTER.build(endpoint, options)
        iface.guest_address = config.AddressConfig.from_pci(
            '0000:00:%02x.0' % slot)
        if iface.alias is not None:
            iface.alias = 'ua-n%d' % slot  # libvirt wants them unique
        ifaces.append(iface)
    read = domain.list_interfaces(_define(
        conn, domain.new_domain_xml(_name(), ifaces, 'test')))
    assert list(read) == [i.mac for i in ifaces]
    for iface in ifaces:
        assert _normalise(iface, read[iface.mac]) == iface


def test_edited_domains_define(conn):
    cases = {c[0]: c for c in CASES}
    _n, bridge, bridge_opts = cases['bridge-ovs']
    _n, eth, eth_opts = cases['ethernet-full']
    xml = _define(conn, domain.new_domain_xml(
        _name(), [CONVERTER.build(bridge, bridge_opts)], 'test'))
    # add, link state, replace, then migration; each defines and reads
    # back with the change.
    xml = _define(conn, domain.add_interface(
        xml, CONVERTER.build(eth, eth_opts.__class__(alias='ua-e1'))))
    assert list(domain.list_interfaces(xml)) == [bridge.mac, eth.mac]
    xml = _define(conn, domain.set_link_state(xml, eth.mac, False))
    assert domain.get_interface(xml, eth.mac).link_state == 'down'
    moved = bridge.replace(bridge='br-other')
    xml = _define(conn, domain.replace_interface(
        xml, CONVERTER.build(moved)))
    got = domain.get_interface(xml, bridge.mac)
    assert got.source_bridge == 'br-other'
    assert got.guest_address is not None
    assert got.guest_address.pci() == bridge_opts.guest_address
    dest = {
        bridge.mac: ep.NetworkEndpoint(
            port_id=samples.PORT, network='red', mac=bridge.mac,
            source_network='default'),
        eth.mac: eth.replace(tap='vpd-dst'),
    }
    xml = _define(conn, domain.migration_xml(xml, dest))
    read = domain.list_interfaces(xml)
    assert read[bridge.mac].type == 'network'
    assert read[bridge.mac].alias == bridge_opts.alias
    assert read[eth.mac].target_dev == 'vpd-dst'
    assert read[eth.mac].link_state == 'down'
    xml = _define(conn, domain.remove_interface(xml, bridge.mac))
    assert list(domain.list_interfaces(xml)) == [eth.mac]


def test_libvirt_rejects_what_our_checks_reject(conn):
    # A sanity check that defining is a real test: libvirt refuses an
    # interface our formatter would also refuse (a source-less bridge).
    bad = domain.new_domain_xml(_name(), [], 'test').replace(
        '<devices/>', "<devices><interface type='bridge'><mac "
        "address='52:54:00:00:00:01'/></interface></devices>")
    with pytest.raises(libvirt.libvirtError):
        _define(conn, bad)
