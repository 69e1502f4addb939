"""The ledger: the library's persistent record of what it did.

One SQLite database (``<state_path>/ledger.sqlite3``) holds, for this host:

* **ports**: each port's request, the endpoint built for it, its state
  (``building`` while a driver works, ``active`` once built), the desired
  cable state (``plugged``/``unplugged``), the network it is on now and
  its health as the runtime last saw it;
* **allocations**: which port holds which pool resource (a direct pool
  interface, a VF) of which network;
* **devices**: every host device the library created, with its owner, so
  that leaks can be found and removed;
* **guest links**: whether each port's guest has been told the link state
  its cable wants (``applied``) or not yet (``pending``, with the reason:
  the guest is not running, the hypervisor cannot be reached...).

Every change runs in one ``BEGIN IMMEDIATE`` transaction, so a process
killed mid-write leaves either the old or the new state, never half of
each; WAL journaling lets readers in other processes go on meanwhile.
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from typing import Any

from vif_plug_dyn import endpoints
from vif_plug_dyn import exception
from vif_plug_dyn import ports

BUILDING = 'building'
ACTIVE = 'active'
PLUGGED = 'plugged'
UNPLUGGED = 'unplugged'
HEALTHY = 'ok'
DEGRADED = 'degraded'
WAITING = 'waiting'
#: Guest link state follows the cable (else ``up`` or ``down`` is forced).
FOLLOW = 'follow'

#: What releasing a port needs of it: (network, state, endpoint).
_Released = tuple[str, str, 'endpoints.Endpoint | None']

#: Cross-process port lock files (see :meth:`Ledger.port_locks`).
LOCK_STRIPES = 64

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ports (
    port_id TEXT PRIMARY KEY,
    network TEXT NOT NULL,
    request TEXT NOT NULL,
    endpoint TEXT,
    state TEXT NOT NULL,
    cable TEXT NOT NULL,
    health TEXT NOT NULL,
    updated REAL NOT NULL,
    link TEXT NOT NULL DEFAULT 'follow'
);
CREATE INDEX IF NOT EXISTS ports_network ON ports (network);
CREATE TABLE IF NOT EXISTS allocations (
    network TEXT NOT NULL,
    resource TEXT NOT NULL,
    port_id TEXT NOT NULL REFERENCES ports (port_id) ON DELETE CASCADE,
    PRIMARY KEY (network, resource, port_id)
);
CREATE INDEX IF NOT EXISTS allocations_port ON allocations (port_id);
CREATE TABLE IF NOT EXISTS devices (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    port_id TEXT,
    network TEXT
);
CREATE INDEX IF NOT EXISTS devices_port ON devices (port_id);
CREATE TABLE IF NOT EXISTS guest_links (
    port_id TEXT PRIMARY KEY REFERENCES ports (port_id) ON DELETE CASCADE,
    domain TEXT NOT NULL,
    state TEXT NOT NULL,
    up INTEGER NOT NULL,
    reason TEXT,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS guest_links_domain ON guest_links (domain);
"""
# NOTE(vpd): guest_links came after schema version 1 without a version
# change: CREATE TABLE IF NOT EXISTS adds it to a ledger made before, and
# code that predates it never reads it (its rows go with their port).

#: The allocation of one port (first ``?``) on one network (second).
#: NOTE(vpd): without statistics SQLite looks a (port, network) pair up
#: through the primary key's ``network`` prefix, a scan of the whole
#: network per port: releasing 1000 ports of one pool took 50 ms instead
#: of 3. Every per-port lookup names the port index explicitly.
_PORT_ALLOCATION = ('allocations INDEXED BY allocations_port '
                    'WHERE port_id = ? AND network = ?')


