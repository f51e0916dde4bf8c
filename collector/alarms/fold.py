"""The fold: raw alarms (the MQTT alarm log) and uploaded events, read in id order, into operators' alarms.

Each source is read after a cursor, a page at a time, leaving out what is already folded (the
occurrence's key, collector.alarms.store). On PostgreSQL an id is taken when a transaction
inserts, not when it commits: a batch that commits late can hold ids below ones already read.
So a pass reads from the *settled* cursor, the highest id read at least SETTLE_S before, and
only that one is saved; what lies between is read again and left out as folded, for the price
of an index range over the last half-minute's ids.

One pass at a time per process (a lock); several collector instances on one store may fold the
same row at once: the occurrence's key refuses the second, in the transaction that would have
changed the alarm. On its first run the fold starts a day back (FIRST_RUN_MS), not at the start
of history: what was raised and never cleared before then is not an operator's alarm today.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from citygate_wire.common import now_ms
from collector.alarms.model import Occurrence
from collector.rollup import HOUR_MS
from collector.store import Store

SOURCES = ("mqtt", "upload")
PAGE = 2000
SETTLE_S = 30.0
FIRST_RUN_MS = 24 * HOUR_MS


class Fold:
    def __init__(self, store: Store, *, settle_s: float = SETTLE_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.settle_s = settle_s
        self.clock = clock
        self.lock = asyncio.Lock()
        self.passes = 0
        self._settled: dict[str, int] = {}
        self._heads: dict[str, deque[tuple[float, int]]] = {s: deque() for s in SOURCES}
        self._communes: dict[int, str] = {}

    async def catch_up(self) -> bool:
        """Fold everything new; whether an alarm opened, grew or cleared."""
        async with self.lock:
            changed = False
            for source in SOURCES:
                changed |= await self._source(source)
            self.passes += 1
            return changed

    async def _source(self, source: str) -> bool:
        if source not in self._settled:
            self._settled[source] = await self.store.alarm_fold_start(source, now_ms() - FIRST_RUN_MS)
        start = self._settled[source]
        head = max([start, *(h for _, h in self._heads[source])])
        changed = False
        after = start
        while True:
            rows, last = await self.store.alarm_sources(source, after, PAGE)
            for _, occurrence in rows:
                changed |= (await self.store.fold_occurrence(occurrence, await self._commune(occurrence),
                                                             now_ms()))[1]
            head = max(head, last)
            if last == after:
                break
            after = last
        await self._settle(source, head)
        return changed

    async def _settle(self, source: str, head: int) -> None:
        now = self.clock()
        heads = self._heads[source]
        heads.append((now, head))
        settled = self._settled[source]
        while heads and now - heads[0][0] >= self.settle_s:
            settled = max(settled, heads.popleft()[1])
        if settled != self._settled[source]:
            self._settled[source] = settled
            await self.store.save_alarm_fold(source, settled)

    async def _commune(self, o: Occurrence) -> str:
        if o.gateway_id not in self._communes:
            self._communes = {i.gateway.id: i.gateway.commune for i in await self.store.gateways()}
        return self._communes.get(o.gateway_id, "")
