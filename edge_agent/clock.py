"""Time as an injected dependency, so a test runs a night or a year in seconds.

All instants are aware UTC datetimes. Local time appears only where a human schedule is read.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime
from typing import Protocol

from citygate_wire.simclock import ACTIVE as SIMULATED


def epoch_ms(instant: datetime) -> int:
    """An aware instant in epoch milliseconds, the unit of every record's timestamp."""
    return int(instant.timestamp() * 1000)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, aware, in UTC."""

    async def sleep_until(self, when: datetime) -> None:
        """Return at or after `when` (immediately if it is past)."""


class SystemClock:
    """The machine's clock (or the demo's simulated one: citygate_wire.simclock). Sleeps in short
    steps so a wall-clock jump (NTP, RTC) is noticed."""

    max_step_s: float = 1.0

    def now(self) -> datetime:
        if SIMULATED is not None:
            return datetime.fromtimestamp(SIMULATED.now_ms() / 1000, UTC)
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        speed = 1.0 if SIMULATED is None else SIMULATED.speed
        # polling on purpose: a wall-clock jump must be noticed within a step
        while (delay := (when - self.now()).total_seconds()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(delay / speed, self.max_step_s))


class FakeClock:
    """A clock that moves only when told: `advance()` wakes every sleeper whose instant has come, in order."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, when: datetime) -> None:
        if when <= self._now:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._order), fut))
        await fut

    async def advance_to(self, when: datetime) -> None:
        """Move time forward to `when`, stopping at each sleeper's instant and letting it run."""
        when = when.astimezone(UTC)
        while self._sleepers and self._sleepers[0][0] <= when:
            at, _, fut = heapq.heappop(self._sleepers)
            self._now = max(self._now, at)
            if not fut.done():
                fut.set_result(None)
            # let the woken task run (and perhaps schedule its next sleep) before moving on
            for _ in range(5):
                await asyncio.sleep(0)
        self._now = max(self._now, when)
        await asyncio.sleep(0)
