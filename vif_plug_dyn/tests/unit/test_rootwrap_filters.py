"""The shipped oslo.rootwrap filters, read by oslo.rootwrap itself: they
allow the daemon's command lines this library builds behind a rootwrap
root helper, and nothing else.

NOTE(vpd): oslo.rootwrap always adds a filter of its own allowing
``privsep-helper`` with any arguments; the refusals are therefore checked
against the shipped lines alone, and the ``ip netns exec`` ones (which
nothing else allows) against everything rootwrap loads as well."""

import os

import pytest
from oslo_config import cfg
from oslo_privsep import priv_context
from oslo_rootwrap import wrapper

from vif_plug_dyn import privsep

FILTERS = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'etc',
                       'vif_plug_dyn', 'rootwrap.d')
ROOTWRAP = ['sudo', 'nova-rootwrap', '/etc/nova/rootwrap.conf']
SOCK = '/tmp/tmpa1B2c3_d/privsep.sock'
CONTEXT = 'vif_plug_dyn.privsep.vif_plug_dyn_pctxt'


@pytest.fixture
def filters():
    """Every filter rootwrap loads with the shipped file."""
    return wrapper.load_filters([os.path.abspath(FILTERS)])


@pytest.fixture
def ours(filters):
    """The shipped lines alone."""
    found = [f for f in filters if f.name.startswith('vif_plug_dyn-')]
    assert len(found) == 4
    return found


@pytest.fixture
def behind_rootwrap(monkeypatch):
    """A consumer that runs unprivileged with rootwrap as root helper (as
    nova does), with configuration files given."""
    monkeypatch.setattr(priv_context, '_HELPER_COMMAND_PREFIX', ROOTWRAP)
    monkeypatch.setattr(privsep.os, 'geteuid', lambda: 1000)

    def build(config_files, netns=None):
        monkeypatch.setattr(cfg.CONF, 'config_file', config_files,
                            raising=False)
        monkeypatch.setattr(cfg.CONF, 'config_dir', None, raising=False)
        privsep.set_netns(netns)
        try:
            cmd = privsep.vif_plug_dyn_pctxt.helper_command(SOCK)
        finally:
            privsep.set_netns(None)
        assert cmd[:len(ROOTWRAP)] == ROOTWRAP
        # What rootwrap is asked to run.
        return cmd[len(ROOTWRAP):]
    return build


def _allowed(filters, userargs):
    try:
        wrapper.match_filter(filters, userargs, exec_dirs=['/usr/bin',
                                                           '/bin',
                                                           '/usr/sbin',
                                                           '/sbin'])
    except wrapper.NoFilterMatched:
        return False
    except wrapper.FilterMatchNotExecutable:
        # NOTE(vpd): matched; only the executable is missing from this
        # test machine's exec_dirs.
        return True
    return True


@pytest.mark.parametrize('config_files', [
    ['/etc/nova/nova.conf'],
    ['/etc/nova/nova.conf', '/etc/nova/nova-compute.conf']])
@pytest.mark.parametrize('netns', [None, 'compute-net'])
def test_the_commands_the_library_builds_are_allowed(filters, ours,
                                                     behind_rootwrap,
                                                     config_files, netns):
    userargs = behind_rootwrap(config_files, netns)
    # Through a root helper, privsep-helper stays a bare word.
    assert 'privsep-helper' in userargs
    assert (userargs[0] == 'ip') == (netns is not None)
    assert _allowed(ours, userargs), userargs
    assert _allowed(filters, userargs), userargs


@pytest.mark.parametrize('tamper', [
    # another privsep context: another program's privileges
    lambda a: [x.replace(CONTEXT, 'os_brick.privileged.default')
               for x in a],
    # a configuration file outside /etc or climbing out of it
    lambda a: [x.replace('/etc/nova/nova.conf', '/tmp/evil.conf')
               for x in a],
    lambda a: [x.replace('/etc/nova/nova.conf', '/etc/nova/../../tmp/x')
               for x in a],
    # a caller-chosen helper program
    lambda a: [x.replace('privsep-helper', '/tmp/evil/privsep-helper')
               for x in a],
    # a socket elsewhere, or a path trick in it
    lambda a: [x.replace(SOCK, '/run/other.sock') for x in a],
    lambda a: [x.replace(SOCK, '/tmp/../etc/privsep.sock') for x in a],
    # an extra argument
    lambda a: a + ['--debug'],
])
@pytest.mark.parametrize('netns', [None, 'compute-net'])
def test_anything_else_is_refused(filters, ours, behind_rootwrap, tamper,
                                  netns):
    userargs = behind_rootwrap(['/etc/nova/nova.conf'], netns)
    assert _allowed(ours, userargs)
    assert not _allowed(ours, tamper(userargs)), tamper(userargs)
    if netns is not None:
        assert not _allowed(filters, tamper(userargs)), tamper(userargs)


@pytest.mark.parametrize('name', ['../x', 'a b', '-x', 'ns;rm'])
def test_netns_names_the_library_refuses_are_refused_too(filters,
                                                         behind_rootwrap,
                                                         name):
    # ``ip netns exec`` takes options before the name; "-x" must not pass.
    userargs = behind_rootwrap(['/etc/nova/nova.conf'], 'compute-net')
    userargs[3] = name
    assert not _allowed(filters, userargs)


def test_other_ip_commands_are_refused(filters):
    for userargs in (['ip', 'link', 'del', 'eth0'],
                     ['ip', 'netns', 'exec', 'ns1', 'sh', '-c', 'id'],
                     ['ip', 'netns', 'exec', 'ns1', 'privsep-helper']):
        assert not _allowed(filters, userargs), userargs
