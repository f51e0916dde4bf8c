"""Helpers of the serial meter bus tests (TIC, M-Bus): run a bus in the background, poll for a condition."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from drivers.base import Bus
from drivers.model import Record
from tests.tasks_testkit import stop


async def until(cond: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll until `cond()` holds; generous for a loaded 2-core machine."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(bus: Bus) -> AsyncIterator[list[Record]]:
    """Run the bus's loop for the duration of the block, collecting its records; then stop and close it."""
    records: list[Record] = []
    task = asyncio.create_task(bus.run(records.append))
    try:
        yield records
    finally:
        await stop(task)
        await bus.aclose()
