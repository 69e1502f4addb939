"""Shared helpers of the host interface tests."""

import os
import shutil
import subprocess

import pytest

from vif_plug_dyn.hostif import model

# NOTE(vpd): the directory name is not a Python identifier on purpose: a
# data directory named like one is an importable (namespace) package to
# setuptools, which warns at every build that it is missing from
# ``packages``. Under golden-data/ any file or folder is plain package
# data (see tests/unit/test_packaging.py).
GOLDEN = os.path.join(os.path.dirname(__file__), 'golden-data')
DEFS = os.path.join(GOLDEN, 'defs')
#: Set to 1 to rewrite the golden backend files from the current code.
REGEN = os.environ.get('VPD_REGEN_GOLDEN') == '1'


def cases() -> list[str]:
    """Names of the golden definitions (file names without .xml)."""
    return sorted(f[:-4] for f in os.listdir(DEFS) if f.endswith('.xml'))


def case_text(name: str) -> str:
    with open(os.path.join(DEFS, name + '.xml'), encoding='utf-8') as f:
        return f.read()


def case(name: str) -> model.HostInterface:
    return model.HostInterface.from_xml(case_text(name), source=name)


def virt_xml_validate(tmp_path, text: str) -> None:
    """Validate an <interface> document with libvirt's own schema."""
    binary = shutil.which('virt-xml-validate')
    if binary is None:
        pytest.skip('virt-xml-validate not installed (Debian package '
                    'libvirt-clients)')
    path = tmp_path / 'interface.xml'
    path.write_text(text, encoding='utf-8')
    result = subprocess.run([binary, str(path), 'interface'],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
