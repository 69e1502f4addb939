"""Fail when library or tool code runs a shell.

Every piece of host work goes through pyroute2 in the privileged helper;
a shell (``shell=True``, ``os.system``, ``os.popen``) is never needed and
is refused here so it cannot creep in.

Usage: python tools/check_no_shell.py DIR [DIR ...]
"""

import ast
import os
import sys

_SHELL_CALLS = {('os', 'system'), ('os', 'popen'), ('os', 'execlp'),
                ('subprocess', 'getoutput'),
                ('subprocess', 'getstatusoutput')}


def _problems(path: str) -> list[str]:
    with open(path, encoding='utf-8') as handle:
        tree = ast.parse(handle.read(), filename=path)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and \
                isinstance(func.value, ast.Name) and \
                (func.value.id, func.attr) in _SHELL_CALLS:
            found.append('%s:%d: %s.%s runs a shell' % (
                path, node.lineno, func.value.id, func.attr))
        for keyword in node.keywords:
            if keyword.arg == 'shell' and not (
                    isinstance(keyword.value, ast.Constant) and
                    keyword.value.value is False):
                found.append('%s:%d: shell=%s' % (
                    path, node.lineno, ast.unparse(keyword.value)))
    return found


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
