"""Traffic counts: what they cost the collector's ingest, and the agent's decoding of the interval registers.

1. Ingest, SQLite store on a temporary file (synchronous=FULL, as served): batches of lamp
   samples (no traffic count) against the same batches once the traffic step's scan of each
   batch for counts (`traffic_rows`) is all that differs: the scan's share of a batch's ingest.
2. Ingest of traffic batches (8 detectors, one sample each per 1-minute interval, 2000 samples a
   batch) against lamp batches of the same size in the same run: what the interval rows, the
   quarter-hour rollups and the junction rows cost beyond the samples.
3. Interval slots decoded per second (8 detectors), against a same-run baseline that only slices
   the words into per-detector tuples (no check).

    python bench/bench_counts.py [--batches 20] [--batch 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from citygate_wire.batch import WireRecord, decode_batch
from collector.store import open_store
from collector.tokens import hash_token, new_token
from collector.traffic.store import traffic_rows
from drivers.traffic.counting import DetectorCount, Interval, decode_interval, encode_interval

TS0 = 1_780_293_600_000  # 2026-06-01T06:00Z


def lamp_batch(gateway: str, first_seq: int, n: int) -> list[WireRecord]:
    recs = [{"seq": first_seq + i, "kind": "sample", "device": f"lamp-{i % 150}", "ts_ms": TS0 + i * 1000,
             "values": {"power_w": 42.5, "energy_wh": 1000 + i, "lamp_on": True, "level_pct": 70}} for i in range(n)]
    return list(decode_batch(orjson.dumps({"v": 1, "gateway": gateway, "records": recs}), latest_ts_ms=2**62).records)


def count_batch(gateway: str, first_seq: int, n: int, first_interval: int) -> list[WireRecord]:
    recs: list[dict[str, Any]] = []
    i = first_interval
    while len(recs) < n:
        for d in range(8):
            values = {"junction": "bench-junction", "approach": f"A{d // 2}", "lane": d % 2 + 1, "lane_count": True,
                      "interval": i, "interval_s": 60, "count_veh": 9 + d, "occupancy_pct": 11.5,
                      "speed_kmh": 38.0 if d % 2 else None, "light_veh": None, "heavy_veh": None,
                      "detector_fault": None}
            recs.append({"seq": first_seq + len(recs), "kind": "sample", "device": f"signals-1.D{d}",
                         "ts_ms": (i + 1) * 60_000, "values": values})
        i += 1
    body = orjson.dumps({"v": 1, "gateway": gateway, "records": recs[:n]})
    return list(decode_batch(body, latest_ts_ms=2**62).records)


async def ingest_rate(batches: list[list[WireRecord]], gateway: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        async with open_store(str(Path(tmp) / "c.db")) as store:
            gw = await store.add_gateway(gateway, "21231", hash_token(new_token()))
            t0 = time.perf_counter()
            for b in batches:
                await store.ingest(gw, b)
            elapsed = time.perf_counter() - t0
    return sum(len(b) for b in batches) / elapsed


def scan_share(batches: list[list[WireRecord]], lamp_rate: float) -> tuple[float, float]:
    t0 = time.perf_counter()
    for b in batches:
        traffic_rows(1, b)
    scan = time.perf_counter() - t0
    per_sample_us = scan / sum(len(b) for b in batches) * 1e6
    return per_sample_us, per_sample_us / (1e6 / lamp_rate)


def decode_rates(n: int) -> tuple[float, float]:
    slots = [encode_interval(Interval(29_000_000 + k, (29_000_000 + k) * 60, 60, tuple(
        DetectorCount(10 + d, 120, 385 if d % 2 == 0 else None, 9 if d % 2 == 0 else None,
                      1 + d if d % 2 == 0 else None) for d in range(8)))) for k in range(1000)]
    t0 = time.perf_counter()
    for k in range(n):
        decode_interval(slots[k % 1000], 8)
    ours = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for k in range(n):
        w = slots[k % 1000]
        _ = [tuple(w[6 + 5 * d: 11 + 5 * d]) for d in range(8)]
    base = n / (time.perf_counter() - t0)
    return ours, base


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--batch", type=int, default=2000)
    args = ap.parse_args()
    lamps = [lamp_batch("gw-bench", 1 + k * args.batch, args.batch) for k in range(args.batches)]
    counts = [count_batch("gw-bench", 1 + k * args.batch, args.batch, 29_671_560 + k * args.batch // 8)
              for k in range(args.batches)]
    lamp_rate = await ingest_rate(lamps, "gw-bench")
    count_rate = await ingest_rate(counts, "gw-bench")
    us, share = scan_share(lamps, lamp_rate)
    print(f"lamp batches ingested          {lamp_rate:>10,.0f} samples/s (SQLite, {args.batches} x {args.batch})")
    print(f"traffic scan of a lamp batch   {us:>10.3f} us/sample = {share:.2%} of its ingest")
    print(f"traffic batches ingested       {count_rate:>10,.0f} samples/s, ratio to lamp batches "
          f"{count_rate / lamp_rate:.2f}")
    ours, base = decode_rates(100_000)
    print(f"interval slots decoded         {ours:>10,.0f} slots/s (8 detectors), baseline slicing "
          f"{base:,.0f}/s, ratio {ours / base:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
