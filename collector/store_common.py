"""What the SQLite and PostgreSQL stores share: rollup tables, their upserts, device-state rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from collector.rollup import BatchRollup, DeviceState, Totals
from collector.store import ROLLUP_COLUMNS, Level, Period

#: (level, period) -> (table, key column). The metropolis level reads the commune tables.
ROLLUP_TABLES: dict[tuple[str, str], tuple[str, str]] = {
    ("gateway", "hour"): ("rollup_gateway_hour", "gateway_id"),
    ("gateway", "day"): ("rollup_gateway_day", "gateway_id"),
    ("commune", "hour"): ("rollup_commune_hour", "commune"),
    ("commune", "day"): ("rollup_commune_day", "commune"),
}

STATE_COLUMNS = ("last_ts_ms", "energy_wh", "volume_m3", "lamp_on", "on_hour", "on_day", "fault_hour", "fault_day")


def upsert_sql(table: str, key: str, param: Callable[[int], str]) -> str:
    """INSERT ... ON CONFLICT DO UPDATE adding the new totals; the same text works on both engines."""
    cols = (key, "bucket", *ROLLUP_COLUMNS)
    values = ", ".join(param(i + 1) for i in range(len(cols)))
    adds = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in ROLLUP_COLUMNS)
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({values}) ON CONFLICT ({key}, bucket) DO UPDATE SET {adds}"


def state_upsert_sql(param: Callable[[int], str]) -> str:
    cols = ("gateway_id", "device", *STATE_COLUMNS)
    values = ", ".join(param(i + 1) for i in range(len(cols)))
    sets = ", ".join(f"{c} = excluded.{c}" for c in STATE_COLUMNS)
    return (f"INSERT INTO device_state ({', '.join(cols)}) VALUES ({values})"
            f" ON CONFLICT (gateway_id, device) DO UPDATE SET {sets}")


def rollup_query(level: Level, period: Period, param: Callable[[int], str]) -> str:
    """Buckets of one key between two bucket bounds; the metropolis sums the communes."""
    table, key = ROLLUP_TABLES[("commune" if level == "metropolis" else level, period)]
    if level == "metropolis":
        sums = ", ".join(f"SUM({c})" for c in ROLLUP_COLUMNS)
        return (f"SELECT bucket, {sums} FROM {table} WHERE bucket BETWEEN {param(1)} AND {param(2)}"
                " GROUP BY bucket ORDER BY bucket")
    return (f"SELECT bucket, {', '.join(ROLLUP_COLUMNS)} FROM {table}"
            f" WHERE {key} = {param(1)} AND bucket BETWEEN {param(2)} AND {param(3)} ORDER BY bucket")


def _row(key: Any, bucket: Any, t: Totals) -> tuple[Any, ...]:
    return (key, bucket, t.energy_wh, t.burn_ms, t.lamps_on, t.lamps_faulty, t.water_m3, t.alarms, t.samples,
            t.events)


def rollup_rows(gateway_id: int, commune: str, rolled: BatchRollup) -> dict[str, list[tuple[Any, ...]]]:
    """Rows to upsert, by table, in the order to apply them.

    Several gateways of a commune update the same commune rows concurrently (PostgreSQL): every
    transaction takes the row locks table by table in ascending bucket order, so none deadlock."""
    hours, days = sorted(rolled.hours.items()), sorted(rolled.days.items())
    return {
        "rollup_gateway_hour": [_row(gateway_id, b, t) for b, t in hours],
        "rollup_gateway_day": [_row(gateway_id, b, t) for b, t in days],
        "rollup_commune_hour": [_row(commune, b, t) for b, t in hours],
        "rollup_commune_day": [_row(commune, b, t) for b, t in days],
    }


def state_rows(gateway_id: int, changed: dict[str, DeviceState]) -> list[tuple[Any, ...]]:
    return [
        (gateway_id, device, s.last_ts_ms, s.energy_wh, s.volume_m3, s.lamp_on, s.on_hour, s.on_day, s.fault_hour,
         s.fault_day)
        for device, s in changed.items()
    ]


def state_from_row(row: Sequence[Any]) -> DeviceState:
    """A state from the STATE_COLUMNS of a row."""
    lamp_on = row[3]
    return DeviceState(row[0], row[1], row[2], None if lamp_on is None else bool(lamp_on), row[4], row[5], row[6],
                       row[7])
