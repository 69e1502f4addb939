"""The hypervisor adapter interface and the libvirt adapter's XML side."""

import pytest
from oslo_config import cfg

from vif_plug_dyn import endpoints as ep
from vif_plug_dyn import exception
from vif_plug_dyn import virt
from vif_plug_dyn.tests.unit.virt import samples
from vif_plug_dyn.virt import base
from vif_plug_dyn.virt.libvirt import adapter
from vif_plug_dyn.virt.libvirt import config

ENDPOINT = ep.EthernetEndpoint(port_id=samples.PORT, network='red',
                               mac='52:54:00:00:00:04', tap='vpd-tap0')


def test_namespace():
    assert virt.NAMESPACE == base.NAMESPACE == 'vif_plug_dyn.hypervisors'


def test_load_libvirt_through_entry_point():
    conf = cfg.ConfigOpts()
    loaded = virt.load_adapter('libvirt', conf)
    assert isinstance(loaded, adapter.LibvirtAdapter)
    assert loaded.conf is conf


def test_unknown_adapter():
    with pytest.raises(exception.HypervisorNotFound) as info:
        virt.load_adapter('hyper-v-9000', cfg.ConfigOpts())
    assert 'hyper-v-9000' in str(info.value)


def test_accepted_types_cover_every_endpoint_type():
    types = adapter.LibvirtAdapter().accepted_types()
    assert sorted(types) == sorted(ep.ENDPOINT_TYPES)
    assert types[0] == ep.ETHERNET


def test_interface_config():
    text = adapter.LibvirtAdapter().interface_config(
        ENDPOINT, link_up=False, guest_address='0000:00:07.0',
        alias='ua-a')
    iface = config.InterfaceConfig.parse_str(text)
    assert (iface.type, iface.target_dev, iface.target_managed,
            iface.link_state, iface.alias) == (
        'ethernet', 'vpd-tap0', False, 'down', 'ua-a')
    assert iface.guest_address is not None
    assert iface.guest_address.pci() == '0000:00:07.0'


def test_interface_config_unknown_option():
    with pytest.raises(exception.InvalidField) as info:
        adapter.LibvirtAdapter().interface_config(ENDPOINT, boot_order=1)
    assert info.value.kwargs['field'] == 'boot_order'
    assert 'alias' in str(info.value)


def test_xml_side_needs_no_connection():
    adapter_ = adapter.LibvirtAdapter()
    adapter_.interface_config(ENDPOINT)
    assert adapter_._host is None
    adapter_.close()


def test_other_adapters_cannot_list_macs_by_default():
    class Minimal(base.HypervisorAdapter):
        NAME = 'minimal'

        def accepted_types(self):
            return ()

        def interface_config(self, endpoint, **nic_options):
            return ''

        def attach(self, domain, endpoint, **kw):
            pass

        def detach(self, domain, mac, **kw):
            pass

        def set_link_state(self, domain, mac, up):
            pass

        def update_source(self, domain, endpoint):
            pass

        def migration_xml(self, domain_xml, dest_endpoints):
            return domain_xml

    with pytest.raises(exception.OperationNotSupported) as info:
        Minimal().interface_macs('<domain/>')
    assert 'minimal' in str(info.value)
    Minimal().close()


def test_another_hypervisor_needs_only_an_adapter():
    # The interface is complete: a subclass implementing it can be built
    # without touching anything else.
    class Other(base.HypervisorAdapter):
        def accepted_types(self):
            return (ep.ETHERNET,)

        def interface_config(self, endpoint, **nic_options):
            base.NicOptions.from_kwargs(nic_options)
            return '{"tap": "%s"}' % endpoint.tap

        def attach(self, domain, endpoint, *, live=True, persistent=True,
                   **nic_options):
            pass

        def detach(self, domain, mac, *, live=True, persistent=True):
            pass

        def set_link_state(self, domain, mac, up):
            pass

        def update_source(self, domain, endpoint):
            pass

        def migration_xml(self, domain_xml, dest_endpoints):
            return domain_xml

    assert Other().interface_config(ENDPOINT) == '{"tap": "vpd-tap0"}'

    class Incomplete(base.HypervisorAdapter):
        def accepted_types(self):
            return ()

    with pytest.raises(TypeError):
        Incomplete()
