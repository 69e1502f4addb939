"""``vif-plug-dyn watch`` without a kernel: options reach the watcher,
SIGTERM stops it, the summary is printed and the signal handlers are put
back."""

import json
import os
import signal

from vif_plug_dyn.cmd import cli
from vif_plug_dyn.runtime import guests as guests_mod
from vif_plug_dyn.runtime import watcher as watcher_mod
from vif_plug_dyn.tests.unit.conftest import NOOP_NETWORKS
from vif_plug_dyn.tests.unit.conftest import write_network


class FakeWatcher:
    made = []

    def __init__(self, manager, **kwargs):
        self.kwargs = kwargs
        self.netns = None
        self.total = watcher_mod.Report(events=7, resyncs=1,
                                        degraded=['a'], restored=['a', 'b'])
        self.stopped = self.closed = False
        FakeWatcher.made.append(self)

    def open(self):
        pass

    def run(self):
        # What an operator does: SIGTERM while it runs.
        os.kill(os.getpid(), signal.SIGTERM)
        assert self.stopped

    def stop(self):
        self.stopped = True

    def close(self):
        self.closed = True


class FakeMonitor:
    made = []

    def __init__(self, manager, retry):
        self.manager = manager
        self.retry = retry
        self.started = ['one-guest']
        self.running = False
        FakeMonitor.made.append(self)

    def start(self):
        self.running = True
        return True

    def stop(self):
        assert self.running
        self.running = False


def test_watch_runs_until_sigterm(tmp_path, capsys, monkeypatch):
    for name, xml in NOOP_NETWORKS.items():
        write_network(str(tmp_path / 'nets'), name, xml)
    monkeypatch.setattr(watcher_mod, 'Watcher', FakeWatcher)
    monkeypatch.setattr(guests_mod, 'GuestMonitor', FakeMonitor)
    before = signal.getsignal(signal.SIGTERM)
    status = cli.main(['--state-path', str(tmp_path / 'state'),
                       '--network-dir', str(tmp_path / 'nets'), '--json',
                       'watch', '--settle', '3', '--burst-settle', '40',
                       '--max-hold', '500', '--guest-retry', '0.5'])
    out, _err = capsys.readouterr()
    assert status == 0
    assert json.loads(out) == {'events': 7, 'resyncs': 1, 'degraded': 1,
                               'restored': 2, 'failed': 0,
                               'guests_started': 1}
    made = FakeWatcher.made[-1]
    assert made.kwargs == {'settle': 0.003, 'burst_settle': 0.04,
                           'max_hold': 0.5}
    assert made.closed
    monitor = FakeMonitor.made[-1]
    # The guest monitor runs with the watcher, on the configured
    # hypervisor (libvirt by default, not loaded yet), and stops with it.
    assert monitor.retry == 0.5 and not monitor.running
    assert monitor.manager.guest.configured
    assert signal.getsignal(signal.SIGTERM) == before
