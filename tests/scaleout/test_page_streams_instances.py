"""The control page's delta streams through several instances: a commune's stream held by instance b
sends the delta of a batch stored through instance a, woken by PostgreSQL NOTIFY (no poll), and the
summary's delta stream too. Two apps in this process on one schema, over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import aiohttp
import orjson
from scaleout_kit import COMMUNE, Uploader, batch_body, listening, sample

from collector.app import create_app, start
from collector.instances import install_instances
from collector.notify import PG_CHANGES
from collector.store import open_store
from collector.tokens import hash_token, new_token


async def events(resp: aiohttp.ClientResponse, out: asyncio.Queue[tuple[str, Any, float]]) -> None:
    """Put each named event of the stream in `out`: (name, data, when it came), until the stream ends."""
    name = None
    with contextlib.suppress(aiohttp.ClientConnectionError):  # the test ends the stream
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name is not None:
                await out.put((name, orjson.loads(line[6:]), time.monotonic()))


async def test_a_batch_through_one_instance_is_a_delta_on_the_other_s_commune_stream(pg_schema_url: str) -> None:
    url = pg_schema_url
    tokens = {}
    async with open_store(url) as store:
        for name in ("gw-delta-a", "gw-delta-b"):
            tokens[name] = new_token()
            await store.add_gateway(name, COMMUNE, hash_token(tokens[name]))
    async with open_store(url) as store_a, open_store(url) as store_b:
        app_a, app_b = create_app(store_a), create_app(store_b)
        install_instances(app_a), install_instances(app_b)
        runner_a, url_a = await start(app_a, "127.0.0.1", 0)
        runner_b, url_b = await start(app_b, "127.0.0.1", 0)
        delays = []
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
                await listening(app_a, app_b)
                queue: asyncio.Queue[tuple[str, Any, float]] = asyncio.Queue()
                async with session.get(f"{url_b}/control/api/communes/{COMMUNE}/stream") as commune, \
                        session.get(f"{url_b}/control/api/stream?delta=1") as summary:
                    readers = [asyncio.create_task(events(r, queue)) for r in (commune, summary)]
                    first: set[str] = set()
                    async with asyncio.timeout(30):  # each stream's document (the summary's `change` events aside)
                        while not {"commune", "summary"} <= first:
                            first.add((await queue.get())[0])
                    assert first <= {"commune", "summary", "change"}, first
                    uploader = Uploader(session, url_a, "gw-delta-a", tokens["gw-delta-a"])
                    for i in range(3):
                        posted = time.monotonic()
                        await uploader.send(batch_body("gw-delta-a", [sample(i + 1)]), 1)
                        got: dict[str, Any] = {}
                        wanted = {"delta", "summary-delta"} if i == 0 else {"delta"}  # online once: the summary moves once
                        async with asyncio.timeout(30):
                            while not wanted <= set(got):
                                name, doc, at = await queue.get()
                                got[name] = doc
                                if name == "delta":
                                    delays.append(at - posted)
                        assert [c["name"] for c in got["delta"]["cabinets"]] == ["gw-delta-a"], got["delta"]
                        assert got["delta"]["cabinets"][0]["online"] is True
                        if i == 0:
                            assert [c["insee"] for c in got["summary-delta"]["communes"]] == [COMMUNE], got
                            assert got["summary-delta"]["totals"]["online"] == 1
                    for task in readers:
                        task.cancel()
        finally:
            await runner_a.cleanup()
            await runner_b.cleanup()
    print(f"batch on a -> delta on b's commune stream: {[round(d, 3) for d in delays]} s")
    assert app_b[PG_CHANGES].received >= 3
