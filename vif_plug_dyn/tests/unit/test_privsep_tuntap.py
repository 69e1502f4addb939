"""Tap flags and macvtap character nodes (no privileges needed)."""

import errno
import os
import stat

import pytest

from vif_plug_dyn.privsep import tuntap


def test_tap_flags():
    flags = tuntap.tap_flags(False)
    assert flags & tuntap.IFF_TAP and flags & tuntap.IFF_NO_PI
    assert flags & tuntap.IFF_TUN_EXCL  # never attach to an existing tap
    assert not flags & tuntap.IFF_MULTI_QUEUE
    assert tuntap.tap_flags(True) & tuntap.IFF_MULTI_QUEUE


def _sysfs(tmp_path, name, index, text):
    path = tmp_path / 'class' / 'net' / name / 'macvtap' / ('tap%d' % index)
    path.mkdir(parents=True)
    (path / 'dev').write_text(text)
    return str(tmp_path)


def test_dev_number_from_sysfs(tmp_path):
    root = _sysfs(tmp_path, 'mt0', 12, '241:3\n')
    rdev = tuntap.macvtap_dev_number('mt0', 12, sysfs=root)
    assert (os.major(rdev), os.minor(rdev)) == (241, 3)


def test_dev_number_not_a_macvtap(tmp_path):
    with pytest.raises(FileNotFoundError):
        tuntap.macvtap_dev_number('tap0', 12, sysfs=str(tmp_path))


def test_dev_number_malformed(tmp_path):
    root = _sysfs(tmp_path, 'mt0', 12, 'garbage\n')
    with pytest.raises(OSError) as excinfo:
        tuntap.macvtap_dev_number('mt0', 12, sysfs=root)
    assert excinfo.value.errno == errno.EINVAL


class FakeNodes:
    """os.lstat/os.mknod/os.unlink over a dict (mknod needs privileges)."""

    def __init__(self, monkeypatch):
        self.nodes = {}
        monkeypatch.setattr(tuntap.os, 'lstat', self.lstat)
        monkeypatch.setattr(tuntap.os, 'mknod', self.mknod)
        monkeypatch.setattr(tuntap.os, 'unlink', self.unlink)

    def lstat(self, path):
        if path not in self.nodes:
            raise FileNotFoundError(errno.ENOENT, path)
        mode, rdev = self.nodes[path]
        return os.stat_result((mode, 0, 0, 1, 0, 0, 0, 0, 0, 0)) if \
            rdev is None else _Stat(mode, rdev)

    def mknod(self, path, mode, rdev):
        if path in self.nodes:
            raise FileExistsError(errno.EEXIST, path)
        self.nodes[path] = (mode, rdev)

    def unlink(self, path):
        del self.nodes[path]


class _Stat:
    def __init__(self, mode, rdev):
        self.st_mode, self.st_rdev = mode, rdev


@pytest.fixture
def nodes(monkeypatch):
    return FakeNodes(monkeypatch)


def test_node_made_when_missing(nodes):
    rdev = os.makedev(241, 3)
    assert tuntap.ensure_macvtap_node(12, rdev) == ('/dev/tap12', True)
    mode, made = nodes.nodes['/dev/tap12']
    assert stat.S_ISCHR(mode) and made == rdev
    assert stat.S_IMODE(mode) == 0o600


def test_node_kept_when_udev_made_it(nodes):
    rdev = os.makedev(241, 3)
    nodes.nodes['/dev/tap12'] = (stat.S_IFCHR | 0o660, rdev)
    assert tuntap.ensure_macvtap_node(12, rdev) == ('/dev/tap12', False)


def test_stale_node_of_another_device_refused(nodes):
    nodes.nodes['/dev/tap12'] = (stat.S_IFCHR | 0o600, os.makedev(241, 9))
    with pytest.raises(OSError) as excinfo:
        tuntap.ensure_macvtap_node(12, os.makedev(241, 3))
    assert excinfo.value.errno == errno.EEXIST
    assert nodes.nodes['/dev/tap12'][1] == os.makedev(241, 9)


def test_regular_file_refused(nodes):
    nodes.nodes['/dev/tap12'] = (stat.S_IFREG | 0o644, 0)
    with pytest.raises(OSError):
        tuntap.ensure_macvtap_node(12, os.makedev(241, 3))


def test_remove_only_the_right_node(nodes):
    rdev = os.makedev(241, 3)
    nodes.nodes['/dev/tap12'] = (stat.S_IFCHR | 0o600, os.makedev(241, 9))
    assert tuntap.remove_macvtap_node(12, rdev) is False
    assert '/dev/tap12' in nodes.nodes
    nodes.nodes['/dev/tap12'] = (stat.S_IFCHR | 0o600, rdev)
    assert tuntap.remove_macvtap_node(12, rdev) is True
    assert nodes.nodes == {}
    assert tuntap.remove_macvtap_node(12, rdev) is False
