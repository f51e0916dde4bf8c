"""Benchmark: the control-centre page and its read API over real HTTP with the whole metropolis known,
against the same page with a 4-cabinet city (and the trivial /control/api/me), in the same run.

    .venv/bin/python bench/bench_control_http.py [--runs 3] [--requests 200] [--live-s 15] [--repo PATH]

The metropolis is citygate-sim city's plan (simulators.city.plan_city: 1,500 cabinets, 34,000 lamps over
the 23 communes by population; Dijon, the largest, has 916 cabinets and 20,763 lamps), stored through the
store's own ingest: a reading per lamp, the energy of the day, a lamp failure in 97 (the alarms are
folded by the collector as it starts). `citygate-collector serve` runs on it (SQLite), and:

- page: the system Chromium (Playwright, headless, fresh context, cache off) opens the overview (`#/`),
  Dijon's commune view (`#/commune/21231`) and the map (`#/map`), `--runs` times each: first render
  (navigation start to the first animation frame where the view shows its data: the KPIs, every one of
  Dijon's cabinets in its table, the map's `cg-map-rendered` mark), bytes transferred (compressed, as
  sent: CDP encodedDataLength; a live stream's events received up to the render, as sent: a stream is
  not compressed), and the DOM's nodes;
- API: `--requests` GETs one after another of /control/api/summary and /control/api/communes/21231, and
  of /control/api/me (the baseline), p50 and p99, and the size of each answer;
- live: Dijon's commune view left open `--live-s` seconds while cabinets post their batches at the
  metropolis's steady rate (1,500 cabinets, one sample per lamp every 5 minutes: 5 batches/s): the bytes
  the page received (its streams' events and anything it fetched), the events, and the bytes per event.

`--repo PATH` serves the collector and the page from another checkout (a `git worktree` of an earlier
commit): the same figures "before". Targets (issue 17): first render <= 1.5 s, bytes <= 1.5 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from playwright.async_api import Browser, async_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_map_page import watched_page  # noqa: E402

from citygate_wire.batch import PATH, EventRecord, SampleRecord, WireRecord  # noqa: E402
from collector.store_sqlite import SqliteStore  # noqa: E402
from collector.tokens import hash_token  # noqa: E402
from simulators.city import Cabinet, plan_city  # noqa: E402

TERRITORY = REPO / "configs" / "territory.json"
LISTENING = re.compile(r"citygate-collector listening on (http://\S+)")
HOUR_MS = 3_600_000
DIJON = "21231"
STEADY_BATCHES_S = 1500 / 300  # one sample per lamp every 5 minutes
TARGET_RENDER_MS, TARGET_BYTES = 1500, 1.5e6


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def token(i: int) -> str:
    return f"cgw_bench_ctl_{i:05d}"


async def populate(db: Path, plan: list[Cabinet]) -> None:
    now = now_ms()
    async with SqliteStore(db, synchronous="NORMAL") as store:
        for i, cab in enumerate(plan):
            gw = await store.add_gateway(cab.gateway, cab.commune, hash_token(token(i)), cabinet=cab.cabinet,
                                         lat=cab.lat, lon=cab.lon)
            records: list[WireRecord] = []
            for n, lamp in enumerate(cab.lamps):
                for back, wh in ((2 * HOUR_MS, 1000), (60_000, 1120)):
                    records.append(SampleRecord(len(records) + 1, lamp, now - back,
                                                {"lamp_on": True, "power_w": 60.0, "energy_wh": wh + n}))
                if (i * 7 + n) % 97 == 5:
                    records.append(EventRecord(len(records) + 1, lamp, now - 30_000, code="lamp_failure",
                                               severity="major", detail={}))
            await store.ingest(gw, records)


@contextlib.asynccontextmanager
async def served(folder: Path, plan: list[Cabinet], repo: Path) -> AsyncIterator[str]:
    folder.mkdir()
    t0 = time.perf_counter()
    await populate(folder / "collector.db", plan)
    print(f"  {len(plan)} cabinets, {sum(len(c.lamps) for c in plan)} lamps stored in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    cli = [sys.executable, "-c", "from collector.cli import main; main()"]
    log = (folder / "serve.log").open("w")
    proc = subprocess.Popen([*cli, "serve", "--db", str(folder / "collector.db"), "--port", "0"], cwd=repo,
                            stdout=subprocess.PIPE, stderr=log, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                raise SystemExit(f"the collector exited: {(folder / 'serve.log').read_text()[-2000:]}")
            if m := LISTENING.search(line):
                url = m.group(1)
        if url is None:
            raise SystemExit("the collector did not say it was listening")
        async with aiohttp.ClientSession() as session:  # the map's snapshot and the alarms' fold, as it starts
            for path in ("/control/api/map/states", "/control/api/summary"):
                async with session.get(url + path) as resp:
                    assert resp.status == 200, await resp.text()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


VIEWS = {
    "overview": ("#/", "Number(document.body.dataset.updates) >= 1"),
    "commune": (f"#/commune/{DIJON}", "document.querySelectorAll('#detail tbody tr').length >= {n}"),
    "map": ("#/map", "performance.getEntriesByName('cg-map-rendered').length > 0"),
}


async def load_once(browser: Browser, url: str, view: str, dijon: int) -> dict[str, float]:
    async with watched_page(browser) as (page, cdp):
        await cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        done: dict[str, float] = {}
        streams: dict[str, str] = {}

        def sent(e: dict[str, Any]) -> None:
            if e["request"]["url"].split("?")[0].endswith("/stream"):
                streams[e["requestId"]] = e["request"]["url"]

        cdp.on("Network.requestWillBeSent", sent)
        cdp.on("Network.loadingFinished", lambda e: done.__setitem__(e["requestId"], e["encodedDataLength"]))
        hash_, ready = VIEWS[view]
        await page.goto(url + "/control/" + hash_, timeout=120_000)
        render = await page.wait_for_function(f"({ready.replace('{n}', str(dijon))}) && performance.now()",
                                              polling="raf", timeout=120_000)
        render_ms = float(await render.json_value())
        fetched = sum(v for k, v in done.items() if k not in streams)
        nodes = await page.evaluate("document.getElementsByTagName('*').length")
        # what each stream the page opened sent before the render: its first event, as it went on the wire
        # (CDP gives a stream's events decoded, not its bytes: a client of our own reads them)
        streamed = [await first_event_wire(u) for u in sorted(set(streams.values()))]
        return {"render_ms": render_ms, "bytes": fetched + sum(streamed), "nodes": nodes}


async def first_event_wire(url: str) -> float:
    """The bytes on the wire (compressed as the collector sent them) of a stream's first event."""
    async with aiohttp.ClientSession(auto_decompress=False) as session, \
            session.get(url, headers={"Accept-Encoding": "gzip"}) as resp:
        gz = resp.headers.get("Content-Encoding") == "gzip"
        inflate = zlib.decompressobj(31)
        raw, text = 0, b""
        while b"\ndata: " not in text or not text.split(b"\ndata: ", 1)[1].count(b"\n\n"):
            chunk = await resp.content.readany()
            if not chunk:
                break
            raw += len(chunk)
            text += inflate.decompress(chunk) if gz else chunk
        return float(raw)


