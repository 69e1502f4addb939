"""Persistent backends: golden output, atomic writes, foreign files."""

import os
import stat

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn.hostif import model
from vif_plug_dyn.hostif.backends import ifupdown
from vif_plug_dyn.hostif.backends import keyfile
from vif_plug_dyn.tests.unit.hostif import fixtures

BACKENDS = {'keyfile': keyfile.KeyfileBackend,
            'ifupdown': ifupdown.IfupdownBackend}
H = model.HostInterface


def golden_dir(backend, case):
    return os.path.join(fixtures.GOLDEN, backend, case)


def read_tree(directory):
    out = {}
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), encoding='utf-8') as f:
            out[name] = f.read()
    return out


@pytest.mark.parametrize('backend', sorted(BACKENDS))
@pytest.mark.parametrize('case', fixtures.cases())
def test_golden(backend, case, tmp_path):
    iface = fixtures.case(case)
    written = BACKENDS[backend](str(tmp_path)).write(iface)
    actual = {os.path.basename(p): open(p, encoding='utf-8').read()
              for p in written}
    expected_dir = golden_dir(backend, case)
    if fixtures.REGEN:
        os.makedirs(expected_dir, exist_ok=True)
        for name in os.listdir(expected_dir):
            os.unlink(os.path.join(expected_dir, name))
        for name, text in actual.items():
            with open(os.path.join(expected_dir, name), 'w',
                      encoding='utf-8') as f:
                f.write(text)
    assert actual == read_tree(expected_dir)


def test_every_case_has_golden_files_for_every_backend():
    for backend in BACKENDS:
        assert sorted(os.listdir(os.path.join(fixtures.GOLDEN, backend))) \
            == fixtures.cases()


def test_paths_and_modes(tmp_path):
    iface = fixtures.case('bond')
    nm = keyfile.KeyfileBackend(str(tmp_path))
    ifu = ifupdown.IfupdownBackend(str(tmp_path))
    nm_dir = tmp_path / 'etc/NetworkManager/system-connections'
    assert nm.write(iface) == [str(nm_dir / n) for n in (
        'bond0.nmconnection', 'eth3.nmconnection', 'eth4.nmconnection')]
    assert ifu.write(iface) == [str(tmp_path /
                                    'etc/network/interfaces.d/bond0')]
    for path in nm.paths(iface):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(ifu.paths(iface)[0]).st_mode) == 0o644
    leftovers = [n for n in os.listdir(nm_dir) if n.startswith('.')]
    assert leftovers == []


@pytest.mark.parametrize('backend', sorted(BACKENDS))
def test_rewrite_own_file(backend, tmp_path):
    impl = BACKENDS[backend](str(tmp_path))
    impl.write(fixtures.case('bond'))
    changed = H.from_xml(fixtures.case_text('bond').replace("'9000'",
                                                            "'1500'"))
    paths = impl.write(changed, previous=fixtures.case('bond'))
    assert any('1500' in open(p).read() for p in paths)


@pytest.mark.parametrize('backend', sorted(BACKENDS))
def test_refuses_to_overwrite_foreign_file(backend, tmp_path):
    impl = BACKENDS[backend](str(tmp_path))
    iface = fixtures.case('bond')
    victim = impl.paths(iface)[-1]
    os.makedirs(os.path.dirname(victim))
    with open(victim, 'w') as f:
        f.write('# written by the admin\n')
    with pytest.raises(exception.ForeignFile) as info:
        impl.write(iface)
    assert info.value.kwargs['path'] == victim
    with open(victim) as f:
        assert f.read() == '# written by the admin\n'
    # NOTE(vpd): the check runs before any write: no other file appeared.
    assert os.listdir(os.path.dirname(victim)) == [
        os.path.basename(victim)]


@pytest.mark.parametrize('backend', sorted(BACKENDS))
def test_refuses_to_delete_foreign_file(backend, tmp_path):
    impl = BACKENDS[backend](str(tmp_path))
    iface = fixtures.case('bond')
    paths = impl.write(iface)
    with open(paths[0], 'w') as f:
        f.write('[connection]\nid=mine\n')
    with pytest.raises(exception.ForeignFile) as info:
        impl.remove(iface)
    assert 'delete' in str(info.value)
    assert all(os.path.exists(p) for p in paths)


