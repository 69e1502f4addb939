"""The libvirt adapter's live operations, against a fake connection.

The fake (:mod:`.fake_libvirt`) edits XML like libvirt and reports device
removals through the registered event callbacks; the real thing is
exercised by ``tests/functional/test_libvirt_live.py``.
"""

import threading
import time
import xml.etree.ElementTree as ET

import libvirt
import pytest
from oslo_config import cfg

from vif_plug_dyn import endpoints as ep
from vif_plug_dyn import exception
from vif_plug_dyn import opts
from vif_plug_dyn.tests.unit.virt import fake_libvirt as fake
from vif_plug_dyn.tests.unit.virt import samples
from vif_plug_dyn.virt.libvirt import adapter as adapter_mod
from vif_plug_dyn.virt.libvirt import config
from vif_plug_dyn.virt.libvirt import domain as domain_mod
from vif_plug_dyn.virt.libvirt import host as host_mod
from vif_plug_dyn.virt.libvirt import live

LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE
CONFIG = libvirt.VIR_DOMAIN_AFFECT_CONFIG
INACTIVE = libvirt.VIR_DOMAIN_XML_INACTIVE

BR_MAC = '52:54:00:aa:00:01'
DIRECT_MAC = '52:54:00:aa:00:02'
HOSTDEV_MAC = '52:54:00:aa:00:03'
NEW_MAC = '52:54:00:aa:00:09'


def _bridge_ep(bridge='br-b', tap='vpdtap0', mac=BR_MAC, **kw):
    return ep.BridgeEndpoint(port_id=samples.PORT, network='red', mac=mac,
                             bridge=bridge, tap=tap, **kw)


def _eth_ep(mac=NEW_MAC, tap='vpdeth0'):
    return ep.EthernetEndpoint(port_id=samples.PORT, network='red',
                               mac=mac, tap=tap)


@pytest.fixture
def conn():
    return fake.FakeConnection()


def _guest(conn, name='g1', link=None, **kwargs):
    return conn.add(name, [
        fake.interface_xml(BR_MAC, tap='vpdtap0', link=link, mtu=1500),
        fake.interface_xml(DIRECT_MAC, kind='direct'),
        fake.interface_xml(HOSTDEV_MAC, kind='hostdev'),
    ], **kwargs)


def _ops(conn, timeout=0.2, attempts=3):
    return live.LiveOperations(host_mod.Host(conn=conn),
                               detach_timeout=timeout,
                               detach_attempts=attempts)


# -- flags ------------------------------------------------------------------

@pytest.mark.parametrize('active,persistent,want_live,want_config,flags', [
    (True, True, True, True, LIVE | CONFIG),
    (True, False, True, True, LIVE),
    (False, True, True, True, CONFIG),
    (True, True, True, False, LIVE),
    (True, True, False, True, CONFIG),
    (False, True, False, True, CONFIG),
])
def test_device_flags(active, persistent, want_live, want_config, flags):
    state = live.DomainState(active=active, persistent=persistent)
    assert live.device_flags(state, want_live, want_config, 'op',
                             'dom') == flags


@pytest.mark.parametrize('active,persistent,want_live,want_config,words', [
    (False, True, True, False, 'shut off and persistent, so a live'),
    (True, False, False, True, 'running and transient, so a persistent'),
    (True, True, False, False, 'a no change'),
])
def test_device_flags_nothing_to_change(active, persistent, want_live,
                                        want_config, words):
    state = live.DomainState(active=active, persistent=persistent)
    with pytest.raises(exception.HypervisorOperationFailed) as info:
        live.device_flags(state, want_live, want_config, 'attaching x',
                          'dom1')
    assert words in str(info.value)
    assert 'attaching x on domain dom1' in str(info.value)


