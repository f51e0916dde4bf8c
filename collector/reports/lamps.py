"""Residents' lamp reports follow their lamp's fault as the telemetry sees it.

A lamp-out request is tied to its lamp by the lamp number the resident typed, or by its place: a
faulty lamp whose cabinet stands within NEAR_LAMP_M in the same commune (the collector knows
cabinets' positions; a lamp's own is the gateway's config). When the telemetry sees the fault
after the report came in, the request is tied to it then; when the lamp is restored
(`lamp_restored`), its open request is resolved with a note saying so, by the collector, audited.

`follow_lamps` runs in the background of the app: after each ingested batch (at most every
MIN_GAP_S) and every POLL_S anyway, so what another collector instance ingested is seen too.
Its changes are conditional on the request's state, so two instances never resolve one twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from citygate_wire.common import now_ms
from collector.appkeys import INGEST_LISTENERS, STORE
from collector.live import CHANGES
from collector.readmodel import LampFault
from collector.reports.model import OPEN_STATES, distance_m
from collector.reports.services import LAMP_OUT
from collector.reports.store import Filters, Lamp
from collector.store import Store

log = logging.getLogger("citygate.collector.reports")

TOPIC = "reports"
#: a located lamp-out report is about a faulty lamp of a cabinet at most this far away
NEAR_LAMP_M = 150.0
MIN_GAP_S = 5.0  # at most this often: a metropolis posts batches every few milliseconds
POLL_S = 15.0
#: open lamp requests looked at in one pass (the oldest first would need another index: newest first)
MAX_OPEN = 10_000


async def lamp_near(store: Store, commune: str, lat: float, lon: float,
                    faults: list[LampFault] | None = None) -> tuple[Lamp | None, int | None]:
    """The faulty lamp a located report is about, and when its fault started, or (None, None)."""
    cabinets = {i.gateway.name: i.gateway for i in await store.gateways()}
    best: tuple[float, str] | None = None
    faults = await store.open_lamp_faults() if faults is None else faults
    for f in faults:
        g = cabinets.get(f.gateway)
        if g is None or g.lat is None or g.lon is None or g.commune != commune:
            continue
        d = distance_m(lat, lon, g.lat, g.lon)
        if d <= NEAR_LAMP_M and (best is None or d < best[0]):
            best = (d, f.gateway)
    if best is None:
        return None, None
    nearby = [f for f in faults if f.gateway == best[1]]
    for f in nearby:  # a lamp of that cabinet already has an open report: that is the one
        if await store.open_report_for_lamp(Lamp(f.gateway, f.device)) is not None:
            return Lamp(f.gateway, f.device), f.since_ms
    return Lamp(nearby[0].gateway, nearby[0].device), nearby[0].since_ms


async def reconcile(store: Store, now: int) -> int:
    """Tie open lamp requests to their lamp's fault, resolve those whose lamp works again; how many changed."""
    rows = await store.reports(Filters(service_codes=(LAMP_OUT,), states=OPEN_STATES, limit=MAX_OPEN))
    if not rows:
        return 0
    faults = await store.open_lamp_faults()
    by_lamp = {(f.gateway, f.device): f for f in faults}
    # a report placed near a fault takes a faulty lamp nobody reported yet
    reported = {(r.lamp_gateway, r.lamp_device) for r in rows}
    free = [f for f in faults if (f.gateway, f.device) not in reported]
    changed = 0
    for row in rows:
        if row.lamp_gateway is not None and row.lamp_device is not None:
            fault = by_lamp.get((row.lamp_gateway, row.lamp_device))
            if fault is None and row.fault_since_ms is not None:
                changed += await store.close_report_with_lamp(row.id, now)
            elif fault is not None and row.fault_since_ms != fault.since_ms:
                changed += await store.link_report_lamp(row.id, Lamp(fault.gateway, fault.device), fault.since_ms, now)
        elif row.lat is not None and row.lon is not None and free:
            lamp, since = await lamp_near(store, row.jurisdiction, row.lat, row.lon, free)
            if lamp is not None and since is not None and await store.link_report_lamp(row.id, lamp, since, now):
                changed += 1
                free = [f for f in free if (f.gateway, f.device) != (lamp.gateway, lamp.device)]
    return changed


def install_lamp_follower(app: web.Application) -> None:
    """Run `reconcile` in the background while the app serves."""
    wake = asyncio.Event()
    app[INGEST_LISTENERS].append(lambda *_: wake.set())

    async def follow_lamps(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_loop(app, wake))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(follow_lamps)


async def _loop(app: web.Application, wake: asyncio.Event) -> None:
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), POLL_S)
        wake.clear()
        try:
            if await reconcile(app[STORE], now_ms()):
                app[CHANGES].notify(TOPIC)
        except Exception:  # a store hiccup must not end the follower: the next pass tries again
            log.exception("following the lamps of the residents' reports failed; retrying")
        await asyncio.sleep(MIN_GAP_S)
