"""Collector test fixtures: a real store, a real aiohttp server on a free port, a real HTTP client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from collector_testkit import Client, Running, ServeProcess, new_pg_schema, pg_execute

from collector.app import create_app, start
from collector.store import Store, open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every test runs on both stores: a fresh SQLite file, or a fresh PostgreSQL schema dropped after.

    An unreachable PostgreSQL fails the test: it is never skipped."""
    # a sync fixture (its own event loops for setup and teardown) so sync CLI tests can use it too
    if request.param == "sqlite":
        yield str(tmp_path / "collector.db")
        return
    schema, url = new_pg_schema()
    asyncio.run(pg_execute(f"CREATE SCHEMA {schema}"))
    try:
        yield url
    finally:
        asyncio.run(pg_execute(f"DROP SCHEMA {schema} CASCADE"))


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    async with open_store(db_url) as s:
        yield s


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


