"""One process, one namespace, with the real daemon: a manager configured
for another namespace than the one this process's daemon serves is
refused naming both, and nothing is made in either; the same request
from its own process (the CLI) lands in the namespace it names."""

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

import vif_plug_dyn
from vif_plug_dyn import exception
from vif_plug_dyn import ports
from vif_plug_dyn.tests.functional import fixtures
from vif_plug_dyn.tests.functional.harness.netns import NetNamespace

NETWORKS = {'red': "<network type='bridge'><name>red</name>"
                   "<bridge name='br-red'/></network>"}


def _names(ns):
    return set(fixtures.links(ns))


def test_a_second_namespace_in_one_process_is_refused(tmp_path):
    (tmp_path / 'a').mkdir()
    (tmp_path / 'b').mkdir()
    with fixtures.private_host('onea') as first, NetNamespace('oneb') as \
            second:
        with fixtures.managed(tmp_path / 'a', first.name, NETWORKS) as mgr:
            port = ports.Port(port_id=str(uuid.uuid4()),
                              mac='52:54:00:6c:00:01', network='red')
            endpoint = mgr.request_endpoint(port, ['ethernet'])
            assert endpoint.tap in _names(first)
            before = (_names(first), _names(second))
            conf = fixtures.make_conf(tmp_path / 'b', second.name, NETWORKS)
            with pytest.raises(exception.NamespaceMismatch) as info:
                vif_plug_dyn.initialize(conf, hypervisor=None)
            assert first.name in str(info.value)
            assert second.name in str(info.value)
            assert (_names(first), _names(second)) == before
        # Its own process serves its own namespace.
        nets = tmp_path / 'b' / 'networks'
        script = shutil.which('vif-plug-dyn') or os.path.join(
            os.path.dirname(sys.executable), 'vif-plug-dyn')
        conf_file = tmp_path / 'b.conf'
        conf_file.write_text('[vif_plug_dyn]\nstate_path = %s\n'
                             'network_dir = %s\nnetns = %s\n'
                             'hypervisor = none\n' % (
                                 tmp_path / 'b' / 'state', nets,
                                 second.name))
        other = str(uuid.uuid4())
        result = subprocess.run(
            [script, '--config-file', str(conf_file), '--json', 'plug',
             '--port-id', other, '--mac', '52:54:00:6c:00:02', '--network',
             'red', '--types', 'ethernet'], capture_output=True, text=True,
            timeout=120)
        assert result.returncode == 0, result.stderr
        tap = json.loads(result.stdout)['vpd.data']['tap']
        assert tap in _names(second) and tap not in _names(first)
        assert fixtures.master_of(second, tap) == 'br-red'
