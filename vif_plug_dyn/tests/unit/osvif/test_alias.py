"""The ``linux_bridge`` alias only where nothing else provides that name
(os-vif before 5 ships its own plugin of that name)."""

import logging

import pytest

os_vif = pytest.importorskip('os_vif')

from os_vif import exception as osv_exception  # noqa: E402
from os_vif import objects as osv_objects  # noqa: E402

from vif_plug_dyn import osvif  # noqa: E402
from vif_plug_dyn.osvif import plugin as plugin_mod  # noqa: E402
from vif_plug_dyn.tests.unit.osvif.test_plugin import vif_bridge  # noqa

OLD = 'vif_plug_linux_bridge.linux_bridge:LinuxBridgePlugin (os_vif 4.2.0)'


def test_alone_with_os_vif_5():
    # The os-vif installed for these tests (>= 5) has no linux_bridge.
    assert osvif.linux_bridge_providers() == []
    loaded = plugin_mod.LinuxBridgePlugin.load('linux_bridge')
    assert [v.vif_object_name for v in loaded.describe().vif_info] == [
        'VIFBridge']


@pytest.fixture
def old_os_vif(monkeypatch):
    monkeypatch.setattr(osvif, 'linux_bridge_providers', lambda: [OLD])


def test_alias_stands_down_beside_another(old_os_vif, caplog):
    osv_objects.register_all()
    with caplog.at_level(logging.WARNING):
        alias = plugin_mod.LinuxBridgePlugin.load('linux_bridge')
    assert alias.describe().vif_info == []
    errors = [r.getMessage() for r in caplog.records
              if r.levelno == logging.ERROR]
    assert errors == ['os-vif plugin linux_bridge is provided by %s; the '
                      'vif_plug_dyn alias stands down (use '
                      'plugin=vif_plug_dyn, or os-vif 5)' % OLD]
    with pytest.raises(osv_exception.PlugException, match='stands down'):
        alias.plug(vif_bridge(), None)


def test_main_plugin_says_where_the_name_went(old_os_vif, caplog):
    with caplog.at_level(logging.WARNING):
        main = plugin_mod.VifPlugDynPlugin.load('vif_plug_dyn')
    assert 'VIFBridge' in [v.vif_object_name
                           for v in main.describe().vif_info]
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and OLD in warnings[0]
    assert 'does not serve linux_bridge here' in warnings[0]


def test_providers_are_read_from_the_entry_points(monkeypatch):
    import importlib.metadata as md
    ours = md.EntryPoint('linux_bridge', osvif.LINUX_BRIDGE_TARGET,
                         'os_vif')
    theirs = md.EntryPoint(
        'linux_bridge', 'vif_plug_linux_bridge.linux_bridge:'
        'LinuxBridgePlugin', 'os_vif')
    seen = {}

    def entry_points(**kw):
        seen.update(kw)
        return [ours, theirs]
    monkeypatch.setattr(md, 'entry_points', entry_points)
    assert osvif.linux_bridge_providers() == [
        'vif_plug_linux_bridge.linux_bridge:LinuxBridgePlugin']
    assert seen == {'group': 'os_vif', 'name': 'linux_bridge'}
