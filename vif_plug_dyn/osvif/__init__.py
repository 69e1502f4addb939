"""vif_plug_dyn as an os-vif plugin.

os-vif finds its plugins with stevedore in the ``os_vif`` entry-point
namespace and hands each VIF to the plugin named by ``vif.plugin``. This
package registers two names there (see ``setup.cfg``):

``vif_plug_dyn``
    every VIF type the plugin serves: ``VIFBridge``, ``VIFOpenVSwitch``,
    ``VIFDirect`` and ``VIFHostDevice``.
``linux_bridge``
    ``VIFBridge`` only. Nova, unchanged, names the plugin after the port's
    Neutron ``vif_type`` (``bridge`` -> ``linux_bridge``, ``ovs`` ->
    ``ovs``); os-vif 5 no longer ships a ``linux_bridge`` plugin, so this
    name lets nova reach the library with no change to nova.

The plugin code (:mod:`vif_plug_dyn.osvif.plugin`) imports os-vif and is
only loaded by os-vif itself; this module does not import os-vif, so the
options below can be listed and documented without it.

Options live in the group os-vif gives the plugin, ``[os_vif_vif_plug_dyn]``
(os-vif registers ``CONFIG_OPTS`` under ``os_vif_`` + the entry point
name); the library's own options (``[vif_plug_dyn] network_dir``,
``state_path``, ``netns``...) are read from the same process configuration.
"""

import importlib.util

from oslo_config import cfg

#: The plugin's entry point name in the ``os_vif`` namespace, the value of
#: ``vif.plugin`` that selects it.
PLUGIN_NAME = 'vif_plug_dyn'
#: The name nova gives the plugin of Neutron ``vif_type='bridge'`` ports.
LINUX_BRIDGE_NAME = 'linux_bridge'
#: Entry-point namespace os-vif loads plugins from.
NAMESPACE = 'os_vif'
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
