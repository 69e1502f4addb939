"""Transactions that roll back by themselves, and verify-after-apply, on
real devices in private namespaces.

The remote-host story: an operator begins a transaction with a timeout,
starts a bridge over the only uplink (which cuts their session off), and
can no longer commit. The watchdog process ``change-begin`` started puts
the namespace back exactly (link and address dumps equal to the snapshot
taken before ``change-begin``) once the timeout expires, although the
CLI process was killed (SIGKILL to its whole process group).
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn.hostif import watchdog as watchdog_mod
from vif_plug_dyn.tests.functional import hostif_support as support

pytestmark = support.MARKS
ns = support.ns
daemon = support.daemon
conf = support.conf
api = support.api

UPLINK_BRIDGE = """<interface type='bridge' name='br0'>
  <start mode='onboot'/>
  <protocol family='ipv4'><ip address='192.0.2.10' prefix='24'/></protocol>
  <bridge stp='off' delay='0'>
    <interface type='ethernet' name='uplink'/>
  </bridge>
</interface>"""


def _uplink(ns):
    """The namespace's only uplink, with the host's address on it."""
    support.veth(ns, 'uplink', 'peer0')
    ns.run(['ip', 'link', 'set', 'uplink', 'up'])
    ns.run(['ip', 'link', 'set', 'peer0', 'up'])
    ns.run(['ip', 'address', 'add', '192.0.2.10/24', 'dev', 'uplink'])


@pytest.fixture
def watchdogs(tmp_path):
    """Ends, by PID, any watchdog a test leaves behind (it only would on
    failure: a watchdog exits after its deadline)."""
    yield
    path = tmp_path / 'state' / 'hostif' / watchdog_mod.PID_FILE
    try:
        pid = int(path.read_text())
    except (OSError, ValueError):
        return
    cmdline = '/proc/%d/cmdline' % pid
    if os.path.exists(cmdline) and \
            watchdog_mod.MODULE.encode() in open(cmdline, 'rb').read():
        os.kill(pid, signal.SIGKILL)


def _wait_gone(api, timeout):
    """Wait until no transaction is open (the watchdog rolled it back)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.journal.load('transaction') is None:
            return
        time.sleep(0.2)
    pytest.fail('the transaction was not rolled back within %ss' % timeout)


def _watchdog_log(tmp_path):
    path = tmp_path / 'state' / 'hostif' / watchdog_mod.LOG_FILE
    return path.read_text() if path.exists() else ''


def test_api_timeout_rolls_back_by_itself(api, ns, tmp_path, watchdogs):
    _uplink(ns)
    before = support.full_dump(ns)
    api.define(UPLINK_BRIDGE)
    result = api.change_begin(timeout=3)
    assert result['timeout'] == 3.0 and result['watchdog']['pid'] > 0
    pid = result['watchdog']['pid']
    assert watchdog_mod.is_watchdog(pid, api.journal.load(
        'transaction')['id'])
    assert api.transaction()['remaining'] <= 3
    api.start('br0')
    api.define("<interface type='ethernet' name='peer0'><mtu size='1400'/>"
               "</interface>")
    api.start('peer0')
    assert support.link(ns, 'uplink')['master'] == 'br0'
    _wait_gone(api, 30)
    support.assert_same(before, support.full_dump(ns))
    log = _watchdog_log(tmp_path)
    assert 'Automatic rollback' in log and 'was not committed' in log
    notices = api.take_notices()
    assert [n['event'] for n in notices] == ['timeout-rollback']
    assert notices[0]['restored'] is True
    assert api.take_notices() == [], 'reported once'
    # The definition made inside the transaction is gone with it (this
    # process sees what the watchdog did to the directory).
    assert [d.name for d in api.store.list()] == ['br0']


def test_commit_in_time_keeps_the_change_and_ends_the_watchdog(
        api, ns, watchdogs):
    _uplink(ns)
    api.define(UPLINK_BRIDGE)
    pid = api.change_begin(timeout=60)['watchdog']['pid']
    token = api.journal.load('transaction')['id']
    api.start('br0')
    after = support.full_dump(ns)
    api.change_commit()
    # NOTE(vpd): not our child (it was detached): once gone it is a
    # zombie of init at most, with no command line.
    deadline = time.monotonic() + 10
    while watchdog_mod.is_watchdog(pid, token) and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    assert not watchdog_mod.is_watchdog(pid, token)
    support.assert_same(after, support.full_dump(ns))


DRIVER = r"""
import contextlib, sys, time
from vif_plug_dyn.cmd import cli
config = sys.argv[1]
for argv in (['iface', 'define', sys.argv[2]],
             ['iface', 'change-begin', '--timeout', sys.argv[3]],
             ['iface', 'start', 'br0']):
    with contextlib.redirect_stdout(sys.stderr):
        status = cli.main(['--config-file', config] + argv)
    if status:
        sys.exit(status)
print('started', flush=True)
time.sleep(3600)      # the operator's session, about to be cut off
"""


