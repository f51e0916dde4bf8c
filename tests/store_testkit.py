"""The collector's two stores in tests: a fresh SQLite file, or a fresh PostgreSQL schema dropped after.

PostgreSQL is $CITYGATE_TEST_PG (default postgresql://postgres@127.0.0.1:5432/test). An unreachable
PostgreSQL fails the test: it is never skipped. The `db_url` and `store` fixtures (tests/conftest.py)
are built on these.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

PG_URL = os.environ.get("CITYGATE_TEST_PG") or "postgresql://postgres@127.0.0.1:5432/test"


async def pg_execute(sql: str) -> None:
    conn = await asyncpg.connect(PG_URL, timeout=30)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def new_pg_schema() -> tuple[str, str]:
    """(schema, url): a fresh schema; drop it with `pg_execute(f"DROP SCHEMA {schema} CASCADE")`."""
    schema = "cg_test_" + secrets.token_hex(6)
    return schema, f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"


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
