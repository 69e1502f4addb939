"""The guest side of the cable: link state and re-attach, with a fake
hypervisor (the real one is exercised by the functional tests)."""

import uuid

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn import manager as manager_mod
from vif_plug_dyn import opts
from vif_plug_dyn import ports
from vif_plug_dyn.tests.unit.conftest import FakeHost
from vif_plug_dyn.tests.unit.conftest import write_network

POOLS = {
    'blue': "<network type='direct'><name>blue</name><forward mode='vepa'>"
            "<interface dev='eth1'/></forward></network>",
    'navy': "<network type='direct'><name>navy</name>"
            "<forward mode='bridge'><interface dev='eth2'/></forward>"
            "</network>",
}


class PresentHost(FakeHost):
    def exists(self, name):
        return name in ('eth1', 'eth2')


class FakeHypervisor:
    def __init__(self, missing=False):
        self.calls = []
        self.missing = missing

    def set_link_state(self, domain, mac, up):
        if self.missing:
            raise exception.DomainNotFound(operation='link', domain=domain,
                                           reason='not here')
        self.calls.append(('link', domain, mac, up))

    def update_source(self, domain, endpoint):
        self.calls.append(('source', domain, endpoint.bridge))

    def reattach(self, domain, endpoint):
        self.calls.append(('reattach', domain, endpoint.source_dev,
                           endpoint.mode))


def _manager(conf, tmp_path, hypervisor, reconnect='refuse'):
    for name, xml in POOLS.items():
        write_network(str(tmp_path / 'networks'), name, xml)
    conf.set_override('direct_reconnect', reconnect, opts.GROUP)
    return manager_mod.EndpointManager(conf, host=PresentHost(),
                                       hypervisor=hypervisor)


def _port(network='red'):
    return ports.Port(port_id=str(uuid.uuid4()), mac='52:54:00:80:00:01',
                      network=network, vm_uuid=str(uuid.uuid4()))


def test_guest_link_follows_the_cable(conf, tmp_path):
    hv = FakeHypervisor()
    mgr = _manager(conf, tmp_path, hv)
    port = _port()
    mgr.request_endpoint(port, ['ethernet'], connected=False)
    mgr.connect(port.port_id)
    mgr.disconnect(port.port_id)
    mgr.set_link_state(port.port_id, 'up')
    mgr.set_link_state(port.port_id, 'follow')
    # Built with its cable out: the guest is told so at once.
    assert hv.calls == [('link', port.vm_uuid, port.mac, False),
                        ('link', port.vm_uuid, port.mac, True),
                        ('link', port.vm_uuid, port.mac, False),
                        ('link', port.vm_uuid, port.mac, True),
                        ('link', port.vm_uuid, port.mac, False)]
    with pytest.raises(exception.InvalidField, match='link'):
        mgr.set_link_state(port.port_id, 'sideways')


def test_bridge_endpoint_move_keeps_live_xml_truthful(conf, tmp_path):
    hv = FakeHypervisor()
    mgr = _manager(conf, tmp_path, hv)
    mgr.registry.define("<network type='bridge'><name>pink</name>"
                        "<driver name='noop'/><bridge name='br-pink'/>"
                        "</network>")
    port = _port()
    mgr.request_endpoint(port, ['bridge'])
    mgr.connect(port.port_id, 'pink')
    assert ('source', port.vm_uuid, 'br-pink') in hv.calls


def test_no_guest_is_not_an_error(conf, tmp_path):
    mgr = _manager(conf, tmp_path, FakeHypervisor(missing=True))
    port = _port()
    mgr.request_endpoint(port, ['ethernet'], connected=False)
    assert mgr.connect(port.port_id).network == 'red'


def test_genuine_macvtap_refused_unless_reattach(conf, tmp_path):
    hv = FakeHypervisor()
    mgr = _manager(conf, tmp_path, hv)
    port = _port('blue')
    mgr.request_endpoint(port, ['direct'])
    with pytest.raises(exception.OperationNotSupported,
                       match='direct_reconnect'):
        mgr.connect(port.port_id, 'navy')
    assert mgr.get_endpoint(port.port_id).source_dev == 'eth1'


def test_genuine_macvtap_reattached_in_its_slot(conf, tmp_path):
    hv = FakeHypervisor()
    mgr = _manager(conf, tmp_path, hv, reconnect='reattach')
    port = _port('blue')
    mgr.request_endpoint(port, ['direct'])
    moved = mgr.connect(port.port_id, 'navy')
    assert (moved.source_dev, moved.mode) == ('eth2', 'bridge')
    assert ('reattach', port.vm_uuid, 'eth2', 'bridge') in hv.calls
    assert mgr.ledger.allocations() == {('navy', 'eth2'): [port.port_id]}
