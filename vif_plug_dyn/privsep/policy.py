"""The policy the privileged daemon enforces on devices it did not create.

oslo.privsep exists so that a compromised unprivileged process can do only
what the daemon's entrypoints allow. What such a process can *say* (adopt
this NIC, put a tap on that bridge, stack a macvlan on this uplink) is
therefore checked against what the daemon trusts: its own marks on the
devices the library created (those stay usable as they are), and this
policy, read from root-owned files named by the daemon's own configuration
(``[vif_plug_dyn_privileged] policy_files``), never by the caller.

The format (``vif-plug-dyn policy generate`` writes it from the operator's
network and host interface definitions; see the privileged-helper page of
the admin guide)::

    [adopt]
    # device = what may be changed once it is adopted
    eth1 = state, mtu, addresses, master:br-host
    [bridges]
    # masters the library's own devices may join
    br-ex =
    [lower]
    # device = macvlan/macvtap modes and VLANs it may carry
    eth2 = bridge, vepa, vlan:42
    [vf]
    # PFs whose VFs may be configured
    enp3s0f0 =

Without any policy file the daemon runs in compatibility mode: it allows
what earlier releases allowed and logs a warning naming each kind of use
(``require_policy`` turns that into refusal). A policy file that is not
root's, is writable by group or others, sits in such a directory, or does
not parse makes the daemon refuse every such operation: it fails closed.
"""

import configparser
import dataclasses
import os
import re
import stat
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from oslo_log import log as logging

from vif_plug_dyn import exception
from vif_plug_dyn import validate

LOG = logging.getLogger(__name__)

ADOPT, BRIDGES, LOWER, VF = 'adopt', 'bridges', 'lower', 'vf'
#: The sections of a policy file, in the order they are written.
SECTIONS = (ADOPT, BRIDGES, LOWER, VF)
#: What an adopted device may have changed: up/down, MTU, MAC, its IP
#: addresses, bridge settings (STP, forward delay), bond settings; and
#: ``master:NAME``, the master it may be enslaved to (and released from).
CHANGES = ('state', 'mtu', 'mac', 'addresses', 'bridge', 'bond')
MASTER_PREFIX = 'master:'
#: What a lower device may carry: macvlan/macvtap in a mode; ``vlan``
#: (any VLAN device) or ``vlan:ID``.
MODES = validate.MACVTAP_MODES
VLAN = 'vlan'

_VLAN_RE = re.compile(r'^vlan:([0-9]{1,4})$')
#: Largest policy file the daemon reads.
MAX_FILE_BYTES = 4 * 1024 * 1024


def _fail(source: str, reason: str) -> ValueError:
    return ValueError('%s: %s' % (source, reason))


