"""Occupancy per street or zone, now, per hour and per day, from the spaces and their hours
(pure: the routes, the CSV and the tests share it).

- now: spaces occupied, free and unknown.
- hour: mean occupancy = occupied ms / known ms (time with an unknown state is left out, never
  counted as free), coverage = known ms / (spaces x 1 h), changes.
- day (Europe/Paris): the same over the day's hours, and turnover = changes per space per day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from collector.parking.project import HOUR_MS, OCCUPIED, UNKNOWN
from collector.parking.store import HourRow, SpaceRow
from collector.rollup import PARIS

BY = ("street", "zone")


def key_of(s: SpaceRow, by: str) -> str:
    return s.street if by == "street" else s.zone


@dataclass(slots=True)
class Totals:
    occupied_ms: int = 0
    known_ms: int = 0
    changes: int = 0

    def add(self, h: HourRow) -> None:
        self.occupied_ms += h.occupied_ms
        self.known_ms += h.known_ms
        self.changes += h.changes


def now_counts(spaces: Iterable[SpaceRow], by: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for s in spaces:
        c = out.setdefault(key_of(s, by), {"spaces": 0, "occupied": 0, "free": 0, "unknown": 0})
        c["spaces"] += 1
        c[s.state if s.state in (OCCUPIED, "free") else UNKNOWN] += 1
    return out


def by_hour(spaces: Mapping[str, SpaceRow], hours: Iterable[HourRow], by: str) -> dict[tuple[str, int], Totals]:
    out: dict[tuple[str, int], Totals] = {}
    for h in hours:
        s = spaces.get(h.space)
        if s is not None:
            out.setdefault((key_of(s, by), h.bucket), Totals()).add(h)
    return out


def local_day(bucket_ms: int) -> date:
    return datetime.fromtimestamp(bucket_ms / 1000, PARIS).date()


def by_day(hourly: Mapping[tuple[str, int], Totals]) -> dict[tuple[str, date], Totals]:
    out: dict[tuple[str, date], Totals] = {}
    for (key, bucket), t in hourly.items():
        d = out.setdefault((key, local_day(bucket)), Totals())
        d.occupied_ms += t.occupied_ms
        d.known_ms += t.known_ms
        d.changes += t.changes
    return out


def occupancy(t: Totals) -> float | None:
    return None if t.known_ms == 0 else round(t.occupied_ms / t.known_ms, 4)


def coverage(t: Totals, spaces: int, span_ms: int) -> float:
    return round(t.known_ms / (spaces * span_ms), 4) if spaces else 0.0


def hour_row(key: str, bucket: int, t: Totals, spaces: int) -> dict[str, object]:
    return {"key": key, "hour": bucket, "spaces": spaces, "occupancy": occupancy(t),
            "coverage": coverage(t, spaces, HOUR_MS), "changes": t.changes, "occupied_ms": t.occupied_ms,
            "known_ms": t.known_ms}


def day_row(key: str, day: date, t: Totals, spaces: int) -> dict[str, object]:
    return {"key": key, "date": day.isoformat(), "spaces": spaces, "occupancy": occupancy(t),
            "coverage": coverage(t, spaces, 24 * HOUR_MS), "changes": t.changes,
            "turnover": round(t.changes / spaces, 3) if spaces else None}
