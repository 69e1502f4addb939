"""Fixtures shared by the unit tests."""

import os
import uuid

import pytest
from oslo_config import cfg

from vif_plug_dyn import manager as manager_mod
from vif_plug_dyn import opts
from vif_plug_dyn import ports


@pytest.fixture(autouse=True)
def _private_journal(tmp_path_factory, monkeypatch):
    """The privileged batch engine, run in-process by unit tests, keeps
    its creation journal in a private directory, never in /run."""
    from vif_plug_dyn.privsep import journal
    monkeypatch.setattr(journal, 'JOURNAL_DIR',
                        str(tmp_path_factory.mktemp('journal')))
    journal.JOURNAL.close()
    yield
    journal.JOURNAL.close()


@pytest.fixture(autouse=True)
def _policy():
    """The batch engine, run in-process by unit tests, enforces the
    policy a test gives it; otherwise none (compatibility mode), never
    a file of the machine's."""
    from vif_plug_dyn.privsep import policy
    policy.use(policy.permissive('unit tests'))
    yield
    policy.use(policy.permissive('unit tests'))


def write_network(directory, name, xml):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name + '.xml'), 'w') as handle:
        handle.write(xml)


NOOP_NETWORKS = {
    'red': "<network type='bridge'><name>red</name><driver name='noop'/>"
           "<bridge name='br-red'/></network>",
    'blue': "<network type='direct'><name>blue</name><driver name='noop'/>"
            "<forward mode='bridge'><interface dev='eth9'/></forward>"
            "</network>",
    'nat': "<network type='virtual'><name>nat</name>"
           "<source network='default'/></network>",
}


@pytest.fixture
def conf(tmp_path):
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override('state_path', str(tmp_path / 'state'), opts.GROUP)
    conf.set_override('network_dir', str(tmp_path / 'networks'), opts.GROUP)
    for name, xml in NOOP_NETWORKS.items():
        write_network(str(tmp_path / 'networks'), name, xml)
    return conf


class FakeHost:
    """Stands in for the privileged helper in unit tests: a host with no
    devices, recording what it is asked."""

    def __init__(self):
        self.batches = []

    def list_links(self, master=None, kind=None):
        return []

    def exists(self, name):
        return False

    def run(self, batch):
        self.batches.append(batch)
        return [{'status': 'ok'} for _ in batch]

    def delete(self, names, missing_ok=True):
        self.batches.append([{'op': 'delete', 'names': list(names)}])


@pytest.fixture
def manager(conf):
    mgr = manager_mod.EndpointManager(conf, host=FakeHost())
    yield mgr
    mgr.close()


def make_port(network='red', mac='52:54:00:00:00:01', port_id=None, **kw):
    return ports.Port(port_id=port_id or str(uuid.uuid4()), mac=mac,
                      network=network, **kw)
