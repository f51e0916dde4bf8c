"""Parking routes, the projector's task and its overstay checks.

Operators (the read API's rules: behind the operator login when the collector has one):

    GET /api/v1/parking/now                        occupancy per street and per zone now
    GET /api/v1/parking/spaces[?street=]           each space: state and since, sensor battery and radio
    GET /api/v1/parking/hourly?by=street|zone[&from=&to=]   mean occupancy, coverage, changes per hour
    GET /api/v1/parking/daily?by=street|zone[&from=&to=]    the same per day, and turnover

Open data (no login, no vehicle, no person):

    GET /opendata/v1/parking/hourly.csv[?from=&to=]   hourly occupancy per street

`from`/`to` are local dates (Europe/Paris, YYYY-MM-DD, inclusive), by default the last 31 days
(the open data's rule, collector.opendata). The space inventory is configs/parking/*.toml
(collector.parking.inventory; $CITYGATE_PARKING names another folder).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta

from aiohttp import web

from collector.appkeys import INGEST_LISTENERS, STORE
from collector.model import Gateway
from collector.opendata import LICENSE, _window
from collector.params import invalid, json_response, page_of, paged_list_response
from collector.parking import live, report
from collector.parking.inventory import Inventory, load_inventory
from collector.parking.project import iso, open_hours
from collector.parking.projector import Projector
from collector.parking.store import SpaceRow
from collector.rollup import PARIS

PROJECTOR = web.AppKey("parking_projector", Projector)
TICK_S = 5.0
CSV_FIELDS = ("hour_utc", "street_id", "street_name", "commune_insee", "spaces", "occupancy_pct", "coverage_pct",
              "changes")


def add_parking_routes(app: web.Application, inventory: Inventory | None = None) -> None:
    projector = Projector(app[STORE], inventory if inventory is not None else load_inventory())
    app[PROJECTOR] = projector
    app.router.add_get("/api/v1/parking/now", get_now)
    app.router.add_get("/api/v1/parking/spaces", get_spaces)
    app.router.add_get("/api/v1/parking/hourly", get_hourly)
    app.router.add_get("/api/v1/parking/daily", get_daily)
    app.router.add_get("/opendata/v1/parking/hourly.csv", get_csv)
    app.cleanup_ctx.append(_projecting)

    hearing = projector.inventory.gateways()

    def _nudge(gateway: Gateway, *_: object) -> None:
        # a parking gateway's batch was stored: apply it soon rather than at the next tick (another
        # gateway's batch has no sample to apply: a step for it read every parking gateway's cursor
        # for nothing, and with the whole metropolis uploading that tripled the collector's CPU)
        if gateway.name in hearing:
            projector.nudge()

    app[INGEST_LISTENERS].append(_nudge)


async def _projecting(app: web.Application) -> AsyncIterator[None]:
    projector = app[PROJECTOR]
    await projector.start()
    live.register(app[STORE], projector)
    task = asyncio.create_task(projector.run(TICK_S))
    try:
        yield
    finally:
        live.unregister(app[STORE])
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _spaces(request: web.Request) -> list[SpaceRow]:
    projector = request.app[PROJECTOR]
    await projector.catch_up()
    return list(projector.spaces.values())


def _by(request: web.Request) -> str:
    by = request.query.get("by", "street")
    if by not in report.BY:
        raise invalid("by", f"by must be street or zone, got {by!r}")
    return by


async def get_now(request: web.Request) -> web.Response:
    spaces = await _spaces(request)
    projector = request.app[PROJECTOR]
    inv = projector.inventory
    streets = [{"street": k, "name": inv.streets[k].name, "commune": inv.streets[k].commune, **c}
               for k, c in sorted(report.now_counts(spaces, "street").items()) if k in inv.streets]
    overstays = sorted(s.space for s in spaces if s.overstay_ms is not None)
    zone_of = {s.space: s.zone for s in spaces}
    zones = [{"zone": k, "name": inv.zones[k].name, "category": inv.zones[k].category,
              "max_stay_min": inv.zones[k].max_stay_min, **c,
              "overstays": sum(zone_of[o] == k for o in overstays)}
             for k, c in sorted(report.now_counts(spaces, "zone").items()) if k in inv.zones]
    return json_response({"at": iso(projector.clock()), "streets": streets, "zones": zones, "overstays": overstays})


async def get_spaces(request: web.Request) -> web.Response:
    street = request.query.get("street")
    rows, meta = page_of(request, sorted((s for s in await _spaces(request) if street is None or s.street == street),
                                         key=lambda s: s.space))
    return paged_list_response(request, [{"space": s.space, "street": s.street, "zone": s.zone, "state": s.state,
                           "since": None if s.since_ms is None else iso(s.since_ms),
                           "last_heard": None if s.last_ms is None else iso(s.last_ms),
                           "battery_pct": s.battery_pct, "battery_v": s.battery_v, "rssi_dbm": s.rssi_dbm,
                           "snr_db": s.snr_db, "overstay": s.overstay_ms is not None}
                          for s in rows], meta)


async def hourly_totals(request: web.Request, by: str) -> tuple[dict[tuple[str, int], report.Totals],
                                                                dict[str, int], str, str]:
    first, last = _window(request)
    lo = int(datetime.combine(first, time(), PARIS).timestamp() * 1000)
    hi = int(datetime.combine(last + timedelta(days=1), time(), PARIS).timestamp() * 1000)
    spaces = {s.space: s for s in await _spaces(request)}
    now = request.app[PROJECTOR].clock()
    hours = await request.app[STORE].parking_hours(lo, hi)
    hours += [h for h in open_hours(spaces.values(), min(now, hi), lo) if h.bucket < hi]
    sizes: dict[str, int] = {}
    for s in spaces.values():
        k = report.key_of(s, by)
        sizes[k] = sizes.get(k, 0) + 1
    return report.by_hour(spaces, hours, by), sizes, first.isoformat(), last.isoformat()


async def get_hourly(request: web.Request) -> web.Response:
    by = _by(request)
    hourly, sizes, first, last = await hourly_totals(request, by)
    rows = [{**report.hour_row(k, b, t, sizes[k]), "hour": iso(b)} for (k, b), t in sorted(hourly.items())]
    return json_response({"by": by, "from": first, "to": last, "rows": rows})


async def get_daily(request: web.Request) -> web.Response:
    by = _by(request)
    hourly, sizes, first, last = await hourly_totals(request, by)
    rows = [report.day_row(k, d, t, sizes[k]) for (k, d), t in sorted(report.by_day(hourly).items())]
    return json_response({"by": by, "from": first, "to": last, "rows": rows})


async def get_csv(request: web.Request) -> web.Response:
    hourly, sizes, first, last = await hourly_totals(request, "street")
    streets = request.app[PROJECTOR].inventory.streets
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(CSV_FIELDS)
    for (k, b), t in sorted(hourly.items(), key=lambda item: (item[0][1], item[0][0])):
        occ = report.occupancy(t)
        writer.writerow([iso(b), k, streets[k].name if k in streets else "", streets[k].commune if k in streets
                         else "", sizes[k], "" if occ is None else round(100 * occ, 2),
                         round(100 * report.coverage(t, sizes[k], 3_600_000), 2), t.changes])
    name = f"citygate-parking-hourly-{first}-{last}.csv"
    return web.Response(body=out.getvalue().encode(), headers={
        "Content-Disposition": f'attachment; filename="{name}"', "X-License": LICENSE,
        "Content-Type": "text/csv; charset=utf-8; header=present"})
