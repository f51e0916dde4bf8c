"""Reconnect storm: every gateway of the metropolis returns at once after an outage, with its backlog.

The city is simulators.city's (1,500 cabinets, 34,000 lamps by commune population, dusk-to-dawn
lighting, faults): each cabinet's backlog is what it measured during the outage (a sample a lamp
and one of its meter every `--sample-s`), cut into the agent's batches (5,000 records at most,
gzip). A real `citygate-collector serve` process on a fresh store (SQLite or PostgreSQL) with its
default admission control; each gateway sends its batches one after the other as the agent does:
a batch is sent again, the same records, until acknowledged; after a 503 it waits its Retry-After;
a client timeout (`--timeout-s`, the agent's 30 s) or a connection error is counted and retried
after a jittered back-off.

Two scenarios in the same run, each on its own fresh store and collector process:
- storm: every gateway starts at the same instant;
- baseline: the same backlog, each gateway starting at a uniform random instant within `--spread-s`
  (150 s: the agents' jitter);
and with `--unbounded` a third: the storm without admission control (a bound of a million
batches), as the collector was before it.

Figures: time until every record is acknowledged, client timeouts, 5xx answers, 503s (and the
Retry-After they gave), p50/p99 of the acknowledged POSTs, peak collector RSS (VmHWM), the
records stored (each exactly once: counted in the store), the collector's log lines of unhandled
errors (a false 500), and the storm's ratios to the baseline.

    python bench/bench_storm.py [--store sqlite|postgresql|both] [--gateways 1500] [--lamps 34000]
                                [--outage-h 1] [--sample-s 60] [--spread-s 150]

PostgreSQL: $CITYGATE_TEST_PG, else a throwaway server (tests/pg_server.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from citygate_wire.batch import encode_records
from citygate_wire.common import PATH
from citygate_wire.compression import Compressor
from collector.admission import ENV as ADMISSION_ENV
from collector.store import open_store
from collector.tokens import hash_token, new_token
from simulators.city import MAX_BATCH, City, Rates, plan_city
from simulators.procs import free_port

CLI = str(Path(sys.executable).parent / "citygate-collector")
TERRITORY = Path(__file__).resolve().parent.parent / "configs" / "territory.json"
LISTENING = re.compile(r"citygate-collector listening on (http://\S+)")


@dataclass
class Backlog:
    gateway: str
    commune: str
    token: str
    bodies: list[bytes]
    records: int


def build_backlogs(gateways: int, lamps: int, outage_h: float, sample_s: float) -> list[Backlog]:
    """Each cabinet's outage, measured by the city simulation, as the agent's gzip batches."""
    cabinets = plan_city(TERRITORY, gateways, lamps)
    tokens = {c.gateway: new_token() for c in cabinets}
    # no resident reports: the backlog is built offline (they would be posted by the simulation's HTTP session)
    city = City(cabinets, tokens, collector_url="http://unused", mqtt_url=None, rates=Rates(report_share=0.0))
    end = int(time.time() * 1000) - 60_000
    start = end - int(outage_h * 3_600_000)
    out = []
    for gw in city.gateways:
        t = start
        while t < end:
            gw.tick(t, sample_s)
            t += int(sample_s * 1000)
        records = list(gw.journal)
        gw.journal.clear()
        bodies = [Compressor("gzip").compress([encode_records(gw.cab.gateway, gw.cab.commune,
                                                              records[i:i + MAX_BATCH])])
                  for i in range(0, len(records), MAX_BATCH)]
        out.append(Backlog(gw.cab.gateway, gw.cab.commune, tokens[gw.cab.gateway], bodies, len(records)))
    return out


@dataclass
class Outcome:
    label: str
    records: int = 0
    batches: int = 0
    drain_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    timeouts: int = 0
    errors: int = 0  # connection errors
    status: dict[int, int] = field(default_factory=dict)
    retry_after: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    stored: int = 0
    unhandled: int = 0

    def pct(self, q: float) -> float:
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0

    def row(self) -> dict[str, Any]:
        fivexx = sum(n for s, n in self.status.items() if s >= 500 and s != 503)
        return {"label": self.label, "records": self.records, "stored": self.stored, "drain_s": round(self.drain_s, 1),
                "p50_ms": round(self.pct(0.5) * 1000), "p99_ms": round(self.pct(0.99) * 1000),
                "timeouts": self.timeouts, "conn_errors": self.errors, "http_5xx": fivexx,
                "http_503": self.status.get(503, 0), "retry_after_max_s": max(self.retry_after, default=0),
                "peak_rss_mb": round(self.peak_rss_mb), "unhandled_errors_logged": self.unhandled}


async def fresh_db(kind: str, tmp: Path, label: str) -> str:
    if kind == "sqlite":
        return str(tmp / f"{label}.db")
    from tests.store_testkit import new_pg_schema, pg_execute

    schema, url = new_pg_schema()
    await pg_execute(f"CREATE SCHEMA {schema}")
    return url


async def provision(url: str, backlogs: list[Backlog]) -> None:
    async with open_store(url) as store:
        for b in backlogs:
            await store.add_gateway(b.gateway, b.commune, hash_token(b.token))


def start_collector(url: str, log: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    with log.open("w") as err:
        proc = subprocess.Popen([CLI, "serve", "--db", url, "--port", str(port)], stdout=subprocess.PIPE,
                                stderr=err, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1", **env})
    assert proc.stdout is not None
    for line in proc.stdout:
        if LISTENING.match(line.strip()):
            return proc, f"http://127.0.0.1:{port}"
    raise RuntimeError(f"collector did not start: {log.read_text()[-2000:]}")


def rss_mb(pid: int, field_name: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


async def gateway(session: aiohttp.ClientSession, url: str, b: Backlog, delay_s: float, timeout_s: float,
                  out: Outcome) -> float:
    await asyncio.sleep(delay_s)
    headers = {"Authorization": f"Bearer {b.token}", "Content-Type": "application/json", "Content-Encoding": "gzip"}
    failures = 0
    for body in b.bodies:
        while True:
            t0 = time.perf_counter()
            wait = 0.0
            try:
                async with session.post(url + PATH, data=body, headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
                    await resp.read()
                    out.status[resp.status] = out.status.get(resp.status, 0) + 1
                    if resp.status == 200:
                        out.latencies.append(time.perf_counter() - t0)
                        out.batches += 1
                        failures = 0
                        break
                    if resp.status in (429, 503) and resp.headers.get("Retry-After", "").isdigit():
                        wait = float(resp.headers["Retry-After"])
                        out.retry_after.append(wait)
                    else:
                        failures += 1
            except TimeoutError:
                out.timeouts += 1
                failures += 1
            except (aiohttp.ClientError, OSError):
                out.errors += 1
                failures += 1
            if not wait:  # the agent's back-off: full jitter, from 2 s doubling
                wait = random.uniform(1.0, min(300.0, 2.0 * 2 ** min(failures, 20)))
            await asyncio.sleep(wait)
    return time.perf_counter()


async def scenario(kind: str, label: str, backlogs: list[Backlog], spread_s: float, timeout_s: float,
                   tmp: Path, env: dict[str, str] | None = None) -> Outcome:
    url = await fresh_db(kind, tmp, label)
    await provision(url, backlogs)
    out = Outcome(f"{kind} {label}", records=sum(b.records for b in backlogs))
    log = tmp / f"{kind}-{label}.log"
    proc, base = start_collector(url, log, env or {})
    try:
        peak = 0.0
        done = asyncio.Event()

        async def watch() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_mb(proc.pid, "VmRSS"))
                await asyncio.sleep(0.2)

        watcher = asyncio.create_task(watch())
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            t0 = time.perf_counter()
            ends = await asyncio.gather(*(
                gateway(session, base, b, random.uniform(0, spread_s) if spread_s else 0.0, timeout_s, out)
                for b in backlogs))
            out.drain_s = max(ends) - t0
        done.set()
        await watcher
        out.peak_rss_mb = max(peak, rss_mb(proc.pid, "VmHWM"))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    text = log.read_text(errors="replace")
    out.unhandled = text.count("unhandled error")
    async with open_store(url) as store:
        counts = await store.count_records()
    out.stored = counts.samples + counts.events
    if kind != "sqlite":
        from tests.store_testkit import pg_execute

        schema = url.rsplit("schema=", 1)[1]
        await pg_execute(f"DROP SCHEMA {schema} CASCADE")
    return out


def show(o: dict[str, Any]) -> str:
    return (f"{o['label']:<22} {o['records']:>9,} rec drained in {o['drain_s']:6.1f} s  p50 {o['p50_ms']:>6} ms"
            f"  p99 {o['p99_ms']:>6} ms  timeouts {o['timeouts']}  5xx {o['http_5xx']}  503 {o['http_503']}"
            f" (Retry-After <= {o['retry_after_max_s']:.0f} s)  conn errors {o['conn_errors']}"
            f"  peak RSS {o['peak_rss_mb']} MB  stored {o['stored']:,}  unhandled errors {o['unhandled_errors_logged']}")


async def main_async(args: argparse.Namespace) -> None:
    t = time.perf_counter()
    backlogs = build_backlogs(args.gateways, args.lamps, args.outage_h, args.sample_s)
    n = sum(b.records for b in backlogs)
    print(f"backlog of a {args.outage_h:g} h outage, a sample every {args.sample_s:g} s: {len(backlogs)} gateways,"
          f" {n:,} records, {sum(len(b.bodies) for b in backlogs):,} batches,"
          f" {sum(len(x) for b in backlogs for x in b.bodies) / 1e6:.1f} MB gzip (built in"
          f" {time.perf_counter() - t:.0f} s)", flush=True)
    kinds = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-storm-") as tmp:
        for kind in kinds:
            base = await scenario(kind, "baseline", backlogs, args.spread_s, args.timeout_s, Path(tmp))
            print(show(base.row()), flush=True)
            storm = await scenario(kind, "storm", backlogs, 0.0, args.timeout_s, Path(tmp))
            print(show(storm.row()), flush=True)
            ratio = {"drain": storm.drain_s / base.drain_s, "p99": storm.pct(0.99) / max(base.pct(0.99), 1e-9),
                     "peak_rss": storm.peak_rss_mb / max(base.peak_rss_mb, 1e-9)}
            print(f"{kind}: storm / baseline: drain {ratio['drain']:.2f}, p99 {ratio['p99']:.2f},"
                  f" peak RSS {ratio['peak_rss']:.2f}", flush=True)
            rows += [base.row(), storm.row(), {"label": f"{kind} ratio", **ratio}]
            if args.unbounded:
                free = await scenario(kind, "storm-unbounded", backlogs, 0.0, args.timeout_s, Path(tmp),
                                      {ADMISSION_ENV: "1000000"})
                print(show(free.row()), flush=True)
                rows.append(free.row())
    print(orjson.dumps({"outage_h": args.outage_h, "sample_s": args.sample_s, "gateways": args.gateways,
                        "lamps": args.lamps, "rows": rows}).decode())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--gateways", type=int, default=1500)
    ap.add_argument("--lamps", type=int, default=34_000)
    ap.add_argument("--outage-h", type=float, default=1.0)
    ap.add_argument("--sample-s", type=float, default=60.0)
    ap.add_argument("--spread-s", type=float, default=150.0)
    ap.add_argument("--timeout-s", type=float, default=30.0)
    ap.add_argument("--unbounded", action="store_true",
                    help="also the storm without admission control (as before it: every batch at once)")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