async def count_wire(url: str, total: list[float]) -> None:
    """Add to total[0] every byte a stream sends as it comes on the wire, until cancelled."""
    async with aiohttp.ClientSession(auto_decompress=False) as session, \
            session.get(url, headers={"Accept-Encoding": "gzip"}) as resp:
        if resp.status != 200:
            return  # an earlier collector (--repo) has no such stream
        while chunk := await resp.content.readany():
            total[0] += len(chunk)


async def api_times(url: str, path: str, n: int) -> dict[str, float]:
    times, size = [], 0
    async with aiohttp.ClientSession() as session:
        for _ in range(n):
            t0 = time.perf_counter()
            async with session.get(url + path) as resp:
                body = await resp.read()
                assert resp.status == 200, body[:300]
            times.append(time.perf_counter() - t0)
            size = len(body)
    q = statistics.quantiles(times, n=100, method="inclusive")
    return {"p50_ms": 1000 * statistics.median(times), "p99_ms": 1000 * q[98], "bytes": size}


async def upload(session: aiohttp.ClientSession, url: str, plan: list[Cabinet], i: int, seqs: list[int]) -> None:
    """One cabinet's batch: a reading per lamp."""
    now = now_ms()
    records = []
    for n, lamp in enumerate(plan[i].lamps):
        seqs[i] += 1
        records.append({"seq": seqs[i], "kind": "sample", "device": lamp, "ts_ms": now,
                        "values": {"lamp_on": True, "power_w": 60.0, "energy_wh": 1200 + n + seqs[i] % 1000}})
    z = zlib.compressobj(6, wbits=31)
    body = z.compress(orjson.dumps({"v": 1, "gateway": plan[i].gateway, "records": records})) + z.flush()
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json", "Authorization": f"Bearer {token(i)}"}
    async with session.post(url + PATH, data=body, headers=headers) as resp:
        if resp.status != 200:
            raise SystemExit(f"upload refused: {resp.status} {await resp.text()}")


