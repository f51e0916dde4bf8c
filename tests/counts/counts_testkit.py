"""Shared by the traffic-count tests: a counting controller on real Modbus TCP and the agent's bus reading it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drivers.base import BusContext
from drivers.model import Event, Record, Sample
from drivers.traffic.bus import SignalsBus, build, parse_config
from drivers.traffic.config import load_timings
from drivers.traffic.counter import CountReader
from simulators.signals import SignalControllerServer
from simulators.signals_engine import CountingUnit, SignalController
from tests.tasks_testkit import stop
from tests.traffic.traffic_testkit import DIJON, PARIS, until, utc

#: Monday 1 June 2026, 08:00 in Paris: the morning peak
PEAK = utc(2026, 6, 1, 6, 0)


@dataclass
class Rig:
    ctrl: SignalController
    unit: CountingUnit
    server: SignalControllerServer
    port: int
    state_dir: Path | None
    bus: SignalsBus | None = None
    records: list[Record] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    def start_agent(self) -> None:
        assert self.task is None
        self.bus = make_bus(self.port, self.ctrl, DIJON, self.state_dir)
        self.task = asyncio.create_task(self.bus.run(self.records.append))

    async def stop_agent(self) -> None:
        if self.task is not None:
            await stop(self.task)
            self.task = None
        if self.bus is not None:
            await self.bus.aclose()

    def reader(self) -> CountReader:
        assert self.bus is not None and self.bus.counts is not None
        return self.bus.counts

    async def caught_up(self) -> None:
        """Wait until the agent has read every interval the controller completed."""
        reader = self.reader()
        await until(lambda: self.unit.last_index == 0 or reader.cursor == self.unit.last_index,
                    what=f"the agent reading interval {self.unit.last_index}")

    async def advance(self, seconds: int, chunk: int = 30) -> None:
        """Run the controller's clock; with the agent running, let it read along the way."""
        while seconds > 0:
            n = min(chunk, seconds)
            self.ctrl.steps(n)
            seconds -= n
            if self.task is not None:
                await self.caught_up()

    def events(self, code: str) -> list[Event]:
        return [r for r in self.records if isinstance(r, Event) and r.code == code]

    def counts(self) -> list[Sample]:
        return [r for r in self.records if isinstance(r, Sample) and "interval" in r.values]


def make_bus(port: int, ctrl: SignalController, intersection: Path, state_dir: Path | None, **extra: Any) -> SignalsBus:
    raw = {"name": "signals-1", "type": "signals", "host": "127.0.0.1", "port": port, "intersection": str(intersection),
           "interval_s": 0.01, "backup_time_s": 3600, "refresh_s": 600, **extra}
    ctx = BusContext("bus[0]", intersection.parent, state_dir)
    return build(parse_config(raw, ctx), now=lambda: datetime.fromtimestamp(ctrl.clock_s, UTC))


@contextlib.asynccontextmanager
async def counting_rig(state_dir: Path | None, *, start: datetime = PEAK, interval_s: int = 60,
                       kept: int = 16) -> AsyncIterator[Rig]:
    timings = load_timings(DIJON)
    unit = CountingUnit(timings, PARIS, interval_s=interval_s, kept=kept, seed=7)
    ctrl = SignalController(timings.intersection, timings, start=start, tz=PARIS, counting=unit)
    server = SignalControllerServer(ctrl)
    port = await server.serve_tcp()
    rig = Rig(ctrl, unit, server, port, state_dir)
    try:
        yield rig
    finally:
        await rig.stop_agent()
        await server.aclose()