@dataclasses.dataclass(frozen=True)
class Policy:
    """What the daemon allows on devices the library did not create.

    :ivar adopt: adoptable devices and what may change on each.
    :ivar bridges: masters the library's own devices may join.
    :ivar lower: lower devices and what they may carry.
    :ivar vf: PFs whose VFs may be configured.
    :ivar source: where it came from, for messages.
    :ivar enforcing: ``False`` in compatibility mode (no policy file):
        everything is allowed, with a warning per kind of use.
    """

    adopt: Mapping[str, frozenset[str]] = dataclasses.field(
        default_factory=dict)
    bridges: frozenset[str] = frozenset()
    lower: Mapping[str, frozenset[str]] = dataclasses.field(
        default_factory=dict)
    vf: frozenset[str] = frozenset()
    source: str = '<empty>'
    enforcing: bool = True
    _warned: set[tuple[str, str]] = dataclasses.field(
        default_factory=set, compare=False, repr=False)

    # -- checks --------------------------------------------------------------

    def _deny(self, operation: str, device: str, reason: str) -> None:
        if not self.enforcing:
            key = (operation, device)
            if key not in self._warned:
                self._warned.add(key)
                LOG.warning('No privileged helper policy (%(source)s): '
                            'allowing %(operation)s on %(device)s as '
                            'earlier releases did; a policy must allow it '
                            '(%(reason)s). Run "vif-plug-dyn policy '
                            'generate" as root.',
                            {'source': self.source, 'operation': operation,
                             'device': device, 'reason': reason})
            return
        raise exception.PolicyDenied(policy=self.source,
                                     operation=operation, device=device,
                                     reason=reason)

    def check_adopt(self, name: str) -> None:
        """``name`` may be adopted.

        :raises PolicyDenied: it is not listed in ``[adopt]``.
        """
        if name not in self.adopt:
            self._deny('adopt', name, 'it is not listed in [adopt]')

    def check_change(self, operation: str, name: str, change: str) -> None:
        """An adopted device may have ``change`` (one of :data:`CHANGES`,
        ``master:NAME`` or ``nomaster``) applied.

        :raises PolicyDenied: its ``[adopt]`` entry does not allow it.
        """
        allowed = self.adopt.get(name, frozenset())
        if change in allowed:
            return
        if change == 'nomaster' and any(
                a.startswith(MASTER_PREFIX) for a in allowed):
            return
        self._deny(operation, name, 'its [adopt] entry does not allow '
                                    '%s' % change)

    def check_master(self, operation: str, name: str, adopted: bool,
                     master: str, master_owned: bool) -> None:
        """Device ``name`` (the library's, or adopted) may join
        ``master``.

        The library's own devices may join its own masters and those
        listed in ``[bridges]``; an adopted device only the masters its
        ``[adopt]`` entry names.

        :raises PolicyDenied: it may not.
        """
        if adopted:
            self.check_change(operation, name, MASTER_PREFIX + master)
            return
        if master_owned or master in self.bridges:
            return
        self._deny(operation, master, 'it is not a master the library '
                                      'created and not listed in '
                                      '[bridges] (asked for %s)' % name)

    def check_lower(self, operation: str, lower: str, lower_owned: bool,
                    carries: str) -> None:
        """Device ``lower`` may carry ``carries`` (a macvlan/macvtap mode,
        or ``vlan:ID``).

        :raises PolicyDenied: it is not the library's and its ``[lower]``
            entry does not allow it.
        """
        if lower_owned:
            return
        allowed = self.lower.get(lower, frozenset())
        if carries in allowed or (carries.startswith(VLAN + ':') and
                                  VLAN in allowed):
            return
        self._deny(operation, lower, 'its [lower] entry does not allow %s'
                                     % carries)

    def check_restored_alias(self, name: str) -> None:
        """Releasing ``name`` with an alias its adoption marker does not
        record (no policy: allowed, as earlier releases did).

        :raises PolicyDenied: a policy is in force.
        """
        self._deny('release', name, 'the alias asked for is not the one '
                                    'it had before adoption (its marker '
                                    'records that one, or none)')

    def check_vf(self, pf: str) -> None:
        """The VFs of ``pf`` may be configured.

        :raises PolicyDenied: it is not listed in ``[vf]``.
        """
        if pf not in self.vf:
            self._deny('set_vf', pf, 'it is not listed in [vf]')

    # -- forms ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The policy as sorted lists (JSON-safe)."""
        return {ADOPT: {k: sorted(v) for k, v in sorted(self.adopt.items())},
                BRIDGES: sorted(self.bridges),
                LOWER: {k: sorted(v) for k, v in sorted(self.lower.items())},
                VF: sorted(self.vf), 'source': self.source,
                'enforcing': self.enforcing}


def permissive(source: str) -> Policy:
    """The compatibility-mode policy: everything allowed, with warnings."""
    return Policy(source=source, enforcing=False)


def deny_all(source: str) -> Policy:
    """A policy allowing nothing beyond the library's own devices."""
    return Policy(source=source)


# --- the file format ---------------------------------------------------------

def _names(section: Mapping[str, str], source: str, title: str
           ) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in section.items():
        try:
            validate.ifname(name, '[%s]' % title)
        except exception.InvalidField:
            raise _fail(source, '[%s]: %r is not an interface name'
                        % (title, name[:64])) from None
        out[name] = [t.strip() for t in (value or '').split(',')
                     if t.strip()]
    return out


def _check_tokens(source: str, title: str, name: str,
                  tokens: list[str]) -> frozenset[str]:
    for token in tokens:
        if title == ADOPT:
            if token in CHANGES:
                continue
            if token.startswith(MASTER_PREFIX):
                try:
                    validate.ifname(token[len(MASTER_PREFIX):])
                    continue
                except exception.InvalidField:
                    pass
        elif title == LOWER:
            match = _VLAN_RE.fullmatch(token)
            if token in MODES or token == VLAN or (
                    match and 1 <= int(match.group(1)) <= 4094):
                continue
        raise _fail(source, '[%s] %s: unknown entry %r' % (
            title, name, token[:64]))
    return frozenset(tokens)


