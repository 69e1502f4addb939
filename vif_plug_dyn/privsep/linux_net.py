"""The privileged entrypoints: primitives in, primitives out.

Each entrypoint validates its arguments again (the daemon does not trust
its caller) and does one thing. :func:`apply` is the one to use: a whole
list of operations in one call. :func:`apply_one` is the same for a single
operation and raises its error instead of returning it.
"""

import functools
import os
import re
from typing import Any

from vif_plug_dyn import exception
from vif_plug_dyn import validate
from vif_plug_dyn.privsep import addresses
from vif_plug_dyn.privsep import batch
from vif_plug_dyn.privsep import journal
from vif_plug_dyn.privsep import limits
from vif_plug_dyn.privsep import netlink
from vif_plug_dyn.privsep import nlmsg
from vif_plug_dyn.privsep import ops as ops_mod
from vif_plug_dyn.privsep import policy
from vif_plug_dyn.privsep import vif_plug_dyn_pctxt

_KIND_RE = re.compile(r'^[a-z0-9_]{1,16}$')


def _ifname(value: Any, field: str = 'name') -> str:
    """An interface name; an oversized value is refused before anything
    repeats it."""
    if limits.too_long(value):
        raise exception.InvalidField(field=field,
                                     value=limits.shorten(value),
                                     reason='not an interface name')
    return validate.ifname(value, field)


def _boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise exception.InvalidField(field=field,
                                     value=limits.shorten(value),
                                     reason='must be true or false')
    return value


@vif_plug_dyn_pctxt.entrypoint
def apply(ops: list[dict[str, Any]],
          stop_on_error: bool = True) -> list[dict[str, Any]]:
    """Apply a batch of operations over one netlink socket.

    :param ops: operations built by :mod:`vif_plug_dyn.privsep.ops`.
    :param stop_on_error: stop at the first error and roll back what the
        batch created; ``False`` applies everything it can.
    :returns: one result per operation (see :mod:`.batch`).
    :raises InvalidField: an operation is malformed (nothing applied).
    """
    checked = ops_mod.validate_batch(ops)
    return batch.apply(checked, _boolean(stop_on_error, 'stop_on_error'))


@vif_plug_dyn_pctxt.entrypoint
def apply_one(op: dict[str, Any]) -> dict[str, Any]:
    """Apply one operation.

    :returns: its result.
    :raises VifPlugDynException: the typed error of the operation.
    """
    checked = ops_mod.validate_op(op)
    result = batch.apply([checked], True)[0]
    error = ops_mod.error_from_result(result)
    if error is not None:
        raise error
    return result


@vif_plug_dyn_pctxt.entrypoint
def get_link(name: str) -> dict[str, Any]:
    """Describe one device.

    :raises DeviceNotFound: no such device.
    """
    name = _ifname(name)
    with _socket() as sock:
        _cookie, err, text, payload = sock.request(
            lambda seq: nlmsg.getlink(seq, name))
    if err in netlink.NO_DEVICE:
        raise exception.DeviceNotFound(device=name)
    if err or payload is None:
        raise netlink.kernel_error('getlink', name, err, text)
    return _describe(nlmsg.parse_link(payload, 0, len(payload)))


@vif_plug_dyn_pctxt.entrypoint
def list_links(master: str | None = None,
               kind: str | None = None) -> list[dict[str, Any]]:
    """List devices, filtered by the kernel.

    :param master: only the ports of this device.
    :param kind: only devices of this rtnl kind (``tun``, ``bridge``...).
    :raises DeviceNotFound: ``master`` does not exist.
    """
    if kind is not None and (not isinstance(kind, str) or
                             not _KIND_RE.fullmatch(kind)):
        raise exception.InvalidField(field='kind',
                                     value=limits.shorten(kind),
                                     reason='expected a link kind such as '
                                            'tun or bridge')
    with _socket() as sock:
        master_index = None
        if master is not None:
            name = _ifname(master, 'master')
            _c, err, text, payload = sock.request(
                lambda seq: nlmsg.getlink(seq, name))
            if err in netlink.NO_DEVICE:
                raise exception.DeviceNotFound(device=name)
            if err or payload is None:
                raise netlink.kernel_error('getlink', name, err, text)
            master_index = nlmsg.parse_link(payload, 0, len(payload))['index']
        try:
            found = sock.dump(lambda seq: nlmsg.dumplinks(
                seq, master=master_index, kind=kind))
        except OSError as exc:
            raise netlink.kernel_error('dump links', master or kind or 'all',
                                       exc.errno or 0, exc.strerror)
    return [_describe(nlmsg.parse_link(p, 0, len(p))) for p in found]


