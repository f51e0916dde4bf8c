"""The durable local journal: every record a driver hands over is committed here before anything else sees it.

SQLite in WAL mode, one writer thread, batched transactions. Each record gets the gateway's next
sequence number when committed; the uploader reads in sequence order and the collector's
acknowledgement marks records for deletion (see "Flash wear" below).

Sequence numbers start at the creation instant in microseconds since the epoch, so a journal
recreated after a wiped disk never reuses numbers the collector already holds (it would
discard them as duplicates).

Size bound: beyond `max_records` rows the oldest *samples* are deleted, never events; each
deletion is counted and recorded as a `samples_dropped` event in the same transaction, so the
collector learns of every loss.

Flash wear (docs/journal.md has the format and the measured figures). A commit with
synchronous=FULL costs at least one 4 KiB page of flash however little it carries, so what the
journal writes per record is set by how many records share a commit and how many pages each
transaction touches:
- samples are committed together: once no record has come for `idle_s` (a bus has finished its
  poll cycle) or `flush_interval_s` after the first, whichever is sooner; an event within
  `EVENT_FLUSH_S`, so alarms do not wait;
- a sample is stored compactly: its device and quantity names once per journal in `schema`,
  the row holds its values, JSON, comma-separated (53 bytes for an LC100 lamp, not 272);
- the sequence is the journal's own counter (AUTOINCREMENT rewrote sqlite_sequence's page at
  every commit), with `meta.seq_floor` keeping it from going back when the table empties;
- acknowledged records are deleted by range once `purge_after` of them have gathered (and on
  close), not at every acknowledgement, and without zeroing (`secure_delete`, on in Debian's
  SQLite, rewrote every page a delete touched). After a crash the acknowledged records not yet
  deleted are sent again: the collector stores each (gateway, seq) once and answers them as
  duplicates, so the store still holds each record exactly once.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
import re
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
INF = float("inf")
JOURNAL_DEVICE = "journal"
#: SQLite page cache. A queue appends at one end of one b-tree and reads and deletes at the other:
#: a few hundred KiB hold both ends (the OS caches the file), where SQLite's default 2 MiB fills with
#: pages the journal never reads again.
CACHE_KIB = 256
#: an event (a fault, an alarm) is committed this soon, whatever the samples' window
EVENT_FLUSH_S = 0.05
#: the on-disk format (PRAGMA user_version); 0 is the first, which `_upgrade` converts
FORMAT = 3
#: page size of a new journal: a commit rewrites whole pages, so small pages keep the commit of one
#: poll cycle (23 LC100 samples, 1.8 KB of rows) to 5 KB of WAL; 4096 made it 11.5 KB (bench_flash.py)
PAGE_SIZE = 512
#: WAL pages between checkpoints (2 MiB of 512-byte pages). A checkpoint writes every page changed
#: since the last one once, the b-tree's inner pages, the free list and the header among them: four
#: times fewer checkpoints than SQLite's 1,000 write those four times less often
CHECKPOINT_PAGES = 4000
#: an older journal up to this size is rebuilt with PAGE_SIZE when it is upgraded (a VACUUM: a
#: few seconds); a larger one, a long outage's backlog, keeps its pages rather than wait and
#: need as much free space again
VACUUM_MAX_BYTES = 64 * 2**20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    seq       INTEGER PRIMARY KEY,  -- assigned by the journal, contiguous, never reused
    kind      INTEGER NOT NULL,     -- 0 sample, 1 event
    ts_ms     INTEGER NOT NULL,
    schema_id INTEGER,              -- a sample's device and names (schema.id), NULL: body is wire JSON
    body      BLOB    NOT NULL      -- with schema_id: the values, JSON, comma-separated, else the wire record without seq
);
-- one row per (device, quantity names in order) ever journalled
CREATE TABLE IF NOT EXISTS schema (
    id     INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    names  BLOB NOT NULL,           -- JSON array of the quantity names
    UNIQUE (device, names)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
-- records the collector refused as malformed: kept here for the technician, reported by an event
CREATE TABLE IF NOT EXISTS rejected (
    seq    INTEGER PRIMARY KEY,
    body   BLOB NOT NULL,
    reason TEXT NOT NULL
);
"""

