"""The durable local journal: every record a driver hands over is committed here before anything else sees it.

SQLite in WAL mode, one writer thread, batched transactions. Each record gets the gateway's next
sequence number when committed; the uploader reads in sequence order and deletes only what the
collector acknowledged.

Sequence numbers start at the creation instant in microseconds since the epoch, so a journal
recreated after a wiped disk never reuses numbers the collector already holds (it would
discard them as duplicates).

Size bound: beyond `max_records` rows the oldest *samples* are deleted, never events; each
deletion is counted and recorded as a `samples_dropped` event in the same transaction, so the
collector learns of every loss.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from citygate_wire.common import now_ms
from drivers.model import Event, Record, Sample, Severity

log = logging.getLogger("citygate.journal")

SAMPLE, EVENT = 0, 1
RETRY_S = 1.0
JOURNAL_DEVICE = "journal"
#: SQLite page cache. A queue appends at one end of one b-tree and reads and deletes at the other:
#: a few hundred KiB hold both ends (the OS caches the file), where SQLite's default 2 MiB fills with
#: pages the journal never reads again.
CACHE_KIB = 256

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    kind  INTEGER NOT NULL,
    ts_ms INTEGER NOT NULL,
    body  BLOB    NOT NULL   -- the wire record (citygate_wire.batch) without its seq
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
-- records the collector refused as malformed: kept here for the technician, reported by an event
CREATE TABLE IF NOT EXISTS rejected (
    seq    INTEGER PRIMARY KEY,
    body   BLOB NOT NULL,
    reason TEXT NOT NULL
);
"""


def encode(record: Record) -> tuple[int, int, bytes]:
    """(kind, ts_ms, body) of a record: the wire shape, minus the seq the journal assigns."""
    if isinstance(record, Sample):
        doc: dict[str, Any] = {
            "kind": "sample", "device": record.device, "ts_ms": record.ts_ms, "values": record.values,
        }
        return SAMPLE, record.ts_ms, orjson.dumps(doc)
    doc = {
        "kind": "event", "device": record.device, "ts_ms": record.ts_ms, "code": record.code,
        "severity": str(record.severity), "detail": record.detail,
    }
    return EVENT, record.ts_ms, orjson.dumps(doc, default=str)


@dataclass(frozen=True, slots=True)
class JournalStats:
    samples: int
    events: int
    first_seq: int | None
    last_seq: int | None
    oldest_ts_ms: int | None
    dropped_total: int
    size_bytes: int

    @property
    def records(self) -> int:
        return self.samples + self.events


@dataclass(frozen=True, slots=True)
class PendingBatch:
    """Records read for upload: wire bodies with their seq spliced in, and the last seq."""

    records: list[bytes]
    seqs: list[int]

    @property
    def last_seq(self) -> int:
        return self.seqs[-1]

    def json_array(self) -> bytes:
        return b"[" + b",".join(self.records) + b"]"


