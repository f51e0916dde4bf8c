"""Benchmark: the control centre's map page in Chromium with the whole metropolis known to the collector,
against the same page with 20 cabinets, in the same run.

    .venv/bin/python bench/bench_map_page.py [--cabinets 1500] [--lamps 34000] [--live-s 20] [--runs 3]

For each city (the 20-cabinet baseline, then the metropolis) a SQLite store is filled through the
store's own ingest (a fixture: every lamp's position from its gateway's config event, a reading each,
a few failed, unreachable and lost-communication lamps), `citygate-collector serve` runs on it, and
the system Chromium (Playwright) opens /control/#/map in a fresh context (empty cache) `--runs` times:

- first render: navigation start to the first frame after the map drew its cabinets and layers
  (the page's `cg-map-rendered` mark);
- every lamp held: navigation start to the lamps' positions and states all there (every page of the
  lamps put together, `cg-map-lamps`: what street zoom needs);
- interactive: the end of the last long task (> 50 ms, PerformanceObserver) before a quiet 2 s after
  the first render, or the first render if none came after it;
- bytes: what the network carried for the page, compressed as sent (CDP encodedDataLength), the
  live stream left out (it never ends);
- live cost: the page left open while uploads arrive at the city's own rate (each cabinet sends its
  batch every 15 min, the shipped `batch_max_age_s`: 1,500 cabinets are 1.7 batches a second, each
  lamp's heartbeat and a state change for one lamp in 40), for `--live-s` seconds: the page's main-thread
  time (CDP TaskDuration), the collector's CPU (its process's utime + stime; and again for the same
  batches with no page open: the page's share is the difference) and the bytes the page received
  (the deltas and the stream's events), each per second.

Figures are medians; each is printed with its ratio to the baseline. The machine is shared: the
ratios are the result, not the times alone. Targets (issue 17): first render and interactive
<= 1.5 s, bytes <= 1.5 MB. `--tiny` runs it at toy sizes (the smoke test).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from playwright.async_api import Browser, CDPSession, Page, async_playwright

from citygate_wire.batch import PATH, EventRecord, SampleRecord, WireRecord
from collector.store_sqlite import SqliteStore
from collector.territory import load_territory
from collector.tokens import hash_token

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from collector.cli import main; main()"]
LISTENING = re.compile(r"citygate-collector listening on (http://\S+)")
BATCH_EVERY_S = 900.0  # each cabinet's batch: the shipped configs' batch_max_age_s
QUIET_S = 2.0
LONG_TASKS = """
window.__cgLong = [];
new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__cgLong.push([e.startTime, e.duration]); })
  .observe({ type: "longtask", buffered: true });
"""


@dataclass(frozen=True)
class City:
    cabinets: int
    lamps: int

    def lamps_of(self, cabinet: int) -> int:
        base, extra = divmod(self.lamps, self.cabinets)
        return base + (1 if cabinet < extra else 0)


def token(c: int) -> str:
    return f"cgw_bench_{c:05d}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def populate(db: Path, city: City) -> None:
    """Cabinets spread around their communes' centres, each lamp 30 m from the last along its street."""
    communes = list(load_territory().communes.values())
    rnd = random.Random(17)
    now = now_ms()
    async with SqliteStore(db, synchronous="NORMAL") as store:
        for c in range(city.cabinets):
            commune = communes[c % len(communes)]
            lat, lon = commune.lat + rnd.uniform(-0.02, 0.02), commune.lon + rnd.uniform(-0.03, 0.03)
            gw = await store.add_gateway(f"gw-{c:05d}", commune.insee, hash_token(token(c)), lat=round(lat, 6),
                                         lon=round(lon, 6))
            records: list[WireRecord] = []
            heading = rnd.uniform(0, 6.28)
            for n in range(city.lamps_of(c)):
                device = f"lamp-{n:03d}"
                step = (n + 1) * 0.00027
                records.append(EventRecord(len(records) + 1, device, now - 60_000, code="device_position",
                                           severity="info", detail={"lat": round(lat + step * math.cos(heading), 6),
                                                                    "lon": round(lon + step * math.sin(heading) * 1.5, 6)}))
                level = 100 if n % 3 else 50
                records.append(SampleRecord(len(records) + 1, device, now - 30_000,
                                            {"lamp_on": True, "level_pct": level, "power_w": 0.6 * level}))
                if n % 97 == 5:
                    records.append(EventRecord(len(records) + 1, device, now - 20_000, code="lamp_failure",
                                               severity="major", detail={}))
                if n % 131 == 7:
                    records.append(EventRecord(len(records) + 1, device, now - 20_000, code="communication_failure",
                                               severity="major", detail={"failures": 3}))
            await store.ingest(gw, records)


