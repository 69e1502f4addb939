"""The one exception family of vif_plug_dyn.

Every error the library raises on purpose derives from
:class:`VifPlugDynException`. Each class carries a ``msg_fmt`` that names
the field, device, network or file at fault, so that the message alone tells
an operator what to fix.
"""

from typing import Any, cast


class VifPlugDynException(Exception):
    """Base class of every vif_plug_dyn error.

    Subclasses set ``msg_fmt``; the keyword arguments given at construction
    fill it and stay available as attributes of ``kwargs``.

    An instance survives the oslo.privsep channel: the daemon sends the
    class name and ``args``, the client calls ``cls(*args)``. ``args`` is
    therefore ``(message, kwargs)`` with the keyword arguments reduced to
    primitives msgpack can carry, and the constructor accepts that second
    positional argument.

    :param message: the message; built from ``msg_fmt`` when omitted.
    :param wire_kwargs: keyword arguments as sent over the privsep channel
        (merged under ``kwargs``); callers normally leave it out.
    """

    msg_fmt = 'An unknown vif_plug_dyn error occurred.'

    def __init__(self, message: str | None = None,
                 wire_kwargs: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        if wire_kwargs:
            kwargs = {**dict(wire_kwargs), **kwargs}
        self.kwargs = kwargs
        if message is None:
            try:
                message = self.msg_fmt % kwargs
            except (KeyError, TypeError, ValueError):
                # NOTE(vpd): a wrong keyword must not hide the real error;
                # keep the format and the arguments so nothing is lost.
                message = '%s (%r)' % (self.msg_fmt, kwargs)
        self.message = message
        # NOTE(vpd): oslo.privsep re-raises ``type(e)(*e.args)`` on the
        # client side, so ``args`` must rebuild the same exception; only
        # primitives cross msgpack, anything else travels as its repr.
        super().__init__(message, _primitive(kwargs))
        if isinstance(self, OSError):
            # NOTE(vpd): OSError.__init__ read our two args as (errno,
            # strerror); put meaningful values back.
            os_error = cast(OSError, self)
            os_error.errno = kwargs.get('errno')
            os_error.strerror = kwargs.get('reason', message)

    def __str__(self) -> str:
        return self.message


def _primitive(value: Any, depth: int = 0) -> Any:
    """Reduce ``value`` to what msgpack can carry (repr() for the rest)."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if depth < 8 and isinstance(value, dict):
        return {str(k): _primitive(v, depth + 1) for k, v in value.items()}
    if depth < 8 and isinstance(value, (list, tuple)):
        return [_primitive(v, depth + 1) for v in value]
    return repr(value)


# --- input validation -------------------------------------------------------

class InvalidField(VifPlugDynException, ValueError):
    """A value given for a named field is not acceptable."""

    msg_fmt = 'Invalid value %(value)r for field %(field)s: %(reason)s'


class UnsupportedVersion(VifPlugDynException, ValueError):
    """A serialised object has a version this code cannot read."""

    msg_fmt = ('Cannot read %(obj)s version %(version)s: this library '
               'supports %(supported)s')


class InvalidPrimitive(VifPlugDynException, ValueError):
    """A serialised object is malformed."""

    msg_fmt = 'Malformed %(obj)s primitive: %(reason)s'


# --- networks --------------------------------------------------------------

class InvalidNetworkDefinition(VifPlugDynException, ValueError):
    """A network definition does not parse or does not validate."""

    msg_fmt = ('Invalid network definition %(source)s at %(element)s: '
               '%(reason)s')


class NetworkNotFound(VifPlugDynException, LookupError):
    """No network of that name is defined on this host."""

    msg_fmt = 'Network %(network)s is not defined on this host'


class NetworkExists(VifPlugDynException):
    """A network of that name is already defined."""

    msg_fmt = 'Network %(network)s is already defined (%(source)s)'


class NetworkInUse(VifPlugDynException):
    """A network still has ports and cannot be undefined."""

    msg_fmt = 'Network %(network)s still has %(count)d port(s): %(ports)s'


# --- drivers and negotiation -------------------------------------------------

class DriverNotFound(VifPlugDynException, LookupError):
    """No network driver is installed under that name."""

    msg_fmt = ('Network driver %(driver)s for network kind %(kind)s is not '
               'installed (entry point namespace %(namespace)s)')


class DriverLoadFailed(VifPlugDynException):
    """A network driver was found but failed to load."""

    msg_fmt = 'Network driver %(driver)s failed to load: %(reason)s'


class NoMatchingEndpointType(VifPlugDynException):
    """Negotiation found no endpoint type both sides accept."""

    msg_fmt = ('Network %(network)s (kind %(kind)s) cannot provide any of '
               'the endpoint types %(requested)s asked for; it offers '
               '%(offered)s on this host')


class UnsupportedEndpointType(VifPlugDynException):
    """A driver was asked for an endpoint type it does not provide."""

    msg_fmt = ('Driver %(driver)s cannot provide endpoint type %(type)s on '
               'network %(network)s')


class PoolExhausted(VifPlugDynException):
    """A network's pool has no free resource left."""

    msg_fmt = 'Network %(network)s has no free %(resource)s: %(reason)s'


class LowerDeviceMissing(VifPlugDynException):
    """A host interface a network depends on does not exist."""

    msg_fmt = ('Network %(network)s needs host interface %(device)s, which '
               'does not exist')


class OperationNotSupported(VifPlugDynException):
    """A driver or adapter does not support an operation."""

    msg_fmt = '%(operation)s is not supported by %(by)s: %(reason)s'


# --- ports and the ledger ---------------------------------------------------

class PortNotFound(VifPlugDynException, LookupError):
    """No endpoint is recorded for that port."""

    msg_fmt = 'Port %(port_id)s has no endpoint on this host'


class PortConflict(VifPlugDynException):
    """A port id is already bound in a way that contradicts the request."""

    msg_fmt = 'Port %(port_id)s conflicts with its recorded state: %(reason)s'


class LedgerError(VifPlugDynException):
    """The ledger could not be read or written."""

    msg_fmt = 'Ledger %(path)s: %(reason)s'


# --- the privileged boundary -------------------------------------------------

class DeviceNotOwned(VifPlugDynException, PermissionError):
    """A destructive operation named a device the library did not create."""

    msg_fmt = ('Refusing to %(operation)s device %(device)s: it is not owned '
               'by vif_plug_dyn')


class DeviceNotFound(VifPlugDynException, LookupError):
    """A host network device does not exist."""

    msg_fmt = 'Network device %(device)s does not exist'


class DeviceAlreadyOwned(VifPlugDynException):
    """A device the library created was asked to be adopted."""

    msg_fmt = ('Refusing to adopt device %(device)s: it was created by '
               'vif_plug_dyn (alias %(alias)s)')


class DeviceNotBorrowable(VifPlugDynException, PermissionError):
    """A device asked to be borrowed is not a hypervisor's tap the library
    may cable (see :func:`vif_plug_dyn.privsep.ops.borrow`)."""

    msg_fmt = 'Refusing to borrow device %(device)s: %(reason)s'


class NetlinkOperationFailed(VifPlugDynException, OSError):
    """The kernel refused a netlink request."""

    msg_fmt = ('Kernel refused %(operation)s on %(device)s: %(reason)s '
               '(errno %(errno)s)')


class PrivilegedHelperFailed(VifPlugDynException):
    """The privileged helper died or could not be reached."""

    msg_fmt = 'The privileged helper failed during %(operation)s: %(reason)s'


class PrivilegedHelperUnreachable(PrivilegedHelperFailed):
    """The request could not be written to the daemon (it was already
    gone): none of it was applied, so it may be sent again."""

    msg_fmt = ('The privileged helper could not be reached for '
               '%(operation)s: %(reason)s')


class PrivilegedMessageTooLarge(VifPlugDynException, ValueError):
    """A privileged call's arguments exceed what the daemon accepts; it
    was not sent."""

    msg_fmt = ('Refusing to send %(operation)s to the privileged helper: '
               'its arguments take %(size)d bytes, more than the limit of '
               '%(limit)d')


class PolicyNotWritten(VifPlugDynException):
    """The privileged helper's policy could not be generated or written."""

    msg_fmt = 'Privileged helper policy %(path)s not written: %(reason)s'


class PolicyDenied(VifPlugDynException, PermissionError):
    """The privileged helper's policy does not allow an operation on a
    device the library did not create."""

    msg_fmt = ('The privileged helper\'s policy (%(policy)s) does not allow '
               '%(operation)s on %(device)s: %(reason)s')


class NamespaceMismatch(VifPlugDynException):
    """The process's privileged helper serves another network namespace
    than the configuration asks for (one process, one namespace)."""

    msg_fmt = ('This process\'s privileged helper serves network namespace '
               '%(serving)s, but the configuration asks for network '
               'namespace %(wanted)s: one process serves one namespace '
               '(stop the helper first, or use another process)')


# --- hypervisor adapters -----------------------------------------------------

class HypervisorNotFound(VifPlugDynException, LookupError):
    """No hypervisor adapter is installed under that name."""

    msg_fmt = ('Hypervisor adapter %(name)s is not installed (entry point '
               'namespace %(namespace)s has: %(available)s)')


class HypervisorLoadFailed(VifPlugDynException):
    """A hypervisor adapter was found but failed to load."""

    msg_fmt = 'Hypervisor adapter %(name)s failed to load: %(reason)s'


class HypervisorOperationFailed(VifPlugDynException):
    """The hypervisor refused or failed a live operation."""

    msg_fmt = '%(operation)s on domain %(domain)s failed: %(reason)s'


class LiveUpdateRefused(HypervisorOperationFailed):
    """The hypervisor cannot make that change to a running guest."""

    msg_fmt = ('%(operation)s on domain %(domain)s is refused: %(reason)s')


class DomainNotFound(HypervisorOperationFailed, LookupError):
    """The hypervisor has no domain of that name or UUID."""

    msg_fmt = '%(operation)s failed: the hypervisor has no domain %(domain)s'


class HypervisorConnectionFailed(HypervisorOperationFailed):
    """The hypervisor could not be reached, or the connection broke."""

    msg_fmt = ('Cannot reach the hypervisor at %(uri)s for %(operation)s: '
               '%(reason)s')


class InterfaceNotFound(VifPlugDynException, LookupError):
    """A domain has no interface with that MAC address."""

    msg_fmt = 'Domain %(domain)s has no interface with MAC %(mac)s'


class InterfaceExists(VifPlugDynException):
    """A domain already has an interface with that MAC address."""

    msg_fmt = 'Domain %(domain)s already has an interface with MAC %(mac)s'


class MigrationEndpointMissing(VifPlugDynException, LookupError):
    """A migrating domain has an interface no destination endpoint serves."""

    msg_fmt = ('Cannot build the destination XML of domain %(domain)s: '
               'interface %(mac)s has no destination endpoint')


class MigrationNotPossible(VifPlugDynException):
    """A destination endpoint cannot take over an interface's guest NIC."""

    msg_fmt = ('Cannot migrate interface %(mac)s of domain %(domain)s: '
               '%(reason)s')


class MigrationNetworkMissing(VifPlugDynException, LookupError):
    """The migration destination lacks networks the domain's ports use."""

    msg_fmt = ('Cannot migrate domain %(domain)s to %(destination)s: it '
               'does not define network(s) %(networks)s (used by port(s) '
               '%(ports)s); nothing was changed')


class MigrationSourceCleanupFailed(VifPlugDynException):
    """A domain migrated, but its source endpoints were not released.

    :ivar result: the :class:`~vif_plug_dyn.virt.migration.MigrationResult`
        of the migration that did happen.
    """

    msg_fmt = ('Domain %(domain)s now runs on %(destination)s, but '
               'releasing its source port(s) %(ports)s failed: %(reason)s; '
               'release them on the source again')

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        self.result = kwargs.pop('result', None)
        super().__init__(message, **kwargs)


class InvalidXML(VifPlugDynException, ValueError):
    """An XML document does not parse or lacks what is required."""

    msg_fmt = 'Invalid %(what)s XML at %(element)s: %(reason)s'


# --- host interface configuration --------------------------------------------

class InvalidHostInterface(VifPlugDynException, ValueError):
    """A host interface definition is invalid."""

    msg_fmt = 'Invalid host interface %(name)s at %(element)s: %(reason)s'


class HostInterfaceNotFound(VifPlugDynException, LookupError):
    """No host interface of that name is defined."""

    msg_fmt = 'Host interface %(name)s is not defined'


class TransactionError(VifPlugDynException):
    """A host interface transaction was misused or failed."""

    msg_fmt = 'Host interface transaction: %(reason)s'


class ForeignFile(VifPlugDynException, PermissionError):
    """A persistent backend refused to overwrite a file it did not write."""

    msg_fmt = ('Refusing to overwrite %(path)s: it was not written by '
               'vif_plug_dyn')


class HostInterfaceExists(VifPlugDynException):
    """A host interface of that name is already defined."""

    msg_fmt = 'Host interface %(name)s is already defined (%(source)s)'


class HostInterfaceInUse(VifPlugDynException):
    """Another definition needs a device of this one."""

    msg_fmt = ('Host interface %(name)s cannot be undefined: %(user)s '
               'needs its device %(device)s')


class HostInterfaceDependencyMissing(VifPlugDynException, LookupError):
    """A host interface needs a device that is neither defined nor
    present."""

    msg_fmt = ('Host interface %(name)s (definition %(definition)s) needs '
               'device %(needs)s, which is neither defined nor present')


class HostInterfaceCycle(VifPlugDynException, ValueError):
    """Host interfaces depend on each other in a loop."""

    msg_fmt = 'Host interfaces depend on each other in a cycle: %(cycle)s'


class HostInterfaceConflict(VifPlugDynException):
    """A live device cannot take the role a definition gives it."""

    msg_fmt = ('Host interface %(name)s cannot use device %(device)s: '
               '%(reason)s')


class HostInterfaceStepFailed(VifPlugDynException):
    """One privileged step of a host interface apply failed."""

    msg_fmt = 'step %(number)s (%(step)s) failed: %(reason)s'


class HostInterfaceApplyFailed(VifPlugDynException):
    """Applying host interface changes failed; the host was restored."""

    msg_fmt = ('%(action)s of host interface %(name)s failed at step '
               '%(step)s: %(reason)s; %(restored)s')


# --- os-vif ------------------------------------------------------------------

class UnsupportedVIF(VifPlugDynException, ValueError):
    """An os-vif VIF object this library cannot plug."""

    msg_fmt = '%(vif)s cannot be plugged by vif_plug_dyn: %(reason)s'


class NoNetworkForVIF(VifPlugDynException, LookupError):
    """No host network answers an os-vif VIF."""

    msg_fmt = ('No host network for %(vif)s: tried %(tried)s (name the '
               'network in [%(group)s] network_map)')


class VIFMismatch(VifPlugDynException):
    """A host network cannot serve a VIF the way its consumer renders it."""

    msg_fmt = ('Network %(network)s cannot serve %(vif)s as its consumer '
               'will configure it: %(reason)s')


# --- host interfaces: persisted values, verification, documents -------------

class UnsafeHostInterfaceValue(VifPlugDynException, ValueError):
    """A persistent writer refused a value it cannot write safely (a
    control character, a character that means something in the file's
    syntax, an overlong value)."""

    msg_fmt = ('Refusing to write host interface %(name)s to %(target)s: '
               '%(field)s %(reason)s')


class HostInterfaceVerifyFailed(VifPlugDynException):
    """After an apply, the kernel does not show what the definition
    sets."""

    msg_fmt = ('Host interface %(name)s: after the %(action)s, %(device)s '
               '%(field)s is %(found)s, the definition sets %(wanted)s%('
               'more)s; %(restored)s')


class InvalidInterfaceDocument(VifPlugDynException, ValueError):
    """A document of several host interface definitions is invalid."""

    msg_fmt = 'Invalid host interface document %(source)s: %(reason)s'


# --- the agent and its message bus -------------------------------------------

class AgentTimeout(VifPlugDynException, TimeoutError):
    """An agent did not answer an RPC call in time (it may be down, busy
    or gone mid-call: what it did is for its ledger and a reconcile to
    tell)."""

    msg_fmt = ('Agent %(host)s did not answer %(method)s within '
               '%(timeout)s s')


class AgentUnreachable(VifPlugDynException, ConnectionError):
    """The message bus could not carry a call to an agent."""

    msg_fmt = ('Cannot reach agent %(host)s for %(method)s through the '
               'message bus: %(reason)s')


class AgentCallFailed(VifPlugDynException):
    """An agent failed a call with an error the library does not
    anticipate (its log has the traceback), or refused the call itself
    (an RPC version it does not serve)."""

    msg_fmt = 'Agent %(host)s failed %(method)s: %(reason)s'
