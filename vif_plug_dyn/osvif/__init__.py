"""vif_plug_dyn as an os-vif plugin.

os-vif finds its plugins with stevedore in the ``os_vif`` entry-point
namespace and hands each VIF to the plugin named by ``vif.plugin``. This
package registers two names there (see ``setup.cfg``):

``vif_plug_dyn``
    every VIF type the plugin serves: ``VIFBridge``, ``VIFOpenVSwitch``,
    ``VIFDirect`` and ``VIFHostDevice``.
``linux_bridge``
    ``VIFBridge`` only. nova 31 to 33 name the plugin after the port's
    Neutron ``vif_type`` (``bridge`` -> ``linux_bridge``); os-vif 5 no
    longer ships a ``linux_bridge`` plugin, so with os-vif 5 this name
    lets those nova releases reach the library unchanged. nova 34 and
    later refuse Neutron's ``bridge`` ports outright ("Linux bridge VIF
    type is no longer supported") and never reach it: with them, bind
    ports as vif_type ``tap`` (see ``doc/source/user/nova.rst``). Where
    another package provides ``linux_bridge`` (os-vif before 5 ships its
    own), the alias stands down and says so in the log
    (:func:`linux_bridge_providers`).

The plugin code (:mod:`vif_plug_dyn.osvif.plugin`) imports os-vif and is
only loaded by os-vif itself; this module does not import os-vif, so the
options below can be listed and documented without it.

Options live in the group os-vif gives the plugin, ``[os_vif_vif_plug_dyn]``
(os-vif registers ``CONFIG_OPTS`` under ``os_vif_`` + the entry point
name); the library's own options (``[vif_plug_dyn] network_dir``,
``state_path``, ``netns``...) are read from the same process configuration.
"""

import importlib.metadata
import importlib.util

from oslo_config import cfg

#: The plugin's entry point name in the ``os_vif`` namespace, the value of
#: ``vif.plugin`` that selects it.
PLUGIN_NAME = 'vif_plug_dyn'
#: The name nova gives the plugin of Neutron ``vif_type='bridge'`` ports.
LINUX_BRIDGE_NAME = 'linux_bridge'
#: Entry-point namespace os-vif loads plugins from.
NAMESPACE = 'os_vif'
#: This package's ``linux_bridge`` entry point.
LINUX_BRIDGE_TARGET = 'vif_plug_dyn.osvif.plugin:LinuxBridgePlugin'
#: The option group os-vif registers the plugin's ``CONFIG_OPTS`` in.
CONFIG_GROUP = 'os_vif_' + PLUGIN_NAME

OPTS = [
    cfg.DictOpt('network_map', default={},
                help='Host network for os-vif VIFs, keyed by what the VIF '
                     'carries: its network\'s UUID (vif.network.id), its '
                     'network\'s label (vif.network.label) or the bridge '
                     'name it will be configured with (vif.bridge_name, '
                     'else vif.network.bridge), tried in that order; the '
                     'value is the name of a network defined in '
                     '[vif_plug_dyn] network_dir. A VIF no key matches goes '
                     'to the network named like its label, else to the one '
                     'network whose bridge is the VIF\'s bridge.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register the plugin's options in :data:`CONFIG_GROUP` of ``conf``.

    Registering again (os-vif already did for the entry point
    ``vif_plug_dyn``) is harmless.
    """
    conf.register_opts(OPTS, group=CONFIG_GROUP)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """The plugin's options, for documentation and config generators."""
    return [(CONFIG_GROUP, list(OPTS))]


def os_vif_installed() -> bool:
    """Whether os-vif can be imported in this environment."""
    return importlib.util.find_spec('os_vif') is not None


def linux_bridge_providers() -> list[str]:
    """Other packages' ``linux_bridge`` plugins in the ``os_vif``
    entry-point namespace (os-vif before 5 ships one).

    NOTE(vpd): stevedore loads two entry points of one name without a
    word and os-vif then uses one of them; the alias must know when it is
    not alone, to stand down and say so rather than be a silent
    duplicate.

    :returns: their entry point values (``module:Class (distribution
        version)``), empty when the alias is the only one.
    """
    found = []
    for point in importlib.metadata.entry_points(group=NAMESPACE,
                                                 name=LINUX_BRIDGE_NAME):
        if point.value == LINUX_BRIDGE_TARGET:
            continue
        dist = getattr(point, 'dist', None)
        where = '' if dist is None else ' (%s %s)' % (
            dist.metadata['Name'], dist.version)
        found.append(point.value + where)
    return sorted(found)
