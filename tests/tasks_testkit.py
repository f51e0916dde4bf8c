"""Stopping a driver's task in a test as the agent stops it."""

from __future__ import annotations

import asyncio
from typing import Any

from citygate_wire.aio import stop_tasks


async def stop(task: asyncio.Task[Any]) -> None:
    """Stop `task` for sure, then raise its failure if it failed. Cancelled once, a bus polling with
    pymodbus can run on: on Python 3.11 a cancellation landing as a request completes is dropped
    (citygate_wire.aio), and a test awaiting it then hung until its 300 s timeout; the agent cancels
    again until its tasks end (stop_tasks), and so do the tests."""
    await stop_tasks([task])
    if not task.cancelled() and (failure := task.exception()) is not None:
        raise failure
