"""Time series of one asset (a lamp, a cabinet, a junction) for the control centre's asset pages.

Read from the stored samples and events over a bounded time range, written once over the engine
primitives (collector.sqlprims: `$n` SQL both engines run). A range of few samples comes back as
the samples themselves; a longer one in buckets (the mean of each quantity, and for the supply
voltage its minimum and maximum too), at most TARGET_POINTS of them, so a chart never receives
more points than a screen has pixels.

- Commanded level: the `commanded_level_pct` of the agent's commands and the `level_cmd_pct` the
  controller reads back; a state, so it holds from one value to the next (filled forward).
- Energy and burn hours per day: the lamp's own samples through collector.rollup.roll_up, the very
  rules the gateway and commune rollups use (counter deltas, wraps, resets; burn from `lamp_on`
  with gaps of at most 15 minutes), so a cabinet's lamps add up to the cabinet's rollup.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from citygate_wire.batch import SampleRecord
from collector.rollup import roll_up
from collector.sqlprims import SqlPrimitives, marks

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
#: a longer range is refused: a year of one lamp's samples is more than a page should read at once
MAX_SPAN_MS = 92 * DAY_MS
#: samples one request reads at most (a lamp polled every 10 s for 92 days is 795,000: refused)
MAX_ROWS = 300_000
#: up to this many samples come back as they are; beyond, in buckets
RAW_MAX_POINTS = 2_000
TARGET_POINTS = 600
BUCKETS_MS = (5 * MINUTE_MS, 15 * MINUTE_MS, HOUR_MS, 3 * HOUR_MS, 6 * HOUR_MS)
#: quantities a lamp's chart draws, in the order of the series
LAMP_QUANTITIES = ("level_commanded_pct", "level_pct", "power_w", "voltage_v")
COMMANDED = ("commanded_level_pct", "level_cmd_pct")
#: devices one statement asks about: an index seek each, well under both engines' parameter limits
DEVICES_PER_QUERY = 500


class RangeTooLarge(ValueError):
    """More samples in the range than one request reads: ask for a shorter range."""


def json_doc(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    value = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def bucket_for(span_ms: int) -> int:
    """The smallest bucket that draws `span_ms` in at most TARGET_POINTS points (the largest otherwise)."""
    for size in BUCKETS_MS:
        if span_ms / size <= TARGET_POINTS:
            return size
    return BUCKETS_MS[-1]


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    ts_ms: int
    values: dict[str, Any]


@dataclass
class Series:
    """Columns for a chart: `ts` (UTC ms: a sample's, or a bucket's start) and one list per quantity."""

    bucket_ms: int  # 0: the samples as they are
    ts: list[int] = field(default_factory=list)
    columns: dict[str, list[float | None]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"bucket_ms": self.bucket_ms, "ts": self.ts, **self.columns}


def lamp_point(values: dict[str, Any]) -> dict[str, float | None]:
    """A lamp sample's chart quantities (None where the sample does not carry one)."""
    commanded = next((v for k in COMMANDED if (v := _number(values.get(k))) is not None), None)
    return {"level_commanded_pct": commanded, "level_pct": _number(values.get("level_pct")),
            "power_w": _number(values.get("power_w")), "voltage_v": _number(values.get("voltage_v"))}


def series(rows: Sequence[Row], first_ms: int, last_ms: int, quantities: Sequence[str],
           states: Iterable[str] = ("level_commanded_pct",), *, commanded_before: float | None = None) -> Series:
    """Raw points when they are few, else bucket means; the `states` hold forward (a level set stays set)."""
    points = [(r.ts_ms, lamp_point(r.values)) for r in rows]
    points = [(ts, p) for ts, p in points if any(p[q] is not None for q in quantities)]
    held = set(states)
    if len(points) <= RAW_MAX_POINTS:
        out = Series(0, [ts for ts, _ in points], {q: [p[q] for _, p in points] for q in quantities})
    else:
        out = _bucketed(points, first_ms, last_ms, quantities, held)
    for q in held & set(quantities):
        column, last = out.columns[q], commanded_before
        for i, v in enumerate(column):
            if v is None:
                column[i] = last
            else:
                last = v
    return out