def parse(text: str, source: str = '<string>') -> Policy:
    """Read a policy document.

    :param text: the document.
    :param source: where it came from (a path), for messages.
    :returns: the policy.
    :raises ValueError: a syntax error, an unknown section or entry, a
        bad interface name, or a value in ``[bridges]``/``[vf]``.
    """
    parser = configparser.ConfigParser(
        delimiters=('=',), comment_prefixes=('#', ';'),
        inline_comment_prefixes=None, strict=True, interpolation=None,
        empty_lines_in_values=False, default_section='\x00default')
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text, source)
    except configparser.Error as exc:
        raise _fail(source, str(exc).splitlines()[0][:200]) from None
    unknown = [s for s in parser.sections() if s not in SECTIONS]
    if unknown:
        raise _fail(source, 'unknown section [%s] (known: %s)' % (
            unknown[0][:64], ', '.join(SECTIONS)))
    fields: dict[str, Any] = {}
    for title in SECTIONS:
        entries = _names(parser[title], source, title) \
            if parser.has_section(title) else {}
        if title in (BRIDGES, VF):
            for name, tokens in entries.items():
                if tokens:
                    raise _fail(source, '[%s] %s: takes no value' % (
                        title, name))
            fields[title] = frozenset(entries)
        else:
            fields[title] = {name: _check_tokens(source, title, name,
                                                 tokens)
                             for name, tokens in entries.items()}
    return Policy(adopt=fields[ADOPT], bridges=fields[BRIDGES],
                  lower=fields[LOWER], vf=fields[VF], source=source)


def merge(policies: Iterable[Policy], source: str) -> Policy:
    """The union of several policies."""
    adopt: dict[str, frozenset[str]] = {}
    lower: dict[str, frozenset[str]] = {}
    bridges: set[str] = set()
    vf: set[str] = set()
    for item in policies:
        for name, tokens in item.adopt.items():
            adopt[name] = adopt.get(name, frozenset()) | tokens
        for name, tokens in item.lower.items():
            lower[name] = lower.get(name, frozenset()) | tokens
        bridges |= item.bridges
        vf |= item.vf
    return Policy(adopt=adopt, bridges=frozenset(bridges), lower=lower,
                  vf=frozenset(vf), source=source)


def dump(policy: Policy, header: Iterable[str] = (),
         notes: Mapping[tuple[str, str], Iterable[str]] | None = None
         ) -> str:
    """Write a policy document (:func:`parse` reads it back).

    :param header: comment lines for the top of the file.
    :param notes: comment lines written above an entry, by
        ``(section, name)``.
    """
    notes = notes or {}
    lines = ['# %s' % h if h else '#' for h in header]
    values: dict[str, Mapping[str, Iterable[str]]] = {
        ADOPT: policy.adopt, LOWER: policy.lower,
        BRIDGES: {n: () for n in policy.bridges},
        VF: {n: () for n in policy.vf}}
    for title in SECTIONS:
        if lines:
            lines.append('')
        lines.append('[%s]' % title)
        for name in sorted(values[title]):
            lines.extend('# %s' % n for n in notes.get((title, name), ()))
            tokens = sorted(values[title][name], key=_token_order)
            lines.append(('%s = %s' % (name, ', '.join(tokens))).rstrip())
    return '\n'.join(lines) + '\n'


def _token_order(token: str) -> tuple[int, str]:
    order = CHANGES + MODES + (VLAN,)
    return (order.index(token) if token in order else len(order), token)


# --- files the daemon trusts -------------------------------------------------

def check_trusted(path: str, directory: bool = False) -> None:
    """Refuse a file (or directory) root does not control alone.

    The file (symbolic links followed) must be a regular file owned by
    root and not writable by group or others; so must every directory
    above it, except sticky ones (such as ``/tmp``), where others cannot
    replace root's entries.

    :param directory: ``path`` is a directory, held to the same rules.
    :raises ValueError: it is not.
    :raises OSError: it cannot be read.
    """
    real = os.path.realpath(path)
    info = os.stat(real)
    if directory:
        if not stat.S_ISDIR(info.st_mode):
            raise _fail(path, 'not a directory')
    elif not stat.S_ISREG(info.st_mode):
        raise _fail(path, 'not a regular file')
    _check_owner(real, info, sticky_ok=False)
    directory_ = os.path.dirname(real)
    while True:
        _check_owner(directory_, os.stat(directory_), sticky_ok=True)
        parent = os.path.dirname(directory_)
        if parent == directory_:
            return
        directory_ = parent


def _check_owner(path: str, info: os.stat_result, sticky_ok: bool) -> None:
    if info.st_uid != 0:
        raise _fail(path, 'owned by uid %d, not root' % info.st_uid)
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not (
            sticky_ok and info.st_mode & stat.S_ISVTX):
        raise _fail(path, 'writable by group or others (mode %o)'
                    % stat.S_IMODE(info.st_mode))


