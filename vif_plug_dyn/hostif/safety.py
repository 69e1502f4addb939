"""Values that reach a persisted file are checked where they are written.

The model validates every field of a definition, but the files the
persistent writers produce are read by programs that run as root at boot
(ifupdown runs ``up``/``pre-up`` lines through a shell, NetworkManager
reads a keyfile line by line). A single newline that slipped through any
validation would let a definition add a line of its own — an IPv6 zone
id did exactly that once (``fe80::1%x\\n    up touch pwned``). So each
writer checks every value it puts in a file, at the point of use, against
one narrow rule instead of trusting what came before:

* a value is a *token*: letters, digits and ``_ . : / -`` only, starting
  with a letter, a digit or ``:`` — every name, address, number, MAC,
  uuid and keyword a host interface file holds fits; newlines, control
  characters, ``#``, ``;``, ``=``, ``%``, quotes, brackets and spaces do
  not;
* at most :data:`MAX_VALUE` characters (an IPv6 address with its prefix
  is 43);
* a name (a field whose XPath ends in ``@name``: device names, which
  also name files) is an interface name: at most 15 characters, no
  ``/`` or ``:``, not starting with a dot.

A refusal is :class:`~vif_plug_dyn.exception.UnsafeHostInterfaceValue`
naming the definition, the file and the field (the XPath of the value in
the definition), raised before anything is written.
"""

import contextlib
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

from vif_plug_dyn import exception

#: Longest value a writer puts in a file.
MAX_VALUE = 64
_TOKEN_RE = re.compile(r'[A-Za-z0-9:][A-Za-z0-9_.:/-]*')
_NAME_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]{0,14}')
#: Longest part of a refused value repeated in an error message.
_SHOWN = 24


class Unsafe(Exception):
    """Raised by :func:`token` inside :func:`writing`, which turns it into
    the typed error with the definition and the file."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.field = field
        self.reason = reason


def _shown(value: str) -> str:
    if len(value) <= _SHOWN:
        return repr(value)
    return '%r... (%d characters)' % (value[:_SHOWN], len(value))


def token(value: object, field: str) -> str:
    """Return ``value`` as text if it may be written to a file.

    :param value: what the writer is about to write (a string or an
        integer; anything else is refused).
    :param field: the XPath of the value in the definition, for the
        error.
    :raises Unsafe: the value is not a token (see the module docstring).
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise Unsafe(field, 'is a %s, not text' % type(value).__name__)
    text = str(value)
    if not text:
        raise Unsafe(field, 'is empty')
    if len(text) > MAX_VALUE:
        raise Unsafe(field, 'is longer than %d characters: %s'
                     % (MAX_VALUE, _shown(text)))
    if not _TOKEN_RE.fullmatch(text):
        raise Unsafe(field, 'holds characters a host interface file '
                            'cannot carry safely (only letters, digits '
                            'and _ . : / - are written): %s' % _shown(text))
    if field.endswith('@name') and not _NAME_RE.fullmatch(text):
        raise Unsafe(field, 'is not an interface name (up to 15 letters, '
                            'digits, _ . -): %s' % _shown(text))
    return text


def seconds(value: object, field: str) -> float:
    """Return a duration in seconds a writer formats itself.

    :raises Unsafe: not a finite number from 0 to 3600.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or not 0 <= value <= 3600:
        raise Unsafe(field, 'is not a number of seconds: %s'
                     % _shown(str(value)))
    return float(value)


def cidr(address: object, prefix: object, field: str) -> str:
    """Return ``address/prefix`` of a static address, each part checked
    (no prefix: a host prefix, as the backends write it).

    :param field: the XPath of the ``<ip>`` element.
    :raises Unsafe: either part cannot be written.
    """
    text = token(address, field + '/@address')
    if prefix is None:
        prefix = 128 if ':' in text else 32
    if isinstance(prefix, bool) or not isinstance(prefix, int) or \
            not 0 <= prefix <= 128:
        raise Unsafe(field + '/@prefix', 'is not a prefix length: %s'
                     % _shown(str(prefix)))
    return '%s/%d' % (text, prefix)


@contextlib.contextmanager
def writing(name: object, target: str) -> Iterator[None]:
    """Turn :class:`Unsafe` raised inside into the typed error.

    :param name: the definition being written.
    :param target: what is written (``ifupdown file /etc/...``).
    :raises UnsafeHostInterfaceValue: a value was refused.
    """
    try:
        yield
    except Unsafe as exc:
        raise exception.UnsafeHostInterfaceValue(
            name=token_or_repr(name), target=target, field=exc.field,
            reason=exc.reason) from None


def token_or_repr(value: object) -> str:
    """A value for an error message: itself if it is a token, else a
    shortened repr (the name itself may be the culprit)."""
    try:
        return token(value, '')
    except Unsafe:
        return _shown(str(value))


def check_element(root: ET.Element, name: object, target: str) -> None:
    """Check every attribute and processing instruction of an XML
    definition before it is stored.

    ElementTree escapes what it writes, but the next reader gets the
    characters back: a definition file must hold only values the other
    writers can carry too.

    :param root: the ``<interface>`` element.
    :param name: the definition's name.
    :param target: the file.
    :raises UnsafeHostInterfaceValue: a value was refused.
    """
    with writing(name, target):
        _check_element(root, '/' + str(root.tag))


def _check_element(element: ET.Element, path: str) -> None:
    for attr in sorted(element.attrib):
        token(element.attrib[attr], '%s/@%s' % (path, attr))
    counts: dict[str, int] = {}
    for child in element:
        if child.tag is ET.PI:
            _check_pi(child, path)
            continue
        tag = str(child.tag)
        counts[tag] = counts.get(tag, 0) + 1
        # NOTE(vpd): the XPaths the parser and the other writers use:
        # members and addresses by position, protocols by family.
        if tag == 'protocol':
            where = "%s/protocol[@family='%s']" % (
                path, token_or_repr(child.get('family')))
        elif tag == 'ip' or (tag == 'interface' and
                             str(element.tag) in ('bridge', 'bond')):
            where = '%s/%s[%d]' % (path, tag, counts[tag])
        else:
            where = '%s/%s' % (path, tag)
        if child.text is not None and child.text.strip():
            raise Unsafe(where, 'has text content')
        _check_element(child, where)


def _check_pi(child: ET.Element, path: str) -> None:
    target, _sep, data = (child.text or '').partition(' ')
    where = "%s/processing-instruction('%s')" % (path,
                                                 token_or_repr(target))
    token(target, where)
    key, sep, quoted = data.partition('=')
    if not sep or len(quoted) < 2 or quoted[0] != '"' or \
            quoted[-1] != '"':
        raise Unsafe(where, 'is not key="value"')
    token(key, where)
    token(quoted[1:-1], where)
