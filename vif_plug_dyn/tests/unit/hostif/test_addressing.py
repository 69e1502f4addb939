"""IP addressing of host interfaces."""

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn.hostif import addressing

A = addressing.IPAddress
P = addressing.Protocol


def field_of(call):
    with pytest.raises(exception.InvalidField) as info:
        call()
    return info.value.kwargs['field']


def test_ipv6_is_normalised():
    assert A(address='2001:DB8:0::1', prefix=64).address == '2001:db8::1'


def test_cidr_defaults_to_host_prefix():
    assert A(address='192.0.2.1').cidr == '192.0.2.1/32'
    assert A(address='2001:db8::1').cidr == '2001:db8::1/128'
    assert A(address='192.0.2.1', prefix=24).cidr == '192.0.2.1/24'


@pytest.mark.parametrize('kwargs, field', [
    ({'address': '192.0.2.300'}, '@address'),
    ({'address': '0.0.0.0'}, '@address'),
    ({'address': '224.0.0.1'}, '@address'),
    ({'address': '192.0.2.1', 'prefix': 33}, '@prefix'),
    ({'address': '2001:db8::1', 'prefix': 129}, '@prefix'),
    ({'address': '192.0.2.1', 'prefix': True}, '@prefix'),
])
def test_bad_addresses(kwargs, field):
    assert field_of(lambda: A(**kwargs)) == field


def test_prefix_128_allowed_for_ipv6():
    assert A(address='2001:db8::1', prefix=128).prefix == 128


@pytest.mark.parametrize('kwargs, field', [
    ({'family': 'ipx'}, '@family'),
    ({'family': 'ipv4', 'autoconf': True}, 'autoconf'),
    ({'family': 'ipv4', 'peerdns': False}, 'dhcp/@peerdns'),
    ({'family': 'ipv4', 'addresses': (A(address='2001:db8::1'),)},
     'ip[1]/@address'),
    ({'family': 'ipv4', 'addresses': (A(address='192.0.2.1'),
                                      A(address='192.0.2.1'))},
     'ip[2]/@address'),
    ({'family': 'ipv4', 'gateway': '192.0.2.1'}, 'route/@gateway'),
    ({'family': 'ipv6', 'addresses': (A(address='2001:db8::1'),),
      'gateway': '192.0.2.1'}, 'route/@gateway'),
])
def test_bad_protocols(kwargs, field):
    assert field_of(lambda: P(**kwargs)) == field


def test_configured():
    assert not P(family='ipv4').configured
    assert P(family='ipv4', dhcp=True).configured
    assert P(family='ipv6', autoconf=True).configured
