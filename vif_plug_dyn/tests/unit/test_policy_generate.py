"""``vif-plug-dyn policy generate``: the policy derived from definitions."""

import json
import os
import types

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn import opts
from vif_plug_dyn.cmd import cli
from vif_plug_dyn.cmd import policy as policy_cmd
from vif_plug_dyn.privsep import policy as policy_mod

NETWORKS = {
    'red': "<network type='bridge'><name>red</name>"
           "<bridge name='br-red'/><uplink dev='eth1'/></network>",
    'tagged': "<network type='bridge'><name>tagged</name>"
              "<bridge name='br-t' managed='no'/>"
              "<uplink dev='eth5' vlan='42'/></network>",
    'blue': "<network type='direct'><name>blue</name>"
            "<forward mode='passthrough'><interface dev='eth2'/>"
            "<interface dev='eth6'/></forward></network>",
    'fast': "<network type='hostdev'><name>fast</name>"
            "<forward mode='hostdev'><pf dev='ens1f0'/></forward>"
            "</network>",
    'ovs': "<network type='openvswitch'><name>ovs</name>"
           "<bridge name='br-int'/></network>",
}
INTERFACES = {
    'eth1': "<interface type='ethernet' name='eth1'>"
            "<mac address='52:54:00:00:00:01'/></interface>",
    'br0': "<interface type='bridge' name='br0'>"
           "<protocol family='ipv4'><ip address='192.0.2.1' prefix='24'/>"
           "</protocol><bridge><interface type='ethernet' name='eth3'/>"
           "<interface type='vlan' name='eth4.7'><vlan tag='7'>"
           "<interface name='eth4'/></vlan></interface></bridge>"
           "</interface>",
    'bond0': "<interface type='bond' name='bond0'><bond mode='active-backup'>"
             "<interface type='ethernet' name='eth7'/>"
             "<interface type='ethernet' name='eth8'/></bond></interface>",
    'lo': "<interface type='ethernet' name='lo'/>",
}


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """Definitions root controls (the ownership check is the daemon's,
    tested with the policy module: here every file passes it but the
    ones a test marks)."""
    untrusted = set()

    def check(path, directory=False):
        if os.path.basename(path) in untrusted:
            raise ValueError('%s: writable by group or others' % path)

    monkeypatch.setattr(policy_mod, 'check_trusted', check)
    for sub, items in (('networks', NETWORKS), ('interfaces', INTERFACES)):
        (tmp_path / sub).mkdir()
        for name, xml in items.items():
            (tmp_path / sub / (name + '.xml')).write_text(xml)
    return types.SimpleNamespace(path=tmp_path, untrusted=untrusted)


def _conf(dirs):
    conf = cli.setup_conf(cli.build_parser().parse_args([
        '--network-dir', str(dirs.path / 'networks'),
        '--interface-dir', str(dirs.path / 'interfaces'), 'policy', 'show']))
    conf.register_opts(opts.privsep_policy_opts, group=opts.PRIVSEP_GROUP)
    conf.set_override('policy_files', [str(dirs.path / 'out' / 'policy.conf')],
                      group=opts.PRIVSEP_GROUP)
    return conf


def test_derived_from_every_kind_of_definition(dirs):
    policy = policy_mod.parse(policy_cmd.generate(_conf(dirs),
                                                  dry_run=True))
    adopt = {
        'eth1': ['state', 'mtu', 'mac', 'master:br-red'],
        'br0': ['state', 'mtu', 'addresses', 'bridge'],
        'eth3': ['state', 'mtu', 'master:br0'],
        'eth4.7': ['state', 'mtu', 'master:br0'],
        'bond0': ['state', 'mtu', 'bond'],
        'eth7': ['state', 'mtu', 'master:bond0'],
        'eth8': ['state', 'mtu', 'master:bond0']}
    assert policy.to_dict() == {
        'adopt': {k: sorted(v) for k, v in sorted(adopt.items())},
        # br0 takes a VLAN the definition creates (the library's device)
        'bridges': ['br-red', 'br-t', 'br0'],
        'lower': {'eth2': ['passthrough'], 'eth4': ['vlan:7'],
                  'eth5': ['vlan:42'], 'eth6': ['passthrough']},
        'vf': ['ens1f0'], 'source': '<string>', 'enforcing': True}


def test_lo_is_never_adoptable_and_untrusted_files_are_skipped(dirs):
    dirs.untrusted.add('blue.xml')
    result = policy_cmd.generate(_conf(dirs), dry_run=True)
    policy = policy_mod.parse(result)
    assert 'lo' not in policy.adopt and 'eth2' not in policy.lower
    assert 'lo is never adoptable' in result
    assert 'blue.xml: ' in result and 'writable' in result


def test_a_broken_definition_is_skipped_by_name(dirs):
    (dirs.path / 'networks' / 'bad.xml').write_text('<network type=')
    text = policy_cmd.generate(_conf(dirs), dry_run=True)
    assert 'bad.xml' in text
    assert 'ens1f0' in policy_mod.parse(text).vf


def test_an_uplink_no_interface_definition_names_is_not_adoptable(dirs):
    (dirs.path / 'interfaces' / 'eth1.xml').unlink()
    policy = policy_mod.parse(policy_cmd.generate(_conf(dirs),
                                                  dry_run=True))
    assert 'eth1' not in policy.adopt and 'br-red' in policy.bridges


def test_written_by_root_only(dirs, monkeypatch):
    monkeypatch.setattr(os, 'geteuid', lambda: 1000)
    with pytest.raises(exception.PolicyNotWritten, match='only root'):
        policy_cmd.generate(_conf(dirs))
    assert not (dirs.path / 'out').exists()


def test_written_and_shown_through_the_cli(dirs, monkeypatch, capsys):
    monkeypatch.setattr(os, 'geteuid', lambda: 0)
    out = dirs.path / 'out' / 'policy.conf'
    args = ['--network-dir', str(dirs.path / 'networks'), '--interface-dir',
            str(dirs.path / 'interfaces'), '--json', 'policy', 'generate',
            '--output', str(out)]
    assert cli.main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary['written'] and summary['policy'] == str(out)
    assert oct(out.stat().st_mode & 0o777) == oct(0o644)
    assert 'ens1f0' in policy_mod.parse(out.read_text()).vf
