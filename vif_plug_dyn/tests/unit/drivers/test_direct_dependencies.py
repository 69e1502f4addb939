"""The direct driver's dependencies, one port at a time and in bulk, and
the health the manager records from them."""

from vif_plug_dyn import endpoints
from vif_plug_dyn import ledger as ledger_mod
from vif_plug_dyn import manager as manager_mod
from vif_plug_dyn.tests.unit.conftest import FakeHost
from vif_plug_dyn.tests.unit.conftest import make_port
from vif_plug_dyn.tests.unit.conftest import write_network

POOL = ("<network type='direct'><name>pool</name>"
        "<forward mode='bridge'><interface dev='low0'/>"
        "<interface dev='low1'/></forward></network>")


class _Host(FakeHost):
    """Only ``low0`` exists."""

    def exists(self, name):
        return name == 'low0'


def test_bulk_dependencies_match_one_by_one(conf, tmp_path):
    write_network(str(tmp_path / 'networks'), 'pool', POOL)
    mgr = manager_mod.EndpointManager(conf, host=_Host())
    try:
        network = mgr.registry.get('pool')
        made = mgr.request_endpoints(
            [make_port('pool', mac='52:54:00:00:02:%02x' % n)
             for n in range(6)], ['ethernet'])
        driver = mgr.drivers.for_network(network)
        genuine = endpoints.DirectEndpoint(
            port_id=make_port('pool').port_id, network='pool',
            mac='52:54:00:00:03:01', source_dev='low1', mode='bridge')
        bulk = driver.dependencies_of(made + [genuine], network)
        assert bulk == {e.port_id: driver.dependencies(e, network)
                        for e in made + [genuine]}
        lowers = [bulk[e.port_id] for e in made]
        assert sorted(set(lowers)) == [('low0',), ('low1',)]
        # The manager recorded the health those dependencies give.
        for endpoint, lower in zip(made, lowers):
            want = (ledger_mod.HEALTHY if lower == ('low0',)
                    else ledger_mod.WAITING)
            assert mgr.ledger.get_port(endpoint.port_id).health == want
        # A port without an allocation on the network depends on nothing.
        stranger = made[0].replace(port_id=make_port('pool').port_id)
        assert driver.dependencies_of([stranger], network) == {
            stranger.port_id: ()}
    finally:
        mgr.close()
