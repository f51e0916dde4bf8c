"""A journal written by the first format (AUTOINCREMENT, every record as wire JSON) opens, keeps its
backlog byte for byte and its numbering, and continues in the compact format."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

from drivers.model import Sample
from edge_agent.journal import FORMAT, PAGE_SIZE, Journal

TS = 1_764_000_000_000
#: the first format's tables, as edge_agent/journal.py created them until format 2
FIRST_FORMAT = """
CREATE TABLE IF NOT EXISTS journal (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    kind  INTEGER NOT NULL,
    ts_ms INTEGER NOT NULL,
    body  BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rejected (
    seq    INTEGER PRIMARY KEY,
    body   BLOB NOT NULL,
    reason TEXT NOT NULL
);
"""
CREATED_US = 1_764_000_000_000_000


def first_format_journal(path: Path, n: int, acked: int) -> list[bytes]:
    """A journal of the first format: n samples, the first `acked` deleted; the wire records left."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(FIRST_FORMAT)
    db.execute("INSERT INTO sqlite_sequence(name, seq) VALUES ('journal', ?)", (CREATED_US,))
    db.execute("INSERT INTO meta(key, value) VALUES ('dropped_total', 3)")
    for i in range(n):
        doc = {"kind": "sample", "device": f"lamp-{i % 7}", "ts_ms": TS + i, "values": {"level_pct": i % 101}}
        db.execute("INSERT INTO journal(kind, ts_ms, body) VALUES (0, ?, ?)", (TS + i, orjson.dumps(doc)))
    db.execute("DELETE FROM journal WHERE seq <= ?", (CREATED_US + acked,))
    wire = [b'{"seq":%d,%s' % (seq, body[1:]) for seq, body in db.execute("SELECT seq, body FROM journal ORDER BY seq")]
    db.close()
    return wire


async def test_a_first_format_journal_keeps_its_backlog_and_numbering(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    old = first_format_journal(path, 300, acked=100)
    async with Journal(path) as journal:
        stats = await journal.stats()
        assert (stats.samples, stats.events, stats.dropped_total) == (200, 0, 3)
        journal.append(Sample("lamp-1", TS + 1000, {"level_pct": 5}))
        await journal.flush()
        batch = await journal.read_pending(10_000, 10**8)
    assert batch is not None
    assert batch.records[:200] == old  # the backlog goes out exactly as the first format would send it
    assert batch.seqs[200] == CREATED_US + 301
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == FORMAT
    assert db.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE  # a small journal is rebuilt
    assert db.execute("SELECT sql FROM sqlite_master WHERE name='journal'").fetchone()[0].count("AUTOINCREMENT") == 0


async def test_a_first_format_journal_emptied_by_acknowledgements_does_not_reuse_numbers(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    first_format_journal(path, 50, acked=50)
    async with Journal(path) as journal:
        assert journal.backlog == 0
        journal.append(Sample("lamp-1", TS, {"level_pct": 5}))
        await journal.flush()
        batch = await journal.read_pending(10, 10**6)
    assert batch is not None and batch.seqs == [CREATED_US + 51]


async def test_an_interrupted_upgrade_leaves_the_first_format_to_try_again(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    old = first_format_journal(path, 20, acked=0)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")  # another process holds the file: the upgrade cannot start
    try:
        journal = Journal(path)
        try:
            async with journal:
                raise AssertionError("the journal opened while the file was locked")
        except sqlite3.OperationalError:
            pass
    finally:
        db.execute("ROLLBACK")
        db.close()
    async with Journal(path) as journal:
        batch = await journal.read_pending(100, 10**8)
    assert batch is not None and batch.records == old


async def test_a_format_2_journal_loses_the_brackets_of_its_value_arrays(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    async with Journal(path) as journal:
        journal.append_many(Sample(f"lamp-{i}", TS + i, {"level_pct": i, "note": "a,b"}) for i in range(3))
        await journal.flush()
        before = await journal.read_pending(10, 10**6)
    db = sqlite3.connect(path, isolation_level=None)  # format 2 stored the JSON array whole
    db.execute("UPDATE journal SET body = CAST('[' || CAST(body AS TEXT) || ']' AS BLOB) WHERE schema_id IS NOT NULL")
    db.execute("PRAGMA user_version=2")
    db.close()
    async with Journal(path) as journal:
        after = await journal.read_pending(10, 10**6)
    assert before is not None and after is not None and after.records == before.records
