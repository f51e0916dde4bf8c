"""What the journal does to spare the flash keeps its promises: acknowledged records leave the backlog
at once and the disk in bulk, a crash before the purge sends them again (the collector keeps each
once), the numbering never goes back, a bus's poll cycle is one commit and an event does not wait."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

import orjson

from drivers.model import Event, Record, Sample, Severity
from edge_agent.journal import Journal, PendingBatch, Row

TS = 1_764_000_000_000


def sample(i: int) -> Sample:
    return Sample(f"lamp-{i % 23}", TS + i, {"level_pct": 70, "power_w": 61.5, "energy_wh": 1000 + i})


async def journalled(journal: Journal, n: int, take: int) -> PendingBatch:
    """Journal n samples and read the first `take` of them for upload."""
    journal.append_many(sample(i) for i in range(n))
    await journal.flush()
    batch = await journal.read_pending(take, 10**8)
    assert batch is not None
    return batch


def rows(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute("SELECT COUNT(*) FROM journal").fetchone()[0])
    finally:
        con.close()


async def test_acknowledged_records_leave_the_backlog_at_once_and_the_disk_in_bulk(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    async with Journal(path, purge_after=100) as journal:
        first = await journalled(journal, 150, 60)
        assert await journal.ack(first.last_seq) == 60
        assert journal.backlog == 90 and rows(path) == 150  # not deleted yet: 60 < purge_after
        stats = await journal.stats()
        assert stats.first_seq == first.last_seq + 1 and stats.records == 90
        rest = await journal.read_pending(1000, 10**8)
        assert rest is not None and rest.seqs[0] == first.last_seq + 1 and len(rest.seqs) == 90
        await journal.ack(rest.seqs[49])
        await journal.stats()  # the purge runs in the journal's thread, before anything asked after it
        assert rows(path) == 40  # 110 acknowledged >= purge_after: deleted in one range
        assert await journal.ack(rest.seqs[10]) == 0  # an older acknowledgement changes nothing
    assert rows(path) == 40  # closing deletes what was acknowledged since (nothing here)


async def test_records_acknowledged_but_not_purged_before_a_crash_are_sent_again(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    async with Journal(path) as journal:
        batch = await journalled(journal, 30, 20)
        await journal.ack(batch.last_seq)
        for f in tmp_path.glob("j.db*"):  # the files as a kill -9 would leave them
            shutil.copy(f, crashed / f.name)
        sent = await journal.read_pending(100, 10**8)
    assert sent is not None
    async with Journal(crashed / "j.db") as journal:
        again = await journal.read_pending(100, 10**8)
        assert journal.backlog == 30
    assert again is not None
    assert again.records == batch.records + sent.records  # the same seqs: the collector answers duplicates


async def test_numbering_never_goes_back_once_every_record_is_purged(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    async with Journal(path, purge_after=1) as journal:
        batch = await journalled(journal, 5, 10)
        await journal.ack(batch.last_seq)
        await journal.stats()
        assert rows(path) == 0
    async with Journal(path) as journal:
        journal.append(sample(9))
        await journal.flush()
        after = await journal.read_pending(10, 10**8)
    assert after is not None and after.seqs == [batch.last_seq + 1]


async def test_a_poll_cycle_is_one_commit_and_an_event_is_not_kept_waiting(tmp_path: Path) -> None:
    commits: list[list[str]] = []
    # idle_s and flush_interval_s wide enough that a loaded machine's stalls (a few hundred ms) neither
    # split a cycle nor pass for the idle time
    async with Journal(tmp_path / "j.db", flush_interval_s=5.0, idle_s=1.0) as journal:
        batch: list[str] = []
        journal.observers.append(lambda r: batch.append(type(r).__name__))
        real_write = journal._write

        def counting(rows: list[Row]) -> None:
            real_write(rows)
            commits.append([])

        async def commits_reach(n: int, within_s: float) -> float:
            loop = asyncio.get_running_loop()
            start = loop.time()
            while len(commits) < n and loop.time() - start < within_s:
                await asyncio.sleep(0.01)
            return loop.time() - start

        journal._write = counting  # type: ignore[method-assign]
        for cycle in range(2):
            for i in range(23):  # a cycle's readings, 10 ms apart: under idle_s, one commit
                journal.append(sample(cycle * 23 + i))
                await asyncio.sleep(0.01)
            await commits_reach(cycle + 1, 5.0)  # once idle for idle_s
        assert len(commits) == 2 and batch.count("Sample") == 46
        journal.append(sample(100))
        journal.append(Event("lamp-3", TS, "lamp_failure", Severity.MAJOR))
        took = await commits_reach(3, 0.9)  # under idle_s: only the event can have brought the commit forward
        assert len(commits) == 3 and took < 1.0 and batch[-2:] == ["Sample", "Event"]


async def test_a_stream_without_pause_commits_at_least_every_flush_interval(tmp_path: Path) -> None:
    seen: list[Record] = []
    async with Journal(tmp_path / "j.db", flush_interval_s=0.3, idle_s=0.2) as journal:
        journal.observers.append(seen.append)
        loop = asyncio.get_running_loop()
        start = loop.time()
        i = 0
        while loop.time() - start < 1.0:  # a record every 20 ms: never idle for 0.2 s
            journal.append(sample(i))
            i += 1
            await asyncio.sleep(0.02)
        assert len(seen) >= i // 3  # the window closed on time at least twice
        body = orjson.loads((await journal.read_pending(1, 10**6)).records[0])  # type: ignore[union-attr]
    assert body["values"] == {"level_pct": 70, "power_w": 61.5, "energy_wh": 1000}


async def test_a_batch_read_ahead_is_not_handed_out_once_a_record_in_it_is_set_aside(tmp_path: Path) -> None:
    async with Journal(tmp_path / "j.db") as journal:
        first = await journalled(journal, 30, 10)  # a full batch: the next ten are read ahead
        await journal.ack(first.last_seq)
        assert await journal.quarantine(first.last_seq + 3, "/records/3/values/x: refused")
        second = await journal.read_pending(10, 10**8)
        assert second is not None and first.last_seq + 3 not in second.seqs
        assert second.seqs[:3] == [first.last_seq + 1, first.last_seq + 2, first.last_seq + 4]
        await journal.ack(second.last_seq)
        third = await journal.read_pending(10, 10**8)  # read ahead, and still right
        assert third is not None and third.seqs[0] == second.last_seq + 1
        assert [orjson.loads(r)["seq"] for r in third.records] == third.seqs


async def test_a_large_burst_is_committed_in_bounded_commits_not_one_per_record(tmp_path: Path) -> None:
    commits: list[int] = []
    async with Journal(tmp_path / "j.db", flush_max_pending=100) as journal:
        real_write = journal._write

        def counting(rows: list[Row]) -> None:
            real_write(rows)
            commits.append(len(rows))

        journal._write = counting  # type: ignore[method-assign]
        journal.append_many(sample(i) for i in range(5000))  # no await between: one commit queued
        await journal.flush()
        assert journal.backlog == 5000
    assert sum(commits) == 5000 and len(commits) <= 3
