"""Host interface configuration: ethernet, bridge, bond and vlan.

Definitions use libvirt's host interface XML (:mod:`.xml`), are modelled
by :class:`HostInterface` (:mod:`.model`), ordered by their dependencies
(:mod:`.order`), kept in a directory (:mod:`.store`) and written for the
host's own network tooling by persistent backends (:mod:`.backends`).

Live: :mod:`.plan` turns a definition and the host's state
(:mod:`.state`) into privileged batches, :mod:`.live` runs them,
:mod:`.inspect` reads live devices back into the model, :mod:`.restore`
and :mod:`.journal` make changes transactional, and :mod:`.api` is the
public face (``vif-plug-dyn iface ...``).
"""

from vif_plug_dyn.hostif.addressing import IPAddress
from vif_plug_dyn.hostif.addressing import Protocol
from vif_plug_dyn.hostif.model import ArpMon
from vif_plug_dyn.hostif.model import Device
from vif_plug_dyn.hostif.model import HostInterface
from vif_plug_dyn.hostif.model import MiiMon
from vif_plug_dyn.hostif.order import Order
from vif_plug_dyn.hostif.order import dependency_order

__all__ = ['ArpMon', 'Device', 'HostInterface', 'IPAddress', 'MiiMon',
           'Order', 'Protocol', 'dependency_order']
