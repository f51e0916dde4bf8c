"""How the lighting service waits for its next instant: the clock's, or a change, whichever is first.

`WatchedWaiter` is for tests and benchmarks that step a FakeClock (as `FakeClock` lives beside
`SystemClock`): it says whether the service waits, for which instant, and how many times it
has, so the caller knows when the service has finished acting on an instant.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from edge_agent.clock import Clock


class Waiter:
    async def wait(self, clock: Clock, when: datetime, changed: asyncio.Event) -> None:
        """Return at `when` on `clock`, or as soon as `changed` is set."""
        if changed.is_set():
            return
        sleeper = asyncio.ensure_future(clock.sleep_until(when))
        woken = asyncio.ensure_future(changed.wait())
        try:
            await asyncio.sleep(0)  # let the sleeper register with the clock before saying we wait
            self.waiting(when)
            await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.woken()
            sleeper.cancel()
            woken.cancel()

    def waiting(self, when: datetime) -> None:
        """The service now waits for `when`."""

    def woken(self) -> None:
        """The service acts again (or stops)."""


class WatchedWaiter(Waiter):
    def __init__(self) -> None:
        #: set while the service waits; `next_wake` says for which instant, `cycles` counts the waits
        self.idle = asyncio.Event()
        self.next_wake: datetime | None = None
        self.cycles = 0

    def waiting(self, when: datetime) -> None:
        self.next_wake = when
        self.cycles += 1
        self.idle.set()

    def woken(self) -> None:
        self.idle.clear()
