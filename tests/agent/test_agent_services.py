"""Feature sections of the agent config become running services fed with journalled records."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

import orjson

from drivers.base import DeviceState
from drivers.errors import DeviceError
from drivers.model import RecordSink, Sample
from drivers.registry import BusSpec, Driver
from edge_agent.agent import Agent
from edge_agent.analytics import AnalyticsService
from edge_agent.config import parse_config

CONFIG = """
[gateway]
id = "gw-analytics"
commune = "21231"
state_dir = "state"

[uplink]
url = "http://127.0.0.1:9"
token = "t"

[local_api]
socket = "state/agent.sock"

[analytics.energy]
tic_device = "linky"
lamps = ["lamp-1", "lamp-2"]
tolerance_pct = 10
window_s = 60
grace_s = 0
min_energy_wh = 1
"""

T0 = 1_764_000_000_000


async def test_analytics_section_runs_on_journalled_samples_and_reports_an_energy_mismatch(tmp_path: Path) -> None:
    cfg = parse_config(tomllib.loads(CONFIG), tmp_path / "agent.toml")
    agent = Agent(cfg)
    assert any(isinstance(s, AnalyticsService) for s in agent.services)
    task = asyncio.create_task(agent.run())
    try:
        await asyncio.sleep(0.3)
        # the meter sees 1 kWh a minute go through the cabinet; the lamps account for a tenth of it
        for minute in range(6):
            ts = T0 + minute * 60_000
            agent.emit(Sample("linky", ts, {"energy_wh": 10_000 + 1000 * minute}))
            agent.emit(Sample("lamp-1", ts, {"energy_wh": 500 + 50 * minute}))
            agent.emit(Sample("lamp-2", ts, {"energy_wh": 700 + 50 * minute}))
        batch = None
        for _ in range(100):
            await agent.journal.flush()
            batch = await agent.journal.read_pending(1000, 10**7)
            codes = [orjson.loads(b).get("code") for b in (batch.records if batch else [])]
            if "energy_mismatch" in codes:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert batch is not None
    events = [orjson.loads(b) for b in batch.records if b'"energy_mismatch"' in b]
    assert events, "the analytics service should have reported the missing energy"
    assert events[0]["device"] == "linky"


class DeafOnceBus:
    """Drops the first cancellation it gets, as asyncio.wait_for does on Python 3.11 when the awaited
    answer arrives together with the cancellation (pymodbus awaits every request with it)."""

    name = "deaf-once"

    def __init__(self) -> None:
        self.dropped = 0
        self.running = False
        self.state = DeviceState("dev-1", self.name, "1")

    def states(self) -> list[DeviceState]:
        return [self.state]

    async def run(self, sink: RecordSink) -> None:
        self.running = True
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if self.dropped:
                    raise
                self.dropped += 1

    async def read(self, device: str) -> Sample:
        raise DeviceError(device, "nothing to read")

    async def aclose(self) -> None:
        return None


async def test_the_agent_stops_even_when_a_bus_drops_its_first_cancellation(tmp_path: Path) -> None:
    cfg = parse_config(tomllib.loads(CONFIG), tmp_path / "agent.toml")
    bus = DeafOnceBus()
    cfg.buses.append(BusSpec("deaf-once", bus, Driver(parse=lambda raw, ctx: bus, build=lambda _: bus)))
    task = asyncio.create_task(Agent(cfg).run())
    for _ in range(1000):  # the bus runs once the agent has started (a loaded machine takes its time)
        if bus.running:
            break
        await asyncio.sleep(0.01)
    assert bus.running, "the bus never ran"
    await asyncio.sleep(0.05)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=10)
    assert task in done and task.cancelled(), "the agent still runs 10 s after its cancellation"
    assert bus.dropped == 1  # cancelled again, it left
