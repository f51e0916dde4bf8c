"""What every driver emits: samples and events, with quantity names and units shared by all drivers.

Timestamps are UTC epoch milliseconds (`ts_ms`). Quantity names carry their unit as a suffix
(`power_w`, `energy_wh`, `voltage_v`, `current_a`, `temperature_c`, `level_pct`, `volume_m3` ...),
so a value never travels without its unit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Value = float | int | str | bool | None


class Severity(StrEnum):
    INFO = "info"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of one device at one instant: several quantities read together."""

    device: str
    ts_ms: int
    values: Mapping[str, Value]


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened to a device (a fault, a state change, a dropped-samples report)."""

    device: str
    ts_ms: int
    code: str
    severity: Severity = Severity.INFO
    detail: Mapping[str, Any] = field(default_factory=dict)


Record = Sample | Event

#: Where a driver hands what it read. The agent's sink journals the record before anything else sees it.
RecordSink = Callable[[Record], None]
