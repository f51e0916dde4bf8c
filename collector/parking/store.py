"""The parking tables of the collector store (migration 9 of both engines) and their queries.

- `parking_zone`, `parking_street`, `parking_space`: the inventory (configs/parking), written
  at start, and each space's live state: occupied | free | unknown since when, the last known
  (occupied | free) state, battery and radio of its sensor, the open overstay.
- `parking_hour`: per space and UTC hour, milliseconds occupied, milliseconds in a known state,
  and changes of state (occupied <-> free). Closed intervals only: the open one of each space is
  added when a report is read.
- `parking_cursor`: per gateway, the last sample seq the projection has applied; `parking_claim`
  (gateway, from seq) is taken in the same transaction, so two collector instances never apply
  the same samples twice (the second one's transaction fails on the key and it reloads).
- `parking_overstay`: one row per overstay raised (space, start of the occupation): the event is
  raised once whatever the number of instances.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from collector.parking.inventory import Street, Zone
from collector.sqlprims import SqlPrimitives

_TABLES = """
CREATE TABLE parking_zone (
    zone         TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    category     TEXT NOT NULL,            -- pay_zone | blue_zone | delivery_bay | disabled_bay
    max_stay_min INTEGER
);
CREATE TABLE parking_street (
    street  TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    commune TEXT NOT NULL,
    gateway TEXT NOT NULL,
    lat     {real} NOT NULL,
    lon     {real} NOT NULL
);
CREATE TABLE parking_space (
    space       TEXT PRIMARY KEY,
    street      TEXT NOT NULL,
    zone        TEXT NOT NULL,
    gateway     TEXT NOT NULL,
    lat         {real} NOT NULL,
    lon         {real} NOT NULL,
    state       TEXT NOT NULL,             -- occupied | free | unknown
    known_state TEXT,                      -- the last occupied | free, across unknown spells
    since_ms    BIGINT,                    -- when `state` began (sample time)
    last_ms     BIGINT,                    -- the newest sample
    battery_pct {real},
    battery_v   {real},
    rssi_dbm    {real},
    snr_db      {real},
    overstay_ms BIGINT                     -- the open overstay's event time, NULL when none
);
CREATE INDEX parking_space_by_street ON parking_space (street);
CREATE TABLE parking_hour (
    space       TEXT   NOT NULL,
    bucket      BIGINT NOT NULL,           -- UTC epoch ms of the hour's start
    occupied_ms BIGINT NOT NULL,
    known_ms    BIGINT NOT NULL,
    changes     INTEGER NOT NULL,
    PRIMARY KEY (space, bucket)
);
CREATE INDEX parking_hour_by_bucket ON parking_hour (bucket);
CREATE TABLE parking_cursor (
    gateway_id BIGINT PRIMARY KEY,
    seq        BIGINT NOT NULL
);
CREATE TABLE parking_claim (
    gateway_id BIGINT NOT NULL,
    from_seq   BIGINT NOT NULL,
    PRIMARY KEY (gateway_id, from_seq)
);
CREATE TABLE parking_overstay (
    space    TEXT   NOT NULL,
    since_ms BIGINT NOT NULL,
    PRIMARY KEY (space, since_ms)
)
"""

SQLITE_MIGRATION = _TABLES.format(real="REAL")
PG_MIGRATION = _TABLES.format(real="DOUBLE PRECISION")

SPACE_COLUMNS = ("space", "street", "zone", "gateway", "lat", "lon", "state", "known_state", "since_ms", "last_ms",
                 "battery_pct", "battery_v", "rssi_dbm", "snr_db", "overstay_ms")
_LIVE = SPACE_COLUMNS[6:]
HOUR_UPSERT = ("INSERT INTO parking_hour (space, bucket, occupied_ms, known_ms, changes) VALUES ($1, $2, $3, $4, $5)"
               " ON CONFLICT (space, bucket) DO UPDATE SET occupied_ms = parking_hour.occupied_ms + excluded.occupied_ms,"
               " known_ms = parking_hour.known_ms + excluded.known_ms, changes = parking_hour.changes + excluded.changes")
SPACE_UPDATE = ("UPDATE parking_space SET " + ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(_LIVE))
                + " WHERE space = $1")
EVENT_INSERT = ("INSERT INTO events (gateway_id, seq, device, ts_ms, code, severity, detail)"
                " VALUES ($1, NULL, $2, $3, $4, $5, $6)")


@dataclass(slots=True)
class SpaceRow:
    """One space: its place in the inventory and its live state (mutable: the projection updates it)."""

    space: str
    street: str
    zone: str
    gateway: str
    lat: float
    lon: float
    state: str = "unknown"
    known_state: str | None = None
    since_ms: int | None = None
    last_ms: int | None = None
    battery_pct: float | None = None
    battery_v: float | None = None
    rssi_dbm: float | None = None
    snr_db: float | None = None
    overstay_ms: int | None = None

    def live(self) -> tuple[Any, ...]:
        return (self.space, self.state, self.known_state, self.since_ms, self.last_ms, self.battery_pct,
                self.battery_v, self.rssi_dbm, self.snr_db, self.overstay_ms)


@dataclass(frozen=True, slots=True)
class HourRow:
    space: str
    bucket: int
    occupied_ms: int
    known_ms: int
    changes: int


@dataclass(frozen=True, slots=True)
class EventRow:
    """An event the projection raises (gateway id, space, time, code, severity, detail JSON)."""

    gateway_id: int
    space: str
    ts_ms: int
    code: str
    severity: str
    detail: str


class ParkingStore(Protocol):
    async def parking_sync(self, zones: Sequence[Zone], streets: Sequence[Street],
                           spaces: Sequence[SpaceRow]) -> None:
        """Write the inventory: new spaces start unknown; a known space keeps its live state."""

    async def parking_spaces(self) -> list[SpaceRow]: ...

    async def parking_streets(self) -> list[Street]: ...

    async def parking_zones(self) -> list[Zone]: ...

    async def parking_cursor(self, gateway_id: int) -> int: ...

    async def parking_samples(self, gateway_id: int, after_seq: int, limit: int) -> list[tuple[int, str, int, str]]:
        """(seq, device, ts_ms, values JSON) of the gateway's samples after `after_seq`, in seq order."""

    async def parking_apply(self, gateway_id: int, from_seq: int, to_seq: int, spaces: Sequence[SpaceRow],
                            hours: Sequence[HourRow], events: Sequence[EventRow]) -> bool:
        """Apply one step of the projection in one transaction; False (nothing written) if another
        instance applied the samples after `from_seq` already."""

    async def parking_overstay(self, space: SpaceRow, event: EventRow) -> bool:
        """Record an overstay once (per space and occupation); False if it was recorded already."""

    async def parking_hours(self, first_ms: int, last_ms: int) -> list[HourRow]:
        """Every space's closed hours with first_ms <= bucket < last_ms."""


