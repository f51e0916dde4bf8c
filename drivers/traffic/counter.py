"""Reads a controller's counting intervals once each, and journals one Sample per detector per interval.

The controller keeps its last `kept` intervals, each with its index. The reader keeps a cursor:
the index of the last interval whose samples are surely in the journal, in
`<state_dir>/signals-<bus>.counts.json` (temporary file, fsync, rename). The journal commits the
samples it is handed within its flush window (1 s by default: edge_agent/journal.py), so an
interval's index is saved only SETTLE_S after its samples went to the sink; a crash before then
loses at most samples the restarted reader reads again from the ring. So a restart reads on
from the interval after the saved cursor: nothing missed while the ring still holds it, and the
few intervals of the last seconds before a crash read twice, which the collector stores once (it
keys counts by gateway, detector and interval start). An interval the ring no longer holds is
reported (`counts_lost`, with how many), never made up.

Without a state folder (tests, a technician's run) the cursor lives in memory: a first start
reads every interval the controller still holds.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson

from citygate_wire import traffic as wire
from drivers.errors import DecodeError
from drivers.model import Event, Record, Sample, Severity, Value
from drivers.traffic.config import Timings
from drivers.traffic.counting import (
    COUNTING_WORDS,
    IR_COUNTING,
    READ_CHUNK,
    CountingHeader,
    Interval,
    decode_header,
    decode_interval,
)
from drivers.traffic.detectors import RESTORED, DetectorWatch

log = logging.getLogger("citygate.traffic")

#: seconds after its samples went to the sink that an interval is saved as read: three times the
#: journal's default flush window
SETTLE_S = 3.0
#: a controller that counts nothing is asked again this often (controller seconds)
RECHECK_S = 60

ReadInputs = Callable[[int, int], Awaitable[Sequence[int]]]
Emit = Callable[[Record], None]


class CountReader:
    """One controller's counts: call `poll()` at each of the bus's polls (under its link lock)."""

    def __init__(self, bus: str, timings: Timings, tz: ZoneInfo, *, read: ReadInputs, emit: Emit,
                 cursor_path: Path | None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.bus = bus
        self.junction = timings.intersection.id
        self.detectors = timings.detectors
        self.watch = DetectorWatch(timings.detectors, timings.counting, tz)
        self._read = read
        self._emit = emit
        self._path = cursor_path
        self._monotonic = monotonic
        #: the last interval read (in memory), and the last one saved as surely journalled; the file is
        #: read at the first poll (building a bus opens nothing: tests/test_driver_registry.py)
        self.cursor: int | None = None
        self.saved: int | None = None
        self._loaded = False
        self._unsaved: list[tuple[float, int]] = []  # (when handed to the sink, index)
        self._mismatch_reported = False
        self._silent_logged = False
        self._wait: tuple[int, int] | None = None  # controller clock span [from, to) with nothing new to read

    def device(self, detector: str) -> str:
        return f"{self.bus}.{detector}"

    async def poll(self, clock_s: int | None = None) -> int:
        """Journal every interval completed since the cursor; returns how many. `clock_s`, the controller's
        clock at this poll, spares the header read until the next interval can have ended."""
        if not self._loaded:
            self.cursor = self.saved = _load(self._path)
            self._loaded = True
        self._save_settled()
        if clock_s is not None and self._wait is not None and self._wait[0] <= clock_s < self._wait[1]:
            return 0
        header = decode_header(list(await self._read(IR_COUNTING, COUNTING_WORDS)))
        if header.detectors == 0:  # no detector card, or counting switched off: nothing to read, said once
            if not self._silent_logged:
                self._silent_logged = True
                log.warning("%s: the controller counts nothing; %d detectors configured", self.bus, len(self.detectors))
            self._wait = None if clock_s is None else (clock_s, clock_s + RECHECK_S)
            return 0
        # the next interval ends at (last + 2) x length; a clock that went back reads at once
        end = (header.last_index + 2) * header.interval_s
        self._wait = (end - 2 * header.interval_s, end)
        if header.detectors != len(self.detectors):
            if not self._mismatch_reported:
                self._mismatch_reported = True
                self._emit(Event(self.bus, self._ts(header.last_index * header.interval_s), "counting_mismatch",
                                 Severity.MAJOR, {"controller_detectors": header.detectors,
                                                  "configured_detectors": len(self.detectors)}))
            return 0
        self._mismatch_reported = False
        if header.last_index == 0 or (self.cursor is not None and self.cursor >= header.last_index):
            return 0
        fresh = self.cursor is None  # a first start: the ring's empty or older slots were never ours to read
        first = header.oldest_kept() if self.cursor is None else self.cursor + 1
        if first < header.oldest_kept():
            self._lost(first, header.oldest_kept() - 1, header)
            first = header.oldest_kept()
        done = 0
        for index in range(first, header.last_index + 1):
            interval = await self._slot(header, index)
            if interval is not None:
                self._journal(interval)
                done += 1
            elif not fresh:
                self._lost(index, index, header)
            self._advance(index)
        return done

    async def _slot(self, header: CountingHeader, index: int) -> Interval | None:
        """Interval `index` from its ring slot; None when the slot holds another one (the controller was not
        counting then, or has already overwritten it)."""
        address, size = header.slot_address(index), header.slot_words()
        words: list[int] = []
        for offset in range(0, size, READ_CHUNK):
            words += await self._read(address + offset, min(READ_CHUNK, size - offset))
        if (words[0] << 16 | words[1]) != index:
            return None
        try:
            return decode_interval(words, header.detectors)
        except DecodeError as exc:
            raise DecodeError(f"{self.bus}: {exc}") from None

    def _journal(self, iv: Interval) -> None:
        ts = iv.end_s * 1000
        changes = self.watch.observe(iv.start_s, iv.length_s, iv.counts)
        for i, (d, c) in enumerate(zip(self.detectors, iv.counts, strict=True)):
            values: dict[str, Value] = {
                wire.JUNCTION: self.junction, wire.APPROACH: d.approach, wire.LANE: d.lane, wire.LANE_COUNT: d.counts,
                wire.INTERVAL: iv.index, wire.INTERVAL_S: iv.length_s, wire.COUNT: c.count,
                wire.OCCUPANCY: c.occupancy_pct, wire.SPEED: c.speed_kmh, wire.LIGHT: c.light, wire.HEAVY: c.heavy,
                wire.FAULT: ",".join(self.watch.faults(i)) or None,
            }
            self._emit(Sample(self.device(d.id), ts, values))
        for ch in changes:
            code = ch.code + RESTORED if ch.restored else ch.code
            severity = Severity.INFO if ch.restored else Severity.MINOR
            self._emit(Event(self.device(ch.detector.id), ts, code, severity,
                             {**ch.detail, "junction": self.junction, "interval": iv.index}))

    def _lost(self, first: int, last: int, header: CountingHeader) -> None:
        log.warning("%s: counting intervals %d..%d no longer held by the controller", self.bus, first, last)
        self._emit(Event(self.bus, self._ts(last * header.interval_s + header.interval_s), "counts_lost", Severity.MAJOR,
                         {"junction": self.junction, "from_interval": first, "to_interval": last,
                          "intervals": last - first + 1, "interval_s": header.interval_s}))

    def _advance(self, index: int) -> None:
        self.cursor = index
        self._unsaved.append((self._monotonic(), index))

    def _save_settled(self) -> None:
        """Save the newest interval handed to the sink at least SETTLE_S ago."""
        now = self._monotonic()
        settled = [i for t, i in self._unsaved if now - t >= SETTLE_S]
        if not settled:
            return
        self._unsaved = [(t, i) for t, i in self._unsaved if now - t < SETTLE_S]
        self.saved = max(settled)
        if self._path is not None:
            _store(self._path, self.saved)

    @staticmethod
    def _ts(seconds: int) -> int:
        return seconds * 1000


def _load(path: Path | None) -> int | None:
    if path is None:
        return None
    try:
        doc = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError) as exc:
        # a cursor we cannot read: read what the controller holds again (the collector stores each once)
        log.warning("%s: unreadable counting cursor (%s): reading every interval the controller holds", path, exc)
        return None
    index = doc.get("last_interval") if isinstance(doc, dict) else None
    return index if isinstance(index, int) and index >= 0 else None


def _store(path: Path, index: int) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(orjson.dumps({"last_interval": index}))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