def test_flags_follow_the_domain_state(conn):
    running = _guest(conn, 'run')
    transient = _guest(conn, 'tra', persistent=False)
    shut_off = _guest(conn, 'off', active=False)
    ops = _ops(conn)
    assert ops.attach('run', _eth_ep()) == LIVE | CONFIG
    assert ops.attach('tra', _eth_ep()) == LIVE
    assert ops.attach('off', _eth_ep()) == CONFIG
    for dom, flags in ((running, LIVE | CONFIG), (transient, LIVE),
                       (shut_off, CONFIG)):
        assert dom.calls_to('attachDeviceFlags')[0][2] == flags
    assert ops.attach('run', _eth_ep(mac='52:54:00:aa:00:0a'),
                      live=False) == CONFIG
    assert NEW_MAC in domain_mod.list_interfaces(running.live_xml)
    assert NEW_MAC in domain_mod.list_interfaces(running.config_xml)
    assert shut_off.live_xml is None


# -- attach -----------------------------------------------------------------

def test_attach_renders_the_endpoint_with_nic_options(conn):
    dom = _guest(conn)
    adapter = adapter_mod.LibvirtAdapter(connection=conn)
    adapter.attach('g1', _eth_ep(), link_up=False, alias='ua-eth0',
                   guest_address='0000:00:09.0')
    xml = dom.calls_to('attachDeviceFlags')[0][1]
    iface = config.InterfaceConfig.parse_str(xml)
    assert (iface.type, iface.target_dev, iface.target_managed,
            iface.link_state, iface.alias) == (
        'ethernet', 'vpdeth0', False, 'down', 'ua-eth0')
    assert iface.guest_address.pci() == '0000:00:09.0'


def test_attach_existing_mac(conn):
    dom = _guest(conn)
    with pytest.raises(exception.InterfaceExists) as info:
        _ops(conn).attach('g1', _eth_ep(mac=BR_MAC))
    assert BR_MAC in str(info.value) and 'g1' in str(info.value)
    assert not dom.calls_to('attachDeviceFlags')


def test_attach_unknown_option(conn):
    _guest(conn)
    adapter = adapter_mod.LibvirtAdapter(connection=conn)
    with pytest.raises(exception.InvalidField):
        adapter.attach('g1', _eth_ep(), boot_order=2)


def test_attach_refused_by_libvirt_is_typed(conn):
    dom = _guest(conn)
    dom.fail['attachDeviceFlags'] = fake.error(
        libvirt.VIR_ERR_OPERATION_FAILED, 'guest is not ready')
    with pytest.raises(exception.HypervisorOperationFailed) as info:
        _ops(conn).attach('g1', _eth_ep())
    assert 'attaching interface %s on domain g1' % NEW_MAC in str(
        info.value)
    assert 'guest is not ready' in str(info.value)
    assert isinstance(info.value.__cause__, libvirt.libvirtError)


# -- detach -----------------------------------------------------------------

def test_detach_waits_for_the_event(conn):
    dom = _guest(conn, ack='later', ack_delay=0.1)
    t = time.monotonic()
    assert _ops(conn, timeout=5).detach('g1', BR_MAC) == LIVE | CONFIG
    took = time.monotonic() - t
    assert 0.09 <= took < 2, took
    assert BR_MAC not in domain_mod.list_interfaces(dom.live_xml)
    assert BR_MAC not in domain_mod.list_interfaces(dom.config_xml)
    # the persistent definition first, then one live request by alias
    detach_calls = [c for c in dom.calls if c[0].startswith('detach')]
    assert [c[0] for c in detach_calls] == ['detachDeviceFlags',
                                            'detachDeviceAlias']
    assert detach_calls[0][2] == CONFIG
    assert detach_calls[1][1:] == ('net0', LIVE)
    # waiters are cleaned up
    assert conn.callbacks and not _ops(conn).host._waiters


def test_detach_event_inside_the_call(conn):
    # libvirt may report the removal before the request returns: the
    # waiter must be registered before the request is sent.
    dom = _guest(conn, ack='sync')
    t = time.monotonic()
    _ops(conn, timeout=5).detach('g1', DIRECT_MAC)
    assert time.monotonic() - t < 1
    assert dom.requests == 1


