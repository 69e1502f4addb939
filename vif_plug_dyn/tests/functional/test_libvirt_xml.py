"""Generated XML passes libvirt's own schemas (``virt-xml-validate``).

These tests run libvirt's tools (Debian ``libvirt-clients``, which calls
``xmllint`` from ``libxml2-utils``) against libvirt's RELAX NG schemas.
They need no root and change nothing on the host; they live here rather
than with the unit tests because they depend on binaries and schema files
outside Python, and skip (naming what is missing) without them.

``virt-xml-validate`` has no schema for a lone domain ``<interface>``:
its ``interface`` schema is the *host* interface document (netcf), and
the ``domain`` schema only starts at ``<domain>``. So each interface is
checked twice: wrapped in a minimal domain with ``virt-xml-validate FILE
domain``, and on its own with ``xmllint --relaxng`` and a three-line
grammar that includes libvirt's ``domainoverrides.rng`` and starts at its
``interface`` definition — libvirt's rules, nothing of ours.
"""

import os
import shutil
import subprocess

import pytest

from vif_plug_dyn.tests.unit.virt import samples
from vif_plug_dyn.tests.unit.virt import test_libvirt_domain as domain_tests
from vif_plug_dyn.virt.libvirt import config
from vif_plug_dyn.virt.libvirt import domain
from vif_plug_dyn.virt.libvirt import vif

SCHEMA_DIRS = ('/usr/share/libvirt/schemas',
               '/usr/local/share/libvirt/schemas')
CASES = samples.cases()
CONVERTER = vif.EndpointToInterface()

_INTERFACE_GRAMMAR = """<?xml version="1.0"?>
<grammar xmlns="http://relaxng.org/ns/structure/1.0"
         datatypeLibrary="http://www.w3.org/2001/XMLSchema-datatypes">
  <start><ref name="interface"/></start>
  <include href="%s/domainoverrides.rng"/>
</grammar>
"""