def start_collector(db: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([*CLI, "serve", "--db", str(db), "--port", "0"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=log.open("w"), text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"the collector exited: {log.read_text()[-2000:]}")
        if m := LISTENING.search(line):
            return proc, m.group(1)
    raise SystemExit("the collector did not say it was listening")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def watched_page(browser: Browser) -> AsyncIterator[tuple[Page, CDPSession]]:
    """A page in a fresh context (no cache, no cookie) at 1366x768, Paris, and its CDP session, network on."""
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="fr-FR",
                                        timezone_id="Europe/Paris")
    try:
        page = await context.new_page()
        cdp = await context.new_cdp_session(page)
        await cdp.send("Network.enable")
        yield page, cdp
    finally:
        await context.close()


async def load_once(browser: Browser, url: str) -> dict[str, float]:
    async with watched_page(browser) as (page, cdp):
        await page.add_init_script(LONG_TASKS)
        await cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        sizes: dict[str, float] = {}
        streams: set[str] = set()

        def finished(e: dict[str, Any]) -> None:
            sizes[e["requestId"]] = e["encodedDataLength"]

        def sent(e: dict[str, Any]) -> None:
            if e["request"]["url"].endswith("/control/api/stream"):
                streams.add(e["requestId"])

        cdp.on("Network.loadingFinished", finished)
        cdp.on("Network.requestWillBeSent", sent)
        await page.goto(url + "/control/#/map", timeout=120_000)
        await page.wait_for_function("performance.getEntriesByName('cg-map-rendered').length > 0", timeout=120_000)
        rendered = await page.evaluate("performance.getEntriesByName('cg-map-rendered')[0].startTime")
        await page.wait_for_function("performance.getEntriesByName('cg-map-lamps').length > 0", timeout=120_000)
        lamps = await page.evaluate("performance.getEntriesByName('cg-map-lamps')[0].startTime")
        await asyncio.sleep(QUIET_S)
        long_tasks = await page.evaluate("window.__cgLong")
        after = [start + duration for start, duration in long_tasks if start + duration > rendered]
        interactive = max([rendered, *after])
        total = sum(v for k, v in sizes.items() if k not in streams)
        return {"render_ms": rendered, "lamps_ms": lamps, "interactive_ms": interactive, "bytes": total}


async def feed(url: str, city: City, seconds: float) -> int:
    """Batches at the city's rate (a random cabinet each) for `seconds`; how many were sent."""
    rate = city.cabinets / BATCH_EVERY_S
    rnd = random.Random(5)
    seqs = [time.time_ns() // 1000] * city.cabinets  # above any earlier run's: every record is new
    t0 = time.monotonic()
    sent = 0
    async with aiohttp.ClientSession() as session:
        while (elapsed := time.monotonic() - t0) < seconds:
            for _ in range(max(0, int(elapsed * rate) + 1 - sent)):
                await upload(session, url, rnd.randrange(city.cabinets), seqs, city)
                sent += 1
            await asyncio.sleep(0.05)
    return sent


async def idle_cost(url: str, pid: int, city: City, seconds: float) -> dict[str, float]:
    """The collector's CPU for the same batches with no page open: what the page adds is the difference."""
    t_cpu, t0 = cpu_s(pid), time.monotonic()
    await feed(url, city, seconds)
    return {"idle_collector_ms_per_s": 1000 * (cpu_s(pid) - t_cpu) / (time.monotonic() - t0)}


async def live_cost(browser: Browser, url: str, pid: int, city: City, seconds: float) -> dict[str, float]:
    """The page open while the city's batches arrive at their rate: costs per second."""
    async with watched_page(browser) as (page, cdp):
        await cdp.send("Performance.enable")
        received = [0]

        def add(n: int) -> None:
            received[0] += n

        cdp.on("Network.loadingFinished", lambda e: add(e["encodedDataLength"]))  # the deltas
        cdp.on("Network.eventSourceMessageReceived", lambda e: add(len(e["data"]) + len(e["eventName"]) + 16))
        refreshes = [0]
        page.on("request", lambda r: refreshes.__setitem__(0, refreshes[0] + ("/map/states?since=" in r.url)))
        await page.goto(url + "/control/#/map", timeout=120_000)
        await page.wait_for_selector(".map-view[data-ready=true]", timeout=120_000)
        await asyncio.sleep(QUIET_S)

        async def task_s() -> float:
            metrics = (await cdp.send("Performance.getMetrics"))["metrics"]
            return float(next(m["value"] for m in metrics if m["name"] == "TaskDuration"))

        t_page, t_cpu, received[0], refreshes[0] = await task_s(), cpu_s(pid), 0, 0
        t0 = time.monotonic()
        sent = await feed(url, city, seconds)
        elapsed = time.monotonic() - t0
        return {"page_ms_per_s": 1000 * (await task_s() - t_page) / elapsed,
                "collector_ms_per_s": 1000 * (cpu_s(pid) - t_cpu) / elapsed,
                "bytes_per_s": received[0] / elapsed, "batches": sent, "refreshes": refreshes[0]}


async def upload(session: aiohttp.ClientSession, url: str, c: int, seqs: list[int], city: City) -> None:
    """One cabinet's batch: each lamp's heartbeat, one lamp in 40 dimmed or restored to full."""
    now = now_ms()
    records = []
    for n in range(city.lamps_of(c)):
        seqs[c] += 1
        level = (50 if (n + seqs[c]) % 2 else 100) if n % 40 == 0 else (100 if n % 3 else 50)
        records.append({"seq": seqs[c], "kind": "sample", "device": f"lamp-{n:03d}", "ts_ms": now,
                        "values": {"lamp_on": True, "level_pct": level, "power_w": 0.6 * level}})
    z = zlib.compressobj(6, wbits=31)
    body = z.compress(orjson.dumps({"v": 1, "gateway": f"gw-{c:05d}", "records": records})) + z.flush()
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json", "Authorization": f"Bearer {token(c)}"}
    async with session.post(url + PATH, data=body, headers=headers) as resp:
        if resp.status != 200:
            raise SystemExit(f"upload refused: {resp.status} {await resp.text()}")


@contextlib.asynccontextmanager
async def served(tmp: Path, city: City) -> AsyncIterator[tuple[str, int]]:
    """The city in a store and a collector serving it: (url, pid)."""
    folder = tmp / f"city-{city.cabinets}"
    folder.mkdir()
    t0 = time.perf_counter()
    await populate(folder / "collector.db", city)
    print(f"  {city.cabinets} cabinets, {city.lamps} lamps stored in {time.perf_counter() - t0:.0f} s", flush=True)
    t0 = time.perf_counter()
    proc, url = start_collector(folder / "collector.db", folder / "serve.log")
    try:
        async with aiohttp.ClientSession() as session, session.get(url + "/control/api/map/states") as resp:
            assert resp.status == 200, await resp.text()
        # the collector builds the map's snapshot as it starts; a page comes to a running collector
        print(f"  collector started, its map snapshot built, in {time.perf_counter() - t0:.1f} s", flush=True)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(run[k] for run in runs) for k in runs[0]}


ROWS = (("render_ms", "first render", "ms", 1), ("lamps_ms", "every lamp held", "ms", 1),
        ("interactive_ms", "interactive", "ms", 1),
        ("bytes", "bytes transferred", "kB", 1000), ("page_ms_per_s", "live: page main thread", "ms/s", 1),
        ("collector_ms_per_s", "live: collector CPU", "ms/s", 1),
        ("idle_collector_ms_per_s", "  the same, no page open", "ms/s", 1),
        ("bytes_per_s", "live: bytes received", "kB/s", 1000))


async def main(args: argparse.Namespace) -> None:
    base = City(min(20, args.cabinets), max(1, args.lamps * min(20, args.cabinets) // args.cabinets))
    metro = City(args.cabinets, args.lamps)
    from tests.collector_web.cdp import chromium_path  # the one place that finds the system Chromium

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path(),
                                          args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            with tempfile.TemporaryDirectory() as tmp:
                async with served(Path(tmp), base) as (b_url, b_pid), served(Path(tmp), metro) as (m_url, m_pid):
                    # alternated, so both cities see the same moments of the shared machine
                    b_runs, m_runs, b_live, m_live = [], [], [], []
                    for _ in range(args.runs):
                        b_runs.append(await load_once(browser, b_url))
                        m_runs.append(await load_once(browser, m_url))
                    for _ in range(args.live_rounds):
                        b_live.append({**await live_cost(browser, b_url, b_pid, base, args.live_s),
                                       **await idle_cost(b_url, b_pid, base, args.live_s)})
                        m_live.append({**await live_cost(browser, m_url, m_pid, metro, args.live_s),
                                       **await idle_cost(m_url, m_pid, metro, args.live_s)})
                    b = {**medians(b_runs), **medians(b_live)}
                    m = {**medians(m_runs), **medians(m_live)}
        finally:
            await browser.close()
    print(f"\n{'':26}{base.cabinets:>5} cab.{metro.cabinets:>10} cab.   ratio")
    for key, label, unit, div in ROWS:
        ratio = m[key] / b[key] if b[key] else float("nan")
        print(f"{label:<24}{b[key] / div:>9.1f} {unit:<4}{m[key] / div:>9.1f} {unit:<5}{ratio:>6.1f}x")
    for key, label in (("batches", "live: batches sent"), ("refreshes", "live: map deltas asked")):
        print(f"{label:<24}{b[key]:>9.0f}     {m[key]:>9.0f}")
    ok = m["render_ms"] <= 1500 and m["interactive_ms"] <= 1500 and m["bytes"] <= 1.5e6
    print(f"targets (render, interactive <= 1.5 s; bytes <= 1.5 MB): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cabinets", type=int, default=1500)
    parser.add_argument("--lamps", type=int, default=34_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--live-s", type=float, default=20.0)
    parser.add_argument("--live-rounds", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="40 cabinets, 400 lamps, one run, 3 s live")
    a = parser.parse_args()
    if a.tiny:
        a.cabinets, a.lamps, a.runs, a.live_s, a.live_rounds = 40, 400, 1, 3.0, 1
    sys.path.insert(0, str(REPO))
    asyncio.run(main(a))
