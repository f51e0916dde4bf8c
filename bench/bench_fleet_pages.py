"""Benchmark: a page of the fleet's two lists (GET /api/v1/gateways, GET /api/v1/control/presence) with
15,000 gateways, read a page at a time from the store (gateways_page, presence_page: LIMIT/OFFSET and the
count in one statement) against the whole list read and sliced (gateways(), presence() and page_of, as the
routes did before), in the same run, over real HTTP, on SQLite and PostgreSQL.

    .venv/bin/python bench/bench_fleet_pages.py [--gateways 15000] [--requests 100] [--store sqlite|postgresql|both]

The fleet is registered as `citygate-collector gateway import` does (collector.provision: an inventory
file read by read_inventory, then import_inventory: a token file, the gateway, its MQTT password and the
audit each); every gateway then sends a state (the presence table holds one row each). The collector runs
in a child process (this file with --serve: collector.app.create_app on the store, plus the two routes as
they were, under /bench/old/...); this process GETs, one after another, `--requests` pages of each
(default limit 500, offsets going round the fleet's 30 pages), old and new in turn, and checks that the
two answer the same body. It prints p50 and p99 of each and the ratio old / new (a same-run baseline:
never an absolute time alone).

PostgreSQL: $CITYGATE_TEST_PG (a fresh schema, dropped after), as the tests' stores.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from citygate_wire.common import now_ms  # noqa: E402
from collector.access import require_role  # noqa: E402
from collector.appkeys import LINK, STORE  # noqa: E402
from collector.control.commands import VIEWER  # noqa: E402
from collector.params import json_response, page_of  # noqa: E402
from collector.provision import import_inventory, read_inventory  # noqa: E402
from collector.store import Store, open_store  # noqa: E402
from collector.store_sqlite import SqliteStore  # noqa: E402
from collector.territory import load_territory  # noqa: E402
from collector.tokens import OPERATOR_TOKEN_PREFIX, hash_token  # noqa: E402

TOKEN = OPERATOR_TOKEN_PREFIX + "bench-fleet-pages-viewer"
ROUTES = {"gateways": "/api/v1/gateways", "presence": "/api/v1/control/presence"}
PAGE = 500


# -- the child: the collector, and the two routes as they were -------------------------------------------

async def old_gateways(request: web.Request) -> web.Response:
    """GET /api/v1/gateways before: the whole fleet read, then sliced (page_of)."""
    page, meta = page_of(request, await request.app[STORE].gateways())
    return json_response({"gateways": [info.as_json() for info in page], **meta})


async def old_presence(request: web.Request) -> web.Response:
    """GET /api/v1/control/presence before: every gateway's presence read, then sliced (page_of)."""
    await require_role(request, VIEWER, identified=True)
    now = now_ms()
    rows, meta = page_of(request, await request.app[STORE].presence())
    link = request.app.get(LINK)
    return json_response({
        "link": None if link is None else {"connected": link.connected, "last_error": link.last_error},
        "gateways": [p.as_json(now) for p in rows], **meta,
    })


async def serve(db_url: str) -> None:
    from collector.app import create_app, start

    async with open_store(db_url) as store:
        app = create_app(store)
        app.router.add_get("/bench/old" + ROUTES["gateways"], old_gateways)
        app.router.add_get("/bench/old" + ROUTES["presence"], old_presence)
        runner, url = await start(app, "127.0.0.1", 0)
        print(f"listening on {url}", flush=True)
        try:
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes it
        finally:
            await runner.cleanup()


# -- the parent: the fleet, the requests ------------------------------------------------------------------

async def populate(store: Store, n: int, folder: Path) -> None:
    territory = load_territory()
    communes = sorted(territory.communes)
    inventory = folder / "inventory.csv"
    with inventory.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["gateway", "cabinet", "commune", "lat", "lon"])
        for i in range(n):
            out.writerow([f"gw-{(i * 7919) % n:05d}", f"C{i:05d}", communes[i % len(communes)], 47.3, 5.04])
    rows, _ = read_inventory(inventory, territory)
    tokens = folder / "tokens"
    tokens.mkdir()
    t0 = time.perf_counter()
    result = await import_inventory(store, rows, tokens, "bench", now_ms())
    assert len(result.added) == n, result
    t1 = time.perf_counter()
    now = now_ms()
    state = orjson.dumps({"interval_s": 3600, "lamps": 24, "agent": "1.0"})
    for info in await store.gateways():
        await store.record_state(info.gateway.id, info.gateway.id % 10 != 0, info.gateway.commune, state, now)
    await store.add_operator("bench", hash_token(TOKEN), now)
    await store.set_operator_roles("bench", frozenset({"viewer"}), "bench", now)
    print(f"  {n} gateways imported in {t1 - t0:.0f} s, their states in {time.perf_counter() - t1:.0f} s", flush=True)


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


