"""SR-IOV physical and virtual functions, as sysfs describes them.

Everything is read under a configurable root (``[vif_plug_dyn]
sysfs_root``) so that tests can point it at a fake tree laid out like the
real one::

    <root>/class/net/<pf>/device/sriov_totalvfs
    <root>/class/net/<pf>/device/sriov_numvfs
    <root>/class/net/<pf>/device/virtfn<N> -> ../<vf pci address>
    <root>/class/net/<pf>/device/virtfn<N>/net/<vf netdev>   (if bound)
"""

import dataclasses
import os
import re

from vif_plug_dyn import validate

_VIRTFN_RE = re.compile(r'^virtfn(\d+)$')


@dataclasses.dataclass(frozen=True)
class VirtualFunction:
    """One VF of a PF.

    :ivar pf: the physical function's netdev name.
    :ivar index: the VF number on that PF.
    :ivar pci_address: the VF's PCI address.
    :ivar netdev: the VF's netdev name when a network driver is bound to
        it (needed for ``direct`` passthrough), else ``None``.
    """

    pf: str
    index: int
    pci_address: str
    netdev: str | None


def _device_dir(root: str, pf: str) -> str:
    return os.path.join(root, 'class', 'net', validate.ifname(pf, 'pf'),
                        'device')


def pf_exists(root: str, pf: str) -> bool:
    """Tell whether ``pf`` is a netdev with SR-IOV capability."""
    return os.path.exists(os.path.join(_device_dir(root, pf),
                                       'sriov_totalvfs'))


def virtual_functions(root: str, pf: str) -> list[VirtualFunction]:
    """List the enabled VFs of ``pf``, by VF number.

    :param root: the sysfs root (``/sys``).
    :param pf: the physical function's netdev name.
    :returns: the VFs; empty when the PF is missing or has none enabled.
    """
    device = _device_dir(root, pf)
    try:
        entries = os.listdir(device)
    except OSError:
        return []
    found = []
    for entry in entries:
        match = _VIRTFN_RE.match(entry)
        if not match:
            continue
        link = os.path.join(device, entry)
        try:
            address = validate.pci_address(
                os.path.basename(os.readlink(link)), 'virtfn')
        except (OSError, ValueError):
            continue
        try:
            names = sorted(os.listdir(os.path.join(link, 'net')))
        except OSError:
            names = []
        found.append(VirtualFunction(pf=pf, index=int(match.group(1)),
                                     pci_address=address,
                                     netdev=names[0] if names else None))
    return sorted(found, key=lambda vf: vf.index)
