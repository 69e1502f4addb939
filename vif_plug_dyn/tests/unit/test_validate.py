import pytest

from vif_plug_dyn import exception
from vif_plug_dyn import validate


@pytest.mark.parametrize('name', ['eth0', 'br-red', 'vpd0123456789ab',
                                  'a', 'tap_1.2'])
def test_ifname_accepts(name):
    assert validate.ifname(name) == name


@pytest.mark.parametrize('name,reason', [
    ('', 'must not be empty'),
    ('a' * 16, 'IFNAMSIZ'),
    ('é' * 8, 'IFNAMSIZ'),
    ('eth/0', 'only letters'),
    ('eth 0', 'only letters'),
    ('eth:0', 'only letters'),
    ('-eth', 'only letters'),
    ('.', 'only letters'),
    ('..', 'only letters'),
    (7, 'must be a string'),
    (None, 'must be a string'),
])
def test_ifname_refuses(name, reason):
    with pytest.raises(exception.InvalidField) as err:
        validate.ifname(name, 'tap')
    assert 'field tap' in str(err.value)
    assert reason in str(err.value)
    assert err.value.kwargs['field'] == 'tap'


def test_mac_normalises_case():
    assert validate.mac('52:54:00:AA:BB:CC') == '52:54:00:aa:bb:cc'


@pytest.mark.parametrize('mac,reason', [
    ('52:54:00:aa:bb', 'six hex octets'),
    ('52-54-00-aa-bb-cc', 'six hex octets'),
    ('52:54:00:aa:bb:cg', 'six hex octets'),
    ('01:00:5e:00:00:01', 'multicast'),
    ('ff:ff:ff:ff:ff:ff', 'multicast'),
    ('00:00:00:00:00:00', 'all-zero'),
])
def test_mac_refuses(mac, reason):
    with pytest.raises(exception.InvalidField) as err:
        validate.mac(mac)
    assert 'field mac' in str(err.value) and reason in str(err.value)


def test_pci_address():
    assert validate.pci_address('0000:3B:10.7') == '0000:3b:10.7'
    assert validate.pci_parts('0000:3b:1f.7') == {
        'domain': 0, 'bus': 0x3b, 'slot': 0x1f, 'function': 7}


@pytest.mark.parametrize('addr', ['3b:10.7', '0000:3b:20.0', '0000:3b:10.8',
                                  '0000:3b:10', 'zzzz:00:00.0', ''])
def test_pci_address_refuses(addr):
    with pytest.raises(exception.InvalidField) as err:
        validate.pci_address(addr)
    assert 'pci_address' in str(err.value)


@pytest.mark.parametrize('func,good,bad', [
    (validate.vlan, [1, 4094, '42'], [0, 4095, -1, True, 1.5, 'x']),
    (validate.mtu, [68, 1500, 65535], [67, 65536, None, '1500x']),
])
def test_integer_ranges(func, good, bad):
    for value in good:
        assert func(value) == int(value)
    for value in bad:
        with pytest.raises(exception.InvalidField) as err:
            func(value)
        assert func.__name__ in str(err.value)


@pytest.mark.parametrize('mode', ['vepa', 'bridge', 'private',
                                  'passthrough'])
def test_macvtap_modes(mode):
    assert validate.macvtap_mode(mode) == mode


def test_macvtap_mode_refuses():
    with pytest.raises(exception.InvalidField, match='field mode'):
        validate.macvtap_mode('passthru')


def test_uuid():
    value = '6F1C7C4E-8A9B-4C1D-9E2F-0123456789AB'
    assert validate.uuid(value) == value.lower()
    with pytest.raises(exception.InvalidField, match='field port_id'):
        validate.uuid('not-a-uuid', 'port_id')
    # Canonical, braced and urn forms all come back canonical.
    canonical = value.lower()
    for form in (canonical, '{%s}' % value, 'urn:uuid:' + canonical,
                 canonical.replace('-', '')):
        assert validate.uuid(form) == canonical
    for bad in (canonical + '\n', canonical[:-1] + 'g', ' ' + canonical):
        with pytest.raises(exception.InvalidField):
            validate.uuid(bad)


@pytest.mark.parametrize('func', [validate.network_name,
                                  validate.netns_name])
def test_names(func):
    assert func('red-1.a_b') == 'red-1.a_b'
    for bad in ['', 'a/b', '../x', 'a' * 65, 'a b', '.hidden']:
        with pytest.raises(exception.InvalidField):
            func(bad)


def test_safe_text():
    assert validate.safe_text('a b', 'x') == 'a b'
    with pytest.raises(exception.InvalidField, match='control'):
        validate.safe_text('a\nb', 'x')
    with pytest.raises(exception.InvalidField, match='longer'):
        validate.safe_text('a' * 10, 'x', max_len=5)


def test_exception_message_survives_bad_kwargs():
    err = exception.InvalidField(field='x')
    assert 'Invalid value' in str(err)
