"""Retention on both stores: raw samples, events and audit records past their time go (PostgreSQL:
whole monthly partitions), rollups stay, a dry run removes nothing, SQLite in short chunks; the
PostgreSQL duplicate check probes only the batch's months."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from citygate_wire.batch import decode_batch
from collector.model import Gateway
from collector.retention import CHECKPOINT_CHUNKS, DAY_MS, Policy, apply
from collector.store import Store, open_store
from collector.store_pg import month_partition, split_schema
from collector.store_sqlite import SqliteStore
from collector.tokens import hash_token, new_token

CLI = str(Path(sys.executable).parent / "citygate-collector")
NOW = 1_780_000_000_000  # 2026-05-28
POLICY = Policy(raw_days=90, events_days=30, audit_days=365)
OLD_DAYS = (200, 170, 120)  # three months past the samples' horizon
RECENT_DAYS = (60, 20, 1)


def records(first_seq: int, ts: int, n: int, event_every: int = 0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(n):
        seq, t = first_seq + i, ts + i * 60_000
        if event_every and i % event_every == 0:
            out.append({"seq": seq, "kind": "event", "device": f"lamp-{i % 5}", "ts_ms": t, "code": "lamp_failure",
                        "severity": "major", "detail": {}})
        else:
            out.append({"seq": seq, "kind": "sample", "device": f"lamp-{i % 5}", "ts_ms": t,
                        "values": {"level_pct": 70, "power_w": 61.5}})
    return out


async def ingest(store: Store, gw: Gateway, recs: list[dict[str, Any]]) -> None:
    body = orjson.dumps({"v": 1, "gateway": gw.name, "commune": "21231", "records": recs})
    await store.ingest(gw, decode_batch(body, latest_ts_ms=NOW + 10**12).records)


async def fill(store: Store) -> tuple[Gateway, dict[str, int]]:
    """300 records a day in OLD_DAYS and RECENT_DAYS (one in 10 an event), and audit records."""
    gw = await store.add_gateway("gw-1", "21231", hash_token(new_token()))
    seq = 1
    expected = {"old_samples": 0, "old_events": 0}
    for days in (*OLD_DAYS, *RECENT_DAYS):
        recs = records(seq, NOW - days * DAY_MS, 300, event_every=10)
        await ingest(store, gw, recs)
        seq += len(recs)
        if days > POLICY.raw_days:
            expected["old_samples"] += sum(r["kind"] == "sample" for r in recs)
        if days > POLICY.events_days:
            expected["old_events"] += sum(r["kind"] == "event" for r in recs)
    for days in (400, 380, 10):
        await store.audit("cli:test", "gateway.add", "gw-1", "commune 21231", NOW - days * DAY_MS)
    return gw, expected


async def totals(store: Store) -> tuple[int, int]:
    days = await store.rollups("gateway", "day", "gw-1", "2020-01-01", "2030-12-31")
    return sum(d.samples for d in days), sum(d.events for d in days)


async def test_dry_run_says_what_would_go_and_run_removes_exactly_that(store: Store) -> None:
    gw, expected = await fill(store)
    before = await store.count_records()
    rolled = await totals(store)
    audit_before = len(await store.audit_log(limit=100))

    plan = await apply(store, POLICY, dry_run=True, now=NOW)
    assert (plan.samples, plan.events, plan.audit) == (expected["old_samples"], expected["old_events"], 2)
    assert await store.count_records() == before  # a dry run removes nothing

    done = await apply(store, POLICY, dry_run=False, now=NOW, chunk=100)
    assert (done.samples, done.events, done.audit) == (plan.samples, plan.events, plan.audit)
    after = await store.count_records()
    assert after.samples == before.samples - expected["old_samples"]
    assert after.events == before.events - expected["old_events"]
    assert len(await store.audit_log(limit=100)) == audit_before - 2
    assert await totals(store) == rolled  # the rollups stay: the years are read from them
    newest = await store.recent_samples(gw, "lamp-1", limit=10_000)
    assert newest and min(s.ts_ms for s in newest) >= NOW - POLICY.raw_days * DAY_MS
    again = await apply(store, POLICY, dry_run=False, now=NOW)
    assert (again.samples, again.events, again.audit) == (0, 0, 0)
    if store.url.startswith("postgresql"):
        assert len(done.partitions) == 3 and done.bytes_freed > 0  # three whole months, no row deleted
    else:
        print(f"SQLite: {done.chunks} chunks of at most 100 rows, the longest write lock {done.longest_lock_ms:.2f} ms")
        assert done.chunks >= done.samples // 100 and done.longest_lock_ms < 200


async def test_forever_keeps_everything(store: Store) -> None:
    await fill(store)
    before = await store.count_records()
    report = await apply(store, Policy(raw_days=0, events_days=0, audit_days=0), dry_run=False, now=NOW)
    assert (report.samples, report.events, report.audit) == (0, 0, 0)
    assert await store.count_records() == before


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_late_sample_of_a_dropped_month_is_stored_by_another_instance(db_url: str) -> None:
    async with open_store(db_url) as a, open_store(db_url) as b:
        await fill(a)
        gw_b = await b.gateway("gw-1")
        assert gw_b is not None
        await apply(a, POLICY, dry_run=False, now=NOW)  # b still believes the old months' partitions exist
        late = records(100_000, NOW - 200 * DAY_MS, 3)
        await ingest(b, gw_b, late)
        assert [s.seq for s in await b.recent_samples(gw_b, "lamp-0", limit=100_000) if s.seq >= 100_000] == [100_000]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_the_postgresql_duplicate_check_probes_only_the_batch_s_months(db_url: str) -> None:
    async with open_store(db_url) as store:
        gw = await store.add_gateway("gw-1", "21231", hash_token(new_token()))
        seq = 1
        for month in range(12):  # twelve monthly partitions
            await ingest(store, gw, records(seq, NOW - (month * 31 + 1) * DAY_MS, 10))
            seq += 10
    dsn, schema = split_schema(db_url)
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema or "public"})
    try:
        first = NOW - 1 * DAY_MS
        plan = await conn.fetchval(
            "EXPLAIN (FORMAT JSON) SELECT seq FROM samples WHERE gateway_id = $1 AND seq BETWEEN $2 AND $3"
            " AND ts_ms BETWEEN $4 AND $5", gw.id, 1, 10, first, first + 9 * 60_000)
    finally:
        await conn.close()
    scanned = {n for n in _relations(orjson.loads(plan)) if n.startswith("samples_")}
    assert len(scanned) == 1, scanned  # of twelve


def _relations(node: Any) -> list[str]:
    if isinstance(node, list):
        return [n for x in node for n in _relations(x)]
    if isinstance(node, dict):
        own = [node["Relation Name"]] if "Relation Name" in node else []
        return own + [n for v in node.values() for n in _relations(v)]
    return []


def test_the_cli_says_what_would_go_then_removes_it(db_url: str) -> None:
    import asyncio

    async def setup() -> None:
        async with open_store(db_url) as store:
            await fill(store)

    asyncio.run(setup())
    env = {**os.environ, "CITYGATE_RETENTION_RAW_DAYS": "90", "CITYGATE_RETENTION_EVENTS_DAYS": "30"}
    # the CLI counts from the real clock: every record, dated until NOW (2026-05-28), is past the horizons
    dry = subprocess.run([CLI, "retention", "--dry-run", "--db", db_url], capture_output=True, text=True,
                         env=env, timeout=120)
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert "raw samples older than 90 days:" in lines[0] and "would go" in lines[0]
    assert any(line.startswith("rollups (hour, day): kept for ever") for line in lines)
    run = subprocess.run([CLI, "retention", "run", "--db", db_url], capture_output=True, text=True, env=env,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert "removed" in run.stdout
    again = subprocess.run([CLI, "retention", "--dry-run", "--db", db_url], capture_output=True, text=True,
                           env=env, timeout=120)
    assert "raw samples older than 90 days: 0 would go" in again.stdout
    bad = subprocess.run([CLI, "retention", "--db", db_url], capture_output=True, text=True,
                         env={**env, "CITYGATE_RETENTION_RAW_DAYS": "ninety"}, timeout=120)
    assert bad.returncode == 1 and "CITYGATE_RETENTION_RAW_DAYS='ninety'" in bad.stderr


async def test_the_periodic_job_removes_them_an_interval_after_the_start(store: Store) -> None:
    import asyncio

    from collector.retention import periodic

    await fill(store)
    before = await store.count_records()
    policy = Policy(raw_days=90, events_days=30, audit_days=365, interval_s=0.5)
    job = asyncio.create_task(periodic(store, policy))
    try:
        assert await store.count_records() == before  # not at once
        deadline = asyncio.get_running_loop().time() + 60
        # every record of the fill is dated until NOW (2026-05-28), past 90 days by the real clock
        while (await store.count_records()).samples:
            assert asyncio.get_running_loop().time() < deadline, "the job did not run, or not to the end"
            await asyncio.sleep(0.1)
    finally:
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)


class Trace:
    """Every statement each of a SQLite store's connections runs, by connection, and the rows each
    write transaction of the writer changed (sqlite3's trace callback: what ran, not what was meant)."""

    def __init__(self, store: SqliteStore) -> None:
        self.statements: dict[str, list[str]] = {}
        self.changed: list[int] = []  # rows changed by each committed transaction of the writer
        self._begun: int | None = None
        conns = {"writer": store._w, "reader": store._r, "checkpointer": store._c, "loop": store._loop_db}
        for name, conn in conns.items():
            assert conn is not None
            conn.set_trace_callback(self._recorder(name, conn))

    def _recorder(self, name: str, conn: sqlite3.Connection) -> Any:
        seen = self.statements.setdefault(name, [])

        def record(sql: str) -> None:
            seen.append(sql)
            if name != "writer":
                return
            if sql.startswith("BEGIN"):
                self._begun = conn.total_changes
            elif sql == "COMMIT" and self._begun is not None:
                self.changed.append(conn.total_changes - self._begun)
                self._begun = None

        return record

    def checkpoints(self, name: str) -> list[str]:
        return [s for s in self.statements.get(name, []) if "wal_checkpoint" in s.lower()]


async def test_sqlite_retention_deletes_in_short_transactions_and_never_checkpoints_on_the_writer(
        tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "collector.db") as store:
        gw, expected = await fill(store)
        # a second gateway whose clock went back: old samples after newer ones in its key order
        back = await store.add_gateway("gw-2", "21231", hash_token(new_token()))
        await ingest(store, back, records(1, NOW - 5 * DAY_MS, 2000))
        await ingest(store, back, records(2001, NOW - 150 * DAY_MS, 2000))
        for i in range(10):  # and a large backlog, past the horizon
            await ingest(store, gw, records(10_000 + i * 5000, NOW - 300 * DAY_MS + i * 5000 * 60_000, 5000))
        old = expected["old_samples"] + 2000 + 50_000
        assert (await store._on(store._writer, lambda: store._wdb().execute("PRAGMA wal_autocheckpoint").fetchone()))[
            0] == 0  # SQLite's automatic checkpoint, in the COMMIT of the writer, is off

        trace = Trace(store)
        report = await apply(store, POLICY, dry_run=False, now=NOW, chunk=300)
        assert report.samples == old
        assert trace.changed and max(trace.changed) <= 300, max(trace.changed)  # no transaction deletes more
        assert len(trace.changed) == report.chunks >= old // 300
        assert not trace.checkpoints("writer")  # the writer never copies the WAL: ingest never waits on it
        copied = trace.checkpoints("checkpointer")
        assert len(copied) >= report.chunks // CHECKPOINT_CHUNKS  # while the run has no chunk in flight
        assert all(s.lower() == "pragma wal_checkpoint(passive)" for ss in trace.statements.values() for s in ss
                   if "wal_checkpoint" in s.lower())  # never TRUNCATE, RESTART or FULL: they block writers
        assert not any("vacuum" in s.lower() for ss in trace.statements.values() for s in ss)
        for g in (gw, back):
            for device in (f"lamp-{i}" for i in range(5)):
                kept = await store.recent_samples(g, device, limit=100_000)
                assert kept and min(s.ts_ms for s in kept) >= NOW - POLICY.raw_days * DAY_MS
        assert (await store.count_records(back)).samples == 2000  # its recent ones, found before its old ones


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_partition_in_use_waits_for_the_next_run_and_ingest_never_waits(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from collector import retention

    monkeypatch.setattr(retention, "PG_LOCK_TIMEOUT", "300ms")
    dsn, schema = split_schema(db_url)
    async with open_store(db_url) as store:
        gw, _ = await fill(store)
        reader = await asyncpg.connect(dsn, server_settings={"search_path": schema or "public"})
        try:
            # a long report reading the oldest month: the detach must wait for it, and may not wait long
            tx = reader.transaction(isolation="repeatable_read")
            await tx.start()
            oldest = min(r["relname"] for r in await reader.fetch(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'samples'::regclass"))
            await reader.fetchval(f"SELECT COUNT(*) FROM {oldest}")
            run = asyncio.create_task(apply(store, POLICY, dry_run=False, now=NOW))
            recent = records(900_000, NOW - DAY_MS, 50)
            await asyncio.wait_for(ingest(store, gw, recent), 10)  # ingest goes on meanwhile
            first = await run
            assert first.partitions == [] and first.events > 0  # the months wait, in order; the events go
            await tx.rollback()
            pending = await reader.fetchval(
                "SELECT i.inhdetachpending FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE c.relname = $1", oldest)
            assert pending is True  # the detach's first transaction committed, its wait timed out
        finally:
            await reader.close()
        # the next run completes it (FINALIZE), then the rest. FINALIZE waits for every older snapshot of
        # the database, other tests' too on a shared server: under the 300 ms lock timeout it may wait
        # for a later run again, as in the field (it is not an error, and ingest never waits for it)
        dropped: list[str] = []
        for _ in range(30):
            dropped += (await apply(store, POLICY, dry_run=False, now=NOW)).partitions
            if len(dropped) >= 3:
                break
            await asyncio.sleep(0.5)
        assert dropped[:1] == [oldest] and len(dropped) == 3, dropped
        assert (await apply(store, POLICY, dry_run=True, now=NOW)).samples == 0
        after = await store._require().fetchval(  # type: ignore[attr-defined]
            "SELECT COUNT(*) FROM pg_class WHERE relname = $1 AND relnamespace = $2::regnamespace",
            month_partition(NOW + 31 * DAY_MS)[0], schema)
        assert after == 1  # next month's partition made ahead: no batch will lock `samples` to make it