def test_cli_killed_after_start_rolls_back_at_the_deadline(
        daemon, ns, tmp_path, watchdogs):
    """The held-out style check: begin with a 10 s timeout, start a bridge
    over the only uplink, kill the CLI: after the timeout the namespace's
    dumps equal the snapshot before change-begin."""
    _uplink(ns)
    config = support.config_file(tmp_path, ns)
    xml = tmp_path / 'br0.xml'
    xml.write_text(UPLINK_BRIDGE)
    before = support.full_dump(ns)
    began = time.monotonic()
    errors = tmp_path / 'driver.err'
    with open(errors, 'w') as stderr:
        session = subprocess.Popen(
            [sys.executable, '-c', DRIVER, config, str(xml), '10'],
            stdout=subprocess.PIPE, stderr=stderr, text=True,
            start_new_session=True)
    try:
        line = session.stdout.readline()
        assert line.strip() == 'started', errors.read_text()[-3000:]
        assert support.link(ns, 'uplink')['master'] == 'br0'
        assert support.addresses(ns, 'br0') == {'192.0.2.10/24'}
    finally:
        os.killpg(session.pid, signal.SIGKILL)
        session.wait()
    state = tmp_path / 'state' / 'hostif'
    # Still changed right after the kill: nothing rolls back early.
    assert support.link(ns, 'uplink')['master'] == 'br0'
    deadline = began + 60
    while (state / 'transaction.json').exists() and \
            time.monotonic() < deadline:
        time.sleep(0.2)
    assert not (state / 'transaction.json').exists(), \
        _watchdog_log(tmp_path)
    assert time.monotonic() - began >= 10
    support.assert_same(before, support.full_dump(ns))
    # The next command reports it, once.
    listed = support.cli(config, 'iface', 'list')
    assert listed.returncode == 0
    assert 'warning: the transaction begun' in listed.stderr
    assert 'rolled back automatically' in listed.stderr
    assert 'warning' not in support.cli(config, 'iface', 'list').stderr


CRASH = r"""
import os, sys
from oslo_config import cfg
from vif_plug_dyn import opts
from vif_plug_dyn.hostif import api as api_mod

conf = cfg.ConfigOpts()
opts.register_opts(conf)
conf(['--config-file', sys.argv[1]])
api = api_mod.HostInterfaceAPI(conf)
api.define(open(sys.argv[2]).read())
api.change_begin(timeout=float(sys.argv[3]))
def die(action, step, name):
    if step == 2:
        os.kill(os.getpid(), 9)     # killed half way through the start
api.live.step_hook = die
api.start('br0')
"""


def test_killed_half_way_through_a_timed_start(daemon, ns, tmp_path,
                                               watchdogs):
    _uplink(ns)
    config = support.config_file(tmp_path, ns)
    xml = tmp_path / 'br0.xml'
    xml.write_text(UPLINK_BRIDGE)
    before = support.full_dump(ns)
    child = subprocess.run([sys.executable, '-c', CRASH, config, str(xml),
                            '4'], capture_output=True, text=True,
                           timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr
    state = tmp_path / 'state' / 'hostif'
    assert (state / 'apply.json').exists() and support.exists(ns, 'br0')
    deadline = time.monotonic() + 60
    while (state / 'transaction.json').exists() and \
            time.monotonic() < deadline:
        time.sleep(0.2)
    assert not (state / 'transaction.json').exists(), \
        _watchdog_log(tmp_path)
    assert not (state / 'apply.json').exists()
    support.assert_same(before, support.full_dump(ns))


def test_a_verify_failure_rolls_the_transaction_back(api, ns):
    """Something else changes the host while the start runs (here: a
    port leaves the bridge just before the last step): the read-back
    sees it, names the field, and rolls back the whole transaction."""
    _uplink(ns)
    support.veth(ns, 'v0', 'v1')
    before = support.full_dump(ns)
    api.change_begin()
    api.define(UPLINK_BRIDGE.replace(
        "<interface type='ethernet' name='uplink'/>",
        "<interface type='ethernet' name='uplink'/>"
        "<interface type='ethernet' name='v0'/>"))

    def meddle(action, number, step):
        if step == 'up':
            ns.run(['ip', 'link', 'set', 'v0', 'nomaster'])
    api.live.step_hook = meddle
    with pytest.raises(exception.HostInterfaceVerifyFailed) as info:
        api.start('br0')
    message = str(info.value)
    assert 'v0 master is nothing, the definition sets br0' in message
    assert 'transaction begun' in message and 'put back as it was' in \
        message
    assert info.value.kwargs['mismatches'][0]['field'] == 'master'
    assert api.transaction() is None
    assert api.store.list() == []
    support.assert_same(before, support.full_dump(ns))


def test_a_verify_failure_outside_a_transaction_restores_the_apply(
        api, ns):
    _uplink(ns)
    api.define(UPLINK_BRIDGE)
    before = support.full_dump(ns)

    def meddle(action, number, step):
        if step == 'up':
            ns.run(['ip', 'address', 'flush', 'dev', 'br0'])
    api.live.step_hook = meddle
    with pytest.raises(exception.HostInterfaceVerifyFailed,
                       match=r"after the start, br0 protocol\[@family="
                             r"'ipv4'\]/ip\[1\] is missing, the "
                             r"definition sets 192.0.2.10/24; the host was "
                             r"put back as it was"):
        api.start('br0')
    # The definition stays (it was made outside any transaction); the
    # host is as it was before the start.
    assert [d.name for d in api.store.list()] == ['br0']
    support.assert_same(before, support.full_dump(ns))
    api.live.step_hook = None
    assert api.start('br0')['changed']


def test_cli_change_status(daemon, ns, tmp_path, watchdogs):
    config = support.config_file(tmp_path, ns)
    begun = support.cli(config, 'iface', 'change-begin', '--timeout', '30')
    assert begun.returncode == 0, begun.stderr
    status = json.loads(support.cli(config, 'iface', 'change-status')
                        .stdout)['transaction']
    assert status['timeout'] == 30.0 and 0 < status['remaining'] <= 30
    assert status['watchdog']['pid'] == json.loads(begun.stdout)[
        'watchdog']['pid']
    assert support.cli(config, 'iface', 'change-commit').returncode == 0
    assert json.loads(support.cli(config, 'iface', 'change-status')
                      .stdout) == {'transaction': None}
    bad = support.cli(config, 'iface', 'change-begin', '--timeout', '-1')
    assert bad.returncode == 2 and 'field timeout' in bad.stderr
