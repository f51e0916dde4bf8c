"""citygate_wire.aio: loops run together stop for sure, even one that drops its first cancellation
(as asyncio.wait_for does on Python 3.11 when the answer and the cancellation come together)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from citygate_wire.aio import run_together, stop_tasks


class Deaf:
    """A loop that drops its first `drops` cancellations."""

    def __init__(self, drops: int = 1) -> None:
        self.drops = drops
        self.dropped = 0
        self.ended = False

    async def run(self) -> None:
        try:
            while True:
                try:
                    await asyncio.sleep(0.01)
                except asyncio.CancelledError:
                    if self.dropped >= self.drops:
                        raise
                    self.dropped += 1
        finally:
            self.ended = True


async def test_the_first_failure_is_raised_as_itself_and_the_other_loops_are_stopped() -> None:
    deaf = Deaf()

    async def breaks() -> None:
        await asyncio.sleep(0.05)
        raise ConnectionResetError("the link broke")

    with pytest.raises(ConnectionResetError, match="the link broke"):
        await asyncio.wait_for(run_together({"deaf": deaf.run(), "breaks": breaks()}), 10)
    assert deaf.ended and deaf.dropped == 1


async def test_a_cancelled_caller_leaves_only_once_every_loop_has_ended(caplog: pytest.LogCaptureFixture) -> None:
    deaf = Deaf(drops=2)
    caller = asyncio.create_task(run_together({"deaf loop": deaf.run()}))
    await asyncio.sleep(0.05)
    with caplog.at_level(logging.WARNING, logger="citygate.aio"):
        caller.cancel()
        done, _ = await asyncio.wait([caller], timeout=10)
    assert caller in done and caller.cancelled() and deaf.ended and deaf.dropped == 2
    warnings = [r.getMessage() for r in caplog.records if "deaf loop still runs" in r.getMessage()]
    assert len(warnings) == 1 and "in run" in warnings[0]  # said once, with where it waits


async def test_stop_tasks_on_finished_tasks_returns_at_once() -> None:
    done = asyncio.create_task(asyncio.sleep(0))
    await done
    await asyncio.wait_for(stop_tasks([done]), 1)
