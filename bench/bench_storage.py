"""Storage per stored sample on each store, the projection per lamp-year and for the metropolis over
one and twelve years with retention on, and what a retention run costs the ingest beside it.

The city simulation's cabinets (simulators.city: lamps dimmed at night, a meter, faults) measure
`--days` days, a sample a lamp and one of the meter every `--sample-s` (300 s), ingested in the
agent's batches into a fresh store. Bytes are counted by the engine: SQLite's pages by table and
index (dbstat), PostgreSQL's relations (pg_total_relation_size: heap, TOAST, indexes). The same-run
baseline is the records' own size as the gateway sends them (JSON, uncompressed): the ratio says
what the store adds around a sample.

Then retention at `--raw-days` (less than `--days`) runs while the same gateways keep ingesting:
the longest write transaction of the run (SQLite: each chunk's), and the ingest's p99 during
the run against its p99 before it.

    python bench/bench_storage.py [--store sqlite|postgresql|both] [--gateways 2] [--days 75] [--raw-days 20]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from citygate_wire.batch import decode_batch, encode_records
from citygate_wire.common import now_ms
from collector.retention import DAY_MS, Policy, apply
from collector.store import Store, open_store
from collector.tokens import hash_token, new_token
from simulators.city import MAX_BATCH, City, Rates, plan_city

TERRITORY = Path(__file__).resolve().parent.parent / "configs" / "territory.json"
YEAR_DAYS = 365.25
METROPOLIS_LAMPS = 34_000


async def fresh_db(kind: str, tmp: Path) -> str:
    if kind == "sqlite":
        return str(tmp / "storage.db")
    from tests.store_testkit import new_pg_schema, pg_execute

    schema, url = new_pg_schema()
    await pg_execute(f"CREATE SCHEMA {schema}")
    return url


def plan(gateways: int) -> City:
    cabinets = plan_city(TERRITORY, 1500, 34_000)[:gateways]
    return City(cabinets, {c.gateway: "t" for c in cabinets}, collector_url="http://unused", mqtt_url=None,
                rates=Rates(report_share=0.0))  # no resident reports: nothing is posted here


async def fill(store: Store, city: City, start: int, end: int, sample_s: float) -> tuple[int, int, list[float]]:
    """Ingest what the city measured from `start` to `end`: (samples, wire bytes, batch latencies)."""
    samples = wire = 0
    latencies: list[float] = []
    gws = {g.cab.gateway: await store.gateway(g.cab.gateway) for g in city.gateways}
    t = start
    while t < end:
        for g in city.gateways:
            g.tick(t, sample_s)
            if len(g.journal) >= MAX_BATCH or t + sample_s * 1000 >= end:
                records = list(g.journal)
                g.journal.clear()
                body = encode_records(g.cab.gateway, g.cab.commune, records)
                wire += sum(len(orjson.dumps(r)) for r in records if r["kind"] == "sample")
                samples += sum(r["kind"] == "sample" for r in records)
                batch = decode_batch(body, latest_ts_ms=now_ms() + 10**9)
                gw = gws[g.cab.gateway]
                assert gw is not None
                t0 = time.perf_counter()
                await store.ingest(gw, batch.records)
                latencies.append(time.perf_counter() - t0)
        t += int(sample_s * 1000)
    return samples, wire, latencies


async def sizes(store: Store, kind: str) -> dict[str, int]:
    """Bytes by kind of data: raw samples (table and indexes), rollups, events, the rest."""
    groups: dict[str, int] = {}

    def group(name: str) -> str:
        if name.startswith(("samples", "sqlite_autoindex_samples")):
            return "samples"
        if name.startswith(("rollup_",)):
            return "rollups"
        if name.startswith("events"):
            return "events"
        return "other"

    if kind == "sqlite":
        db = store._w  # type: ignore[attr-defined]  # the writer's connection: checkpoint first
        await store._on(store._writer, lambda: db.execute("PRAGMA wal_checkpoint(TRUNCATE)"))  # type: ignore[attr-defined]
        rows = await store._on(store._writer, lambda: db.execute(  # type: ignore[attr-defined]
            "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
    else:
        pool = store._require()  # type: ignore[attr-defined]
        rows = await pool.fetch(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')")
    for name, size in rows:
        groups[group(name)] = groups.get(group(name), 0) + int(size or 0)
    return groups


def p99(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(0.99 * len(s)))] if s else 0.0


async def run(kind: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    url = await fresh_db(kind, tmp)
    city = plan(args.gateways)
    lamps = sum(len(g.cab.lamps) for g in city.gateways)
    end = now_ms() - 3_600_000
    start = end - args.days * DAY_MS
    async with open_store(url) as store:
        for g in city.gateways:
            await store.add_gateway(g.cab.gateway, g.cab.commune, hash_token(new_token()))
        t0 = time.perf_counter()
        samples, wire, before = await fill(store, city, start, end, args.sample_s)
        fill_s = time.perf_counter() - t0
        by = await sizes(store, kind)
        per_sample = by["samples"] / samples
        rollups_per_gateway_day = by["rollups"] / args.gateways / args.days
        # retention while the gateways go on ingesting (their next hour)
        policy = Policy(raw_days=args.raw_days)
        going = asyncio.create_task(apply(store, policy, dry_run=False))
        during: list[float] = []
        t = end
        while not going.done():
            _, _, lat = await fill(store, city, t, t + int(args.sample_s * 1000), args.sample_s)
            during += lat
            t += int(args.sample_s * 1000)
        report = await going
    if kind != "sqlite":
        from tests.store_testkit import pg_execute

        await pg_execute(f"DROP SCHEMA {url.rsplit('schema=', 1)[1]} CASCADE")
    per_lamp_day = 86_400 / args.sample_s * (1 + args.gateways / lamps)  # a lamp's samples and its share of meters
    lamp_year_raw = per_sample * per_lamp_day * YEAR_DAYS
    lamp_year_rollups = rollups_per_gateway_day * YEAR_DAYS * args.gateways / lamps
    kept_raw = per_sample * per_lamp_day * args.retention_days
    return {
        "store": kind, "gateways": args.gateways, "lamps": lamps, "days": args.days, "samples": samples,
        "fill_samples_per_s": round(samples / fill_s), "bytes_per_sample": round(per_sample, 1),
        "wire_json_bytes_per_sample": round(wire / samples, 1), "ratio_to_wire": round(per_sample / (wire / samples), 2),
        "by_kind_mb": {k: round(v / 1e6, 1) for k, v in by.items()},
        "lamp_year_raw_mb": round(lamp_year_raw / 1e6, 2), "lamp_year_rollups_kb": round(lamp_year_rollups / 1e3, 1),
        "metropolis_1y_no_retention_gb": round(METROPOLIS_LAMPS * lamp_year_raw / 1e9, 1),
        "metropolis_12y_no_retention_gb": round(12 * METROPOLIS_LAMPS * lamp_year_raw / 1e9, 1),
        "metropolis_12y_retention_gb": round(METROPOLIS_LAMPS * (kept_raw + 12 * lamp_year_rollups) / 1e9, 1),
        "retention_removed": report.samples, "retention_partitions": len(report.partitions),
        "retention_chunks": report.chunks, "retention_longest_lock_ms": round(report.longest_lock_ms, 2),
        "retention_lock_p50_ms": round(report.lock_pct(0.5), 2), "retention_lock_p99_ms": round(report.lock_pct(0.99), 2),
        "ingest_p99_ms_before": round(p99(before) * 1000, 1), "ingest_p99_ms_during": round(p99(during) * 1000, 1),
        "batches_during": len(during),
    }


def show(r: dict[str, Any]) -> str:
    return (f"{r['store']:<10} {r['samples']:,} samples ({r['lamps']} lamps, {r['days']} days):"
            f" {r['bytes_per_sample']} B a sample stored, {r['ratio_to_wire']}x its JSON on the wire"
            f" ({r['wire_json_bytes_per_sample']} B); by kind {r['by_kind_mb']} MB\n"
            f"           a lamp-year: {r['lamp_year_raw_mb']} MB raw, {r['lamp_year_rollups_kb']} kB rollups;"
            f" metropolis ({METROPOLIS_LAMPS:,} lamps): {r['metropolis_1y_no_retention_gb']} GB a year and"
            f" {r['metropolis_12y_no_retention_gb']} GB in 12 years without retention,"
            f" {r['metropolis_12y_retention_gb']} GB after 12 years with it\n"
            f"           retention: {r['retention_removed']:,} samples removed"
            f" ({r['retention_partitions']} partitions, {r['retention_chunks']} chunks), write lock a chunk:"
            f" median {r['retention_lock_p50_ms']} ms, p99 {r['retention_lock_p99_ms']} ms, longest"
            f" {r['retention_longest_lock_ms']} ms; ingest p99 {r['ingest_p99_ms_before']} ms before,"
            f" {r['ingest_p99_ms_during']} ms during ({r['batches_during']} batches)")


async def main_async(args: argparse.Namespace) -> None:
    kinds = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    rows = []
    for kind in kinds:
        with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
            r = await run(kind, args, Path(tmp))
        print(show(r), flush=True)
        rows.append(r)
    print(orjson.dumps(rows).decode())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--gateways", type=int, default=2)
    ap.add_argument("--days", type=int, default=75)
    ap.add_argument("--raw-days", type=int, default=20, help="retention applied after the fill (< --days)")
    ap.add_argument("--retention-days", type=int, default=90, help="the horizon of the projection")
    ap.add_argument("--sample-s", type=float, default=300.0)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
