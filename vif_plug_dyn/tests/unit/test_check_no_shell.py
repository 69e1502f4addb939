"""The pep8 check that nothing runs a shell (tools/check_no_shell.py)
catches every pattern it claims to, and nothing else."""

import importlib.util
import os
import textwrap

import pytest

_PATH = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'tools',
                     'check_no_shell.py')


@pytest.fixture(scope='module')
def checker():
    if not os.path.exists(_PATH):
        pytest.skip('tools/check_no_shell.py is not in this tree')
    spec = importlib.util.spec_from_file_location('check_no_shell', _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CAUGHT = [
    'import subprocess\nsubprocess.run("ls", shell=True)',
    'import subprocess\nsubprocess.Popen(["ls"], shell=1)',
    'import subprocess\nflag = True\nsubprocess.call("ls", shell=flag)',
    'import subprocess as sp\nsp.check_output("ls", shell=True)',
    'from subprocess import run\nrun("ls", shell=True)',
    'import os\nos.system("ls")',
    'import os\nos.popen("ls")',
    'import os as o\no.system("ls")',
    'from os import system\nsystem("ls")',
    'from os import popen as p\np("ls")',
    'import subprocess\nsubprocess.getoutput("ls")',
    'import subprocess\nsubprocess.getstatusoutput("ls")',
    'from subprocess import getoutput\ngetoutput("ls")',
    'import asyncio\nasyncio.create_subprocess_shell("ls")',
    'import pty\npty.spawn("sh")',
    'import os\nos.execlp("sh", "sh", "-c", "ls")',
    'import os\nos.execv("/bin/sh", ["sh", "-c", "ls"])',
    'import os\nos.spawnlp(os.P_WAIT, "bash", "bash", "-c", "ls")',
    'def f(run):\n    run(["x"], shell="yes")',
]
CLEAN = [
    'import subprocess\nsubprocess.run(["ip", "link"], check=True)',
    'import subprocess\nsubprocess.run(["ip", "link"], shell=False)',
    'import os\nos.execvp("ip", ["ip", "link"])',
    'import os\nos.path.join("a", "b")',
    'system = print\nsystem("not os.system")',
    'import asyncio\nasyncio.create_subprocess_exec("ip", "link")',
]


@pytest.mark.parametrize('source', CAUGHT)
def test_each_shell_pattern_is_caught(checker, source):
    found = checker.problems_in(source)
    assert len(found) == 1, found


@pytest.mark.parametrize('source', CLEAN)
def test_clean_code_passes(checker, source):
    assert checker.problems_in(source) == []


def test_main_walks_directories_and_fails(checker, tmp_path, capsys):
    (tmp_path / 'pkg').mkdir()
    (tmp_path / 'pkg' / 'ok.py').write_text(CLEAN[0])
    (tmp_path / 'pkg' / 'bad.py').write_text(textwrap.dedent('''
        import os

        def go():
            os.system('reboot')
    '''))
    assert checker.main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert 'bad.py:5: os.system runs a shell' in out
    assert 'ok.py' not in out
    (tmp_path / 'pkg' / 'bad.py').unlink()
    assert checker.main([str(tmp_path)]) == 0


def test_the_tree_is_clean(checker):
    root = os.path.join(os.path.dirname(_PATH), '..')
    assert checker.main([os.path.join(root, 'vif_plug_dyn'),
                         os.path.join(root, 'tools')]) == 0
