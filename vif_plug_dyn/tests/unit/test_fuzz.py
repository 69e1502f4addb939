"""Fuzzing (hypothesis): only the library's typed exceptions escape.

* every public API call, with the noop driver and a fake host;
* every privileged entrypoint, through :class:`HostNetwork` and directly
  (run in-process against the fake kernel of :mod:`.fake_rtnl`), and the
  operation validators; a refused call leaves the fake kernel as it was;
* the network, host interface and libvirt interface XML parsers and the
  versioned primitive (dict) parsers.

Examples per test come from the profile in ``VPD_FUZZ_PROFILE``
(:mod:`vif_plug_dyn.tests.fuzzing`): a few dozen by default, 10,000 in
``tox -e fuzz``.
"""

import copy
import dataclasses
import errno
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

import vif_plug_dyn
from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import host as host_mod
from vif_plug_dyn import networks
from vif_plug_dyn import objects
from vif_plug_dyn import ports
from vif_plug_dyn import privsep
from vif_plug_dyn.hostif import xml as hostif_xml
from vif_plug_dyn.privsep import linux_net
from vif_plug_dyn.privsep import netlink
from vif_plug_dyn.privsep import ops
from vif_plug_dyn.privsep import tuntap
from vif_plug_dyn.tests import fuzzing
from vif_plug_dyn.tests.fuzzing import junk
from vif_plug_dyn.tests.fuzzing import maybe
from vif_plug_dyn.tests.unit import fake_rtnl
from vif_plug_dyn.tests.unit.conftest import FakeHost
from vif_plug_dyn.virt.libvirt import config as libvirt_config

TYPED = exception.VifPlugDynException


def typed(func, *args, **kwargs):
    """Call; a library exception is an answer, anything else a bug."""
    try:
        return func(*args, **kwargs)
    except TYPED as exc:
        return exc


# -- the public API ----------------------------------------------------------

#: A small pool of port ids, so calls meet ports that exist.
PORT_IDS = [str(uuid.UUID(int=n + 1)) for n in range(4)]
NETWORK_NAMES = ['red', 'blue', 'nat', 'nowhere']
TYPES = list(endpoints.ENDPOINT_TYPES)

port_ids = maybe(st.sampled_from(PORT_IDS)) | fuzzing.names
class _Fields(dict):
    """Keyword arguments for a Port (junk dicts are passed as they are)."""


port_fields = st.builds(_Fields, st.fixed_dictionaries(
    {'port_id': port_ids,
     'mac': maybe(st.sampled_from(fuzzing.GOOD_MACS)),
     'network': maybe(st.sampled_from(NETWORK_NAMES))},
    optional={'mtu': fuzzing.mtus, 'vlan': maybe(st.integers(0, 5000)),
              'vm_uuid': maybe(fuzzing.uuids), 'tap': fuzzing.names}))
accepted = maybe(st.lists(st.sampled_from(TYPES), min_size=1, max_size=4,
                          unique=True))
options = maybe(st.none() | st.dictionaries(
    st.sampled_from(['queues', 'pci_address', 'hypervisor_tap']) |
    st.text(max_size=5), st.text(max_size=8), max_size=2))


def _port(fields):
    if isinstance(fields, _Fields):
        return ports.Port(**fields)
    return fields


calls = st.one_of(
    st.tuples(st.just('request_endpoint'), maybe(port_fields), accepted,
              options, st.booleans()),
    st.tuples(st.just('request_endpoints'),
              maybe(st.lists(port_fields, max_size=3)), accepted, options,
              st.booleans()),
    st.tuples(st.just('release_endpoint'), port_ids),
    st.tuples(st.just('release_endpoints'), maybe(st.lists(port_ids,
                                                           max_size=3))),
    st.tuples(st.just('connect'), port_ids,
              maybe(st.none() | st.sampled_from(NETWORK_NAMES))),
    st.tuples(st.just('disconnect'), port_ids),
    st.tuples(st.just('plug'), maybe(port_fields)),
    st.tuples(st.just('unplug'), maybe(port_fields) | port_ids),
    st.tuples(st.just('set_link_state'), port_ids,
              maybe(st.sampled_from(['up', 'down', 'follow']))),
    st.tuples(st.just('get_endpoint'), port_ids),
    st.tuples(st.just('host_capabilities')),
    st.tuples(st.just('reconcile')),
)