def _bucketed(points: Sequence[tuple[int, dict[str, float | None]]], first_ms: int, last_ms: int,
              quantities: Sequence[str], held: set[str]) -> Series:
    size = bucket_for(last_ms - first_ms)
    sums: dict[int, dict[str, list[float]]] = {}
    for ts, p in points:
        b = ts - ts % size
        acc = sums.setdefault(b, {})
        for q in quantities:
            if (v := p[q]) is not None:
                acc.setdefault(q, []).append(v)
    out = Series(size, sorted(sums), {q: [] for q in quantities})
    if "voltage_v" in quantities:
        out.columns["voltage_min_v"], out.columns["voltage_max_v"] = [], []
    for b in out.ts:
        acc = sums[b]
        for q in quantities:
            values = acc.get(q)
            # a held state's bucket is where it ended up; a measurement's is its mean
            out.columns[q].append(None if not values else values[-1] if q in held else sum(values) / len(values))
        if "voltage_v" in quantities:
            volts = acc.get("voltage_v")
            out.columns["voltage_min_v"].append(min(volts) if volts else None)
            out.columns["voltage_max_v"].append(max(volts) if volts else None)
    return out


@dataclass(frozen=True, slots=True)
class DayUse:
    day: str  # Europe/Paris YYYY-MM-DD
    energy_wh: float
    burn_h: float

    def as_json(self) -> dict[str, Any]:
        return {"day": self.day, "energy_kwh": self.energy_wh / 1000, "burn_h": self.burn_h}


def days_of_use(device: str, rows: Sequence[Row], before: Row | None, first_day: str, last_day: str) -> list[DayUse]:
    """Energy and burn hours of one lamp per Paris day, by the rollups' own rules (collector.rollup).

    `before`: the lamp's newest sample before the range, the reference of the first counter delta
    and of the first burn interval (its own day is not reported)."""
    ordered = sorted(rows, key=lambda r: r.seq)
    records = [SampleRecord(r.seq, device, r.ts_ms, r.values) for r in ordered if r.values]
    if before is not None and before.values:
        records.insert(0, SampleRecord(before.seq, device, before.ts_ms, before.values))
    if not records:
        return []
    days = roll_up(records, {}).days
    return [DayUse(day, t.energy_wh, t.burn_ms / HOUR_MS) for day, t in sorted(days.items())
            if first_day <= day <= last_day]


# -- queries ----------------------------------------------------------------------------------


async def device_rows(db: SqlPrimitives, gateway_id: int, device: str, first_ms: int, last_ms: int) -> list[Row]:
    """The device's samples with first_ms <= ts_ms <= last_ms, in time order; RangeTooLarge past MAX_ROWS."""
    rows = await db._ctl_rows(
        "SELECT seq, ts_ms, vals FROM samples WHERE gateway_id = $1 AND device = $2 AND ts_ms BETWEEN $3 AND $4"
        " ORDER BY ts_ms, seq LIMIT $5",
        gateway_id, device, first_ms, last_ms, MAX_ROWS + 1)
    if len(rows) > MAX_ROWS:
        raise RangeTooLarge(f"more than {MAX_ROWS} samples of {device!r} in the range: ask for a shorter one")
    return [Row(int(r[0]), int(r[1]), json_doc(r[2])) for r in rows]


async def row_before(db: SqlPrimitives, gateway_id: int, device: str, first_ms: int) -> Row | None:
    """The device's newest sample before `first_ms` carrying an energy counter or lamp_on."""
    rows = await db._ctl_rows(
        "SELECT seq, ts_ms, vals FROM samples WHERE gateway_id = $1 AND device = $2 AND ts_ms < $3"
        " ORDER BY ts_ms DESC, seq DESC LIMIT 50",
        gateway_id, device, first_ms)
    for r in rows:
        values = json_doc(r[2])
        if "energy_wh" in values or "lamp_on" in values:
            return Row(int(r[0]), int(r[1]), values)
    return None