@dataclasses.dataclass(frozen=True)
class PortRecord:
    """What the ledger knows of one port.

    :ivar request: the request the endpoint was built for (its port's
        ``network`` is the network the port is on now).
    :ivar endpoint: the endpoint, or ``None`` while it is being built.
    :ivar state: ``building`` or ``active``.
    :ivar cable: the desired cable state, ``plugged`` or ``unplugged``.
    :ivar health: ``ok``, ``degraded`` (a lower device vanished) or
        ``waiting`` (its lower device has not appeared yet).
    :ivar updated: time of the last change (seconds since the epoch).
    :ivar link: the guest link state wanted: ``follow`` (the cable),
        ``up`` or ``down``.
    """

    request: ports.EndpointRequest
    endpoint: endpoints.Endpoint | None
    state: str
    cable: str
    health: str
    updated: float
    link: str = FOLLOW

    @property
    def guest_link_up(self) -> bool:
        """Whether the guest should see its link up now."""
        if self.link == FOLLOW:
            return self.cable == PLUGGED and self.health == HEALTHY
        return self.link == 'up'

    @property
    def port(self) -> ports.Port:
        """The port."""
        return self.request.port

    @property
    def network(self) -> str:
        """The network the port is on now."""
        return self.request.port.network


#: The guest has the link state its port wants.
GUEST_APPLIED = 'applied'
#: The guest has not been told yet (see :attr:`GuestLinkRecord.reason`).
GUEST_PENDING = 'pending'