async def live(browser: Browser, url: str, plan: list[Cabinet], seconds: float, dijon: int) -> dict[str, float]:
    """Dijon's view open while the metropolis posts at its steady rate: what the page received."""
    async with watched_page(browser) as (page, cdp):
        got = {"bytes": 0.0, "events": 0.0, "fetches": 0.0, "fetched": 0.0}

        def event(e: dict[str, Any]) -> None:
            got["bytes"] += len(e["data"].encode()) + len(e["eventName"]) + 16  # "event: \ndata: \n\n" and the id
            got["events"] += 1

        def fetched(e: dict[str, Any]) -> None:
            got["bytes"] += e["encodedDataLength"]
            got["fetched"] += e["encodedDataLength"]
            got["fetches"] += 1

        cdp.on("Network.eventSourceMessageReceived", event)
        cdp.on("Network.loadingFinished", fetched)
        await page.goto(url + f"/control/#/commune/{DIJON}", timeout=120_000)
        await page.wait_for_function(VIEWS["commune"][1].replace("{n}", str(dijon)), timeout=120_000)
        await asyncio.sleep(2.0)
        # the same streams read by a client of our own, for their bytes on the wire (compressed as sent)
        wire = [0.0]
        paths = ["/control/api/stream?delta=1", f"/control/api/communes/{DIJON}/stream"]
        readers = [asyncio.create_task(count_wire(url + path, wire)) for path in paths]
        await asyncio.sleep(2.0)
        got.update(bytes=0.0, events=0.0, fetches=0.0, fetched=0.0)
        wire[0] = 0.0
        rnd = random.Random(5)
        seqs = [time.time_ns() // 1000] * len(plan)  # above every stored seq: every record is new
        sent, t0 = 0, time.monotonic()
        async with aiohttp.ClientSession() as session:
            while (elapsed := time.monotonic() - t0) < seconds:
                for _ in range(max(0, int(elapsed * STEADY_BATCHES_S) + 1 - sent)):
                    await upload(session, url, plan, rnd.randrange(len(plan)), seqs)
                    sent += 1
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)  # the last round's events
        for task in readers:
            task.cancel()
        return {**got, "wire": wire[0], "batches": sent, "seconds": seconds}


