"""The docs check (tools/check_docs.py) finds reStructuredText that built
but rendered as text, and leaves literal text and real tables alone."""

import importlib.util
import os

import pytest

_PATH = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'tools',
                     'check_docs.py')

# What Sphinx's HTML writer makes of a few mistakes and of the markup
# they imitate.
BROKEN = {
    'table without its top border': (
        '<p>measure  seconds\n=======  =======\ncreate   0.52</p>'),
    'merge separator glued to a paragraph': (
        '<p>and disabling it again.\n=======\n<code class="docutils '
        'literal notranslate"><span class="pre">tox</span></code> '
        'creates</p>'),
    'conflict marker in a list item': '<li><p>&lt;&lt;&lt;&lt;&lt;&lt;&lt;'
                                      ' HEAD</p></li>',
    'grid table rule in a cell': '<td><p>+------+-----+</p></td>',
    'stray transition': '<p>one</p>\n<hr class="docutils" />\n<p>two</p>',
}
FINE = {
    'rendered table': (
        '<table class="docutils align-default"><thead><tr><th class="head">'
        '<p>measure</p></th></tr></thead><tbody><tr><td><p>create</p></td>'
        '</tr></tbody></table>'),
    'rules inside literal blocks': (
        '<div class="highlight"><pre><span></span>=======\n+----+\n'
        '&lt;&lt;&lt;&lt;&lt;&lt;&lt;</pre></div>'),
    'rules inside inline literals': (
        '<p>write <code class="docutils literal notranslate"><span '
        'class="pre">=====</span></code> under a title</p>'),
    'theme rule': '<hr/>\n<p>Footer -- text</p>',
}


@pytest.fixture(scope='module')
def checker():
    if not os.path.exists(_PATH):
        pytest.skip('tools/check_docs.py is not in this tree')
    spec = importlib.util.spec_from_file_location('check_docs', _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _page(tmp_path, body):
    page = tmp_path / 'page.html'
    page.write_text('<html><body>%s</body></html>' % body, encoding='utf-8')
    return str(page)


@pytest.mark.parametrize('name', sorted(BROKEN))
def test_found(checker, tmp_path, name):
    assert len(checker.problems(_page(tmp_path, BROKEN[name]))) == 1


@pytest.mark.parametrize('name', sorted(FINE))
def test_not_found(checker, tmp_path, name):
    assert checker.problems(_page(tmp_path, FINE[name])) == []


def test_main_reports_and_allows(checker, tmp_path, capsys):
    (tmp_path / 'admin').mkdir()
    (tmp_path / 'admin' / 'bad.html').write_text(BROKEN['stray transition'])
    (tmp_path / 'good.html').write_text(FINE['rendered table'])
    assert checker.main([str(tmp_path)]) == 1
    assert 'admin/bad.html: a transition' in capsys.readouterr().out
    assert checker.main(['--allow', 'admin/bad.html', str(tmp_path)]) == 0
    assert checker.main([str(tmp_path / 'missing')]) == 2
