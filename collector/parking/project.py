"""The occupancy projection, without I/O: a space's samples in, its state, its hours and its
events out. Written once for the collector's projector, its tests and the CPU benchmark.

A sample's `parking_state` (occupied | free | unknown) that differs from the space's state closes
the running interval: its milliseconds go to the UTC hours it spans (`occupied_ms` when occupied,
`known_ms` when occupied or free: unknown time is neither), and a change between the last known
state and a new, different known one counts as one change in the hour it happened. A heartbeat
repeating the state changes nothing but the sensor's battery and radio figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from collector.parking.inventory import Zone
from collector.parking.store import EventRow, HourRow, SpaceRow

HOUR_MS = 3_600_000
OCCUPIED, FREE, UNKNOWN = "occupied", "free", "unknown"
KNOWN = (OCCUPIED, FREE)
STATES = (OCCUPIED, FREE, UNKNOWN)
OVERSTAY, OVERSTAY_CLEARED = "parking_overstay", "parking_overstay_cleared"

#: (space, bucket) -> [occupied_ms, known_ms, changes]
Hours = dict[tuple[str, int], list[int]]
_RADIO = (("battery_pct", "battery_pct"), ("battery_v", "battery_v"), ("rssi_dbm", "rssi_dbm"), ("snr_db", "snr_db"))


def bucket_of(ts_ms: int) -> int:
    return ts_ms - ts_ms % HOUR_MS


def credit(hours: Hours, space: str, state: str, t0: int, t1: int) -> None:
    """Add the interval [t0, t1) spent in `state` to the hours it spans."""
    if state not in KNOWN or t1 <= t0:
        return
    t = t0
    while t < t1:
        b = bucket_of(t)
        end = min(t1, b + HOUR_MS)
        cell = hours.setdefault((space, b), [0, 0, 0])
        if state == OCCUPIED:
            cell[0] += end - t
        cell[1] += end - t
        t = end


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def apply_sample(row: SpaceRow, ts_ms: int, values: Mapping[str, Any], hours: Hours, gateway_id: int,
                 events: list[EventRow]) -> None:
    """One sample of the space's sensor: its state, hours and (an overstay's end) events."""
    if row.last_ms is None or ts_ms > row.last_ms:
        row.last_ms = ts_ms
    for key, attr in _RADIO:
        v = _number(values.get(key))
        if v is not None:
            setattr(row, attr, v)
    state = values.get("parking_state")
    if state not in STATES or state == row.state:
        return
    # the agent dates an `unknown` by its own clock and a frame by the network server's: never go back
    t = ts_ms if row.since_ms is None else max(ts_ms, row.since_ms)
    if row.since_ms is not None:
        credit(hours, row.space, row.state, row.since_ms, t)
    if state in KNOWN:
        if row.known_state in KNOWN and state != row.known_state:
            hours.setdefault((row.space, bucket_of(t)), [0, 0, 0])[2] += 1
        row.known_state = state
    if row.overstay_ms is not None and state != OCCUPIED:
        events.append(EventRow(gateway_id, row.space, t, OVERSTAY_CLEARED, "info",
                               orjson.dumps({"zone": row.zone, "left_at": iso(t)}).decode()))
        row.overstay_ms = None
    row.state, row.since_ms = state, t


def hour_rows(hours: Hours) -> list[HourRow]:
    return [HourRow(space, b, c[0], c[1], c[2]) for (space, b), c in sorted(hours.items())]


def open_hours(spaces: Iterable[SpaceRow], now_ms: int, first_ms: int) -> list[HourRow]:
    """The running interval of every space in a known state, from max(since, first_ms) to now."""
    hours: Hours = {}
    for s in spaces:
        if s.since_ms is not None and s.state in KNOWN:
            credit(hours, s.space, s.state, max(s.since_ms, first_ms), now_ms)
    return hour_rows(hours)


def overstays(spaces: Iterable[SpaceRow], zones: Mapping[str, Zone], now_ms: int) -> list[SpaceRow]:
    """Spaces of a blue zone occupied longer than the zone's limit, not reported yet."""
    out = []
    for s in spaces:
        zone = zones.get(s.zone)
        if (zone is None or zone.category != "blue_zone" or zone.max_stay_min is None or s.state != OCCUPIED
                or s.overstay_ms is not None or s.since_ms is None):
            continue
        if now_ms - s.since_ms > zone.max_stay_min * 60_000:
            out.append(s)
    return out


def overstay_event(s: SpaceRow, zone: Zone, gateway_id: int, now_ms: int) -> EventRow:
    assert s.since_ms is not None and zone.max_stay_min is not None
    detail = {"zone": zone.id, "street": s.street, "max_stay_min": zone.max_stay_min,
              "occupied_since": iso(s.since_ms), "occupied_min": round((now_ms - s.since_ms) / 60_000, 1)}
    return EventRow(gateway_id, s.space, now_ms, OVERSTAY, "minor", orjson.dumps(detail).decode())
