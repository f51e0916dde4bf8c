"""Two collector instances behind a real HAProxy on one PostgreSQL: ingest through either, an
instance killed (SIGKILL) under load, live updates between them by NOTIFY, one job runner."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from scaleout_kit import (
    COMMUNE,
    HAProxy,
    Instance,
    Uploader,
    batch_body,
    fetch,
    haproxy_config,
    listening,
    sample,
)

from collector.app import create_app, start
from collector.appkeys import STORE
from collector.instances import install_instances
from collector.live import sse
from collector.notify import PG_CHANGES
from collector.store import open_store
from collector.tokens import hash_token, new_token

GATEWAYS = 6
BATCHES = 24
PER_BATCH = 200


async def add_gateways(url: str, names: list[str]) -> dict[str, str]:
    tokens = {}
    async with open_store(url) as store:
        for name in names:
            tokens[name] = new_token()
            await store.add_gateway(name, COMMUNE, hash_token(tokens[name]))
    return tokens


async def test_an_instance_killed_under_load_loses_nothing_and_doubles_nothing(
        pg_schema_url: str, tmp_path: Path, procs: list[Instance | HAProxy]) -> None:
    url = pg_schema_url
    names = [f"gw-{i:02d}" for i in range(GATEWAYS)]
    tokens = await add_gateways(url, names)
    a, b = Instance("a", url, tmp_path), Instance("b", url, tmp_path)
    for inst in (a, b):
        procs.append(inst)
        inst.start()
    proxy = HAProxy(tmp_path, [("a", a.port), ("b", b.port)])
    procs.append(proxy)
    proxy.start()
    total = GATEWAYS * BATCHES * PER_BATCH
    acked_before_kill = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        uploaders = {n: Uploader(session, proxy.url, n, tokens[n]) for n in names}

        async def upload(name: str) -> None:
            for i in range(BATCHES):
                seqs = range(i * PER_BATCH + 1, (i + 1) * PER_BATCH + 1)
                doc = await uploaders[name].send(batch_body(name, [sample(s) for s in seqs]), PER_BATCH)
                assert doc["ack_seq"] == seqs[-1]
                assert doc["stored"] + doc["duplicates"] == PER_BATCH

        tasks = [asyncio.create_task(upload(n)) for n in names]
        deadline = time.monotonic() + 120
        while sum(u.acked for u in uploaders.values()) < total // 3:
            assert time.monotonic() < deadline, "the load did not get a third through in 2 min"
            await asyncio.sleep(0.005)
        acked_before_kill = sum(u.acked for u in uploaders.values())
        a.kill9()  # in the middle of the load: batches in flight on a are lost with it
        async with asyncio.timeout(180):
            await asyncio.gather(*tasks)
        failures = [f for u in uploaders.values() for f in u.failures]
    print(f"acknowledged before the kill: {acked_before_kill} of {total}; failed attempts retried: {failures}")
    assert acked_before_kill < total, "the kill came after the end of the load"

    # every record once: nothing lost (every batch was acknowledged in the end), nothing doubled
    doubled = await fetch(url, "SELECT gateway_id, seq FROM samples GROUP BY 1, 2 HAVING COUNT(*) > 1")
    assert doubled == []
    rows = await fetch(url, "SELECT g.name, COUNT(*), MIN(s.seq), MAX(s.seq) FROM samples s"
                            " JOIN gateways g ON g.id = s.gateway_id GROUP BY g.name ORDER BY g.name")
    assert [tuple(r) for r in rows] == [(n, BATCHES * PER_BATCH, 1, BATCHES * PER_BATCH) for n in names]
    # the rollups were written in the batches' transactions: each record counted once
    rolled = await fetch(url, "SELECT SUM(samples) FROM rollup_gateway_day")
    assert rolled[0][0] == total


async def read_snapshots(session: aiohttp.ClientSession, url: str, seen: list[float], ready: asyncio.Event) -> None:
    async with session.get(url) as resp:
        assert resp.status == 200
        async for line in resp.content:
            if line.startswith(b"data:"):
                seen.append(time.monotonic())
                ready.set()


async def test_a_batch_through_one_instance_wakes_the_other_s_streams_by_notify(
        pg_schema_url: str, tmp_path: Path) -> None:
    """Two instances in this process (two apps, two stores, one schema); b streams what a stores.
    A stream of collector.live polls every 5 s without NOTIFY, every 15 s (keep-alive) with it."""
    url = pg_schema_url
    tokens = await add_gateways(url, ["gw-live"])
    async with open_store(url) as store_a, open_store(url) as store_b:
        app_a, app_b = create_app(store_a), create_app(store_b)
        leaders = install_instances(app_a), install_instances(app_b)

        async def gateways(request: web.Request) -> web.StreamResponse:
            async def snapshot() -> tuple[str, Any]:
                return "gateways", [i.last_seq for i in await request.app[STORE].gateways()]
            return await sse(request, snapshot, ["ingest"])

        app_b.router.add_get("/test/gateways", gateways)
        runner_a, url_a = await start(app_a, "127.0.0.1", 0)
        runner_b, url_b = await start(app_b, "127.0.0.1", 0)
        seen: list[float] = []
        ready = asyncio.Event()
        delays = []
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
                await listening(app_a, app_b)
                stream = asyncio.create_task(read_snapshots(session, url_b + "/test/gateways", seen, ready))
                async with asyncio.timeout(30):
                    await ready.wait()  # the first snapshot, at once
                uploader = Uploader(session, url_a, "gw-live", tokens["gw-live"])
                for i in range(5):
                    before = len(seen)
                    posted = time.monotonic()
                    await uploader.send(batch_body("gw-live", [sample(i + 1)]), 1)
                    async with asyncio.timeout(30):
                        while len(seen) == before:
                            await asyncio.sleep(0.005)
                    delays.append(seen[-1] - posted)
                stream.cancel()
        finally:
            await runner_a.cleanup()
            await runner_b.cleanup()
    print(f"batch on a -> snapshot on b's stream: {[round(d, 3) for d in delays]} s")
    assert [x.terms for x in leaders] in ([1, 0], [0, 1]), "not exactly one instance ran the jobs"
    assert app_b[PG_CHANGES].received >= 5 and app_a[PG_CHANGES].sent >= 5
    # a poll would show each within 5 s, at 2.5 s on average: NOTIFY, in milliseconds
    assert max(delays) < 1.0, delays


async def test_one_instance_runs_the_jobs_and_another_takes_over_when_it_dies(
        pg_schema_url: str, tmp_path: Path, procs: list[Instance | HAProxy]) -> None:
    url = pg_schema_url
    await add_gateways(url, [])
    a, b = Instance("a", url, tmp_path), Instance("b", url, tmp_path)
    runs = "background jobs: this instance runs them"
    procs.append(a)
    a.start()
    deadline = time.monotonic() + 30
    while a.logged(runs) == 0:
        assert time.monotonic() < deadline, "the only instance did not take the jobs"
        await asyncio.sleep(0.05)
    procs.append(b)
    b.start()
    await asyncio.sleep(6)  # b tries the lock every 1-2 s: it must keep failing while a lives
    assert (a.logged(runs), b.logged(runs)) == (1, 0)
    a.kill9()
    killed = time.monotonic()
    while b.logged(runs) == 0:
        assert time.monotonic() - killed < 30, "no instance took the jobs over"
        await asyncio.sleep(0.05)
    print(f"jobs taken over {time.monotonic() - killed:.1f} s after the kill")


def test_haproxy_config_of_the_docs_is_the_tests_one() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "scaling.md").read_text()
    for line in haproxy_config(8080, [("c1", 8081)]).splitlines():
        if line.strip().startswith(("option", "retry-on", "timeout", "balance", "default-server")):
            assert line.strip() in doc, f"docs/scaling.md lacks {line.strip()!r}"


