"""The installed ``vif-plug-dyn`` console script, run as real processes
sharing one ledger (entry points loaded by stevedore from the installed
package metadata)."""

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

NETWORK = ("<network type='bridge'><name>red</name><driver name='noop'/>"
           "<bridge name='br-red'/></network>")


def _script():
    path = shutil.which('vif-plug-dyn') or os.path.join(
        os.path.dirname(sys.executable), 'vif-plug-dyn')
    if not os.path.exists(path):
        pytest.skip('vif-plug-dyn console script is not installed')
    return path


def test_two_processes_share_the_ledger(tmp_path):
    (tmp_path / 'nets').mkdir()
    (tmp_path / 'nets' / 'red.xml').write_text(NETWORK)
    base = [_script(), '--state-path', str(tmp_path / 'state'),
            '--network-dir', str(tmp_path / 'nets'), '--json']
    port_id = str(uuid.uuid4())
    first = subprocess.run(
        base + ['plug', '--port-id', port_id, '--mac', '52:54:00:00:00:07',
                '--network', 'red', '--types', 'bridge'],
        capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    endpoint = json.loads(first.stdout)
    assert endpoint['vpd.data']['bridge'] == 'br-red'
    shown = subprocess.run(base + ['endpoint', 'show', port_id],
                           capture_output=True, text=True, timeout=60)
    assert json.loads(shown.stdout)['endpoint'] == endpoint
    bad = subprocess.run(base + ['connect', port_id, 'nowhere'],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.strip() == ('error: Network nowhere is not defined '
                                  'on this host')
    assert bad.stdout == ''