def test_detach_by_uuid(conn):
    dom = _guest(conn)
    _ops(conn).detach(dom.uuid, BR_MAC)
    assert BR_MAC not in domain_mod.list_interfaces(dom.live_xml)


def test_detach_retries_then_typed_error(conn):
    dom = _guest(conn, ack='never')
    t = time.monotonic()
    with pytest.raises(exception.HypervisorOperationFailed) as info:
        _ops(conn, timeout=0.1, attempts=3).detach('g1', BR_MAC)
    took = time.monotonic() - t
    assert 0.3 <= took < 2, took
    assert dom.requests == 3
    message = str(info.value)
    assert 'detaching interface %s on domain g1' % BR_MAC in message
    assert 'device net0 is still there after 3 request(s)' in message
    assert 'persistent definition no longer has it' in message
    assert not isinstance(info.value, exception.LiveUpdateRefused)
    # the live guest still has it, the definition does not
    assert BR_MAC in domain_mod.list_interfaces(dom.live_xml)
    assert BR_MAC not in domain_mod.list_interfaces(dom.config_xml)


def test_detach_retries_exhausted_with_fake_clock(conn):
    # the timeout is per request: with a clock that jumps, each wait
    # returns at once and the number of requests is what bounds it.
    dom = _guest(conn, ack='never')
    now = [0.0]

    def clock():
        now[0] += 100.0
        return now[0]
    ops = live.LiveOperations(host_mod.Host(conn=conn),
                              detach_timeout=50, detach_attempts=4,
                              clock=clock)
    t = time.monotonic()
    with pytest.raises(exception.HypervisorOperationFailed):
        ops.detach('g1', BR_MAC, persistent=False)
    assert time.monotonic() - t < 1
    assert dom.requests == 4
    assert BR_MAC in domain_mod.list_interfaces(dom.config_xml)


def test_detach_refused_once_then_removed(conn):
    dom = _guest(conn, ack='refuse-once')
    _ops(conn, timeout=5).detach('g1', BR_MAC)
    assert dom.requests == 2


def test_detach_always_refused(conn):
    dom = _guest(conn, ack='refuse')
    with pytest.raises(exception.HypervisorOperationFailed) as info:
        _ops(conn, timeout=5, attempts=2).detach('g1', BR_MAC)
    assert 'the guest refused the unplug 2 time(s)' in str(info.value)
    assert dom.requests == 2


def test_detach_event_lost(conn):
    # removed without an event (no event loop, reconnect): found by
    # reading the definition when the wait times out.
    dom = _guest(conn, ack='lost')
    t = time.monotonic()
    _ops(conn, timeout=0.2).detach('g1', BR_MAC)
    assert 0.19 <= time.monotonic() - t < 1
    assert dom.requests == 1


def test_detach_stale_event_for_the_alias(conn):
    # an event for the alias while the MAC is still there (aliases are
    # reused) does not end the wait; the real removal does.
    dom = _guest(conn, ack='stale', ack_delay=0.15)
    _ops(conn, timeout=5).detach('g1', BR_MAC)
    assert dom.requests == 1
    assert BR_MAC not in domain_mod.list_interfaces(dom.live_xml)


def test_detach_domain_stops_meanwhile(conn):
    dom = _guest(conn, ack='stop')
    _ops(conn, timeout=0.1).detach('g1', BR_MAC)
    assert dom.requests == 1


def test_detach_request_fails_but_device_gone(conn):
    dom = _guest(conn, ack='never')

    def gone_then_error(alias, flags):
        dom.live_xml = domain_mod.remove_interface(dom.live_xml, BR_MAC)
        raise fake.error(libvirt.VIR_ERR_INTERNAL_ERROR,
                         'no device found with alias %s' % alias)
    dom.detachDeviceAlias = gone_then_error
    _ops(conn).detach('g1', BR_MAC)