def _run(argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.fixture(scope='module')
def schema_dir():
    for path in SCHEMA_DIRS:
        if os.path.exists(os.path.join(path, 'domain.rng')):
            return path
    pytest.skip('libvirt schemas not found in %s (Debian libvirt-clients '
                'or libvirt-daemon)' % ', '.join(SCHEMA_DIRS))


@pytest.fixture(scope='module')
def validator(tmp_path_factory, schema_dir):
    """``validate(xml, schema)`` -> (ok, output) through virt-xml-validate.
    """
    if shutil.which('virt-xml-validate') is None:
        pytest.skip('virt-xml-validate is not installed (Debian '
                    'libvirt-clients)')
    if shutil.which('xmllint') is None:
        pytest.skip('xmllint is not installed (Debian libxml2-utils); '
                    'virt-xml-validate needs it')
    directory = tmp_path_factory.mktemp('xml')
    counter = iter(range(10 ** 6))

    def validate(xml, schema='domain'):
        path = directory / ('doc%d.xml' % next(counter))
        path.write_text(xml)
        result = _run(['virt-xml-validate', str(path), schema])
        return result.returncode == 0, result.stdout + result.stderr
    return validate


@pytest.fixture(scope='module')
def interface_validator(tmp_path_factory, schema_dir):
    """``validate(interface_xml)`` against libvirt's interface grammar."""
    if shutil.which('xmllint') is None:
        pytest.skip('xmllint is not installed (Debian libxml2-utils)')
    directory = tmp_path_factory.mktemp('iface')
    grammar = directory / 'interface.rng'
    grammar.write_text(_INTERFACE_GRAMMAR % schema_dir)
    counter = iter(range(10 ** 6))

    def validate(xml):
        path = directory / ('iface%d.xml' % next(counter))
        path.write_text(xml)
        result = _run(['xmllint', '--noout', '--relaxng', str(grammar),
                       str(path)])
        return result.returncode == 0, result.stdout + result.stderr
    return validate


@pytest.mark.parametrize('name,endpoint,options', CASES,
                         ids=samples.ids(CASES))
def test_interface_in_a_domain_validates(validator, name, endpoint,
                                         options):
    iface = CONVERTER.build(endpoint, options)
    ok, output = validator(domain.new_domain_xml('v-' + name, [iface]))
    assert ok, output


@pytest.mark.parametrize('name,endpoint,options', CASES,
                         ids=samples.ids(CASES))
def test_lone_interface_validates(interface_validator, name, endpoint,
                                  options):
    text = CONVERTER.build(endpoint, options).to_xml(pretty=True)
    ok, output = interface_validator(text)
    assert ok, output


def test_full_domain_with_every_type_validates(validator):
    ifaces = []
    for slot, (_name, endpoint, options) in enumerate(CASES, start=3):
        iface = CONVERTER.build(endpoint, options)
        iface.guest_address = config.AddressConfig.from_pci(
            '0000:00:%02x.0' % slot)
        ifaces.append(iface)
    for domain_type in ('qemu', 'kvm', 'test'):
        ok, output = validator(domain.new_domain_xml('all', ifaces,
                                                     domain_type))
        assert ok, output


def test_duplicate_links_fixed_by_set_link_state(validator):
    # The unit tests' sample domain has two <link> in one interface, which
    # libvirt's schema refuses (libvirt itself would use the first);
    # setting the link state leaves one.
    ok, _output = validator(domain_tests.DOMAIN)
    assert not ok
    ok, output = validator(domain.set_link_state(
        domain_tests.DOMAIN, domain_tests.MAC2, True))
    assert ok, output


def test_edited_domains_validate(validator):
    base_xml = domain.set_link_state(domain_tests.DOMAIN, domain_tests.MAC2,
                                     False)
    ok, output = validator(base_xml)
    assert ok, 'the sample domain itself: ' + output
    edits = {
        'add': domain.add_interface(base_xml, CONVERTER.build(
            domain_tests._bridge(domain_tests.MAC4))),
        'replace': domain.replace_interface(base_xml, CONVERTER.build(
            domain_tests._bridge(domain_tests.MAC1))),
        'remove': domain.remove_interface(base_xml, domain_tests.MAC2),
        'link': domain.set_link_state(base_xml, domain_tests.MAC3, False),
        'migration': domain.migration_xml(base_xml, domain_tests._dest()),
    }
    for name, text in edits.items():
        ok, output = validator(text)
        assert ok, '%s: %s' % (name, output)


def test_device_xml_for_live_calls_validates(interface_validator):
    base_xml = domain.set_link_state(domain_tests.DOMAIN, domain_tests.MAC2,
                                     False)
    for text in (
            domain.interface_device_xml(base_xml, domain_tests.MAC3),
            domain.link_state_device_xml(base_xml, domain_tests.MAC2, True),
            domain.source_update_device_xml(
                base_xml, domain_tests._bridge(domain_tests.MAC1))):
        ok, output = interface_validator(text)
        assert ok, output


@pytest.mark.parametrize('bad', [
    "<interface type='bridge'><mac address='52:54:00:00:00:01'/>"
    "<source bridge='br0'/><bogus/></interface>",
    "<interface type='direct'><mac address='52:54:00:00:00:01'/>"
    "<source dev='eth0' mode='loud'/></interface>",
    "<interface type='hostdev'><mac address='52:54:00:00:00:01'/>"
    "<source><address type='pci' domain='0x0000' bus='0x03' "
    "slot='0x10' function='0x9'/></source></interface>",
])
def test_validators_can_fail(validator, interface_validator, bad):
    ok, _output = interface_validator(bad)
    assert not ok
    wrapped = domain.new_domain_xml('bad', []).replace(
        '<devices/>', '<devices>%s</devices>' % bad)
    assert bad in wrapped
    ok, _output = validator(wrapped)
    assert not ok
