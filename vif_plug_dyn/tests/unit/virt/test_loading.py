"""Hypervisor adapters by name and by configuration (stevedore)."""

import pytest
from oslo_config import cfg

import vif_plug_dyn
from vif_plug_dyn import exception
from vif_plug_dyn import opts
from vif_plug_dyn import virt
from vif_plug_dyn.virt.libvirt import adapter


def _conf(**overrides):
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], default_config_files=[])
    for key, value in overrides.items():
        conf.set_override(key, value, opts.GROUP)
    return conf


def test_installed_adapters_listed():
    assert 'libvirt' in virt.available_adapters()


def test_configured_adapter_defaults_to_libvirt():
    conf = _conf()
    assert conf[opts.GROUP].hypervisor == 'libvirt'
    loaded = virt.load_configured_adapter(conf)
    assert isinstance(loaded, adapter.LibvirtAdapter)
    assert loaded.conf is conf


def test_configured_adapter_by_name():
    conf = _conf(hypervisor='libvirt')
    assert type(virt.load_configured_adapter(conf)) is adapter.LibvirtAdapter


def test_unknown_configured_name_is_a_clear_error():
    conf = _conf(hypervisor='vmware-esx')
    with pytest.raises(exception.HypervisorNotFound) as info:
        virt.load_configured_adapter(conf)
    text = str(info.value)
    assert 'vmware-esx' in text
    assert 'vif_plug_dyn.hypervisors' in text
    assert 'libvirt' in text          # what is installed instead
    assert isinstance(info.value, LookupError)


def test_public_helper_uses_the_given_configuration():
    conf = _conf(hypervisor='nope')
    with pytest.raises(exception.HypervisorNotFound, match='nope'):
        vif_plug_dyn.load_hypervisor_adapter(conf)
    assert isinstance(vif_plug_dyn.load_hypervisor_adapter(_conf()),
                      adapter.LibvirtAdapter)


def test_public_helper_uses_the_initialised_configuration(conf):
    conf.set_override('hypervisor', 'not-installed', opts.GROUP)
    # initialize() checks the configured adapter is installed...
    with pytest.raises(exception.HypervisorNotFound,
                       match='not-installed .*has: libvirt, none'):
        vif_plug_dyn.initialize(conf)
    # ...unless told to run host-only.
    vif_plug_dyn.initialize(conf, hypervisor=None)
    try:
        with pytest.raises(exception.HypervisorNotFound,
                           match='not-installed'):
            vif_plug_dyn.load_hypervisor_adapter()
    finally:
        vif_plug_dyn.get_manager().close()


class _EntryPoint:
    name = 'broken'


def test_a_failing_adapter_is_not_reported_missing():
    with pytest.raises(exception.HypervisorLoadFailed) as info:
        virt._load_failed(None, _EntryPoint(), ImportError('no libfoo'))
    assert 'broken' in str(info.value) and 'no libfoo' in str(info.value)
    assert isinstance(info.value.__cause__, ImportError)
    own = exception.InvalidField(field='uri', value='x', reason='bad')
    with pytest.raises(exception.InvalidField):
        virt._load_failed(None, _EntryPoint(), own)
