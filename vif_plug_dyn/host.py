"""The unprivileged face of the privileged helper, for drivers.

A driver builds operations with :mod:`vif_plug_dyn.privsep.ops` and hands
the whole list to :meth:`HostNetwork.apply` (results per operation) or
:meth:`HostNetwork.run` (raises the first error): one privileged call,
one netlink socket, however many devices. The typed helpers
(:meth:`HostNetwork.create_tap`, :meth:`HostNetwork.delete`...) are
one-operation batches for code that does one thing at a time.

Example::

    host = HostNetwork(conf, tag='port-1234')
    host.run([ops.create_bridge('br-red'),
              ops.create_tap('tap1234', mtu=1450, master='br-red')])
    host.run([ops.set_master('tap1234', 'br-blue')])      # move the cable
    host.delete(['tap1234'])
"""

from collections.abc import Iterable, Sequence
from typing import Any

from oslo_config import cfg

from vif_plug_dyn import exception
from vif_plug_dyn import objects
from vif_plug_dyn import opts
from vif_plug_dyn import privsep
from vif_plug_dyn.privsep import linux_net
from vif_plug_dyn.privsep import ops

Result = dict[str, Any]


class HostNetwork:
    """Host network work through the privileged helper.

    :param conf: the configuration (``oslo_config.cfg.CONF`` if omitted);
        ``[vif_plug_dyn] netns`` names the namespace the daemon starts in.
    :param tag: owner tag written into the alias of every device created
        through this object when an operation gives none.
    :raises InvalidField: a bad tag or namespace name.
    """

    def __init__(self, conf: cfg.ConfigOpts | None = None,
                 tag: str | None = None) -> None:
        self.conf = cfg.CONF if conf is None else conf
        opts.register_opts(self.conf)
        privsep.use_conf(self.conf)
        netns = self.conf[opts.GROUP].netns
        if netns:
            privsep.set_netns(netns)
        self.tag = None if tag is None else ops.check_tag(tag)

    # -- daemon --------------------------------------------------------------

    def start(self) -> None:
        """Start the daemon now rather than on the first call."""
        privsep.start()

    def stop(self) -> None:
        """Stop the daemon and wait for it to exit."""
        privsep.stop()

    # -- batches -------------------------------------------------------------

    def _prepare(self, batch: Sequence[dict[str, Any]]
                 ) -> list[dict[str, Any]]:
        checked = ops.validate_batch(batch)
        if self.tag is None:
            return checked
        # NOTE(vpd): a copy: the caller's (checked) operations stay as
        # they were built.
        return [dict(op, tag=self.tag)
                if op['op'] in ops.CREATE_OPS and op['tag'] is None else op
                for op in checked]

    def apply(self, batch: Sequence[dict[str, Any]],
              stop_on_error: bool = True) -> list[Result]:
        """Apply operations in one privileged call.

        :param batch: operations from :mod:`vif_plug_dyn.privsep.ops`.
        :param stop_on_error: stop at the first error and roll back what
            the batch created; ``False`` applies everything it can.
        :returns: one result per operation: ``status`` (``ok``,
            ``error``, ``skipped``, ``rolled_back``), ``error`` (type,
            message, kwargs — errno for kernel errors) and per-operation
            details (``deleted``, ``dev_node``...).
        :raises InvalidField: an operation is malformed (nothing sent).
        :raises PrivilegedMessageTooLarge: the batch is larger than the
            daemon takes (nothing sent).
        :raises PrivilegedHelperFailed: the daemon could not be reached,
            or died while applying it.
        """
        checked = self._prepare(batch)
        return _lists(self._call(linux_net.apply, checked, stop_on_error))

    def run(self, batch: Sequence[dict[str, Any]]) -> list[Result]:
        """Apply operations, all or nothing, and raise the first error.

        :returns: the results (all ``ok``).
        :raises VifPlugDynException: the typed error of the operation that
            failed (everything the batch created has been removed).
        """
        results = self.apply(batch, stop_on_error=True)
        for result in results:
            error = ops.error_from_result(result)
            if error is not None:
                raise error
        return results

    def apply_one(self, op: dict[str, Any]) -> Result:
        """Apply one operation in its own privileged call.

        :raises VifPlugDynException: its typed error.
        """
        checked = self._prepare([op])[0]
        return _lists(self._call(linux_net.apply_one, checked))

    @staticmethod
    def _call(entrypoint: Any, *args: Any) -> Any:
        name = privsep.entrypoint_name(entrypoint)
        # NOTE(vpd): a daemon that died since the last call (killed, out
        # of memory) is replaced before this call is sent. A call that was
        # in flight when it died is not repeated: it may have been half
        # applied, so it fails (PrivilegedHelperFailed) and the caller's
        # rollback or reconcile() deals with what it left.
        privsep.replace_dead()
        for attempt in (1, 2):
            try:
                return entrypoint(*args)
            except (exception.PrivilegedHelperUnreachable, BrokenPipeError,
                    ConnectionResetError) as exc:
                # NOTE(vpd): the request could not even be written: the
                # daemon was already gone and did none of it, so one new
                # daemon and one more try are safe.
                if attempt == 1 and privsep.replace_dead(force=True):
                    continue
                if isinstance(exc, exception.VifPlugDynException):
                    raise
                raise exception.PrivilegedHelperUnreachable(
                    operation=name,
                    reason='%s: %s' % (type(exc).__name__, exc)) from None
            except exception.VifPlugDynException:
                raise
            except Exception as exc:
                # NOTE(vpd): the context turns what the channel raises into
                # the library's errors; anything else is a bug, and
                # callers still handle one family of errors.
                raise exception.PrivilegedHelperFailed(
                    operation=name,
                    reason='%s: %s' % (type(exc).__name__, exc))
        raise AssertionError('unreachable')  # pragma: no cover

    # -- queries -------------------------------------------------------------

    def get_link(self, name: str) -> Result:
        """Describe one device (name, index, kind, mtu, mac, up, carrier,
        master_index, link_index, group, alias, owned, tag, adopted,
        adopted_tag, and ``data``: the settings of a bridge, VLAN or bond).

        :raises DeviceNotFound: no such device.
        """
        return _lists(self._call(linux_net.get_link, name))

    def list_links(self, master: str | None = None,
                   kind: str | None = None) -> list[Result]:
        """List devices, filtered in the kernel by master and/or kind."""
        return _lists(self._call(linux_net.list_links, master, kind))

    def list_addresses(self, name: str | None = None) -> list[Result]:
        """List IPv4 and IPv6 addresses (of one device, or all): name,
        index, family, address, prefix, peer, broadcast, label, scope,
        flags, valid_lft, preferred_lft, proto, metric.

        :raises DeviceNotFound: ``name`` does not exist.
        """
        return _lists(self._call(linux_net.list_addresses, name))

    def dump_state(self, sync: bool = False) -> dict[str, list[Result]]:
        """Every link (as :meth:`list_links`) and every address (as
        :meth:`list_addresses`), in one privileged call.

        :param sync: let the kernel finish pending link-state work first
            (see :func:`vif_plug_dyn.privsep.linux_net.dump_state`).
        """
        return _lists(self._call(linux_net.dump_state, sync))

    def exists(self, name: str) -> bool:
        """Whether a device of that name exists."""
        try:
            self.get_link(name)
        except exception.DeviceNotFound:
            return False
        return True

    # -- one-operation helpers ---------------------------------------------

    def create_bridge(self, name: str, *, mtu: int | None = None,
                      mac: str | None = None, up: bool = True,
                      tag: str | None = None) -> Result:
        """Create a bridge (forward delay 0, STP off).

        :raises VifPlugDynException: typed error; nothing is left behind.
        """
        return self.run([ops.create_bridge(name, mtu=mtu, mac=mac, up=up,
                                           tag=tag)])[0]

    def create_tap(self, name: str, *, mtu: int | None = None,
                   mac: str | None = None, master: str | None = None,
                   up: bool = True, tag: str | None = None,
                   owner: int | None = None,
                   multi_queue: bool = False) -> Result:
        """Create a persistent tap, optionally on ``master``.

        :raises VifPlugDynException: typed error; nothing is left behind.
        """
        return self.run([ops.create_tap(
            name, mtu=mtu, mac=mac, master=master, up=up, tag=tag,
            owner=owner, multi_queue=multi_queue)])[0]

    def create_veth(self, name: str, peer: str, *, mtu: int | None = None,
                    master: str | None = None,
                    peer_master: str | None = None, up: bool = True,
                    tag: str | None = None) -> Result:
        """Create a veth pair.

        :raises VifPlugDynException: typed error; nothing is left behind.
        """
        return self.run([ops.create_veth(
            name, peer, mtu=mtu, master=master, peer_master=peer_master,
            up=up, tag=tag)])[0]

    def create_macvtap(self, name: str, lower: str, *, mode: str = 'bridge',
                       mac: str | None = None, mtu: int | None = None,
                       up: bool = True, tag: str | None = None,
                       index: int | None = None) -> Result:
        """Create a macvtap; the result names its ``dev_node``.

        :raises VifPlugDynException: typed error; nothing is left behind.
        """
        return self.run([ops.create_macvtap(
            name, lower, mode=mode, mac=mac, mtu=mtu, up=up, tag=tag,
            index=index)])[0]

    def create_macvlan(self, name: str, lower: str, *, mode: str = 'bridge',
                       mac: str | None = None, mtu: int | None = None,
                       up: bool = True, tag: str | None = None) -> Result:
        """Create a macvlan.

        :raises VifPlugDynException: typed error; nothing is left behind.
        """
        return self.run([ops.create_macvlan(
            name, lower, mode=mode, mac=mac, mtu=mtu, up=up, tag=tag)])[0]

    def set_master(self, name: str, master: str, up: bool = True) -> Result:
        """Plug a device of ours into ``master`` (ours, or one the daemon's
        policy names).

        :raises DeviceNotOwned: ``name`` is not ours.
        :raises PolicyDenied: the policy does not name ``master``.
        """
        return self.run([ops.set_link(name, master=master, up=up)])[0]

    def set_nomaster(self, name: str) -> Result:
        """Unplug a device of ours from its master.

        :raises DeviceNotOwned: ``name`` is not ours.
        """
        return self.run([ops.set_nomaster(name)])[0]

    def set_link(self, name: str, **changes: Any) -> Result:
        """Change a device of ours (see :func:`ops.set_link`).

        :raises DeviceNotOwned: ``name`` is not ours.
        """
        return self.run([ops.set_link(name, **changes)])[0]

    def delete(self, names: Iterable[str] | str,
               missing_ok: bool = True) -> Result:
        """Delete devices of ours together (one link-group delete).

        :raises DeviceNotOwned: one of them is not ours (none deleted).
        """
        return self.run([ops.delete(names, missing_ok)])[0]

    def redirect(self, name: str, peer: str, qdisc: str = 'clsact'
                 ) -> Result:
        """Steer all frames between two devices of ours (tc mirred)."""
        return self.run([ops.redirect(name, peer, qdisc)])[0]

    def unredirect(self, name: str, peer: str, qdisc: str = 'clsact'
                   ) -> Result:
        """Remove a redirect."""
        return self.run([ops.unredirect(name, peer, qdisc)])[0]

    def set_vf(self, pf: str, vf: int, *, mac: str | None = None,
               vlan: int | None = None, trust: bool | None = None,
               spoofchk: bool | None = None) -> Result:
        """Configure an SR-IOV VF on the operator's PF.

        :raises PolicyDenied: the daemon's policy does not name the PF.
        """
        return self.run([ops.set_vf(pf, vf, mac=mac, vlan=vlan, trust=trust,
                                    spoofchk=spoofchk)])[0]


def _lists(value: Any) -> Any:
    """Turn the tuples msgpack hands back into lists, recursively.

    NOTE(vpd): oslo.privsep unpacks arrays as tuples; results are
    documented as JSON-like lists and dicts.
    """
    if isinstance(value, dict):
        return {k: v if type(v) in objects.JSON_SCALARS else _lists(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    return value
