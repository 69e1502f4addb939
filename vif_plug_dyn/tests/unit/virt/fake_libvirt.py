"""A fake libvirt connection and domain for the live-operation unit tests.

Only what the adapter calls is there. Device changes edit the domain's
live and persistent XML with the library's own domain helpers, and a
detach reports its outcome through the registered event callbacks the way
libvirt does: synchronously inside the call, later from another thread,
never, as a refusal, or silently (the event lost).
"""

import itertools
import threading
import uuid
import xml.etree.ElementTree as ET

import libvirt

from vif_plug_dyn.virt.libvirt import config
from vif_plug_dyn.virt.libvirt import domain as domain_mod

REMOVED = libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED
REMOVAL_FAILED = libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED


def error(code, message='fake libvirt error',
          domain=libvirt.VIR_FROM_QEMU):
    """A libvirtError carrying ``code`` like a real one."""
    exc = libvirt.libvirtError(message)
    exc.err = (code, domain, message, libvirt.VIR_ERR_ERROR, None, None,
               None, 0, 0)
    return exc


def interface_xml(mac, bridge='br-a', tap=None, kind='bridge', link=None,
                  mtu=None, extra=''):
    parts = ["<interface type='%s'>" % kind, "<mac address='%s'/>" % mac]
    if kind == 'bridge':
        parts.append("<source bridge='%s'/>" % bridge)
        parts.append("<target dev='%s'/>" % (tap or 'vpd' + mac[-5:]
                                             .replace(':', '')))
    elif kind == 'direct':
        parts.append("<source dev='eth9' mode='bridge'/>")
    elif kind == 'ethernet':
        parts.append("<target dev='%s' managed='no'/>" % tap)
    elif kind == 'hostdev':
        parts.append("<source><address type='pci' domain='0x0000' "
                     "bus='0x03' slot='0x10' function='0x2'/></source>")
    if kind != 'hostdev':
        parts.append("<model type='virtio'/>")
    if link:
        parts.append("<link state='%s'/>" % link)
    if mtu:
        parts.append("<mtu size='%d'/>" % mtu)
    parts.append(extra)
    parts.append('</interface>')
    return ''.join(parts)


def domain_xml(name, interfaces=(), dom_uuid=None):
    ifaces = ''.join(interfaces)
    return ("<domain type='qemu'><name>%s</name><uuid>%s</uuid>"
            "<memory unit='KiB'>131072</memory><os><type>hvm</type></os>"
            "<devices>%s</devices></domain>" % (
                name, dom_uuid or uuid.uuid4(), ifaces))


