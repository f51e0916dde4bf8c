"""What the SQLite and PostgreSQL stores share: the ingest algorithm (dedupe, raw insert, rollup),
rollup tables, their upserts, device-state rows.

The algorithm is written once, without I/O (`ingest_steps`): it yields each database operation it
needs (a step) and receives the step's result. Each store runs it in its own transaction and
supplies only its SQL dialect and bulk primitives: `run_steps` drives it with a synchronous
executor (SQLite, on its writer thread), `arun_steps` with an asynchronous one (PostgreSQL).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from citygate_wire.batch import WireRecord
from citygate_wire.common import now_ms
from collector.model import ROLLUP_COLUMNS, Gateway, IngestResult, Level, Period
from collector.rollup import BatchRollup, DeviceState, Totals, roll_up
from collector.traffic.store import traffic_rows

log = logging.getLogger("citygate.collector")

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


# -- the ingest algorithm ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SeenSeqs:
    """-> set[int]: the seqs of gateway `gid` between `lo` and `hi` already stored, sample or event.
    A record sent again is the same record, its time too: a store may look for the samples only
    between `first_ts` and `last_ts`, the batch's times (PostgreSQL: only their monthly partitions)."""

    gid: int
    lo: int
    hi: int
    first_ts: int = 0
    last_ts: int = 0


@dataclass(frozen=True, slots=True)
class InsertSamples:
    """-> None: store the samples among `records` (the events among them are not the step's)."""

    gid: int
    records: Sequence[WireRecord]


@dataclass(frozen=True, slots=True)
class InsertEvents:
    """-> None: insert rows (gateway_id, seq, device, ts_ms, code, severity, detail JSON); seq is None
    for the events the collector derives."""

    rows: list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class InsertTraffic:
    """-> None: store the traffic counting intervals among the new samples, and add to their rollups
    only those not stored yet (collector.traffic.store)."""

    rows: list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class DeviceStates:
    """-> dict[str, DeviceState]: each device's running state; roll_up changes them in place (a store
    that caches them must forget them when the transaction rolls back)."""

    gid: int


@dataclass(frozen=True, slots=True)
class UpsertRollups:
    """-> None: add rows (key, bucket, *ROLLUP_COLUMNS) to `table`'s totals."""

    table: str
    rows: list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class UpsertStates:
    """-> None: replace the device_state rows (gateway_id, device, *STATE_COLUMNS)."""

    rows: list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class TouchGateway:
    """-> None: the gateway was seen at `now_ms`; its last seq is at least `hi`."""

    gid: int
    hi: int
    now_ms: int


Step = (SeenSeqs | InsertSamples | InsertTraffic | InsertEvents | DeviceStates | UpsertRollups | UpsertStates
        | TouchGateway)
Steps = Generator[Step, Any, IngestResult]


def ingest_steps(gateway: Gateway, records: Sequence[WireRecord]) -> Steps:
    """Store a validated batch (ascending seq, at least one record): the records whose seq is not
    stored yet, their rollups and device states, the events the rollup derives, the gateway's
    last-seen time. Run inside one transaction."""
    gid = gateway.id
    lo, hi = records[0].seq, records[-1].seq
    times = [r.ts_ms for r in records]
    seen: set[int] = yield SeenSeqs(gid, lo, hi, min(times), max(times))
    new = [r for r in records if r.seq not in seen] if seen else records
    yield InsertSamples(gid, new)
    traffic = traffic_rows(gid, new)
    if traffic:
        yield InsertTraffic(traffic)
    dumps = orjson.dumps
    events = [(gid, r.seq, r.device, r.ts_ms, r.code, r.severity, dumps(r.detail).decode())
              for r in new if r.kind == "event"]
    if events:
        yield InsertEvents(events)
    if new:
        states: dict[str, DeviceState] = yield DeviceStates(gid)
        yield from _apply_rollup(gateway, roll_up(new, states))
    yield TouchGateway(gid, hi, now_ms())
    return IngestResult(ack_seq=hi, stored=len(new), duplicates=len(records) - len(new))


def _apply_rollup(gateway: Gateway, rolled: BatchRollup) -> Generator[Step, Any, None]:
    for table, rows in rollup_rows(gateway.id, gateway.commune, rolled).items():
        yield UpsertRollups(table, rows)
    yield UpsertStates(state_rows(gateway.id, rolled.changed))
    if rolled.events:
        for e in rolled.events:
            log.warning("gateway %s device %s: %s %s", gateway.name, e.device, e.code, e.detail)
        yield InsertEvents([(gateway.id, None, e.device, e.ts_ms, e.code, e.severity, orjson.dumps(e.detail).decode())
                            for e in rolled.events])


def run_steps(steps: Steps, execute: Callable[[Step], Any]) -> IngestResult:
    """Run the algorithm with a synchronous executor of its steps."""
    try:
        step = next(steps)
        while True:
            step = steps.send(execute(step))
    except StopIteration as done:
        result: IngestResult = done.value
        return result


async def arun_steps(steps: Steps, execute: Callable[[Step], Awaitable[Any]]) -> IngestResult:
    """Run the algorithm with an asynchronous executor of its steps."""
    try:
        step = next(steps)
        while True:
            step = steps.send(await execute(step))
    except StopIteration as done:
        result: IngestResult = done.value
        return result
