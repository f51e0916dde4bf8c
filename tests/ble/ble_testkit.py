"""Helpers of the BLE tests: scenarios in code, a bus on the replay backend, a recording sink, polling."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from drivers import bthome
from drivers.ble import AllowedSensor, BleBus, BleConfig
from drivers.model import Event, Record, Sample
from simulators.ble import ReplayScanner, parse_scenario
from tests.tasks_testkit import stop

KEY_HEX = "231d39c1d7cc1ab1aee224cd096db932"
KEY = bytes.fromhex(KEY_HEX)


class Sink:
    """The records a bus hands over, in order."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def __call__(self, record: Record) -> None:
        self.records.append(record)

    def samples(self, device: str) -> list[Sample]:
        return [r for r in self.records if isinstance(r, Sample) and r.device == device]

    def events(self, code: str, device: str | None = None) -> list[Event]:
        return [r for r in self.records if isinstance(r, Event) and r.code == code
                and (device is None or r.device == device)]


async def until(cond: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll until `cond()` holds; generous for a loaded 2-core machine."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def replay_bus(devices: list[dict[str, Any]], sensors: list[AllowedSensor], *, counters_path: Path | None = None,
               **config: Any) -> BleBus:
    scenario = parse_scenario({"devices": devices}, "test scenario")
    settings: dict[str, Any] = {"min_interval_s": 0.0, "silent_after_s": 60.0, **config}
    return BleBus(BleConfig("ble-test", tuple(sensors), **settings), backend=ReplayScanner,
                  backend_kwargs={"scenario": scenario}, counters_path=counters_path)


@contextlib.asynccontextmanager
async def running(bus: BleBus) -> AsyncIterator[tuple[Sink, asyncio.Task[None]]]:
    sink = Sink()
    task = asyncio.create_task(bus.run(sink))
    try:
        yield sink, task
    finally:
        await stop(task)
        await bus.aclose()


def encrypted(mac: str, values: dict[str, Any], counter: int, packet_id: int | None = None) -> str:
    objects = bthome.objects_for_values(values)
    if packet_id is not None:
        objects.insert(0, (0x00, packet_id))
    return bthome.encode(objects, key=KEY, mac=bthome.parse_mac(mac), counter=counter).hex()