class Journal:
    """Use as `async with Journal(path, ...) as journal:`; `append()` never blocks the event loop."""

    def __init__(
        self,
        path: Path,
        *,
        max_records: int = 5_000_000,
        synchronous: str = "full",
        flush_interval_s: float = 0.05,
        flush_max_pending: int = 5000,
    ) -> None:
        self.path = path
        self.max_records = max_records
        self.synchronous = synchronous.upper()
        self.flush_interval_s = flush_interval_s
        self.flush_max_pending = flush_max_pending
        self.observers: list[Callable[[Record], None]] = []
        self.new_data = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._db: sqlite3.Connection | None = None
        self._pending: list[Record] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self._counts = [0, 0]
        self._dropped_total = 0
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Journal:
        await self._call(self._open)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._closed:
            return
        await self.flush()
        self._closed = True
        await self._call(self._close_db)
        self._executor.shutdown(wait=True)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        db.executescript(_SCHEMA)
        db.execute("BEGIN IMMEDIATE")
        if db.execute("SELECT 1 FROM sqlite_sequence WHERE name='journal'").fetchone() is None:
            db.execute("INSERT INTO sqlite_sequence(name, seq) VALUES ('journal', ?)", (time.time_ns() // 1000,))
        db.execute("COMMIT")
        for kind, n in db.execute("SELECT kind, COUNT(*) FROM journal GROUP BY kind"):
            self._counts[kind] = n
        row = db.execute("SELECT value FROM meta WHERE key='dropped_total'").fetchone()
        self._dropped_total = row[0] if row else 0
        self._db = db

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- writing -----------------------------------------------------------------------------

    def append(self, record: Record) -> None:
        """Queue a record; it is committed within `flush_interval_s` (sooner when many are pending)."""
        if self._closed:
            raise RuntimeError("journal is closed")
        self._pending.append(record)
        if len(self._pending) >= self.flush_max_pending:
            self._start_flush()
        elif self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(self.flush_interval_s, self._start_flush)

    def append_many(self, records: Iterable[Record]) -> None:
        for record in records:
            self.append(record)

    def _start_flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.get_running_loop().create_task(self.flush())

    async def flush(self) -> None:
        """Commit everything appended so far, then hand it to the observers.

        If the commit fails (disk full, I/O error) the records go back to the head of the queue,
        in order, and a retry is scheduled: nothing accepted is dropped on the floor."""
        async with self._flush_lock:
            while self._pending:
                if self._flush_handle is not None:
                    self._flush_handle.cancel()
                    self._flush_handle = None
                batch, self._pending = self._pending, []
                try:
                    await self._call(self._write, [self._encode_or_report(r) for r in batch])
                except Exception:
                    self._pending[:0] = batch
                    log.exception("journal commit of %d records failed; retrying in %.0f s", len(batch), RETRY_S)
                    self._flush_handle = asyncio.get_running_loop().call_later(RETRY_S, self._start_flush)
                    raise
                self.new_data.set()
                for record in batch:
                    for observer in self.observers:
                        observer(record)

    @staticmethod
    def _encode_or_report(record: Record) -> tuple[int, int, bytes]:
        try:
            return encode(record)
        except TypeError as exc:  # a value orjson cannot represent: keep a trace, not the record
            log.error("record of %s cannot be encoded: %s", record.device, exc)
            return encode(Event(record.device, record.ts_ms, "record_unencodable", Severity.MAJOR,
                                {"reason": str(exc), "record": repr(record)[:500]}))

    def _write(self, rows: list[tuple[int, int, bytes]]) -> None:
        db = self._require_db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT INTO journal(kind, ts_ms, body) VALUES (?, ?, ?)", rows)
            added_events = sum(1 for r in rows if r[0] == EVENT)
            self._counts[EVENT] += added_events
            self._counts[SAMPLE] += len(rows) - added_events
            excess = self._counts[SAMPLE] + self._counts[EVENT] - self.max_records
            if excess > 0 and self._counts[SAMPLE] > 0:
                self._drop_oldest_samples(db, excess)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._recount(db)
            raise

    def _drop_oldest_samples(self, db: sqlite3.Connection, excess: int) -> None:
        doomed = db.execute(
            "SELECT MIN(seq), MAX(seq), COUNT(*) FROM "
            "(SELECT seq FROM journal WHERE kind=0 ORDER BY seq LIMIT ?)",
            (excess,),
        ).fetchone()
        first, last, n = doomed
        db.execute("DELETE FROM journal WHERE kind=0 AND seq BETWEEN ? AND ?", (first, last))
        self._counts[SAMPLE] -= n
        self._dropped_total += n
        db.execute(
            "INSERT INTO meta(key, value) VALUES ('dropped_total', ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (self._dropped_total,),
        )
        event = Event(
            JOURNAL_DEVICE, now_ms(), "samples_dropped", Severity.MAJOR,
            {"count": n, "first_seq": first, "last_seq": last, "dropped_total": self._dropped_total,
             "reason": f"journal full ({self.max_records} records)"},
        )
        db.execute("INSERT INTO journal(kind, ts_ms, body) VALUES (?, ?, ?)", encode(event))
        self._counts[EVENT] += 1

    def _recount(self, db: sqlite3.Connection) -> None:
        self._counts = [0, 0]
        for kind, n in db.execute("SELECT kind, COUNT(*) FROM journal GROUP BY kind"):
            self._counts[kind] = n

    def _require_db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("journal is not open")
        return self._db

    # -- reading for upload ------------------------------------------------------------------

    async def read_pending(self, max_records: int, max_bytes: int) -> PendingBatch | None:
        """The oldest unacknowledged records, in seq order, within both bounds (at least one)."""
        return await self._call(self._read_pending, max_records, max_bytes)

    def _read_pending(self, max_records: int, max_bytes: int) -> PendingBatch | None:
        db = self._require_db()
        out: list[bytes] = []
        seqs: list[int] = []
        size = 0
        for seq, body in db.execute("SELECT seq, body FROM journal ORDER BY seq LIMIT ?", (max_records,)):
            wire = b'{"seq":%d,%s' % (seq, body[1:])
            if out and size + len(wire) + 1 > max_bytes:
                break
            out.append(wire)
            seqs.append(seq)
            size += len(wire) + 1
        return PendingBatch(out, seqs) if out else None

    async def ack(self, upto_seq: int) -> int:
        """Delete every record up to `upto_seq`: the collector holds them."""
        return await self._call(self._ack, upto_seq)

    def _ack(self, upto_seq: int) -> int:
        db = self._require_db()
        db.execute("BEGIN IMMEDIATE")
        try:
            counts = dict(db.execute("SELECT kind, COUNT(*) FROM journal WHERE seq <= ? GROUP BY kind", (upto_seq,)))
            cur = db.execute("DELETE FROM journal WHERE seq <= ?", (upto_seq,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._counts[SAMPLE] -= counts.get(SAMPLE, 0)
        self._counts[EVENT] -= counts.get(EVENT, 0)
        return cur.rowcount

    async def quarantine(self, seq: int, reason: str) -> bool:
        """Move a record the collector refuses as malformed out of the upload queue, so it cannot
        block every later record; it stays on disk and a `record_rejected` event reports it."""
        return await self._call(self._quarantine, seq, reason)

    def _quarantine(self, seq: int, reason: str) -> bool:
        db = self._require_db()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT kind, body FROM journal WHERE seq=?", (seq,)).fetchone()
            if row is None:
                db.execute("ROLLBACK")
                return False
            db.execute("DELETE FROM journal WHERE seq=?", (seq,))
            db.execute("INSERT OR REPLACE INTO rejected(seq, body, reason) VALUES (?, ?, ?)", (seq, row[1], reason))
            event = Event(JOURNAL_DEVICE, now_ms(), "record_rejected", Severity.MAJOR,
                          {"seq": seq, "reason": reason[:500]})
            db.execute("INSERT INTO journal(kind, ts_ms, body) VALUES (?, ?, ?)", encode(event))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._counts[row[0]] -= 1
        self._counts[EVENT] += 1
        return True

    @property
    def backlog(self) -> int:
        """Committed records not yet acknowledged, from the counts kept in memory: no query, no thread."""
        return self._counts[SAMPLE] + self._counts[EVENT]

    async def stats(self) -> JournalStats:
        return await self._call(self._stats)

    def _stats(self) -> JournalStats:
        db = self._require_db()
        first, last = db.execute("SELECT MIN(seq), MAX(seq) FROM journal").fetchone()
        row = db.execute("SELECT ts_ms FROM journal ORDER BY seq LIMIT 1").fetchone()
        oldest = row[0] if row else None
        page_count = db.execute("PRAGMA page_count").fetchone()[0]
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        return JournalStats(
            samples=self._counts[SAMPLE], events=self._counts[EVENT], first_seq=first, last_seq=last,
            oldest_ts_ms=oldest, dropped_total=self._dropped_total, size_bytes=page_count * page_size,
        )