class ParkingQueries(SqlPrimitives):
    async def parking_sync(self, zones: Sequence[Zone], streets: Sequence[Street],
                           spaces: Sequence[SpaceRow]) -> None:
        statements: list[tuple[str, Sequence[Any]]] = []
        for z in zones:
            statements.append(("INSERT INTO parking_zone (zone, name, category, max_stay_min) VALUES ($1, $2, $3, $4)"
                               " ON CONFLICT (zone) DO UPDATE SET name = excluded.name, category = excluded.category,"
                               " max_stay_min = excluded.max_stay_min", (z.id, z.name, z.category, z.max_stay_min)))
        for s in streets:
            statements.append(("INSERT INTO parking_street (street, name, commune, gateway, lat, lon)"
                               " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (street) DO UPDATE SET"
                               " name = excluded.name, commune = excluded.commune, gateway = excluded.gateway,"
                               " lat = excluded.lat, lon = excluded.lon",
                               (s.id, s.name, s.commune, s.gateway, s.lat, s.lon)))
        for p in spaces:
            statements.append(("INSERT INTO parking_space (space, street, zone, gateway, lat, lon, state)"
                               " VALUES ($1, $2, $3, $4, $5, $6, 'unknown') ON CONFLICT (space) DO UPDATE SET"
                               " street = excluded.street, zone = excluded.zone, gateway = excluded.gateway,"
                               " lat = excluded.lat, lon = excluded.lon",
                               (p.space, p.street, p.zone, p.gateway, p.lat, p.lon)))
        if statements:
            await self._ctl_atomic(statements)

    async def parking_spaces(self) -> list[SpaceRow]:
        rows = await self._ctl_rows(f"SELECT {', '.join(SPACE_COLUMNS)} FROM parking_space ORDER BY space")
        return [SpaceRow(*r) for r in rows]

    async def parking_streets(self) -> list[Street]:
        rows = await self._ctl_rows("SELECT street, name, commune, gateway, lat, lon FROM parking_street"
                                    " ORDER BY street")
        return [Street(*r) for r in rows]

    async def parking_zones(self) -> list[Zone]:
        rows = await self._ctl_rows("SELECT zone, name, category, max_stay_min FROM parking_zone ORDER BY zone")
        return [Zone(*r) for r in rows]

    async def parking_cursor(self, gateway_id: int) -> int:
        rows = await self._ctl_rows("SELECT seq FROM parking_cursor WHERE gateway_id = $1", gateway_id)
        return int(rows[0][0]) if rows else -1

    async def parking_samples(self, gateway_id: int, after_seq: int, limit: int) -> list[tuple[int, str, int, str]]:
        rows = await self._ctl_rows("SELECT seq, device, ts_ms, vals FROM samples WHERE gateway_id = $1 AND seq > $2"
                                    " ORDER BY seq LIMIT $3", gateway_id, after_seq, limit)
        return [(int(r[0]), r[1], int(r[2]), r[3]) for r in rows]

    async def parking_apply(self, gateway_id: int, from_seq: int, to_seq: int, spaces: Sequence[SpaceRow],
                            hours: Sequence[HourRow], events: Sequence[EventRow]) -> bool:
        statements: list[tuple[str, Sequence[Any]]] = [
            ("INSERT INTO parking_claim (gateway_id, from_seq) VALUES ($1, $2)", (gateway_id, from_seq)),
            ("INSERT INTO parking_cursor (gateway_id, seq) VALUES ($1, $2) ON CONFLICT (gateway_id)"
             " DO UPDATE SET seq = excluded.seq", (gateway_id, to_seq)),
        ]
        statements += [(SPACE_UPDATE, s.live()) for s in spaces]
        statements += [(HOUR_UPSERT, (h.space, h.bucket, h.occupied_ms, h.known_ms, h.changes)) for h in hours]
        statements += [(EVENT_INSERT, (e.gateway_id, e.space, e.ts_ms, e.code, e.severity, e.detail))
                       for e in events]
        return await self._atomic_once(statements)

    async def parking_overstay(self, space: SpaceRow, event: EventRow) -> bool:
        return await self._atomic_once([
            ("INSERT INTO parking_overstay (space, since_ms) VALUES ($1, $2)", (space.space, space.since_ms)),
            ("UPDATE parking_space SET overstay_ms = $2 WHERE space = $1", (space.space, event.ts_ms)),
            (EVENT_INSERT, (event.gateway_id, event.space, event.ts_ms, event.code, event.severity, event.detail)),
        ])

    async def _atomic_once(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> bool:
        """The statements in one transaction; False if its first (a claim) was taken already."""
        try:
            await self._ctl_atomic(statements)
        except Exception as exc:
            if self._ctl_unique_violation(exc):
                return False
            raise
        return True

    async def parking_hours(self, first_ms: int, last_ms: int) -> list[HourRow]:
        rows = await self._ctl_rows("SELECT space, bucket, occupied_ms, known_ms, changes FROM parking_hour"
                                    " WHERE bucket >= $1 AND bucket < $2", first_ms, last_ms)
        return [HourRow(r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows]
