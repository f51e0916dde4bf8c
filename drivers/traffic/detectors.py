"""Detectors of an intersection (its file's `[[detector]]` and `[counting]`), and their faults.

A detector (an inductive loop or a magnetometer) sits in one lane of one approach. Two loops a
few metres apart in one lane form a speed pair: the first names the second (`pair`); the
controller reports the pair's mean speed and length classes on the first, and the lane's count
is the first loop's (the second, `counts = false` by default, sees the same vehicles).

Faults, judged per interval on what the controller reported, with no I/O (`DetectorWatch`):

| code | when |
|---|---|
| `detector_stuck_on` | occupancy at or above 95 % for `stuck_on_s` (default 300 s) |
| `detector_stuck_off` | no vehicle for `stuck_off_s` (default 600 s) while the pair counts, or in a peak hour |
| `detector_chattering` | more vehicles than its occupancy allows (each vehicle occupies a loop at least 0.15 s) or more than one every 0.8 s, for `chatter_intervals` intervals (default 2) |

Each ends with `<code>_restored` after `restore_intervals` (default 2) healthy intervals.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from drivers.conf import ConfigTable
from drivers.errors import ConfigError
from drivers.traffic.counting import MAX_DETECTORS, DetectorCount

STUCK_ON = "detector_stuck_on"
STUCK_OFF = "detector_stuck_off"
CHATTERING = "detector_chattering"
FAULTS = (STUCK_ON, STUCK_OFF, CHATTERING)
RESTORED = "_restored"
STUCK_ON_PERMILLE = 950
#: the shortest time a vehicle occupies a loop (a 4 m car over a 2 m loop at 140 km/h)
MIN_DWELL_S = 0.15
#: the shortest headway in one lane: more vehicles than one each 0.8 s is a detector counting noise
MIN_HEADWAY_S = 0.8
#: below this many vehicles an interval says nothing about chattering
CHATTER_MIN_COUNT = 10
_ID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class Detector:
    id: str
    approach: str  # e.g. the signal group id of the approach
    lane: int  # 1-based, OpenStreetMap's convention for the approach's road (Smart Data Models laneId)
    pair: str | None = None  # the second loop of a speed pair, named on the first
    counts: bool = True  # its count is its lane's (False: a pair's second loop)
    label: str = ""


@dataclass(frozen=True, slots=True)
class Counting:
    stuck_on_s: int = 300
    stuck_off_s: int = 600
    chatter_intervals: int = 2
    restore_intervals: int = 2
    peak_hours: tuple[tuple[time, time], ...] = ((time(7, 30), time(9, 30)), (time(16, 30), time(19, 0)))

    def in_peak(self, local: datetime) -> bool:
        t = local.time()
        return any(a <= t < b for a, b in self.peak_hours)


def parse_detectors(raw: Any, counting_raw: Any) -> tuple[tuple[Detector, ...], Counting]:
    """The `[[detector]]` array and the `[counting]` table of an intersection file."""
    if raw is None:
        raw = []
    if not isinstance(raw, list) or len(raw) > MAX_DETECTORS:
        raise ConfigError("detector", f"expected an array of at most {MAX_DETECTORS} [[detector]] tables")
    dets: list[Detector] = []
    seconds: dict[str, str] = {}
    for i, draw in enumerate(raw):
        t = ConfigTable(draw, f"detector[{i}]")
        did = t.text("id", required=True)
        if not _ID.match(did) or any(d.id == did for d in dets):
            raise ConfigError(f"{t.key}.id", f"{did!r}: letters, digits, '_' and '-', 1-16 characters, unique")
        approach = t.text("approach", required=True)
        if not _ID.match(approach):
            raise ConfigError(f"{t.key}.approach", f"{approach!r}: letters, digits, '_' and '-', 1-16 characters")
        if "lane" not in t.raw:
            raise ConfigError(f"{t.key}.lane", "missing: the lane's number in its approach, 1 = the rightmost")
        lane = t.integer("lane", 1, lo=1, hi=16)
        pair = t.text("pair")
        if pair is not None:
            seconds[pair] = did
        dets.append(Detector(did, approach, lane, pair, t.boolean("counts", True), t.text("label", "")))
        t.done()
    dets = [_paired(d, dets, seconds, raw[i], f"detector[{i}]") for i, d in enumerate(dets)]
    lanes = {(d.approach, d.lane) for d in dets if d.counts}
    if len(lanes) != sum(d.counts for d in dets):
        raise ConfigError("detector", "one lane has two counting detectors: a pair's second loop counts = false")
    return tuple(dets), _counting(counting_raw)


def _paired(d: Detector, dets: list[Detector], seconds: Mapping[str, str], raw: Any, key: str) -> Detector:
    if d.pair is not None:
        other = next((o for o in dets if o.id == d.pair), None)
        if other is None or other.id == d.id or (other.approach, other.lane) != (d.approach, d.lane):
            raise ConfigError(f"{key}.pair", f"{d.pair!r}: the other loop of the pair, in the same approach and lane")
    if d.id in seconds and isinstance(raw, dict) and "counts" not in raw:
        return Detector(d.id, d.approach, d.lane, d.pair, False, d.label)  # a pair's second loop: same vehicles
    return d


def _counting(raw: Any) -> Counting:
    if raw is None:
        return Counting()
    t = ConfigTable(raw, "counting")
    default = Counting()
    spans = default.peak_hours
    if "peak_hours" in t.raw:
        t.used.add("peak_hours")
        spans = tuple(_span(s, f"counting.peak_hours[{i}]") for i, s in enumerate(_texts(t.raw["peak_hours"])))
    out = Counting(
        stuck_on_s=t.integer("stuck_on_s", default.stuck_on_s, lo=10, hi=86_400),
        stuck_off_s=t.integer("stuck_off_s", default.stuck_off_s, lo=10, hi=86_400),
        chatter_intervals=t.integer("chatter_intervals", default.chatter_intervals, lo=1, hi=1000),
        restore_intervals=t.integer("restore_intervals", default.restore_intervals, lo=1, hi=1000),
        peak_hours=spans,
    )
    t.done()
    return out


def _texts(raw: Any) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise ConfigError("counting.peak_hours", 'expected an array of "HH:MM-HH:MM" (local time)')
    return raw


def _span(text: str, key: str) -> tuple[time, time]:
    m = _SPAN.match(text)
    if not m:
        raise ConfigError(key, f'{text!r}: expected "HH:MM-HH:MM" (local time)')
    start = time(int(m[1]), int(m[2]))
    end = time.max if m[3] == "24" else time(int(m[3]), int(m[4]))
    if end <= start:
        raise ConfigError(key, f"{text!r}: the end is not after the start")
    return start, end


@dataclass(frozen=True, slots=True)
class Change:
    """A fault that began (`code`) or ended (`code` + "_restored") at the end of an interval."""

    detector: Detector
    code: str
    restored: bool
    detail: Mapping[str, Any]


@dataclass
class _Track:
    streak_s: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULTS, 0))
    healthy: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULTS, 0))
    active: set[str] = field(default_factory=set)


class DetectorWatch:
    """Judges each interval of every detector; returns the faults that began or ended."""

    def __init__(self, detectors: Sequence[Detector], counting: Counting, tz: ZoneInfo) -> None:
        self.detectors = tuple(detectors)
        self.counting = counting
        self.tz = tz
        self._index = {d.id: i for i, d in enumerate(self.detectors)}
        self._tracks = [_Track() for _ in self.detectors]

    def faults(self, i: int) -> list[str]:
        """The faults detector `i` has now, in FAULTS order."""
        return [c for c in FAULTS if c in self._tracks[i].active]

    def observe(self, start_s: int, length_s: int, counts: Sequence[DetectorCount]) -> list[Change]:
        peak = self.counting.in_peak(datetime.fromtimestamp(start_s, UTC).astimezone(self.tz))
        changes: list[Change] = []
        for i, (d, c) in enumerate(zip(self.detectors, counts, strict=True)):
            partner = self._partner(d)
            partner_counts = partner is not None and counts[partner].count > 0
            suspect = {
                STUCK_ON: c.occupancy_permille >= STUCK_ON_PERMILLE,
                STUCK_OFF: c.count == 0 and c.occupancy_permille == 0 and (partner_counts or peak),
                CHATTERING: _chattering(c, length_s),
            }
            changes += self._judge(i, d, suspect, length_s, c)
        return changes

    def _partner(self, d: Detector) -> int | None:
        if d.pair is not None:
            return self._index[d.pair]
        return next((self._index[o.id] for o in self.detectors if o.pair == d.id), None)

    def _judge(self, i: int, d: Detector, suspect: Mapping[str, bool], length_s: int, c: DetectorCount) -> list[Change]:
        track, cfg = self._tracks[i], self.counting
        need = {STUCK_ON: cfg.stuck_on_s, STUCK_OFF: cfg.stuck_off_s, CHATTERING: cfg.chatter_intervals * length_s}
        out = []
        for code in FAULTS:
            if suspect[code]:
                track.streak_s[code] += length_s
                track.healthy[code] = 0
                if code not in track.active and track.streak_s[code] >= need[code]:
                    track.active.add(code)
                    out.append(Change(d, code, False, _detail(d, c, track.streak_s[code])))
                continue
            track.streak_s[code] = 0
            # stuck off ends with the first vehicle counted again; a quiet interval off peak proves nothing
            healthy = c.count > 0 if code == STUCK_OFF else True
            if code in track.active and healthy:
                track.healthy[code] += 1
                if track.healthy[code] >= cfg.restore_intervals:
                    track.active.discard(code)
                    track.healthy[code] = 0
                    out.append(Change(d, code, True, _detail(d, c, 0)))
        return out


def _chattering(c: DetectorCount, length_s: int) -> bool:
    if c.count < CHATTER_MIN_COUNT:
        return False
    occupied_s = c.occupancy_permille / 1000 * length_s
    return c.count * MIN_DWELL_S > occupied_s or c.count * MIN_HEADWAY_S > length_s


def _detail(d: Detector, c: DetectorCount, for_s: int) -> dict[str, Any]:
    out: dict[str, Any] = {"detector": d.id, "approach": d.approach, "lane": d.lane, "count": c.count,
                           "occupancy_pct": c.occupancy_pct}
    if for_s:
        out["for_s"] = for_s
    return out
