"""The privileged side of vif_plug_dyn: one oslo.privsep context.

Everything the library does to the kernel with privileges goes through
the entrypoints of :mod:`vif_plug_dyn.privsep.linux_net`, which run in a
privsep daemon holding CAP_NET_ADMIN (and CAP_MKNOD, see below) and
nothing else. Drivers do not call them directly: they use
:class:`vif_plug_dyn.host.HostNetwork`.

Network namespaces: entering one (setns) would need CAP_SYS_ADMIN. Rather
than grant it, the daemon is *started inside* the namespace: with a
namespace set (``[vif_plug_dyn] netns`` or :func:`start`), the helper
command becomes ``... ip netns exec NAME privsep-helper ...``. ``ip netns
exec`` also mounts a sysfs of that namespace, which the daemon reads to
find macvtap device numbers. Starting the daemon is the only process the
library ever runs.

What crosses the boundary is bounded both ways: a call whose arguments
pack to more than :data:`MAX_MESSAGE_BYTES` is refused in the caller
(:class:`~vif_plug_dyn.exception.PrivilegedMessageTooLarge`) before
anything is sent, and every error the daemon sends back is cut down
(:func:`.limits.bounded_error`). A daemon that is gone is reported as
:class:`~vif_plug_dyn.exception.PrivilegedHelperFailed`, never as a raw
socket error. The daemon reads its policy (:mod:`.policy`) when it
starts serving.
"""

import errno
import functools
import os
import signal
import sys
import threading
import time
from typing import Any

import msgpack
from oslo_config import cfg
from oslo_log import log as logging

from vif_plug_dyn import exception
from vif_plug_dyn import opts
from vif_plug_dyn import validate
from vif_plug_dyn._oslo_privsep import capabilities as caps
from vif_plug_dyn._oslo_privsep import priv_context

LOG = logging.getLogger(__name__)

#: Executable run with ``netns exec`` to start the daemon in a namespace.
IP_COMMAND = 'ip'

_RESTART_LOCK = threading.Lock()

#: Largest privileged call (its packed arguments) the client sends.
#: NOTE(vpd): oslo.privsep's daemon reads at most 100 MiB per message and
#: dies on more (msgpack BufferFull); a batch of the longest allowed size
#: (:data:`.ops.MAX_OPS` operations) packs to about 17 MB.
MAX_MESSAGE_BYTES = 32 * 1024 * 1024


def entrypoint_name(entrypoint: Any) -> str:
    """The name of the function behind a privsep entrypoint.

    NOTE(vpd): an oslo.privsep entrypoint is ``functools.partial(
    context._wrap, func)``: its own ``func`` is ``_wrap``.
    """
    if isinstance(entrypoint, functools.partial) and entrypoint.args:
        entrypoint = entrypoint.args[0]
    return str(getattr(entrypoint, '__name__', 'call'))


def netns_command(cmd: list[str], netns: str) -> list[str]:
    """Insert ``ip netns exec NETNS`` in front of the privsep-helper.

    Anything before ``privsep-helper`` (a root helper such as ``sudo``) is
    kept in front; when the command has no ``privsep-helper`` word (a
    custom helper_command), the prefix goes first.

    :param cmd: the helper command oslo.privsep built.
    :param netns: the namespace name.
    :returns: the new command.
    :raises InvalidField: a bad namespace name.
    """
    netns = validate.netns_name(netns)
    at = next((i for i, arg in enumerate(cmd)
               if os.path.basename(arg).startswith('privsep-helper')), 0)
    return cmd[:at] + [IP_COMMAND, 'netns', 'exec', netns] + cmd[at:]


