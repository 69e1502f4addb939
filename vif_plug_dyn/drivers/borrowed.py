"""Taps a hypervisor makes, cabled by the library (nova's ``tap`` VIF
type).

nova 34 still serves Neutron's ``tap`` VIF type on its own: at plug it
makes ``tap`` + 11 characters of the port id (with the MAC and MTU the
port binding gives), renders ``<interface type='ethernet'><target
dev='tap...' managed='no'/>`` and deletes the tap at unplug. A request
with ``tap_maker=hypervisor`` gets an ``ethernet`` endpoint for that tap
(:attr:`~vif_plug_dyn.endpoints.EthernetEndpoint.borrowed`): the library
*borrows* it (the privileged helper marks it ``vif_plug_dyn.borrowed:
<port id>`` and from then on lets the library change only its master and
up/down state, see :mod:`vif_plug_dyn.privsep.borrow`), cables it into
the network's bridge, moves and unplugs it, and gives it back on release.
It never makes or deletes it.

The tap comes and goes with the guest: a port requested before its tap
exists is ``waiting``, and the watcher cables it the moment the tap
appears; a tap deleted by its maker leaves the port ``waiting`` again.
"""

from collections.abc import Iterable
from typing import Any

from oslo_log import log as logging

from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import ports
from vif_plug_dyn.drivers import taps
from vif_plug_dyn.privsep import ops

LOG = logging.getLogger(__name__)

#: The link kind of tun/tap devices.
TUN = 'tun'


def present(host: Any, names: list[str]) -> dict[str, dict[str, Any]]:
    """The taps among ``names`` that exist, ``{name: link}``."""
    if not names:
        return {}
    if len(names) == 1:
        try:
            return {names[0]: host.get_link(names[0])}
        except exception.DeviceNotFound:
            return {}
    wanted = set(names)
    return {link['name']: link for link in host.list_links(kind=TUN)
            if link['name'] in wanted}


def _cable(name: str, link: dict[str, Any], port_id: str,
           master: str | None, master_index: int | None = None
           ) -> list[dict[str, Any]]:
    """Borrow ``name`` for ``port_id`` if not yet, then put it on
    ``master`` (``None``: off any bridge)."""
    batch = []
    if link.get('borrowed_tag') != port_id:
        batch.append(ops.borrow(name, port_id))
    if master is not None:
        if master_index is None or link.get('master_index') != \
                master_index or not link.get('up'):
            batch.append(ops.set_link(name, master=master, up=True))
    elif link.get('master_index'):
        batch.append(ops.set_nomaster(name))
    return batch


def borrow_ops(host: Any, requests: list[ports.EndpointRequest],
               master: str | None, ledger: Any) -> list[dict[str, Any]]:
    """Operations borrowing (and plugging into ``master``) the taps of
    ``requests`` that exist now; the others wait for the watcher.

    :raises DeviceNotBorrowable: a tap is borrowed by another port the
        ledger knows (two ports cannot share one guest's tap).
    """
    found = present(host, [r.port.tap_name for r in requests])
    batch: list[dict[str, Any]] = []
    for request in requests:
        name = request.port.tap_name
        if name not in found:
            continue
        holder = found[name].get('borrowed_tag')
        if holder not in (None, request.port.port_id) and \
                ledger.get_port(holder) is not None:
            raise exception.DeviceNotBorrowable(
                device=name, reason='port %s holds it' % holder)
        batch += _cable(name, found[name], request.port.port_id, master)
    return batch


def cable_ops(host: Any, endpoints_: list[endpoints.Endpoint],
              master: str | None) -> list[dict[str, Any]]:
    """Operations plugging borrowed taps into ``master`` (``None``:
    unplugging them); taps that do not exist are skipped."""
    names = [str(taps.tap_of(e)) for e in endpoints_]
    found = present(host, names)
    batch: list[dict[str, Any]] = []
    for endpoint, name in zip(endpoints_, names, strict=True):
        if name in found:
            batch += _cable(name, found[name], endpoint.port_id, master)
    return batch


def restore_ops(endpoints_: list[endpoints.Endpoint],
                links: dict[str, dict[str, Any]], bridge: str,
                plugged: set[str]) -> list[dict[str, Any]]:
    """Operations making the borrowed taps that exist match their cables
    (``links``: every device, by name)."""
    bridge_index = links.get(bridge, {}).get('index')
    batch: list[dict[str, Any]] = []
    for endpoint in endpoints_:
        name = str(taps.tap_of(endpoint))
        if name not in links:
            continue
        master = bridge if endpoint.port_id in plugged else None
        batch += _cable(name, links[name], endpoint.port_id, master,
                        bridge_index)
    return batch


def release(host: Any, endpoints_: Iterable[endpoints.Endpoint]) -> None:
    """Take borrowed taps off their bridge and give them back; a tap its
    maker already deleted is fine. Errors are logged, not raised: the
    port is forgotten either way, and the tap is not ours."""
    give_back(host, [str(taps.tap_of(e)) for e in endpoints_])


def give_back(host: Any, names: list[str]) -> None:
    """Give back those of ``names`` that are borrowed (see
    :func:`release`)."""
    found = present(host, names)
    batch: list[dict[str, Any]] = []
    for name in names:
        link = found.get(name)
        if link is None or not link.get('borrowed'):
            continue
        if link.get('master_index'):
            batch.append(ops.set_nomaster(name))
        batch.append(ops.give_back(name))
    if not batch:
        return
    # NOTE(vpd): best effort, each operation on its own: the hypervisor
    # may delete its tap at any moment (nova's unplug).
    for result in host.apply(batch, stop_on_error=False):
        error = ops.error_from_result(result)
        if error is not None and not isinstance(error,
                                                exception.DeviceNotFound):
            LOG.warning('Giving back tap %(tap)s: %(error)s',
                        {'tap': result.get('name'), 'error': error})
