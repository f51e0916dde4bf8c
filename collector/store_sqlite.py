"""The embedded store: one SQLite file in WAL mode.

One writer thread owns the write connection (SQLite has one writer anyway) and a reader thread
owns a second connection, so reads never wait for an ingest transaction. `synchronous=FULL`
by default: a batch is acknowledged only after its transaction is on disk, and the gateway
deletes what was acknowledged, so a power cut after the ack must not lose it.

The WAL is copied into the database file (checkpointed) by a thread of its own, on a connection
of its own, in PASSIVE mode, every CHECKPOINT_EVERY_S when something was written: a PASSIVE
checkpoint takes no write lock, so ingest goes on while it copies. The writer connection never
checkpoints (wal_autocheckpoint=0): SQLite's automatic checkpoint runs inside the COMMIT that
crosses the threshold, on the one writer thread, and every batch queued behind that commit waited
for the whole copy and its fsync (1.7 s measured beside a retention run, which writes many
pages). Only if the WAL outgrows WAL_CATCH_UP_PAGES anyway (a writer so busy that the passive
checkpoints never find it between two transactions, so the WAL never starts over) does the writer
thread copy what is left, between two transactions, as SQLite's automatic checkpoint did.
Durability does not depend on checkpoints: a committed transaction is in the WAL, fsynced, and a
kill -9 or a power cut replays the WAL at the next open. The mode is never TRUNCATE, RESTART or
FULL while the store is open: those wait for the writer and hold the write lock.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import orjson

from citygate_wire.batch import WireRecord
from citygate_wire.common import now_ms
from collector.alarms.store import SQLITE_MIGRATION as ALARMS_MIGRATION
from collector.alarms.store import AlarmQueries
from collector.cameras.store import SQLITE_MIGRATION as CAMERAS_MIGRATION
from collector.cameras.store import CameraQueries
from collector.control.engines import SQLITE_MIGRATION, SqliteControl
from collector.control.store import REASON_MIGRATION as COMMAND_REASON_MIGRATION
from collector.credentials import ACTIVE, CredentialQueries
from collector.credentials import SQLITE_MIGRATION as CREDENTIALS_MIGRATION
from collector.errors import GatewayExists, StoreError, UnknownGateway
from collector.model import (
    ROLLUP_COLUMNS,
    Gateway,
    GatewayInfo,
    IngestResult,
    Level,
    Period,
    RecordCounts,
    Rollup,
    StoredEvent,
    StoredSample,
)
from collector.parking.store import SQLITE_MIGRATION as PARKING_MIGRATION
from collector.parking.store import ParkingQueries
from collector.positions import SQLITE_MIGRATION as POSITIONS_MIGRATION
from collector.positions import PositionQueries
from collector.readmodel import INDEX_MIGRATION, ReadModelQueries
from collector.reports.store import ATTRIBUTES_MIGRATION as REPORT_ATTRIBUTES_MIGRATION
from collector.reports.store import SQLITE_MIGRATION as REPORTS_MIGRATION
from collector.reports.store import WORKQUEUE_MIGRATION as REPORTS_QUEUE_MIGRATION
from collector.reports.store import ReportQueries
from collector.rollup import DeviceState
from collector.sqlprims import counted_page_sql, page_rows
from collector.store_common import (
    ROLLUP_TABLES,
    STATE_COLUMNS,
    DeviceStates,
    InsertEvents,
    InsertSamples,
    InsertTraffic,
    SeenSeqs,
    Step,
    TouchGateway,
    UpsertRollups,
    UpsertStates,
    ingest_steps,
    rollup_query,
    run_steps,
    state_from_row,
    state_upsert_sql,
    upsert_sql,
)
from collector.traffic.store import SQLITE_MIGRATION as TRAFFIC_MIGRATION
from collector.traffic.store import TrafficQueries, insert_sqlite
from collector.vehicles.store import SQLITE_MIGRATION as VEHICLES_MIGRATION
from collector.vehicles.store import VehicleQueries

T = TypeVar("T")
log = logging.getLogger("citygate.collector")


def _param(_: int) -> str:
    return "?"


_UPSERTS = {table: upsert_sql(table, key, _param) for table, key in ROLLUP_TABLES.values()}
_STATE_UPSERT = state_upsert_sql(_param)

#: (version, script). Applied in order at open, each in its own transaction; never edit a released one.
MIGRATIONS: list[tuple[int, str]] = [
    (1, """