@dataclasses.dataclass(frozen=True)
class GuestLinkRecord:
    """Whether a port's guest has the link state the port wants.

    :ivar port_id: the port.
    :ivar domain: the guest (the port's ``vm_uuid``).
    :ivar state: ``applied`` or ``pending``.
    :ivar up: the link state wanted when this was written.
    :ivar reason: why it is pending (``None`` once applied).
    :ivar updated: when this was written (seconds since the epoch).
    """

    port_id: str
    domain: str
    state: str
    up: bool
    reason: str | None = None
    updated: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (for status commands)."""
        return {'domain': self.domain, 'state': self.state,
                'link': 'up' if self.up else 'down', 'reason': self.reason,
                'updated': self.updated}


@dataclasses.dataclass(frozen=True)
class DeviceRecord:
    """A host device the library created.

    :ivar name: the interface name.
    :ivar kind: tap, bridge, macvlan, ... .
    :ivar port_id: the owning port, or ``None`` for a network's device.
    :ivar network: the network it serves, if any.
    """

    name: str
    kind: str
    port_id: str | None
    network: str | None


class Ledger:
    """The persistent record; safe to share between threads and processes.

    :param state_path: directory that holds ``ledger.sqlite3``.
    :param timeout: seconds to wait for another writer.
    :raises LedgerError: the database cannot be opened or is of an
        unknown schema version.
    """

    def __init__(self, state_path: str, timeout: float = 30.0) -> None:
        self.path = os.path.join(state_path, 'ledger.sqlite3')
        self.timeout = timeout
        self._local = threading.local()
        self._lock_dir = os.path.join(state_path, 'locks')
        try:
            os.makedirs(self._lock_dir, mode=0o700, exist_ok=True)
            with self.transaction() as db:
                db.executescript_in_tx(_SCHEMA)
                row = db.execute("SELECT value FROM meta WHERE key = "
                                 "'schema'").fetchone()
                if row is None:
                    db.execute("INSERT INTO meta VALUES ('schema', ?)",
                               (str(_SCHEMA_VERSION),))
                elif int(row[0]) != _SCHEMA_VERSION:
                    raise exception.LedgerError(
                        path=self.path,
                        reason='schema version %s, expected %d' % (
                            row[0], _SCHEMA_VERSION))
        except (OSError, sqlite3.Error) as exc:
            raise exception.LedgerError(path=self.path,
                                        reason=str(exc)) from None

    # -- connections and transactions ------------------------------------

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, 'conn', None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self.timeout,
                                   isolation_level=None)
            conn.execute('PRAGMA journal_mode=WAL')
            # NOTE(vpd): FULL makes every commit durable across a power
            # loss, not only across a process kill; the ledger is small
            # and written at human rates, so the fsync is affordable.
            conn.execute('PRAGMA synchronous=FULL')
            conn.execute('PRAGMA foreign_keys=ON')
            self._local.conn = conn
            self._local.depth = 0
        return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator['_Tx']:
        """Run a block in one write transaction (re-entrant per thread).

        :raises LedgerError: the database is locked past the timeout or
            fails.
        """
        conn = self._connection()
        outer = self._local.depth == 0
        try:
            if outer:
                conn.execute('BEGIN IMMEDIATE')
            self._local.depth += 1
            try:
                yield _Tx(conn)
            finally:
                self._local.depth -= 1
            if outer:
                conn.execute('COMMIT')
        except sqlite3.Error as exc:
            if outer and conn.in_transaction:
                conn.execute('ROLLBACK')
            raise exception.LedgerError(path=self.path,
                                        reason=str(exc)) from None
        except BaseException:
            if outer and conn.in_transaction:
                conn.execute('ROLLBACK')
            raise

    @contextlib.contextmanager
    def port_locks(self, port_ids: list[str] | None) -> Iterator[None]:
        """Hold the cross-process locks of some ports (``None``: all).

        NOTE(vpd): a process's own locks cannot stop another process
        releasing a port this one is connecting, or removing as a leak a
        device this one has just made. Ports hash onto
        :data:`LOCK_STRIPES` lock files (``<state_path>/locks/NN``), taken
        with ``flock`` in order, each on its own open file so that threads
        exclude each other too; a killed process's locks go with it.

        :raises LedgerError: a lock is still held after the timeout.
        """
        stripes = (range(LOCK_STRIPES) if port_ids is None else
                   sorted({zlib.crc32(p.encode('utf-8', 'replace')) %
                           LOCK_STRIPES for p in port_ids}))
        fds: list[int] = []
        try:
            for stripe in stripes:
                fds.append(self._lock_stripe(stripe))
            yield
        finally:
            for fd in reversed(fds):
                os.close(fd)

    def _lock_stripe(self, stripe: int) -> int:
        path = os.path.join(self._lock_dir, '%02d' % stripe)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise exception.LedgerError(path=path, reason=str(exc)) from None
        deadline = time.monotonic() + self.timeout
        pause = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise exception.LedgerError(
                        path=path, reason='port lock still held after %s s'
                                          % self.timeout) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.02)
            except OSError as exc:
                os.close(fd)
                raise exception.LedgerError(path=path,
                                            reason=str(exc)) from None

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, 'conn', None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return self._connection().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise exception.LedgerError(path=self.path,
                                        reason=str(exc)) from None

    # -- ports ----------------------------------------------------------

    def get_port(self, port_id: str) -> PortRecord | None:
        """Return a port's record, or ``None``."""
        rows = self._read('SELECT * FROM ports WHERE port_id = ?',
                          (port_id,))
        return _port_record(rows[0]) if rows else None

    def list_ports(self, network: str | None = None) -> list[PortRecord]:
        """Return every port record (of ``network`` if given)."""
        if network is None:
            rows = self._read('SELECT * FROM ports ORDER BY port_id')
        else:
            rows = self._read('SELECT * FROM ports WHERE network = ? '
                              'ORDER BY port_id', (network,))
        return [_port_record(row) for row in rows]

    def records_by_id(self, port_ids: list[str]) -> dict[str, PortRecord]:
        """Return the records of many ports at once (unknown ids are left
        out).

        NOTE(vpd): one query per few hundred ids instead of one per port:
        a batch of 1000 ports spent more time in SQLite round trips than
        in the privileged call that built them.
        """
        found: dict[str, PortRecord] = {}
        for chunk in _chunks(port_ids):
            rows = self._read('SELECT * FROM ports WHERE port_id IN (%s)' %
                              ', '.join('?' * len(chunk)), tuple(chunk))
            for row in rows:
                record = _port_record(row)
                found[record.port.port_id] = record
        return found

    def endpoints_of(self, port_ids: list[str]) -> dict[str, _Released]:
        """``{port_id: (network, state, endpoint)}`` of many ports,
        without reading their requests (what releasing them needs)."""
        found = {}
        for chunk in _chunks(port_ids):
            rows = self._read('SELECT port_id, network, state, endpoint '
                              'FROM ports WHERE port_id IN (%s)' %
                              ', '.join('?' * len(chunk)), tuple(chunk))
            for port_id, network, state, endpoint in rows:
                found[port_id] = (network, state, endpoints.from_primitive(
                    json.loads(endpoint)) if endpoint else None)
        return found

    def port_ids(self, network: str | None = None) -> set[str]:
        """Return the ids of every port (on ``network`` if given), without
        reading their records."""
        if network is None:
            rows = self._read('SELECT port_id FROM ports')
        else:
            rows = self._read('SELECT port_id FROM ports WHERE network = ?',
                              (network,))
        return {str(row[0]) for row in rows}

    def get_ports(self, port_ids: list[str]) -> list[PortRecord]:
        """Return the records of the recorded ones among ``port_ids``."""
        found = []
        ids = sorted(set(port_ids))
        # NOTE(vpd): SQLite caps the variables of one statement (999 in
        # older builds); ask in slices.
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            found += self._read('SELECT * FROM ports WHERE port_id IN '
                                '(%s) ORDER BY port_id' %
                                ', '.join('?' * len(part)), tuple(part))
        return [_port_record(row) for row in found]

    def port_stamps(self, port_ids: list[str] | None = None
                    ) -> dict[str, float]:
        """Return ``{port_id: time of its last change}`` of the active
        ports (among ``port_ids`` if given): a cheap way to see which
        records changed since an earlier look (the watcher re-reads only
        those)."""
        if port_ids is None:
            return dict(self._read('SELECT port_id, updated FROM ports '
                                   'WHERE state = ?', (ACTIVE,)))
        found: dict[str, float] = {}
        ids = sorted(set(port_ids))
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            found.update(self._read(
                'SELECT port_id, updated FROM ports WHERE state = ? AND '
                'port_id IN (%s)' % ', '.join('?' * len(part)),
                (ACTIVE, *part)))
        return found

    def change_probe(self) -> 'ChangeProbe':
        """Return a probe telling whether anyone committed a change since
        it last looked (see :class:`ChangeProbe`)."""
        return ChangeProbe(self.path, self.timeout)

    def begin_port(self, request: ports.EndpointRequest, cable: str
                   ) -> PortRecord:
        """Record that an endpoint is being built for ``request``.

        :returns: the new record (state ``building``).
        :raises PortConflict: the port is already recorded.
        """
        with self.transaction() as db:
            if db.execute('SELECT 1 FROM ports WHERE port_id = ?',
                          (request.port.port_id,)).fetchone():
                raise exception.PortConflict(port_id=request.port.port_id,
                                             reason='already recorded')
            now = time.time()
            db.execute('INSERT INTO ports VALUES (?, ?, ?, NULL, ?, ?, ?, ?, '
                       '?)', (request.port.port_id, request.port.network,
                              _dump(request), BUILDING, cable, HEALTHY, now,
                              FOLLOW))
        return PortRecord(request, None, BUILDING, cable, HEALTHY, now)

    def begin_ports(self, requests: list[ports.EndpointRequest],
                    cable: str) -> None:
        """Record that endpoints are being built for many requests, in one
        transaction (see :meth:`begin_port`).

        :raises PortConflict: one of the ports is already recorded (none
            is recorded then).
        """
        now = time.time()
        rows = [(r.port.port_id, r.port.network, _dump(r), BUILDING, cable,
                 HEALTHY, now, FOLLOW) for r in requests]
        with self.transaction() as db:
            for chunk in _chunks([r.port.port_id for r in requests]):
                taken = db.execute(
                    'SELECT port_id FROM ports WHERE port_id IN (%s) LIMIT 1'
                    % ', '.join('?' * len(chunk)), tuple(chunk)).fetchone()
                if taken is not None:
                    raise exception.PortConflict(port_id=taken[0],
                                                 reason='already recorded')
            db.executemany('INSERT INTO ports VALUES (?, ?, ?, NULL, ?, ?, '
                           '?, ?, ?)', rows)

    def activate_ports(self, endpoints_: list[endpoints.Endpoint],
                       health: dict[str, str] | None = None) -> None:
        """Store the endpoints built for ports begun with
        :meth:`begin_ports` and mark them ``active``, in one transaction.

        :param health: each port's health (``ok`` when not given).
        :raises PortNotFound: a port is not recorded (nothing changes).
        """
        now = time.time()
        health = health or {}
        rows = [(_dump(e), ACTIVE, health.get(e.port_id, HEALTHY), now,
                 e.port_id) for e in endpoints_]
        with self.transaction() as db:
            cur = db.executemany('UPDATE ports SET endpoint = ?, state = ?, '
                                 'health = ?, updated = ? WHERE port_id = ?',
                                 rows)
            if cur.rowcount != len(rows):
                # NOTE(vpd): the raise rolls the whole batch back; which
                # port was missing is looked up on this path only.
                for row in rows:
                    if db.execute('SELECT 1 FROM ports WHERE port_id = ?',
                                  (row[-1],)).fetchone() is None:
                        raise exception.PortNotFound(port_id=row[-1])

    def update_port(self, port_id: str, *,
                    request: ports.EndpointRequest | None = None,
                    endpoint: endpoints.Endpoint | None = None,
                    state: str | None = None, cable: str | None = None,
                    health: str | None = None,
                    link: str | None = None) -> PortRecord:
        """Change some of a port's fields.

        :raises PortNotFound: the port is not recorded.
        """
        changes: dict[str, Any] = {}
        if request is not None:
            changes['request'] = _dump(request)
            changes['network'] = request.port.network
        if endpoint is not None:
            changes['endpoint'] = _dump(endpoint)
        for name, value in (('state', state), ('cable', cable),
                            ('health', health), ('link', link)):
            if value is not None:
                changes[name] = value
        changes['updated'] = time.time()
        assignments = ', '.join('%s = ?' % name for name in changes)
        with self.transaction() as db:
            cur = db.execute('UPDATE ports SET %s WHERE port_id = ?' %
                             assignments, (*changes.values(), port_id))
            if cur.rowcount == 0:
                raise exception.PortNotFound(port_id=port_id)
            row = db.execute('SELECT * FROM ports WHERE port_id = ?',
                             (port_id,)).fetchone()
        return _port_record(row)

    def set_health(self, port_ids: list[str], health: str) -> float:
        """Set the health of many ports in one transaction.

        :returns: the change time written (each record's ``updated``);
            unknown ports are skipped.
        """
        now = time.time()
        with self.transaction() as db:
            db.executemany('UPDATE ports SET health = ?, updated = ? WHERE '
                           'port_id = ?',
                           [(health, now, port_id) for port_id in port_ids])
        return now

    def delete_port(self, port_id: str) -> None:
        """Forget a port, its allocations and its device records."""
        self.delete_ports([port_id])

    def delete_ports(self, port_ids: list[str]) -> None:
        """Forget ports, their allocations and their device records, in
        one transaction."""
        rows = [(port_id,) for port_id in port_ids]
        with self.transaction() as db:
            db.executemany('DELETE FROM devices WHERE port_id = ?', rows)
            db.executemany('DELETE FROM ports WHERE port_id = ?', rows)

    # -- pool allocations -------------------------------------------------

    def allocate(self, network: str, port_id: str,
                 candidates: list[tuple[str, int | None]]) -> str:
        """Give ``port_id`` the least-loaded resource with room left.

        The count and the insert happen in one transaction, so two
        processes can never both take the last place of a resource.

        :param candidates: ``(resource, limit)`` pairs in preference order
            (ties in load keep this order); ``limit`` ``None`` is no limit.
        :returns: the resource allocated.
        :raises PoolExhausted: every candidate is full.
        """
        with self.transaction() as db:
            held = db.execute('SELECT resource FROM ' + _PORT_ALLOCATION,
                              (port_id, network)).fetchone()
            if held is not None:
                return str(held[0])
            load = dict(db.execute(
                'SELECT resource, COUNT(*) FROM allocations WHERE '
                'network = ? GROUP BY resource', (network,)).fetchall())
            resource = _least_loaded(network, candidates, load)
            db.execute('INSERT INTO allocations VALUES (?, ?, ?)',
                       (network, resource, port_id))
            return resource

    def allocate_many(self, network: str,
                      wanted: list[tuple[str, list[tuple[str, int | None]]]]
                      ) -> list[str]:
        """Allocate for many ports in one transaction, exactly as many
        :meth:`allocate` calls in a row would.

        NOTE(vpd): one transaction (one fsync) and one load count for the
        whole batch; a transaction per port made allocating 1000 ports of
        a pool cost more than building their devices.

        :param wanted: ``(port_id, candidates)`` pairs, in order.
        :returns: the resources, in the order of ``wanted``.
        :raises PoolExhausted: a port finds every candidate full (nothing
            is allocated then).
        """
        chosen = []
        with self.transaction() as db:
            load: dict[str, int] = dict(db.execute(
                'SELECT resource, COUNT(*) FROM allocations WHERE '
                'network = ? GROUP BY resource', (network,)).fetchall())
            held = _held(db.execute, [port_id for port_id, _ in wanted],
                         network)
            rows = []
            for port_id, candidates in wanted:
                if port_id in held:
                    chosen.append(held[port_id])
                    continue
                resource = _least_loaded(network, candidates, load)
                load[resource] = load.get(resource, 0) + 1
                held[port_id] = resource
                rows.append((network, resource, port_id))
                chosen.append(resource)
            db.executemany('INSERT INTO allocations VALUES (?, ?, ?)', rows)
        return chosen

    def release_many(self, port_ids: list[str], network: str) -> None:
        """Release many ports' allocations on ``network`` in one
        transaction."""
        with self.transaction() as db:
            db.executemany('DELETE FROM ' + _PORT_ALLOCATION,
                           [(p, network) for p in port_ids])

    def release(self, port_id: str, network: str | None = None) -> None:
        """Release a port's allocations (on ``network`` only, if given)."""
        with self.transaction() as db:
            if network is None:
                db.execute('DELETE FROM allocations WHERE port_id = ?',
                           (port_id,))
            else:
                db.execute('DELETE FROM ' + _PORT_ALLOCATION,
                           (port_id, network))

    def allocation(self, port_id: str, network: str) -> str | None:
        """Return the resource ``port_id`` holds on ``network``, if any."""
        rows = self._read('SELECT resource FROM ' + _PORT_ALLOCATION,
                          (port_id, network))
        return str(rows[0][0]) if rows else None

    def allocations_of(self, port_ids: list[str], network: str
                       ) -> dict[str, str]:
        """Return ``{port_id: resource}`` of the ports among ``port_ids``
        that hold one on ``network``."""
        return _held(self._read, port_ids, network)

    def allocations(self, network: str | None = None
                    ) -> dict[tuple[str, str], list[str]]:
        """Return ``{(network, resource): [port_id, ...]}``."""
        if network is None:
            rows = self._read('SELECT network, resource, port_id FROM '
                              'allocations ORDER BY 1, 2, 3')
        else:
            rows = self._read('SELECT network, resource, port_id FROM '
                              'allocations WHERE network = ? ORDER BY 1, 2, '
                              '3', (network,))
        result: dict[tuple[str, str], list[str]] = {}
        for net, resource, port_id in rows:
            result.setdefault((net, resource), []).append(port_id)
        return result

    # -- devices ----------------------------------------------------------

    def record_devices(self, records: list[DeviceRecord]) -> None:
        """Record devices the library created (replacing same names)."""
        with self.transaction() as db:
            db.executemany('INSERT OR REPLACE INTO devices VALUES '
                           '(?, ?, ?, ?)',
                           [(r.name, r.kind, r.port_id, r.network)
                            for r in records])

    def forget_devices(self, names: list[str]) -> None:
        """Forget device records by name."""
        with self.transaction() as db:
            db.executemany('DELETE FROM devices WHERE name = ?',
                           [(name,) for name in names])

    def devices_of(self, port_ids: list[str]) -> list[DeviceRecord]:
        """Return the device records of many ports at once."""
        found: list[DeviceRecord] = []
        for chunk in _chunks(port_ids):
            rows = self._read('SELECT * FROM devices WHERE port_id IN (%s) '
                              'ORDER BY name' % ', '.join('?' * len(chunk)),
                              tuple(chunk))
            found.extend(DeviceRecord(*row) for row in rows)
        return found

    def devices(self, port_id: str | None = None) -> list[DeviceRecord]:
        """Return device records (of ``port_id`` if given)."""
        if port_id is None:
            rows = self._read('SELECT * FROM devices ORDER BY name')
        else:
            rows = self._read('SELECT * FROM devices WHERE port_id = ? '
                              'ORDER BY name', (port_id,))
        return [DeviceRecord(*row) for row in rows]

    # -- guest links ------------------------------------------------------

    def set_guest_links(self, records: list[GuestLinkRecord]) -> None:
        """Record, in one transaction, what each port's guest was told;
        ports no longer recorded are skipped."""
        if not records:
            return
        now = time.time()
        with self.transaction() as db:
            # NOTE(vpd): only for a port still recorded: another thread
            # may have released it since its guest was told.
            db.executemany(
                'INSERT OR REPLACE INTO guest_links SELECT ?, ?, ?, ?, ?, ? '
                'WHERE EXISTS (SELECT 1 FROM ports WHERE port_id = ?)',
                [(r.port_id, r.domain, r.state, int(r.up), r.reason,
                  r.updated or now, r.port_id) for r in records])

    def forget_guest_links(self, port_ids: list[str]) -> None:
        """Forget what was recorded of some ports' guests."""
        with self.transaction() as db:
            db.executemany('DELETE FROM guest_links WHERE port_id = ?',
                           [(port_id,) for port_id in port_ids])

    def guest_ports(self, domain: str) -> list[str]:
        """The ports recorded with a guest link to ``domain``, sorted.

        NOTE(vpd): through the domain index, not by parsing every port
        record: a guest starting on a host with 4000 ports would cost
        about 0.2 s of JSON otherwise. Every port with a guest has a row
        once its guest was first told (or found pending).
        """
        return [row[0] for row in self._read(
            'SELECT port_id FROM guest_links WHERE domain = ? ORDER BY '
            'port_id', (domain,))]

    def guest_links(self, port_ids: list[str] | None = None,
                    state: str | None = None
                    ) -> dict[str, GuestLinkRecord]:
        """``{port_id: GuestLinkRecord}`` of the given ports (every port
        when ``None``), of one ``state`` if given."""
        rows: list[Any] = []
        where = '' if state is None else ' AND state = ?'
        extra: tuple[Any, ...] = () if state is None else (state,)
        if port_ids is None:
            rows = self._read('SELECT * FROM guest_links WHERE 1' + where,
                              extra)
        else:
            for chunk in _chunks(port_ids):
                rows += self._read(
                    'SELECT * FROM guest_links WHERE port_id IN (%s)%s' % (
                        ', '.join('?' * len(chunk)), where),
                    tuple(chunk) + extra)
        return {row[0]: GuestLinkRecord(
            port_id=row[0], domain=row[1], state=row[2], up=bool(row[3]),
            reason=row[4], updated=row[5]) for row in rows}

    def check(self) -> list[str]:
        """Check the database and the ledger's invariants.

        :returns: a list of problems; empty when all is well.
        """
        problems = [row[0] for row in self._read('PRAGMA integrity_check')
                    if row[0] != 'ok']
        for row in self._read('SELECT a.port_id FROM allocations a LEFT '
                              'JOIN ports p USING (port_id) WHERE '
                              'p.port_id IS NULL'):
            problems.append('allocation held by unknown port %s' % row[0])
        return problems


