"""``iface diff``: what differs between a definition, the live host and
the files the persistent backends keep for it.

The live part is the comparison a start's read-back makes
(:func:`vif_plug_dyn.hostif.verify.check_start`): what a start would
change. The persisted part renders the definition as each backend would
and compares it with the file on disk (a hand edit, a file another tool
rewrote, one that is missing).
"""

import difflib
import os
from typing import TYPE_CHECKING, Any

from vif_plug_dyn.hostif import files
from vif_plug_dyn.hostif import verify

if TYPE_CHECKING:
    from vif_plug_dyn.hostif.api import HostInterfaceAPI

#: Most lines of a file's unified diff shown.
MAX_DIFF_LINES = 200


def diff(api: 'HostInterfaceAPI', name: str) -> dict[str, Any]:
    """What differs between a definition, the live host and the files
    the persistent backends keep for it.

    :returns: ``live`` (one entry per field: ``device``, ``field``,
        ``definition`` and ``live`` values), ``persisted`` (per file:
        ``backend``, ``path``, ``state`` — ``same``, ``missing``,
        ``differs`` with a unified ``diff``, or ``foreign``), and
        ``in_sync``.
    :raises HostInterfaceNotFound: no such definition.
    """
    definition = api.store.get(name)
    live = api.live.state()
    differences = [{'device': m.device, 'element': m.element,
                    'field': m.field, 'definition': m.wanted,
                    'live': m.found}
                   for m in verify.check_start(definition, live)]
    persisted = []
    for backend in api.store.backends:
        for file_name, text in sorted(backend.render(definition).items()):
            path = os.path.join(backend.directory, file_name)
            entry: dict[str, Any] = {'backend': backend.name, 'path': path}
            try:
                current = files.read_regular(path)
            except IsADirectoryError:
                current = ''
            if current is None:
                entry['state'] = 'missing'
            elif not backend.is_ours(current):
                entry['state'] = 'foreign'
            elif current == text:
                entry['state'] = 'same'
            else:
                lines = list(difflib.unified_diff(
                    current.splitlines(), text.splitlines(),
                    'on disk', 'from the definition', lineterm=''))
                entry.update(state='differs', diff=lines[:MAX_DIFF_LINES])
            persisted.append(entry)
    return {'name': name, 'live': differences, 'persisted': persisted,
            'in_sync': not differences and all(
                p['state'] == 'same' for p in persisted)}
