"""Fuzzing (hypothesis) with the real privileged daemon in a namespace.

* random sequences of public API calls (bridge and steered direct
  networks, real devices): only typed errors escape, and after every
  sequence the host matches the ledger (:mod:`.invariants`);
* random calls of every :class:`HostNetwork` method and of the daemon's
  entrypoints directly: only typed errors escape; a refused call
  (``InvalidField``, ``DeviceNotOwned``) leaves the full link dump as it
  was, any other failure leaves no new device.

Examples per test: ``VPD_FUZZ_PROFILE`` (see :mod:`vif_plug_dyn.tests.
fuzzing`).
"""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import vif_plug_dyn
from vif_plug_dyn import exception
from vif_plug_dyn import host as host_mod
from vif_plug_dyn.privsep import linux_net
from vif_plug_dyn.tests import fuzzing
from vif_plug_dyn.tests.functional import fixtures
from vif_plug_dyn.tests.functional import invariants
from vif_plug_dyn.tests.unit import test_fuzz as unit_fuzz

NETWORKS = {
    'red': "<network type='bridge'><name>red</name>"
           "<bridge name='br-red'/></network>",
    'blue': "<network type='direct'><name>blue</name>"
            "<forward mode='bridge'><interface dev='eth0' "
            "maxConnections='2'/></forward></network>",
}


@pytest.fixture(scope='module')
def host():
    with fixtures.private_host('fuzz') as ns:
        ns.run(['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name',
                'eth1'])
        ns.run(['ip', 'link', 'add', 'brop', 'type', 'bridge'])
        ns.run(['ip', 'link', 'set', 'eth0', 'up'])
        yield ns


@pytest.fixture(scope='module')
def manager(host, tmp_path_factory):
    conf = fixtures.make_conf(tmp_path_factory.mktemp('fuzz'), host.name,
                              NETWORKS)
    mgr = vif_plug_dyn.initialize(conf)
    yield mgr
    mgr.close()


def _links(ns):
    out = ns.check_output(['ip', '-d', '-j', 'link', 'show'])
    links = json.loads(out)
    for link in links:
        link.get('linkinfo', {}).get('info_data', {}).pop('gc_timer', None)
    return {link['ifname']: link for link in links}


def _clean(ns, host):
    owned = [name for name, link in invariants.dump(ns).items()
             if invariants.owner_tag(link) is not None]
    if owned:
        host.delete(owned)


@fuzzing.settings_for(0.6)
@given(sequence=st.lists(unit_fuzz.calls, max_size=6))
def test_public_api_on_real_devices(host, manager, sequence):
    try:
        for call in sequence:
            unit_fuzz.typed(unit_fuzz._apply_call, manager, call)
        assert invariants.check(host, manager) == []
    finally:
        manager.release_endpoints(sorted(manager.ledger.port_ids()))
    assert invariants.check(host, manager) == []


@fuzzing.SETTINGS
@given(call=fuzzing.HOST_CALLS)
def test_host_network_on_the_daemon(host, manager, call):
    helper = host_mod.HostNetwork(tag='fz')
    before = _links(host)
    name, *args = call
    try:
        outcome = unit_fuzz.typed(getattr(helper, name), *args)
        after = _links(host)
        if isinstance(outcome, (exception.InvalidField,
                                exception.DeviceNotOwned)):
            assert after == before
        elif isinstance(outcome, exception.VifPlugDynException):
            assert set(after) <= set(before)
    finally:
        _clean(host, helper)


@fuzzing.SETTINGS
@given(call=fuzzing.ENTRYPOINT_CALLS)
def test_entrypoints_on_the_daemon(host, manager, call):
    """Straight at the daemon, as a compromised caller would."""
    helper = host_mod.HostNetwork(tag='fz')
    before = _links(host)
    name, *args = call
    try:
        outcome = unit_fuzz.typed(getattr(linux_net, name), *args)
        if isinstance(outcome, exception.InvalidField):
            assert _links(host) == before
    finally:
        _clean(host, helper)
