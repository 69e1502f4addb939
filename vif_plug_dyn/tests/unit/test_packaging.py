"""What the package declares agrees with what is tested: data folders,
Python versions, the os-vif extra and the lower bounds (lower-constraints)."""

import configparser
import os
import re

import pytest

import vif_plug_dyn

PACKAGE = os.path.dirname(os.path.abspath(vif_plug_dyn.__file__))
ROOT = os.path.dirname(PACKAGE)
#: Test requirements the unit tests do not run (other tox environments
#: do): lower-constraints.txt does not pin them.
NOT_PINNED = {'coverage', 'ruff', 'mypy'}
REQUIREMENT = re.compile(
    r'^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*'
    r'(?P<spec>[^#;]*?)\s*(?:;(?P<marker>[^#]*))?\s*(?:#.*)?$')

source_tree = pytest.mark.skipif(
    not os.path.exists(os.path.join(ROOT, 'setup.cfg')),
    reason='needs the source tree (setup.cfg), not an installed package')


def _normal(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def _requirements(filename):
    """``{normalised name: (name, spec)}`` of a requirements file."""
    out = {}
    with open(os.path.join(ROOT, filename), encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(('#', '-')):
                continue
            match = REQUIREMENT.match(line)
            assert match, '%s: cannot read %r' % (filename, line)
            out[_normal(match['name'])] = (match['name'], match['spec'])
    return out


def _lower_bound(filename, name, spec):
    bounds = re.findall(r'>=\s*([0-9][^,\s]*)', spec)
    assert len(bounds) == 1, (
        '%s: %s has no single ">=" lower bound (%r)' % (filename, name,
                                                       spec))
    return bounds[0]


def _setup_cfg():
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, 'setup.cfg'), encoding='utf-8')
    return config


def _undeclared_packages(top):
    """Folders with files that setuptools would take for packages missing
    from ``packages``: a folder without ``__init__.py`` whose path below
    the nearest real package starts with a Python identifier (setuptools'
    build_py warns about each one at every build)."""
    found = []
    for directory, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d != '__pycache__')
        if '__init__.py' in files or not files:
            continue
        package = directory
        while package != top and not os.path.exists(
                os.path.join(package, '__init__.py')):
            package = os.path.dirname(package)
        first = os.path.relpath(directory, package).split(os.sep)[0]
        if first.isidentifier():
            found.append(os.path.relpath(directory, os.path.dirname(top)))
    return found


def test_undeclared_packages_found(tmp_path):
    pkg = tmp_path / 'pkg'
    for folder in ('data/defs', 'data-files/defs', 'sub'):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / 'a.xml').write_text('<a/>')
    (pkg / '__init__.py').write_text('')
    (pkg / 'sub' / '__init__.py').write_text('')
    assert _undeclared_packages(str(pkg)) == [
        os.path.join('pkg', 'data', 'defs')]


@source_tree
def test_every_data_folder_is_package_data():
    assert _undeclared_packages(PACKAGE) == [], (
        'name data folders so that they do not look like Python packages '
        '(for example golden-data/, not golden/): setuptools warns that '
        'each is missing from "packages"')


@source_tree
def test_python_versions_agree():
    metadata = _setup_cfg()['metadata']
    minimum = re.fullmatch(r'>=\s*3\.(\d+)', metadata['python_requires'])
    assert minimum, metadata['python_requires']
    versions = sorted(
        int(m) for m in re.findall(r'Programming Language :: Python :: 3\.'
                                   r'(\d+)\s*$', metadata['classifier'],
                                   re.MULTILINE))
    assert versions and versions[0] == int(minimum[1])
    with open(os.path.join(ROOT, 'pyproject.toml'), encoding='utf-8') as f:
        text = f.read()
    assert 'target-version = "py3%s"' % minimum[1] in text
    assert 'python_version = "3.%s"' % minimum[1] in text


@source_tree
def test_os_vif_extra_matches_the_test_requirement():
    extra = _setup_cfg()['extras']['os-vif'].strip()
    name, spec = _requirements('test-requirements.txt')['os-vif']
    assert extra == name + spec


@source_tree
def test_lower_constraints_pin_every_lower_bound():
    wanted = {}
    for filename in ('requirements.txt', 'test-requirements.txt'):
        for key, (name, spec) in _requirements(filename).items():
            bound = _lower_bound(filename, name, spec)
            if key not in NOT_PINNED:
                wanted[key] = '%s==%s' % (name, bound)
    pinned = {key: name + spec for key, (name, spec)
              in _requirements('lower-constraints.txt').items()}
    assert pinned == wanted
