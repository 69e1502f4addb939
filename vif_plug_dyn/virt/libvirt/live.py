"""Live device operations on libvirt domains: attach, detach (waiting for
libvirt's DEVICE_REMOVED event), link state and source changes.

Each operation acts on the running domain and on its persistent
definition, as far as the domain has them (:func:`device_flags`), and
finds the NIC by MAC address in each. What libvirt refuses to change on
a running NIC is refused here first, with the reason, before anything is
sent (:func:`live_refusals`).
"""

import contextlib
import dataclasses
import time
from collections.abc import Callable

import libvirt
from oslo_log import log as logging

from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import validate
from vif_plug_dyn.virt import base
from vif_plug_dyn.virt.libvirt import config
from vif_plug_dyn.virt.libvirt import domain as domain_mod
from vif_plug_dyn.virt.libvirt import host as host_mod
from vif_plug_dyn.virt.libvirt import vif

LOG = logging.getLogger(__name__)

LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE
CONFIG = libvirt.VIR_DOMAIN_AFFECT_CONFIG


@dataclasses.dataclass(frozen=True)
class DomainState:
    """What decides where a device change applies.

    :ivar active: the domain runs (or is paused): it has a live
        definition.
    :ivar persistent: the domain has a persistent definition (a
        transient domain exists only while it runs).
    """

    active: bool
    persistent: bool


def device_flags(state: DomainState, live: bool, persistent: bool,
                 operation: str, domain: str) -> int:
    """Return the ``VIR_DOMAIN_AFFECT_*`` flags of a device change.

    A running persistent domain is changed live and in its definition, a
    running transient one live only, a shut-off one in its definition
    only; ``live=False`` or ``persistent=False`` leave out that part.

    :raises HypervisorOperationFailed: nothing would be changed (for
        example a live-only change of a shut-off domain).
    """
    flags = 0
    if live and state.active:
        flags |= LIVE
    if persistent and state.persistent:
        flags |= CONFIG
    if not flags:
        asked = [name for name, wanted in (('live', live),
                                           ('persistent', persistent))
                 if wanted]
        raise exception.HypervisorOperationFailed(
            operation=operation, domain=domain,
            reason='the domain is %s and %s, so a %s change applies to '
                   'nothing' % (
                       'running' if state.active else 'shut off',
                       'persistent' if state.persistent else 'transient',
                       ' and '.join(asked) or 'no'))
    return flags


def live_refusals(old: config.InterfaceConfig,
                  new: config.InterfaceConfig) -> list[str]:
    """Return why libvirt would refuse to turn ``old`` into ``new`` on a
    running domain (empty: it would not).

    Checked against libvirt 9.0 (QEMU driver), which answers each of these
    with "Operation not supported": the interface type (other than
    keeping ``bridge`` or ``network``), a ``direct`` source device or
    mode, a ``hostdev`` source, the virtual port, the MTU, the tap name
    and the queue count.
    """
    reasons = []
    if old.type != new.type:
        reasons.append('the interface type (%s to %s)' % (old.type,
                                                           new.type))
    elif new.type == 'direct':
        if (old.source_dev, old.source_mode) != (new.source_dev,
                                                 new.source_mode):
            reasons.append('a direct (macvtap) source device or mode '
                           '(%s/%s to %s/%s): QEMU holds the macvtap' % (
                               old.source_dev, old.source_mode,
                               new.source_dev, new.source_mode))
    elif new.type == 'hostdev':
        if old.source_address != new.source_address:
            reasons.append('the PCI device of a hostdev interface')
    if _vport_key(old.virtualport) != _vport_key(new.virtualport):
        reasons.append('the virtual port (%s to %s)' % (
            _vport_text(old.virtualport), _vport_text(new.virtualport)))
    if new.mtu is not None and old.mtu != new.mtu:
        reasons.append('the MTU (%s to %s)' % (old.mtu, new.mtu))
    if new.target_dev is not None and old.target_dev is not None and \
            old.target_dev != new.target_dev:
        reasons.append('the tap name (%s to %s)' % (old.target_dev,
                                                    new.target_dev))
    if new.driver_queues is not None and \
            old.driver_queues != new.driver_queues:
        reasons.append('the queue count (%s to %s)' % (old.driver_queues,
                                                       new.driver_queues))
    return reasons


def _vport_key(vport: config.VirtualPortConfig | None) -> tuple[object, ...]:
    if vport is None:
        return (None,)
    return (vport.type, vport.interface_id, vport.profile_id,
            vport.manager_id, vport.type_id, vport.type_id_version,
            vport.instance_id)


