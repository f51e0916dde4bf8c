"""The collector's parking projector: reads the parking gateways' new samples from the store, in
seq order, and applies them to the spaces (collector.parking.project) in one transaction per step
with the cursor; raises blue-zone overstays. Run by the app (a task, and before each parking read
so that what is served is live), and by the tests and the benchmark directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable

import orjson

from citygate_wire.common import now_ms
from collector.parking.inventory import Inventory, Zone
from collector.parking.project import Hours, apply_sample, hour_rows, overstay_event, overstays
from collector.parking.store import EventRow, SpaceRow
from collector.store import Store

log = logging.getLogger("citygate.parking")
CHUNK = 5000  # samples read and applied at once


class Projector:
    def __init__(self, store: Store, inventory: Inventory, *, clock: Callable[[], int] = now_ms) -> None:
        self.store = store
        self.inventory = inventory
        self.clock = clock
        self.spaces: dict[str, SpaceRow] = {}
        self.zones: dict[str, Zone] = {}
        self.applied = 0  # samples applied since start
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()

    async def start(self) -> None:
        inv = self.inventory
        await self.store.parking_sync(
            list(inv.zones.values()), list(inv.streets.values()),
            [SpaceRow(p.id, p.street, p.zone, p.gateway, p.lat, p.lon) for p in inv.spaces.values()])
        await self._reload()

    async def _reload(self) -> None:
        self.spaces = {s.space: s for s in await self.store.parking_spaces() if s.space in self.inventory.spaces}
        self.zones = {z.id: z for z in await self.store.parking_zones()}

    async def catch_up(self) -> int:
        """Apply every sample stored so far; the number applied."""
        async with self._lock:
            done = 0
            for name in sorted(self.inventory.gateways()):
                gateway = await self.store.gateway(name)
                if gateway is not None:
                    done += await self._gateway(gateway.id)
            return done

    async def _gateway(self, gateway_id: int) -> int:
        done = 0
        while True:
            cursor = await self.store.parking_cursor(gateway_id)
            rows = await self.store.parking_samples(gateway_id, cursor, CHUNK)
            if not rows:
                return done
            hours: Hours = {}
            events: list[EventRow] = []
            touched: dict[str, SpaceRow] = {}
            saved: dict[str, SpaceRow] = {}  # each touched space as it was, to undo a step not stored
            for _seq, device, ts, vals in rows:
                row = self.spaces.get(device)
                if row is None:
                    continue
                if device not in saved:
                    saved[device] = dataclasses.replace(row)
                apply_sample(row, ts, orjson.loads(vals), hours, gateway_id, events)
                touched[device] = row
            try:
                stored = await self.store.parking_apply(gateway_id, cursor, rows[-1][0], list(touched.values()),
                                                        hour_rows(hours), events)
            except BaseException:
                self.spaces.update(saved)  # nothing of this step was stored
                raise
            if not stored:  # another collector instance applied these samples: take its result
                log.info("parking: samples of gateway %d after seq %d applied elsewhere; reloaded", gateway_id, cursor)
                await self._reload()
                continue
            done += len(rows)
            self.applied += len(rows)

    async def check_overstays(self) -> int:
        """Raise the overstays due now (once each, whatever the number of instances)."""
        async with self._lock:
            now = self.clock()
            raised = 0
            ids = {name: g.id for name in self.inventory.gateways() if (g := await self.store.gateway(name))}
            for s in overstays(self.spaces.values(), self.zones, now):
                gid = ids.get(s.gateway)
                if gid is None:
                    continue
                event = overstay_event(s, self.zones[s.zone], gid, now)
                if await self.store.parking_overstay(s, event):
                    raised += 1
                s.overstay_ms = now
            return raised

    def nudge(self) -> None:
        """New samples are stored: run a step now rather than at the next tick."""
        self._wake.set()

    async def run(self, interval_s: float = 5.0) -> None:
        while True:
            self._wake.clear()
            try:
                await self.catch_up()
                await self.check_overstays()
            except Exception:
                log.exception("parking projection step failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval_s)