CREATE TABLE gateways (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    commune      TEXT    NOT NULL,
    cabinet      TEXT,
    lat          REAL,
    lon          REAL,
    token_hash   TEXT    NOT NULL UNIQUE,
    created_ms   INTEGER NOT NULL,
    last_seen_ms INTEGER,
    last_seq     INTEGER
);
CREATE TABLE samples (
    gateway_id INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    device     TEXT    NOT NULL,
    ts_ms      INTEGER NOT NULL,
    vals       TEXT    NOT NULL,   -- the sample's values, JSON
    PRIMARY KEY (gateway_id, seq)
) WITHOUT ROWID;
CREATE INDEX samples_by_device ON samples (gateway_id, device, ts_ms);
CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    gateway_id INTEGER NOT NULL,
    seq        INTEGER,            -- NULL for events the collector itself derives
    device     TEXT    NOT NULL,
    ts_ms      INTEGER NOT NULL,
    code       TEXT    NOT NULL,
    severity   TEXT    NOT NULL,
    detail     TEXT    NOT NULL    -- JSON
);
CREATE UNIQUE INDEX events_by_seq ON events (gateway_id, seq);
CREATE INDEX events_by_time ON events (ts_ms);
"""),
    (2, """
CREATE TABLE device_state (
    gateway_id INTEGER NOT NULL,
    device     TEXT    NOT NULL,
    last_ts_ms INTEGER,
    energy_wh  REAL,
    volume_m3  REAL,
    lamp_on    INTEGER,
    on_hour    INTEGER,
    on_day     TEXT,
    fault_hour INTEGER,
    fault_day  TEXT,
    PRIMARY KEY (gateway_id, device)
) WITHOUT ROWID;
""" + "".join(
        f"""