def _vport_text(vport: config.VirtualPortConfig | None) -> str:
    if vport is None:
        return 'none'
    return '%s %s' % (vport.type, vport.interface_id or vport.profile_id
                      or '')


class LiveOperations:
    """The live operations of the libvirt adapter, on one connection.

    :param host: the connection.
    :param converter: turns endpoints into interfaces.
    :param detach_timeout: seconds to wait for DEVICE_REMOVED after each
        detach request.
    :param detach_attempts: how many detach requests to send.
    :param clock: a monotonic clock (tests use a fake one).
    """

    def __init__(self, host: host_mod.Host,
                 converter: vif.EndpointToInterface | None = None,
                 detach_timeout: float = 10.0, detach_attempts: int = 3,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if detach_attempts < 1:
            raise exception.InvalidField(field='detach_attempts',
                                         value=detach_attempts,
                                         reason='must be at least 1')
        if detach_timeout <= 0:
            raise exception.InvalidField(field='detach_timeout',
                                         value=detach_timeout,
                                         reason='must be positive')
        self.host = host
        self.converter = converter or vif.EndpointToInterface()
        self.detach_timeout = detach_timeout
        self.detach_attempts = detach_attempts
        self.clock = clock

    # -- helpers ------------------------------------------------------------

    def _errors(self, operation: str, domain: str,
                mac: str | None = None
                ) -> contextlib.AbstractContextManager[None]:
        return host_mod.translate_errors(operation, domain,
                                         uri=self.host.uri, mac=mac)

    def _state(self, dom: libvirt.virDomain, operation: str,
               domain: str) -> DomainState:
        with self._errors(operation, domain):
            return DomainState(active=bool(dom.isActive()),
                               persistent=bool(dom.isPersistent()))

    def _xml(self, dom: libvirt.virDomain, flag: int, operation: str,
             domain: str) -> str:
        """The live (``LIVE``) or persistent (``CONFIG``) definition."""
        xml_flags = libvirt.VIR_DOMAIN_XML_INACTIVE if flag == CONFIG else 0
        with self._errors(operation, domain):
            return dom.XMLDesc(xml_flags)

    @staticmethod
    def _has(xml: str, mac: str) -> bool:
        return mac in domain_mod.list_interfaces(xml)

    # -- attach ---------------------------------------------------------------

    def attach(self, domain: str, endpoint: endpoints.Endpoint,
               live: bool = True, persistent: bool = True,
               options: base.NicOptions | None = None) -> int:
        """Add a NIC using ``endpoint``; returns the flags used.

        :raises InterfaceExists: the domain already has that MAC where the
            NIC would be added.
        :raises DomainNotFound: no such domain.
        :raises HypervisorOperationFailed: libvirt refused.
        """
        operation = 'attaching interface %s' % endpoint.mac
        iface_xml = self.converter.build(endpoint, options).to_xml()
        dom = self.host.lookup(domain, operation)
        flags = device_flags(self._state(dom, operation, domain), live,
                             persistent, operation, domain)
        for flag in (LIVE, CONFIG):
            if flags & flag and self._has(
                    self._xml(dom, flag, operation, domain), endpoint.mac):
                raise exception.InterfaceExists(domain=domain,
                                                mac=endpoint.mac)
        with self._errors(operation, domain, endpoint.mac):
            dom.attachDeviceFlags(iface_xml, flags)
        LOG.info('Attached interface %(mac)s (%(type)s) to domain '
                 '%(domain)s (%(where)s)',
                 {'mac': endpoint.mac, 'type': endpoint.type,
                  'domain': domain, 'where': _where(flags)})
        return flags

    # -- detach ---------------------------------------------------------------

    def detach(self, domain: str, mac: str, live: bool = True,
               persistent: bool = True) -> int:
        """Remove the NIC with ``mac``; returns the flags used.

        The persistent definition is changed first (at once); then the
        running guest is asked to release the device, and this waits for
        libvirt's DEVICE_REMOVED event for its alias, sending the request
        again after each ``detach_timeout`` without it, up to
        ``detach_attempts`` times.

        :raises InterfaceNotFound: no NIC has that MAC where it would be
            removed.
        :raises HypervisorOperationFailed: libvirt refused, or the guest
            did not release the device in time (it may still release it
            later; libvirt then removes it from the live definition).
        """
        mac = validate.mac(mac)
        operation = 'detaching interface %s' % mac
        dom = self.host.lookup(domain, operation)
        flags = device_flags(self._state(dom, operation, domain), live,
                             persistent, operation, domain)
        live_iface = config_xml = None
        if flags & LIVE:
            live_xml = self._xml(dom, LIVE, operation, domain)
            if self._has(live_xml, mac):
                live_iface = domain_mod.get_interface(live_xml, mac)
        if flags & CONFIG:
            inactive = self._xml(dom, CONFIG, operation, domain)
            if self._has(inactive, mac):
                config_xml = domain_mod.interface_device_xml(inactive, mac)
        if live_iface is None and config_xml is None:
            raise exception.InterfaceNotFound(domain=domain, mac=mac)
        done = 0
        if config_xml is not None:
            # NOTE(vpd): the definition first: it changes at once, and if
            # the guest then never releases the device, the NIC is at
            # least gone at the next boot, as the caller asked.
            with self._errors(operation + ' (persistent definition)',
                              domain, mac):
                dom.detachDeviceFlags(config_xml, CONFIG)
            done |= CONFIG
        if live_iface is not None:
            self._detach_live(dom, domain, mac, live_iface, operation,
                              config_done=bool(done))
            done |= LIVE
        LOG.info('Detached interface %(mac)s from domain %(domain)s '
                 '(%(where)s)', {'mac': mac, 'domain': domain,
                                 'where': _where(done)})
        return done

    def _still_there(self, dom: libvirt.virDomain, domain: str, mac: str,
                     operation: str) -> bool:
        """Whether the running domain still has the NIC."""
        try:
            if not dom.isActive():
                return False
            xml = dom.XMLDesc(0)
        except libvirt.libvirtError as exc:
            # NOTE(vpd): a transient domain that stopped meanwhile is
            # gone, and its devices with it.
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return False
            raise host_mod.translate(exc, operation, domain,
                                     uri=self.host.uri, mac=mac) from exc
        return self._has(xml, mac)

    def _send_detach(self, dom: libvirt.virDomain,
                     iface: config.InterfaceConfig) -> None:
        if iface.alias:
            # NOTE(vpd): detachDeviceAlias only asks: it returns at once
            # and the removal is reported by DEVICE_REMOVED. Asking again
            # while the guest has not answered is allowed (QEMU repeats
            # the hot-unplug request). detachDeviceFlags would instead
            # block for libvirt's own 5 s wait on every attempt.
            dom.detachDeviceAlias(iface.alias, LIVE)
        else:
            dom.detachDeviceFlags(iface.to_xml(), LIVE)

    def _detach_live(self, dom: libvirt.virDomain, domain: str, mac: str,
                     iface: config.InterfaceConfig, operation: str,
                     config_done: bool) -> None:
        alias = iface.alias or mac
        refused = 0
        started = self.clock()
        with self.host.device_events(dom, alias) as waiter:
            for attempt in range(1, self.detach_attempts + 1):
                try:
                    self._send_detach(dom, iface)
                except libvirt.libvirtError as exc:
                    if not self._still_there(dom, domain, mac, operation):
                        return
                    raise host_mod.translate(
                        exc, operation, domain, uri=self.host.uri,
                        mac=mac) from exc
                deadline = self.clock() + self.detach_timeout
                while True:
                    outcome = waiter.wait(max(0.0, deadline - self.clock()))
                    if outcome is None:
                        break
                    if outcome == host_mod.REMOVAL_FAILED:
                        refused += 1
                        LOG.warning('Domain %(domain)s refused to release '
                                    'interface %(mac)s (device %(alias)s), '
                                    'attempt %(n)d of %(of)d',
                                    {'domain': domain, 'mac': mac,
                                     'alias': alias, 'n': attempt,
                                     'of': self.detach_attempts})
                        break
                    # NOTE(vpd): libvirt reuses aliases; the event may be
                    # that of an earlier device with the same one. The
                    # MAC in the live definition is the truth.
                    if not self._still_there(dom, domain, mac, operation):
                        LOG.debug('Interface %s of %s removed after %.2fs',
                                  mac, domain, self.clock() - started)
                        return
                if not self._still_there(dom, domain, mac, operation):
                    # NOTE(vpd): removed, but the event was lost (no
                    # event loop, or the connection was reopened).
                    return
                LOG.warning('Domain %(domain)s has not released interface '
                            '%(mac)s (device %(alias)s) %(t).1fs after '
                            'detach request %(n)d of %(of)d',
                            {'domain': domain, 'mac': mac, 'alias': alias,
                             't': self.detach_timeout, 'n': attempt,
                             'of': self.detach_attempts})
        why = ('the guest refused the unplug %d time(s)' % refused
               if refused else
               'the guest did not release it (paused, still booting, or '
               'not handling PCI hot-unplug)')
        raise exception.HypervisorOperationFailed(
            operation=operation, domain=domain,
            reason='device %s is still there after %d request(s), %.1fs '
                   'apart: %s; it may still go when the guest answers%s' % (
                       alias, self.detach_attempts, self.detach_timeout,
                       why,
                       '; the persistent definition no longer has it'
                       if config_done else ''))

    # -- link state -----------------------------------------------------------

    def set_link_state(self, domain: str, mac: str, up: bool) -> int:
        """Set the guest-visible link of the NIC with ``mac``, live and in
        the persistent definition, changing the existing ``<link>``
        element (never adding a second); returns the flags used.

        :raises InterfaceNotFound: the domain has no NIC with that MAC.
        :raises LiveUpdateRefused: the NIC is a hostdev.
        """
        mac = validate.mac(mac)
        operation = 'setting the link of interface %s %s' % (
            mac, 'up' if up else 'down')
        dom = self.host.lookup(domain, operation)
        state = self._state(dom, operation, domain)
        changes = []
        for flag, wanted in ((LIVE, state.active),
                             (CONFIG, state.persistent)):
            if not wanted:
                continue
            xml = self._xml(dom, flag, operation, domain)
            if self._has(xml, mac):
                changes.append((flag, domain_mod.link_state_device_xml(
                    xml, mac, up)))
        if not changes:
            raise exception.InterfaceNotFound(domain=domain, mac=mac)
        done = 0
        for flag, device_xml in changes:
            with self._errors(operation, domain, mac):
                dom.updateDeviceFlags(device_xml, flag)
            done |= flag
        LOG.info('Link of interface %(mac)s of domain %(domain)s set '
                 '%(state)s (%(where)s)',
                 {'mac': mac, 'domain': domain,
                  'state': 'up' if up else 'down', 'where': _where(done)})
        return done

    # -- source ---------------------------------------------------------------

    def update_source(self, domain: str,
                      endpoint: endpoints.Endpoint) -> int:
        """Move the NIC with ``endpoint.mac`` to ``endpoint``'s host side
        without removing it from the guest; returns the flags used.

        On a running domain only what libvirt changes live is accepted (a
        ``bridge`` or ``network`` source; see :func:`live_refusals`); the
        persistent definition of a shut-off domain takes any endpoint.

        :raises InterfaceNotFound: the domain has no NIC with that MAC.
        :raises LiveUpdateRefused: libvirt cannot make the change live;
            nothing was changed.
        """
        mac = endpoint.mac
        operation = 'changing the source of interface %s' % mac
        dom = self.host.lookup(domain, operation)
        state = self._state(dom, operation, domain)
        live_device = config_device = None
        if state.active:
            live_xml = self._xml(dom, LIVE, operation, domain)
            if self._has(live_xml, mac):
                old = domain_mod.get_interface(live_xml, mac)
                new = self.converter.apply(old, endpoint)
                reasons = live_refusals(old, new)
                if reasons:
                    raise exception.LiveUpdateRefused(
                        operation=operation, domain=domain,
                        reason='libvirt cannot change %s of a running '
                               'NIC; detach and attach it instead' %
                               '; '.join(reasons))
                live_device = domain_mod.source_update_device_xml(
                    live_xml, endpoint)
        if state.persistent:
            inactive = self._xml(dom, CONFIG, operation, domain)
            if self._has(inactive, mac):
                config_device = self.converter.apply(
                    domain_mod.get_interface(inactive, mac),
                    endpoint).to_xml()
        if live_device is None and config_device is None:
            raise exception.InterfaceNotFound(domain=domain, mac=mac)
        done = 0
        if live_device is not None:
            with self._errors(operation, domain, mac):
                dom.updateDeviceFlags(live_device, LIVE)
            done |= LIVE
        if config_device is not None:
            step = operation + (' (persistent definition; the running '
                                'guest already uses the new source)'
                                if done else '')
            with self._errors(step, domain, mac):
                dom.updateDeviceFlags(config_device, CONFIG)
            done |= CONFIG
        LOG.info('Interface %(mac)s of domain %(domain)s now uses '
                 '%(type)s endpoint on %(network)s (%(where)s)',
                 {'mac': mac, 'domain': domain, 'type': endpoint.type,
                  'network': endpoint.network, 'where': _where(done)})
        return done


def _where(flags: int) -> str:
    parts = [name for flag, name in ((LIVE, 'live'),
                                     (CONFIG, 'persistent'))
             if flags & flag]
    return ' and '.join(parts) or 'nothing'