class ChangeProbe:
    """Tells, for the price of one pragma, whether the ledger changed.

    NOTE(vpd): SQLite's ``data_version`` changes when *another*
    connection commits, in this process or any other. The probe keeps a
    connection of its own that never writes, so every commit counts,
    whoever made it. Use it from one thread at a time.
    """

    def __init__(self, path: str, timeout: float) -> None:
        self._path = path
        self._timeout = timeout
        self._conn: sqlite3.Connection | None = None
        self._seen: int | None = None

    def changed(self) -> bool:
        """Whether a change was committed since the previous call (always
        ``True`` the first time).

        :raises LedgerError: the database cannot be read.
        """
        try:
            if self._conn is None:
                self._conn = sqlite3.connect(self._path,
                                             timeout=self._timeout,
                                             isolation_level=None,
                                             check_same_thread=False)
            version = self._conn.execute('PRAGMA data_version').fetchone()[0]
        except sqlite3.Error as exc:
            raise exception.LedgerError(path=self._path,
                                        reason=str(exc)) from None
        changed = version != self._seen
        self._seen = version
        return changed

    def close(self) -> None:
        """Close the probe's connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _Tx:
    """The connection as seen inside :meth:`Ledger.transaction`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, args: tuple[Any, ...] = ()
                ) -> sqlite3.Cursor:
        return self._conn.execute(sql, args)

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]
                    ) -> sqlite3.Cursor:
        return self._conn.executemany(sql, rows)

    def executescript_in_tx(self, script: str) -> None:
        # NOTE(vpd): sqlite3's executescript() would COMMIT first; run the
        # statements one by one so the schema is created atomically.
        for statement in script.split(';'):
            if statement.strip():
                self._conn.execute(statement)


