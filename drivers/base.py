"""The one small interface through which the agent core knows a driver.

A *bus* is one physical or logical line (an RS-485 port, a Modbus TCP endpoint, a TIC serial
input, an M-Bus master, the BLE radio) and the devices on it. One poller owns the bus's rhythm:
`run()` reads on the configured interval, retries and backs off, and hands every Sample and
Event to the sink. Everything else (CLI, lighting engine, uploader) reads `states()` or calls
`read()`/`command` methods; nothing else talks to the devices.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from drivers.model import RecordSink, Sample, Value


@dataclass(slots=True)
class DeviceState:
    """What the poller last knew of one device (read by the CLI and the local API)."""

    device: str
    bus: str
    address: str
    state: str = "unknown"  # unknown | ok | failing | misconfigured
    last_ts_ms: int | None = None
    last_values: Mapping[str, Value] = field(default_factory=dict)
    consecutive_failures: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # e.g. {"timeout": 3, "exception": 1, "crc": 0}
    last_error: str | None = None


@runtime_checkable
class Bus(Protocol):
    name: str

    def states(self) -> list[DeviceState]: ...

    async def run(self, sink: RecordSink) -> None:
        """Poll or listen until cancelled. Never raises for a device fault: it becomes an Event."""

    async def read(self, device: str) -> Sample:
        """One live read of one device, outside the poll rhythm (technician's `read`)."""

    async def aclose(self) -> None: ...


@runtime_checkable
class LampBus(Bus, Protocol):
    """A bus of lamp controllers: the lighting engine commands levels through it."""

    def lamps(self) -> list[str]: ...

    async def set_level(self, device: str, level_pct: int) -> int:
        """Command a level (0-100 %), verify it by reading back, return the level read back."""


@dataclass(frozen=True, slots=True)
class BusContext:
    """What a driver factory may need besides its own config table."""

    key: str  # dotted path of the table in the agent config, for error messages ("bus[0]")
    config_dir: Path  # relative paths (register maps) resolve from here
    state_dir: Path | None = None  # the gateway's state folder, for what a driver keeps across restarts
