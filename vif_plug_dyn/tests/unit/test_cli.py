import json
import uuid

import pytest

from vif_plug_dyn.cmd import cli
from vif_plug_dyn.tests.unit.conftest import NOOP_NETWORKS
from vif_plug_dyn.tests.unit.conftest import write_network


@pytest.fixture
def run(tmp_path, capsys):
    for name, xml in NOOP_NETWORKS.items():
        write_network(str(tmp_path / 'nets'), name, xml)
    base = ['--state-path', str(tmp_path / 'state'), '--network-dir',
            str(tmp_path / 'nets'), '--json']

    def _run(*args):
        status = cli.main(base + list(args))
        out, err = capsys.readouterr()
        return status, (json.loads(out) if out.strip() else None), err
    return _run


def test_endpoint_flow(run):
    port_id = str(uuid.uuid4())
    port = ['--port-id', port_id, '--mac', '52:54:00:00:00:05',
            '--network', 'red']
    status, out, _ = run('endpoint', 'request', *port, '--types',
                         'ethernet,bridge', '--unplugged')
    assert status == 0 and out['vpd.name'] == 'EthernetEndpoint'
    status, out, _ = run('endpoint', 'show', port_id)
    assert out['cable'] == 'unplugged' and out['network'] == 'red'
    status, out, _ = run('connect', port_id, 'blue')
    assert status == 0 and out['vpd.data']['network'] == 'blue'
    status, out, _ = run('endpoint', 'list', '--network', 'blue')
    assert [e['port_id'] for e in out] == [port_id]
    status, out, _ = run('disconnect', port_id)
    assert status == 0
    status, out, _ = run('link', port_id, 'up')
    assert (out['link'], out['cable']) == ('up', 'unplugged')
    status, out, _ = run('network', 'list')
    assert {n['name']: n['ports'] for n in out} == {
        'blue': 1, 'nat': 0, 'red': 0}
    status, out, err = run('network', 'undefine', 'blue')
    assert status == 2 and 'still has 1 port' in err
    status, out, _ = run('unplug', port_id)
    assert out == {'released': port_id}
    status, out, _ = run('network', 'undefine', 'blue')
    assert status == 0


def test_errors_are_typed_and_named(run):
    status, out, err = run('endpoint', 'request', '--port-id', 'nope',
                           '--mac', '52:54:00:00:00:05', '--network', 'red')
    assert status == 2 and 'field port_id' in err
    status, out, err = run('endpoint', 'request', '--port-id',
                           str(uuid.uuid4()), '--mac', '52:54:00:00:00:05',
                           '--network', 'red', '--types', 'hostdev')
    assert status == 2 and 'offers bridge, ethernet' in err
    status, out, err = run('endpoint', 'show', str(uuid.uuid4()))
    assert status == 2 and 'has no endpoint' in err
    status, out, err = run('plug', '--port-id', str(uuid.uuid4()), '--mac',
                           '52:54:00:00:00:05', '--network', 'red',
                           '--option', 'novalue')
    assert status == 2 and '--option' in err


def test_network_define_and_show(run, tmp_path):
    path = tmp_path / 'green.xml'
    path.write_text("<network type='openvswitch'><name>green</name>"
                    "<driver name='noop'/><bridge name='br-int'/></network>")
    status, out, _ = run('network', 'define', str(path))
    assert out == {'defined': 'green'}
    status, out, err = run('network', 'define', str(path))
    assert status == 2 and 'already defined' in err
    status, out, _ = run('network', 'show', 'green')
    assert 'br-int' in out
    bad = tmp_path / 'bad.xml'
    bad.write_text("<network type='openvswitch'><name>x</name></network>")
    status, out, err = run('network', 'define', str(bad))
    assert status == 2 and 'bad.xml' in err and '/network/bridge' in err


def test_capabilities_and_reconcile(run, monkeypatch):
    from vif_plug_dyn import host
    # NOTE: a unit test must not start the privileged helper.
    monkeypatch.setattr(host.HostNetwork, 'list_links',
                        lambda self, master=None, kind=None: [])
    status, out, _ = run('capabilities')
    assert out['networks']['blue']['endpoint_types'] == ['direct',
                                                        'ethernet']
    status, out, _ = run('reconcile')
    assert out == {'forgotten': [], 'restored': [], 'removed': [],
                   'guests_pending': []}


def test_opts_listed_for_the_generator():
    from vif_plug_dyn import opts
    groups = dict(opts.list_opts())
    assert {'vif_plug_dyn', 'vif_plug_dyn_privileged',
            'vif_plug_dyn_libvirt'} <= set(groups)
    names = {o.name for o in groups['vif_plug_dyn']}
    assert {'state_path', 'network_dir', 'network_drivers', 'netns'} <= names
    assert all(o.help for _, group in opts.list_opts() for o in group)


IFACE = ("<interface type='ethernet' name='eth7'><mtu size='1400'/>"
         "</interface>")


def test_iface_definitions(run, tmp_path):
    path = tmp_path / 'eth7.xml'
    path.write_text(IFACE)
    ifaces = ['--interface-dir', str(tmp_path / 'ifaces')]
    status, out, _ = run(*ifaces, 'iface', 'define', str(path))
    assert status == 0 and out == {'defined': 'eth7'}
    status, out, err = run(*ifaces, 'iface', 'define', str(path))
    assert status == 2 and 'already defined' in err
    status, out, _ = run(*ifaces, 'iface', 'dumpxml', 'eth7')
    assert status == 0 and '<mtu size="1400" />' in out
    status, out, err = run(*ifaces, 'iface', 'dumpxml', 'eth9')
    assert status == 2
    assert err == 'error: Host interface eth9 is not defined\n'
    path.write_text("<interface type='bond' name='bond0'/>")
    status, out, err = run(*ifaces, 'iface', 'define', str(path))
    assert status == 2 and err.startswith('error: Invalid host interface')


def test_iface_transaction_misuse_is_an_error(run, tmp_path):
    status, out, err = run('--interface-dir', str(tmp_path / 'ifaces'),
                           'iface', 'change-commit')
    assert status == 2
    assert err == ('error: Host interface transaction: no transaction is '
                   'open (use change-begin)\n')
