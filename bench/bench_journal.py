"""Journal: durable appends/s, single and batched, as a ratio to raw sqlite3 executemany of the same rows.

Same disk, same run, same row content (the compact body the journal stores). Target: ratio >= 0.5.
'single' appends records one at a time through Journal.append (the journal groups them into
transactions); 'batched' hands a list to append_many; both end with a flush that waits for the
commit (synchronous=FULL, as shipped). The baseline is one executemany in one transaction with
the same PRAGMAs.

    python bench/bench_journal.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from drivers.model import Sample
from edge_agent.journal import Journal, encode

TS = 1_764_000_000_000


def make_records(n: int) -> list[Sample]:
    return [
        Sample(f"lamp-{i % 150:03d}", TS + i, {"level_pct": 70, "power_w": 61.2, "energy_wh": 123456 + i,
                                              "voltage_v": 231.5, "current_a": 0.28, "temperature_c": 31.0})
        for i in range(n)
    ]


def raw_baseline(path: Path, records: list[Sample], synchronous: str) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind INTEGER, ts_ms INTEGER, body BLOB)")
    t0 = time.perf_counter()
    rows = [(kind, ts_ms, body) for kind, ts_ms, _, body in map(encode, records)]  # the journal's encoding work
    db.execute("BEGIN")
    db.executemany("INSERT INTO t(kind, ts_ms, body) VALUES (?, ?, ?)", rows)
    db.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    db.close()
    return elapsed


async def journal_run(path: Path, records: list[Sample], synchronous: str, batched: bool) -> float:
    async with Journal(path, max_records=10**9, synchronous=synchronous) as journal:
        t0 = time.perf_counter()
        if batched:
            journal.append_many(records)
        else:
            for r in records:
                journal.append(r)
        await journal.flush()
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    records = make_records(args.rows)
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        d = Path(tmp)
        for sync in ("FULL", "NORMAL"):
            base = raw_baseline(d / f"raw-{sync}.db", records, sync)
            single = asyncio.run(journal_run(d / f"single-{sync}.db", records, sync, batched=False))
            batched = asyncio.run(journal_run(d / f"batched-{sync}.db", records, sync, batched=True))
            n = args.rows
            print(f"synchronous={sync} rows={n}")
            print(f"  raw sqlite3 executemany : {n / base:10.0f} rows/s (baseline)")
            print(f"  journal single appends  : {n / single:10.0f} rows/s  ratio {base / single:.2f}")
            print(f"  journal batched appends : {n / batched:10.0f} rows/s  ratio {base / batched:.2f}")


if __name__ == "__main__":
    main()
