"""Bounds on what crosses the privileged boundary (both sides).

A caller may send anything; what the daemon sends back must stay small
whatever it was sent. Values repeated in error messages are cut down
(:func:`shorten`), messages too (:func:`bounded_error`), and text longer
than any field takes is refused before any check repeats it
(:func:`too_long`).
"""

from typing import Any

from vif_plug_dyn import exception

#: Longest text any field takes (the longest real one is an alias, 255
#: bytes); longer values are refused before any other check.
MAX_TEXT = 1024
#: How much of a refused value an error message repeats.
ECHO_CHARS = 64
#: Longest error message the daemon sends back.
MAX_MESSAGE = 2048


def too_long(value: Any) -> bool:
    """Whether ``value`` is text longer than any field takes."""
    return isinstance(value, (str, bytes)) and len(value) > MAX_TEXT


def shorten(value: Any, limit: int = ECHO_CHARS, depth: int = 0) -> Any:
    """``value`` cut down for an error message: long text keeps its first
    ``limit`` characters and says how long it was, a large container or
    integer is described rather than repeated.

    NOTE(vpd): a 50 MB name once made the daemon build a 50 MB message
    (and peak at 700 MB); messages must stay small whatever was sent.
    """
    if isinstance(value, (str, bytes, bytearray)):
        if len(value) <= limit:
            return value
        return '%r... (%d %s)' % (value[:limit], len(value),
                                  'characters' if isinstance(value, str)
                                  else 'bytes')
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if value.bit_length() <= 64 else \
            '<integer of %d bits>' % value.bit_length()
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        if depth >= 2 or len(value) > 8:
            return '<%s of %d items>' % (type(value).__name__, len(value))
        if isinstance(value, dict):
            return {shorten(k, limit, depth + 1): shorten(v, limit,
                                                          depth + 1)
                    for k, v in value.items()}
        return [shorten(v, limit, depth + 1) for v in value]
    return '<%s>' % type(value).__name__


def bounded_error(exc: exception.VifPlugDynException
                  ) -> tuple[str, dict[str, Any]]:
    """The message and keyword arguments of a library error, cut down to
    what may cross back from the daemon (:data:`MAX_MESSAGE` characters,
    each argument :func:`shorten`-ed)."""
    message = exc.message if isinstance(exc.message, str) else str(
        exc.message)
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + '... (cut)'
    kwargs = exc.args[1] if len(exc.args) > 1 and isinstance(
        exc.args[1], dict) else {}
    return message, {str(shorten(k, 64)): shorten(v, 256)
                     for k, v in list(kwargs.items())[:16]}