#: (kind, ts_ms, schema key or None, body): a record ready for its row
Row = tuple[int, int, tuple[str, tuple[str, ...]] | None, bytes]


def encode(record: Record) -> Row:
    """A record's row: a sample as its values under a (device, names) schema, an event as wire JSON.

    TypeError for what the wire cannot carry (a value orjson cannot write, a name not a string)."""
    if isinstance(record, Sample):
        names = tuple(record.values)
        if not all(isinstance(name, str) for name in names):
            raise TypeError("a quantity name is not a string")
        return SAMPLE, record.ts_ms, (record.device, names), orjson.dumps(list(record.values.values()))[1:-1]
    doc = {
        "kind": "event", "device": record.device, "ts_ms": record.ts_ms, "code": record.code,
        "severity": str(record.severity), "detail": record.detail,
    }
    return EVENT, record.ts_ms, None, orjson.dumps(doc, default=str)


#: a byte that may put a comma inside a value (a string, an array, an object)
_CAREFUL = re.compile(rb'["\[{]').search


class _Template:
    """Writes a compact sample back as its wire record, byte for byte what orjson makes of the dict:
    one %-format a schema, with a slot for each value, so a row costs a split and a format."""

    __slots__ = ("fmt", "size")

    def __init__(self, device: str, names: list[str]) -> None:
        head = b',"kind":"sample","device":' + orjson.dumps(device) + b',"ts_ms":'
        values = b",".join(orjson.dumps(name).replace(b"%", b"%%") + b":%s" for name in names)
        self.fmt = b'{"seq":%d' + head.replace(b"%", b"%%") + b'%d,"values":{' + values + b"}}"
        self.size = len(names)

    def wire(self, seq: int, ts_ms: int, body: bytes) -> bytes:
        if _CAREFUL(body) is None:
            parts = body.split(b",") if body else []
        else:  # a comma may sit inside a value
            parts = [orjson.dumps(v) for v in orjson.loads(b"[" + body + b"]")]
        if len(parts) != self.size:
            raise ValueError(f"journal row {seq}: {len(parts)} values for {self.size} names")
        return self.fmt % (seq, ts_ms, *parts)


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
    """Records read for upload: wire bodies with their seq spliced in, and the last seq; `body` is
    what `read_pending`'s `prepare` made of them (the uploader's compressed batch), if it was given one."""

    records: list[bytes]
    seqs: list[int]
    body: bytes | None = None

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
        flush_interval_s: float = 1.0,
        idle_s: float = 0.1,
        flush_max_pending: int = 5000,
        purge_after: int = 5000,
    ) -> None:
        self.path = path
        self.max_records = max_records
        self.synchronous = synchronous.upper()
        self.flush_interval_s = flush_interval_s
        self.idle_s = idle_s
        self.flush_max_pending = flush_max_pending
        #: acknowledged records kept until this many have gathered, then deleted in one transaction
        self.purge_after = purge_after
        self.observers: list[Callable[[Record], None]] = []
        self.new_data = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._db: sqlite3.Connection | None = None
        self._pending: list[Record] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flush_at = 0.0  # when the armed timer fires
        self._window_end = 0.0  # the pending records' latest commit time
        self._event_due = INF
        self._last_append = 0.0
        self._flush_tasks: set[asyncio.Task[None]] = set()
        self._commit_queued = False
        self._flush_lock = asyncio.Lock()
        self._counts = [0, 0]  # records not yet acknowledged, by kind
        self._dropped_total = 0
        self._next_seq = 0
        self._acked = 0  # everything up to here is at the collector; deleted at the next purge
        self._unpurged = 0
        #: the batch read ahead: (acked, bounds, generation, prepare) it follows, and its future
        self._ahead: tuple[tuple[Any, ...], asyncio.Future[tuple[PendingBatch | None, bool]]] | None = None
        #: counts the deletions of unacknowledged rows (quarantine, size bound): a batch read ahead
        #: before one may hold a deleted record
        self._generation = 0
        self._schemas: dict[tuple[str, tuple[str, ...]], int] = {}
        self._templates: dict[int, _Template] = {}
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
        db.execute(f"PRAGMA page_size={PAGE_SIZE}")  # only a new, empty file takes it
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        db.execute("PRAGMA secure_delete=OFF")
        db.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] < FORMAT:
                _upgrade(db)
        except BaseException:
            db.close()
            raise
        for kind, n in db.execute("SELECT kind, COUNT(*) FROM journal GROUP BY kind"):
            self._counts[kind] = n
        meta = dict(db.execute("SELECT key, value FROM meta"))
        self._dropped_total = meta.get("dropped_total", 0)
        first, last = (db.execute("SELECT MIN(seq) FROM journal").fetchone()[0],
                       db.execute("SELECT MAX(seq) FROM journal").fetchone()[0])
        self._next_seq = max(last or 0, meta["seq_floor"]) + 1
        # what was acknowledged but not yet purged before a crash is not known: it is sent again
        self._acked = self._next_seq - 1 if first is None else first - 1
        for sid, device, names in db.execute("SELECT id, device, names FROM schema"):
            self._add_schema(sid, device, orjson.loads(names))
        self._db = db

    def _add_schema(self, sid: int, device: str, names: list[str]) -> None:
        self._schemas[(device, tuple(names))] = sid
        self._templates[sid] = _Template(device, names)

    def _close_db(self) -> None:
        if self._db is not None:
            if self._unpurged:
                self._purge(self._db)
            self._db.close()
            self._db = None

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- writing -----------------------------------------------------------------------------

    def append(self, record: Record) -> None:
        """Queue a record; it is committed once appends pause for `idle_s`, within `flush_interval_s`
        at the latest (an event within EVENT_FLUSH_S, sooner when many are pending)."""
        if self._closed:
            raise RuntimeError("journal is closed")
        now = asyncio.get_running_loop().time()
        if not self._pending:
            self._window_end = now + self.flush_interval_s
        self._pending.append(record)
        self._last_append = now
        if len(self._pending) >= self.flush_max_pending:
            self._start_flush()
            return
        if isinstance(record, Event):
            self._event_due = min(self._event_due, now + EVENT_FLUSH_S)
        self._arm(self._due())

    def _due(self) -> float:
        return min(self._window_end, self._last_append + self.idle_s, self._event_due)

    def _arm(self, at: float) -> None:
        if self._flush_handle is not None:
            if self._flush_at <= at:
                return  # it fires first and looks again
            self._flush_handle.cancel()
        self._flush_handle = asyncio.get_running_loop().call_at(at, self._on_timer)
        self._flush_at = at

    def _on_timer(self) -> None:
        self._flush_handle = None
        due = self._due()
        if self._pending and due > asyncio.get_running_loop().time():
            self._arm(due)  # appends came since: the cycle goes on
        else:
            self._start_flush()

    def append_many(self, records: Iterable[Record]) -> None:
        for record in records:
            self.append(record)

    def _start_flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._commit_queued:  # one commit waiting is enough: it takes everything pending by then
            return
        self._commit_queued = True
        task = asyncio.get_running_loop().create_task(self._commit_due())
        self._flush_tasks.add(task)
        task.add_done_callback(self._flush_tasks.discard)

    async def _commit_due(self) -> None:
        """Commit what is pending once its time has come. Records appended during that commit wait
        for their own time (see `append`), not for the end of this one: a commit of its own for
        the few that came meanwhile would cost a page for a few records."""
        async with self._flush_lock:
            self._commit_queued = False
            if self._pending and not self._closed:
                await self._commit()

    async def flush(self) -> None:
        """Commit everything appended so far, then hand it to the observers.

        If the commit fails (disk full, I/O error) the records go back to the head of the queue,
        in order, and a retry is scheduled: nothing accepted is dropped on the floor."""
        async with self._flush_lock:
            while self._pending:
                await self._commit()

    async def _commit(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        batch, self._pending = self._pending, []
        self._event_due = INF
        try:
            await self._call(self._write, [self._encode_or_report(r) for r in batch])
        except Exception:
            self._pending[:0] = batch
            log.exception("journal commit of %d records failed; retrying in %.0f s", len(batch), RETRY_S)
            self._flush_handle = asyncio.get_running_loop().call_later(RETRY_S, self._start_flush)
            self._flush_at = asyncio.get_running_loop().time() + RETRY_S
            raise
        self.new_data.set()
        for record in batch:
            for observer in self.observers:
                observer(record)

    @staticmethod
    def _encode_or_report(record: Record) -> Row:
        try:
            return encode(record)
        except TypeError as exc:  # a value orjson cannot represent: keep a trace, not the record
            log.error("record of %s cannot be encoded: %s", record.device, exc)
            return encode(Event(record.device, record.ts_ms, "record_unencodable", Severity.MAJOR,
                                {"reason": str(exc), "record": repr(record)[:500]}))

    def _write(self, rows: list[Row]) -> None:
        db = self._require_db()
        new: dict[tuple[str, tuple[str, ...]], int] = {}
        seq = self._next_seq
        db.execute("BEGIN IMMEDIATE")
        try:
            out = []
            for kind, ts_ms, key, body in rows:
                out.append((seq, kind, ts_ms, None if key is None else self._schema_id(db, key, new), body))
                seq += 1
            db.executemany("INSERT INTO journal(seq, kind, ts_ms, schema_id, body) VALUES (?, ?, ?, ?, ?)", out)
            added_events = sum(1 for r in rows if r[0] == EVENT)
            counts = [self._counts[SAMPLE] + len(rows) - added_events, self._counts[EVENT] + added_events]
            excess = counts[SAMPLE] + counts[EVENT] - self.max_records
            if excess > 0 and counts[SAMPLE] > 0:
                seq = self._drop_oldest_samples(db, excess, seq, counts)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._counts = counts
        self._next_seq = seq
        for (device, names), sid in new.items():
            self._add_schema(sid, device, list(names))

    def _schema_id(self, db: sqlite3.Connection, key: tuple[str, tuple[str, ...]], new: dict[Any, int]) -> int:
        sid = self._schemas.get(key) or new.get(key)
        if sid is None:
            sid = new[key] = db.execute("INSERT INTO schema(device, names) VALUES (?, ?) RETURNING id",
                                        (key[0], orjson.dumps(key[1]))).fetchone()[0]
        return sid

    def _drop_oldest_samples(self, db: sqlite3.Connection, excess: int, seq: int, counts: list[int]) -> int:
        """Delete the oldest unacknowledged samples and journal a `samples_dropped`; the next seq."""
        first, last, n = db.execute(
            "SELECT MIN(seq), MAX(seq), COUNT(*) FROM "
            "(SELECT seq FROM journal WHERE kind=0 AND seq > ? ORDER BY seq LIMIT ?)",
            (self._acked, excess),
        ).fetchone()
        db.execute("DELETE FROM journal WHERE kind=0 AND seq BETWEEN ? AND ?", (first, last))
        counts[SAMPLE] -= n
        dropped_total = self._dropped_total + n
        _set_meta(db, "dropped_total", dropped_total)
        event = Event(
            JOURNAL_DEVICE, now_ms(), "samples_dropped", Severity.MAJOR,
            {"count": n, "first_seq": first, "last_seq": last, "dropped_total": dropped_total,
             "reason": f"journal full ({self.max_records} records)"},
        )
        self._insert_event(db, seq, event)
        counts[EVENT] += 1
        self._dropped_total = dropped_total
        self._generation += 1
        return seq + 1

    @staticmethod
    def _insert_event(db: sqlite3.Connection, seq: int, event: Event) -> None:
        kind, ts_ms, _, body = encode(event)
        db.execute("INSERT INTO journal(seq, kind, ts_ms, body) VALUES (?, ?, ?, ?)", (seq, kind, ts_ms, body))

    def _require_db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("journal is not open")
        return self._db

    # -- reading for upload ------------------------------------------------------------------

    async def read_pending(self, max_records: int, max_bytes: int,
                           prepare: Callable[[PendingBatch], bytes] | None = None) -> PendingBatch | None:
        """The oldest unacknowledged records, in seq order, within both bounds (at least one), with
        `prepare(batch)` as its `body` when given (run on the journal's thread, beside the read).

        When a batch fills its bounds (a backlog), the next one is read (and prepared) at once, while
        this one is on its way; it is handed out if nothing it depends on has changed by then."""
        key = (self._acked, max_records, max_bytes, self._generation, prepare)
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == key:
            batch, full = await ahead[1]
        else:
            batch, full = await self._call(self._read_pending, self._acked, max_records, max_bytes, prepare)
        if batch is not None and full:
            future = asyncio.get_running_loop().run_in_executor(
                self._executor, self._read_pending, batch.last_seq, max_records, max_bytes, prepare)
            future.add_done_callback(_retrieve)
            self._ahead = ((batch.last_seq, max_records, max_bytes, self._generation, prepare), future)
        return batch

    def _read_pending(self, after: int, max_records: int, max_bytes: int,
                      prepare: Callable[[PendingBatch], bytes] | None = None) -> tuple[PendingBatch | None, bool]:
        """The batch after seq `after`, and whether it was cut by a bound (more may follow)."""
        rows = self._require_db().execute(
            "SELECT seq, ts_ms, schema_id, body FROM journal WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, max_records),
        ).fetchall()
        if not rows:
            return None, False
        out = list(map(self._wire, rows))
        # each record costs its length and a comma in the JSON array; the first goes whatever its size
        if sum(map(len, out)) + len(out) <= max_bytes:
            n = len(out)
        else:
            n = max(1, bisect.bisect_right(list(itertools.accumulate(len(w) + 1 for w in out)), max_bytes))
        batch = PendingBatch(out[:n], [row[0] for row in rows[:n]])
        if prepare is not None:
            batch = PendingBatch(batch.records, batch.seqs, prepare(batch))
        return batch, n == max_records or n < len(rows)

    def _wire(self, row: tuple[int, int, int | None, bytes]) -> bytes:
        seq, ts_ms, sid, body = row
        if sid is None:
            return b'{"seq":%d,%s' % (seq, body[1:])
        return self._templates[sid].wire(seq, ts_ms, body)

    async def ack(self, upto_seq: int) -> int:
        """The collector holds every record up to `upto_seq`: they leave the backlog at once, and the
        disk at the next purge, which runs while the uploader sends the next batch. The number of
        records acknowledged."""
        n = await self._call(self._ack, upto_seq)
        if self._unpurged >= self.purge_after:
            future = asyncio.get_running_loop().run_in_executor(self._executor, self._purge_or_log)
            future.add_done_callback(_retrieve)
        return n

    def _ack(self, upto_seq: int) -> int:
        db = self._require_db()
        if upto_seq <= self._acked:
            return 0
        counts = dict(db.execute("SELECT kind, COUNT(*) FROM journal WHERE seq > ? AND seq <= ? GROUP BY kind",
                                 (self._acked, upto_seq)))
        self._acked = upto_seq
        n = counts.get(SAMPLE, 0) + counts.get(EVENT, 0)
        self._counts[SAMPLE] -= counts.get(SAMPLE, 0)
        self._counts[EVENT] -= counts.get(EVENT, 0)
        self._unpurged += n
        return n

    def _purge_or_log(self) -> None:
        if self._db is None or self._unpurged < self.purge_after:
            return
        try:
            self._purge(self._db)
        except sqlite3.Error:  # kept for the next purge: the rows are acknowledged whatever happens
            log.exception("journal purge of %d acknowledged records failed", self._unpurged)

    def _purge(self, db: sqlite3.Connection) -> None:
        """Delete every acknowledged record, by range, in one transaction."""
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM journal WHERE seq <= ?", (self._acked,))
            _set_meta(db, "seq_floor", self._acked)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._unpurged = 0

    async def quarantine(self, seq: int, reason: str) -> bool:
        """Move a record the collector refuses as malformed out of the upload queue, so it cannot
        block every later record; it stays on disk and a `record_rejected` event reports it."""
        return await self._call(self._quarantine, seq, reason)

    def _quarantine(self, seq: int, reason: str) -> bool:
        db = self._require_db()
        row = db.execute("SELECT kind, ts_ms, schema_id, body FROM journal WHERE seq=? AND seq > ?",
                         (seq, self._acked)).fetchone()
        if row is None:
            return False
        kind, ts_ms, sid, body = row
        wire = self._wire((seq, ts_ms, sid, body))
        event = Event(JOURNAL_DEVICE, now_ms(), "record_rejected", Severity.MAJOR, {"seq": seq, "reason": reason[:500]})
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM journal WHERE seq=?", (seq,))
            db.execute("INSERT OR REPLACE INTO rejected(seq, body, reason) VALUES (?, ?, ?)", (seq, wire, reason))
            self._insert_event(db, self._next_seq, event)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._next_seq += 1
        self._generation += 1
        self._counts[kind] -= 1
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
        # one end of the b-tree each: MIN and MAX in one query, or MIN with a WHERE, scan every row
        # (5 us a pending record at each call: the drain's own CPU, polling stats, was a third of it)
        first, oldest = db.execute("SELECT seq, ts_ms FROM journal WHERE seq > ? ORDER BY seq LIMIT 1",
                                   (self._acked,)).fetchone() or (None, None)
        last = db.execute("SELECT seq FROM journal WHERE seq > ? ORDER BY seq DESC LIMIT 1",
                          (self._acked,)).fetchone()
        last = None if last is None else last[0]
        page_count = db.execute("PRAGMA page_count").fetchone()[0]
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        return JournalStats(
            samples=self._counts[SAMPLE], events=self._counts[EVENT], first_seq=first, last_seq=last,
            oldest_ts_ms=oldest, dropped_total=self._dropped_total, size_bytes=page_count * page_size,
        )


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Take a background job's exception, so a batch read ahead and never used raises no warning."""
    if not future.cancelled() and future.exception() is not None:
        log.debug("journal background job failed: %s", future.exception())


def _set_meta(db: sqlite3.Connection, key: str, value: int) -> None:
    db.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
               (key, value))


