"""Drain: samples/s from the agent's journal into the collector's store over loopback.

A backlog of N samples (default 1,000,000) sits in a journal; one uploader drains it into one
collector subprocess (SQLite store) over HTTP on 127.0.0.1. Baseline, same run, same disk: a
raw sqlite3 executemany of the same rows into a table of the store's shape (no HTTP, no JSON,
no journal). Target: >= 50,000 samples/s, and >= 0.25 of the baseline (issue 19). Where the time
goes: the CPU the agent's side (journal reads, acknowledgements, compression) and the collector
spent on each sample, beside the wall clock.

    python bench/bench_drain.py [--samples 1000000] [--batch 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sqlite3
import tempfile
import time
from pathlib import Path

import orjson

from drivers.model import Sample
from edge_agent.clock import SystemClock
from edge_agent.config import GatewayConfig, UplinkConfig
from edge_agent.journal import Journal
from edge_agent.uploader import Uploader
from simulators.procs import add_gateway, start_collector

TS = 1_764_000_000_000


def make(n: int) -> list[Sample]:
    return [Sample(f"lamp-{i % 150:03d}", TS + i * 10, {"level_pct": 70, "power_w": 61.2, "energy_wh": 100_000 + i,
                                                       "voltage_v": 231.4, "current_a": 0.27})
            for i in range(n)]


def baseline(path: Path, samples: list[Sample]) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE samples (gateway_id INTEGER, seq INTEGER, device TEXT, ts_ms INTEGER, vals TEXT, "
               "PRIMARY KEY (gateway_id, seq)) WITHOUT ROWID")
    t0 = time.perf_counter()
    for start in range(0, len(samples), 5000):
        chunk = samples[start:start + 5000]
        db.execute("BEGIN")
        db.executemany("INSERT INTO samples VALUES (1, ?, ?, ?, ?)",
                       [(start + i, s.device, s.ts_ms, orjson.dumps(s.values).decode()) for i, s in enumerate(chunk)])
        db.execute("COMMIT")
    return time.perf_counter() - t0


def cpu_s(pid: int | None = None) -> float:
    """CPU seconds (user + system) of a process, this one by default."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drain(tmp: Path, samples: list[Sample], batch: int) -> tuple[float, int, float, float]:
    """Seconds to drain, samples stored, and the CPU seconds the agent's side and the collector spent."""
    db = tmp / "collector.db"
    token = add_gateway(str(db), "gw-bench", "21231", tmp / "token")
    proc, url = start_collector(str(db))
    gateway = GatewayConfig("gw-bench", "21231", tmp / "state")
    try:
        async with Journal(gateway.state_dir / "journal.db", max_records=10**9) as journal:
            journal.append_many(samples)
            await journal.flush()
            up = UplinkConfig(url=url, token=token, interval_s=0.05, batch_max_records=batch,
                              batch_max_bytes=8_000_000)
            uploader = Uploader(gateway, up, journal, SystemClock())
            t0, agent0, collector0 = time.perf_counter(), cpu_s(), cpu_s(proc.popen.pid)
            task = asyncio.create_task(uploader.run())
            while (await journal.stats()).records:
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - t0
            agent, collector = cpu_s() - agent0, cpu_s(proc.popen.pid) - collector0
            task.cancel()
    finally:
        proc.stop()
    con = sqlite3.connect(db)
    stored = con.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
    return elapsed, stored, agent, collector


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=5000)
    args = ap.parse_args()
    samples = make(args.samples)
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        base = baseline(Path(tmp) / "raw.db", samples)
        elapsed, stored, agent, collector = asyncio.run(drain(Path(tmp), samples, args.batch))
    n = args.samples
    print(f"backlog {n} samples, batch {args.batch}, stored {stored}")
    print(f"  raw sqlite3 executemany (baseline) : {n / base:10.0f} samples/s")
    print(f"  journal -> HTTP -> collector store : {n / elapsed:10.0f} samples/s  ratio {base / elapsed:.2f}"
          f" (target >= 0.25: {'met' if base / elapsed >= 0.25 else 'NOT met'};"
          f" >= 50000/s: {'met' if n / elapsed >= 50_000 else 'NOT met'})")
    print(f"  CPU a sample: agent (journal, uploader) {agent / n * 1e6:.1f} us,"
          f" collector {collector / n * 1e6:.1f} us, on {os.cpu_count()} cores")
    if stored != n:
        raise SystemExit(f"stored {stored} of {n} samples")


if __name__ == "__main__":
    main()
