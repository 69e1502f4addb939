"""Fail when built HTML shows reStructuredText that did not render.

``sphinx-build -W`` catches markup errors, not markup that silently
becomes text. This looks at the built pages for what such mistakes leave
in running text (paragraphs, list items, table cells, definitions):

* table borders: a simple table without its top border renders as a
  paragraph full of ``=====`` (and grid-table ``+----+`` rules);
* merge-conflict leftovers: ``<<<<<<<``, ``=======`` or ``>>>>>>>`` lines
  glued to a paragraph, or standing alone as a transition (a horizontal
  rule the documents never use on purpose);
* dashed or doubled title underlines that lost their title.

Literal text (``code``, ``.. code-block::``) is not looked at.

Usage: python tools/check_docs.py [--allow PAGE] HTML_DIR [HTML_DIR ...]

``--allow`` skips one page (its path below HTML_DIR, for example
``admin/privileged-helper.html``); use it only for a page someone is
fixing, and say who in a comment next to it.
"""

import argparse
import html
import os
import re
import sys

#: Running text: what docutils makes of paragraphs, list items,
#: definition list terms/definitions and table cells.
_TEXT = re.compile(r'<(p|li|dt|dd|td|th)\b[^>]*>(.*?)</\1>', re.S)
_LITERAL = re.compile(r'<(pre|code|kbd|samp)\b.*?</\1>', re.S)
_TAG = re.compile(r'<[^>]+>')
#: Leftovers of unrendered markup.
_LEFTOVER = re.compile(r'={4,}|-{5,}|~{4,}|\^{4,}|\+[-=]{3,}|<{7}|>{7}')
#: A docutils transition (``----`` or ``====`` between blank lines).
_TRANSITION = re.compile(r'<hr\b[^>]*class="docutils"')


def problems(page: str) -> list[str]:
    """Sentences naming each leftover of one built page."""
    with open(page, encoding='utf-8') as f:
        body = _LITERAL.sub('', f.read())
    found = []
    if _TRANSITION.search(body):
        found.append('a transition (horizontal rule): a stray line of '
                     '"----" or "====" (a merge separator?)')
    for match in _TEXT.finditer(body):
        text = ' '.join(html.unescape(_TAG.sub('', match[2])).split())
        leftover = _LEFTOVER.search(text)
        if leftover:
            start = max(0, leftover.start() - 40)
            found.append('markup rendered as text: ...%s...'
                         % text[start:leftover.end() + 40])
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--allow', action='append', default=[],
                        metavar='PAGE', help='a page to skip')
    parser.add_argument('roots', nargs='+', metavar='HTML_DIR')
    args = parser.parse_args(argv)
    failures = 0
    for root in args.roots:
        if not os.path.isdir(root):
            print('%s: no such directory (build the HTML first)' % root)
            return 2
        for directory, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith('_'))
            for name in sorted(files):
                if not name.endswith('.html'):
                    continue
                page = os.path.join(directory, name)
                if os.path.relpath(page, root) in args.allow:
                    continue
                for problem in problems(page):
                    print('%s: %s' % (page, problem))
                    failures += 1
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
