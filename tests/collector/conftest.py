"""Collector test fixtures: a real store, a real aiohttp server on a free port, a real HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from collector_testkit import Client, Running, ServeProcess

from collector.app import create_app, start
from collector.store import Store


@pytest.fixture
async def running(store: Store) -> AsyncIterator[Running]:
    runner, url = await start(create_app(store, max_body_bytes=1_000_000), "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            yield Running(store, Client(url, session))
    finally:
        await runner.cleanup()


@pytest.fixture
def serve_process(db_url: str) -> Iterator[list[ServeProcess]]:
    """Started processes are collected here and stopped at the end of the test."""
    procs: list[ServeProcess] = []
    yield procs
    for p in procs:
        p.stop()


