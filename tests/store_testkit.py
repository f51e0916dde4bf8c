"""The collector's two stores in tests: a fresh SQLite file, or a fresh PostgreSQL schema dropped after.

PostgreSQL is $CITYGATE_TEST_PG, else a server the session starts (tests/pg_server.py). A PostgreSQL
that cannot be had fails the test with one line: it is never skipped. The `db_url` and `store`
fixtures (tests/conftest.py) are built on these.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from tests.pg_server import pg_url


async def pg_execute(sql: str) -> None:
    conn = await asyncpg.connect(pg_url(), timeout=30)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def new_pg_schema() -> tuple[str, str]:
    """(schema, url): a fresh schema; drop it with `pg_execute(f"DROP SCHEMA {schema} CASCADE")`."""
    schema = "cg_test_" + secrets.token_hex(6)
    url = pg_url()
    return schema, f"{url}{'&' if '?' in url else '?'}schema={schema}"


@contextlib.asynccontextmanager
async def fresh_db(kind: str, tmp: Path) -> AsyncIterator[str]:
    """A database URL nobody else uses, inside a test (`kind`: "sqlite" or "postgresql")."""
    if kind == "sqlite":
        yield str(tmp / f"collector-{secrets.token_hex(4)}.db")
        return
    schema, url = new_pg_schema()
    await pg_execute(f"CREATE SCHEMA {schema}")
    try:
        yield url
    finally:
        await pg_execute(f"DROP SCHEMA {schema} CASCADE")
