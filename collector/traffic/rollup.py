"""Traffic rollups per detector, lane, approach and junction, per quarter hour, hour and day, from
the quarter-hour rows of the store (pure: rows in, buckets out).

A lane's, an approach's and a junction's vehicles are the sum of their counting detectors (a
speed pair's second loop sees the same vehicles and is left out); occupancy is the counted
time's occupied share; the mean speed is weighted by the vehicles that had one. A bucket is
`flagged` when any detector of it (the second loops included) was faulty in it: its count may
be low or high, and says so instead of passing for a quiet or busy hour. Days are Europe/Paris.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from collector.traffic.store import QUARTER_MS, IntervalRow, QuarterRow

PARIS = ZoneInfo("Europe/Paris")
HOUR_MS = 3_600_000
LEVELS = ("detector", "lane", "approach", "junction")
PERIODS = ("15min", "hour", "day")


def lane_id(approach: str, lane: int) -> str:
    return f"{approach}.{lane}"


def level_key(row: QuarterRow, level: str) -> str:
    match level:
        case "detector":
            return row.detector
        case "lane":
            return lane_id(row.approach, row.lane)
        case "approach":
            return row.approach
    return row.junction


def bucket_of(ms: int, period: str) -> int | str:
    if period == "15min":
        return ms - ms % QUARTER_MS
    if period == "hour":
        return ms - ms % HOUR_MS
    return datetime.fromtimestamp(ms / 1000, PARIS).date().isoformat()


@dataclass
class Bucket:
    key: str
    bucket: int | str
    vehicles: int = 0
    seconds: int = 0
    occupied_s: float = 0.0
    speed_veh: int = 0
    speed_sum: float = 0.0
    light: int = 0
    heavy: int = 0
    intervals: int = 0
    faulty: set[str] = field(default_factory=set)

    def add(self, row: QuarterRow, counted: bool) -> None:
        if row.faulty:
            self.faulty.add(row.detector)
        if not counted:
            return
        self.vehicles += row.vehicles
        self.seconds += row.seconds
        self.occupied_s += row.occupied_s
        self.speed_veh += row.speed_veh
        self.speed_sum += row.speed_sum
        self.light += row.light
        self.heavy += row.heavy
        self.intervals += row.intervals

    def doc(self) -> dict[str, Any]:
        return {
            "key": self.key, "bucket": self.bucket, "vehicles": self.vehicles,
            "occupancy_pct": round(100 * self.occupied_s / self.seconds, 2) if self.seconds else None,
            "speed_kmh": round(self.speed_sum / self.speed_veh, 1) if self.speed_veh else None,
            "light_veh": self.light, "heavy_veh": self.heavy, "intervals": self.intervals,
            "flagged": bool(self.faulty), "faulty_detectors": sorted(self.faulty),
        }


def roll(rows: Iterable[QuarterRow], level: str, period: str) -> list[Bucket]:
    """Buckets ordered by key then time."""
    out: dict[tuple[str, int | str], Bucket] = {}
    for row in rows:
        key = level_key(row, level)
        b = bucket_of(row.bucket_ms, period)
        bucket = out.get((key, b))
        if bucket is None:
            bucket = out[(key, b)] = Bucket(key, b)
        bucket.add(row, counted=level == "detector" or row.lane_count)
    return [out[k] for k in sorted(out, key=lambda k: (k[0], str(k[1]) if period == "day" else f"{k[1]:020d}"))]


@dataclass(frozen=True, slots=True)
class LaneInterval:
    """One lane in one counting interval, as open data publishes it: its counting detector's figures,
    flagged when any detector of the lane was faulty then."""

    gateway: str
    junction: str
    approach: str
    lane: int
    start_ms: int
    end_ms: int
    vehicles: int
    occupancy_pct: float
    speed_kmh: float | None
    light: int | None
    heavy: int | None
    faults: tuple[str, ...]  # "<detector>:<fault>"

    @property
    def lane_id(self) -> str:
        return lane_id(self.approach, self.lane)


def lane_intervals(rows: Iterable[IntervalRow]) -> list[LaneInterval]:
    """Per lane and interval, ordered by gateway, junction, approach, lane and time."""
    faults: dict[tuple[str, str, str, int, int], list[str]] = {}
    counted: dict[tuple[str, str, str, int, int], IntervalRow] = {}
    for r in rows:
        key = (r.gateway, r.junction, r.approach, r.lane, r.start_ms)
        if r.fault:
            faults.setdefault(key, []).extend(f"{r.detector}:{f}" for f in r.fault.split(","))
        if r.lane_count:
            counted[key] = r
    return [LaneInterval(r.gateway, r.junction, r.approach, r.lane, r.start_ms, r.start_ms + r.length_s * 1000,
                         r.vehicles, r.occupancy_pct, r.speed_kmh, r.light, r.heavy, tuple(sorted(faults.get(k, []))))
            for k, r in sorted(counted.items())]
