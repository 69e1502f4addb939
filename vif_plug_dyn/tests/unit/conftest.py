"""Fixtures shared by the unit tests."""

import os
import uuid

import pytest
from oslo_config import cfg

from vif_plug_dyn import exception
from vif_plug_dyn import manager as manager_mod
from vif_plug_dyn import opts
from vif_plug_dyn import ports
from vif_plug_dyn.privsep import ops


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
    """Stands in for the privileged helper in unit tests, recording what
    it is asked.

    It knows the devices its batches made and removed, and those a test
    adds (an operator's bridge: :meth:`add_link`), and answers like the
    real helper: ``exists``/``get_link`` from what it knows, an empty or
    malformed batch refused with the helper's own ``InvalidField``.
    """

    def __init__(self, links=None):
        self.batches = []
        self.links = {}
        for name, link in (links or {}).items():
            self.add_link(name, **link)

    def add_link(self, name, kind='bridge', owned=False, tag=None,
                 master=None, alias=None):
        """A device that exists on the fake host (not ours by default)."""
        self._index = getattr(self, '_index', 1) + 1
        self.links[name] = {'name': name, 'index': self._index,
                            'kind': kind, 'owned': owned,
                            'tag': tag, 'master': master, 'alias': alias,
                            'adopted': False, 'borrowed': False,
                            'borrowed_tag': None, 'up': True}

    def _describe(self, link):
        master = self.links.get(link['master'] or '')
        return dict(link, master_index=master and master['index'])

    def list_links(self, master=None, kind=None):
        return [self._describe(link) for link in self.links.values()
                if (master is None or link['master'] == master) and
                (kind is None or link['kind'] == kind)]

    def get_link(self, name):
        if name not in self.links:
            raise exception.DeviceNotFound(device=name)
        return self._describe(self.links[name])

    def exists(self, name):
        return name in self.links

    def run(self, batch):
        # NOTE(vpd): the real helper's own check: an empty batch is
        # refused as malformed, so a driver that sends one fails here too.
        checked = ops.validate_batch(batch)
        self.batches.append(list(batch))
        for op in checked:
            self._apply(op)
        return [{'status': 'ok'} for _ in batch]

    def apply(self, batch, stop_on_error=True):
        self.run(batch)
        return [{'status': 'ok', 'error': None, 'name': op.get('name')}
                for op in batch]

    def _apply(self, op):
        kind = op['op']
        if kind.startswith('create_'):
            self.add_link(op['name'], kind=_LINK_KINDS.get(kind, kind[7:]),
                          owned=True, tag=op.get('tag'),
                          master=op.get('master'))
        elif kind == 'delete':
            for name in op['names']:
                self.links.pop(name, None)
            for link in self.links.values():
                if link['master'] in op['names']:
                    link['master'] = None
        elif kind == 'set_link' and op['name'] in self.links:
            link = self.links[op['name']]
            if op['master'] is not None:
                link['master'] = op['master']
            if op['nomaster']:
                link['master'] = None
        elif kind == 'borrow' and op['name'] in self.links:
            self.links[op['name']].update(borrowed=True,
                                          borrowed_tag=op['tag'])
        elif kind == 'give_back' and op['name'] in self.links:
            self.links[op['name']].update(borrowed=False, borrowed_tag=None)

    def delete(self, names, missing_ok=True):
        return self.run([ops.delete(list(names), missing_ok)])[0]


_LINK_KINDS = {'create_tap': 'tun'}


@pytest.fixture
def manager(conf):
    mgr = manager_mod.EndpointManager(conf, host=FakeHost())
    yield mgr
    mgr.close()


def make_port(network='red', mac='52:54:00:00:00:01', port_id=None, **kw):
    return ports.Port(port_id=port_id or str(uuid.uuid4()), mac=mac,
                      network=network, **kw)