async def measure(url: str, n: int, requests: int) -> dict[str, dict[str, list[float]]]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    pages = -(-n // PAGE)
    times: dict[str, dict[str, list[float]]] = {r: {"old": [], "new": []} for r in ROUTES}
    sizes: dict[str, int] = {}
    async with aiohttp.ClientSession(headers=headers) as session:
        async def get(path: str) -> tuple[float, bytes]:
            t0 = time.perf_counter()
            async with session.get(url + path) as resp:
                body = await resp.read()
                assert resp.status == 200, body[:500]
            return (time.perf_counter() - t0) * 1000, body

        for route, path in ROUTES.items():
            for _ in range(5):  # warm-up: connections, statement caches
                await get(path)
                await get("/bench/old" + path)
            for i in range(requests):
                query = f"?offset={(i % pages) * PAGE}"
                order = ("new", "old") if i % 2 else ("old", "new")  # neither always second
                bodies = {}
                for which in order:
                    ms, bodies[which] = await get(("/bench/old" if which == "old" else "") + path + query)
                    times[route][which].append(ms)
                if i < pages:  # the same answer, page for page (its next names the route it came from)
                    old, new = orjson.loads(bodies["old"]), orjson.loads(bodies["new"])
                    old["next"] = old["next"] and old["next"].removeprefix("/bench/old")
                    assert old == new, (route, query)
                sizes[route] = len(bodies["new"])
    for route in ROUTES:
        print(f"    {route}: a page of {PAGE} is {sizes[route] / 1000:.0f} kB", flush=True)
    return times


async def run_store(kind: str, n: int, requests: int, folder: Path) -> list[str]:
    if kind == "sqlite":
        url = str(folder / "collector.db")
        populating: Store = SqliteStore(Path(url), synchronous="NORMAL")
        drop = None
    else:
        from tests.store_testkit import new_pg_schema, pg_execute

        drop, url = new_pg_schema()
        await pg_execute(f"CREATE SCHEMA {drop}")
        populating = open_store(url)
    try:
        async with populating as store:
            await populate(store, n, folder)
        proc = subprocess.Popen([sys.executable, __file__, "--serve", url], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("listening on "):
                raise SystemExit(f"the collector did not start: {line!r}")
            times = await measure(line.split()[-1], n, requests)
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=60)
    finally:
        if drop is not None:
            await pg_execute(f"DROP SCHEMA {drop} CASCADE")
    lines = []
    for route, by in times.items():
        old50, old99, new50, new99 = pct(by["old"], 50), pct(by["old"], 99), pct(by["new"], 50), pct(by["new"], 99)
        lines.append(f"{kind:<10} {route:<9} whole list then sliced p50 {old50:7.1f} ms p99 {old99:7.1f} ms | "
                     f"page in SQL p50 {new50:6.1f} ms p99 {new99:6.1f} ms | old/new x{old50 / new50:.1f} (p50) "
                     f"x{old99 / new99:.1f} (p99)")
    return lines


async def main_async(args: argparse.Namespace) -> None:
    kinds = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    lines: list[str] = []
    for kind in kinds:
        print(f"{kind}:", flush=True)
        with tempfile.TemporaryDirectory(prefix="bench-fleet-pages-") as tmp:
            lines += await run_store(kind, args.gateways, args.requests, Path(tmp))
    print(f"\n{args.gateways} gateways, {args.requests} GETs of a page of {PAGE} each (load average "
          f"{Path('/proc/loadavg').read_text().split()[0]}):")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateways", type=int, default=15_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--serve", metavar="DB_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
    else:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