class FakeDomain:
    """A domain with a live and a persistent definition.

    :param ack: how a live detach is answered: ``sync`` (DEVICE_REMOVED
        inside the call), ``later`` (from a timer thread after
        ``ack_delay``), ``never``, ``refuse`` (DEVICE_REMOVAL_FAILED each
        time), ``refuse-once`` (refused, then removed on the next
        request), ``lost`` (removed without an event), ``stale`` (an
        event for the alias first while the device stays, then removed
        ``ack_delay`` later).
    """

    def __init__(self, conn, name, interfaces=(), active=True,
                 persistent=True, ack='sync', ack_delay=0.05):
        self.conn = conn
        self._name = name
        self.uuid = str(uuid.uuid4())
        xml = domain_xml(name, interfaces, self.uuid)
        self.config_xml = xml if persistent else None
        self.live_xml = None
        self.active = active
        self.persistent = persistent
        if active:
            self.live_xml = xml
            for mac in domain_mod.list_interfaces(xml):
                self.live_xml = self._with_alias(self.live_xml, mac)
        self.ack = ack
        self.ack_delay = ack_delay
        self.calls = []
        self.fail = {}          # method name -> libvirtError (raised once)
        self.requests = 0
        self.timers = []
        self._lock = threading.Lock()

    # -- helpers -----------------------------------------------------------
    def _with_alias(self, xml, mac):
        used = {i.alias for i in domain_mod.list_interfaces(xml).values()}
        iface = domain_mod.get_interface(xml, mac)
        if iface.alias is None:
            iface.alias = next('net%d' % n for n in itertools.count()
                               if 'net%d' % n not in used)
            xml = domain_mod.replace_interface(xml, iface)
        return xml

    def _maybe_fail(self, method):
        exc = self.fail.pop(method, None)
        if exc is not None:
            raise exc

    def _alias_mac(self, alias):
        for mac, iface in domain_mod.list_interfaces(self.live_xml).items():
            if iface.alias == alias:
                return mac
        raise error(libvirt.VIR_ERR_INTERNAL_ERROR,
                    'no device found with alias %s' % alias)

    def remove_live(self, mac, event=True):
        with self._lock:
            iface = domain_mod.get_interface(self.live_xml, mac)
            self.live_xml = domain_mod.remove_interface(self.live_xml, mac)
        if event:
            self.conn.fire(REMOVED, self, iface.alias)

    # -- the libvirt API ---------------------------------------------------
    def name(self):
        return self._name

    def UUIDString(self):
        return self.uuid

    def isActive(self):
        self._maybe_fail('isActive')
        return 1 if self.active else 0

    def isPersistent(self):
        return 1 if self.persistent else 0

    def XMLDesc(self, flags=0):
        self.calls.append(('XMLDesc', flags))
        self._maybe_fail('XMLDesc')
        if flags & libvirt.VIR_DOMAIN_XML_INACTIVE or not self.active:
            return self.config_xml
        return self.live_xml

    def attachDeviceFlags(self, xml, flags):
        self.calls.append(('attachDeviceFlags', xml, flags))
        self._maybe_fail('attachDeviceFlags')
        iface = config.InterfaceConfig.parse_str(xml)
        if flags & libvirt.VIR_DOMAIN_AFFECT_CONFIG:
            self.config_xml = domain_mod.add_interface(self.config_xml,
                                                       iface)
        if flags & libvirt.VIR_DOMAIN_AFFECT_LIVE:
            self.live_xml = self._with_alias(
                domain_mod.add_interface(self.live_xml, iface), iface.mac)
        return 0

    def detachDeviceFlags(self, xml, flags):
        self.calls.append(('detachDeviceFlags', xml, flags))
        self._maybe_fail('detachDeviceFlags')
        mac = config.InterfaceConfig.parse_str(xml).mac
        if flags & libvirt.VIR_DOMAIN_AFFECT_CONFIG:
            self.config_xml = domain_mod.remove_interface(self.config_xml,
                                                          mac)
        if flags & libvirt.VIR_DOMAIN_AFFECT_LIVE:
            alias = domain_mod.get_interface(self.live_xml, mac).alias
            self._unplug(alias)
        return 0

    def detachDeviceAlias(self, alias, flags):
        self.calls.append(('detachDeviceAlias', alias, flags))
        self._maybe_fail('detachDeviceAlias')
        assert flags == libvirt.VIR_DOMAIN_AFFECT_LIVE
        self._unplug(alias)
        return 0

    def _unplug(self, alias):
        mac = self._alias_mac(alias)
        self.requests += 1
        if self.ack == 'sync':
            self.remove_live(mac)
        elif self.ack == 'later':
            self._timer(self.ack_delay, self.remove_live, mac)
        elif self.ack == 'refuse' or (self.ack == 'refuse-once' and
                                      self.requests == 1):
            self.conn.fire(REMOVAL_FAILED, self, alias)
        elif self.ack == 'refuse-once':
            self.remove_live(mac)
        elif self.ack == 'lost':
            self.remove_live(mac, event=False)
        elif self.ack == 'stale':
            self.conn.fire(REMOVED, self, alias)
            self._timer(self.ack_delay, self.remove_live, mac)
        elif self.ack == 'stop':
            # the guest is shut down while the detach is pending
            self.active = False
            self.live_xml = None
        else:
            assert self.ack == 'never', self.ack

    def _timer(self, delay, fn, *args):
        timer = threading.Timer(delay, fn, args)
        timer.daemon = True
        self.timers.append(timer)
        timer.start()

    def updateDeviceFlags(self, xml, flags):
        self.calls.append(('updateDeviceFlags', xml, flags))
        self._maybe_fail('updateDeviceFlags')
        iface = config.InterfaceConfig.parse_str(xml)
        if flags & libvirt.VIR_DOMAIN_AFFECT_CONFIG:
            self.config_xml = domain_mod.replace_interface(self.config_xml,
                                                           iface)
        if flags & libvirt.VIR_DOMAIN_AFFECT_LIVE:
            self.live_xml = domain_mod.replace_interface(self.live_xml,
                                                         iface)
        return 0

    # -- for assertions ----------------------------------------------------
    def calls_to(self, method):
        return [c for c in self.calls if c[0] == method]

    def links(self, flags=0):
        """The <link> elements of every interface, by MAC."""
        root = ET.fromstring(self.XMLDesc(flags))
        return {i.find('mac').get('address'): [
            link.get('state') for link in i.findall('link')]
            for i in root.iter('interface')}


class FakeConnection:
    """A connection holding :class:`FakeDomain` objects."""

    def __init__(self):
        self.domains = []
        self.callbacks = {}
        self._ids = itertools.count(1)
        self.closed = False
        self.close_callback = None

    def add(self, name, interfaces=(), **kwargs):
        dom = FakeDomain(self, name, interfaces, **kwargs)
        self.domains.append(dom)
        return dom

    def lookupByName(self, name):
        for dom in self.domains:
            if dom.name() == name:
                return dom
        raise error(libvirt.VIR_ERR_NO_DOMAIN,
                    "Domain not found: no domain with matching name '%s'"
                    % name)

    def lookupByUUIDString(self, value):
        for dom in self.domains:
            if dom.uuid == value:
                return dom
        raise error(libvirt.VIR_ERR_NO_DOMAIN,
                    "Domain not found: no domain with matching uuid '%s'"
                    % value)

    def domainEventRegisterAny(self, dom, event_id, cb, opaque):
        callback_id = next(self._ids)
        self.callbacks[callback_id] = (event_id, cb, opaque)
        return callback_id

    def domainEventDeregisterAny(self, callback_id):
        del self.callbacks[callback_id]

    def registerCloseCallback(self, cb, opaque):
        self.close_callback = (cb, opaque)
        return 0

    def unregisterCloseCallback(self):
        self.close_callback = None
        return 0

    def close(self):
        self.closed = True
        return 0

    def isAlive(self):
        return 0 if self.closed else 1

    def fire_lifecycle(self, dom, event, detail=0):
        for registered, cb, opaque in list(self.callbacks.values()):
            if registered == libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE:
                cb(self, dom, event, detail, opaque)

    def fire(self, event_id, dom, alias):
        for registered, cb, opaque in list(self.callbacks.values()):
            if registered == event_id:
                cb(self, dom, alias, opaque)
