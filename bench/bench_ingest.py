"""Collector: ingest samples/s through the real HTTP endpoint, and rollup query latency as raw data grows.

Ingest: `citygate-collector serve` runs as a subprocess on a fresh store; 4 gateways upload
gzipped batches (bodies compressed before the clock starts), either concurrently (each on its
own connection, as a fleet does) or through a single client posting one batch at a time.
Batches hold what a gateway draining a backlog sends: its default `batch_max_records` (5000),
or `--batch N`. The
baseline, in the same run, is a raw bulk insert of the same rows into the same kind of store,
fresh, batch by batch: sqlite3 executemany, one transaction a batch, the store's PRAGMAs (WAL,
synchronous=FULL, a WAL checkpointed every WAL_CATCH_UP_PAGES); on PostgreSQL, asyncpg COPY into the same partitioned
table. The endpoint also validates, checks duplicates, updates rollups and device states:
target ratio >= 0.5.
`--repeat N` measures N times (the machine may be shared) and reports each run and the medians.

Rollups: the commune-day query (what the control centre asks) at two raw sizes, against the
same day's figure computed by scanning raw samples (a plain COUNT, cheaper than the real
rollup would be), loaded through the store's own ingest so the rollups are real.

    python bench/bench_ingest.py [--store sqlite|postgresql|both] [--samples 200000] [--repeat 1]
                                 [--batch 5000] [--no-rollups] [--full]

PostgreSQL: $CITYGATE_BENCH_PG, else $CITYGATE_TEST_PG, else postgresql://postgres@127.0.0.1:5432/test
(a fresh schema is created and dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

from citygate_wire.batch import PATH, WireRecord, decode_batch
from collector.store import Store, open_store
from collector.store_pg import month_partition
from collector.store_sqlite import WAL_CATCH_UP_PAGES
from collector.tokens import hash_token, new_token
from edge_agent.config import UplinkConfig

PG_URL = os.environ.get("CITYGATE_BENCH_PG") or os.environ.get("CITYGATE_TEST_PG") or \
    "postgresql://postgres@127.0.0.1:5432/test"
CLI = str(Path(sys.executable).parent / "citygate-collector")
TS0 = 1_764_547_200_000  # 2025-12-01T00:00Z
COMMUNES = ["21231", "21231", "21231", "21617", "21166", "21452", "21515", "21355"]
LAMPS = 150
BATCH = UplinkConfig.batch_max_records  # the agent's default: what it sends while draining a backlog


def wire_records(gateway_index: int, first_seq: int, n: int) -> list[dict[str, Any]]:
    """Lamp samples: each lamp of the cabinet once a minute."""
    out = []
    for k in range(n):
        i = first_seq + k - 1
        lamp, minute = i % LAMPS, i // LAMPS
        out.append({"seq": first_seq + k, "kind": "sample", "device": f"lamp-{lamp:03d}",
                    "ts_ms": TS0 + minute * 60_000 + gateway_index * 7 + lamp,
                    "values": {"level_pct": 70, "power_w": 61.2, "energy_wh": 10_000 + minute, "lamp_on": True,
                               "voltage_v": 231.5}})
    return out


def batch_doc(name: str, commune: str, records: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"v": 1, "gateway": name, "commune": commune, "records": records})


def gzip(data: bytes) -> bytes:
    c = zlib.compressobj(6, wbits=31)
    return c.compress(data) + c.flush()


@asynccontextmanager
async def fresh_url(kind: str, tmp: Path) -> AsyncIterator[str]:
    if kind == "sqlite":
        yield str(tmp / f"bench-{secrets.token_hex(4)}.db")
        return
    schema = "cg_bench_" + secrets.token_hex(6)
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        yield f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()


def plan(total: int, gateways: int) -> dict[str, list[list[dict[str, Any]]]]:
    per = total // gateways
    out: dict[str, list[list[dict[str, Any]]]] = {}
    for g in range(gateways):
        recs = wire_records(g, 1, per)
        out[f"gw-{g}"] = [recs[i:i + BATCH] for i in range(0, per, BATCH)]
    return out


async def register(url: str, names: list[str]) -> dict[str, str]:
    tokens = {}
    async with open_store(url) as store:
        for g, name in enumerate(names):
            tokens[name] = new_token()
            await store.add_gateway(name, COMMUNES[g % len(COMMUNES)], hash_token(tokens[name]))
    return tokens


async def http_ingest(url: str, batches: dict[str, list[list[dict[str, Any]]]], log: Path, concurrent: bool) -> float:
    """Seconds to upload every batch: each gateway on its own connection, or one batch at a time in turn."""
    names = list(batches)
    tokens = await register(url, names)
    bodies = {n: [gzip(batch_doc(n, COMMUNES[g % len(COMMUNES)], b)) for b in batches[n]] for g, n in enumerate(names)}
    with log.open("a") as err:
        proc = subprocess.Popen([CLI, "serve", "--db", url, "--port", "0"], stdout=subprocess.PIPE, stderr=err,
                                text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.match(r"citygate-collector listening on (\S+)", line)
        if not m:
            raise SystemExit(f"collector did not start: {line!r}, see {log}")
        base = m.group(1)

        async def upload(session: aiohttp.ClientSession, name: str, sequence: list[bytes]) -> None:
            headers = {"Authorization": f"Bearer {tokens[name]}", "Content-Encoding": "gzip",
                       "Content-Type": "application/json"}
            for body in sequence:
                async with session.post(base + PATH, data=body, headers=headers) as resp:
                    if resp.status != 200:
                        raise SystemExit(f"{resp.status}: {await resp.text()}")
                    await resp.read()

        async def one_at_a_time(session: aiohttp.ClientSession) -> None:
            turns = max(len(bodies[n]) for n in names)
            for i in range(turns):
                for name in names:
                    if i < len(bodies[name]):
                        await upload(session, name, bodies[name][i:i + 1])

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
            t0 = time.perf_counter()
            if concurrent:
                await asyncio.gather(*(upload(session, n, bodies[n]) for n in names))
            else:
                await one_at_a_time(session)
            elapsed = time.perf_counter() - t0
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        print(f"  ({'concurrent' if concurrent else 'single client'}: collector process CPU, start-up included:"
              f" {cpu:.2f} s for {elapsed:.2f} s of upload)")
        return elapsed
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def raw_rows(batches: dict[str, list[list[dict[str, Any]]]]) -> list[list[tuple[Any, ...]]]:
    out = []
    for g, name in enumerate(batches):
        for b in batches[name]:
            out.append([(g + 1, r["seq"], r["device"], r["ts_ms"], orjson.dumps(r["values"]).decode()) for r in b])
    return out


async def raw_insert(kind: str, url: str, batches: dict[str, list[list[dict[str, Any]]]]) -> float:
    async with open_store(url):
        pass  # creates the schema (the same tables, indexes and partitioning)
    rows = raw_rows(batches)
    if kind == "sqlite":
        db = sqlite3.connect(url, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(f"PRAGMA wal_autocheckpoint={WAL_CATCH_UP_PAGES}")  # the store checkpoints on a thread of its own
        t0 = time.perf_counter()
        for batch in rows:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT INTO samples (gateway_id, seq, device, ts_ms, vals) VALUES (?, ?, ?, ?, ?)", batch)
            db.execute("COMMIT")
        elapsed = time.perf_counter() - t0
        db.close()
        return elapsed
    from collector.store_pg import split_schema

    dsn, schema = split_schema(url)
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema or "public"})
    try:
        for name, start, end in sorted({month_partition(r[3]) for batch in rows for r in batch}):
            await conn.execute(f"CREATE TABLE {name} PARTITION OF samples FOR VALUES FROM ({start}) TO ({end})")
        t0 = time.perf_counter()
        for batch in rows:
            async with conn.transaction():
                await conn.copy_records_to_table("samples", records=batch,
                                                 columns=("gateway_id", "seq", "device", "ts_ms", "vals"),
                                                 schema_name=schema)
        return time.perf_counter() - t0
    finally:
        await conn.close()


async def ingest_bench(kind: str, samples: int, repeat: int, tmp: Path) -> None:
    batches = plan(samples, gateways=4)
    n = sum(len(b) for bs in batches.values() for b in bs)
    runs: dict[str, list[float]] = {"concurrent": [], "single": [], "raw": []}
    for _ in range(repeat):
        for mode in ("concurrent", "single"):
            async with fresh_url(kind, tmp) as url:
                runs[mode].append(n / await http_ingest(url, batches, tmp / "serve.log", mode == "concurrent"))
        async with fresh_url(kind, tmp) as url:
            runs["raw"].append(n / await raw_insert(kind, url, batches))
        if repeat > 1:
            print(f"  run {len(runs['raw'])}: raw {runs['raw'][-1]:,.0f}/s;"
                  + "".join(f" {m} {runs[m][-1]:,.0f}/s = {runs[m][-1] / runs['raw'][-1]:.2f}"
                            for m in ("concurrent", "single")))
    raw_rate = statistics.median(runs["raw"])
    each = "" if repeat == 1 else f", medians of {repeat} runs"
    print(f"{kind:10s} raw bulk insert: {raw_rate:9,.0f} samples/s ({n:,} samples, 4 gateways, batches of {BATCH}{each})")
    for mode, label in (("concurrent", "4 gateways at once"), ("single", "single client     ")):
        # the median of each run's own ratio: HTTP and raw ran within seconds of each other
        ratios = sorted(r / raw for r, raw in zip(runs[mode], runs["raw"], strict=True))
        spread = "" if repeat == 1 else f" (runs {ratios[0]:.2f}..{ratios[-1]:.2f})"
        print(f"{kind:10s} HTTP, {label}: {statistics.median(runs[mode]):9,.0f} samples/s"
              f"   ratio HTTP/raw = {statistics.median(ratios):.2f}{spread} (target >= 0.5)")


async def timed(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


async def raw_day_count(kind: str, url: str, commune: str) -> int:
    """The raw-scan baseline: the commune's samples of 2025-12-01 (Paris), counted from raw rows."""
    start, end = TS0 - 3_600_000, TS0 + 23 * 3_600_000  # 2025-12-01 00:00 .. 24:00 CET
    sql = ("SELECT COUNT(*) FROM samples s JOIN gateways g ON g.id = s.gateway_id"
           " WHERE g.commune = {0} AND s.ts_ms >= {1} AND s.ts_ms < {2}")
    if kind == "sqlite":
        db = sqlite3.connect(url)
        try:
            return int(db.execute(sql.format("?", "?", "?"), (commune, start, end)).fetchone()[0])
        finally:
            db.close()
    from collector.store_pg import split_schema

    dsn, schema = split_schema(url)
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema or "public"})
    try:
        return int(await conn.fetchval(sql.format("$1", "$2", "$3"), commune, start, end))
    finally:
        await conn.close()