def test_detach_request_fails_device_still_there(conn):
    dom = _guest(conn, ack='never')
    dom.fail['detachDeviceAlias'] = fake.error(
        libvirt.VIR_ERR_OPERATION_FAILED, 'unplug already in progress?')
    with pytest.raises(exception.HypervisorOperationFailed) as info:
        _ops(conn).detach('g1', BR_MAC)
    assert 'unplug already in progress?' in str(info.value)
    assert isinstance(info.value.__cause__, libvirt.libvirtError)


def test_detach_config_only(conn):
    dom = _guest(conn, active=False)
    assert _ops(conn).detach('g1', BR_MAC) == CONFIG
    assert not dom.calls_to('detachDeviceAlias')


def test_detach_only_where_the_nic_is(conn):
    # attached to the running guest only: nothing to do in the definition
    dom = _guest(conn)
    _ops(conn).attach('g1', _eth_ep(), persistent=False)
    assert _ops(conn).detach('g1', NEW_MAC) == LIVE
    assert not dom.calls_to('detachDeviceFlags')


def test_detach_unknown_mac(conn):
    _guest(conn)
    with pytest.raises(exception.InterfaceNotFound) as info:
        _ops(conn).detach('g1', '52:54:00:ff:ff:ff')
    assert str(info.value) == ('Domain g1 has no interface with MAC '
                               '52:54:00:ff:ff:ff')


def test_unknown_domain(conn):
    with pytest.raises(exception.DomainNotFound) as info:
        _ops(conn).detach('nope', BR_MAC)
    assert isinstance(info.value, exception.HypervisorOperationFailed)
    assert 'detaching interface %s failed' % BR_MAC in str(info.value)
    assert 'no domain nope' in str(info.value)


# -- link state ---------------------------------------------------------------

@pytest.mark.parametrize('link', [None, 'up'])
def test_set_link_state_replaces_the_link(conn, link):
    dom = _guest(conn, link=link)
    assert _ops(conn).set_link_state('g1', BR_MAC, False) == LIVE | CONFIG
    for flags in (0, INACTIVE):
        assert dom.links(flags)[BR_MAC] == ['down']
    sent = dom.calls_to('updateDeviceFlags')
    assert [c[2] for c in sent] == [LIVE, CONFIG]
    for _m, xml, _f in sent:
        assert len(ET.fromstring(xml).findall('link')) == 1
    # the live device keeps its alias (how libvirt finds it)
    assert ET.fromstring(sent[0][1]).find('alias').get('name') == 'net0'
    _ops(conn).set_link_state('g1', BR_MAC, True)
    assert dom.links()[BR_MAC] == ['up']
    assert dom.links(INACTIVE)[BR_MAC] == ['up']


def test_set_link_state_hostdev_refused(conn):
    dom = _guest(conn)
    with pytest.raises(exception.LiveUpdateRefused):
        _ops(conn).set_link_state('g1', HOSTDEV_MAC, False)
    assert not dom.calls_to('updateDeviceFlags')


def test_set_link_state_unknown_mac(conn):
    _guest(conn)
    with pytest.raises(exception.InterfaceNotFound):
        _ops(conn).set_link_state('g1', NEW_MAC, False)


def test_set_link_state_transient_and_shut_off(conn):
    transient = _guest(conn, 'tra', persistent=False)
    shut_off = _guest(conn, 'off', active=False)
    assert _ops(conn).set_link_state('tra', BR_MAC, False) == LIVE
    assert _ops(conn).set_link_state('off', BR_MAC, False) == CONFIG
    assert transient.links()[BR_MAC] == ['down']
    assert shut_off.links(INACTIVE)[BR_MAC] == ['down']


# -- source -----------------------------------------------------------------