def _least_loaded(network: str, candidates: list[tuple[str, int | None]],
                  load: dict[str, int]) -> str:
    """The candidate with the fewest allocations and room left (ties keep
    the candidates' order).

    :raises PoolExhausted: every candidate is at its limit.
    """
    best = None
    for order, (resource, limit) in enumerate(candidates):
        used = load.get(resource, 0)
        if limit is not None and used >= limit:
            continue
        if best is None or used < best[0]:
            best = (used, order, resource)
    if best is None:
        raise exception.PoolExhausted(
            network=network, resource='pool resource',
            reason='all of %s are at their connection limit' %
                   ', '.join(r for r, _ in candidates))
    return best[2]


#: Ids per ``IN (...)`` query: under SQLite's oldest variable limit (999).
_CHUNK = 500


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


def _held(read: Callable[[str, tuple[Any, ...]], Iterable[Any]],
          port_ids: list[str], network: str) -> dict[str, str]:
    """``{port_id: resource}`` of the ports among ``port_ids`` holding
    one on ``network``, a query per chunk run by ``read(sql, args)`` (in
    a transaction or not)."""
    held: dict[str, str] = {}
    for chunk in _chunks(port_ids):
        rows = read('SELECT port_id, resource FROM allocations INDEXED BY '
                    'allocations_port WHERE network = ? AND port_id IN (%s)'
                    % ', '.join('?' * len(chunk)), (network, *chunk))
        held.update((str(port_id), str(resource))
                    for port_id, resource in rows)
    return held


#: One encoder for every record (``json.dumps`` builds one per call).
_ENCODER = json.JSONEncoder(sort_keys=True)


def _dump(obj: Any) -> str:
    return _ENCODER.encode(obj.to_primitive())


def _port_record(row: Any) -> PortRecord:
    (_port_id, _network, request, endpoint, state, cable, health,
     updated, link) = row
    return PortRecord(
        request=ports.EndpointRequest.from_primitive(json.loads(request)),
        endpoint=(endpoints.from_primitive(json.loads(endpoint))
                  if endpoint else None),
        state=state, cable=cable, health=health, updated=updated, link=link)
