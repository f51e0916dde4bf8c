"""What a SQLite retention run costs the ingest beside it: the ingest's latency while retention
deletes a large backlog, against the same ingest without it in the same run, and the rows a
second retention deletes.

A fresh store gets `--lamps` lamps (25 a gateway) with a sample every `--every-min` minutes over
`--days` days past the horizon and `--keep-days` within it, written in time order across the
gateways, as ingest lays them out (a bulk load, not the ingest path: millions of rows in a minute).
Then the real store (collector.store_sqlite) is opened and ingest runs at a fixed rate through
`store.ingest` (JSON batches decoded as the batch endpoint decodes them, one sample a lamp of a
gateway a batch, `--rate` batches a second, open loop: a batch is started at its time whatever
the previous ones do, so a stall shows as the latency of every batch behind it). Beside the
ingest, a probe hands the writer thread an empty job every 10 ms: its wait is exactly how long
the writer was busy with something else, the time ingest waits on the writer.

Phase 1 (the baseline): `--baseline-s` seconds of ingest alone, after `--warmup-s` not counted. Phase 2: the same ingest while
collector.retention deletes the backlog (in-process, as the serving collector's hourly job does;
`--cli` runs `citygate-collector retention run` as another process instead). Printed: ingest
latency p50/p99/max and the writer's wait p50/p99/max in both phases with their ratio, the
retention's rows a second, its chunks' write transactions, and the WAL's largest size.

    python bench/bench_retention.py [--lamps 1000] [--days 30] [--every-min 5] [--rate 25] [--cli]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from citygate_wire.batch import decode_batch
from citygate_wire.common import now_ms
from collector.model import Gateway
from collector.retention import DAY_MS, Policy, Report, apply
from collector.store_sqlite import SqliteStore
from collector.tokens import hash_token, new_token

LAMPS_A_GATEWAY = 25
PROBE_S = 0.010
CLI = str(Path(sys.executable).parent / "citygate-collector")


@dataclass
class Phase:
    name: str
    ingest_ms: list[float] = field(default_factory=list)
    wait_ms: list[float] = field(default_factory=list)
    wal_max_bytes: int = 0
    seconds: float = 0.0


class CatchUps(logging.Handler):
    """Counts the store's catch-up checkpoints on the writer thread (what retention must never cause)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += record.getMessage().startswith("WAL at")


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def build(path: Path, gids: list[int], start: int, end: int, every_ms: int) -> tuple[int, dict[int, int]]:
    """The backlog, in time order across gateways (as a fleet's batches interleave): rows, last seq by gateway."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-400000")
    vals = orjson.dumps({"lamp_on": True, "level_pct": 70, "power_w": 61.5, "energy_wh": 123456.7}).decode()
    seq = dict.fromkeys(gids, 0)
    devices = [f"lamp-{i:02d}" for i in range(LAMPS_A_GATEWAY)]
    rows: list[tuple[Any, ...]] = []
    total = 0

    def flush() -> None:
        db.execute("BEGIN")
        db.executemany("INSERT INTO samples (gateway_id, seq, device, ts_ms, vals) VALUES (?, ?, ?, ?, ?)", rows)
        db.execute("COMMIT")
        rows.clear()

    for ts in range(start, end, every_ms):
        for gid in gids:
            s = seq[gid]
            rows.extend((gid, s + i + 1, d, ts, vals) for i, d in enumerate(devices))
            seq[gid] = s + len(devices)
        if len(rows) >= 200_000:
            total += len(rows)
            flush()
    total += len(rows)
    flush()
    for gid, last in seq.items():
        db.execute("UPDATE gateways SET last_seq = ? WHERE id = ?", (last, gid))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the bench's setup, before any collector serves
    db.close()
    return total, seq


class Load:
    """Ingest at a fixed rate and the writer probe, recording into the current phase."""

    def __init__(self, store: SqliteStore, gateways: list[Gateway], seqs: dict[int, int], rate: float) -> None:
        self.store, self.gateways, self.seqs, self.rate = store, gateways, seqs, rate
        self.phase = Phase("none")
        self.stop = False
        self.errors = 0
        self.wal = Path(str(store.path) + "-wal")

    def body(self, gw: Gateway) -> bytes:
        first = self.seqs[gw.id] + 1
        self.seqs[gw.id] += LAMPS_A_GATEWAY
        ts = now_ms()
        recs = [{"seq": first + i, "kind": "sample", "device": f"lamp-{i:02d}", "ts_ms": ts,
                 "values": {"lamp_on": True, "level_pct": 70, "power_w": 61.5, "energy_wh": 123456.7 + i}}
                for i in range(LAMPS_A_GATEWAY)]
        return orjson.dumps({"v": 1, "gateway": gw.name, "commune": gw.commune, "records": recs})

    async def one(self, gw: Gateway, due: float) -> None:
        phase = self.phase
        try:
            batch = decode_batch(self.body(gw), latest_ts_ms=now_ms() + 60_000)
            await self.store.ingest(gw, batch.records)
        except Exception as exc:  # counted and reported: the bench must not stop
            self.errors += 1
            print(f"ingest failed: {exc}", file=sys.stderr)
            return
        phase.ingest_ms.append((time.perf_counter() - due) * 1000)

    async def ingest(self) -> None:
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()
        t0, i = time.perf_counter(), 0
        while not self.stop:
            due = t0 + i / self.rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            task = loop.create_task(self.one(self.gateways[i % len(self.gateways)], due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        await asyncio.gather(*tasks)

    async def probe(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.stop:
            phase = self.phase
            t = time.perf_counter()
            await loop.run_in_executor(self.store._writer, time.perf_counter)  # the store's own writer thread
            phase.wait_ms.append((time.perf_counter() - t) * 1000)
            try:
                phase.wal_max_bytes = max(phase.wal_max_bytes, self.wal.stat().st_size)
            except FileNotFoundError:
                pass
            await asyncio.sleep(PROBE_S)


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    path = tmp / "retention.db"
    gateways_n = max(1, args.lamps // LAMPS_A_GATEWAY)
    now = now_ms()
    async with SqliteStore(path) as store:
        gws = [await store.add_gateway(f"gw-{i:04d}", "21231", hash_token(new_token())) for i in range(gateways_n)]
    t = time.perf_counter()
    rows, seqs = build(path, [g.id for g in gws], now - (args.days + args.keep_days) * DAY_MS,
                       now - 60_000, args.every_min * 60_000)
    built_s = time.perf_counter() - t
    old = gateways_n * LAMPS_A_GATEWAY * (args.days * DAY_MS // (args.every_min * 60_000))
    print(f"backlog: {rows:,} samples of {gateways_n * LAMPS_A_GATEWAY:,} lamps ({gateways_n} gateways),"
          f" about {old:,} past the horizon, built in {built_s:.0f} s;"
          f" file {path.stat().st_size / 1e9:.2f} GB", flush=True)

    policy = Policy(raw_days=args.keep_days, events_days=0, audit_days=0)
    catch_ups = CatchUps()
    logging.getLogger("citygate.collector").addHandler(catch_ups)
    logging.getLogger("citygate.collector").setLevel(logging.INFO)
    gc.collect()
    gc.freeze()  # as `serve` does once started: the set-up's objects out of the collector's sight
    async with SqliteStore(path) as store:
        load = Load(store, gws, seqs, args.rate)
        baseline, during = Phase("baseline"), Phase("retention")
        load.phase = Phase("warm-up")  # the first batches read each gateway's state and the pages they touch
        jobs = [asyncio.create_task(load.ingest()), asyncio.create_task(load.probe())]
        await asyncio.sleep(args.warmup_s)
        load.phase = baseline
        t = time.perf_counter()
        await asyncio.sleep(args.baseline_s)
        baseline.seconds = time.perf_counter() - t
        load.phase = during
        t = time.perf_counter()
        report = await (retain_cli(path, args) if args.cli else apply(store, policy, dry_run=False, chunk=args.chunk))
        during.seconds = time.perf_counter() - t
        load.stop = True
        await asyncio.gather(*jobs)
        left = (await store.count_records()).samples
    return {"rows": rows, "report": report, "baseline": baseline, "during": during, "errors": load.errors,
            "left": left, "catch_ups": catch_ups.count}


async def retain_cli(path: Path, args: argparse.Namespace) -> Report:
    """`citygate-collector retention run` as another process, beside the store this one serves."""
    env = {**os.environ, "CITYGATE_RETENTION_RAW_DAYS": str(args.keep_days), "CITYGATE_RETENTION_EVENTS_DAYS": "0",
           "CITYGATE_RETENTION_AUDIT_DAYS": "0"}
    proc = await asyncio.create_subprocess_exec(CLI, "retention", "run", "--db", str(path), env=env,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode:
        raise SystemExit(f"retention run failed: {err.decode()}")
    print(out.decode().rstrip())
    first = out.decode().splitlines()[0]  # "raw samples older than N days: 1,234 removed"
    return Report(samples=int(first.split(":")[1].split()[0].replace(",", "")))


def show(r: dict[str, Any]) -> None:
    b, d, rep = r["baseline"], r["during"], r["report"]
    print(f"{'':>22} {'baseline':>12} {'retention':>12} {'ratio':>7}")
    for label, attr in (("ingest latency", "ingest_ms"), ("writer wait", "wait_ms")):
        for q, name in ((0.5, "p50"), (0.99, "p99"), (1.0, "max")):
            x, y = pct(getattr(b, attr), q), pct(getattr(d, attr), q)
            print(f"{label + ' ' + name + ' (ms)':>22} {x:12.2f} {y:12.2f} {y / x if x else float('nan'):7.2f}")
    print(f"{'batches':>22} {len(b.ingest_ms):12,} {len(d.ingest_ms):12,}")
    print(f"{'WAL largest (MB)':>22} {b.wal_max_bytes / 1e6:12.1f} {d.wal_max_bytes / 1e6:12.1f}")
    print(f"retention: {rep.samples:,} samples in {d.seconds:.1f} s = {rep.samples / d.seconds:,.0f} rows/s"
          + (f"; {rep.chunks:,} transactions, each held the writer median {rep.lock_pct(0.5):.2f} ms,"
             f" p99 {rep.lock_pct(0.99):.2f} ms, longest {rep.longest_lock_ms:.2f} ms" if rep.chunks else ""))
    print(f"ingest errors: {r['errors']}; samples in the store after the run: {r['left']:,};"
          f" checkpoints the writer thread had to make: {r['catch_ups']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lamps", type=int, default=1000)
    ap.add_argument("--days", type=int, default=30, help="days of backlog past the horizon (deleted)")
    ap.add_argument("--keep-days", type=int, default=1, help="days kept (the horizon)")
    ap.add_argument("--every-min", type=int, default=5, help="a sample a lamp every so many minutes")
    ap.add_argument("--rate", type=float, default=25.0, help="ingest batches a second")
    ap.add_argument("--warmup-s", type=float, default=5.0, help="ingest before the baseline, not counted")
    ap.add_argument("--baseline-s", type=float, default=30.0)
    ap.add_argument("--chunk", type=int, default=None, help="rows a retention transaction (default: the module's)")
    ap.add_argument("--cli", action="store_true", help="retention as another process (citygate-collector retention run)")
    ap.add_argument("--dir", type=Path, default=None, help="where the database goes (default: a temporary directory)")
    args = ap.parse_args()
    if args.chunk is None:
        from collector.retention import CHUNK

        args.chunk = CHUNK
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        show(asyncio.run(run(args, args.dir)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-retention-") as tmp:
        show(asyncio.run(run(args, Path(tmp))))


if __name__ == "__main__":
    main()
