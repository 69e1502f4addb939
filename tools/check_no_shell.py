"""Fail when library or tool code runs a shell.

Every piece of host work goes through netlink in the privileged helper;
a shell is never needed and is refused here so it cannot creep in. Found:

* ``shell=`` anything but ``False`` in any call (``subprocess.run``,
  ``Popen``, ``check_output``..., however imported);
* the functions that always run a shell: ``os.system``, ``os.popen``,
  ``subprocess.getoutput``, ``subprocess.getstatusoutput``,
  ``asyncio.create_subprocess_shell`` and ``pty.spawn`` of a string —
  called through their module (also under another name, ``import os as
  o``) or imported by name (``from os import system``);
* ``os.execlp``/``os.execvp``-style calls whose program is ``sh``,
  ``bash`` or ``/bin/sh``.

Usage: python tools/check_no_shell.py DIR [DIR ...]
"""

import ast
import os
import sys

#: (module, function) pairs that run a shell.
SHELL_CALLS = {('os', 'system'), ('os', 'popen'),
               ('subprocess', 'getoutput'),
               ('subprocess', 'getstatusoutput'),
               ('asyncio', 'create_subprocess_shell'),
               ('pty', 'spawn')}
#: Functions that start a program named by their first argument.
_EXEC_CALLS = {('os', name) for name in (
    'execl', 'execle', 'execlp', 'execlpe', 'execv', 'execve', 'execvp',
    'execvpe', 'spawnl', 'spawnle', 'spawnlp', 'spawnlpe', 'spawnv',
    'spawnve', 'spawnvp', 'spawnvpe', 'posix_spawn', 'posix_spawnp')}
_SHELLS = {'sh', 'bash', 'dash', 'zsh', 'ksh', '/bin/sh', '/bin/bash',
           '/usr/bin/sh', '/usr/bin/bash', '/bin/dash'}


def _aliases(tree: ast.AST) -> tuple[dict[str, str], dict[str, tuple]]:
    """Module aliases (``o`` -> ``os``) and imported functions
    (``system`` -> ``('os', 'system')``) of a module."""
    modules: dict[str, str] = {}
    functions: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                modules[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                functions[alias.asname or alias.name] = (node.module,
                                                         alias.name)
    return modules, functions


def _target(func: ast.expr, modules: dict[str, str],
            functions: dict[str, tuple]) -> tuple | None:
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return (modules.get(func.value.id, func.value.id), func.attr)
    if isinstance(func, ast.Name):
        return functions.get(func.id)
    return None


def _program(target: tuple, node: ast.Call) -> object:
    """The program an exec/spawn call starts, if written literally
    (``spawn*`` take a mode first)."""
    at = 1 if target[1].startswith('spawn') else 0
    if len(node.args) > at and isinstance(node.args[at], ast.Constant):
        return node.args[at].value
    return None


def problems_in(source: str, path: str = '<string>') -> list[str]:
    """Every shell use in ``source``, as ``path:line: what``."""
    tree = ast.parse(source, filename=path)
    modules, functions = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        target = _target(node.func, modules, functions)
        if target in SHELL_CALLS:
            found.append('%s:%d: %s.%s runs a shell' % (
                path, node.lineno, target[0], target[1]))
        elif target in _EXEC_CALLS and _program(target, node) in _SHELLS:
            found.append('%s:%d: %s.%s starts a shell' % (
                path, node.lineno, target[0], target[1]))
        for keyword in node.keywords:
            if keyword.arg == 'shell' and not (
                    isinstance(keyword.value, ast.Constant) and
                    keyword.value.value is False):
                found.append('%s:%d: shell=%s' % (
                    path, node.lineno, ast.unparse(keyword.value)))
    return found


def _problems(path: str) -> list[str]:
    with open(path, encoding='utf-8') as handle:
        return problems_in(handle.read(), path)


def main(argv: list[str]) -> int:
    problems = []
    for top in argv or ['vif_plug_dyn']:
        for root, _dirs, files in os.walk(top):
            for name in files:
                if name.endswith('.py'):
                    problems.extend(_problems(os.path.join(root, name)))
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
