"""The SQLite store's fast paths stay correct: device states cached between batches are dropped
when another connection wrote, and the gateway lookup run on the event loop falls back to the
reader thread when it fails."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from collector_testkit import TS0, batch_body, sample

from citygate_wire.batch import decode_batch
from collector.store import open_store
from collector.tokens import hash_token

MIN = 60_000


def lamp_batch(gateway: str, first_seq: int, energies: list[int]) -> list:  # type: ignore[type-arg]
    records = [sample(first_seq + i, "lamp-1", TS0 + (first_seq + i) * MIN, energy_wh=e, lamp_on=True)
               for i, e in enumerate(energies)]
    return list(decode_batch(batch_body(gateway, records)).records)


async def test_cached_device_states_are_dropped_when_another_store_wrote(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    async with open_store(path) as a:
        gw = await a.add_gateway("gw-1", "21231", hash_token("t"))
        await a.ingest(gw, lamp_batch("gw-1", 1, [1000, 1010]))  # a caches lamp-1 at 1010 Wh
        # another collector process on the same file carries the counter on to 1100 Wh
        async with open_store(path) as b:
            await b.ingest(gw, lamp_batch("gw-1", 3, [1050, 1100]))
        await a.ingest(gw, lamp_batch("gw-1", 5, [1120]))
        # 1000 -> 1120 is 120 Wh; a stale cache (1010) would have counted 1010 -> 1120 again
        rows = await a.rollups("gateway", "day", "gw-1", "2025-12-01", "2025-12-01")
        assert rows[0].energy_wh == 120


async def test_cached_device_states_are_kept_across_batches_of_one_store(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    async with open_store(path) as a:
        gw = await a.add_gateway("gw-1", "21231", hash_token("t"))
        for k in range(5):
            await a.ingest(gw, lamp_batch("gw-1", 1 + 2 * k, [1000 + 20 * k, 1010 + 20 * k]))
        rows = await a.rollups("gateway", "day", "gw-1", "2025-12-01", "2025-12-01")
        assert rows[0].energy_wh == 90
    # and what was saved lets a restarted collector carry on
    async with open_store(path) as again:
        await again.ingest(gw, lamp_batch("gw-1", 11, [1100]))
        rows = await again.rollups("gateway", "day", "gw-1", "2025-12-01", "2025-12-01")
        assert rows[0].energy_wh == 100


async def test_gateway_lookup_falls_back_to_the_reader_thread_when_the_fast_read_fails(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    async with open_store(str(path)) as store:
        gw = await store.add_gateway("gw-1", "21231", hash_token("t"))
        assert await store.gateway_for_token(hash_token("t")) == gw
        # the event loop's connection now reads a file that is no database: every query fails
        garbage = tmp_path / "garbage.db"
        garbage.write_bytes(b"this is not an SQLite database, " * 200)
        broken = sqlite3.connect(garbage, isolation_level=None, check_same_thread=False)
        own = store._loop_db  # type: ignore[attr-defined]
        store._loop_db = broken  # type: ignore[attr-defined]
        try:
            try:
                broken.execute("SELECT 1 FROM gateways")
                raise AssertionError("the broken connection read: the test proves nothing")
            except sqlite3.DatabaseError:
                pass
            assert await store.gateway_for_token(hash_token("t")) == gw
            assert await store.gateway_for_token(hash_token("nope")) is None
        finally:
            store._loop_db = own  # type: ignore[attr-defined]
            broken.close()
        assert await store.gateway_for_token(hash_token("t")) == gw
