"""``iface apply`` and ``iface diff`` through the command line, on real
devices in private namespaces, with both persistent backends writing
under a scratch root."""

import json
import os

import pytest

from vif_plug_dyn.tests.functional import hostif_support as support

pytestmark = support.MARKS
ns = support.ns
daemon = support.daemon

DOCUMENT = """<interfaces>
  <interface type='ethernet' name='v2'>
    <start mode='onboot'/>
    <mtu size='1400'/>
    <protocol family='ipv6'><ip address='2001:db8:2::2' prefix='64'/>
    </protocol>
  </interface>
  <interface type='bridge' name='br0'>
    <start mode='onboot'/>
    <mtu size='9000'/>
    <protocol family='ipv4'><ip address='198.51.100.1' prefix='24'/>
    </protocol>
    <bridge stp='off' delay='0'>
      <interface type='ethernet' name='v0'/>
    </bridge>
  </interface>
</interfaces>"""


@pytest.fixture
def config(daemon, ns, tmp_path):
    path = support.config_file(tmp_path, ns)
    with open(path, 'a') as handle:
        # oslo.config merges a section given twice.
        handle.write('[vif_plug_dyn]\ninterface_backends = keyfile,'
                     'ifupdown\ninterface_root = %s\n' % (tmp_path / 'root'))
    support.veth(ns, 'v0', 'v1')
    support.veth(ns, 'v2', 'v3')
    ns.run(['ip', 'link', 'set', 'v0', 'alias', 'uplink-a'])
    return path


def _files(tmp_path):
    out = {}
    for top in ('ifaces', 'root'):
        for base, _dirs, names in os.walk(tmp_path / top):
            for name in names:
                path = os.path.join(base, name)
                with open(path, 'rb') as handle:
                    out[path] = handle.read()
    return out


def _document(tmp_path, text, name='doc.xml'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_dry_run_changes_nothing(config, ns, tmp_path):
    doc = _document(tmp_path, DOCUMENT)
    before, files = support.full_dump(ns), _files(tmp_path)
    result = support.cli(config, 'iface', 'apply', '--dry-run', doc)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan['applied'] is False and plan['changed'] is True
    assert [d['name'] for d in plan['definitions']] == ['br0', 'v2']
    actions = {d['device']: d['action'] for d in plan['devices']}
    assert actions == {'v0': 'adopt', 'br0': 'create', 'v2': 'adopt'}
    fields = {(d['device'], f['field']): [f['from'], f['to']]
              for d in plan['devices'] for f in d['fields']}
    assert fields[('v0', 'mtu/@size')] == [1500, 9000]
    assert fields[('v0', 'master')] == [None, 'br0']
    assert fields[('v2', 'mtu/@size')] == [1500, 1400]
    written = {os.path.relpath(f['path'], tmp_path): f['action']
               for f in plan['files']}
    assert written == {
        'ifaces/br0.xml': 'create', 'ifaces/v2.xml': 'create',
        'root/etc/network/interfaces.d/br0': 'create',
        'root/etc/network/interfaces.d/v2': 'create',
        'root/etc/NetworkManager/system-connections/br0.nmconnection':
            'create',
        'root/etc/NetworkManager/system-connections/v0.nmconnection':
            'create',
        'root/etc/NetworkManager/system-connections/v2.nmconnection':
            'create'}
    support.assert_same(before, support.full_dump(ns))
    assert _files(tmp_path) == files


def test_apply_then_diff_then_absent(config, ns, tmp_path):
    doc = _document(tmp_path, DOCUMENT)
    result = support.cli(config, 'iface', 'apply', doc)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)['applied'] is True
    assert support.link(ns, 'v0')['master'] == 'br0'
    assert support.link(ns, 'br0')['mtu'] == 9000
    assert support.link(ns, 'v2')['mtu'] == 1400
    assert support.addresses(ns, 'v2') == {'2001:db8:2::2/64'}
    for name in ('br0', 'v2'):
        diff = json.loads(support.cli(config, 'iface', 'diff', name).stdout)
        assert diff['in_sync'], diff
    # Applying the same document again plans no change.
    again = json.loads(support.cli(config, 'iface', 'apply', '--dry-run',
                                   doc).stdout)
    assert again['changed'] is False
    # Drift: someone changes the live MTU and edits a persisted file.
    ns.run(['ip', 'link', 'set', 'v2', 'mtu', '1300'])
    ifupdown = tmp_path / 'root' / 'etc' / 'network' / 'interfaces.d' / 'v2'
    ifupdown.write_text(ifupdown.read_text().replace('mtu 1400',
                                                     'mtu 1280'))
    diff = json.loads(support.cli(config, 'iface', 'diff', 'v2').stdout)
    assert diff['in_sync'] is False
    assert diff['live'] == [{'device': 'v2', 'element': '/interface',
                             'field': 'mtu/@size', 'definition': 1400,
                             'live': 1300}]
    states = {p['backend']: p['state'] for p in diff['persisted']}
    assert states == {'networkmanager': 'same', 'ifupdown': 'differs'}
    # Applying again repairs both.
    assert support.cli(config, 'iface', 'apply', doc).returncode == 0
    assert json.loads(support.cli(config, 'iface', 'diff', 'v2').stdout)[
        'in_sync']
    # absent: br0 goes, v0 is given back to the operator.
    gone = _document(tmp_path, "<interfaces><absent name='br0'/>"
                               "</interfaces>", 'gone.xml')
    assert support.cli(config, 'iface', 'apply', gone).returncode == 0
    assert not support.exists(ns, 'br0')
    assert support.link(ns, 'v0')['ifalias'] == 'uplink-a'
    assert not (tmp_path / 'ifaces' / 'br0.xml').exists()
    assert not (tmp_path / 'root' / 'etc' / 'network' / 'interfaces.d' /
                'br0').exists()