def test_update_source_bridge(conn):
    dom = _guest(conn)
    assert _ops(conn).update_source('g1', _bridge_ep()) == LIVE | CONFIG
    for flags in (0, INACTIVE):
        iface = domain_mod.get_interface(dom.XMLDesc(flags), BR_MAC)
        assert iface.source_bridge == 'br-b'
        assert iface.target_dev == 'vpdtap0'
    live_sent = dom.calls_to('updateDeviceFlags')[0]
    assert live_sent[2] == LIVE
    assert ET.fromstring(live_sent[1]).find('alias').get('name') == 'net0'


@pytest.mark.parametrize('endpoint,words', [
    (_bridge_ep(mtu=9000), 'the MTU (1500 to 9000)'),
    (_bridge_ep(tap='vpdother'), 'the tap name (vpdtap0 to vpdother)'),
    (_bridge_ep(queues=4), 'the queue count (None to 4)'),
    (_bridge_ep(virtualport=ep.VirtualPort(
        type='openvswitch', interface_id=samples.IFACE_ID)),
     'the virtual port (none to openvswitch'),
    (_eth_ep(mac=BR_MAC), 'the interface type (bridge to ethernet)'),
    (ep.DirectEndpoint(port_id=samples.PORT, network='blue',
                       mac=DIRECT_MAC, source_dev='eth9', mode='vepa'),
     'a direct (macvtap) source device or mode (eth9/bridge to '
     'eth9/vepa)'),
    (ep.DirectEndpoint(port_id=samples.PORT, network='blue',
                       mac=DIRECT_MAC, source_dev='eth8', mode='bridge'),
     'a direct (macvtap) source device or mode'),
])
def test_update_source_refused_live(conn, endpoint, words):
    dom = _guest(conn)
    before = (dom.live_xml, dom.config_xml)
    with pytest.raises(exception.LiveUpdateRefused) as info:
        _ops(conn).update_source('g1', endpoint)
    message = str(info.value)
    assert words in message
    assert 'detach and attach it instead' in message
    assert 'on domain g1 is refused' in message
    assert not dom.calls_to('updateDeviceFlags')
    assert (dom.live_xml, dom.config_xml) == before


def test_update_source_hostdev_refused(conn):
    _guest(conn)
    endpoint = ep.HostdevEndpoint(port_id=samples.PORT, network='fast',
                                  mac=HOSTDEV_MAC,
                                  pci_address='0000:03:10.4')
    with pytest.raises(exception.LiveUpdateRefused):
        _ops(conn).update_source('g1', endpoint)


def test_update_source_shut_off_takes_anything(conn):
    dom = _guest(conn, active=False)
    endpoint = ep.DirectEndpoint(port_id=samples.PORT, network='blue',
                                 mac=BR_MAC, source_dev='eth3', mode='vepa')
    assert _ops(conn).update_source('g1', endpoint) == CONFIG
    iface = domain_mod.get_interface(dom.config_xml, BR_MAC)
    assert (iface.type, iface.source_dev, iface.source_mode) == (
        'direct', 'eth3', 'vepa')


def test_update_source_libvirt_refusal_is_typed(conn):
    dom = _guest(conn)
    dom.fail['updateDeviceFlags'] = fake.error(
        libvirt.VIR_ERR_OPERATION_UNSUPPORTED,
        "Operation not supported: unable to change config on 'bridge' "
        "network type")
    with pytest.raises(exception.LiveUpdateRefused) as info:
        _ops(conn).update_source('g1', _bridge_ep())
    assert "unable to change config on 'bridge'" in str(info.value)
    assert 'libvirt error code 84' in str(info.value)


def test_update_source_config_fails_after_live(conn):
    dom = _guest(conn)
    calls = []
    real = dom.updateDeviceFlags

    def update(xml, flags):
        calls.append(flags)
        if flags == CONFIG:
            raise fake.error(libvirt.VIR_ERR_OPERATION_FAILED, 'disk full')
        return real(xml, flags)
    dom.updateDeviceFlags = update
    with pytest.raises(exception.HypervisorOperationFailed) as info:
        _ops(conn).update_source('g1', _bridge_ep())
    assert 'the running guest already uses the new source' in str(
        info.value)
    assert calls == [LIVE, CONFIG]


