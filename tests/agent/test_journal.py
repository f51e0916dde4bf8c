"""The journal keeps every accepted record, in order, across restarts; its size bound drops samples, never events."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from drivers.model import Event, Sample, Severity
from edge_agent.journal import Journal, PendingBatch, Row

TS = 1_764_000_000_000


def sample(i: int, device: str = "lamp-1") -> Sample:
    return Sample(device, TS + i, {"level_pct": i % 101, "power_w": i * 0.5})


async def test_appended_records_come_back_in_order_with_wire_shape(tmp_path: Path) -> None:
    async with Journal(tmp_path / "j.db") as journal:
        for i in range(10):
            journal.append(sample(i))
        journal.append(Event("lamp-3", TS, "lamp_failure", Severity.MAJOR, {"power_w": 1.0}))
        await journal.flush()
        batch = await journal.read_pending(100, 1_000_000)
    assert batch is not None
    docs = [orjson.loads(b) for b in batch.records]
    seqs = [d["seq"] for d in docs]
    assert seqs == list(range(seqs[0], seqs[0] + 11))
    assert docs[3] == {"seq": seqs[3], "kind": "sample", "device": "lamp-1", "ts_ms": TS + 3,
                       "values": {"level_pct": 3, "power_w": 1.5}}
    assert docs[10]["kind"] == "event" and docs[10]["code"] == "lamp_failure" and docs[10]["severity"] == "major"
    assert batch.last_seq == seqs[-1]


async def test_observers_see_a_record_only_after_it_is_committed(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    seen: list[int] = []

    def observer(record: object) -> None:
        # the row must already be readable from another connection
        n = sqlite3.connect(path).execute("SELECT COUNT(*) FROM journal").fetchone()[0]
        seen.append(n)

    async with Journal(path) as journal:
        journal.observers.append(observer)
        journal.append(sample(1))
        journal.append(sample(2))
        await journal.flush()
    assert seen == [2, 2]


async def test_ack_deletes_only_up_to_the_acknowledged_seq(tmp_path: Path) -> None:
    async with Journal(tmp_path / "j.db") as journal:
        journal.append_many(sample(i) for i in range(100))
        await journal.flush()
        first = await journal.read_pending(30, 1_000_000)
        assert first is not None and len(first.records) == 30
        await journal.ack(first.last_seq)
        rest = await journal.read_pending(1000, 1_000_000)
        stats = await journal.stats()
    assert rest is not None and len(rest.records) == 70
    assert orjson.loads(rest.records[0])["seq"] == first.last_seq + 1
    assert stats.samples == 70 and stats.events == 0


async def test_batches_respect_the_byte_bound_but_always_carry_one_record(tmp_path: Path) -> None:
    async with Journal(tmp_path / "j.db") as journal:
        journal.append_many(sample(i) for i in range(200))
        await journal.flush()
        batch = await journal.read_pending(1000, 2_000)
        tiny = await journal.read_pending(1000, 1)
    assert batch is not None and 0 < len(batch.records) < 200
    assert len(batch.json_array()) <= 2_000
    assert tiny is not None and len(tiny.records) == 1


async def test_sequence_continues_after_restart_and_never_restarts_after_a_wipe(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    async with Journal(path) as journal:
        journal.append_many(sample(i) for i in range(5))
        await journal.flush()
        b1 = await journal.read_pending(10, 10**6)
        assert b1 is not None
        await journal.ack(b1.last_seq)  # all deleted: the sequence must still not go back
    async with Journal(path) as journal:
        journal.append(sample(9))
        await journal.flush()
        b2 = await journal.read_pending(10, 10**6)
    assert b2 is not None and orjson.loads(b2.records[0])["seq"] == b1.last_seq + 1
    path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    async with Journal(path) as journal:
        journal.append(sample(10))
        await journal.flush()
        b3 = await journal.read_pending(10, 10**6)
    assert b3 is not None and orjson.loads(b3.records[0])["seq"] > b2.last_seq


async def test_size_bound_drops_oldest_samples_never_events_and_reports_each_drop(tmp_path: Path) -> None:
    async with Journal(tmp_path / "j.db", max_records=1000, flush_max_pending=100) as journal:
        journal.append(Event("lamp-1", TS, "lamp_failure", Severity.MAJOR))
        journal.append_many(sample(i) for i in range(1500))
        await journal.flush()
        stats = await journal.stats()
        batch = await journal.read_pending(100_000, 10**8)
    assert batch is not None
    docs = [orjson.loads(b) for b in batch.records]
    drops = [d for d in docs if d["kind"] == "event" and d["code"] == "samples_dropped"]
    assert docs[0]["code"] == "lamp_failure"  # the oldest record, an event, survived
    dropped = sum(d["detail"]["count"] for d in drops)
    assert dropped == stats.dropped_total
    kept_samples = [d for d in docs if d["kind"] == "sample"]
    # every sample is either still here or counted as dropped
    assert len(kept_samples) + dropped == 1500
    # what was dropped is the oldest: the kept samples are the newest ones
    assert [d["ts_ms"] for d in kept_samples] == [TS + i for i in range(1500 - len(kept_samples), 1500)]
    assert stats.records <= 1000 + len(drops) + 1


async def test_closed_journal_refuses_appends(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    async with journal:
        pass
    with pytest.raises(RuntimeError):
        journal.append(sample(1))


async def test_a_failed_commit_keeps_the_records_for_the_next_try(tmp_path: Path) -> None:
    async with Journal(tmp_path / "j.db") as journal:
        journal.append(sample(1))
        real_write = journal._write
        calls = 0

        def failing_once(rows: list[Row]) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise sqlite3.OperationalError("disk I/O error")
            real_write(rows)

        journal._write = failing_once  # type: ignore[method-assign]
        with pytest.raises(sqlite3.OperationalError):
            await journal.flush()
        journal.append(sample(2))
        await journal.flush()
        batch = await journal.read_pending(10, 10**6)
    assert batch is not None
    assert [orjson.loads(b)["ts_ms"] for b in batch.records] == [TS + 1, TS + 2]


async def test_a_value_that_cannot_be_encoded_becomes_an_event_not_a_lost_batch(tmp_path: Path) -> None:
    async with Journal(tmp_path / "j.db") as journal:
        journal.append(sample(1))
        journal.append(Sample("lamp-9", TS, {"bad": object()}))  # type: ignore[dict-item]
        journal.append(sample(2))
        await journal.flush()
        batch = await journal.read_pending(10, 10**6)
    assert batch is not None
    docs = [orjson.loads(b) for b in batch.records]
    assert [d["kind"] for d in docs] == ["sample", "event", "sample"]
    assert docs[1]["code"] == "record_unencodable" and docs[1]["device"] == "lamp-9"


async def test_read_pending_prepares_each_batch_read_ahead_ones_too_and_only_with_the_same_prepare(
        tmp_path: Path) -> None:
    def first(batch: PendingBatch) -> bytes:
        return b"1:" + batch.json_array()

    def second(batch: PendingBatch) -> bytes:
        return b"2:" + batch.json_array()

    async with Journal(tmp_path / "j.db") as journal:
        journal.append_many(sample(i) for i in range(30))
        await journal.flush()
        b1 = await journal.read_pending(10, 10**6, first)
        assert b1 is not None and b1.body == first(b1)
        await journal.ack(b1.last_seq)
        b2 = await journal.read_pending(10, 10**6, first)  # the batch read ahead, prepared beside its read
        assert b2 is not None and b2.body == first(b2) and b2.seqs[0] == b1.last_seq + 1
        await journal.ack(b2.last_seq)
        b3 = await journal.read_pending(10, 10**6, second)  # read ahead with `first`: not handed out
        assert b3 is not None and b3.body == second(b3) and b3.seqs[0] == b2.last_seq + 1
        await journal.ack(b3.last_seq)
        journal.append(sample(30))
        await journal.flush()
        b4 = await journal.read_pending(10, 10**6)
    assert b4 is not None and b4.body is None and len(b4.records) == 1
