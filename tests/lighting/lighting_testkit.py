"""Shared by the lighting service tests: an in-process lamp bus with a lamp model, and a FakeClock harness.

The bus stands in for the Modbus lamp controllers only in tests where the bus is not what is
tested (scheduling, overrides, restarts, fault detection); the Modbus path has its own tests
against the lamp simulator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from citygate_wire.aio import stop_tasks
from drivers.base import Bus, DeviceState
from drivers.errors import DeviceError
from drivers.model import Event, Record, RecordSink, Sample
from edge_agent.clock import FakeClock
from edge_agent.lighting.clocktrust import TimeSync
from edge_agent.lighting.config import LightingConfig, from_config
from edge_agent.lighting.pacing import WatchedWaiter
from edge_agent.lighting.service import LightingService
from edge_agent.service import AgentContext

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "lighting"


def lighting_config(groups: Iterable[tuple[str, list[str], str | None]], **extra: Any) -> LightingConfig:
    raw: dict[str, Any] = {
        "programs": [str(CONFIGS / n) for n in ("common.toml", "dijon.toml", "sennecey-les-dijon.toml")],
        "latitude": 47.322, "longitude": 5.041, "rated_power_w": 40.0,
        "group": [{"name": n, "lamps": lamps, **({"calendar": c} if c else {})} for n, lamps, c in groups],
    }
    raw.update(extra)
    return from_config(raw, "lighting", CONFIGS)


@dataclass
class LampModel:
    """A LED lamp whose power follows its level; faults are switched on by the test."""

    name: str
    rated_w: float = 40.0
    level: int = 100  # a DALI driver powers up at its power-on level
    broken: bool = False  # lamp failure: draws nothing
    stuck_at: int | None = None  # dimming failure: the driver ignores level commands
    welded_on: bool = False  # relay welded: lit at 100 % whatever it is told (a day burner when off)
    failing: bool = False  # the controller does not answer
    commands: list[tuple[datetime, int]] = field(default_factory=list)
    energy_wh: float = 0.0
    _last: datetime | None = None

    def actual(self) -> int:
        if self.welded_on:
            return 100
        return self.stuck_at if self.stuck_at is not None else self.level

    def power_w(self) -> float:
        return 0.0 if self.broken else self.rated_w * self.actual() / 100

    def advance(self, now: datetime) -> None:
        if self._last is not None:
            self.energy_wh += self.power_w() * (now - self._last).total_seconds() / 3600
        self._last = now


class InProcessLampBus:
    """Implements drivers.base.LampBus over LampModels."""

    def __init__(self, clock: FakeClock, lamps: Iterable[LampModel], name: str = "lamps") -> None:
        self.name = name
        self.clock = clock
        self.models = {m.name: m for m in lamps}

    def lamps(self) -> list[str]:
        return list(self.models)

    def states(self) -> list[DeviceState]:
        return [DeviceState(n, self.name, n) for n in self.models]

    async def set_level(self, device: str, level_pct: int) -> int:
        m = self.models[device]
        if m.failing:
            raise DeviceError(device, "timeout after 3 tries")
        m.advance(self.clock.now())
        m.commands.append((self.clock.now(), level_pct))
        m.level = level_pct
        return m.actual()

    def sample(self, device: str) -> Sample:
        m = self.models[device]
        m.advance(self.clock.now())
        return Sample(device, int(self.clock.now().timestamp() * 1000), {
            "level_pct": m.actual(), "power_w": round(m.power_w(), 2), "lamp_on": m.power_w() > 0,
            "energy_wh": round(m.energy_wh, 3),
        })

    async def read(self, device: str) -> Sample:
        return self.sample(device)

    async def run(self, sink: RecordSink) -> None:
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        return None


class JumpingClock(FakeClock):
    """A FakeClock that can also be stepped like a wall clock set by NTP: no time passes in between."""

    async def jump(self, when: datetime) -> None:
        self._now = when
        await self.advance_to(when)  # wakes every sleeper whose instant is now past


class SettableTimeSync:
    def __init__(self, synchronized: bool = True) -> None:
        self.synchronized = synchronized

    def is_synchronized(self) -> bool:
        return self.synchronized


class Harness:
    """Runs a LightingService on a FakeClock; records what it emits, as the journal would hand them on."""

    def __init__(self, config: LightingConfig, state_dir: Path, start: datetime, lamps: Iterable[LampModel] = (),
                 time_sync: TimeSync | None = None, buses: Iterable[Bus] = ()) -> None:
        """Lamps on an in-process bus (`self.bus`), or real buses (`buses`, e.g. Modbus to a simulator)."""
        self.config = config
        self.clock = JumpingClock(start)
        self.bus = InProcessLampBus(self.clock, lamps)
        self.records: list[Record] = []
        self.time_sync = time_sync
        all_buses: list[Bus] = list(buses) or [self.bus]
        self.ctx = AgentContext("gw-test", "21231", state_dir, self.clock, {b.name: b for b in all_buses}, self.emit)
        self.service: LightingService | None = None
        self.waiter = WatchedWaiter()
        self.task: asyncio.Task[None] | None = None

    def emit(self, record: Record) -> None:
        self.records.append(record)
        for observer in list(self.ctx.observers):
            observer(record)

    @property
    def svc(self) -> LightingService:
        assert self.service is not None
        return self.service

    async def start(self) -> LightingService:
        self.waiter = WatchedWaiter()
        self.service = LightingService(self.config, time_sync=self.time_sync, waiter=self.waiter)
        self.task = asyncio.create_task(self.service.run(self.ctx))
        await self.settled(0)
        return self.service

    async def stop(self) -> None:
        """Like a kill: the task stops where it is; only what the service already saved remains."""
        assert self.task is not None
        await stop_tasks([self.task])  # cancelled again until it ends, as the agent does (citygate_wire.aio)
        self.task = None

    async def settled(self, after_cycles: int, timeout: float = 20.0) -> None:
        """Wait until the service has acted and gone back to sleep (more than `after_cycles` waits)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (self.waiter.idle.is_set() and self.waiter.cycles > after_cycles):
            if self.task is not None and self.task.done():
                self.task.result()  # raises what killed the service
            if loop.time() > deadline:
                raise AssertionError("the lighting service did not settle")
            await asyncio.sleep(0.001)

    async def kick(self) -> None:
        """After a control-plane call: let the service act on it."""
        before = self.waiter.cycles
        await self.settled(before)

    def poll(self) -> None:
        for device in self.bus.models:
            self.emit(self.bus.sample(device))

    async def run_until(self, until: datetime, poll_every: timedelta | None = None) -> None:
        """Step the clock through every instant the service wakes at (and every poll) up to `until`."""
        next_poll = self.clock.now() + poll_every if poll_every else None
        while True:
            await self.settled(0)
            wake = self.waiter.next_wake
            assert wake is not None
            target = min(t for t in (wake, next_poll, until) if t is not None)
            before = self.waiter.cycles
            await self.clock.advance_to(target)
            if next_poll is not None and target == next_poll:
                self.poll()
                next_poll += poll_every  # type: ignore[operator]
            if target >= wake:
                await self.settled(before)
            if target >= until:
                return

    def events(self, code: str | None = None) -> list[Event]:
        return [r for r in self.records if isinstance(r, Event) and (code is None or r.code == code)]

    def samples(self, device: str | None = None, key: str | None = None) -> list[Sample]:
        return [r for r in self.records if isinstance(r, Sample) and (device is None or r.device == device)
                and (key is None or key in r.values)]
