"""``vif-plug-dyn policy``: derive the privileged helper's policy from the
operator's definitions (a root-run step).

The daemon (:mod:`vif_plug_dyn.privsep.policy`) enforces what this writes:
which devices may be adopted and changed how, which bridges the library's
devices may join, which lower devices may carry macvlan, macvtap and VLAN
devices, which PFs' VFs may be set. It is derived from:

* host interface definitions (``interface_dir``): every device a
  definition names may be adopted, with the changes that definition makes
  (up/down and MTU always; the MAC if it sets one; addresses on its top
  device if it has some; bridge or bond settings for a bridge or bond; the
  master it puts the device in). A VLAN's parent may carry that VLAN; a
  master that takes a device the library creates (a VLAN, a bond) may be
  joined by the library's devices;
* network definitions (``network_dir``): a bridge network's bridge may be
  joined by the library's taps; its uplink, when a host interface
  definition already makes it adoptable, may be enslaved to that bridge;
  a tagged uplink may carry that VLAN; a direct network's pool interfaces
  may carry macvlan/macvtap in the network's mode; a hostdev network's PFs
  may have their VFs configured.

A caller cannot widen it: only root writes the policy, and a definition
file is used only if root controls it alone (the file and every directory
above it belong to root and are not writable by group or others, as the
daemon requires of the policy itself); any other is skipped and named in
the output. ``lo`` is never made adoptable.
"""

import argparse
import datetime
import os
from collections.abc import Iterable
from typing import Any

from oslo_config import cfg

from vif_plug_dyn import exception
from vif_plug_dyn import fileutil
from vif_plug_dyn import networks as networks_mod
from vif_plug_dyn import opts
from vif_plug_dyn.hostif import model
from vif_plug_dyn.privsep import policy as policy_mod

#: Largest definition file read.
MAX_DEFINITION_BYTES = 1024 * 1024
#: Devices never made adoptable, whatever a definition says.
NEVER_ADOPTED = frozenset({'lo'})

Notes = dict[tuple[str, str], list[str]]


class _Builder:
    """Accumulates entries and where each came from."""

    def __init__(self) -> None:
        self.adopt: dict[str, set[str]] = {}
        self.bridges: set[str] = set()
        self.lower: dict[str, set[str]] = {}
        self.vf: set[str] = set()
        self.notes: Notes = {}
        self.skipped: list[str] = []

    def note(self, section: str, name: str, why: str) -> None:
        items = self.notes.setdefault((section, name), [])
        if why not in items:
            items.append(why)

    def allow_adopt(self, name: str, changes: Iterable[str],
                    why: str) -> None:
        if name in NEVER_ADOPTED:
            self.skipped.append('%s: %s is never adoptable' % (why, name))
            return
        self.adopt.setdefault(name, set()).update(changes)
        self.note(policy_mod.ADOPT, name, why)

    def allow_lower(self, name: str, carries: str, why: str) -> None:
        self.lower.setdefault(name, set()).add(carries)
        self.note(policy_mod.LOWER, name, why)

    def allow_bridge(self, name: str, why: str) -> None:
        self.bridges.add(name)
        self.note(policy_mod.BRIDGES, name, why)

    def allow_vf(self, pf: str, why: str) -> None:
        self.vf.add(pf)
        self.note(policy_mod.VF, pf, why)

    def policy(self, source: str) -> policy_mod.Policy:
        return policy_mod.Policy(
            adopt={k: frozenset(v) for k, v in self.adopt.items()},
            bridges=frozenset(self.bridges),
            lower={k: frozenset(v) for k, v in self.lower.items()},
            vf=frozenset(self.vf), source=source)


def add_interface(out: _Builder, iface: model.HostInterface,
                  why: str) -> None:
    """What a host interface definition needs."""
    top = str(iface.name)
    for device in iface.devices():
        settings = device.interface
        changes = {'state', 'mtu'}
        if settings.mac is not None:
            changes.add('mac')
        if device.name == top and (iface.ipv4 is not None or
                                   iface.ipv6 is not None):
            changes.add('addresses')
        if device.kind == model.BRIDGE:
            changes.add('bridge')
        if device.kind == model.BOND:
            changes.add('bond')
        if device.master is not None:
            changes.add(policy_mod.MASTER_PREFIX + device.master)
            if device.kind != model.ETHERNET:
                # NOTE(vpd): a member the definition creates is the
                # library's device, joining a master that may be the
                # operator's (adopted).
                out.allow_bridge(device.master, why)
        out.allow_adopt(device.name, changes, why)
        if device.kind == model.VLAN and settings.parent is not None:
            out.allow_lower(str(settings.parent), 'vlan:%d' % (
                settings.tag or 0), why)


def add_network(out: _Builder, network: networks_mod.Network,
                why: str) -> None:
    """What a network definition needs (after every host interface
    definition: an uplink is enslaved only if one makes it adoptable)."""
    if network.kind == networks_mod.BRIDGE and network.bridge:
        out.allow_bridge(network.bridge, why)
        if network.uplink and network.uplink_vlan:
            out.allow_lower(network.uplink, 'vlan:%d' % network.uplink_vlan,
                            why)
        elif network.uplink and network.uplink in out.adopt:
            out.allow_adopt(network.uplink, {
                policy_mod.MASTER_PREFIX + network.bridge}, why)
    elif network.kind == networks_mod.DIRECT:
        for item in network.interfaces:
            out.allow_lower(item.dev, str(network.mode), why)
    elif network.kind == networks_mod.HOSTDEV:
        for pf in network.pfs:
            out.allow_vf(pf, why)


