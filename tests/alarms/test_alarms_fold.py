"""The fold's cursor: a first run starts a day back, not at the start of history; a row that commits
late with an id below what was read (PostgreSQL takes ids before commit) is still folded; the saved
cursor only moves past what has settled; the queries an operator's page makes read indexes."""

from __future__ import annotations

from pathlib import Path

import orjson

from citygate_wire.common import now_ms
from collector.alarms.fold import FIRST_RUN_MS, Fold
from collector.alarms.model import Filters
from collector.store import Store, open_store
from tests.alarms.alarms_testkit import Feed


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_first_run_starts_a_day_back(store: Store) -> None:
    feed = Feed(store)
    feed.t0 = now_ms() - FIRST_RUN_MS - 3600_000  # two days ago, an hour before the window
    await feed.upload("gw-a", ("lamp-1", "lamp_failure", 0, "major", {}))
    feed.t0 = now_ms() - 600_000
    await feed.upload("gw-a", ("lamp-2", "door_open", 0, "critical", {}))
    await feed.folded()
    alarms, total, _ = await store.list_alarms(Filters(), now_ms())
    assert total == 1 and alarms[0].code == "door_open"


async def test_a_row_committed_late_below_the_cursor_is_folded_and_the_cursor_waits_to_settle(store: Store) -> None:
    feed = Feed(store)
    clock = Clock()
    feed.fold = Fold(store, settle_s=30, clock=clock)
    gw = await feed.gateway("gw-a")
    # the middle id stands for a batch that took its ids first and commits last (gone for now)
    await feed.upload("gw-a", ("lamp-1", "lamp_failure", 0, "major", {}), ("group:a", "group_level", 1, "info", {}),
                      ("lamp-3", "water_leak", 5, "major", {}))
    gap = (await store._ctl_rows("SELECT id FROM events WHERE code = 'group_level'"))[0][0]  # type: ignore[attr-defined]
    await store._ctl_exec("DELETE FROM events WHERE id = $1", gap)  # type: ignore[attr-defined]
    await feed.folded()
    clock.now += 10
    await store._ctl_exec(  # type: ignore[attr-defined]
        "INSERT INTO events (id, gateway_id, seq, device, ts_ms, code, severity, detail)"
        " VALUES ($1, $2, NULL, 'lamp-2', $3, 'door_open', 'critical', $4)",
        gap, gw.id, feed.t0 + 10_000, orjson.dumps({}).decode())
    assert await feed.folded()
    codes = {a.code for a in (await store.list_alarms(Filters(), now_ms()))[0]}
    assert codes == {"lamp_failure", "water_leak", "door_open"}
    assert await store._ctl_rows("SELECT last_id FROM alarm_fold WHERE source = 'upload'") == []  # type: ignore[attr-defined]
    clock.now += 31  # the first passes have settled: their head is saved
    await feed.folded()
    saved = await store._ctl_rows("SELECT last_id FROM alarm_fold WHERE source = 'upload'")  # type: ignore[attr-defined]
    assert saved and saved[0][0] > gap


async def test_the_list_and_its_counts_read_indexes_not_the_history(tmp_path: Path) -> None:
    """SQLite's plan (PostgreSQL picks its plan by the table's size: a small test table says nothing)."""
    async with open_store(str(tmp_path / "c.db")) as store:
        feed = Feed(store)
        await feed.upload("gw-a", ("lamp-1", "lamp_failure", 0, "major", {}))
        await feed.folded()
        for f, skip in ((Filters(), ""), (Filters(commune="21231"), ""), (Filters(states=("cleared",)), ""),
                        (Filters(), "state"), (Filters(gateway="gw-a"), "severity")):
            where, args = store._where(f, now_ms(), skip=skip, counting=True)  # type: ignore[attr-defined]
            for column in ("a.state", "a.commune"):
                sql = store._count_sql(column, where)  # type: ignore[attr-defined]
                plan = await store._ctl_rows(f"EXPLAIN QUERY PLAN {sql}", *args)  # type: ignore[attr-defined]
                text = " | ".join(str(r[-1]) for r in plan)
                assert "SCAN a" not in text, f"{f} {skip} {column}: {text}"