def _apply_call(manager, call):
    name, *args = call
    if name in ('request_endpoint', 'plug'):
        port = _port(args[0])
        if name == 'plug':
            return vif_plug_dyn.plug(port)
        return vif_plug_dyn.request_endpoint(port, *args[1:])
    if name == 'request_endpoints':
        group = args[0]
        if isinstance(group, list):
            group = [_port(fields) for fields in group]
        return vif_plug_dyn.request_endpoints(group, *args[1:])
    if name == 'unplug':
        return vif_plug_dyn.unplug(_port(args[0]))
    if name in ('set_link_state', 'get_endpoint'):
        return getattr(manager, name)(*args)
    return getattr(vif_plug_dyn, name)(*args)


@fuzzing.SETTINGS
@given(sequence=st.lists(calls, max_size=8))
def test_public_api_raises_only_typed_errors(conf, sequence):
    manager = vif_plug_dyn.initialize(conf, host=FakeHost())
    try:
        for call in sequence:
            typed(_apply_call, manager, call)
        # Whatever happened, the ledger stays consistent.
        assert manager.ledger.check() == []
        for record in manager.ledger.list_ports():
            assert record.endpoint is not None
    finally:
        manager.release_endpoints(sorted(manager.ledger.port_ids()))
        manager.close()


_PORT = ports.Port(port_id=str(uuid.UUID(int=1)), mac='52:54:00:12:34:56',
                   network='red')
_ENDPOINT = dict(port_id=_PORT.port_id, network='red', mac=_PORT.mac)
#: A valid set of arguments for each value object; the fuzzer replaces
#: some of them.
VALUE_OBJECTS = [
    (ports.Port, dict(port_id=_PORT.port_id, mac=_PORT.mac, network='red')),
    (ports.EndpointRequest, dict(port=_PORT)),
    (endpoints.VirtualPort, dict(type='openvswitch')),
    (endpoints.BridgeEndpoint, dict(_ENDPOINT, bridge='br0', tap='tap0')),
    (endpoints.DirectEndpoint, dict(_ENDPOINT, source_dev='eth0',
                                    mode='vepa')),
    (endpoints.HostdevEndpoint, dict(_ENDPOINT,
                                     pci_address='0000:03:10.1')),
    (endpoints.EthernetEndpoint, dict(_ENDPOINT, tap='tap0')),
    (endpoints.NetworkEndpoint, dict(_ENDPOINT, source_network='x')),
]


@st.composite
def value_object_calls(draw):
    cls, base = draw(st.sampled_from(VALUE_OBJECTS))
    fields = sorted(f.name for f in dataclasses.fields(cls))
    kwargs = dict(base)
    for name in draw(st.lists(st.sampled_from(fields), max_size=3)):
        kwargs[name] = draw(junk)
    return cls, kwargs


@fuzzing.SETTINGS
@given(call=value_object_calls())
def test_value_objects_raise_only_typed_errors(call):
    cls, kwargs = call
    typed(cls, **kwargs)


# -- primitives (dicts) ---------------------------------------------------

def _valid_primitives():
    port = ports.Port(port_id=PORT_IDS[0], mac=fuzzing.GOOD_MACS[0],
                      network='red', mtu=1500, tap='tapfz0',
                      virtualport=endpoints.VirtualPort(
                          type='802.1Qbh', profile_id='p'))
    made = [port, ports.EndpointRequest(port=port, options={'queues': '2'}),
            endpoints.BridgeEndpoint(
                port_id=PORT_IDS[0], network='red', mac=port.mac,
                bridge='br0', tap='tap0', virtualport=endpoints.VirtualPort(
                    type='openvswitch', interface_id=PORT_IDS[1])),
            endpoints.DirectEndpoint(port_id=PORT_IDS[0], network='red',
                                     mac=port.mac, source_dev='eth0',
                                     mode='vepa'),
            endpoints.HostdevEndpoint(port_id=PORT_IDS[0], network='red',
                                      mac=port.mac,
                                      pci_address='0000:03:10.1', vlan=42),
            endpoints.EthernetEndpoint(port_id=PORT_IDS[0], network='red',
                                       mac=port.mac, tap='tap0'),
            endpoints.NetworkEndpoint(port_id=PORT_IDS[0], network='red',
                                      mac=port.mac, source_network='x')]
    return [obj.to_primitive() for obj in made]


