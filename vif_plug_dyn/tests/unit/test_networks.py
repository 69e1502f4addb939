import os

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn import networks

GOOD = {
    'bridge': """<network type='bridge'>
  <name>red</name>
  <uuid>6f1c7c4e-8a9b-4c1d-9e2f-0123456789ab</uuid>
  <bridge name='br-red' managed='no' stp='on' delay='2'/>
  <uplink dev='eth1' vlan='42'/>
  <mtu size='9000'/>
</network>""",
    'openvswitch': """<network type='openvswitch'>
  <name>green</name><bridge name='br-int'/><vlan><tag id='10'/></vlan>
</network>""",
    'direct': """<network type='direct'>
  <name>blue</name>
  <forward mode='private'>
    <interface dev='eth2' maxConnections='8'/><interface dev='eth3'/>
  </forward>
</network>""",
    'hostdev': """<network type='hostdev'>
  <name>fast</name><driver name='hostdev'/>
  <forward mode='hostdev'><pf dev='ens1f0'/><pf dev='ens1f1'/></forward>
  <vlan><tag id='42'/></vlan>
</network>""",
    'virtual': """<network type='virtual'>
  <name>nat</name><source network='default' portgroup='web'/>
</network>""",
}


@pytest.mark.parametrize('kind', sorted(GOOD))
def test_parse_and_round_trip(kind):
    network = networks.Network.from_xml(GOOD[kind])
    assert network.kind == kind
    again = networks.Network.from_xml(network.to_xml())
    assert again == network


def test_parsed_fields():
    red = networks.Network.from_xml(GOOD['bridge'])
    assert (red.bridge, red.managed, red.stp, red.delay) == (
        'br-red', False, True, 2)
    assert (red.uplink, red.uplink_vlan, red.mtu) == ('eth1', 42, 9000)
    assert red.lower_devices() == ('eth1',)
    blue = networks.Network.from_xml(GOOD['direct'])
    assert blue.mode == 'private'
    assert blue.connection_limit('eth2') == 8
    assert blue.connection_limit('eth3') is None
    assert blue.lower_devices() == ('eth2', 'eth3')
    with pytest.raises(exception.InvalidField):
        blue.connection_limit('eth9')
    fast = networks.Network.from_xml(GOOD['hostdev'])
    assert fast.pfs == ('ens1f0', 'ens1f1') and fast.vlan == 42
    assert fast.driver == 'hostdev'


def test_passthrough_limit_is_one():
    net = networks.Network.from_xml(
        "<network type='direct'><name>p</name><forward mode='passthrough'>"
        "<interface dev='eth2' maxConnections='5'/></forward></network>")
    assert net.connection_limit('eth2') == 1


