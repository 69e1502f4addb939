"""``vif-plug-dyn --host``: refused commands and a typed timeout, with
oslo.messaging's fake driver (the functional tests run the commands
against real agents)."""

from vif_plug_dyn.agent import cli as agent_cli
from vif_plug_dyn.cmd import cli


def _main(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_host_only_commands_are_refused(capsys, tmp_path):
    status, out, err = _main(capsys, '--state-path', str(tmp_path),
                             '--host', 'hosta', '--transport-url',
                             'fake:/', 'network', 'list')
    assert status == cli.EXIT_ERROR and out == ''
    assert err.startswith("error: Invalid value 'hosta' for field --host: "
                          '"network" runs on the host itself')


def test_no_agent_is_a_typed_timeout(capsys, tmp_path):
    status, out, err = _main(capsys, '--state-path', str(tmp_path),
                             '--host', 'nohost', '--transport-url',
                             'fake:/', '--rpc-timeout', '0.2', 'reconcile')
    assert status == cli.EXIT_ERROR and out == ''
    assert err == ('error: Agent nohost did not answer reconcile within '
                   '0.2 s\n')


def test_remote_manager_reads_the_agents_ledger():
    calls = []

    class Client:
        def port_status(self, port_ids=None, network=None):
            calls.append((port_ids, network))
            return []

        def get_port(self, port_id):
            calls.append(port_id)

        def connect(self, port_id, network=None):
            return 'connected'

    manager = agent_cli.RemoteManager(Client())
    assert manager.ledger.list_ports('red') == []
    assert manager.ledger.get_port('p') is None
    assert manager.ledger.guest_links(['p']) == {}
    assert manager.connect('p', 'blue') == 'connected'
    assert calls == [(None, 'red'), 'p']
