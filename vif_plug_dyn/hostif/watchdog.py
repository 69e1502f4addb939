"""Roll a timed transaction back when nobody commits it in time.

``change-begin --timeout SECONDS`` (:meth:`~vif_plug_dyn.hostif.api.
HostInterfaceAPI.change_begin` with ``timeout``) arms a *timer*. Unless
``change-commit`` arrives before the deadline, the timer calls
:meth:`~vif_plug_dyn.hostif.api.HostInterfaceAPI.expire`, which rolls the
transaction back exactly as ``change-rollback`` would, logs it and keeps
a notice that the next command reports.

The timer must not depend on the process that began the transaction: the
point is that the change may cut the operator's session off, CLI
included. :class:`ProcessTimer` (the default) starts a small watchdog
process for it: ``python -m vif_plug_dyn.hostif.watchdog``, detached
(a session of its own, so a signal to the CLI's process group or the
loss of its terminal does not reach it), in the caller's network
namespace, with its PID in ``<state_path>/hostif/watchdog.pid`` and its
log in ``watchdog.log`` next to it. It looks at the transaction file
twice a second and exits quietly once the transaction is committed or
rolled back by hand; ``change-commit`` also ends it (SIGTERM, after
checking by ``/proc/PID/cmdline`` that the PID is still that watchdog).

A long-running service (the agent) can take the job over: give
:class:`~vif_plug_dyn.hostif.api.HostInterfaceAPI` a ``timer`` of its own
implementing :class:`TransactionTimer` — ``arm`` schedules
``api.expire(transaction['id'])`` at ``transaction['deadline']`` (wall
clock, seconds since the epoch), ``disarm`` cancels it.

If the watchdog itself dies, the deadline still holds: every host
interface command first rolls back a transaction whose deadline has
passed.
"""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any, Protocol

from oslo_config import cfg

from vif_plug_dyn import exception
from vif_plug_dyn import opts
from vif_plug_dyn._oslo_privsep import priv_context

LOG = logging.getLogger(__name__)

MODULE = 'vif_plug_dyn.hostif.watchdog'
PID_FILE = 'watchdog.pid'
LOG_FILE = 'watchdog.log'
#: Seconds between two looks at the transaction file.
POLL = 0.5
#: Seconds a new watchdog has to report that it runs.
START_TIMEOUT = 30.0
#: How many times the watchdog tries to take the lock for its rollback
#: (each try waits ``lock_timeout``).
ATTEMPTS = 5
# NOTE(vpd): the privsep context sets its own capabilities.
_PRIVSEP_SKIP = ('capabilities',)


class TransactionTimer(Protocol):
    """What :class:`~vif_plug_dyn.hostif.api.HostInterfaceAPI` needs to
    roll a timed transaction back on time."""

    def arm(self, transaction: dict[str, Any]) -> dict[str, Any]:
        """Make sure ``expire(transaction['id'])`` is called at
        ``transaction['deadline']``.

        :param transaction: ``id``, ``deadline`` (epoch seconds),
            ``directory`` (the journal's).
        :returns: what to keep with the transaction (shown by
            ``change-status``), for example ``{'pid': 1234}``.
        :raises TransactionError: the timer cannot be armed; the
            transaction is not begun.
        """

    def disarm(self, transaction: dict[str, Any]) -> None:
        """The transaction ended (committed or rolled back): cancel.

        :param transaction: the transaction, with what :meth:`arm`
            returned under ``watchdog``.
        """


class NoTimer:
    """A timer that does nothing (the watchdog's own API uses it)."""

    def arm(self, transaction: dict[str, Any]) -> dict[str, Any]:
        """Nothing to arm."""
        return {}

    def disarm(self, transaction: dict[str, Any]) -> None:
        """Nothing to disarm."""


def conf_settings(conf: cfg.ConfigOpts) -> dict[str, dict[str, Any]]:
    """The options a watchdog needs to act like ``conf`` (the library's
    and the privileged helper's, where they differ from the defaults).

    NOTE(vpd): the privileged options are read from ``cfg.CONF``, where
    :func:`vif_plug_dyn.privsep.use_conf` put the caller's.
    """
    core = {opt.dest: conf[opts.GROUP][opt.dest] for opt in opts.core_opts
            if conf[opts.GROUP][opt.dest] != opt.default}
    cfg.CONF.register_opts(priv_context.OPTS, group=opts.PRIVSEP_GROUP)
    privileged = {}
    for opt in priv_context.OPTS:
        value = cfg.CONF[opts.PRIVSEP_GROUP][opt.dest]
        if opt.dest not in _PRIVSEP_SKIP and value != opt.default:
            privileged[opt.dest] = value
    return {opts.GROUP: core, opts.PRIVSEP_GROUP: privileged}


def build_conf(settings: dict[str, dict[str, Any]]) -> cfg.ConfigOpts:
    """A configuration from :func:`conf_settings` (no file is read)."""
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf.register_opts(priv_context.OPTS, group=opts.PRIVSEP_GROUP)
    conf([], project='vif_plug_dyn', default_config_files=[])
    for group, values in settings.items():
        for name, value in values.items():
            conf.set_override(name, value, group=group)
    return conf


