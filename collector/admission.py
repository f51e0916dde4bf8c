"""Admission control of batch ingest: a bounded number of batches read, inflated, decoded and
stored at once in an instance, a short queue of batches waiting for a place (their bodies not read
yet), and beyond it a fast 503 with `Retry-After`, before the body is read.

Without a bound, a fleet back after an outage had every gateway's batch read, inflated and
decoded at once before it queued for the store's single writer or its connection pool: ≈ 2 GB
resident for 1,500 gateways, answers after 30 s, client timeouts, and each timed-out batch sent
and processed again. With it, the memory is `limit` batches. Up to `queue` more wait, at most
`queue_wait_s`, for a place, taking it in their order the moment one is free (what they hold is
what the connection buffered of their body, some tens of kB): the store never waits for a
gateway to come back. Beyond that a refused gateway is told when to come back: each refused batch is given the next free place in a schedule that moves on by the
instance's measured pace (the mean time a batch holds its slot ÷ the slots), so the refused ones
come back one after the other at the pace they can be taken, not all at once and not later than
needed; `Retry-After` is the wait until that place (at least 1 s, at most `max_retry_after_s`).
The edge agent's uploader honours it.

A client that gave up (timed out, its connection closed) while its batch waited or was decoded is
not stored: `client_gone` is checked just before the store's transaction. One that gives up during
the transaction cannot be told: its batch is stored and acknowledged to nobody; the agent sends the
same records again (same sequence numbers) and the store's duplicate check answers them as
duplicates with the same `ack_seq`, so the gateway learns it then, and nothing is stored twice.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from collector.problem import Problem

ENV = "CITYGATE_MAX_CONCURRENT_BATCHES"
#: batches in process at once: a 5,000-record batch is ≈ 1 MB inflated and ≈ 3 MB decoded, and the
#: store takes one at a time (SQLite) or a pool's worth (PostgreSQL): more only waits, in memory
DEFAULT_LIMIT = 8
MAX_RETRY_AFTER_S = 60
#: well within the agent's 30 s timeout for the whole exchange
QUEUE_WAIT_S = 10.0


class Overloaded(Problem):
    def __init__(self, retry_after_s: int, limit: int) -> None:
        super().__init__(503, "overloaded", "Collector busy",
                         f"{limit} batches are being processed: send this one again in {retry_after_s} s",
                         headers={"Retry-After": str(retry_after_s)}, retry_after_s=retry_after_s)


class Admission:
    def __init__(self, limit: int = DEFAULT_LIMIT, *, queue: int | None = None, queue_wait_s: float = QUEUE_WAIT_S,
                 max_retry_after_s: int = MAX_RETRY_AFTER_S) -> None:
        if limit < 1:
            raise ValueError("at least one batch at a time")
        self.limit = limit
        self.queue = 2 * limit if queue is None else queue
        self.queue_wait_s = queue_wait_s
        self.max_retry_after_s = max_retry_after_s
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.active = 0
        self.peak = 0
        self.refused = 0  # 503s answered
        self.gone = 0  # batches not stored: their client had left
        self._service_s = 0.05  # moving mean of the time a batch holds its slot
        self._booked_until = 0.0  # monotonic time of the last place given to a refused batch

    def retry_after(self, now: float) -> int:
        """Seconds until the next free place of the schedule (which that batch takes)."""
        self._booked_until = max(self._booked_until, now) + self._service_s / self.limit
        wait = self._booked_until - now
        if wait > self.max_retry_after_s:  # the schedule is full that far: no place is kept
            self._booked_until -= self._service_s / self.limit
        return max(1, min(self.max_retry_after_s, math.ceil(wait + random.uniform(0, 0.5))))

    def _refuse(self, now: float) -> Overloaded:
        self.refused += 1
        return Overloaded(self.retry_after(now), self.limit)

    async def _wait_turn(self, now: float) -> None:
        """Wait in the queue until a place is handed over, or Overloaded."""
        if len(self._waiters) >= self.queue:
            raise self._refuse(now)
        turn = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        try:
            async with asyncio.timeout(self.queue_wait_s):
                await turn
        except TimeoutError:
            if turn.cancelled():  # the timeout cancelled it: still waiting, not handed a place
                self._waiters.remove(turn)
                raise self._refuse(time.monotonic()) from None
            # the place was handed over as the time ran out: it is ours
        except BaseException:  # cancelled (the app stops): a place handed over goes on to the next
            if turn.done() and not turn.cancelled():
                self._release()
            elif turn in self._waiters:
                self._waiters.remove(turn)
            raise

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """One batch's place (at once, or after a short wait in the queue), or Overloaded (503)."""
        now = time.monotonic()
        if self.active >= self.limit:
            await self._wait_turn(now)  # a place handed over keeps `active` as it is
        else:
            self.active += 1
        self.peak = max(self.peak, self.active)
        started = time.monotonic()
        try:
            yield
        finally:
            self._service_s += 0.1 * (time.monotonic() - started - self._service_s)
            self._release()

    def _release(self) -> None:
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                turn.set_result(None)  # the place goes to the first waiting batch
                return
        self.active -= 1


def client_gone(request: web.Request) -> bool:
    """Whether the client of `request` has closed its connection (timed out, gave up)."""
    transport = request.transport
    return transport is None or transport.is_closing()


class ClientGone(Problem):
    """The client left before its batch was stored: nothing was stored, nobody hears the answer."""

    def __init__(self, why: str) -> None:
        super().__init__(499, "client-closed", "Client closed the request", why)


def limit_from_env() -> int:
    """$CITYGATE_MAX_CONCURRENT_BATCHES (>= 1), or DEFAULT_LIMIT; ValueError says what is wrong."""
    raw = os.environ.get(ENV)
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{ENV}={raw!r}: expected a whole number of batches, at least 1")
    return int(raw)


ADMISSION = web.AppKey("admission", Admission)