async def main(args: argparse.Namespace) -> None:
    plan = plan_city(TERRITORY, 1500, 34_000)
    small = [c for c in plan if c.commune == DIJON][:4]
    dijon = sum(1 for c in plan if c.commune == DIJON)
    repo = Path(args.repo).resolve() if args.repo else REPO
    print(f"serving from {repo}", flush=True)
    from tests.collector_web.cdp import chromium_path  # the one place that finds the system Chromium

    pages: dict[tuple[str, str], dict[str, float]] = {}
    apis: dict[tuple[str, str], dict[str, float]] = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path(),
                                          args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            with tempfile.TemporaryDirectory() as tmp:
                async with served(Path(tmp) / "small", small, repo) as s_url, \
                        served(Path(tmp) / "metro", plan, repo) as m_url:
                    cities = {"4 cab.": (s_url, 4), "1500 cab.": (m_url, dijon)}
                    for view in VIEWS:
                        runs: dict[str, list[dict[str, float]]] = {c: [] for c in cities}
                        for _ in range(args.runs):  # alternated: both cities see the same moments of the machine
                            for city, (url, n) in cities.items():
                                runs[city].append(await load_once(browser, url, view, n))
                        for city in cities:
                            pages[view, city] = {k: statistics.median(r[k] for r in runs[city]) for k in runs[city][0]}
                    for path in ("/control/api/me", "/control/api/summary", f"/control/api/communes/{DIJON}"):
                        for city, (url, _) in cities.items():
                            apis[path, city] = await api_times(url, path, args.requests)
                    flow = await live(browser, m_url, plan, args.live_s, dijon)
        finally:
            await browser.close()

    print(f"\npage (median of {args.runs}, 1366x768)   {'4 cab.':>12} {'1500 cab.':>12}  ratio   target")
    for view in VIEWS:
        b, m = pages[view, "4 cab."], pages[view, "1500 cab."]
        print(f"{view:<10} first render        {b['render_ms']:>9.0f} ms {m['render_ms']:>9.0f} ms "
              f"{m['render_ms'] / b['render_ms']:>5.1f}x  <= {TARGET_RENDER_MS} ms "
              f"{'met' if m['render_ms'] <= TARGET_RENDER_MS else 'NOT met'}")
        print(f"{'':<10} bytes transferred   {b['bytes'] / 1000:>9.1f} kB {m['bytes'] / 1000:>9.1f} kB "
              f"{m['bytes'] / b['bytes']:>5.1f}x  <= {TARGET_BYTES / 1e6} MB "
              f"{'met' if m['bytes'] <= TARGET_BYTES else 'NOT met'}")
        print(f"{'':<10} DOM nodes           {b['nodes']:>12.0f} {m['nodes']:>12.0f} {m['nodes'] / b['nodes']:>5.1f}x")
    print(f"\nAPI ({args.requests} GETs each)                 {'4 cab.':>22} {'1500 cab.':>22}   p99 / me")
    base = apis["/control/api/me", "1500 cab."]["p99_ms"]
    for path in ("/control/api/me", "/control/api/summary", f"/control/api/communes/{DIJON}"):
        b, m = apis[path, "4 cab."], apis[path, "1500 cab."]
        print(f"{path:<32} p50/p99 {b['p50_ms']:>6.1f}/{b['p99_ms']:>6.1f} ms {m['p50_ms']:>6.1f}/{m['p99_ms']:>6.1f} ms"
              f"  {m['p99_ms'] / base:>6.1f}x   ({b['bytes'] / 1000:.1f} / {m['bytes'] / 1000:.1f} kB)")
    print("  (issue 17 sets no target for the API's latency: the pages' targets above include it)")
    per_event = flow["bytes"] / flow["events"] if flow["events"] else float("nan")
    print(f"\nlive: Dijon's view open {flow['seconds']:.0f} s, {flow['batches']:.0f} batches at "
          f"{STEADY_BATCHES_S:.0f}/s: {flow['bytes'] / 1000:.1f} kB received in {flow['events']:.0f} events and "
          f"{flow['fetches']:.0f} fetches, {per_event / 1000:.2f} kB an event; on the wire (compressed) "
          f"{(flow['wire'] + flow['fetched']) / 1000:.1f} kB "
          f"(issue 18 measured 2.5 MB in 15 s before)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--live-s", type=float, default=15.0)
    parser.add_argument("--repo", help="serve the collector and its page from this checkout (before/after)")
    asyncio.run(main(parser.parse_args()))