def read(paths: list[str], require: bool) -> Policy:
    """Build the daemon's policy from its files.

    :param paths: the policy files, in order.
    :param require: refuse everything (rather than allow it, with
        warnings) when none of them exists.
    :returns: the merged policy; :func:`permissive` when no file exists
        (and ``require`` is false); :func:`deny_all` when one is not
        trusted or does not parse (the reason is logged as an error).
    """
    present = [p for p in paths if os.path.lexists(p)]
    if not present:
        where = ', '.join(paths) or 'no policy_files'
        if require:
            LOG.error('No privileged helper policy (%s) and '
                      'require_policy is set: refusing every operation on '
                      'devices vif_plug_dyn did not create', where)
            return deny_all('missing: %s' % where)
        LOG.warning('No privileged helper policy (%s): the daemon allows '
                    'adoption, foreign masters, lower devices and VFs as '
                    'earlier releases did. Run "vif-plug-dyn policy '
                    'generate" as root to restrict it to what the network '
                    'and host interface definitions need; a future '
                    'release will require a policy.', where)
        return permissive('none: %s' % where)
    policies = []
    for path in present:
        try:
            check_trusted(path)
            with open(path, 'rb') as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
            if len(data) > MAX_FILE_BYTES:
                raise _fail(path, 'larger than %d bytes' % MAX_FILE_BYTES)
            policies.append(parse(data.decode('utf-8'), path))
        except (OSError, ValueError) as exc:
            LOG.error('Privileged helper policy %s is not usable (%s): '
                      'refusing every operation on devices vif_plug_dyn '
                      'did not create', path, exc)
            return deny_all('unusable: %s' % path)
    policy = merge(policies, ', '.join(present))
    LOG.info('Privileged helper policy %s: %d adoptable, %d bridges, %d '
             'lower devices, %d PFs', policy.source, len(policy.adopt),
             len(policy.bridges), len(policy.lower), len(policy.vf))
    return policy


# --- the daemon's current policy ---------------------------------------------

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {'paths': None, 'require': False, 'policy': None,
                          'signature': None}


def _signature(paths: list[str]) -> tuple[Any, ...]:
    out: list[tuple[int, ...] | None] = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            out.append(None)
            continue
        out.append((info.st_dev, info.st_ino, info.st_size,
                    info.st_mtime_ns, info.st_uid, info.st_mode))
    return tuple(out)


def configure(paths: list[str], require: bool) -> Policy:
    """Read the policy from ``paths`` now (the daemon does at start) and
    keep re-reading them when they change.

    :returns: the policy in force.
    """
    paths = list(paths)
    with _LOCK:
        _STATE.update(paths=paths, require=require,
                      signature=_signature(paths),
                      policy=read(paths, require))
        return _STATE['policy']


def use(policy: Policy) -> None:
    """Put ``policy`` in force, with no file behind it (tests, and
    callers applying batches in their own process)."""
    with _LOCK:
        _STATE.update(paths=[], require=False, signature=(), policy=policy)


def current() -> Policy:
    """The policy in force, re-read when its files changed.

    NOTE(vpd): one stat() per file per batch. Once a policy is enforced,
    files that disappear leave it in force (a daemon never falls back to
    compatibility mode while it runs); restart the daemon for that.
    """
    with _LOCK:
        paths = _STATE['paths']
        if paths is None:
            _STATE['policy'] = None
        else:
            signature = _signature(paths)
            if signature == _STATE['signature']:
                return _STATE['policy']
            _STATE['signature'] = signature
            old = _STATE['policy']
            if old is not None and old.enforcing and \
                    all(s is None for s in signature):
                LOG.warning('Privileged helper policy %s is gone: keeping '
                            'it in force until the daemon restarts',
                            old.source)
                return old
            _STATE['policy'] = read(paths, _STATE['require'])
            return _STATE['policy']
    return configure_from_options()


def configure_from_options() -> Policy:
    """Read the policy the daemon's own configuration names
    (``[vif_plug_dyn_privileged] policy_files`` and ``require_policy``
    of the global configuration, which ``privsep-helper`` loaded from the
    files on its command line)."""
    from oslo_config import cfg

    from vif_plug_dyn import opts
    cfg.CONF.register_opts(opts.privsep_policy_opts,
                           group=opts.PRIVSEP_GROUP)
    group = cfg.CONF[opts.PRIVSEP_GROUP]
    return configure(list(group.policy_files or []),
                     bool(group.require_policy))
