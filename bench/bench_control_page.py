"""Benchmark: the control-centre summary (what every page and its live stream show) on a
metropolis-sized SQLite store, against the plain gateway listing it starts from, in the same run.

    .venv/bin/python bench/bench_control_page.py [--full]

Default: 300 cabinets x 60 lamps (18,000 lamps), 4 % of them with a lamp failure (about half of
those restored), a day of hourly energy readings. --full: 1,000 cabinets x 40 lamps (the reference
metropolis's 34,000 light points are in that range).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from aiohttp import web

from citygate_wire.batch import EventRecord, SampleRecord, WireRecord
from collector.app import create_app
from collector.dashboard import data
from collector.store_sqlite import SqliteStore
from collector.territory import load_territory
from collector.tokens import hash_token

HOUR_MS = 3_600_000


async def populate(store: SqliteStore, cabinets: int, lamps: int) -> None:
    communes = list(load_territory().communes.values())
    now = time.time_ns() // 1_000_000
    start = now - 24 * HOUR_MS
    for c in range(cabinets):
        commune = communes[c % len(communes)]
        gw = await store.add_gateway(f"gw-{c:04d}", commune.insee, hash_token(f"t{c}"), lat=commune.lat,
                                     lon=commune.lon)
        records: list[WireRecord] = []
        seq = 0
        for h in range(25):
            ts = start + h * HOUR_MS
            for lamp in range(lamps):
                seq += 1
                records.append(SampleRecord(seq, f"lamp-{lamp}", ts,
                                            {"energy_wh": 1000 + h * 50, "lamp_on": True, "power_w": 50.0}))
        for lamp in range(1, lamps, 25):  # 4 % fail, every other one is restored
            seq += 1
            records.append(EventRecord(seq, f"lamp-{lamp}", now - HOUR_MS, code="lamp_failure",
                                       severity="major", detail={}))
            if lamp % 50 == 1:
                seq += 1
                records.append(EventRecord(seq, f"lamp-{lamp}", now - 1000, code="lamp_restored",
                                           severity="info", detail={"cleared": "lamp_failure"}))
        for i in range(0, len(records), 5000):
            await store.ingest(gw, records[i:i + 5000])


async def timed(label: str, fn: object, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    print(f"{label:<42} median {median * 1000:8.1f} ms over {runs} runs")
    return median


async def main(full: bool) -> None:
    cabinets, lamps = (1000, 40) if full else (300, 60)
    with tempfile.TemporaryDirectory() as tmp:
        async with SqliteStore(Path(tmp) / "bench.db", synchronous="NORMAL") as store:
            t0 = time.perf_counter()
            await populate(store, cabinets, lamps)
            print(f"populated {cabinets} cabinets x {lamps} lamps in {time.perf_counter() - t0:.1f} s")
            app: web.Application = create_app(store)
            baseline = await timed("baseline: store.gateways()", store.gateways, 10)
            faults = await timed("open lamp faults", store.open_lamp_faults, 10)
            summary = await timed("control-centre summary", lambda: data.summary(app), 10)
            doc = await data.summary(app)
            print(f"summary: {doc['totals']['faulty_lamps']} faulty lamps, {doc['totals']['alarms']} alarms, "
                  f"{doc['totals']['energy_today_kwh']} kWh today")
            print(f"ratio open faults / baseline: {faults / baseline:.1f}x")
            print(f"ratio summary / baseline: {summary / baseline:.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="1,000 cabinets x 40 lamps")
    asyncio.run(main(parser.parse_args().full))