def _definition_files(directory: str, out: _Builder) -> list[str]:
    if not os.path.isdir(directory):
        return []
    try:
        policy_mod.check_trusted(directory, directory=True)
    except (OSError, ValueError) as exc:
        out.skipped.append('%s: %s' % (directory, exc))
        return []
    return [os.path.join(directory, entry)
            for entry in sorted(os.listdir(directory))
            if entry.endswith('.xml')]


def _read_trusted(path: str, out: _Builder) -> bytes | None:
    try:
        policy_mod.check_trusted(path)
        with open(path, 'rb') as handle:
            data = handle.read(MAX_DEFINITION_BYTES + 1)
    except (OSError, ValueError) as exc:
        out.skipped.append('%s: %s' % (path, exc))
        return None
    if len(data) > MAX_DEFINITION_BYTES:
        out.skipped.append('%s: larger than %d bytes' % (
            path, MAX_DEFINITION_BYTES))
        return None
    return data


def derive(conf: cfg.ConfigOpts) -> _Builder:
    """Read the definitions root controls and derive the policy.

    :param conf: the configuration (``network_dir``, ``interface_dir``).
    :returns: the entries, their origins and the files skipped.
    """
    out = _Builder()
    group = conf[opts.GROUP]
    for path in _definition_files(group.interface_dir, out):
        data = _read_trusted(path, out)
        if data is None:
            continue
        try:
            iface = model.HostInterface.from_xml(data, source=path)
        except exception.VifPlugDynException as exc:
            out.skipped.append('%s: %s' % (path, exc))
            continue
        add_interface(out, iface, 'host interface %s (%s)' % (iface.name,
                                                              path))
    for path in _definition_files(group.network_dir, out):
        data = _read_trusted(path, out)
        if data is None:
            continue
        try:
            network = networks_mod.Network.from_xml(data, source=path)
        except exception.VifPlugDynException as exc:
            out.skipped.append('%s: %s' % (path, exc))
            continue
        add_network(out, network, 'network %s (%s)' % (network.name,
                                                       path))
    return out


def render(conf: cfg.ConfigOpts, built: _Builder) -> str:
    """The policy file's text."""
    group = conf[opts.GROUP]
    header = [
        'vif_plug_dyn privileged helper policy, written by',
        '"vif-plug-dyn policy generate" at %s' % datetime.datetime.now(
            datetime.UTC).strftime('%Y-%m-%dT%H:%M:%SZ'),
        'from %s and %s.' % (group.network_dir, group.interface_dir),
        'It is rewritten each time: keep hand-written entries in another',
        'file listed in [vif_plug_dyn_privileged] policy_files.']
    if built.skipped:
        header += ['', 'Not used:'] + ['  %s' % s for s in built.skipped]
    return policy_mod.dump(built.policy('<generated>'), header, built.notes)


def _summary(built: _Builder, path: str) -> dict[str, Any]:
    policy = built.policy(path)
    return {'policy': path, 'adopt': sorted(policy.adopt),
            'bridges': sorted(policy.bridges), 'lower': sorted(policy.lower),
            'vf': sorted(policy.vf), 'skipped': list(built.skipped)}


def generate(conf: cfg.ConfigOpts, output: str | None = None,
             dry_run: bool = False) -> dict[str, Any] | str:
    """``policy generate``: write the first of ``policy_files`` (or
    ``output``).

    :returns: what was written (or, with ``dry_run``, the text).
    :raises PolicyNotWritten: not root, or the file would not be trusted
        by the daemon (a directory root does not control alone).
    """
    conf.register_opts(opts.privsep_policy_opts, group=opts.PRIVSEP_GROUP)
    paths = list(conf[opts.PRIVSEP_GROUP].policy_files or [])
    path = output or (paths[0] if paths else None)
    built = derive(conf)
    text = render(conf, built)
    if dry_run:
        return text
    if path is None:
        raise exception.PolicyNotWritten(
            path='-', reason='no [vif_plug_dyn_privileged] policy_files '
                             'and no --output')
    if os.geteuid() != 0:
        raise exception.PolicyNotWritten(
            path=path, reason='only root writes the privileged helper '
                              'policy (use --dry-run to see it)')
    try:
        fileutil.atomic_write(path, text, mode=0o644)
        policy_mod.check_trusted(path)
    except (OSError, ValueError) as exc:
        raise exception.PolicyNotWritten(path=path, reason=str(exc))
    result = _summary(built, path)
    result['written'] = True
    return result


def show(conf: cfg.ConfigOpts) -> dict[str, Any]:
    """``policy show``: the policy a daemon started now would enforce."""
    conf.register_opts(opts.privsep_policy_opts, group=opts.PRIVSEP_GROUP)
    group = conf[opts.PRIVSEP_GROUP]
    return policy_mod.read(list(group.policy_files or []),
                           bool(group.require_policy)).to_dict()


def add_parser(sub: Any) -> None:
    """The ``policy`` command of ``vif-plug-dyn``."""
    parser = sub.add_parser('policy', help='the privileged helper\'s '
                                           'policy (root)')
    actions = parser.add_subparsers(dest='action', required=True)
    gen = actions.add_parser(
        'generate', help='derive it from the network and host interface '
                         'definitions and write it (root)')
    gen.add_argument('--output', help='write here instead of the first of '
                                      '[vif_plug_dyn_privileged] '
                                      'policy_files')
    gen.add_argument('--dry-run', action='store_true',
                     help='print it instead of writing it')
    gen.set_defaults(target='policy', func=lambda conf, args: generate(
        conf, args.output, args.dry_run))
    show_ = actions.add_parser('show', help='print the policy a daemon '
                                            'started now would enforce')
    show_.set_defaults(target='policy', func=lambda conf, args: show(conf))


def run(conf: cfg.ConfigOpts, args: argparse.Namespace) -> Any:
    """Run a ``policy`` command."""
    return args.func(conf, args)
