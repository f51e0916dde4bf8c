"""Running loops together and stopping them for sure: what both halves need from asyncio.

On Python 3.11 `asyncio.wait_for` returns the awaited result and drops the cancellation when
both arrive together (fixed in 3.12). pymodbus awaits every request with it and aiomqtt every
publish, so a loop cancelled at that moment runs on. A TaskGroup cancels its tasks once and
then waits for them, forever in that case. These helpers cancel again until the tasks end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from typing import Any

log = logging.getLogger("citygate.aio")

#: a task still running this long after its cancellation is cancelled again
RECANCEL_S = 1.0


def await_chain(coro: object) -> list[str]:
    """Where a coroutine waits, outermost first, following each `await` down to the innermost."""
    where: list[str] = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            where.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return where


async def stop_tasks(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel `tasks` and wait until every one has ended, cancelling again each RECANCEL_S those
    still running (and saying once where each waits)."""
    pending = {task for task in tasks if not task.done()}
    for task in pending:
        task.cancel()
    warned: set[asyncio.Task[Any]] = set()
    while pending:
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_S)
        for task in pending:
            if task not in warned:
                warned.add(task)
                log.warning("%s still runs %.0f s after its cancellation, awaiting:\n  %s\ncancelling it again",
                            task.get_name(), RECANCEL_S, "\n  ".join(await_chain(task.get_coro())))
            task.cancel()


async def run_together(coros: dict[str, Coroutine[Any, Any, None]]) -> None:
    """Run the coroutines (name -> coroutine) as tasks until one fails or the caller is cancelled;
    then stop the others for sure (stop_tasks) and raise that failure, or the cancellation. Like a
    TaskGroup, but it raises the first failure itself rather than an ExceptionGroup."""
    tasks = [asyncio.create_task(coro, name=name) for name, coro in coros.items()]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        await stop_tasks(tasks)
    for task in tasks:
        if task in done and not task.cancelled():
            failure = task.exception()
            if failure is not None:
                raise failure