def test_update_source_unknown_mac(conn):
    _guest(conn)
    with pytest.raises(exception.InterfaceNotFound):
        _ops(conn).update_source('g1', _bridge_ep(mac=NEW_MAC))


# -- error mapping -----------------------------------------------------------

@pytest.mark.parametrize('code,err_domain,cls', [
    (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_FROM_QEMU,
     exception.DomainNotFound),
    (libvirt.VIR_ERR_DEVICE_MISSING, libvirt.VIR_FROM_DOMAIN,
     exception.InterfaceNotFound),
    (libvirt.VIR_ERR_OPERATION_UNSUPPORTED, libvirt.VIR_FROM_QEMU,
     exception.LiveUpdateRefused),
    (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_FROM_QEMU,
     exception.LiveUpdateRefused),
    (libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_FROM_REMOTE,
     exception.HypervisorConnectionFailed),
    (libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_RPC,
     exception.HypervisorConnectionFailed),
    (libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_QEMU,
     exception.HypervisorOperationFailed),
    (libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_FROM_QEMU,
     exception.HypervisorOperationFailed),
    (libvirt.VIR_ERR_INTERNAL_ERROR, libvirt.VIR_FROM_QEMU,
     exception.HypervisorOperationFailed),
    (None, None, exception.HypervisorOperationFailed),
])
def test_translate(code, err_domain, cls):
    if code is None:
        exc = libvirt.libvirtError('bare')
        exc.err = None
    else:
        exc = fake.error(code, 'something', domain=err_domain)
    out = host_mod.translate(exc, 'doing it', 'dom7', uri='qemu:///x',
                             mac='52:54:00:00:00:01')
    assert type(out) is cls
    assert 'dom7' in str(out)
    if cls is not exception.InterfaceNotFound:
        assert 'doing it' in str(out)
    if cls is exception.HypervisorConnectionFailed:
        assert 'qemu:///x' in str(out)


def test_device_missing_without_mac_is_generic():
    out = host_mod.translate(fake.error(libvirt.VIR_ERR_DEVICE_MISSING),
                             'op', 'd')
    assert type(out) is exception.HypervisorOperationFailed


@pytest.mark.parametrize('method,call', [
    ('XMLDesc', lambda ops: ops.attach('g1', _eth_ep())),
    ('XMLDesc', lambda ops: ops.detach('g1', BR_MAC)),
    ('XMLDesc', lambda ops: ops.set_link_state('g1', BR_MAC, False)),
    ('XMLDesc', lambda ops: ops.update_source('g1', _bridge_ep())),
    ('isActive', lambda ops: ops.detach('g1', BR_MAC)),
    ('updateDeviceFlags', lambda ops: ops.set_link_state('g1', BR_MAC,
                                                         True)),
    ('detachDeviceFlags', lambda ops: ops.detach('g1', BR_MAC)),
])
def test_no_raw_libvirt_error_escapes(conn, method, call):
    dom = _guest(conn)
    dom.fail[method] = fake.error(libvirt.VIR_ERR_INTERNAL_ERROR, 'boom')
    with pytest.raises(exception.HypervisorOperationFailed) as info:
        call(_ops(conn))
    assert 'boom' in str(info.value) and 'g1' in str(info.value)


# -- host ---------------------------------------------------------------------

def test_host_needs_uri_or_connection(conn):
    with pytest.raises(exception.InvalidField):
        host_mod.Host()
    with pytest.raises(exception.InvalidField):
        host_mod.Host(uri='qemu:///system', conn=conn)


def test_host_lookup_by_name_and_uuid(conn):
    dom = _guest(conn)
    named_like_uuid = conn.add('6f0c1a52-4a5e-4c3e-9d0e-3c2b1a0f9e8d')
    host = host_mod.Host(conn=conn)
    assert host.lookup('g1') is dom
    assert host.lookup(dom.uuid) is dom
    assert host.lookup('6f0c1a52-4a5e-4c3e-9d0e-3c2b1a0f9e8d') is \
        named_like_uuid


