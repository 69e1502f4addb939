"""What tap-based drivers share: the port's persistent tap.

The guest NIC of a ``bridge``, ``openvswitch`` or steered ``direct``
endpoint keeps one tap for its whole life; plugging and moving the cable
only change what the tap is connected to.
"""

from collections.abc import Sequence
from typing import Any

from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import ledger as ledger_mod
from vif_plug_dyn import networks
from vif_plug_dyn import ports
from vif_plug_dyn.privsep import ops

TAP = 'tap'

#: The request option saying who makes the port's tap: ``library`` (the
#: default) or ``hypervisor`` (nova's ``tap`` VIF type: the library only
#: cables the tap, see :func:`hypervisor_tap`).
TAP_MAKER_OPTION = 'tap_maker'
TAP_MAKERS = ('library', 'hypervisor')


def host_mac(mac: str) -> str:
    """The MAC of the host side of a tap whose guest side has ``mac``.

    NOTE(vpd): a bridge takes the lowest MAC of its ports as its own; a
    first octet of 0xfe keeps the taps out of that contest (libvirt does
    the same for the taps it makes).
    """
    return 'fe' + mac[2:]


def queues(request: ports.EndpointRequest) -> int | None:
    """The queue count a request asks for (option ``queues``)."""
    value = request.option('queues')
    return None if value is None else int(value)


def create_tap_op(request: ports.EndpointRequest, network: networks.Network,
                  master: str | None = None) -> dict[str, Any]:
    """The operation creating a port's tap, tagged with its port id."""
    return tap_op(request.port, network, master, queues(request))


def tap_op(port: ports.Port, network: networks.Network,
           master: str | None = None,
           queue_count: int | None = None) -> dict[str, Any]:
    """The operation creating ``port``'s tap, tagged with its port id."""
    return ops.create_tap(port.tap_name, mtu=network.mtu or port.mtu,
                          mac=host_mac(port.mac), master=master, up=True,
                          tag=port.port_id,
                          multi_queue=bool(queue_count and queue_count > 1))


def hypervisor_tap(request: ports.EndpointRequest) -> bool:
    """Whether ``request`` says the hypervisor makes the port's tap
    (option ``tap_maker=hypervisor``).

    NOTE(vpd): explicit, never guessed from a tap that happens to exist:
    a tap of the expected name may be a leftover or someone else's, and
    cabling it would hand a guest's traffic to whoever holds it. The
    port must also name the tap (:attr:`~vif_plug_dyn.ports.Port.tap`):
    the name is the hypervisor's choice (nova: ``tap`` + 11 characters
    of the port id).

    :raises InvalidField: another value, or no tap name.
    """
    value = request.option(TAP_MAKER_OPTION, 'library')
    if value not in TAP_MAKERS:
        raise exception.InvalidField(
            field='options[%s]' % TAP_MAKER_OPTION, value=value,
            reason='must be one of %s' % ', '.join(TAP_MAKERS))
    if value != 'hypervisor':
        return False
    if request.port.tap is None:
        raise exception.InvalidField(
            field='tap', value=None,
            reason='the port must name the tap its hypervisor makes '
                   '(%s=hypervisor)' % TAP_MAKER_OPTION)
    return True


def is_borrowed(endpoint: endpoints.Endpoint) -> bool:
    """Whether ``endpoint``'s tap is a hypervisor's the library borrowed."""
    return isinstance(endpoint, endpoints.EthernetEndpoint) and \
        endpoint.borrowed


def port_of(endpoint: endpoints.Endpoint) -> ports.Port:
    """The port an endpoint serves, rebuilt from the endpoint."""
    return ports.Port(port_id=endpoint.port_id, mac=endpoint.mac,
                      network=endpoint.network, mtu=endpoint.mtu)


def missing_tap_ops(endpoints_: Sequence[endpoints.Endpoint],
                    network: networks.Network, present: set[str],
                    master: str | None, plugged: set[str]
                    ) -> list[dict[str, Any]]:
    """Operations re-creating the taps of ``endpoints_`` that are gone."""
    # NOTE(vpd): a borrowed tap is its hypervisor's to make, never ours.
    return [tap_op(port_of(e), network,
                   master if e.port_id in plugged else None, e.queues)
            for e in endpoints_
            if tap_of(e) and tap_of(e) not in present and
            not is_borrowed(e)]


def tap_records(requests: list[ports.EndpointRequest],
                network: networks.Network) -> list[ledger_mod.DeviceRecord]:
    """Ledger records of the taps of ``requests``."""
    return [ledger_mod.DeviceRecord(r.port.tap_name, TAP, r.port.port_id,
                                    network.name) for r in requests]


def common_fields(request: ports.EndpointRequest,
                  network: networks.Network) -> dict[str, Any]:
    """The endpoint fields every endpoint of ``request`` shares."""
    port = request.port
    return dict(port_id=port.port_id, network=network.name, mac=port.mac,
                mtu=network.mtu or port.mtu, queues=queues(request))


def build(host: Any, ledger: ledger_mod.Ledger, batch: list[dict[str, Any]],
          records: list[ledger_mod.DeviceRecord]) -> None:
    """Run a creating batch and record the devices it made, all or nothing.

    The helper already undoes a batch that fails half way; this also
    removes the devices again when recording them fails, so nothing is
    ever left on the host that the ledger does not know.

    An empty batch is nothing to do: no privileged call is made (the
    helper refuses an empty batch as malformed).
    """
    # NOTE(vpd): a bridge endpoint on a bridge that already exists (an
    # operator's, or the library's once it has a first port) needs no
    # host work at all: the hypervisor makes its tap.
    if batch:
        host.run(batch)
    try:
        ledger.record_devices(records)
    except BaseException:
        created = [op['name'] for op in batch
                   if op['op'].startswith('create_')]
        host.delete(created, missing_ok=True)
        raise


def tap_of(endpoint: endpoints.Endpoint) -> str | None:
    """The tap of a tap-based endpoint, or ``None``."""
    return getattr(endpoint, 'tap', None)