CREATE TABLE {table} (
    {key} {'INTEGER' if key == 'gateway_id' else 'TEXT'} NOT NULL,
    bucket {'INTEGER' if table.endswith('hour') else 'TEXT'} NOT NULL,
    energy_wh REAL NOT NULL, burn_ms INTEGER NOT NULL, lamps_on INTEGER NOT NULL, lamps_faulty INTEGER NOT NULL,
    water_m3 REAL NOT NULL, alarms INTEGER NOT NULL, samples INTEGER NOT NULL, events INTEGER NOT NULL,
    PRIMARY KEY ({key}, bucket)
) WITHOUT ROWID;"""
        for table, key in ROLLUP_TABLES.values()
    )),
    (3, SQLITE_MIGRATION),  # the MQTT control plane (collector.control)
    (4, REPORTS_MIGRATION),  # residents' reports (collector.reports)
    (5, INDEX_MIGRATION),  # open lamp faults (collector.readmodel)
    (6, CREDENTIALS_MIGRATION),  # removed gateways, operators' sessions, audit (collector.credentials)
    (7, REPORT_ATTRIBUTES_MIGRATION),  # reporters' answers to attributes (collector.reports)
    (8, TRAFFIC_MIGRATION),  # traffic counts (collector.traffic)
    (9, PARKING_MIGRATION),  # on-street parking (collector.parking)
    (10, CAMERAS_MIGRATION),  # cameras' places (collector.cameras)
    (11, VEHICLES_MIGRATION),  # service vehicles, streets, operators' roles (collector.vehicles)
    (12, POSITIONS_MIGRATION),  # each lamp's own position, imported (collector.positions)
    (13, ALARMS_MIGRATION),  # operators' alarms: one per cause, cleared on restore (collector.alarms)
    (14, COMMAND_REASON_MIGRATION),  # the operator's reason kept with a command (collector.control)
    (15, REPORTS_QUEUE_MIGRATION),  # reports as a work queue: assignee, change ref (collector.reports)
]

_GATEWAY_COLS = "id, name, commune, cabinet, lat, lon"
#: a page of gateways(): collector.sqlprims.counted_page_sql
_GATEWAYS_PAGE = counted_page_sql(f"{_GATEWAY_COLS}, created_ms, last_seen_ms, last_seq", "gateways", ACTIVE, "name")
CHECKPOINT_EVERY_S = 1.0
WAL_CATCH_UP_PAGES = 10_000  # about 40 MB of WAL
#: most rows a multi-row INSERT carries. Its one sqlite3_step releases the GIL once for them all, where
#: executemany takes the GIL back after every row, and waits for it while the event loop decodes
#: the next batch: the writer thread stalled for as long as the decoding ran. The larger the
#: statement the fewer the steps: 5000 rows went in 10.3 ms as 10 statements of 500, 8.3 ms as
#: 2 of 2500 (executemany: 10.5 ms). Rows are cut in powers of two (4217 = 2048 + 2048 + 64 + 16
#: + 8 + 1), so a handful of statements serve every batch size from the statement cache: compiling
#: one costs 1.7 us a row, as much as inserting it.
_MAX_ROWS_PER_INSERT = 2048
#: prepared statements a connection keeps: the power-of-two sizes of each multi-row statement
_CACHED_STATEMENTS = 256
#: the gateway is bound once a statement as ?1, each row binding the four others (5 % faster)
_INSERT_SAMPLE = "INSERT INTO samples (gateway_id, seq, device, ts_ms, vals) VALUES (?1, ?, ?, ?, ?)"


@lru_cache(maxsize=_CACHED_STATEMENTS)
def _multi_row(sql: str, rows: int) -> str:
    """`sql`, an INSERT of one parenthesised VALUES row, made to insert `rows` rows. A numbered
    parameter (?1) in the row is the same value in every row; each `?` is a new one."""
    head, sep, rest = sql.partition(" VALUES (")
    one, _, tail = rest.partition(")")
    if not sep:
        raise ValueError(f"not an INSERT ... VALUES (...): {sql}")
    return f"{head} VALUES {', '.join([f'({one})'] * rows)}{tail}"


def _execute_rows(db: sqlite3.Connection, sql: str, width: int, params: list[Any], shared: tuple[Any, ...] = ()) -> None:
    """executemany(sql, rows), the rows' `width` parameters one after the other in `params`, in
    multi-row statements of a power of two rows, at most _MAX_ROWS_PER_INSERT (and within the
    library's limit on parameters). `shared` are the values of the numbered parameters ?1.."""
    limit = db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - len(shared)
    cap = min(_MAX_ROWS_PER_INSERT, limit // width)
    cap = 1 << (cap.bit_length() - 1)
    i, left = 0, len(params) // width
    while left:
        rows = min(cap, 1 << (left.bit_length() - 1))
        part = params[i:i + rows * width]
        db.execute(_multi_row(sql, rows), [*shared, *part] if shared else part)
        i += rows * width
        left -= rows


def _gateway(row: Sequence[Any]) -> Gateway:
    return Gateway(row[0], row[1], row[2], row[3], row[4], row[5])


class SqliteStore(SqliteControl, ReportQueries, ReadModelQueries, CredentialQueries, ParkingQueries,
                  TrafficQueries, VehicleQueries, CameraQueries, PositionQueries, AlarmQueries):
    def __init__(self, path: Path, *, synchronous: str = "FULL", busy_timeout_ms: int = 10_000) -> None:
        self.path = path
        self.url = f"sqlite://{path}"
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-w")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-r")
        self._w: sqlite3.Connection | None = None
        self._r: sqlite3.Connection | None = None
        self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-ckpt")
        self._c: sqlite3.Connection | None = None
        self._c_version: int | None = None  # PRAGMA data_version at the last checkpoint
        self._checkpoints: asyncio.Task[None] | None = None
        self._loop_db: sqlite3.Connection | None = None  # point reads on the event loop, never waiting
        # device states as the last committed ingest left them, by gateway id (writer thread only);
        # valid while no other connection wrote (PRAGMA data_version), dropped on any failure
        self._states: dict[int, dict[str, DeviceState]] = {}
        self._data_version: int | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self._on(self._writer, self._open_writer)
        await self._on(self._reader, self._open_reader)
        self._loop_db = self._connect(busy_timeout_ms=0)
        self._loop_db.execute("PRAGMA query_only=ON")
        await self._on(self._checkpointer, self._open_checkpointer)
        self._checkpoints = asyncio.get_running_loop().create_task(self._checkpoint_loop())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            await asyncio.gather(self._checkpoints, return_exceptions=True)
            self._checkpoints = None
        await self._on(self._checkpointer, self._close_checkpointer)
        self._checkpointer.shutdown(wait=True)
        if self._loop_db is not None:
            self._loop_db.close()
            self._loop_db = None
        await self._on(self._reader, self._close_reader)
        await self._on(self._writer, self._close_writer)
        self._reader.shutdown(wait=True)
        self._writer.shutdown(wait=True)

    def _connect(self, busy_timeout_ms: int | None = None) -> sqlite3.Connection:
        timeout = self.busy_timeout_ms if busy_timeout_ms is None else busy_timeout_ms
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                 cached_statements=_CACHED_STATEMENTS)
            db.execute(f"PRAGMA busy_timeout={int(timeout)}")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open: {exc}") from exc
        return db

    def _open_writer(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            db.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread's work (module docstring)
            self._migrate(db)
        except sqlite3.Error as exc:
            db.close()
            raise StoreError(f"{self.path}: {exc}") from exc
        self._w = db

    def _migrate(self, db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        for version, script in MIGRATIONS:
            db.execute("BEGIN IMMEDIATE")
            try:
                current = db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
                if version > current:
                    for statement in script.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _open_reader(self) -> None:
        db = self._connect()
        db.execute("PRAGMA query_only=ON")
        self._r = db

    def _open_checkpointer(self) -> None:
        self._c = self._connect()

    def _close_checkpointer(self) -> None:
        if self._c is not None:
            self._c.close()
            self._c = None

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY_S)
            try:
                await self.checkpoint(only_if_written=True)
            except (sqlite3.Error, StoreError) as exc:
                log.warning("WAL checkpoint failed (%s): trying again in %.0f s", exc, CHECKPOINT_EVERY_S)

    async def checkpoint(self, *, only_if_written: bool = False) -> int:
        """Copy the WAL into the database file on the checkpointer thread (PASSIVE: ingest goes on);
        the frames it left uncopied (written meanwhile), 0 when the WAL may start over at the next
        write. Should the WAL hold more than WAL_CATCH_UP_PAGES, the writer thread copies the rest
        between two transactions, so that it starts over."""
        frames, left = await self._on(self._checkpointer, self._checkpoint_passive, only_if_written)
        if frames > WAL_CATCH_UP_PAGES:
            log.info("WAL at %d pages: the writer checkpoints it between two transactions", frames)
            frames, left = await self._on(self._writer, self._checkpoint_on, self._wdb())
        return left

    def _checkpoint_passive(self, only_if_written: bool) -> tuple[int, int]:
        if self._c is None:
            raise StoreError(f"{self.path}: store is not open")
        version = self._c.execute("PRAGMA data_version").fetchone()[0]
        if only_if_written and version == self._c_version:
            return 0, 0
        self._c_version = version
        return self._checkpoint_on(self._c)

    @staticmethod
    def _checkpoint_on(db: sqlite3.Connection) -> tuple[int, int]:
        """(frames in the WAL, frames not copied) after a PASSIVE checkpoint."""
        _, frames, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(frames), max(0, int(frames) - int(copied))

    def _close_writer(self) -> None:
        if self._w is not None:
            self._w.close()
            self._w = None

    def _close_reader(self) -> None:
        if self._r is not None:
            self._r.close()
            self._r = None

    async def _on(self, executor: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    def _wdb(self) -> sqlite3.Connection:
        if self._w is None:
            raise StoreError(f"{self.path}: store is not open")
        return self._w

    def _rdb(self) -> sqlite3.Connection:
        if self._r is None:
            raise StoreError(f"{self.path}: store is not open")
        return self._r

    # -- gateways -----------------------------------------------------------------------------

    async def add_gateway(
        self,
        name: str,
        commune: str,
        token_hash: str,
        *,
        cabinet: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
    ) -> Gateway:
        return await self._on(self._writer, self._add_gateway, name, commune, token_hash, cabinet, lat, lon)

    def _add_gateway(
        self, name: str, commune: str, token_hash: str, cabinet: str | None, lat: float | None, lon: float | None
    ) -> Gateway:
        db = self._wdb()
        try:
            cur = db.execute(
                "INSERT INTO gateways (name, commune, cabinet, lat, lon, token_hash, created_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, commune, cabinet, lat, lon, token_hash, now_ms()),
            )
        except sqlite3.IntegrityError as exc:
            if "gateways.name" in str(exc):
                raise GatewayExists(name) from None
            raise StoreError(f"cannot add gateway {name!r}: {exc}") from exc
        assert cur.lastrowid is not None
        return Gateway(cur.lastrowid, name, commune, cabinet, lat, lon)

    async def gateway_for_token(self, token_hash: str) -> Gateway | None:
        """Every batch asks this first. An indexed read of one row takes tens of microseconds, a hop
        to the reader thread and back a few hundred, so it runs on the event loop, never waiting
        (busy_timeout 0): a WAL reader does not wait for the writer. Should it fail all the same
        (busy during a recovery after a crash, or any other error), the reader thread, which may
        wait, answers instead, and reports the error if there is one."""
        if self._loop_db is not None:
            try:
                return self._gateway_in(self._loop_db, "token_hash", token_hash)
            except sqlite3.Error as exc:
                log.debug("gateway lookup on the loop failed (%s): asking the reader thread", exc)
        return await self._on(self._reader, self._gateway_where, "token_hash", token_hash)

    async def gateway(self, name: str) -> Gateway | None:
        return await self._on(self._reader, self._gateway_where, "name", name)

    def _gateway_where(self, column: str, value: str) -> Gateway | None:
        return self._gateway_in(self._rdb(), column, value)

    @staticmethod
    def _gateway_in(db: sqlite3.Connection, column: str, value: str) -> Gateway | None:
        row = db.execute(f"SELECT {_GATEWAY_COLS} FROM gateways WHERE {column} = ? AND {ACTIVE}", (value,)).fetchone()
        return _gateway(row) if row else None

    async def gateways(self) -> list[GatewayInfo]:
        return await self._on(self._reader, self._gateways)

    def _gateways(self) -> list[GatewayInfo]:
        rows = self._rdb().execute(
            f"SELECT {_GATEWAY_COLS}, created_ms, last_seen_ms, last_seq FROM gateways WHERE {ACTIVE} ORDER BY name"
        ).fetchall()
        return [GatewayInfo(_gateway(r), r[6], r[7], r[8]) for r in rows]

    async def gateways_page(self, limit: int, offset: int) -> tuple[list[GatewayInfo], int]:
        rows, total = page_rows(await self._ctl_rows(_GATEWAYS_PAGE, limit, offset))
        return [GatewayInfo(_gateway(r), r[6], r[7], r[8]) for r in rows], total

    # -- ingest -------------------------------------------------------------------------------

    async def ingest(self, gateway: Gateway, records: Sequence[WireRecord]) -> IngestResult:
        return await self._on(self._writer, self._ingest, gateway, records)

    def _ingest(self, gateway: Gateway, records: Sequence[WireRecord]) -> IngestResult:
        db = self._wdb()
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA data_version").fetchone()[0]
            if version != self._data_version:  # another process wrote: what is cached may be stale
                self._states.clear()
                self._data_version = version
            result = run_steps(ingest_steps(gateway, records), lambda step: self._step(db, step))
            db.execute("COMMIT")
        except BaseException:
            self._states.clear()  # roll_up changed them in place for what is now rolled back
            db.execute("ROLLBACK")
            raise
        return result

    def _step(self, db: sqlite3.Connection, step: Step) -> Any:
        """SQLite's side of one step of the ingest algorithm (collector.store_common)."""
        match step:
            case SeenSeqs(gid, lo, hi):
                return {
                    seq for (seq,) in db.execute(
                        "SELECT seq FROM samples WHERE gateway_id = ?1 AND seq BETWEEN ?2 AND ?3"
                        " UNION ALL SELECT seq FROM events WHERE gateway_id = ?1 AND seq BETWEEN ?2 AND ?3",
                        (gid, lo, hi),
                    )
                }
            case InsertSamples(gid, records):
                dumps = orjson.dumps
                flat: list[Any] = []
                for r in records:
                    if r.kind == "sample":
                        flat += (r.seq, r.device, r.ts_ms, dumps(r.values).decode())
                _execute_rows(db, _INSERT_SAMPLE, 4, flat, (gid,))
            case InsertTraffic(rows):
                insert_sqlite(db, rows)
            case InsertEvents(rows):
                db.executemany(
                    "INSERT INTO events (gateway_id, seq, device, ts_ms, code, severity, detail)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            case DeviceStates(gid):
                states = self._states.get(gid)
                if states is None:
                    states = self._states[gid] = {
                        row[0]: state_from_row(row[1:])
                        for row in db.execute(
                            f"SELECT device, {', '.join(STATE_COLUMNS)} FROM device_state WHERE gateway_id = ?", (gid,))
                    }
                return states
            case UpsertRollups(table, rows):
                _execute_rows(db, _UPSERTS[table], 2 + len(ROLLUP_COLUMNS), [v for row in rows for v in row])
            case UpsertStates(rows):
                _execute_rows(db, _STATE_UPSERT, 2 + len(STATE_COLUMNS), [v for row in rows for v in row])
            case TouchGateway(gid, hi, now):
                db.execute(
                    "UPDATE gateways SET last_seen_ms = ?1, last_seq = MAX(COALESCE(last_seq, ?2), ?2) WHERE id = ?3",
                    (now, hi, gid),
                )
        return None

    # -- reads --------------------------------------------------------------------------------

    async def recent_samples(self, gateway: Gateway, device: str, limit: int = 100) -> list[StoredSample]:
        return await self._on(self._reader, self._recent_samples, gateway.id, device, limit)

    def _recent_samples(self, gid: int, device: str, limit: int) -> list[StoredSample]:
        rows = self._rdb().execute(
            "SELECT seq, ts_ms, vals FROM samples WHERE gateway_id = ? AND device = ?"
            " ORDER BY ts_ms DESC, seq DESC LIMIT ?",
            (gid, device, limit),
        )
        return [StoredSample(seq, ts, orjson.loads(vals)) for seq, ts, vals in rows]

    async def recent_events(self, gateway: Gateway, limit: int = 100) -> list[StoredEvent]:
        return await self._on(self._reader, self._recent_events, gateway.id, limit)

    def _recent_events(self, gid: int, limit: int) -> list[StoredEvent]:
        rows = self._rdb().execute(
            "SELECT seq, device, ts_ms, code, severity, detail FROM events WHERE gateway_id = ?"
            " ORDER BY ts_ms DESC, id DESC LIMIT ?",
            (gid, limit),
        )
        return [StoredEvent(seq, dev, ts, code, sev, orjson.loads(detail)) for seq, dev, ts, code, sev, detail in rows]

    async def count_records(self, gateway: Gateway | None = None) -> RecordCounts:
        return await self._on(self._reader, self._count_records, None if gateway is None else gateway.id)

    def _count_records(self, gid: int | None) -> RecordCounts:
        db = self._rdb()
        where, args = ("WHERE gateway_id = ?", (gid,)) if gid is not None else ("", ())
        samples = db.execute(f"SELECT COUNT(*) FROM samples {where}", args).fetchone()[0]
        events = db.execute(f"SELECT COUNT(*) FROM events {where}", args).fetchone()[0]
        return RecordCounts(samples, events)

    async def rollups(
        self, level: Level, period: Period, key: str | None, first: int | str, last: int | str
    ) -> list[Rollup]:
        return await self._on(self._reader, self._rollups, level, period, key, first, last)

    def _rollups(self, level: Level, period: Period, key: str | None, first: int | str, last: int | str) -> list[Rollup]:
        db = self._rdb()
        args: tuple[Any, ...] = (first, last)
        if level == "gateway":
            row = db.execute("SELECT id FROM gateways WHERE name = ?", (key,)).fetchone()
            if row is None:
                raise UnknownGateway(str(key))
            args = (row[0], first, last)
        elif level == "commune":
            args = (key, first, last)
        return [Rollup(*row) for row in db.execute(rollup_query(level, period, _param), args)]
