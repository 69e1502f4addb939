"""The journal under the state path: documents, versions, the lock."""

import fcntl
import os
import stat

import pytest

from vif_plug_dyn import exception
from vif_plug_dyn.hostif import journal as journal_mod


def test_documents_round_trip_private(tmp_path):
    journal = journal_mod.Journal(str(tmp_path / 'hostif'))
    assert journal.load('transaction') is None
    journal.save('transaction', {'began': 'now', 'state': {'links': []}})
    document = journal.load('transaction')
    assert document['began'] == 'now' and document['version'] == 1
    mode = os.stat(journal.path('transaction')).st_mode
    assert stat.S_IMODE(mode) == 0o600
    journal.clear('transaction')
    journal.clear('transaction')
    assert journal.load('transaction') is None
    with pytest.raises(ValueError):
        journal.path('other')


def test_bad_documents_are_errors_not_guesses(tmp_path):
    journal = journal_mod.Journal(str(tmp_path))
    with open(journal.path('apply'), 'w') as handle:
        handle.write('{not json')
    with pytest.raises(exception.TransactionError, match='not valid JSON'):
        journal.load('apply')
    journal.save('transaction', {})
    os.rename(journal.path('transaction'), journal.path('apply'))
    with pytest.raises(exception.TransactionError,
                       match='not a version 1 apply document'):
        journal.load('apply')


def test_adoption_records(tmp_path):
    journal = journal_mod.Journal(str(tmp_path))
    assert journal.adoptions() == {}
    journal.set_adoptions({'eth0': 'uplink', 'eth1': None})
    assert journal.adoptions() == {'eth0': 'uplink', 'eth1': None}
    journal.set_adoptions({})
    assert not os.path.exists(journal.path('adoptions'))


def test_the_lock_waits_then_gives_up(tmp_path):
    journal = journal_mod.Journal(str(tmp_path), lock_timeout=0.2)
    with journal.lock():
        pass
    fd = os.open(os.path.join(str(tmp_path), 'lock'), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(exception.TransactionError,
                           match='another process is changing'):
            with journal.lock():
                pass
    finally:
        os.close(fd)
    with journal.lock():
        pass
