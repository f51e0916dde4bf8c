"""Collector web fixtures: every store test runs on SQLite and on PostgreSQL (never skipped)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from web_testkit import Web, new_pg_schema, pg_execute

from collector.app import create_app, start
from collector.store import Store, open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
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
async def web(store: Store) -> AsyncIterator[Web]:
    runner, url = await start(create_app(store), "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            yield Web(url, store, session)
    finally:
        await runner.cleanup()
