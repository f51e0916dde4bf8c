"""A deliberately faulty driver for the watchdog tests: it polls until a file appears, then hangs forever.

That is the fault the systemd watchdog exists for: a driver awaiting an answer without a
timeout. The agent itself is real and unchanged; only this bus type is added, by
run_agent_with_test_bus.py through an entry point, the way every bus type comes in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from citygate_wire.common import now_ms
from drivers.base import BusContext, DeviceState
from drivers.conf import ConfigTable
from drivers.errors import DeviceError
from drivers.model import RecordSink, Sample
from drivers.registry import Driver


class WedgeBus:
    def __init__(self, name: str, device: str, stall_file: Path, period_s: float, swallow_cancel: bool = False) -> None:
        self.swallow_cancel = swallow_cancel
        self.name = name
        self.device = device
        self.stall_file = stall_file
        self.period_s = period_s
        self.state = DeviceState(device, name, "0")
        self.count = 0

    def states(self) -> list[DeviceState]:
        return [self.state]

    def _sample(self) -> Sample:
        self.count += 1
        return Sample(self.device, now_ms(), {"count": self.count})

    async def run(self, sink: RecordSink) -> None:
        while True:
            if self.stall_file.exists():
                if self.swallow_cancel:
                    await self._deaf_wait()
                await asyncio.Event().wait()  # the bug: waits for an answer that never comes
            sample = self._sample()
            self.state.state, self.state.last_ts_ms, self.state.last_values = "ok", sample.ts_ms, sample.values
            sink(sample)
            await asyncio.sleep(self.period_s)

    async def _deaf_wait(self) -> None:
        """The worse bug: a wait that ignores cancellation (as a library waiting on a dead peer can)."""
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                continue

    async def read(self, device: str) -> Sample:
        if device != self.device:
            raise DeviceError(device, "not on this bus")
        return self._sample()

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True)
class WedgeConfig:
    name: str
    device: str
    stall_file: Path
    period_s: float
    swallow_cancel: bool


def parse(raw: Mapping[str, Any], ctx: BusContext) -> WedgeConfig:
    t = ConfigTable(dict(raw), ctx.key)
    t.text("type")
    cfg = WedgeConfig(
        t.text("name", required=True),
        t.text("device", "wedge-1"),
        ctx.config_dir / t.text("stall_file", required=True),
        t.number("period_s", 0.1, lo=0.01, hi=10),
        t.boolean("swallow_cancel", False),
    )
    t.done()
    return cfg


def build(cfg: WedgeConfig) -> WedgeBus:
    return WedgeBus(cfg.name, cfg.device, cfg.stall_file, cfg.period_s, cfg.swallow_cancel)


#: Named by the `test-wedge` entry point that run_agent_with_test_bus.py installs.
DRIVER = Driver(parse=parse, build=build)
