"""The control page's stream does not poll while LISTEN/NOTIFY brings the other instances' changes
(collector.notify): with nothing changing, an instance on PostgreSQL computes no summary after the
first one for longer than the poll period (9 s), while one on SQLite (no NOTIFY: it polls) computes it
again within that period. Both over real HTTP, in this process."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from collector.app import create_app, start
from collector.dashboard.routes import STREAM_POLL_S, SUMMARY_CACHE
from collector.instances import install_instances
from collector.live import CHANGES, KEEPALIVE_S
from collector.store import open_store


async def summaries(session: aiohttp.ClientSession, url: str, seen: list[float]) -> None:
    with contextlib.suppress(aiohttp.ClientConnectionError):
        async with session.get(url + "/control/api/stream") as resp:
            assert resp.status == 200
            async for line in resp.content:
                if line.startswith(b"event: summary"):
                    seen.append(time.monotonic())


async def test_the_page_stream_does_not_poll_while_notify_is_up(pg_schema_url: str, tmp_path: Path) -> None:
    async with open_store(pg_schema_url) as pg, open_store(f"sqlite://{tmp_path / 'one.db'}") as lite:
        apps = {"postgresql": create_app(pg), "sqlite": create_app(lite)}
        for app in apps.values():
            install_instances(app)
        runners: list[web.AppRunner] = []
        urls = {}
        for kind, app in apps.items():
            runner, urls[kind] = await start(app, "127.0.0.1", 0)
            runners.append(runner)
        try:
            deadline = time.monotonic() + 30
            while apps["postgresql"][CHANGES].polling:
                assert time.monotonic() < deadline, "the instance did not LISTEN"
                await asyncio.sleep(0.05)
            assert apps["sqlite"][CHANGES].polling  # one collector, no NOTIFY: its streams poll
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
                seen: dict[str, list[float]] = {kind: [] for kind in apps}
                readers = [asyncio.create_task(summaries(session, urls[kind], seen[kind])) for kind in apps]
                async with asyncio.timeout(30):
                    while not all(seen.values()):
                        await asyncio.sleep(0.05)
                first = {kind: apps[kind][SUMMARY_CACHE].at for kind in apps}
                await asyncio.sleep(STREAM_POLL_S + 4.0)  # a poll would have computed the summary again
                again = {kind: apps[kind][SUMMARY_CACHE].at for kind in apps}
                for task in readers:
                    task.cancel()
                await asyncio.gather(*readers, return_exceptions=True)
        finally:
            for runner in runners:
                await runner.cleanup()
    print(f"summary computed again after the first one: {({k: round(again[k] - first[k], 1) for k in apps})} s")
    assert again["sqlite"] > first["sqlite"], "the SQLite instance did not poll: the test sees no poll at all"
    assert again["postgresql"] == first["postgresql"], "the PostgreSQL instance polled while NOTIFY was up"
    assert STREAM_POLL_S + 4.0 < KEEPALIVE_S  # what it does instead: a look at the keep-alive
