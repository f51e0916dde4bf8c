"""Collector test fixtures: a real store, a real aiohttp server on a free port, a real HTTP client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web
from collector_testkit import Client, Running, ServeProcess

from collector.app import create_app, start
from collector.store import Store


@pytest.fixture
async def running(store: Store) -> AsyncIterator[Running]:
    runner, url = await start(create_app(store, max_body_bytes=1_000_000), "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            yield Running(store, Client(url, session))
        await connections_closed(runner)
    finally:
        await runner.cleanup()


async def connections_closed(runner: web.BaseRunner, timeout_s: float = 5) -> None:
    """Wait until the server has seen the client close its connections. Cleaning up before that, a
    handler still reading the unread rest of a refused body (aiohttp lingers up to 10 s) holds it."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while runner.server is not None and runner.server.connections and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.005)


@pytest.fixture
def serve_process(db_url: str) -> Iterator[list[ServeProcess]]:
    """Started processes are collected here and stopped at the end of the test."""
    procs: list[ServeProcess] = []
    yield procs
    for p in procs:
        p.stop()


