"""The hypervisor adapter interface.

Drivers hand back typed endpoints (:mod:`vif_plug_dyn.endpoints`); an
adapter is the only place that knows how its hypervisor spells them. The
interface is deliberately phrased in endpoints, MAC addresses and domain
identifiers so that a second hypervisor needs a new adapter only.
"""

import abc
import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

from oslo_config import cfg

from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import validate

#: Entry-point namespace hypervisor adapters are registered in.
NAMESPACE = 'vif_plug_dyn.hypervisors'

#: Guest NIC models an adapter may be asked for. ``virtio`` is the only one
#: the guests we test see; the others exist for older guests.
NIC_MODELS = ('virtio', 'virtio-transitional', 'virtio-non-transitional',
              'e1000', 'e1000e', 'rtl8139', 'igb')


@dataclasses.dataclass(frozen=True, kw_only=True)
class NicOptions:
    """Guest-side options of a NIC: what the guest sees, not how the host
    side is wired (that is the endpoint's business).

    :ivar model: the emulated NIC model; ``None`` means the adapter's
        default (``virtio``) for tap-based endpoints. ``hostdev`` endpoints
        have no emulated model and refuse one.
    :ivar link_up: the guest-visible link state; ``None`` leaves it to the
        hypervisor's default (up).
    :ivar guest_address: the guest PCI address ``dddd:bb:ss.f``, so a NIC
        keeps its slot across detach/attach and migration.
    :ivar alias: a user alias naming the device (libvirt wants ``ua-...``).
    """

    model: str | None = None
    link_up: bool | None = None
    guest_address: str | None = None
    alias: str | None = None

    def __post_init__(self) -> None:
        if self.model is not None:
            validate.one_of(self.model, 'model', NIC_MODELS)
        if self.link_up is not None and not isinstance(self.link_up, bool):
            raise exception.InvalidField(field='link_up',
                                         value=self.link_up,
                                         reason='must be a boolean')
        if self.guest_address is not None:
            object.__setattr__(self, 'guest_address', validate.pci_address(
                self.guest_address, 'guest_address'))
        if self.alias is not None:
            validate.safe_text(self.alias, 'alias', max_len=64)
            # NOTE(vpd): libvirt keeps a user-chosen alias only when it
            # starts with "ua-" and uses the characters below; anything
            # else it silently replaces with its own (net0, ...), and the
            # NIC could no longer be found by alias.
            body = self.alias[3:]
            if not self.alias.startswith('ua-') or not body or not all(
                    c.isascii() and (c.isalnum() or c in '-_')
                    for c in body):
                raise exception.InvalidField(
                    field='alias', value=self.alias,
                    reason='must be "ua-" followed by letters, digits, '
                           '"-" or "_"')

    @classmethod
    def from_kwargs(cls, options: dict[str, Any]) -> 'NicOptions':
        """Build options from keyword arguments, naming unknown ones.

        :raises InvalidField: an unknown option or a bad value.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        for name in options:
            if name not in known:
                raise exception.InvalidField(
                    field=name, value=options[name],
                    reason='not a NIC option (known: %s)' % ', '.join(
                        sorted(known)))
        return cls(**options)


class HypervisorAdapter(abc.ABC):
    """Turns endpoints into a hypervisor's NIC configuration and changes.

    ``domain`` arguments name a guest the way the hypervisor does (for
    libvirt: a domain name or UUID). NICs are always identified by MAC
    address: it is the one identity that survives detach/attach and
    migration.

    :param conf: the configuration (adapters read their own option group).
    """

    #: The adapter's entry point name.
    NAME: ClassVar[str] = ''

    def __init__(self, conf: cfg.ConfigOpts | None = None) -> None:
        self.conf = conf

    @abc.abstractmethod
    def accepted_types(self) -> tuple[str, ...]:
        """Return the endpoint types this hypervisor consumes, preferred
        first: the list to put in an endpoint request."""

    @abc.abstractmethod
    def interface_config(self, endpoint: endpoints.Endpoint,
                         **nic_options: Any) -> str:
        """Return the hypervisor's configuration of one guest NIC.

        :param endpoint: the endpoint the NIC uses.
        :param nic_options: :class:`NicOptions` fields.
        :returns: the serialised configuration (libvirt: an ``<interface>``
            element).
        :raises InvalidField: an unknown option, or one the endpoint type
            cannot take.
        :raises UnsupportedEndpointType: the hypervisor cannot consume the
            endpoint's type.
        """

    @abc.abstractmethod
    def attach(self, domain: str, endpoint: endpoints.Endpoint, *,
               live: bool = True, persistent: bool = True,
               **nic_options: Any) -> None:
        """Add a NIC using ``endpoint`` to a guest.

        :raises InterfaceExists: the guest already has a NIC with that MAC.
        :raises HypervisorOperationFailed: the hypervisor refused.
        """

    @abc.abstractmethod
    def detach(self, domain: str, mac: str, *, live: bool = True,
               persistent: bool = True) -> None:
        """Remove the NIC with ``mac`` from a guest.

        :raises InterfaceNotFound: no NIC has that MAC.
        :raises HypervisorOperationFailed: the hypervisor refused or the
            guest did not release the device in time.
        """

    @abc.abstractmethod
    def set_link_state(self, domain: str, mac: str, up: bool
                       ) -> bool | None:
        """Set the guest-visible link state of a NIC.

        :returns: ``True`` when the running guest got it, ``False`` when
            only the guest's stored definition changed (it is not running,
            or its running NIC does not exist yet); ``None``: the adapter
            cannot tell (taken as ``True``).
        :raises DomainNotFound: the hypervisor has no such guest.
        :raises InterfaceNotFound: no NIC has that MAC.
        :raises LiveUpdateRefused: the NIC's type has no link state.
        :raises HypervisorConnectionFailed: the hypervisor cannot be
            reached.
        """

    @abc.abstractmethod
    def update_source(self, domain: str,
                      endpoint: endpoints.Endpoint) -> None:
        """Point the NIC with ``endpoint.mac`` at another host side without
        removing it from the guest.

        :raises InterfaceNotFound: no NIC has that MAC.
        :raises LiveUpdateRefused: the hypervisor cannot make that change
            to a running guest (for libvirt: ``direct`` and ``hostdev``
            sources; reconnect those with detach + attach).
        """

    def reattach(self, domain: str, endpoint: endpoints.Endpoint) -> None:
        """Replace a NIC's host side by detaching it and attaching it again
        with the same MAC, guest address, alias and model.

        Guest-visible (the guest sees its NIC unplugged and plugged): the
        way to move endpoints whose host side a running guest cannot
        change, such as a genuine macvtap.

        :raises InterfaceNotFound: no NIC has ``endpoint.mac``.
        :raises OperationNotSupported: this adapter cannot do it.
        """
        raise exception.OperationNotSupported(
            operation='reattach', by=type(self).__name__,
            reason='not implemented by this adapter')

    def interface_macs(self, domain_xml: str) -> list[str]:
        """Return the MAC of every NIC of a guest definition, in order.

        :raises OperationNotSupported: the adapter cannot read its
            hypervisor's definitions (the default).
        """
        raise exception.OperationNotSupported(
            operation='listing the NICs of a definition', by=self.NAME or
            type(self).__name__, reason='not implemented by this adapter')

    def watch_guests(self, callback: Callable[[str, str], None]) -> None:
        """Call ``callback(uuid, name)`` whenever a guest starts, resumes
        or gains a device, from a thread of the adapter's.

        The callback must return quickly (queue the work): it runs in the
        hypervisor's event thread. Calling again replaces the callback.
        Events stop when the connection breaks: :meth:`watching_guests`
        then says ``False`` and this must be called again.

        :raises HypervisorConnectionFailed: the hypervisor cannot be
            reached.
        :raises OperationNotSupported: the adapter has no such events (the
            default).
        """
        raise exception.OperationNotSupported(
            operation='watching guests', by=self.NAME or type(self).__name__,
            reason='not implemented by this adapter')

    def watching_guests(self) -> bool:
        """Whether the callback of :meth:`watch_guests` still receives
        events (``False`` by default)."""
        return False

    def close(self) -> None:  # noqa: B027 - optional, a no-op by default
        """Release what the adapter holds (a hypervisor connection)."""

    @abc.abstractmethod
    def migration_xml(self, domain_xml: str,
                      dest_endpoints: dict[str, endpoints.Endpoint]) -> str:
        """Rewrite a guest definition for a destination host.

        :param domain_xml: the guest's current definition.
        :param dest_endpoints: the destination endpoint of every NIC, by
            MAC.
        :returns: the definition to use on the destination: every NIC uses
            its destination endpoint and keeps what the guest sees (model,
            guest address, alias, link state, MAC).
        :raises MigrationEndpointMissing: a NIC has no destination endpoint.
        :raises InterfaceNotFound: an endpoint names a MAC the guest lacks.
        """
