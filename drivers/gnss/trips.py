"""Trips of a vehicle, from its accepted fixes and, where wired, its ignition (pure, no I/O).

Without an ignition input a trip starts once the speed has stayed at or above `start_kmh` for
`start_after_s` (it starts at the first of those fixes) and ends once it has stayed below
`start_kmh` for `stop_after_s` (it ends at the first of those: a refuse truck waiting at the
depot gate is not on its round). With an ignition input, the trip is the ignition's on..off.
Idle time is the time in a trip at under `idle_kmh`. Time is the fixes' GNSS time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drivers.gnss.track import Judged

#: a gap between two fixes longer than this (a tunnel, a lost fix) is not counted as idle
MAX_IDLE_STEP_MS = 10_000


@dataclass(slots=True)
class Trip:
    started_ms: int
    start: tuple[float, float]
    by: str  # "speed" or "ignition"
    distance_m: float = 0.0
    idle_ms: int = 0
    cycles: int = 0
    last_ms: int = 0
    last: tuple[float, float] = (0.0, 0.0)
    still_since: int | None = None
    idle_at_still: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self, ended_ms: int, end: tuple[float, float], idle_ms: int) -> dict[str, Any]:
        return {
            "trip": self.started_ms, "by": self.by, "started_ms": self.started_ms, "ended_ms": ended_ms,
            "duration_s": round((ended_ms - self.started_ms) / 1000, 1), "distance_m": round(self.distance_m, 1),
            "idle_s": round(idle_ms / 1000, 1), "cycles": self.cycles,
            "start_lat": round(self.start[0], 6), "start_lon": round(self.start[1], 6),
            "lat": round(end[0], 6), "lon": round(end[1], 6),
        }


TripEvent = tuple[int, str, dict[str, Any]]  # (ts_ms, code, detail)


class Trips:
    def __init__(self, *, start_kmh: float, start_after_s: float, stop_after_s: float, idle_kmh: float,
                 ignition_wired: bool = False) -> None:
        self.start_kmh = start_kmh
        self.start_after_ms = int(start_after_s * 1000)
        self.stop_after_ms = int(stop_after_s * 1000)
        self.idle_kmh = idle_kmh
        self.ignition_wired = ignition_wired
        self.current: Trip | None = None
        self._moving_since: tuple[int, tuple[float, float]] | None = None
        self._moving_m = 0.0  # driven since _moving_since: the trip's first metres
        self._last_pos: tuple[int, tuple[float, float]] | None = None

    def on_fix(self, j: Judged) -> list[TripEvent]:
        """An accepted fix (with its time and position)."""
        fix = j.fix
        assert fix.ts_ms is not None and fix.lat is not None and fix.lon is not None
        ts, pos, speed = fix.ts_ms, (fix.lat, fix.lon), fix.speed_kmh or 0.0
        self._last_pos = (ts, pos)
        trip = self.current
        if trip is None:
            return [] if self.ignition_wired else self._maybe_start(ts, pos, speed, j.step_m)
        step_ms = ts - trip.last_ms
        trip.distance_m += j.step_m
        if speed < self.idle_kmh and 0 < step_ms <= MAX_IDLE_STEP_MS:
            trip.idle_ms += step_ms
        trip.last_ms, trip.last = ts, pos
        if self.ignition_wired:
            return []
        if speed >= self.start_kmh:
            trip.still_since = None
            return []
        if trip.still_since is None:
            trip.still_since, trip.idle_at_still = ts, trip.idle_ms
            trip.extra["still_at"] = pos
        if ts - trip.still_since >= self.stop_after_ms:
            return [self._end(trip.still_since, trip.extra["still_at"], trip.idle_at_still)]
        return []

    def _maybe_start(self, ts: int, pos: tuple[float, float], speed: float, step_m: float) -> list[TripEvent]:
        if speed < self.start_kmh:
            self._moving_since = None
            return []
        if self._moving_since is None:
            self._moving_since, self._moving_m = (ts, pos), 0.0
        else:
            self._moving_m += step_m
        since, where = self._moving_since
        if ts - since < self.start_after_ms:
            return []
        self._moving_since = None
        self.current = Trip(since, where, "speed", distance_m=self._moving_m, last_ms=ts, last=pos)
        return [(since, "trip_started", {"trip": since, "by": "speed", "lat": round(where[0], 6),
                                         "lon": round(where[1], 6)})]

    def on_ignition(self, on: bool, ts: int) -> list[TripEvent]:
        """An edge of the ignition input at `ts` (the vehicle's last position is where it happened)."""
        pos = self._last_pos[1] if self._last_pos else None
        if on and self.current is None:
            where = pos or (0.0, 0.0)
            self.current = Trip(ts, where, "ignition", last_ms=ts, last=where)
            detail: dict[str, Any] = {"trip": ts, "by": "ignition"}
            if pos:
                detail |= {"lat": round(pos[0], 6), "lon": round(pos[1], 6)}
            return [(ts, "trip_started", detail)]
        if not on and self.current is not None:
            return [self._end(ts, pos or self.current.last, self.current.idle_ms)]
        return []

    def cycle(self) -> int | None:
        """Count a bin-lift or compactor cycle in the current trip; the trip's id, or None outside a trip."""
        if self.current is None:
            return None
        self.current.cycles += 1
        return self.current.started_ms

    def _end(self, ended_ms: int, end: tuple[float, float], idle_ms: int) -> TripEvent:
        trip = self.current
        assert trip is not None
        self.current = None
        return (ended_ms, "trip_ended", trip.summary(ended_ms, end, idle_ms))
