"""Traffic counts in the collector store (both engines, migration 8).

`traffic_intervals`: one row per detector and counting interval, keyed (gateway, detector,
start): the samples of citygate_wire.traffic. `traffic_rollup_15min`: per detector and quarter
hour, the sums every coarser rollup (lane, approach, junction; hour, day) is computed from.

Both are written inside the ingest transaction (collector.store_common's InsertTraffic step),
from the batch's newly stored samples only; an interval row that already exists (the agent read
an interval again after a crash between journalling it and saving its cursor) is not inserted,
and only the rows inserted are added to the rollup: each interval counts once, however often it
arrives.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

from citygate_wire import traffic as wire
from citygate_wire.batch import WireRecord
from collector.control.engines import sqlite_sql
from collector.sqlprims import SqlPrimitives

QUARTER_MS = 15 * 60_000

_TABLES = """
CREATE TABLE traffic_intervals (
    gateway_id    INTEGER NOT NULL,
    detector      TEXT    NOT NULL,      -- the sample's device: <bus>.<detector id>
    start_ms      BIGINT  NOT NULL,
    length_s      INTEGER NOT NULL,
    junction      TEXT    NOT NULL,
    approach      TEXT    NOT NULL,
    lane          INTEGER NOT NULL,
    lane_count    INTEGER NOT NULL,      -- 1: its count is its lane's (0: a speed pair's second loop)
    vehicles      INTEGER NOT NULL,
    occupancy_pct {real} NOT NULL,
    speed_kmh     {real},
    light         INTEGER,
    heavy         INTEGER,
    fault         TEXT,                  -- the detector's faults, comma-separated (NULL: healthy)
    PRIMARY KEY (gateway_id, detector, start_ms)
);
CREATE INDEX traffic_intervals_by_junction ON traffic_intervals (junction, start_ms);
CREATE INDEX traffic_intervals_by_time ON traffic_intervals (start_ms);
CREATE TABLE traffic_rollup_15min (
    gateway_id INTEGER NOT NULL,
    detector   TEXT    NOT NULL,
    bucket_ms  BIGINT  NOT NULL,         -- start of the quarter hour, UTC epoch ms
    junction   TEXT    NOT NULL,
    approach   TEXT    NOT NULL,
    lane       INTEGER NOT NULL,
    lane_count INTEGER NOT NULL,
    intervals  INTEGER NOT NULL,
    seconds    INTEGER NOT NULL,         -- counted time
    vehicles   INTEGER NOT NULL,
    occupied_s {real}  NOT NULL,         -- occupancy x length, summed
    speed_veh  INTEGER NOT NULL,         -- vehicles of the intervals with a mean speed
    speed_sum  {real}  NOT NULL,         -- mean speed x those vehicles, summed
    light      INTEGER NOT NULL,
    heavy      INTEGER NOT NULL,
    faulty     INTEGER NOT NULL,         -- intervals the detector was faulty in
    PRIMARY KEY (gateway_id, detector, bucket_ms)
);
CREATE INDEX traffic_rollup_by_junction ON traffic_rollup_15min (junction, bucket_ms);
CREATE TABLE traffic_junctions (
    junction   TEXT    NOT NULL,
    gateway_id INTEGER NOT NULL,
    newest_ms  BIGINT  NOT NULL,         -- start of the newest quarter hour it sent counts for
    PRIMARY KEY (junction, gateway_id)
);
"""

SQLITE_MIGRATION = _TABLES.format(real="REAL")
PG_MIGRATION = _TABLES.format(real="DOUBLE PRECISION")

_INTERVAL_COLS = ("gateway_id", "detector", "start_ms", "length_s", "junction", "approach", "lane", "lane_count",
                  "vehicles", "occupancy_pct", "speed_kmh", "light", "heavy", "fault")
_INSERT = (f"INSERT INTO traffic_intervals ({', '.join(_INTERVAL_COLS)})"
           f" VALUES ({', '.join(f'${i + 1}' for i in range(len(_INTERVAL_COLS)))})"
           " ON CONFLICT (gateway_id, detector, start_ms) DO NOTHING")
_SUMS = ("intervals", "seconds", "vehicles", "occupied_s", "speed_veh", "speed_sum", "light", "heavy", "faulty")
_ROLLUP_COLS = ("gateway_id", "detector", "bucket_ms", "junction", "approach", "lane", "lane_count", *_SUMS)
_UPSERT = (f"INSERT INTO traffic_rollup_15min ({', '.join(_ROLLUP_COLS)})"
           f" VALUES ({', '.join(f'${i + 1}' for i in range(len(_ROLLUP_COLS)))})"
           " ON CONFLICT (gateway_id, detector, bucket_ms) DO UPDATE SET "
           + ", ".join(f"{c} = traffic_rollup_15min.{c} + excluded.{c}" for c in _SUMS))
_SQLITE_INSERT, _SQLITE_UPSERT = sqlite_sql(_INSERT), sqlite_sql(_UPSERT)
_JUNCTION = ("INSERT INTO traffic_junctions (junction, gateway_id, newest_ms) VALUES ($1, $2, $3)"
             " ON CONFLICT (junction, gateway_id) DO UPDATE SET newest_ms = {bigger}(traffic_junctions.newest_ms,"
             " excluded.newest_ms)")
_SQLITE_JUNCTION, _PG_JUNCTION = sqlite_sql(_JUNCTION.format(bigger="MAX")), _JUNCTION.format(bigger="GREATEST")


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def traffic_rows(gid: int, records: Sequence[WireRecord]) -> list[tuple[Any, ...]]:
    """The interval rows among a batch's new records: the samples with an interval index whose
    values are whole; a malformed one is left a plain sample (it is stored all the same)."""
    rows = []
    for r in records:
        if r.kind != "sample" or wire.INTERVAL not in r.values:
            continue
        v = r.values
        length, lane, vehicles = _int(v.get(wire.INTERVAL_S)), _int(v.get(wire.LANE)), _int(v.get(wire.COUNT))
        occupancy = _num(v.get(wire.OCCUPANCY))
        junction, approach = v.get(wire.JUNCTION), v.get(wire.APPROACH)
        if (length is None or length <= 0 or lane is None or vehicles is None or vehicles < 0 or occupancy is None
                or not isinstance(junction, str) or not isinstance(approach, str)):
            continue
        fault = v.get(wire.FAULT)
        rows.append((gid, r.device, r.ts_ms - length * 1000, length, junction, approach, lane,
                     int(v.get(wire.LANE_COUNT) is not False), vehicles, occupancy, _num(v.get(wire.SPEED)),
                     _int(v.get(wire.LIGHT)), _int(v.get(wire.HEAVY)), fault if isinstance(fault, str) and fault else None))
    return rows


def quarter_rows(inserted: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rollup rows the inserted interval rows add, in key order (row locks taken in one order)."""
    sums: dict[tuple[Any, ...], list[float]] = {}
    for (gid, det, start, length, junction, approach, lane, lane_count, vehicles, occupancy, speed, light, heavy,
         fault) in inserted:
        key = (gid, det, start - start % QUARTER_MS, junction, approach, lane, lane_count)
        s = sums.setdefault(key, [0] * len(_SUMS))
        with_speed = vehicles if speed is not None else 0
        for i, add in enumerate((1, length, vehicles, occupancy * length / 100, with_speed,
                                 (speed or 0.0) * with_speed, light or 0, heavy or 0, int(fault is not None))):
            s[i] += add
    return [(*k, *(round(x, 6) if isinstance(x, float) else x for x in s)) for k, s in sorted(sums.items())]