VALID_PRIMITIVES = _valid_primitives()


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from _paths(item, prefix + (n,))


@st.composite
def mutated_primitives(draw):
    primitive = copy.deepcopy(draw(st.sampled_from(VALID_PRIMITIVES)))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(primitive) if p]
        path = draw(st.sampled_from(paths))
        parent = primitive
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(['replace', 'delete', 'add']))
        if action == 'replace':
            parent[path[-1]] = draw(junk)
        elif action == 'delete' and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(junk)
    return primitive


@fuzzing.SETTINGS
@given(primitive=mutated_primitives() | junk)
def test_primitive_parsers_raise_only_typed_errors(primitive):
    typed(endpoints.from_primitive, primitive)
    typed(objects.VersionedObject.from_primitive, primitive)
    typed(ports.Port.from_primitive, primitive)
    typed(ports.EndpointRequest.from_primitive, primitive)
    typed(networks.Network.from_primitive, primitive)


@fuzzing.SETTINGS
@given(obj=st.sampled_from(VALID_PRIMITIVES), version=junk)
def test_back_level_raises_only_typed_errors(obj, version):
    parsed = objects.VersionedObject.from_primitive(obj)
    typed(parsed.to_primitive, version)


# -- XML parsers -----------------------------------------------------------

NETWORK_XML = fuzzing.xml_documents(
    ['name', 'bridge', 'forward', 'interface', 'pf', 'mtu', 'vlan', 'tag',
     'driver', 'source', 'portgroup', 'virtualport', 'parameters', 'uuid',
     'address', 'uplink', 'network'],
    ['name', 'type', 'dev', 'mode', 'managed', 'stp', 'delay', 'size', 'id',
     'maxConnections', 'uplink', 'vlan', 'network', 'trunk', 'nativeMode',
     'portgroup', 'profileid', 'interfaceid', 'managerid', 'typeid'],
    ['network', 'network', 'networks', 'interface'])
HOSTIF_XML = fuzzing.xml_documents(
    ['start', 'mac', 'protocol', 'ip', 'dhcp', 'route', 'bridge', 'bond',
     'vlan', 'interface', 'miimon', 'arpmon', 'target', 'mtu', 'link',
     'autoconf'],
    ['type', 'name', 'mode', 'address', 'prefix', 'family', 'gateway',
     'freq', 'updelay', 'carrier', 'interval', 'validate', 'ip', 'tag',
     'stp', 'delay', 'size', 'state', 'peerdns'],
    ['interface', 'interface', 'bond'])
DOMAIN_IF_XML = fuzzing.xml_documents(
    ['source', 'target', 'model', 'mac', 'virtualport', 'parameters',
     'vlan', 'tag', 'link', 'mtu', 'alias', 'address', 'driver', 'boot',
     'rom', 'coalesce', 'bandwidth', 'inbound', 'outbound', 'filterref',
     'port', 'ip', 'route', 'backend', 'guest', 'host', 'teaming'],
    ['type', 'bridge', 'dev', 'mode', 'network', 'portgroup', 'address',
     'name', 'state', 'size', 'id', 'interfaceid', 'profileid', 'managed',
     'domain', 'bus', 'slot', 'function', 'queues', 'order', 'managerid',
     'typeid', 'typeidversion', 'instanceid', 'trunk', 'nativeMode'],
    ['interface', 'interface', 'domain'])


@fuzzing.SETTINGS
@given(text=NETWORK_XML)
def test_network_xml_parser_raises_only_typed_errors(text):
    typed(networks.Network.from_xml, text)


@fuzzing.SETTINGS
@given(text=HOSTIF_XML)
def test_host_interface_xml_parser_raises_only_typed_errors(text):
    typed(hostif_xml.parse, text)


@fuzzing.SETTINGS
@given(text=DOMAIN_IF_XML)
def test_libvirt_interface_parser_raises_only_typed_errors(text):
    typed(libvirt_config.InterfaceConfig.parse_str, text)


# -- the privileged boundary, in-process on a fake kernel ---------------------

OURS = ops.alias_for('fz')
op_dicts = fuzzing.op_dicts
batches = fuzzing.batches
_INTS = fuzzing.INTS