def test_host_events_registered_once_and_removed_on_close(conn):
    _guest(conn)
    host = host_mod.Host(conn=conn)
    ops = live.LiveOperations(host, detach_timeout=1)
    ops.detach('g1', BR_MAC)
    ops.detach('g1', DIRECT_MAC)
    events = sorted(e for e, _cb, _o in conn.callbacks.values())
    assert events == sorted([fake.REMOVED, fake.REMOVAL_FAILED])
    host.close()
    assert conn.callbacks == {}
    # a given connection is not closed by the wrapper
    assert not conn.closed


def test_waiter_only_sees_its_device(conn):
    dom = _guest(conn)
    host = host_mod.Host(conn=conn)
    with host.device_events(dom, 'net0') as waiter:
        conn.fire(fake.REMOVED, dom, 'net1')
        assert waiter.wait(0.05) is None
        conn.fire(fake.REMOVAL_FAILED, dom, 'net0')
        conn.fire(fake.REMOVED, dom, 'net0')
        assert waiter.wait(0) == host_mod.REMOVAL_FAILED
        assert waiter.wait(0) == host_mod.REMOVED
    assert host._waiters == {}


def test_host_opens_uri_after_starting_the_event_loop(monkeypatch, conn):
    order = []

    class Loop:
        running = True

        def start(self):
            order.append('loop')

    def fake_open(uri):
        order.append(('open', uri))
        return conn
    monkeypatch.setattr(libvirt, 'open', fake_open)
    monkeypatch.setattr(libvirt, 'registerErrorHandler',
                        lambda *a: order.append('quiet'))
    monkeypatch.setattr(host_mod, '_quieted', False)
    host = host_mod.Host(uri='qemu+unix:///system?socket=/x',
                         event_loop=Loop())
    assert host.conn is conn and host.conn is conn
    assert order == ['loop', 'quiet', ('open', host.uri)]
    assert conn.close_callback is not None
    # libvirt closing the connection makes the next use reopen it
    cb, opaque = conn.close_callback
    cb(conn, libvirt.VIR_CONNECT_CLOSE_REASON_EOF, opaque)
    assert host.conn is conn
    assert order.count(('open', host.uri)) == 2
    host.close()
    assert conn.closed


def test_host_open_failure_is_typed(monkeypatch):
    def fail(uri):
        raise fake.error(libvirt.VIR_ERR_SYSTEM_ERROR,
                         'Failed to connect socket', libvirt.VIR_FROM_RPC)
    monkeypatch.setattr(libvirt, 'open', fail)

    class Loop:
        def start(self):
            pass
    host = host_mod.Host(uri='qemu:///nowhere', event_loop=Loop())
    with pytest.raises(exception.HypervisorConnectionFailed) as info:
        host.lookup('g1')
    assert 'qemu:///nowhere' in str(info.value)
    assert 'Failed to connect socket' in str(info.value)


def test_event_registration_failure_is_typed(conn):
    dom = _guest(conn)

    def refuse(*args):
        raise fake.error(libvirt.VIR_ERR_INTERNAL_ERROR, 'no events here')
    conn.domainEventRegisterAny = refuse
    with pytest.raises(exception.HypervisorConnectionFailed) as info:
        _ops(conn).detach('g1', BR_MAC)
    assert 'no events here' in str(info.value)
    # the persistent definition was changed before the live wait began
    assert BR_MAC not in domain_mod.list_interfaces(dom.config_xml)


def test_event_loop_starts_stops_and_restarts():
    # The real libvirt default event loop (no connection needed): the
    # thread must end promptly on stop() even with nothing to dispatch.
    loop = host_mod.EventLoop()
    loop.start()
    assert loop.running
    fired = threading.Event()
    timer = libvirt.virEventAddTimeout(
        10, lambda timer_id, opaque: fired.set(), None)
    try:
        assert fired.wait(5), 'the loop does not dispatch'
    finally:
        libvirt.virEventRemoveTimeout(timer)
    t = time.monotonic()
    assert loop.stop(timeout=5)
    assert time.monotonic() - t < 2
    assert not loop.running
    assert loop.stop()        # idempotent
    loop.start()
    assert loop.running
    loop.start()              # one thread only
    assert loop.stop(timeout=5)


