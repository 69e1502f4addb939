"""Immutable, validated value objects with versioned primitives.

Every descriptor that crosses a process boundary (an RPC call, the ledger,
the command line's JSON output) is a frozen dataclass deriving from
:class:`VersionedObject`. It serialises to a JSON-safe *primitive*::

    {"vpd.name": "BridgeEndpoint", "vpd.version": "1.1",
     "vpd.data": {"port_id": "...", ...}}

Back-level rule
---------------
Versions are ``MAJOR.MINOR``. A new minor version may only add optional
fields (each with a default). Therefore:

* a reader accepts any minor version of its own major version; fields it
  does not know (sent by a newer writer) are ignored, fields it knows but
  were not sent (by an older writer) take their defaults;
* a writer asked for an older minor version (``to_primitive('1.0')``) drops
  the fields introduced after it, so an older reader never sees a field it
  does not know;
* a different major version is refused with
  :class:`~vif_plug_dyn.exception.UnsupportedVersion` in both directions.
"""

import dataclasses
from typing import Any, ClassVar, TypeVar

from vif_plug_dyn import exception

_T = TypeVar('_T', bound='VersionedObject')

NAME_KEY = 'vpd.name'
VERSION_KEY = 'vpd.version'
DATA_KEY = 'vpd.data'

_REGISTRY: dict[str, type['VersionedObject']] = {}


def _parse_version(obj: str, version: Any) -> tuple[int, int]:
    if not isinstance(version, str):
        raise exception.InvalidPrimitive(obj=obj,
                                         reason='version must be a string')
    try:
        major, minor = version.split('.')
        return int(major), int(minor)
    except ValueError:
        raise exception.InvalidPrimitive(
            obj=obj, reason='version %r is not MAJOR.MINOR' % version
        ) from None


@dataclasses.dataclass(frozen=True)
class VersionedObject:
    """Base of every serialisable value object.

    Subclasses set ``VERSION`` and, for each field added after ``x.0``,
    an entry in ``FIELD_SINCE`` mapping the field name to the minor version
    that introduced it. Nested ``VersionedObject`` fields serialise as
    nested primitives.
    """

    VERSION: ClassVar[str] = '1.0'
    FIELD_SINCE: ClassVar[dict[str, int]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    # -- serialisation --------------------------------------------------

    def to_primitive(self, target_version: str | None = None
                     ) -> dict[str, Any]:
        """Serialise to a JSON-safe dict.

        :param target_version: the version an older reader understands;
            fields introduced after it are dropped.
        :returns: the primitive.
        :raises UnsupportedVersion: ``target_version`` has another major
            version or is newer than this code.
        """
        name = type(self).__name__
        if target_version is None:
            version, fields = self.VERSION, _field_names(type(self))
        else:
            major, minor = _parse_version(name, self.VERSION)
            t_major, t_minor = _parse_version(name, target_version)
            if t_major != major or t_minor > minor:
                raise exception.UnsupportedVersion(
                    obj=name, version=target_version, supported=self.VERSION)
            since = self.FIELD_SINCE
            version = target_version
            fields = tuple(f for f in _field_names(type(self))
                           if since.get(f, 0) <= t_minor)
        data = {field: _to_json(getattr(self, field)) for field in fields}
        return {NAME_KEY: name, VERSION_KEY: version, DATA_KEY: data}

    @classmethod
    def from_primitive(cls: type[_T], primitive: Any) -> _T:
        """Build an object from a primitive, applying the back-level rule.

        :param primitive: a dict made by :meth:`to_primitive` (of any minor
            version of the same major version).
        :returns: an instance of the class the primitive names, which must
            be ``cls`` or a subclass of it.
        :raises InvalidPrimitive: the dict is malformed or names another
            class.
        :raises UnsupportedVersion: the major version differs.
        :raises InvalidField: a field value does not validate.
        """
        if not isinstance(primitive, dict):
            raise exception.InvalidPrimitive(obj=cls.__name__,
                                             reason='not a dict')
        name = primitive.get(NAME_KEY)
        target = _REGISTRY.get(name) if isinstance(name, str) else None
        if target is None or not issubclass(target, cls) or \
                not isinstance(name, str):
            raise exception.InvalidPrimitive(
                obj=cls.__name__, reason='unknown object name %r' % (name,))
        major, _minor = _parse_version(name, primitive.get(VERSION_KEY))
        own_major, _own_minor = _parse_version(name, target.VERSION)
        if major != own_major:
            raise exception.UnsupportedVersion(
                obj=name, version=primitive.get(VERSION_KEY),
                supported=target.VERSION)
        data = primitive.get(DATA_KEY)
        if not isinstance(data, dict):
            raise exception.InvalidPrimitive(obj=name,
                                             reason='data must be a dict')
        kwargs = {}
        for field in _field_names(target):
            if field in data:
                kwargs[field] = _from_json(data[field])
        try:
            return target(**kwargs)  # type: ignore[return-value]
        except TypeError as exc:
            raise exception.InvalidPrimitive(obj=name,
                                             reason=str(exc)) from None


_FIELDS: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    """The dataclass field names of ``cls``, computed once.

    NOTE(vpd): ``dataclasses.fields()`` builds a new tuple on each call;
    the ledger (de)serialises two objects per port, thousands per batch.
    """
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


#: Types whose values are their own JSON (and msgpack) form.
JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def _to_json(value: Any) -> Any:
    # NOTE(vpd): most fields are scalars; testing their exact type first
    # keeps serialising a batch of 1000 ports to a few milliseconds.
    if type(value) in JSON_SCALARS:
        return value
    if isinstance(value, VersionedObject):
        return value.to_primitive()
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and NAME_KEY in value:
        return VersionedObject.from_primitive(value)
    if isinstance(value, list):
        return tuple(_from_json(v) for v in value)
    return value


def set_normalised(obj: Any, field: str, value: Any) -> None:
    """Store a normalised value on a frozen dataclass during validation."""
    object.__setattr__(obj, field, value)


def require_instance(value: Any, field: str, cls: type) -> Any:
    """Refuse a nested value of the wrong type.

    NOTE(vpd): a primitive read from the ledger or an RPC peer can hold
    anything where an object is expected; a check here turns what would be
    an AttributeError deep in a validator into InvalidField.

    :raises InvalidField: ``value`` is not a ``cls``.
    """
    if not isinstance(value, cls):
        raise exception.InvalidField(field=field, value=value,
                                     reason='must be a %s' % cls.__name__)
    return value


def require_sequence(value: Any, field: str) -> tuple[Any, ...]:
    """Return ``value`` (a list or tuple) as a tuple.

    :raises InvalidField: not a list or tuple.
    """
    if isinstance(value, (str, bytes)) or not isinstance(value,
                                                         (list, tuple)):
        raise exception.InvalidField(field=field, value=value,
                                     reason='must be a list')
    return tuple(value)
