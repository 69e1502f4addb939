"""Devices made outside netlink (runs in the daemon).

* Taps: no netlink request creates a tap; ``/dev/net/tun`` ioctls do
  (TUNSETIFF, then TUNSETPERSIST so it outlives the file descriptor).
* macvtap character nodes: QEMU opens ``/dev/tapN`` (N = the macvtap's
  ifindex). udev normally makes it; where no udev runs (containers, a
  daemon inside a network namespace) we make it from the major:minor
  sysfs publishes.
"""

import errno
import fcntl
import os
import stat
import struct

TUN_PATH = '/dev/net/tun'
# linux/if_tun.h
TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
TUNSETOWNER = 0x400454CC
TUNSETGROUP = 0x400454CE
IFF_TAP = 0x0002
IFF_MULTI_QUEUE = 0x0100
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
# NOTE(vpd): without IFF_TUN_EXCL, TUNSETIFF on an existing tap attaches
# to it instead of failing — a name clash would silently hand us someone
# else's device.
IFF_TUN_EXCL = 0x8000
_IFREQ = struct.Struct('16sH22x')


def tap_flags(multi_queue: bool) -> int:
    """The TUNSETIFF flags for a new tap."""
    # NOTE(vpd): no IFF_VNET_HDR: whoever attaches (QEMU, libvirt with
    # managed='no') sets its own features when it opens the tap.
    flags = IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL
    if multi_queue:
        flags |= IFF_MULTI_QUEUE
    return flags


def create_tap(name: str, multi_queue: bool = False,
               owner: int | None = None,
               owner_group: int | None = None) -> None:
    """Create a persistent tap device.

    :param name: a validated interface name.
    :param multi_queue: set IFF_MULTI_QUEUE (QEMU's ``queues=`` needs it).
    :param owner: uid allowed to attach to it.
    :param owner_group: gid allowed to attach to it.
    :raises OSError: the kernel refused (EBUSY: the name is taken).
    """
    fd = os.open(TUN_PATH, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, _IFREQ.pack(name.encode('ascii'),
                                               tap_flags(multi_queue)))
        if owner is not None:
            fcntl.ioctl(fd, TUNSETOWNER, owner)
        if owner_group is not None:
            fcntl.ioctl(fd, TUNSETGROUP, owner_group)
        fcntl.ioctl(fd, TUNSETPERSIST, 1)
    finally:
        os.close(fd)


def macvtap_dev_number(name: str, index: int,
                       sysfs: str = '/sys') -> int:
    """Read a macvtap's character device number from sysfs.

    :param name: the macvtap's name.
    :param index: its ifindex.
    :returns: the device number (``os.makedev(major, minor)``).
    :raises OSError: sysfs does not show it (ENOENT) or is malformed.
    """
    path = os.path.join(sysfs, 'class', 'net', name, 'macvtap',
                        'tap%d' % index, 'dev')
    with open(path, encoding='ascii') as handle:
        text = handle.read().strip()
    try:
        major, minor = (int(part) for part in text.split(':'))
    except ValueError:
        raise OSError(errno.EINVAL, 'unexpected %s: %r' % (path, text))
    return os.makedev(major, minor)


def ensure_macvtap_node(index: int, rdev: int,
                        dev: str = '/dev') -> tuple[str, bool]:
    """Make ``/dev/tap<index>`` unless a node with that number exists.

    :param index: the macvtap's ifindex.
    :param rdev: its device number (:func:`macvtap_dev_number`).
    :param dev: the device directory.
    :returns: ``(path, created)``.
    :raises OSError: EEXIST when the path is taken by something else (a
        stale node of another device is not ours to replace).
    """
    path = os.path.join(dev, 'tap%d' % index)
    for _attempt in (1, 2):
        try:
            found = os.lstat(path)
        except FileNotFoundError:
            try:
                os.mknod(path, stat.S_IFCHR | 0o600, rdev)
                return path, True
            except FileExistsError:
                # NOTE(vpd): udev won the race; check what it made.
                continue
        if stat.S_ISCHR(found.st_mode) and found.st_rdev == rdev:
            return path, False
        raise OSError(errno.EEXIST, '%s exists and is not device %d:%d' % (
            path, os.major(rdev), os.minor(rdev)))
    raise OSError(errno.EEXIST, '%s appeared and vanished' % path)


def remove_macvtap_node(index: int, rdev: int, dev: str = '/dev') -> bool:
    """Remove ``/dev/tap<index>`` if it is the node of device ``rdev``.

    :returns: whether a node was removed.
    """
    path = os.path.join(dev, 'tap%d' % index)
    try:
        found = os.lstat(path)
        if stat.S_ISCHR(found.st_mode) and found.st_rdev == rdev:
            os.unlink(path)
            return True
    except FileNotFoundError:
        pass
    return False
