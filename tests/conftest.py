"""Fixtures of every test folder that needs a collector store (collector, collector_web, control)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

from tests.pg_server import stop_own_server
from tests.store_testkit import new_pg_schema, pg_execute

if TYPE_CHECKING:
    from collector.store import Store

# Hypothesis fails an example slower than its deadline (200 ms by default): on a machine whose two cores
# run a dozen test processes a decoder call can wait that long for the CPU, and the failure says nothing
# of the code. Two seconds still catches a decoder that goes quadratic on an input.
settings.register_profile("citygate", deadline=2000)
settings.load_profile("citygate")


@pytest.fixture(scope="session", autouse=True)
def _own_postgresql_stops_at_the_end() -> Iterator[None]:
    """The PostgreSQL a session started for itself (tests/pg_server.py) stops with the session."""
    yield
    stop_own_server()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every store test runs on both engines: a fresh SQLite file, or a fresh PostgreSQL schema dropped after."""
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
    # imported here: the agent and driver test folders need not load the collector
    from collector.store import open_store

    async with open_store(db_url) as s:
        yield s