def test_a_document_failing_half_way_leaves_nothing(config, ns, tmp_path):
    """br0 is applied first and works; v2 then fails in the kernel (an
    IPv6 address on a device whose MTU is below 1280): the namespace,
    the definitions and the persisted files are as before."""
    doc = _document(tmp_path, DOCUMENT.replace("<mtu size='1400'/>",
                                               "<mtu size='1000'/>"))
    ns.run(['ip', 'address', 'add', '192.0.2.7/24', 'dev', 'v2'])
    before, files = support.full_dump(ns), _files(tmp_path)
    result = support.cli(config, 'iface', 'apply', doc)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines()
              if line.startswith('error: ')]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(
        'error: Start of host interface v2 failed at step ')
    assert errors[0].endswith(
        'nothing of %s was applied: the host and the definitions were put '
        'back as they were' % doc)
    support.assert_same(before, support.full_dump(ns))
    assert _files(tmp_path) == files
    assert json.loads(support.cli(config, 'iface', 'list').stdout) == []


def test_vlan_on_a_bond_in_dependency_order(config, ns, tmp_path):
    support.kernel_has(ns, 'bonding driver (link kind bond)', 'probe0',
                       'type', 'bond')
    support.kernel_has(ns, '802.1Q VLAN support (8021q, link kind vlan)',
                       'link', 'v0', 'name', 'probe0', 'type', 'vlan', 'id',
                       '2')
    doc = _document(tmp_path, """<interfaces>
      <interface type='vlan' name='bond0.5'>
        <vlan tag='5'><interface name='bond0'/></vlan>
      </interface>
      <interface type='bond' name='bond0'>
        <bond mode='active-backup'><miimon freq='100'/>
          <interface type='ethernet' name='v0'/></bond>
      </interface>
    </interfaces>""")
    before = support.full_dump(ns)
    result = support.cli(config, 'iface', 'apply', doc)
    assert result.returncode == 0, result.stderr
    assert support.link(ns, 'bond0.5')['link'] == 'bond0'
    gone = _document(tmp_path, "<interfaces><absent name='bond0.5'/>"
                               "<absent name='bond0'/></interfaces>", 'g')
    assert support.cli(config, 'iface', 'apply', gone).returncode == 0
    support.assert_same(before, support.full_dump(ns))