def test_event_loop_survives_errors_and_slow_stops(monkeypatch):
    """A failing iteration does not end the loop; a start() after a stop()
    that timed out runs a new thread while the old one finishes."""
    calls = []
    release = threading.Event()

    def run_once():
        calls.append(threading.current_thread())
        if len(calls) == 1:
            raise RuntimeError('a callback blew up')
        if len(calls) == 2:
            return -1
        release.wait(0.5)          # ignores the wake-up timer
        return 0
    monkeypatch.setattr(libvirt, 'virEventRunDefaultImpl', run_once)
    monkeypatch.setattr(libvirt, 'virEventAddTimeout', lambda *a: 1)
    monkeypatch.setattr(host_mod, '_registered', True)
    loop = host_mod.EventLoop()
    loop.start()
    deadline = time.monotonic() + 5
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(calls) >= 3 and loop.running
    old = loop._thread
    assert loop.stop(timeout=0.01) is False
    loop.start()
    assert loop._thread is not old and loop.running
    release.set()
    old.join(5)
    assert not old.is_alive()
    assert loop.running
    assert loop.stop(timeout=5)
    assert not loop.running


def test_event_loop_external(monkeypatch):
    monkeypatch.setattr(host_mod, '_registered', False)
    loop = host_mod.EventLoop()
    loop.use_external()
    loop.start()
    assert loop.running and loop._thread is None
    assert host_mod._registered        # nobody registers a second one


# -- adapter -----------------------------------------------------------------

def test_adapter_reads_its_options(conn):
    conf = cfg.ConfigOpts()
    conf([], default_config_files=[])
    adapter = adapter_mod.LibvirtAdapter(conf, connection=conn)
    conf.set_override('detach_timeout', 0.5, opts.LIBVIRT_GROUP)
    conf.set_override('detach_attempts', 7, opts.LIBVIRT_GROUP)
    assert adapter.live.detach_timeout == 0.5
    assert adapter.live.detach_attempts == 7


def test_adapter_defaults_without_conf(conn):
    adapter = adapter_mod.LibvirtAdapter(connection=conn)
    assert adapter.live.detach_timeout == 10.0
    assert adapter.live.detach_attempts == 3
    assert adapter._option('uri') == 'qemu:///system'


def test_adapter_opens_the_configured_uri_lazily(monkeypatch, conn):
    conf = cfg.ConfigOpts()
    conf([], default_config_files=[])
    adapter = adapter_mod.LibvirtAdapter(conf)
    conf.set_override('uri', 'test:///fake', opts.LIBVIRT_GROUP)
    assert adapter._host is None
    opened = []
    monkeypatch.setattr(libvirt, 'open',
                        lambda uri: opened.append(uri) or conn)
    monkeypatch.setattr(host_mod.EVENT_LOOP, 'start', lambda: None)
    _guest(conn)
    adapter.set_link_state('g1', BR_MAC, False)
    assert opened == ['test:///fake']
    adapter.close()
    assert conn.closed and adapter._host is None


def test_adapter_domain_xml_and_macs(conn):
    dom = _guest(conn)
    adapter = adapter_mod.LibvirtAdapter(connection=conn)
    xml = adapter.domain_xml('g1', migratable=True)
    assert adapter.interface_macs(xml) == [BR_MAC, DIRECT_MAC, HOSTDEV_MAC]
    flags = dom.calls_to('XMLDesc')[-1][1]
    assert flags & libvirt.VIR_DOMAIN_XML_MIGRATABLE
    assert flags & libvirt.VIR_DOMAIN_XML_SECURE
