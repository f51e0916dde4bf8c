"""Control-plane fixtures: a fleet's credentials and a real Mosquitto started with the files made from them."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from mqtt_testkit import Fleet

from collector.store import Store, open_store
from simulators.mosquitto import Mosquitto


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    f = Fleet(tmp_path / "acl")
    f.add("gw-a")
    f.add("gw-b")
    return f


@pytest.fixture
def broker(tmp_path: Path, fleet: Fleet) -> Iterator[Mosquitto]:
    b = fleet.broker(tmp_path / "broker")
    b.start()
    try:
        yield b
    finally:
        b.kill()


PG_URL = os.environ.get("CITYGATE_TEST_PG") or "postgresql://postgres@127.0.0.1:5432/test"


async def pg_execute(sql: str) -> None:
    conn = await asyncpg.connect(PG_URL, timeout=30)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each store test runs on both engines: a fresh SQLite file or a fresh PostgreSQL schema (never skipped)."""
    if request.param == "sqlite":
        yield str(tmp_path / "collector.db")
        return
    schema = "cg_ctl_" + secrets.token_hex(6)
    asyncio.run(pg_execute(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"
    finally:
        asyncio.run(pg_execute(f"DROP SCHEMA {schema} CASCADE"))


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    async with open_store(db_url) as s:
        yield s