async def load(store: Store, gateways: dict[str, Any], upto: int, done: dict[str, int]) -> None:
    """Ingest through the store (rollups included) until `upto` samples are stored, spread over the gateways."""
    per = upto // len(gateways)
    for g, (name, gateway) in enumerate(gateways.items()):
        while done[name] < per:
            n = min(10_000, per - done[name])
            body = batch_doc(name, gateway.commune, wire_records(g, done[name] + 1, n))
            records: list[WireRecord] = list(decode_batch(body).records)
            await store.ingest(gateway, records)
            done[name] += n


async def rollup_bench(kind: str, sizes: list[int], tmp: Path) -> None:
    async with fresh_url(kind, tmp) as url, open_store(url) as store:
        names = [f"gw-{g}" for g in range(8)]
        gateways = {n: await store.add_gateway(n, COMMUNES[g], hash_token(new_token())) for g, n in enumerate(names)}
        done = dict.fromkeys(names, 0)
        for size in sizes:
            before = sum(done.values())
            t0 = time.perf_counter()
            await load(store, gateways, size, done)
            load_rate = (sum(done.values()) - before) / (time.perf_counter() - t0)

            async def rollup_query() -> None:
                rows = await store.rollups("commune", "day", "21231", "2025-12-01", "2025-12-01")
                assert rows and rows[0].samples > 0

            async def raw_query() -> None:
                assert await raw_day_count(kind, url, "21231") > 0

            q = await timed(rollup_query, 30)
            raw = await timed(raw_query, 3)
            print(f"{kind:10s} {sum(done.values()):>11,} raw samples (store.ingest at {load_rate:,.0f}/s):"
                  f" commune-day rollup query {q * 1000:7.2f} ms; raw scan of the same day {raw * 1000:9.1f} ms;"
                  f" ratio scan/rollup = {raw / q:,.0f}x")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--samples", type=int, default=200_000, help="samples uploaded in the ingest figure")
    ap.add_argument("--repeat", type=int, default=1, help="ingest measurements to take the median of")
    ap.add_argument("--batch", type=int, default=BATCH, help="records a batch (default: the agent's default)")
    ap.add_argument("--no-rollups", action="store_true", help="the ingest figures only")
    ap.add_argument("--full", action="store_true", help="rollup latency at 1 M and 20 M raw samples")
    args = ap.parse_args()
    globals()["BATCH"] = args.batch
    kinds = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    sizes = [1_000_000, 20_000_000] if args.full else [1_000_000, 2_000_000]
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            await ingest_bench(kind, args.samples, args.repeat, Path(tmp))
        if not args.no_rollups:
            for kind in kinds:
                await rollup_bench(kind, sizes, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