def _upgrade(db: sqlite3.Connection) -> None:
    """Bring a new journal, or one of the first format, to FORMAT, in one transaction.

    The first format numbered rows by AUTOINCREMENT and kept every record as wire JSON: its rows
    move to the new table as they are (schema_id NULL, which `_read_pending` sends unchanged) and
    its sqlite_sequence value becomes `seq_floor`, so no number is reused. Then an old file of up
    to VACUUM_MAX_BYTES is rebuilt with PAGE_SIZE."""
    db.execute("BEGIN IMMEDIATE")
    try:
        if db.execute("PRAGMA user_version").fetchone()[0] == 2:  # format 2 kept the array's brackets
            db.execute("UPDATE journal SET body = substr(body, 2, length(body) - 2) WHERE schema_id IS NOT NULL")
            db.execute(f"PRAGMA user_version={FORMAT}")
            old = False
        else:
            old = _convert(db)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    pages, size = db.execute("PRAGMA page_count").fetchone()[0], db.execute("PRAGMA page_size").fetchone()[0]
    if old and size != PAGE_SIZE and pages * size <= VACUUM_MAX_BYTES:
        db.execute("PRAGMA journal_mode=DELETE")  # the page size of a WAL database cannot change
        db.execute(f"PRAGMA page_size={PAGE_SIZE}")
        db.execute("VACUUM")
        db.execute("PRAGMA journal_mode=WAL")


def _convert(db: sqlite3.Connection) -> bool:
    """The tables of FORMAT, with the rows of the first format if there were any; whether there were."""
    old = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='journal'").fetchone() is not None
    if old:
        db.execute("ALTER TABLE journal RENAME TO journal_v1")
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    floor = time.time_ns() // 1000
    if old:
        db.execute("INSERT INTO journal(seq, kind, ts_ms, body) SELECT seq, kind, ts_ms, body FROM journal_v1")
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name='journal_v1'").fetchone()
        floor = row[0] if row else 0
        db.execute("DROP TABLE journal_v1")  # and its sqlite_sequence row
    db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('seq_floor', ?)", (floor,))
    db.execute(f"PRAGMA user_version={FORMAT}")
    return old
