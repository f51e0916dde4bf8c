"""Parking fixtures: a real Mosquitto on a free port (anonymous, as a network server's local broker
often is on its loopback), started and killed by the test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from drivers.base import BusContext
from drivers.lorawan.bus import LorawanBus
from drivers.model import Event, Record
from drivers.registry import parse_bus
from simulators.mosquitto import Mosquitto
from simulators.parking import Faults, ParkingSim, publish, spaces_of, write_sensors_csv
from tests.tasks_testkit import stop


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path / "broker", persistence=False)
    b.start()
    try:
        yield b
    finally:
        b.kill()


@dataclass
class Field:
    """One run of the simulated street sensors through Mosquitto to a lorawan-chirpstack bus."""

    sim: ParkingSim
    records: list[Record]
    bus: LorawanBus
    sent: int

    def judged_silent(self) -> set[str]:
        """Spaces the bus ever judged silent: the simulator's silent ones, and any whose frames a loaded
        machine delayed past the heartbeat (their next frame brought them back)."""
        return {r.device for r in self.records if isinstance(r, Event) and r.code == "sensor_silent"}

    def silent_at_end(self) -> set[str]:
        return {st.sensor.space for st in self.bus.tracker.states.values() if st.silent}


HEARTBEAT_S = 1.0  # the sensors' heartbeat (sim time runs at wall speed) and the bus's setting
GRACE_S = 1.5  # silent after 2.5 s: a loaded CI machine delays frames by a second at times
RUN_S = 4.5
FAULTS = Faults(silent=0.15, flapping=0.1, low_battery=0.15, duplicate=0.1, late=0.1, reset=0.05)


async def run_field(broker: Mosquitto, folder: Path) -> Field:
    spaces = spaces_of()  # configs/parking: the inventory the collector loads too
    write_sensors_csv(spaces, folder / "sensors.csv", HEARTBEAT_S)
    table = {"name": "lora0", "type": "lorawan-chirpstack", "port": broker.port, "sensors_file": "sensors.csv",
             "silence_grace_s": GRACE_S, "tick_s": 0.1, "client_id": f"test-{folder.name}"}
    bus = parse_bus(table, BusContext("bus[0]", folder)).build()
    assert isinstance(bus, LorawanBus)
    records: list[Record] = []
    task = asyncio.create_task(bus.run(records.append))
    try:
        async with asyncio.timeout(10):
            while not bus.connected:
                await asyncio.sleep(0.02)
        sim = ParkingSim(spaces, int(time.time() * 1000), heartbeat_s=HEARTBEAT_S, mean_stay_s=1.5, faults=FAULTS,
                         seed=7)
        sent = await publish(sim, "127.0.0.1", broker.port, speed=1.0, duration_s=RUN_S, tick_s=0.05)
        await asyncio.sleep(0.4)  # the broker delivers what is in flight
        silent = [st for st in bus.tracker.states.values() if st.sensor.space in sim.truth.silent]
        async with asyncio.timeout(10):  # and the bus judges the sensors that went silent
            while not all(st.silent for st in silent):
                await asyncio.sleep(0.05)
    finally:
        await stop(task)
    return Field(sim, records, bus, sent)


@pytest.fixture(scope="session")
def field(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Field]:
    """Run once, shared by the tests of the bus and of the collector (the run takes RUN_S seconds)."""
    folder = tmp_path_factory.mktemp("field")
    b = Mosquitto(folder / "broker", persistence=False)
    b.start()
    try:
        yield asyncio.run(run_field(b, folder))
    finally:
        b.kill()
