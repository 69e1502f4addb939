"""Unit tests of vif_plug_dyn.ovsdb against a fake OVSDB server.

The fake server listens on a unix socket in a thread, records every JSON-RPC
request it receives and answers from a script, so these tests check the
exact JSON the client builds and how it reads replies (split, pipelined,
echo probes, errors, timeouts) without Open vSwitch.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from vif_plug_dyn import ovsdb

Reply = Any   # a result list, or a callable(request) -> list[bytes] | None

BR_UUID = '0b7ad0e9-0000-4000-8000-000000000001'
ROOT_UUID = '0b7ad0e9-0000-4000-8000-0000000000aa'


def _u(n: int) -> str:
    return '00000000-0000-4000-8000-%012d' % n


class FakeOvsdb:
    """A scripted OVSDB server on a unix socket.

    Each reply in the script is either a ``transact``-style result (sent
    back as ``{"id": ..., "result": REPLY, "error": null}``) or a callable
    taking the request dict and returning the raw byte chunks to send
    (``[]`` sends nothing, ``None`` closes the connection).
    """

    def __init__(self, script: list[Reply]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []   # everything, echo too
        self.connections = 0
        self._dir = tempfile.mkdtemp(prefix='vpd-fake-ovsdb.')
        self.path = os.path.join(self._dir, 'db.sock')
        self._lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._lsock.bind(self.path)
        self._lsock.listen(4)
        self._lsock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._lsock.close()
        os.unlink(self.path)
        os.rmdir(self._dir)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._lsock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        buf = ''
        decoder = json.JSONDecoder()
        while not self._stop.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            if not data:
                return
            buf += data.decode('utf-8')
            while buf.strip():
                try:
                    msg, end = decoder.raw_decode(buf.lstrip())
                except ValueError:
                    break   # incomplete: read more
                buf = buf.lstrip()[end:]
                self.received.append(msg)
                if 'method' not in msg:
                    continue   # an answer to our echo
                self.requests.append(msg)
                reply = self.script.pop(0)
                if callable(reply):
                    chunks = reply(msg)
                else:
                    chunks = [json.dumps({'id': msg['id'], 'result': reply,
                                          'error': None}).encode()]
                if chunks is None:
                    return   # close the connection
                for chunk in chunks:
                    conn.sendall(chunk)
                    time.sleep(0.001)

    def ops(self, n: int) -> list[dict[str, Any]]:
        """The operations of the n-th request (a transact)."""
        req = self.requests[n]
        assert req['method'] == 'transact'
        assert req['params'][0] == 'Open_vSwitch'
        ops: list[dict[str, Any]] = req['params'][1:]
        return ops


@pytest.fixture
def fake() -> Iterator[Callable[[list[Reply]], FakeOvsdb]]:
    servers: list[FakeOvsdb] = []

    def make(script: list[Reply]) -> FakeOvsdb:
        srv = FakeOvsdb(script)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.close()


def _client(srv: FakeOvsdb, timeout: float = 5.0) -> ovsdb.OvsdbClient:
    return ovsdb.OvsdbClient(srv.path, timeout=timeout)


def _select_rows(*rows: dict[str, Any]) -> dict[str, Any]:
    return {'rows': list(rows)}


# -- JSON-RPC envelope and reading ------------------------------------------

def test_transact_envelope_and_results(fake: Any) -> None:
    srv = fake([[{'rows': []}, {'count': 1}]])
    ops: list[dict[str, Any]] = [
        {'op': 'select', 'table': 'Bridge', 'where': [],
         'columns': ['name']},
        {'op': 'comment', 'comment': 'hi'}]
    with _client(srv) as c:
        res = c.transact(ops)
    assert res == [{'rows': []}, {'count': 1}]
    req = srv.requests[0]
    assert req['method'] == 'transact'
    assert req['params'] == ['Open_vSwitch'] + ops
    assert isinstance(req['id'], int)


def test_unix_prefix_and_other_database(fake: Any) -> None:
    srv = fake([[{}]])
    with ovsdb.OvsdbClient('unix:' + srv.path, database='OVN') as c:
        c.transact([{'op': 'comment', 'comment': 'x'}])
    assert srv.requests[0]['params'][0] == 'OVN'


def test_operation_error_raises_with_op(fake: Any) -> None:
    srv = fake([[{'count': 1},
                 {'error': 'constraint violation',
                  'details': 'Transaction causes multiple rows in "Port" '
                             'table to have identical values (p1)'},
                 None]])
    ops: list[dict[str, Any]] = [
        {'op': 'comment', 'comment': 'a'},
        {'op': 'insert', 'table': 'Port', 'row': {'name': 'p1'}},
        {'op': 'comment', 'comment': 'b'}]
    with _client(srv) as c, pytest.raises(ovsdb.OvsdbError) as info:
        c.transact(ops)
    err = info.value
    assert err.error == 'constraint violation'
    assert 'identical values' in (err.details or '')
    assert err.index == 1
    assert err.op == ops[1]
    msg = str(err)
    assert 'constraint violation' in msg and '"Port"' in msg and '#1' in msg


def test_commit_error_has_no_op(fake: Any) -> None:
    srv = fake([[{'uuid': ['uuid', _u(1)]},
                 {'error': 'referential integrity violation',
                  'details': 'dangling'}]])
    with _client(srv) as c, pytest.raises(ovsdb.OvsdbError) as info:
        c.transact([{'op': 'insert', 'table': 'Port', 'row': {}}])
    assert info.value.error == 'referential integrity violation'
    assert info.value.op is None and info.value.index is None


def test_jsonrpc_error_raises(fake: Any) -> None:
    def reply(req: dict[str, Any]) -> list[bytes]:
        return [json.dumps({'id': req['id'], 'result': None,
                            'error': {'error': 'unknown database',
                                      'details': 'nope'}}).encode()]
    srv = fake([reply])
    with _client(srv) as c, pytest.raises(ovsdb.OvsdbError) as info:
        c.transact([])
    assert info.value.error == 'unknown database'
    assert not isinstance(info.value, ovsdb.OvsdbConnectionError)


def test_fewer_results_than_ops_is_a_protocol_error(fake: Any) -> None:
    srv = fake([[{}]])
    with _client(srv) as c, pytest.raises(ovsdb.OvsdbConnectionError):
        c.transact([{'op': 'comment', 'comment': 'a'},
                    {'op': 'comment', 'comment': 'b'}])


def test_reply_split_byte_by_byte(fake: Any) -> None:
    # Brackets, quotes, backslashes and multi-byte UTF-8 inside strings
    # must not confuse the framing, even cut in the middle.
    tricky = {'rows': [{'name': 'p{[}]"\\\\"é€', 'n': [1, [2, {}]]}]}

    def reply(req: dict[str, Any]) -> list[bytes]:
        data = json.dumps({'id': req['id'], 'result': [tricky],
                           'error': None}, ensure_ascii=False).encode()
        return [data[i:i + 1] for i in range(len(data))]
    srv = fake([reply])
    with _client(srv) as c:
        assert c.transact([{'op': 'comment', 'comment': 'x'}]) == [tricky]


def test_echo_probe_answered_and_notifications_ignored(fake: Any) -> None:
    def reply(req: dict[str, Any]) -> list[bytes]:
        echo = {'method': 'echo', 'params': ['probe'], 'id': 'echo-7'}
        note: dict[str, Any] = {'method': 'update', 'params': [None, {}],
                                'id': None}
        stale = {'id': 999, 'result': ['stale'], 'error': None}
        mine = {'id': req['id'], 'result': [{'count': 3}], 'error': None}
        # Pipelined: all four in one chunk.
        return [b''.join(json.dumps(m).encode()
                         for m in (echo, note, stale, mine))]
    srv = fake([reply])
    with _client(srv) as c:
        assert c.transact([{'op': 'comment', 'comment': 'x'}]) == \
            [{'count': 3}]
        deadline = time.monotonic() + 2
        while len(srv.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    answer = srv.received[1]
    assert answer == {'id': 'echo-7', 'result': ['probe'], 'error': None}


def test_timeout_closes_then_next_call_reconnects(fake: Any) -> None:
    srv = fake([lambda req: [], [{'count': 0}]])
    c = _client(srv, timeout=0.3)
    start = time.monotonic()
    with pytest.raises(ovsdb.OvsdbTimeout):
        c.transact([{'op': 'comment', 'comment': 'slow'}])
    assert 0.25 < time.monotonic() - start < 3
    assert c._sock is None
    assert c.transact([{'op': 'comment', 'comment': 'x'}]) == [{'count': 0}]
    assert srv.connections == 2
    c.close()
    c.close()   # idempotent


def test_server_closing_is_a_connection_error(fake: Any) -> None:
    srv = fake([lambda req: None])
    with _client(srv) as c, pytest.raises(ovsdb.OvsdbConnectionError,
                                          match='closed'):
        c.transact([])


def test_garbage_is_a_connection_error(fake: Any) -> None:
    srv = fake([lambda req: [b'{"id": 1, "result": nope}']])
    with _client(srv) as c, pytest.raises(ovsdb.OvsdbConnectionError,
                                          match='invalid JSON'):
        c.transact([])


def test_no_server_is_a_connection_error(tmp_path: Any) -> None:
    c = ovsdb.OvsdbClient(str(tmp_path / 'missing.sock'), timeout=1)
    with pytest.raises(ovsdb.OvsdbConnectionError, match='cannot connect'):
        c.echo()
    assert issubclass(ovsdb.OvsdbConnectionError, ovsdb.OvsdbError)
    assert issubclass(ovsdb.OvsdbTimeout, ovsdb.OvsdbError)


def test_echo_and_list_dbs(fake: Any) -> None:
    srv = fake([['vif_plug_dyn'], ['Open_vSwitch', '_Server']])
    with _client(srv) as c:
        c.echo()
        assert c.list_dbs() == ['Open_vSwitch', '_Server']
    assert [r['method'] for r in srv.requests] == ['echo', 'list_dbs']
    assert srv.requests[1]['params'] == []


# -- helpers: the operations they build -------------------------------------

def test_add_ports_one_write_transaction(fake: Any) -> None:
    srv = fake([
        # read: bridge with its local port only; no port exists yet
        [_select_rows({'_uuid': ['uuid', BR_UUID],
                       'ports': ['uuid', _u(99)]}),
         _select_rows(), _select_rows()],
        # write
        [{'uuid': ['uuid', _u(i)]} for i in range(4)] + [{'count': 1}],
    ])
    ports = [('tap1', '', {'iface-id': 'a', 'attached-mac': 'm1',
                           'vm-uuid': 'v'}),
             ('tap2', 'internal', {})]
    with _client(srv) as c:
        assert c.add_ports('br0', ports) == ['tap1', 'tap2']

    read = srv.ops(0)
    assert read == [
        {'op': 'select', 'table': 'Bridge', 'where': [['name', '==', 'br0']],
         'columns': ['_uuid', 'ports']},
        {'op': 'select', 'table': 'Port', 'where': [['name', '==', 'tap1']],
         'columns': ['_uuid']},
        {'op': 'select', 'table': 'Port', 'where': [['name', '==', 'tap2']],
         'columns': ['_uuid']},
    ]
    assert srv.ops(1) == [
        {'op': 'insert', 'table': 'Interface', 'uuid-name': 'i0',
         'row': {'name': 'tap1', 'type': '',
                 'external_ids': ['map', [['attached-mac', 'm1'],
                                          ['iface-id', 'a'],
                                          ['vm-uuid', 'v']]]}},
        {'op': 'insert', 'table': 'Port', 'uuid-name': 'p0',
         'row': {'name': 'tap1',
                 'interfaces': ['set', [['named-uuid', 'i0']]]}},
        {'op': 'insert', 'table': 'Interface', 'uuid-name': 'i1',
         'row': {'name': 'tap2', 'type': 'internal',
                 'external_ids': ['map', []]}},
        {'op': 'insert', 'table': 'Port', 'uuid-name': 'p1',
         'row': {'name': 'tap2',
                 'interfaces': ['set', [['named-uuid', 'i1']]]}},
        {'op': 'mutate', 'table': 'Bridge',
         'where': [['name', '==', 'br0']],
         'mutations': [['ports', 'insert',
                        ['set', [['named-uuid', 'p0'],
                                 ['named-uuid', 'p1']]]]]},
    ]
    assert len(srv.requests) == 2


def test_add_ports_existing_port_is_updated_not_inserted(fake: Any) -> None:
    srv = fake([
        [_select_rows({'_uuid': ['uuid', BR_UUID],
                       'ports': ['set', [['uuid', _u(1)], ['uuid', _u(2)]]]}),
         _select_rows({'_uuid': ['uuid', _u(1)]})],
        [{'count': 1}, {'count': 1}],
    ])
    with _client(srv) as c:
        assert c.add_ports('br0', [('tap1', '', {'iface-id': 'b'})]) == []
    where = [['name', '==', 'tap1']]
    assert srv.ops(1) == [
        {'op': 'update', 'table': 'Interface', 'where': where,
         'row': {'type': ''}},
        {'op': 'mutate', 'table': 'Interface', 'where': where,
         'mutations': [['external_ids', 'delete', ['set', ['iface-id']]],
                       ['external_ids', 'insert',
                        ['map', [['iface-id', 'b']]]]]},
    ]


def test_add_ports_conflicts(fake: Any) -> None:
    bridge_row = _select_rows({'_uuid': ['uuid', BR_UUID],
                               'ports': ['set', [['uuid', _u(1)]]]})
    srv = fake([
        [bridge_row, _select_rows({'_uuid': ['uuid', _u(1)]})],
        [bridge_row, _select_rows({'_uuid': ['uuid', _u(5)]})],
        [_select_rows(), _select_rows()],
    ])
    with _client(srv) as c:
        with pytest.raises(ovsdb.OvsdbError, match='already exists'):
            c.add_ports('br0', [('tap1', '', {})], may_exist=False)
        with pytest.raises(ovsdb.OvsdbError, match='another bridge'):
            c.add_ports('br0', [('tap1', '', {})])
        with pytest.raises(ovsdb.OvsdbError, match='no bridge named br0'):
            c.add_ports('br0', [('tap1', '', {})])
        with pytest.raises(ValueError, match='twice'):
            c.add_ports('br0', [('t', '', {}), ('t', '', {})])
    # Only reads reached the server.
    assert all(op['op'] == 'select'
               for i in range(3) for op in srv.ops(i))


def test_add_ports_retries_after_a_racing_insert(fake: Any) -> None:
    bridge_row = _select_rows({'_uuid': ['uuid', BR_UUID],
                               'ports': ['set', []]})
    srv = fake([
        [bridge_row, _select_rows()],
        [{'uuid': ['uuid', _u(1)]}, {'uuid': ['uuid', _u(2)]},
         {'count': 1}, {'error': 'constraint violation', 'details': 'dup'}],
        [_select_rows({'_uuid': ['uuid', BR_UUID],
                       'ports': ['uuid', _u(7)]}),
         _select_rows({'_uuid': ['uuid', _u(7)]})],
        [{'count': 1}],
    ])
    with _client(srv) as c:
        assert c.add_ports('br0', [('tap1', '', {})]) == []
    assert [op['op'] for op in srv.ops(3)] == ['update']


def test_add_ports_persistent_constraint_error_is_raised(fake: Any) -> None:
    bridge_row = _select_rows({'_uuid': ['uuid', BR_UUID],
                               'ports': ['set', []]})
    violation = {'error': 'constraint violation',
                 'details': 'multiple rows in "Interface" table (tap1)'}
    read = [bridge_row, _select_rows()]
    write = [{'uuid': ['uuid', _u(1)]}, {'uuid': ['uuid', _u(2)]},
             {'count': 1}, violation]
    srv = fake([read, write] * 5)
    with _client(srv) as c, pytest.raises(ovsdb.OvsdbError) as info:
        c.add_ports('br0', [('tap1', '', {})])
    assert info.value.error == 'constraint violation'
    assert '"Interface"' in (info.value.details or '')
    assert len(srv.requests) == 10


def test_del_ports_single_mutation(fake: Any) -> None:
    ports_value = ['set', [['uuid', _u(1)], ['uuid', _u(2)],
                           ['uuid', _u(3)]]]
    srv = fake([
        [_select_rows({'ports': ports_value}),
         _select_rows({'_uuid': ['uuid', _u(1)]}),
         _select_rows({'_uuid': ['uuid', _u(2)]}),
         _select_rows(),                              # unknown name
         _select_rows({'_uuid': ['uuid', _u(8)]})],   # other bridge
        [{}, {'count': 1}],
    ])
    with _client(srv) as c:
        removed = c.del_ports('br0', ['tap1', 'tap2', 'ghost', 'elsewhere',
                                      'tap1'])
    assert removed == ['tap1', 'tap2']
    assert [op['where'] for op in srv.ops(0)[1:]] == [
        [['name', '==', n]] for n in ('tap1', 'tap2', 'ghost', 'elsewhere')]
    where = [['name', '==', 'br0']]
    assert srv.ops(1) == [
        {'op': 'wait', 'table': 'Bridge', 'where': where,
         'columns': ['ports'], 'until': '==', 'timeout': 0,
         'rows': [{'ports': ports_value}]},
        {'op': 'mutate', 'table': 'Bridge', 'where': where,
         'mutations': [['ports', 'delete',
                        ['set', [['uuid', _u(1)], ['uuid', _u(2)]]]]]},
    ]


def test_del_ports_retries_when_the_bridge_changed(fake: Any) -> None:
    first = ['set', [['uuid', _u(1)], ['uuid', _u(2)]]]
    srv = fake([
        [_select_rows({'ports': first}),
         _select_rows({'_uuid': ['uuid', _u(1)]})],
        [{'error': 'timed out', 'details': 'wait'}, None],
        [_select_rows({'ports': ['uuid', _u(1)]}),
         _select_rows({'_uuid': ['uuid', _u(1)]})],
        [{}, {'count': 1}],
    ])
    with _client(srv) as c:
        assert c.del_ports('br0', ['tap1']) == ['tap1']
    assert len(srv.requests) == 4
    # The retry waits on the fresh port set (bare single-uuid form).
    assert srv.ops(3)[0]['rows'] == [{'ports': ['uuid', _u(1)]}]


def test_del_ports_strict_and_empty(fake: Any) -> None:
    srv = fake([
        [_select_rows({'ports': ['set', []]}), _select_rows()],
        [_select_rows(), _select_rows()],
    ])
    with _client(srv) as c:
        assert c.del_ports('br0', []) == []
        with pytest.raises(ovsdb.OvsdbError, match='no port tap1 on'):
            c.del_ports('br0', ['tap1'], if_exists=False)
        assert c.del_ports('gone', ['tap1']) == []
    assert len(srv.requests) == 2


def test_list_ports_decodes_sets_and_maps(fake: Any) -> None:
    srv = fake([[
        _select_rows({'ports': ['set', [['uuid', _u(1)], ['uuid', _u(2)],
                                        ['uuid', _u(3)]]]}),
        _select_rows(
            {'_uuid': ['uuid', _u(1)], 'name': 'br0',
             'interfaces': ['uuid', _u(11)]},
            {'_uuid': ['uuid', _u(2)], 'name': 'tap1',
             'interfaces': ['uuid', _u(12)]},
            {'_uuid': ['uuid', _u(3)], 'name': 'bond0',
             'interfaces': ['set', [['uuid', _u(13)], ['uuid', _u(14)]]]},
            {'_uuid': ['uuid', _u(4)], 'name': 'other-br-port',
             'interfaces': ['uuid', _u(15)]}),
        _select_rows(
            {'_uuid': ['uuid', _u(11)], 'external_ids': ['map', []]},
            {'_uuid': ['uuid', _u(12)],
             'external_ids': ['map', [['iface-id', 'x'],
                                      ['vm-uuid', 'y']]]},
            {'_uuid': ['uuid', _u(13)], 'external_ids': ['map', [['a', '1']]]},
            {'_uuid': ['uuid', _u(14)], 'external_ids': ['map', [['b', '2']]]},
            {'_uuid': ['uuid', _u(15)], 'external_ids': ['map', []]}),
    ]])
    with _client(srv) as c:
        assert c.list_ports('br0') == {
            'tap1': {'iface-id': 'x', 'vm-uuid': 'y'},
            'bond0': {'a': '1', 'b': '2'},
        }
    assert len(srv.requests) == 1


def test_ensure_bridge_creates(fake: Any) -> None:
    srv = fake([
        [_select_rows(), _select_rows({'_uuid': ['uuid', ROOT_UUID]})],
        [{'uuid': ['uuid', _u(1)]}, {'uuid': ['uuid', _u(2)]},
         {'uuid': ['uuid', BR_UUID]}, {'count': 1}],
    ])
    with _client(srv) as c:
        assert c.ensure_bridge('br0', external_ids={'k': 'v'}) == BR_UUID
    assert srv.ops(1) == [
        {'op': 'insert', 'table': 'Interface', 'uuid-name': 'iface',
         'row': {'name': 'br0', 'type': 'internal'}},
        {'op': 'insert', 'table': 'Port', 'uuid-name': 'port',
         'row': {'name': 'br0',
                 'interfaces': ['set', [['named-uuid', 'iface']]]}},
        {'op': 'insert', 'table': 'Bridge', 'uuid-name': 'bridge',
         'row': {'name': 'br0', 'datapath_type': 'netdev',
                 'ports': ['set', [['named-uuid', 'port']]],
                 'external_ids': ['map', [['k', 'v']]]}},
        {'op': 'mutate', 'table': 'Open_vSwitch',
         'where': [['_uuid', '==', ['uuid', ROOT_UUID]]],
         'mutations': [['bridges', 'insert',
                        ['set', [['named-uuid', 'bridge']]]]]},
    ]


def test_ensure_bridge_updates_existing(fake: Any) -> None:
    srv = fake([
        [_select_rows({'_uuid': ['uuid', BR_UUID]}),
         _select_rows({'_uuid': ['uuid', ROOT_UUID]})],
        [{'count': 1}, {'count': 1}],
    ])
    with _client(srv) as c:
        assert c.ensure_bridge('br0', 'system', {'k': 'v'}) == BR_UUID
    where = [['name', '==', 'br0']]
    assert srv.ops(1) == [
        {'op': 'update', 'table': 'Bridge', 'where': where,
         'row': {'datapath_type': 'system'}},
        {'op': 'mutate', 'table': 'Bridge', 'where': where,
         'mutations': [['external_ids', 'delete', ['set', ['k']]],
                       ['external_ids', 'insert', ['map', [['k', 'v']]]]]},
    ]


def test_ensure_bridge_uninitialised_database(fake: Any) -> None:
    srv = fake([[_select_rows(), _select_rows()]])
    with _client(srv) as c, pytest.raises(ovsdb.OvsdbError,
                                          match='ovs-vsctl init'):
        c.ensure_bridge('br0')


def test_del_bridge(fake: Any) -> None:
    srv = fake([
        [_select_rows({'_uuid': ['uuid', BR_UUID]})],
        [{'count': 1}],
        [_select_rows()],
        [_select_rows()],
    ])
    with _client(srv) as c:
        assert c.del_bridge('br0') is True
        assert c.del_bridge('br0') is False
        with pytest.raises(ovsdb.OvsdbError, match='no bridge'):
            c.del_bridge('br0', if_exists=False)
    assert srv.ops(1) == [
        {'op': 'mutate', 'table': 'Open_vSwitch', 'where': [],
         'mutations': [['bridges', 'delete',
                        ['set', [['uuid', BR_UUID]]]]]}]


def test_wait_for_vswitchd(fake: Any) -> None:
    srv = fake([
        [{'count': 1}, _select_rows({'next_cfg': 42})],
        [{}],
    ])
    with _client(srv) as c:
        assert c.wait_for_vswitchd(timeout=3) == 42
        assert c.timeout == 5.0   # restored
    assert srv.ops(0) == [
        {'op': 'mutate', 'table': 'Open_vSwitch', 'where': [],
         'mutations': [['next_cfg', '+=', 1]]},
        {'op': 'select', 'table': 'Open_vSwitch', 'where': [],
         'columns': ['next_cfg']}]
    assert srv.ops(1) == [
        {'op': 'wait', 'table': 'Open_vSwitch',
         'where': [['cur_cfg', '>=', 42]],
         'columns': ['cur_cfg'], 'until': '!=', 'rows': [],
         'timeout': 3000}]


def test_write_with_wait_bumps_next_cfg_in_the_same_transaction(
        fake: Any) -> None:
    srv = fake([
        [_select_rows({'ports': ['uuid', _u(1)]}),
         _select_rows({'_uuid': ['uuid', _u(1)]})],
        [{}, {'count': 1}, {'count': 1}, _select_rows({'next_cfg': 7})],
        [{}],
    ])
    with _client(srv) as c:
        assert c.del_ports('br0', ['tap1'], wait=2.5) == ['tap1']
    write = srv.ops(1)
    assert [op['op'] for op in write] == ['wait', 'mutate', 'mutate',
                                          'select']
    assert write[2]['mutations'] == [['next_cfg', '+=', 1]]
    assert srv.ops(2)[0]['where'] == [['cur_cfg', '>=', 7]]
    assert srv.ops(2)[0]['timeout'] == 2500
    assert len(srv.requests) == 3


def test_vswitchd_not_catching_up_raises(fake: Any) -> None:
    srv = fake([
        [{'count': 1}, _select_rows({'next_cfg': 3})],
        [{'error': 'timed out', 'details': 'wait'}],
    ])
    with _client(srv) as c, pytest.raises(ovsdb.OvsdbError) as info:
        c.wait_for_vswitchd(timeout=0.1)
    assert info.value.error == 'timed out'
    assert info.value.op is not None and info.value.op['op'] == 'wait'


# -- framing ----------------------------------------------------------------

def test_framer_pipelined_and_partial() -> None:
    framer = ovsdb._Framer()
    a = json.dumps({'id': 1, 'result': ['}{"\\']}).encode()
    b = json.dumps({'id': 2, 'result': []}).encode()
    data = a + b'\n' + b
    out: list[Any] = []
    out += framer.feed(data[:5])
    out += framer.feed(data[5:len(a) - 1])
    assert out == []
    out += framer.feed(data[len(a) - 1:len(a) + 3])
    assert out == [{'id': 1, 'result': ['}{"\\']}]
    out += framer.feed(data[len(a) + 3:])
    assert out[1] == {'id': 2, 'result': []}


def test_framer_rejects_unbalanced() -> None:
    with pytest.raises(ovsdb.OvsdbConnectionError):
        ovsdb._Framer().feed(b'}')