@pytest.fixture
def fake_kernel(monkeypatch):
    """Entrypoints run in this process against a fresh fake kernel with an
    operator's devices and one of ours."""
    holder = {}

    def new_kernel():
        kernel = fake_rtnl.FakeKernel()
        kernel.add('eth0', kind='veth')
        kernel.add('brop', kind='bridge')
        kernel.add('tapfz9', kind='tun', alias=OURS)
        holder['kernel'] = kernel
        return kernel

    def create_tap(name, multi_queue=False, owner=None, owner_group=None):
        kernel = holder['kernel']
        if name in kernel.links:
            raise OSError(errno.EBUSY, 'busy')
        kernel.add(name, kind='tun')

    monkeypatch.setattr(netlink, 'RtnlSocket', lambda: holder['kernel'])
    monkeypatch.setattr(tuntap, 'create_tap', create_tap)
    monkeypatch.setattr(tuntap, 'macvtap_dev_number',
                        lambda name, index, sysfs='/sys': 0xF000 + index)
    monkeypatch.setattr(tuntap, 'ensure_macvtap_node',
                        lambda index, rdev, dev='/dev': ('/dev/tapx', False))
    monkeypatch.setattr(tuntap, 'remove_macvtap_node',
                        lambda index, rdev, dev='/dev': True)
    privsep.vif_plug_dyn_pctxt.set_client_mode(False)
    try:
        yield new_kernel
    finally:
        privsep.vif_plug_dyn_pctxt.set_client_mode(True)


def _table(kernel):
    return {name: (link.index, link.kind, link.alias, link.master,
                   link.mtu, link.up, link.group, link.qdisc)
            for name, link in kernel.links.items()}


HOST_CALLS = fuzzing.HOST_CALLS


@fuzzing.SETTINGS
@given(call=HOST_CALLS)
def test_host_network_raises_only_typed_errors(fake_kernel, call):
    kernel = fake_kernel()
    host = host_mod.HostNetwork()
    before = _table(kernel)
    name, *args = call
    outcome = typed(getattr(host, name), *args)
    after = _table(kernel)
    if isinstance(outcome, (exception.InvalidField,
                            exception.DeviceNotOwned)):
        # Refused: nothing changed at all.
        assert after == before
    elif isinstance(outcome, TYPED):
        # Failed half way: nothing it made is left.
        assert set(after) <= set(before)


ENTRYPOINT_CALLS = fuzzing.ENTRYPOINT_CALLS


@fuzzing.SETTINGS
@given(call=ENTRYPOINT_CALLS)
def test_entrypoints_called_directly_raise_only_typed_errors(fake_kernel,
                                                             call):
    """What a compromised caller could send the daemon, bypassing every
    check on the caller's side."""
    kernel = fake_kernel()
    before = _table(kernel)
    name, *args = call
    outcome = typed(getattr(linux_net, name), *args)
    if isinstance(outcome, exception.InvalidField):
        assert _table(kernel) == before


@fuzzing.SETTINGS
@given(op=junk | op_dicts(), ops_=junk | st.lists(op_dicts(), max_size=4))
def test_validators_raise_only_invalid_field(op, ops_):
    for func, arg in ((ops.validate_op, op), (ops.validate_batch, ops_)):
        try:
            func(arg)
        except exception.InvalidField:
            pass


@fuzzing.SETTINGS
@given(args=st.lists(junk, max_size=3),
       kwargs=st.dictionaries(st.sampled_from(
           ['mtu', 'mac', 'master', 'up', 'tag', 'group', 'mode', 'owner',
            'multi_queue', 'missing_ok', 'vlan', 'trust', 'spoofchk',
            'qdisc', 'nomaster', 'lower', 'peer']), junk, max_size=3))
def test_operation_builders_raise_only_invalid_field(args, kwargs):
    for builder in (ops.create_bridge, ops.create_tap, ops.create_veth,
                    ops.create_macvtap, ops.create_macvlan, ops.create_vlan,
                    ops.create_bond, ops.set_link, ops.set_state,
                    ops.set_mtu, ops.set_mac, ops.set_master,
                    ops.set_nomaster, ops.set_alias,
                    ops.delete, ops.redirect, ops.unredirect, ops.set_vf):
        try:
            builder(*args, **kwargs)
        except exception.InvalidField:
            pass
        except TypeError as exc:
            # NOTE(vpd): a wrong number of arguments or an unknown keyword
            # is Python's own check of the call, before any of ours.
            assert 'argument' in str(exc), exc