class NetnsPrivContext(priv_context.PrivContext):
    """A :class:`~oslo_privsep.priv_context.PrivContext` whose daemon can
    be started inside a named network namespace.

    :ivar netns: the namespace the next daemon starts in (``None``: the
        caller's).
    """

    def __init__(self, prefix: str, cfg_section: str, pypath: str,
                 capabilities: list[int]) -> None:
        super().__init__(prefix, cfg_section=cfg_section, pypath=pypath,
                         capabilities=capabilities)
        self.netns: str | None = None

    def helper_command(self, sockpath: str) -> list[str]:
        """The daemon's command line, inside :attr:`netns` if set."""
        cmd = super().helper_command(sockpath)
        if os.geteuid() == 0 and not self.conf.helper_command:
            # NOTE(vpd): already root: the root helper oslo.privsep puts in
            # front (sudo) adds nothing and may not even be installed.
            # Only then is privsep-helper named by its path: through a
            # root helper it must stay the bare word that sudoers and the
            # rootwrap filters (etc/vif_plug_dyn/rootwrap.d) allow.
            at = next((i for i, arg in enumerate(cmd)
                       if os.path.basename(arg) == 'privsep-helper'), 0)
            cmd = [_helper_path(arg) for arg in cmd[at:]]
        return cmd if self.netns is None else netns_command(cmd, self.netns)


    def set_client_mode(self, enabled: bool) -> None:
        """Switch modes; the daemon switches to serving once its
        privileges are dropped, and reads its policy then."""
        super().set_client_mode(enabled)
        if not enabled:
            from vif_plug_dyn.privsep import policy
            policy.configure_from_options()

    def _wrap(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.client_mode:
            return _serve(func, args, kwargs)
        name = getattr(func, '__name__', 'call')
        _check_size(name, args, kwargs)
        try:
            return super()._wrap(func, *args, **kwargs)
        except exception.VifPlugDynException:
            raise
        except (BrokenPipeError, ConnectionResetError) as exc:
            # NOTE(vpd): the request could not be written: the daemon was
            # already gone and did none of it (the caller may send it
            # again to a new daemon).
            raise exception.PrivilegedHelperUnreachable(
                operation=name, reason='%s: %s' % (type(exc).__name__,
                                                   exc)) from None
        except Exception as exc:
            # NOTE(vpd): the daemon did not start, died with the call in
            # flight (oslo.privsep's "premature eof"), or raised what is
            # not the library's: callers handle one family of errors.
            raise exception.PrivilegedHelperFailed(
                operation=name, reason='%s: %s' % (
                    type(exc).__name__, _short(str(exc)))) from None


def _short(text: str, limit: int = 512) -> str:
    return text if len(text) <= limit else text[:limit] + '... (cut)'


def _check_size(name: str, args: Any, kwargs: Any) -> None:
    """Refuse, before sending, a call the daemon could not take.

    :raises InvalidField: arguments msgpack cannot carry.
    :raises PrivilegedMessageTooLarge: more than
        :data:`MAX_MESSAGE_BYTES` once packed.
    """
    try:
        size = len(msgpack.packb((name, args, kwargs), use_bin_type=True,
                                 unicode_errors='surrogateescape'))
    except (OverflowError, TypeError, ValueError) as exc:
        # NOTE(vpd): arguments msgpack cannot carry (an integer beyond
        # 64 bits, an object) fail in the client before anything is
        # sent; the caller gets the library's typed error, never
        # msgpack's.
        raise exception.InvalidField(
            field='%s arguments' % name, value=type(exc).__name__,
            reason='cannot cross the privileged boundary: %s'
                   % _short(str(exc))) from None
    if size > MAX_MESSAGE_BYTES:
        raise exception.PrivilegedMessageTooLarge(
            operation=name, size=size, limit=MAX_MESSAGE_BYTES)


def _serve(func: Any, args: Any, kwargs: Any) -> Any:
    """Run an entrypoint in the daemon; what it raises goes back typed
    and bounded.

    NOTE(vpd): oslo.privsep sends an exception back as its class name and
    ``args``: the library's errors are cut down (a value repeated whole
    once made a 50 MB reply), anything else (a bug, arguments that do not
    fit the entrypoint) becomes PrivilegedHelperFailed.
    """
    from vif_plug_dyn.privsep import limits
    try:
        return func(*args, **kwargs)
    except exception.VifPlugDynException as exc:
        message, kw = limits.bounded_error(exc)
        raise type(exc)(message, kw) from None
    except Exception as exc:  # noqa: BLE001 - never an untyped reply
        raise exception.PrivilegedHelperFailed(
            operation=str(limits.shorten(getattr(func, '__name__', 'call'))),
            reason='%s: %s' % (type(exc).__name__,
                               _short(str(limits.shorten(str(exc), 512)))))


def _helper_path(arg: str) -> str:
    """Name ``privsep-helper`` by its path when it sits beside the running
    interpreter (a virtualenv whose ``bin`` is not on ``PATH``)."""
    if arg != 'privsep-helper':
        return arg
    beside = os.path.join(os.path.dirname(sys.executable), arg)
    return beside if os.access(beside, os.X_OK) else arg


# NOTE(vpd): CAP_NET_ADMIN does all netlink and tun work. CAP_MKNOD is
# there for one thing: making the /dev/tapN character node of a macvtap
# when no udev does (containers, a daemon inside a network namespace) —
# QEMU cannot use a macvtap without it. Nothing else is granted; in
# particular not CAP_SYS_ADMIN (see the module docstring).
vif_plug_dyn_pctxt = NetnsPrivContext(
    'vif_plug_dyn',
    cfg_section=opts.PRIVSEP_GROUP,
    pypath=__name__ + '.vif_plug_dyn_pctxt',
    capabilities=[caps.CAP_NET_ADMIN, caps.CAP_MKNOD],
)


def use_conf(conf: cfg.ConfigOpts) -> None:
    """Take the ``[vif_plug_dyn_privileged]`` options of ``conf``.

    NOTE(vpd): oslo.privsep contexts read their options from the global
    ``cfg.CONF``; a caller with its own ConfigOpts (the command line,
    tests) would otherwise have its helper_command, user or group
    ignored. Values set in ``conf`` are copied over as overrides.

    :param conf: the library's configuration.
    """
    if conf is cfg.CONF:
        return
    conf.register_opts(priv_context.OPTS, group=opts.PRIVSEP_GROUP)
    for opt in priv_context.OPTS:
        value = conf[opts.PRIVSEP_GROUP][opt.dest]
        if value != opt.default:
            cfg.CONF.set_override(opt.dest, value, group=opts.PRIVSEP_GROUP)


def running() -> bool:
    """Whether a daemon is connected."""
    channel = vif_plug_dyn_pctxt.channel
    return channel is not None and bool(getattr(channel, 'running', False))


def dead() -> bool:
    """Whether a daemon was started and its channel has closed since
    (the daemon was killed, crashed or exited)."""
    return vif_plug_dyn_pctxt.channel is not None and not running()


def replace_dead(force: bool = False) -> bool:
    """Start a new daemon in place of one that died.

    NOTE(vpd): oslo.privsep notices a closed channel only when its reader
    thread has read the end of the stream, and then restarts on the next
    call without waiting for the old daemon; a write that failed with a
    broken pipe can come first. This drops the dead channel (its socket
    may refuse the half close) and starts one new daemon in the same
    namespace, once per call.

    :param force: replace the channel even if it does not look closed
        yet (a write to it has just failed).
    :returns: whether a new daemon was started.
    :raises PrivilegedHelperFailed: the new daemon did not start.
    """
    with _RESTART_LOCK:
        channel = vif_plug_dyn_pctxt.channel
        if channel is None or (running() and not force):
            return False
        LOG.warning('The privileged helper daemon is gone; starting a new '
                    'one%s', '' if vif_plug_dyn_pctxt.netns is None else
                    ' in network namespace %s' % vif_plug_dyn_pctxt.netns)
        _drop_channel()
        start()
        return True


def _drop_channel() -> None:
    try:
        vif_plug_dyn_pctxt.stop()
    except OSError:
        # NOTE(vpd): the peer is gone: shutting the socket down can fail
        # (ENOTCONN); there is nothing left to close cleanly.
        vif_plug_dyn_pctxt.channel = None


def start(netns: str | None = None,
          method: priv_context.Method = priv_context.Method.ROOTWRAP
          ) -> None:
    """Start the daemon now (it otherwise starts on the first call).

    :param netns: run it inside this named network namespace; ``None``
        keeps the namespace already set (see :func:`set_netns`).
    :param method: ``ROOTWRAP`` runs the helper command; ``FORK`` forks
        the caller (already privileged, never inside another namespace).
    :raises InvalidField: a bad namespace name, or FORK with a namespace.
    :raises PrivilegedHelperFailed: the daemon did not start.
    """
    if netns is not None:
        set_netns(netns)
    if vif_plug_dyn_pctxt.netns is not None and \
            method is not priv_context.Method.ROOTWRAP:
        raise exception.InvalidField(
            field='method', value=method.name,
            reason='a daemon in a network namespace needs ROOTWRAP')
    try:
        vif_plug_dyn_pctxt.start(method)
    except Exception as exc:
        vif_plug_dyn_pctxt.channel = None
        raise exception.PrivilegedHelperFailed(operation='start',
                                               reason=str(exc))


def set_netns(netns: str | None) -> None:
    """Choose the namespace the next daemon starts in.

    Does not move a running daemon: :func:`stop` it first (or use
    :func:`restart`).

    :raises InvalidField: a bad namespace name.
    """
    vif_plug_dyn_pctxt.netns = (None if netns is None
                                else validate.netns_name(netns))


def stop(timeout: float = 10.0) -> None:
    """Stop the daemon and wait until it has exited.

    Closing the channel makes the daemon leave its loop; waiting matters
    because a namespace (and every device in it) lives as long as a
    process is inside it.

    :param timeout: seconds to wait before sending SIGTERM to the daemon
        (the process this library started, by its PID).
    """
    pid = None
    if running():
        from vif_plug_dyn.privsep import linux_net
        try:
            pid = int(linux_net.daemon_info()['pid'])
        except Exception:  # noqa: BLE001 - stopping must not fail here
            pid = None
    _drop_channel()
    if pid is None:
        return
    if not _wait_gone(pid, timeout):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        _wait_gone(pid, timeout)


def restart(netns: str | None) -> None:
    """Stop the daemon and start a new one in ``netns``."""
    stop()
    set_netns(netns)
    start()


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.01)
    return not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        with open('/proc/%d/stat' % pid, encoding='ascii') as handle:
            # NOTE(vpd): a zombie has already left its namespaces.
            return handle.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ESRCH):
            return False
        raise
