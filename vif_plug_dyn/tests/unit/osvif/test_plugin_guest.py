"""The os-vif plugin tells guests too: it initialises the library with
the configured hypervisor adapter, and inside nova-compute the libvirt
adapter shares nova's libvirt event loop."""

import sys
import types
import uuid

import pytest

pytest.importorskip('os_vif')

from os_vif import objects as osv_objects  # noqa: E402
from os_vif.objects import vif as osv_vif  # noqa: E402

from vif_plug_dyn import exception  # noqa: E402
from vif_plug_dyn import ledger as ledger_mod  # noqa: E402
from vif_plug_dyn import opts  # noqa: E402
from vif_plug_dyn import osvif  # noqa: E402
from vif_plug_dyn import virt  # noqa: E402
from vif_plug_dyn.osvif import plugin as plugin_mod  # noqa: E402
from vif_plug_dyn.tests.unit.conftest import FakeHost  # noqa: E402
from vif_plug_dyn.virt.libvirt import host as libvirt_host  # noqa: E402

VM = '8a2f4c1e-7d3b-4e5a-9c6f-0b1d2e3f4a5b'


class Loop:
    def __init__(self, running=False):
        self.external = False
        self.running = running

    def use_external(self):
        if self.running:
            raise exception.OperationNotSupported(
                operation='x', by='y', reason='own loop runs')
        self.external = True


class Adapter:
    def __init__(self):
        self.calls = []

    def set_link_state(self, domain, mac, up):
        self.calls.append((domain, mac, up))
        raise exception.DomainNotFound(operation='link', domain=domain,
                                       reason='not defined yet')

    def close(self):
        pass


@pytest.fixture
def plugconf(conf):
    conf.set_override('hypervisor', 'libvirt', opts.GROUP)
    osvif.register_opts(conf)
    return conf


def _vif():
    port_id = str(uuid.uuid4())
    network = osv_objects.network.Network(id=str(uuid.uuid4()), label='red')
    return osv_vif.VIFBridge(id=port_id, address='52:54:00:aa:00:07',
                             network=network, plugin='vif_plug_dyn',
                             vif_name='tap' + port_id[:11],
                             bridge_name='br-red')


def test_plug_wires_the_configured_adapter(plugconf, monkeypatch):
    adapter = Adapter()
    monkeypatch.setattr(virt, 'load_adapter', lambda name, conf: adapter)
    monkeypatch.setattr(libvirt_host, 'EVENT_LOOP', Loop())
    plugin = plugin_mod.VifPlugDynPlugin.from_conf(plugconf, host=FakeHost())
    vif = _vif()
    plugin.plug(vif, osv_objects.instance_info.InstanceInfo(
        uuid=VM, name='vm-1', project_id='demo'))
    # nova plugs before it defines the domain: told, and kept pending.
    assert adapter.calls == [(VM, vif.address, True)]
    guest = plugin.manager.ledger.guest_links([vif.id])[vif.id]
    assert guest.state == ledger_mod.GUEST_PENDING
    # Not inside nova-compute: the library keeps its own event loop.
    assert not libvirt_host.EVENT_LOOP.external
    plugin.manager.close()


def test_inside_nova_the_adapter_uses_novas_event_loop(plugconf,
                                                       monkeypatch):
    monkeypatch.setitem(sys.modules, plugin_mod.NOVA_LIBVIRT_HOST,
                        types.ModuleType(plugin_mod.NOVA_LIBVIRT_HOST))
    loop = Loop()
    monkeypatch.setattr(libvirt_host, 'EVENT_LOOP', loop)
    plugin_mod._share_nova_event_loop(plugconf)
    assert loop.external
    # Our own loop already running: left alone, no second registration.
    busy = Loop(running=True)
    monkeypatch.setattr(libvirt_host, 'EVENT_LOOP', busy)
    plugin_mod._share_nova_event_loop(plugconf)
    assert not busy.external
    # Host-only: nothing to share.
    plugconf.set_override('hypervisor', 'none', opts.GROUP)
    idle = Loop()
    monkeypatch.setattr(libvirt_host, 'EVENT_LOOP', idle)
    plugin_mod._share_nova_event_loop(plugconf)
    assert not idle.external
