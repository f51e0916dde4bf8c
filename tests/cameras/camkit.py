"""A cabinet of simulated cameras and the cameras bus watching them, on loopback, fast."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from citygate_wire.aio import stop_tasks
from drivers.base import BusContext
from drivers.cameras.bus import CameraBus
from drivers.model import Event, Record, Sample
from drivers.registry import parse_bus
from simulators.cameras import CameraSim, write_bus_files

PASSWORD = "Pa55-w0rd-4-cams!"  # distinctive: tests grep for it in logs, events and answers
FAST = {"interval_s": 0.05, "retries": 2, "timeout_s": 1.0, "pull_timeout_s": 0.3, "sample_interval_s": 0.2,
        "group_window_s": 0.4, "time_source": "none"}  # "none": this machine's clock judges the cameras'



@dataclass
class Cabinet:
    cams: list[CameraSim]
    bus: CameraBus
    records: list[Record] = field(default_factory=list)

    def events(self, code: str | None = None, device: str | None = None) -> list[Event]:
        return [r for r in self.records if isinstance(r, Event)
                and (code is None or r.code == code) and (device is None or r.device == device)]

    def samples(self, device: str) -> list[Sample]:
        return [r for r in self.records if isinstance(r, Sample) and r.device == device]

    async def until(self, what: Callable[[], object], timeout_s: float = 10.0) -> None:
        """Wait until `what()` holds (the bus runs meanwhile); fail with the events seen if it never does."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        while not what():
            if loop.time() > end:
                raise AssertionError(f"not within {timeout_s} s; events: {[(e.device, e.code) for e in self.events()]}")
            await asyncio.sleep(0.02)


def bus_table(folder: Path, cams: list[CameraSim], **overrides: Any) -> dict[str, Any]:
    write_bus_files(folder, cams)
    raw: dict[str, Any] = tomllib.loads((folder / "cameras-bus.toml").read_text())["bus"][0]
    raw.update(FAST)
    raw.update(overrides)
    return raw


@asynccontextmanager
async def running(folder: Path, cams: list[CameraSim], **overrides: Any) -> AsyncIterator[Cabinet]:
    """The bus watching `cams` (its state in folder/state), stopped on the way out."""
    spec = parse_bus(bus_table(folder, cams, **overrides), BusContext("bus[0]", folder, state_dir=folder / "state"))
    bus = spec.build()
    assert isinstance(bus, CameraBus)
    cab = Cabinet(cams, bus)
    task = asyncio.create_task(bus.run(cab.records.append))
    try:
        yield cab
    finally:
        await stop_tasks([task])
        await bus.aclose()


@asynccontextmanager
async def cabinet(folder: Path, count: int = 2, **overrides: Any) -> AsyncIterator[Cabinet]:
    """`count` cameras online, the bus running on them; everything stopped on the way out."""
    cams = [CameraSim(f"cam-{i + 1}", password=PASSWORD) for i in range(count)]
    for cam in cams:
        await cam.go_online()
    try:
        async with running(folder, cams, **overrides) as cab:
            yield cab
    finally:
        for cam in cams:
            await cam.go_offline()