@vif_plug_dyn_pctxt.entrypoint
def list_addresses(name: str | None = None) -> list[dict[str, Any]]:
    """List IPv4 and IPv6 addresses, of one device or of all.

    :param name: only this device's.
    :returns: address dicts (:func:`.addresses.parse_addr`) with the
        device's ``name`` added.
    :raises DeviceNotFound: ``name`` does not exist.
    """
    if name is not None:
        name = _ifname(name)
    with _socket() as sock:
        return _addresses(sock, name)


@vif_plug_dyn_pctxt.entrypoint
def dump_state(sync: bool = False) -> dict[str, Any]:
    """Every link and every address, read in one call.

    What host interface transactions snapshot and live dumps read.

    :param sync: first let the kernel finish the link-state work still
        pending on every link (carrier changes, and what follows them:
        a bridge's IPv6 link-local address...), so the dump shows where
        the last changes lead rather than a moment half way.
    :returns: ``{'links': [...], 'addresses': [...]}`` as
        :func:`list_links` and :func:`list_addresses` return them.
    """
    _boolean(sync, 'sync')
    with _socket() as sock:
        links = _links(sock)
        if sync:
            # NOTE(vpd): the kernel runs a link's pending link-watch work
            # (linkwatch_sync_dev) when it is asked for that one link; a
            # dump does not. Asking for each is pipelined in one send.
            for link in links:
                sock.queue(functools.partial(nlmsg.getlink,
                                             name=link['name']), None)
            sock.flush()
            links = _links(sock)
        return {'links': links, 'addresses': _addresses(sock, None, links)}


def _links(sock: netlink.RtnlSocket) -> list[dict[str, Any]]:
    try:
        found = sock.dump(nlmsg.dumplinks)
    except OSError as exc:
        raise netlink.kernel_error('dump links', 'all', exc.errno or 0,
                                   exc.strerror)
    return [_describe(nlmsg.parse_link(p, 0, len(p))) for p in found]


def _addresses(sock: netlink.RtnlSocket, name: str | None,
               links: list[dict[str, Any]] | None = None
               ) -> list[dict[str, Any]]:
    if links is None:
        links = _links(sock)
    names = {link['index']: link['name'] for link in links}
    if name is not None and name not in names.values():
        raise exception.DeviceNotFound(device=name)
    try:
        raw = sock.dump(addresses.dumpaddrs)
    except OSError as exc:
        raise netlink.kernel_error('dump addresses', name or 'all',
                                   exc.errno or 0, exc.strerror)
    out = []
    for payload in raw:
        item = addresses.parse_addr(payload, 0, len(payload))
        item['name'] = names.get(item['index'])
        if name is None or item['name'] == name:
            out.append(item)
    return out


@vif_plug_dyn_pctxt.entrypoint
def daemon_info() -> dict[str, Any]:
    """Who and where the daemon is: its PID, its network namespace inode
    and the id its creation journal uses (the namespace cookie; tests
    check it runs where it was asked to), and the policy it enforces."""
    return {'pid': os.getpid(),
            'netns_inode': os.stat('/proc/self/ns/net').st_ino,
            'netns_id': journal.namespace_id(),
            'policy': policy.current().to_dict()}


def _socket() -> netlink.RtnlSocket:
    try:
        return netlink.RtnlSocket()
    except OSError as exc:
        raise netlink.kernel_error('socket', 'netlink', exc.errno or 0,
                                   exc.strerror)


def _describe(info: dict[str, Any]) -> dict[str, Any]:
    owned, owner_tag = ops_mod.parse_alias(info['alias'])
    adopted_tag = ops_mod.parse_adopted(info['alias'])
    borrowed_tag = ops_mod.parse_borrowed(info['alias'])
    return {'name': info['name'], 'index': info['index'],
            'kind': info['kind'], 'mtu': info['mtu'], 'mac': info['mac'],
            'up': bool(info['flags'] & nlmsg.IFF_UP),
            'carrier': bool(info['flags'] & nlmsg.IFF_LOWER_UP),
            'master_index': info['master'], 'link_index': info['link'],
            'group': info['group'], 'alias': info['alias'],
            'owned': owned, 'tag': owner_tag,
            'adopted': adopted_tag is not None, 'adopted_tag': adopted_tag,
            'borrowed': borrowed_tag is not None,
            'borrowed_tag': borrowed_tag,
            'operstate': info['operstate'], 'data': info['data']}