BAD = [
    ('<network', 'line 1', 'not well-formed'),
    ('<net/>', '/net', 'root element'),
    ('<network type="bridge"><name>a</name></network>',
     '/network/bridge/@name', 'bridge.name'),
    ('<network type="wifi"><name>a</name></network>', '/network/@type',
     'must be one of'),
    ('<network type="bridge"><bridge name="b"/></network>', '/network/name',
     'missing'),
    ('<network type="bridge"><name>a</name><bridge name="b" managed="1"/>'
     '</network>', '/network/bridge/@managed', "'yes' or 'no'"),
    ('<network type="bridge"><name>a</name><bridge name="b" delay="99"/>'
     '</network>', '/network/bridge/@delay', '0-30'),
    ('<network type="bridge"><name>a</name><bridge name="b"/>'
     '<uplink vlan="5"/></network>', '/network/uplink/@vlan', 'uplink dev'),
    ('<network type="bridge"><name>a</name><bridge name="b"/>'
     '<mtu size="big"/></network>', '/network/mtu/@size', 'not an integer'),
    ('<network type="bridge"><name>a</name><bridge name="b"/>'
     '<mtu size="20"/></network>', '/network/mtu/@size', '68 and 65535'),
    ('<network type="bridge"><name>a</name><bridge name="b"/><wat/>'
     '</network>', '/network/wat', 'unknown element'),
    ('<network type="direct"><name>a</name><forward mode="vepa"/>'
     '</network>', '/network/forward/interface', 'at least one'),
    ('<network type="direct"><name>a</name><forward mode="vepa">'
     '<interface dev="e1"/><interface dev="e1"/></forward></network>',
     '/network/forward/interface/@dev', 'listed twice'),
    ('<network type="direct"><name>a</name><forward mode="vepa">'
     '<interface dev="e1"/><interface dev="e/2"/></forward></network>',
     '/network/forward/interface[2]', 'interface.dev'),
    ('<network type="direct"><name>a</name><forward mode="vepa">'
     '<interface dev="e1" maxConnections="0"/></forward></network>',
     '/network/forward/interface[1]', 'maxConnections'),
    ('<network type="hostdev"><name>a</name><forward mode="hostdev"/>'
     '</network>', '/network/forward/pf', 'at least one PF'),
    ('<network type="openvswitch"><name>a</name><bridge name="b"/>'
     '<vlan><tag id="1"/><tag id="2"/></vlan></network>', '/network/vlan',
     'exactly one'),
    ('<network type="virtual"><name>a</name></network>',
     '/network/source/@network', 'must be a string'),
    ('<network type="virtual"><name>a</name><source network="d"/>'
     '<bridge name="x"/></network>', '/network/bridge', 'not used by'),
    ('<!DOCTYPE x [<!ENTITY a "b">]><network/>', 'line 1', 'DTD'),
]


@pytest.mark.parametrize('xml,element,reason', BAD)
def test_errors_name_file_and_element(xml, element, reason):
    with pytest.raises(exception.InvalidNetworkDefinition) as err:
        networks.Network.from_xml(xml, source='/etc/nets/a.xml')
    message = str(err.value)
    assert '/etc/nets/a.xml' in message
    assert 'at %s' % element in message, message
    assert reason in message


def test_registry_define_load_undefine(tmp_path):
    registry = networks.NetworkRegistry(str(tmp_path / 'nets'))
    assert registry.load() == []
    red = registry.define(GOOD['bridge'])
    assert os.path.exists(tmp_path / 'nets' / 'red.xml')
    with pytest.raises(exception.NetworkExists, match='red'):
        registry.define(GOOD['bridge'])
    registry.define(red, replace=True)
    other = networks.NetworkRegistry(str(tmp_path / 'nets'))
    assert other.load() == [red]
    assert other.get('red') == red
    registry.undefine('red')
    assert not os.path.exists(tmp_path / 'nets' / 'red.xml')
    with pytest.raises(exception.NetworkNotFound, match='red'):
        registry.get('red')
    with pytest.raises(exception.NetworkNotFound):
        registry.undefine('red')
    assert [n for n in os.listdir(tmp_path / 'nets')] == []


def test_registry_refuses_duplicates_and_keeps_old_state(tmp_path):
    (tmp_path / 'a.xml').write_text(GOOD['bridge'])
    registry = networks.NetworkRegistry(str(tmp_path))
    registry.load()
    (tmp_path / 'b.xml').write_text(GOOD['bridge'])
    with pytest.raises(exception.InvalidNetworkDefinition) as err:
        registry.load()
    assert 'b.xml' in str(err.value) and 'a.xml' in str(err.value)
    assert registry.get('red').name == 'red'


def test_registry_bad_file_named(tmp_path):
    (tmp_path / 'broken.xml').write_text('<network type="bridge"/>')
    (tmp_path / 'ignored.txt').write_text('not xml')
    with pytest.raises(exception.InvalidNetworkDefinition,
                       match='broken.xml'):
        networks.NetworkRegistry(str(tmp_path)).load()


def test_network_object_serialises():
    net = networks.Network.from_xml(GOOD['direct'])
    assert networks.Network.from_primitive(net.to_primitive()) == net
