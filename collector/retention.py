"""Retention: raw samples kept `raw_days` (90 by default), events and the audit log their own time;
the rollups (hour and day, by gateway and by commune) are kept for ever: they are what the
years are read from.

PostgreSQL: the samples are in monthly partitions; a month wholly older than the horizon is
detached (`DETACH PARTITION ... CONCURRENTLY`: ingest into the current months goes on) and
dropped, so the raw data of a month goes as one file, with no row deleted and no vacuum. Each
statement waits at most PG_LOCK_TIMEOUT for its locks, so no lock request of the run sits in a
table's queue with ingest's behind it; a partition whose locks were not had goes at the next run. A sample
of a dropped month that arrives after all (a backlog older than the horizon) finds its partition
made again, and goes at the next run. Events and the audit log are deleted in chunks by time.

SQLite: rows are deleted in chunks of at most `chunk` rows, each its own short transaction on the
store's writer thread, queued with the batches, so a batch waits for at most one chunk (each
chunk's write transaction is measured and reported). A gateway's samples are deleted in the
order of its primary key (gateway, seq) from its first: a gateway's sequence numbers follow its
clock, so its oldest samples are a run of neighbouring rows on few pages, and a chunk writes a
few dozen pages to the WAL. (Device by device through the (gateway, device, time) index, as
before, a chunk's 250 rows lay among every other lamp's of the gateway: hundreds of pages a chunk,
a WAL checkpoint every forty chunks, and a batch queued behind the commit that ran it waited 1.7
s.) When a chunk of the key order holds no old sample, the (gateway, device, time) index finds
the old samples that are left, if any (a gateway whose clock went back), device by device. Every
CHECKPOINT_CHUNKS chunks the run waits for a PASSIVE checkpoint on the store's checkpointer
thread, with no chunk of its own in flight, so the WAL is copied while the writer is idle and
starts over (collector.store_sqlite): the run never makes the writer checkpoint. The file does not
shrink: its free pages take the next months' samples, so it stays at the size of the horizon's
worth of data. No VACUUM (it would hold the write lock for as long as it rewrites the file).

`citygate-collector retention --dry-run` says what would go; `retention run` does it; a serving
collector runs it every `CITYGATE_RETENTION_INTERVAL_S` (an hour; the first time an interval after
it started) on the one instance that runs the background jobs (collector.instances). A duration of
0 days keeps that kind for ever.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sqlite3
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

from citygate_wire.common import now_ms
from collector.cli_db import db_option, default_db
from collector.errors import CollectorError, StoreError
from collector.store import Store, open_store

if TYPE_CHECKING:  # the CLI imports this module: the engines load with the store that needs them
    from collector.store_pg import PgStore
    from collector.store_sqlite import SqliteStore

T = TypeVar("T")
log = logging.getLogger("citygate.collector")

DAY_MS = 86_400_000
CHUNK = 500
CHECKPOINT_CHUNKS = 16
CHECKPOINT_TRIES = 5
#: `retention run` beside a serving collector (another process): between two chunks the write lock
#: stays free this many times as long as the chunk held it. The collector's batches do not queue
#: behind the run's chunks there: SQLite has them sleep and try again (1, 2, 5, 10 ms ...), and
#: chunks back to back took the lock before a waiting batch woke (ingest's p99 110 ms, measured)
OTHER_PROCESS_GAP = 4.0
OTHER_PROCESS_GAP_MIN_S = 0.004
PARTITION = re.compile(r"samples_y(\d{4})m(\d{2})$")
ENV_PREFIX = "CITYGATE_RETENTION_"


@dataclass(frozen=True)
class Policy:
    raw_days: int = 90
    events_days: int = 730
    audit_days: int = 3650
    interval_s: float = 3600.0

    @classmethod
    def from_env(cls) -> Policy:
        """CITYGATE_RETENTION_RAW_DAYS, _EVENTS_DAYS, _AUDIT_DAYS, _INTERVAL_S; ValueError says what is wrong."""
        values: dict[str, Any] = {}
        for name in ("raw_days", "events_days", "audit_days", "interval_s"):
            raw = os.environ.get(ENV_PREFIX + name.upper())
            if raw is None:
                continue
            if not raw.isdigit() or (name == "interval_s" and int(raw) < 60):
                what = "seconds, at least 60" if name == "interval_s" else "a whole number of days (0: for ever)"
                raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r}: expected {what}")
            values[name] = int(raw)
        return cls(**values)

    def horizon(self, days: int, now: int) -> int | None:
        """The time before which records of a kind kept `days` go; None: kept for ever."""
        return None if days == 0 else now - days * DAY_MS


@dataclass
class Report:
    """What went (or, for a dry run, would go)."""

    samples: int = 0
    partitions: list[str] = field(default_factory=list)
    bytes_freed: int = 0  # PostgreSQL: the dropped partitions' size
    events: int = 0
    audit: int = 0
    longest_lock_ms: float = 0.0  # SQLite: the longest write transaction of the run
    chunks: int = 0
    lock_ms: list[float] = field(default_factory=list)  # SQLite: each chunk's write transaction

    def lock_pct(self, q: float) -> float:
        xs = sorted(self.lock_ms)
        return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0

    def lines(self, policy: Policy, dry_run: bool) -> list[str]:
        verb = "would go" if dry_run else "removed"
        kept = {0: "kept for ever"}

        def horizon(days: int) -> str:
            return kept.get(days, f"older than {days} days")

        out = [f"raw samples {horizon(policy.raw_days)}: {self.samples:,} {verb}"]
        if self.partitions:
            out += textwrap.wrap(f"{len(self.partitions)} monthly partitions ({self.bytes_freed / 1e6:,.1f} MB): "
                                 + ", ".join(self.partitions), 78, initial_indent="  ", subsequent_indent="    ")
        out.append(f"events {horizon(policy.events_days)}: {self.events:,} {verb}")
        out.append(f"audit records {horizon(policy.audit_days)}: {self.audit:,} {verb}")
        out.append("rollups (hour, day): kept for ever")
        if not dry_run and self.chunks:
            out.append(f"{self.chunks} chunks, the longest write lock held {self.longest_lock_ms:.1f} ms")
            if self.lock_ms:
                out.append(f"  (median {self.lock_pct(0.5):.1f} ms, p99 {self.lock_pct(0.99):.1f} ms)")
        return out


def _by_time(policy: Policy, now: int) -> list[tuple[str, str, int, str]]:
    """(table, time column, horizon, Report field) of the kinds deleted by time, those not kept for ever."""
    kinds = (("events", "ts_ms", policy.events_days, "events"), ("audit_log", "at_ms", policy.audit_days, "audit"))
    return [(table, column, horizon, attr) for table, column, days, attr in kinds
            if (horizon := policy.horizon(days, now)) is not None]


def month_end_ms(name: str) -> int | None:
    m = PARTITION.match(name)
    if m is None:
        return None
    year, month = int(m.group(1)), int(m.group(2))
    from datetime import UTC, datetime

    return int(datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC).timestamp() * 1000)


async def apply(store: Store, policy: Policy, *, dry_run: bool, now: int | None = None, chunk: int = CHUNK,
                beside: bool = False) -> Report:
    """Remove (or count, with `dry_run`) what the policy no longer keeps. `beside`: another process
    may be ingesting into this SQLite database (the CLI's `retention run`): the run leaves the
    write lock free between chunks (OTHER_PROCESS_GAP)."""
    from collector.store_pg import PgStore
    from collector.store_sqlite import SqliteStore

    now = now_ms() if now is None else now
    if isinstance(store, PgStore):
        return await _pg(store, policy, now, dry_run, chunk)
    if isinstance(store, SqliteStore):
        return await _sqlite(store, policy, now, dry_run, chunk, beside)
    raise StoreError(f"no retention for {type(store).__name__}")


# -- PostgreSQL ----------------------------------------------------------------------------------------

#: how long a DDL statement of the run waits for a lock before it gives up (this run) and leaves the
#: partition to the next: a waiting ACCESS EXCLUSIVE request queues every later lock request of the
#: table behind it, ingest's included, so no statement of the run may wait long for one
PG_LOCK_TIMEOUT = "2s"
_PARTITIONS = ("SELECT c.relname, pg_total_relation_size(c.oid), i.inhdetachpending FROM pg_inherits i"
               " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'samples'::regclass ORDER BY c.relname")


async def _drop_partition(conn: Any, name: str, pending: bool) -> bool:
    """Detach (CONCURRENTLY: it takes SHARE UPDATE EXCLUSIVE on `samples`, which ingest's inserts do
    not wait for) and drop partition `name`, under PG_LOCK_TIMEOUT; False if a lock was not had in
    time (the next run tries again). A detach interrupted between its two transactions leaves the
    partition "detach pending": FINALIZE completes it, and until then PostgreSQL detaches no other
    partition of the table concurrently. The store's partition lock is held meanwhile: a batch that
    makes a new month's partition (CREATE TABLE ... PARTITION OF locks `samples` exclusively) waits
    for it alone, rather than queue that lock behind the detach, and every other batch behind both."""
    import asyncpg

    from collector.store_pg import _PARTITION_LOCK

    how = "FINALIZE" if pending else "CONCURRENTLY"
    # not in a transaction (CONCURRENTLY's own two): a session's advisory lock and lock timeout, undone after
    await conn.execute("SELECT pg_advisory_lock($1)", _PARTITION_LOCK)
    try:
        await conn.execute(f"SET lock_timeout = '{PG_LOCK_TIMEOUT}'")
        await conn.execute(f"ALTER TABLE samples DETACH PARTITION {name} {how}")
        await conn.execute(f"DROP TABLE {name}")  # no longer a partition: nothing ingests into it
    except asyncpg.LockNotAvailableError as exc:
        log.warning("retention: partition %s not dropped this run (%s): the next run tries again", name, exc)
        return False
    finally:
        await conn.execute("RESET lock_timeout")
        await conn.execute("SELECT pg_advisory_unlock($1)", _PARTITION_LOCK)
    return True


async def _next_month(store: PgStore, now: int) -> None:
    """Make this month's and the next month's partitions ahead of their first batch, under
    PG_LOCK_TIMEOUT: CREATE TABLE ... PARTITION OF locks `samples` exclusively, and a batch that
    made it would have every other batch wait behind that lock."""
    import asyncpg

    async with store._require().acquire() as conn:
        try:
            await conn.execute(f"SET lock_timeout = '{PG_LOCK_TIMEOUT}'")
            await store._ensure_partitions(conn, [now, now + 31 * DAY_MS])
        except asyncpg.LockNotAvailableError as exc:
            log.warning("retention: next month's partition not made ahead (%s): its first batch makes it", exc)
        finally:
            await conn.execute("RESET lock_timeout")


async def _pg(store: PgStore, policy: Policy, now: int, dry_run: bool, chunk: int) -> Report:
    pool = store._require()  # retention is the store's own maintenance
    report = Report()
    raw = policy.horizon(policy.raw_days, now)
    if raw is not None:
        for name, size, pending in await pool.fetch(_PARTITIONS):
            end = month_end_ms(name)
            if end is None or end > raw:
                continue
            samples = await pool.fetchval(f"SELECT COUNT(*) FROM {name}")
            if not dry_run:
                async with pool.acquire() as conn:
                    if not await _drop_partition(conn, name, pending):
                        break  # the next months too wait for the next run (one detach pending at a time)
                store._partitions.discard(name)  # a late sample of that month makes it again
                log.info("retention: partition %s detached and dropped", name)
            report.samples += samples
            report.partitions.append(name)
            report.bytes_freed += size
    if not dry_run:
        await _next_month(store, now)
    for table, column, horizon, attr in _by_time(policy, now):
        if dry_run:
            setattr(report, attr, await pool.fetchval(f"SELECT COUNT(*) FROM {table} WHERE {column} < $1", horizon))
            continue
        while True:  # by the time index, each chunk its own transaction: row locks on old rows only
            status = await pool.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {column} < $1 LIMIT $2)", horizon, chunk)
            n = int(status.split()[-1])
            setattr(report, attr, getattr(report, attr) + n)
            report.chunks += 1
            if n < chunk:
                break
    return report


# -- SQLite ------------------------------------------------------------------------------------------------

_DEVICES = ("WITH RECURSIVE d(dev) AS (SELECT MIN(device) FROM samples WHERE gateway_id = ?1"
            " UNION ALL SELECT (SELECT MIN(device) FROM samples WHERE gateway_id = ?1 AND device > d.dev)"
            " FROM d WHERE d.dev IS NOT NULL) SELECT dev FROM d WHERE dev IS NOT NULL")
#: the seq `chunk` rows after `lo` in the gateway's key order (none: fewer are left)
_NEXT = "SELECT seq FROM samples WHERE gateway_id = ?1 AND seq >= ?2 ORDER BY seq LIMIT 1 OFFSET ?3"
_IN_KEY_ORDER = "DELETE FROM samples WHERE gateway_id = ?1 AND seq >= ?2 AND seq < ?3 AND ts_ms < ?4"
_BY_DEVICE = ("DELETE FROM samples WHERE gateway_id = ?1 AND seq IN (SELECT seq FROM samples"
              " WHERE gateway_id = ?1 AND device = ?2 AND ts_ms < ?3 LIMIT ?4)")
_OLD_LEFT = "SELECT 1 FROM samples WHERE gateway_id = ? AND device = ? AND ts_ms < ? LIMIT 1"
_NO_END = 2**63 - 1


def _deleted(sql: str, args: tuple[Any, ...]) -> Callable[[sqlite3.Connection], int]:
    return lambda db: db.execute(sql, args).rowcount


class _SqliteRun:
    """One run's chunks on the store's writer thread, each its own transaction, timed."""

    def __init__(self, store: SqliteStore, report: Report, chunk: int, beside: bool) -> None:
        self.store, self.report, self.chunk, self.beside = store, report, chunk, beside

    async def read(self, sql: str, *args: Any) -> list[Any]:
        return await asyncio.get_running_loop().run_in_executor(
            self.store._reader, lambda: self.store._rdb().execute(sql, args).fetchall())

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        db = self.store._wdb()
        t0 = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        try:
            out = work(db)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        held = (time.perf_counter() - t0) * 1000
        self.report.lock_ms.append(held)
        self.report.longest_lock_ms = max(self.report.longest_lock_ms, held)
        self.report.chunks += 1
        return out

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(db)` in a transaction of its own, queued with the batches; every CHECKPOINT_CHUNKS
        a PASSIVE checkpoint while no chunk is in flight (module docstring)."""
        out = await asyncio.get_running_loop().run_in_executor(self.store._writer, self._transaction, work)
        if self.report.chunks % CHECKPOINT_CHUNKS == 0:
            await self.checkpoint()
        if self.beside:
            await asyncio.sleep(max(OTHER_PROCESS_GAP * self.report.lock_ms[-1] / 1000, OTHER_PROCESS_GAP_MIN_S))
        else:
            await asyncio.sleep(0)  # what the loop has to do (a batch to decode) comes between two chunks
        return out

    async def checkpoint(self) -> None:
        """A PASSIVE checkpoint, again while batches wrote during the last (a few frames each time,
        soon copied), so the WAL starts over: otherwise it would grow until the writer copied it."""
        for _ in range(CHECKPOINT_TRIES):
            if not await self.store.checkpoint():
                return

    async def by_key(self, gid: int, horizon: int) -> int:
        """The gateway's old samples from its first, in key order, until a chunk holds none."""
        first: int | None = (await self.read("SELECT MIN(seq) FROM samples WHERE gateway_id = ?", gid))[0][0]
        total = 0
        while first is not None:
            def chunk(db: sqlite3.Connection, lo: int = first) -> tuple[int, int | None]:
                row = db.execute(_NEXT, (gid, lo, self.chunk)).fetchone()
                hi = _NO_END if row is None else row[0]
                return db.execute(_IN_KEY_ORDER, (gid, lo, hi, horizon)).rowcount, None if row is None else hi

            n, first = await self.write(chunk)
            total += n
            if n == 0:
                break
        return total

    async def by_device(self, gid: int, horizon: int) -> int:
        """What the key order left: old samples after newer ones (a clock set back), device by device."""
        total = 0
        for (device,) in await self.read(_DEVICES, gid):
            while await self.read(_OLD_LEFT, gid, device, horizon):
                total += await self.write(_deleted(_BY_DEVICE, (gid, device, horizon, self.chunk)))
        return total

    async def by_time(self, table: str, column: str, horizon: int) -> int:
        sql = f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {column} < ?1 LIMIT ?2)"
        total = 0
        while True:
            n = await self.write(_deleted(sql, (horizon, self.chunk)))
            total += n
            if n < self.chunk:
                return total