async def commanded_before(db: SqlPrimitives, gateway_id: int, device: str, first_ms: int) -> float | None:
    """The commanded level in force when the range starts (the newest one given before it)."""
    rows = await db._ctl_rows(
        "SELECT vals FROM samples WHERE gateway_id = $1 AND device = $2 AND ts_ms < $3"
        " ORDER BY ts_ms DESC, seq DESC LIMIT 200",
        gateway_id, device, first_ms)
    for (raw,) in rows:
        if (level := lamp_point(json_doc(raw))["level_commanded_pct"]) is not None:
            return level
    return None


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    device: str
    ts_ms: int
    code: str
    severity: str
    detail: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"device": self.device, "ts_ms": self.ts_ms, "code": self.code, "severity": self.severity,
                "detail": self.detail}


MAX_EVENTS = 1_000


async def device_events(db: SqlPrimitives, gateway_id: int, devices: Sequence[str] | None, first_ms: int,
                        last_ms: int) -> list[DeviceEvent]:
    """Events of some devices of a gateway (all, with None) in the range, newest first, MAX_EVENTS at most."""
    args: list[Any] = [gateway_id, first_ms, last_ms]
    clause = ""
    if devices is not None:
        if not devices:
            return []
        clause = " AND device IN (" + ", ".join(f"${4 + i}" for i in range(len(devices))) + ")"
        args += list(devices)
    rows = await db._ctl_rows(
        "SELECT device, ts_ms, code, severity, detail FROM events WHERE gateway_id = $1 AND ts_ms BETWEEN $2 AND $3"
        f"{clause} ORDER BY ts_ms DESC, id DESC LIMIT {MAX_EVENTS}", *args)
    return [DeviceEvent(str(r[0]), int(r[1]), str(r[2]), str(r[3]), json_doc(r[4])) for r in rows]


async def gateway_quantity(db: SqlPrimitives, gateway_id: int, quantity: str, first_ms: int,
                           last_ms: int) -> list[tuple[int, float]]:
    """(ts_ms, value) of one numeric quantity across every device of a gateway, in time order. Asked device
    by device through the (gateway, device, time) index: the range's samples only, not the cabinet's years."""
    devices = [str(r[0]) for r in await db._ctl_rows("SELECT device FROM device_state WHERE gateway_id = $1",
                                                     gateway_id)]
    rows: list[tuple[Any, ...]] = []
    for i in range(0, len(devices), DEVICES_PER_QUERY):
        part = devices[i:i + DEVICES_PER_QUERY]
        rows += await db._ctl_rows(
            f"SELECT ts_ms, vals->>'{quantity}' FROM samples WHERE gateway_id = $1 AND device IN ({marks(5, len(part))})"
            f" AND ts_ms BETWEEN $2 AND $3 AND vals->>'{quantity}' IS NOT NULL LIMIT $4",
            gateway_id, first_ms, last_ms, MAX_ROWS + 1 - len(rows), *part)
        if len(rows) > MAX_ROWS:
            break
    rows.sort(key=lambda r: int(r[0]))
    if len(rows) > MAX_ROWS:
        raise RangeTooLarge(f"more than {MAX_ROWS} {quantity} readings in the range: ask for a shorter one")
    out = []
    for ts, raw in rows:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            continue  # a device that sent text under a numeric name: not a reading
        if math.isfinite(value):
            out.append((int(ts), value))
    return out


def spread(readings: Sequence[tuple[int, float]], first_ms: int, last_ms: int) -> dict[str, Any]:
    """Mean, min and max of readings per bucket (several devices' readings at once)."""
    size = bucket_for(last_ms - first_ms) if len(readings) > RAW_MAX_POINTS else MINUTE_MS
    acc: dict[int, list[float]] = {}
    for ts, v in readings:
        acc.setdefault(ts - ts % size, []).append(v)
    ts_list = sorted(acc)
    return {"bucket_ms": size, "ts": ts_list, "mean": [sum(acc[b]) / len(acc[b]) for b in ts_list],
            "min": [min(acc[b]) for b in ts_list], "max": [max(acc[b]) for b in ts_list]}
