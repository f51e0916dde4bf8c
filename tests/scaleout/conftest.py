"""Fixtures of the scale-out tests: a fresh PostgreSQL schema, and processes stopped at the end."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from scaleout_kit import HAProxy, Instance

from tests.store_testkit import new_pg_schema, pg_execute


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    schema, url = new_pg_schema()
    asyncio.run(pg_execute(f"CREATE SCHEMA {schema}"))
    try:
        yield url
    finally:
        asyncio.run(pg_execute(f"DROP SCHEMA {schema} CASCADE"))


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[list[Instance | HAProxy]]:
    """Started collectors and proxies, stopped at the end of the test (the proxy first)."""
    started: list[Instance | HAProxy] = []
    yield started
    for p in reversed(started):
        p.stop()
