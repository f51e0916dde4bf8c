"""Typed values the store hands out and takes in; the HTTP layer turns them into JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class Gateway:
    """A registered gateway. `id` is the store's key; `name` is what the gateway calls itself."""

    id: int
    name: str
    commune: str  # canonical INSEE code (a former commune's code is mapped on registration)
    cabinet: str | None = None
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class GatewayInfo:
    gateway: Gateway
    created_ms: int
    last_seen_ms: int | None  # last accepted batch (even one holding only duplicates)
    last_seq: int | None  # highest seq stored

    def as_json(self) -> dict[str, Any]:
        g = self.gateway
        return {
            "name": g.name, "commune": g.commune, "cabinet": g.cabinet, "lat": g.lat, "lon": g.lon,
            "created_ms": self.created_ms, "last_seen_ms": self.last_seen_ms, "last_seq": self.last_seq,
        }


@dataclass(frozen=True, slots=True)
class StoredSample:
    seq: int
    ts_ms: int
    values: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts_ms": self.ts_ms, "values": self.values}


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int | None  # None for an event the collector derived itself (e.g. counter_reset)
    device: str
    ts_ms: int
    code: str
    severity: str
    detail: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "device": self.device, "ts_ms": self.ts_ms, "code": self.code,
                "severity": self.severity, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class RecordCounts:
    samples: int
    events: int


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one batch did: the reply to the gateway is built from it."""

    ack_seq: int
    stored: int
    duplicates: int


Period = Literal["hour", "day"]
Level = Literal["gateway", "commune", "metropolis"]
#: rollup columns, in the order of Rollup's fields after `bucket`
ROLLUP_COLUMNS = ("energy_wh", "burn_ms", "lamps_on", "lamps_faulty", "water_m3", "alarms", "samples", "events")


@dataclass(frozen=True, slots=True)
class Rollup:
    """Totals of one bucket: an hour (UTC epoch ms of its start) or a day (Europe/Paris "YYYY-MM-DD")."""

    bucket: int | str
    energy_wh: float
    burn_ms: int
    lamps_on: int
    lamps_faulty: int
    water_m3: float
    alarms: int
    samples: int
    events: int

    def as_json(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket, "energy_kwh": self.energy_wh / 1000, "burn_h": self.burn_ms / 3_600_000,
            "lamps_on": self.lamps_on, "lamps_faulty": self.lamps_faulty, "water_m3": self.water_m3,
            "alarms": self.alarms, "samples": self.samples, "events": self.events,
        }