def junction_rows(quarters: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """(junction, gateway id, newest bucket) of the rollup rows, in key order."""
    newest: dict[tuple[str, int], int] = {}
    for gid, _, bucket, junction, *_ in quarters:
        newest[(junction, gid)] = max(bucket, newest.get((junction, gid), bucket))
    return [(j, g, b) for (j, g), b in sorted(newest.items())]


def insert_sqlite(db: Any, rows: Sequence[tuple[Any, ...]]) -> None:
    """The ingest step on SQLite's writer connection, inside the ingest transaction."""
    inserted = [row for row in rows if db.execute(_SQLITE_INSERT, row).rowcount > 0]
    quarters = quarter_rows(inserted)
    db.executemany(_SQLITE_UPSERT, quarters)
    db.executemany(_SQLITE_JUNCTION, junction_rows(quarters))


async def insert_pg(conn: asyncpg.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """The ingest step on PostgreSQL, inside the ingest transaction."""
    inserted = [row for row in rows if (await conn.execute(_INSERT, *row)).endswith(" 1")]
    quarters = quarter_rows(inserted)
    await conn.executemany(_UPSERT, quarters)
    await conn.executemany(_PG_JUNCTION, junction_rows(quarters))


@dataclass(frozen=True, slots=True)
class IntervalRow:
    gateway: str
    detector: str
    start_ms: int
    length_s: int
    junction: str
    approach: str
    lane: int
    lane_count: bool
    vehicles: int
    occupancy_pct: float
    speed_kmh: float | None
    light: int | None
    heavy: int | None
    fault: str | None


@dataclass(frozen=True, slots=True)
class QuarterRow:
    detector: str
    bucket_ms: int
    junction: str
    approach: str
    lane: int
    lane_count: bool
    intervals: int
    seconds: int
    vehicles: int
    occupied_s: float
    speed_veh: int
    speed_sum: float
    light: int
    heavy: int
    faulty: int


class TrafficStore(Protocol):
    async def traffic_intervals(self, junction: str | None, first_ms: int, last_ms: int,
                                gateway: str | None = None) -> list[IntervalRow]:
        """Interval rows starting in [first_ms, last_ms), of a junction (or all), ordered by gateway,
        detector and start."""

    async def traffic_quarters(self, junction: str | None, first_ms: int, last_ms: int) -> list[QuarterRow]:
        """Quarter-hour rows of buckets in [first_ms, last_ms), of a junction (or all)."""

    async def traffic_junctions(self) -> list[tuple[str, str, int]]:
        """(junction, gateway, newest quarter-hour bucket) of every junction that sent counts."""


_SELECT_INTERVALS = (f"SELECT g.name, {', '.join('t.' + c for c in _INTERVAL_COLS[1:])}"
                     " FROM traffic_intervals t JOIN gateways g ON g.id = t.gateway_id"
                     " WHERE t.start_ms >= $1 AND t.start_ms < $2")


class TrafficQueries(SqlPrimitives):
    async def traffic_intervals(self, junction: str | None, first_ms: int, last_ms: int,
                                gateway: str | None = None) -> list[IntervalRow]:
        sql = _SELECT_INTERVALS
        args: list[Any] = [first_ms, last_ms]
        if junction is not None:
            args.append(junction)
            sql += f" AND t.junction = ${len(args)}"
        if gateway is not None:
            args.append(gateway)
            sql += f" AND g.name = ${len(args)}"
        rows = await self._ctl_rows(sql + " ORDER BY g.name, t.detector, t.start_ms", *args)
        return [IntervalRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), r[8], r[9], r[10], r[11], r[12],
                            r[13]) for r in rows]

    async def traffic_quarters(self, junction: str | None, first_ms: int, last_ms: int) -> list[QuarterRow]:
        sql = f"SELECT {', '.join(_ROLLUP_COLS[1:])} FROM traffic_rollup_15min WHERE bucket_ms >= $1 AND bucket_ms < $2"
        args: list[Any] = [first_ms, last_ms]
        if junction is not None:
            args.append(junction)
            sql += " AND junction = $3"
        rows = await self._ctl_rows(sql + " ORDER BY junction, detector, bucket_ms", *args)
        return [QuarterRow(r[0], int(r[1]), r[2], r[3], int(r[4]), bool(r[5]), int(r[6]), int(r[7]), int(r[8]),
                           float(r[9]), int(r[10]), float(r[11]), int(r[12]), int(r[13]), int(r[14])) for r in rows]

    async def traffic_junctions(self) -> list[tuple[str, str, int]]:
        rows = await self._ctl_rows(
            "SELECT j.junction, g.name, j.newest_ms FROM traffic_junctions j JOIN gateways g ON g.id = j.gateway_id"
            " ORDER BY j.junction, g.name")
        return [(r[0], r[1], int(r[2])) for r in rows]
