"""A batch on PostgreSQL costs a handful of round trips to the server, whatever it holds.

Each statement is a wake-up of the collector's event loop and of a server process; on a machine
short of CPU each waits for a CPU, so the p99 of the steady state (bench/bench_city_steady.py)
grew with the statements a batch took (14: BEGIN, the gateway's lock, the duplicate check, COPY,
the devices' states, four rollup tables, the states, the last-seen time, COMMIT, the pool's reset).
Counted here by asyncpg's query logger on the store's one pooled connection, on a real server;
what the batch stores is checked against what a batch of the same records stored alone would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from citygate_wire.batch import decode_batch
from collector.model import Gateway
from collector.store_pg import PgStore
from tests.collector.collector_testkit import TS0, batch_body, event, sample
from tests.store_testkit import new_pg_schema, pg_execute

#: BEGIN with the gateway's lock, the duplicate check with the states, the writes, COMMIT, the reset
MOST_STATEMENTS = 5


@pytest.fixture
async def one_connection() -> AsyncIterator[tuple[PgStore, list[str]]]:
    schema, url = new_pg_schema()
    await pg_execute(f"CREATE SCHEMA {schema}")
    try:
        async with PgStore(url, min_connections=1, max_connections=1) as store:
            statements: list[str] = []
            async with store._require().acquire() as conn:
                conn.add_query_logger(lambda q: statements.append(q.query))
            yield store, statements
    finally:
        await pg_execute(f"DROP SCHEMA {schema} CASCADE")


def records(first_seq: int, lamps: int = 20, *, with_event: bool = False) -> Any:
    recs = [sample(first_seq + i, device=f"lamp-{i}", ts_ms=TS0 + i * 1000, level_pct=70, power_w=61.5, lamp_on=True)
            for i in range(lamps)]
    recs.append(sample(first_seq + lamps, device="meter", ts_ms=TS0 + lamps * 1000, energy_wh=1234.5))
    if with_event:
        recs.append(event(first_seq + lamps + 1, ts_ms=TS0 + (lamps + 1) * 1000))
    return decode_batch(batch_body("gw-1", recs), latest_ts_ms=2**62).records


async def first_batch(store: PgStore) -> Gateway:
    """gw-1, with a first batch stored: its month's partition made, the types introspected (once)."""
    gateway = await store.add_gateway("gw-1", "21231", "hash-1")
    await store.ingest(gateway, records(1000))
    return gateway


async def test_a_cabinets_batch_takes_a_handful_of_statements_and_a_resent_one_no_more(
    one_connection: tuple[PgStore, list[str]],
) -> None:
    store, statements = one_connection
    gateway = await first_batch(store)
    for first in (100, 100):  # the next batch, and the same sent again
        statements.clear()
        await store.ingest(gateway, records(first))
        assert len(statements) <= MOST_STATEMENTS, statements
    assert (await store.count_records(gateway)).samples == 42
    # every rollup table, the device states and the last-seen time written by the one statement
    rows = await store._require().fetch(
        "SELECT (SELECT SUM(samples) FROM rollup_gateway_hour), (SELECT SUM(samples) FROM rollup_gateway_day),"
        " (SELECT SUM(samples) FROM rollup_commune_hour), (SELECT SUM(samples) FROM rollup_commune_day),"
        " (SELECT COUNT(*) FROM device_state), (SELECT last_seq FROM gateways WHERE name = 'gw-1')")
    assert tuple(rows[0]) == (42, 42, 42, 42, 21, 1020)
    assert not [q for q in statements if q.lstrip().upper().startswith("COPY")]


async def test_an_uploaded_event_adds_one_statement_and_is_stored_once(
    one_connection: tuple[PgStore, list[str]],
) -> None:
    store, statements = one_connection
    gateway = await first_batch(store)
    for _ in range(2):
        statements.clear()
        result = await store.ingest(gateway, records(1, with_event=True))
        assert len(statements) <= MOST_STATEMENTS + 1, statements
    assert result.duplicates == 22 and result.stored == 0
    assert (await store.count_records(gateway)).events == 1


async def test_batches_of_one_communes_gateways_at_once_all_land_without_deadlock(
    one_connection: tuple[PgStore, list[str]],
) -> None:
    """The commune rollups are the rows other gateways' batches lock too (hour, then day)."""
    store, _ = one_connection
    schema_url = store.url
    async with PgStore(schema_url, max_connections=8) as wide:
        gateways = [await wide.add_gateway(f"gw-{i}", "21231", f"hash-{i}") for i in range(1, 9)]
        batches = [(g, decode_batch(batch_body(g.name, [
            sample(n * 30 + i + 1, device=f"lamp-{i}", ts_ms=TS0 + n * 3_600_000 + i, level_pct=50)
            for i in range(20)]), latest_ts_ms=2**62).records) for g in gateways for n in range(6)]
        await asyncio.gather(*(wide.ingest(g, recs) for g, recs in batches))
        total = await wide._require().fetchval("SELECT SUM(samples) FROM rollup_commune_day")
    assert total == 8 * 6 * 20
