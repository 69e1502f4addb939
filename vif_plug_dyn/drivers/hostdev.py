"""The ``hostdev`` driver: SR-IOV virtual functions of configured PFs.

Each port is given a free VF of the network's physical functions (an
exclusive allocation in the ledger); the VF's MAC, VLAN and spoof check
are set on the PF through the privileged helper. The endpoint is
``hostdev`` (the VF's PCI address, given to the guest) or ``direct`` in
passthrough mode on the VF's netdev when the hypervisor prefers that.

PFs and VFs are read from sysfs under ``[vif_plug_dyn] sysfs_root``.
"""

from typing import Any

from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import networks
from vif_plug_dyn import opts
from vif_plug_dyn import ports
from vif_plug_dyn import sriov
from vif_plug_dyn import validate
from vif_plug_dyn.drivers import base
from vif_plug_dyn.drivers import taps
from vif_plug_dyn.privsep import ops

_ZERO_MAC = '00:00:00:00:00:00'


class HostdevDriver(base.NetworkDriver):
    """SR-IOV VFs as ``hostdev`` or passthrough ``direct`` endpoints."""

    KINDS = (networks.HOSTDEV,)

    @property
    def _root(self) -> str:
        return str(self.context.conf[opts.GROUP].sysfs_root)

    def _vfs(self, network: networks.Network) -> dict[str,
                                                      sriov.VirtualFunction]:
        return {vf.pci_address: vf for pf in network.pfs
                for vf in sriov.virtual_functions(self._root, pf)}

    def endpoint_types(self, network: networks.Network) -> tuple[str, ...]:
        vfs = self._vfs(network).values()
        if not vfs:
            return ()
        if any(vf.netdev for vf in vfs):
            return (endpoints.HOSTDEV, endpoints.DIRECT)
        return (endpoints.HOSTDEV,)

    def create_endpoints(self, requests: list[ports.EndpointRequest],
                         network: networks.Network, endpoint_type: str,
                         connect: bool) -> list[endpoints.Endpoint]:
        vfs = self._vfs(network)
        if endpoint_type == endpoints.DIRECT:
            vfs = {k: v for k, v in vfs.items() if v.netdev}
        if not vfs:
            raise exception.PoolExhausted(
                network=network.name, resource='virtual function',
                reason='PFs %s have no usable VF' % ', '.join(network.pfs))
        ledger = self.context.ledger
        chosen: list[sriov.VirtualFunction] = []
        try:
            for request in requests:
                wanted = _wanted_vf(request, network, vfs)
                address = ledger.allocate(
                    network.name, request.port.port_id,
                    [(a, 1) for a in sorted(vfs)
                     if wanted is None or a == wanted])
                chosen.append(vfs[address])
            self.host.run([self._vf_op(vf, r.port, network)
                           for vf, r in zip(chosen, requests, strict=True)])
        except BaseException:
            for request in requests:
                ledger.release(request.port.port_id, network.name)
            raise
        made: list[endpoints.Endpoint] = []
        for vf, request in zip(chosen, requests, strict=True):
            fields = taps.common_fields(request, network)
            fields.update(mtu=None, queues=None)
            if endpoint_type == endpoints.DIRECT:
                made.append(endpoints.DirectEndpoint(
                    source_dev=str(vf.netdev), mode='passthrough',
                    virtualport=request.port.virtualport, **fields))
            else:
                made.append(endpoints.HostdevEndpoint(
                    pci_address=vf.pci_address,
                    vlan=_vlan(request.port, network), **fields))
        return made

    @staticmethod
    def _vf_op(vf: sriov.VirtualFunction, port: ports.Port,
               network: networks.Network) -> dict[str, Any]:
        return ops.set_vf(vf.pf, vf.index, mac=port.mac,
                          vlan=_vlan(port, network) or 0, spoofchk=True)

    def delete_endpoints(self, endpoints_: list[endpoints.Endpoint],
                         network: networks.Network) -> None:
        vfs = self._vfs(network)
        by_netdev = {vf.netdev: vf for vf in vfs.values() if vf.netdev}
        batch = []
        for endpoint in endpoints_:
            vf = None
            if isinstance(endpoint, endpoints.HostdevEndpoint):
                vf = vfs.get(endpoint.pci_address)
            elif isinstance(endpoint, endpoints.DirectEndpoint):
                vf = by_netdev.get(endpoint.source_dev)
            if vf is not None:
                # NOTE(vpd): a released VF must not keep the guest's MAC
                # and VLAN, or the next guest inherits them.
                batch.append(ops.set_vf(vf.pf, vf.index, mac=_ZERO_MAC,
                                        vlan=0))
        try:
            if batch:
                self.host.apply(batch, stop_on_error=False)
        finally:
            for endpoint in endpoints_:
                self.context.ledger.release(endpoint.port_id, network.name)


#: Request option naming the one VF a port must get (``dddd:bb:ss.f``).
PCI_ADDRESS_OPTION = 'pci_address'


def _wanted_vf(request: ports.EndpointRequest, network: networks.Network,
               vfs: dict[str, sriov.VirtualFunction]) -> str | None:
    """The VF a request pins with option ``pci_address``, if any.

    NOTE(vpd): a consumer that has already chosen the VF (nova's PCI
    tracker, through os-vif's ``VIFHostDevice.dev_address``) renders that
    address in the guest: the endpoint must be built on that VF or on
    none.

    :raises InvalidField: the address is malformed or not a usable VF of
        the network's PFs.
    """
    value = request.option(PCI_ADDRESS_OPTION)
    if value is None:
        return None
    address = validate.pci_address(value, 'options[pci_address]')
    if address not in vfs:
        raise exception.InvalidField(
            field='options[pci_address]', value=value,
            reason='not a usable VF of network %s (PFs %s)' % (
                network.name, ', '.join(network.pfs)))
    return address


def _vlan(port: ports.Port, network: networks.Network) -> int | None:
    return network.vlan if network.vlan is not None else port.vlan
