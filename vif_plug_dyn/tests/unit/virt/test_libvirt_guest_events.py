"""Guest lifecycle events and the link state's "live or stored" answer of
the libvirt adapter, against the fake connection (the real daemon is
exercised by ``tests/functional/test_cli_guest.py``)."""

import libvirt

from vif_plug_dyn.tests.unit.virt import fake_libvirt as fake
from vif_plug_dyn.virt.libvirt import adapter as adapter_mod
from vif_plug_dyn.virt.libvirt import host as host_mod

MAC = '52:54:00:ab:00:01'
ADDED = libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED


def _adapter(conn):
    return adapter_mod.LibvirtAdapter(connection=host_mod.Host(conn=conn))


def test_started_resumed_and_device_added_reach_the_callback():
    conn = fake.FakeConnection()
    dom = conn.add('g1', [fake.interface_xml(MAC)])
    adapter = _adapter(conn)
    seen = []
    assert not adapter.watching_guests()
    adapter.watch_guests(lambda uuid, name: seen.append((uuid, name)))
    conn.fire_lifecycle(dom, libvirt.VIR_DOMAIN_EVENT_STARTED)
    conn.fire_lifecycle(dom, libvirt.VIR_DOMAIN_EVENT_SUSPENDED)
    conn.fire_lifecycle(dom, libvirt.VIR_DOMAIN_EVENT_STOPPED)
    conn.fire_lifecycle(dom, libvirt.VIR_DOMAIN_EVENT_RESUMED)
    conn.fire(ADDED, dom, 'net1')
    assert seen == [(dom.uuid, 'g1')] * 3
    # Registered once per connection, however often asked.
    adapter.watch_guests(lambda uuid, name: seen.append(('again', name)))
    registered = [event for event, _cb, _o in conn.callbacks.values()]
    assert registered.count(libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE) == 1
    conn.fire_lifecycle(dom, libvirt.VIR_DOMAIN_EVENT_STARTED)
    assert seen[-1] == ('again', 'g1')


def test_a_failing_callback_does_not_break_the_event_thread():
    conn = fake.FakeConnection()
    dom = conn.add('g1', [fake.interface_xml(MAC)])
    adapter = _adapter(conn)

    def boom(uuid, name):
        raise RuntimeError('bug in the callback')

    adapter.watch_guests(boom)
    conn.fire_lifecycle(dom, libvirt.VIR_DOMAIN_EVENT_STARTED)


def test_watching_ends_when_the_connection_closes():
    conn = fake.FakeConnection()
    host = host_mod.Host(conn=conn)
    adapter = adapter_mod.LibvirtAdapter(connection=host)
    host_mod.EVENT_LOOP.start()
    try:
        adapter.watch_guests(lambda uuid, name: None)
        assert adapter.watching_guests()
        # libvirt's close callback: the daemon went away.
        host._closed(conn, 0, None)
        assert not adapter.watching_guests()
        adapter.watch_guests(lambda uuid, name: None)
        assert adapter.watching_guests()
        conn.closed = True
        assert not adapter.watching_guests()
    finally:
        host_mod.EVENT_LOOP.stop()


def test_link_state_says_whether_the_running_guest_got_it():
    conn = fake.FakeConnection()
    running = conn.add('up', [fake.interface_xml(MAC)])
    stopped = conn.add('off', [fake.interface_xml(MAC)], active=False)
    adapter = _adapter(conn)
    assert adapter.set_link_state(running.uuid, MAC, False) is True
    # A shut-off guest: only its stored definition changes; the guest
    # gets it when it starts, which is not now.
    assert adapter.set_link_state(stopped.uuid, MAC, False) is False
    assert stopped.links(libvirt.VIR_DOMAIN_XML_INACTIVE) == {MAC: ['down']}