@pytest.mark.parametrize('backend', sorted(BACKENDS))
def test_symlink_is_foreign(backend, tmp_path):
    impl = BACKENDS[backend](str(tmp_path))
    iface = fixtures.case('ethernet-bare')
    target = tmp_path / 'elsewhere'
    impl.write(iface)
    target.write_text(open(impl.paths(iface)[0]).read())
    os.unlink(impl.paths(iface)[0])
    os.symlink(target, impl.paths(iface)[0])
    with pytest.raises(exception.ForeignFile):
        impl.write(iface)
    with pytest.raises(exception.ForeignFile):
        impl.remove(iface)


@pytest.mark.parametrize('backend', sorted(BACKENDS))
def test_remove_own_files(backend, tmp_path):
    impl = BACKENDS[backend](str(tmp_path))
    iface = fixtures.case('bridge')
    paths = impl.write(iface)
    os.unlink(paths[0])
    assert impl.remove(iface) == paths[1:]
    assert not any(os.path.exists(p) for p in paths)
    assert impl.remove(iface) == []


def test_redefine_drops_stale_member_files(tmp_path):
    impl = keyfile.KeyfileBackend(str(tmp_path))
    old = fixtures.case('bond')
    impl.write(old)
    new = H(kind='bond', name='bond0', bond_mode='active-backup',
            members=(H(kind='ethernet', name='eth4'),
                     H(kind='ethernet', name='eth5')))
    impl.write(new, previous=old)
    assert sorted(os.listdir(impl.directory)) == [
        'bond0.nmconnection', 'eth4.nmconnection', 'eth5.nmconnection']


def test_redefine_refuses_when_a_stale_file_became_foreign(tmp_path):
    impl = keyfile.KeyfileBackend(str(tmp_path))
    old = fixtures.case('bond')
    impl.write(old)
    stale = os.path.join(impl.directory, 'eth3.nmconnection')
    with open(stale, 'w') as f:
        f.write('[connection]\nid=eth3\n')
    new = H(kind='bond', name='bond0', members=(H(kind='ethernet',
                                                  name='eth4'),))
    with pytest.raises(exception.ForeignFile):
        impl.write(new, previous=old)
    assert os.path.exists(stale)


@pytest.mark.parametrize('text, ours', [
    ('[user]\nvif_plug_dyn.managed=br0\n', True),
    ('[connection]\nid=x\n\n[user]\n  vif_plug_dyn.managed = br0\n', True),
    ('[connection]\nvif_plug_dyn.managed=br0\n', False),
    ('# [user]\n# vif_plug_dyn.managed=br0\n', False),
    ('[user]\nvif_plug_dyn.managed.not=1\n', False),
    ('', False),
])
def test_keyfile_marker(text, ours):
    assert keyfile.KeyfileBackend('/nonexistent').is_ours(text) is ours


@pytest.mark.parametrize('text, ours', [
    ('# vif_plug_dyn: managed file for host interface definition x.\n',
     True),
    ('auto eth0\n# vif_plug_dyn: managed file\n', False),
    ('', False),
])
def test_ifupdown_marker(text, ours):
    assert ifupdown.IfupdownBackend('/nonexistent').is_ours(text) is ours


def test_keyfile_forward_delay_is_clamped_to_networkmanager_range():
    for delay, expected in ((0.0, '2'), (15.4, '15'), (30.0, '30')):
        device = H(kind='bridge', name='br0', delay=delay).devices()[0]
        assert 'forward-delay=%s\n' % expected in \
            keyfile.render_device(device)


def test_start_modes():
    for mode, auto, line in (('onboot', 'true', 'auto eth0'),
                             ('hotplug', 'true', 'allow-hotplug eth0'),
                             ('none', 'false', None),
                             (None, 'false', None)):
        device = H(kind='ethernet', name='eth0', start_mode=mode).devices()[0]
        assert 'autoconnect=%s\n' % auto in keyfile.render_device(device)
        lines = ifupdown.render_device(device)
        if line is None:
            assert not [x for x in lines if x.startswith(('auto',
                                                          'allow-'))]
        else:
            assert lines[0] == line


def test_bridge_without_stp_attribute_is_written_with_stp_off():
    # NetworkManager would turn STP on; the kernel and libvirt leave it off.
    device = H(kind='bridge', name='br0').devices()[0]
    assert '[bridge]\nstp=false\n' in keyfile.render_device(device)
    assert '    bridge_stp off' in ifupdown.render_device(device)