async def _sqlite(store: SqliteStore, policy: Policy, now: int, dry_run: bool, chunk: int, beside: bool) -> Report:
    report = Report()
    run = _SqliteRun(store, report, chunk, beside)
    raw = policy.horizon(policy.raw_days, now)
    if raw is not None:
        for (gid,) in await run.read("SELECT id FROM gateways"):
            if dry_run:
                for (device,) in await run.read(_DEVICES, gid):
                    report.samples += (await run.read(
                        "SELECT COUNT(*) FROM samples WHERE gateway_id = ? AND device = ? AND ts_ms < ?",
                        gid, device, raw))[0][0]
                continue
            report.samples += await run.by_key(gid, raw)
            report.samples += await run.by_device(gid, raw)
    for table, column, horizon, attr in _by_time(policy, now):
        if dry_run:
            setattr(report, attr, (await run.read(f"SELECT COUNT(*) FROM {table} WHERE {column} < ?", horizon))[0][0])
            continue
        setattr(report, attr, await run.by_time(table, column, horizon))
    if not dry_run and report.chunks:
        await run.checkpoint()
    return report


# -- the periodic job and the CLI ---------------------------------------------------------------------

async def periodic(store: Store, policy: Policy) -> None:
    """Run the policy every `interval_s`, the first time `interval_s` after the start, for ever
    (collector.instances runs it on one instance). Not at once: a collector started for a test or a
    replay of old records does not see them go under it."""
    import asyncpg

    while True:
        await asyncio.sleep(policy.interval_s)
        try:
            report = await apply(store, policy, dry_run=False)
            if report.samples or report.events or report.audit:
                log.info("retention: %s", "; ".join(line.strip() for line in report.lines(policy, False)))
        except (OSError, sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError, StoreError) as exc:
            log.warning("retention failed (%s): trying again at the next round", exc)


def policy_or_exit() -> Policy:
    try:
        return Policy.from_env()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(invoke_without_command=True)
@click.option("--dry-run", is_flag=True, help="Say what would go, remove nothing (what a bare `retention` does too).")
@click.option("--db", "db_url", default=None, help="As for `retention run`.")
@click.pass_context
def retention(ctx: click.Context, dry_run: bool, db_url: str | None) -> None:
    """Raw samples, events and audit records past their time (CITYGATE_RETENTION_*_DAYS).

    `retention --dry-run` says what would go; `retention run` removes it."""
    if ctx.invoked_subcommand is None:
        _run(db_url or default_db(), dry_run=True)


@retention.command("run")
@db_option
def retention_run(db_url: str) -> None:
    """Remove them now (a serving collector does it every hour by itself)."""
    _run(db_url, dry_run=False)


def _run(db_url: str, *, dry_run: bool) -> None:
    policy = policy_or_exit()

    async def go() -> Report:
        async with open_store(db_url) as store:
            return await apply(store, policy, dry_run=dry_run, beside=True)

    try:
        report = asyncio.run(go())
    except CollectorError as exc:
        raise click.ClickException(str(exc)) from None
    for line in report.lines(policy, dry_run):
        click.echo(line)
