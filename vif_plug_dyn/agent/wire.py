"""The wire form of the agent's RPC API: the library's versioned objects
as primitives (:mod:`vif_plug_dyn.objects`), both ways, and ledger
records (used by :mod:`vif_plug_dyn.rpc` and the agent)."""

from typing import Any

from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import ledger as ledger_mod
from vif_plug_dyn import objects
from vif_plug_dyn import ports
from vif_plug_dyn._messaging import oslo_messaging


# -- serialisation ------------------------------------------------------------

def to_wire(value: Any) -> Any:
    """Versioned objects to primitives, recursively (lists, dicts)."""
    if isinstance(value, objects.VersionedObject):
        return value.to_primitive()
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    return value


def from_wire(value: Any) -> Any:
    """Primitives back to versioned objects, recursively.

    :raises InvalidPrimitive: a malformed primitive.
    :raises UnsupportedVersion: another major version.
    :raises InvalidField: a field does not validate.
    """
    if isinstance(value, dict):
        if objects.NAME_KEY in value:
            return objects.VersionedObject.from_primitive(value)
        return {k: from_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_wire(v) for v in value]
    return value


class BadArgument:
    """An argument of a call that did not deserialise: the endpoint raises
    :attr:`error` (see :class:`ObjectSerializer`)."""

    def __init__(self, error: exception.VifPlugDynException) -> None:
        self.error = error


class ObjectSerializer(oslo_messaging.NoOpSerializer):
    """Carries the library's versioned objects as their primitives.

    NOTE(vpd): both directions validate: an object built from a peer's
    primitive is checked like one built here, so a malformed argument is
    refused with the library's typed error before a manager sees it.

    :param defer_errors: (the agent's side) hand a malformed argument to
        the endpoint as a :class:`BadArgument` rather than raising in
        oslo.messaging's dispatcher, which would log a bad request as an
        internal error with a traceback.
    """

    def __init__(self, defer_errors: bool = False) -> None:
        self.defer_errors = defer_errors

    def serialize_entity(self, ctxt: Any, entity: Any) -> Any:
        return to_wire(entity)

    def deserialize_entity(self, ctxt: Any, entity: Any) -> Any:
        if not self.defer_errors:
            return from_wire(entity)
        try:
            return from_wire(entity)
        except exception.VifPlugDynException as exc:
            return BadArgument(exc)


def record_to_wire(record: ledger_mod.PortRecord) -> dict[str, Any]:
    """A ledger record as the ``port_status`` call returns it."""
    return {'request': record.request.to_primitive(),
            'endpoint': (record.endpoint.to_primitive()
                         if record.endpoint is not None else None),
            'state': record.state, 'cable': record.cable,
            'health': record.health, 'updated': record.updated,
            'link': record.link}


def record_from_wire(value: Any) -> ledger_mod.PortRecord:
    """Rebuild a :class:`~vif_plug_dyn.ledger.PortRecord` from
    :func:`record_to_wire`'s form (objects already deserialised or not).

    :raises InvalidPrimitive: not a record.
    """
    if not isinstance(value, dict):
        raise exception.InvalidPrimitive(obj='PortRecord',
                                         reason='not a dict')
    data = from_wire(value)
    try:
        request = objects.require_instance(data['request'], 'request',
                                           ports.EndpointRequest)
        endpoint = data['endpoint']
        if endpoint is not None:
            objects.require_instance(endpoint, 'endpoint',
                                     endpoints.Endpoint)
        return ledger_mod.PortRecord(
            request=request, endpoint=endpoint, state=str(data['state']),
            cable=str(data['cable']), health=str(data['health']),
            updated=float(data['updated']), link=str(data['link']))
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, exception.VifPlugDynException):
            raise
        raise exception.InvalidPrimitive(obj='PortRecord',
                                         reason=repr(exc)) from None