def is_watchdog(pid: int, token: str) -> bool:
    """Whether ``pid`` is the watchdog of transaction ``token`` (and not
    a process that got its PID since)."""
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            argv = handle.read().split(b'\0')
    except OSError:
        return False
    return MODULE.encode() in argv and token.encode() in argv


class ProcessTimer:
    """Starts a detached watchdog process per timed transaction.

    :param conf: the configuration the watchdog's rollback uses.
    """

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf

    def arm(self, transaction: dict[str, Any]) -> dict[str, Any]:
        """Start the watchdog; return once it runs.

        :returns: ``{'pid': ...}``.
        :raises TransactionError: it did not start.
        """
        payload = json.dumps({'directory': transaction['directory'],
                              'token': transaction['id'],
                              'settings': conf_settings(self.conf)})
        argv = [sys.executable, '-m', MODULE, '--token', transaction['id']]
        try:
            # NOTE(vpd): the launcher forks the watchdog and exits once it
            # has written its PID file; a session of its own keeps it out
            # of this process's group and terminal.
            launcher = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, close_fds=True,
                start_new_session=True, cwd='/')
            out, err = launcher.communicate(payload,
                                            timeout=START_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise exception.TransactionError(
                reason='the watchdog did not start: %s' % exc) from None
        if launcher.returncode != 0 or not out.strip().isdigit():
            raise exception.TransactionError(
                reason='the watchdog did not start: %s' % (
                    err.strip()[-300:] or 'exit status %s'
                    % launcher.returncode))
        return {'pid': int(out)}

    def disarm(self, transaction: dict[str, Any]) -> None:
        """End the watchdog, if it still runs."""
        pid = (transaction.get('watchdog') or {}).get('pid')
        if not isinstance(pid, int) or \
                not is_watchdog(pid, str(transaction.get('id'))):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


# --- the watchdog process ---------------------------------------------------

def _detach(directory: str) -> int:
    """Fork; the parent reports the child's PID once it runs, the child
    (the watchdog) returns 0."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        ready = os.read(read_end, 16)
        sys.stdout.write('%d\n' % pid if ready == b'ok' else '')
        sys.stdout.flush()
        return 1 if ready != b'ok' else -1
    os.close(read_end)
    os.setsid()
    # NOTE(vpd): its PID file and log (which names transactions and
    # what they restored) are for root only, like the journal.
    os.umask(0o077)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    path = os.path.join(directory, PID_FILE)
    temporary = path + '.%d' % os.getpid()
    with open(temporary, 'w', encoding='utf-8') as handle:
        handle.write('%d\n' % os.getpid())
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
    os.write(write_end, b'ok')
    os.close(write_end)
    return 0


def _watch(directory: str, token: str,
           settings: dict[str, dict[str, Any]]) -> int:
    from vif_plug_dyn import privsep
    from vif_plug_dyn.hostif import api as api_mod
    from vif_plug_dyn.hostif import journal as journal_mod

    journal = journal_mod.Journal(directory)
    LOG.info('Watching host interface transaction %s', token)
    while True:
        try:
            document = journal.load(journal_mod.TRANSACTION)
        except exception.TransactionError as exc:
            LOG.error('Cannot read the transaction: %s', exc)
            return 1
        if document is None or document.get('id') != token:
            LOG.info('Transaction %s was committed or rolled back; the '
                     'watchdog exits', token)
            return 0
        remaining = float(document['deadline']) - time.time()
        if remaining <= 0:
            break
        time.sleep(min(POLL, remaining))
    # NOTE(vpd): from here on the rollback runs to its end: a commit
    # cannot race it (both hold the lock), so a SIGTERM is ignored.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    api = api_mod.HostInterfaceAPI(build_conf(settings), timer=NoTimer())
    try:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                report = api.expire(token)
            except exception.TransactionError as exc:
                LOG.warning('Rollback attempt %d of %d: %s', attempt,
                            ATTEMPTS, exc)
                continue
            if report is None:
                LOG.info('Transaction %s ended before its deadline', token)
            return 0
        LOG.error('Transaction %s could not be rolled back; the next '
                  'host interface command will', token)
        return 1
    finally:
        privsep.stop()


def _remove_pid_file(directory: str) -> None:
    path = os.path.join(directory, PID_FILE)
    try:
        with open(path, encoding='utf-8') as handle:
            if handle.read().strip() != str(os.getpid()):
                return
        os.unlink(path)
    except OSError:
        pass


def main() -> int:
    """``python -m vif_plug_dyn.hostif.watchdog --token TOKEN``, with
    ``{"directory", "token", "settings"}`` as JSON on standard input."""
    payload = json.loads(sys.stdin.read())
    directory, token = payload['directory'], payload['token']
    status = _detach(directory)
    if status != 0:
        return max(status, 0)
    logging.basicConfig(
        filename=os.path.join(directory, LOG_FILE), level=logging.INFO,
        format='%(asctime)s %(process)d %(levelname)s %(name)s '
               '%(message)s')
    try:
        return _watch(directory, token, payload['settings'])
    except Exception:
        LOG.exception('The watchdog of transaction %s failed', token)
        return 1
    finally:
        _remove_pid_file(directory)


if __name__ == '__main__':
    sys.exit(main())
