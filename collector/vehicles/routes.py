"""Service vehicles over HTTP: the operators' API and the open data of waste collection.

    GET /api/v1/vehicles                      vehicles with their latest position
    GET /api/v1/vehicles/{vehicle}            one vehicle and its latest position
    GET /api/v1/vehicles/{vehicle}/trips      ?from=&to= (epoch ms; default the last 7 days)
    GET /api/v1/vehicles/{vehicle}/rounds     a waste vehicle's trips with the streets they served
    GET /opendata/v1/waste/collected.json     ?from=&to= (YYYY-MM-DD), ?commune=: "street collected on date"

Privacy: a police vehicle's position and trips are for operators holding the `police` role. Its
name and its gateway's are restricted names (collector.access.role_guard: any route naming them
answers 404 without the role, the generic samples and events routes included); the list here
leaves police vehicles out for everyone else. Open data never holds a police vehicle, a position,
a time of day or a vehicle name: only the streets waste rounds collected and the day, published
once the round has ended at least `CITYGATE_WASTE_PUBLISH_DELAY_S` ago (default 6 h).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from aiohttp import web

from citygate_wire.common import now_ms
from collector.access import add_restricted, has_role
from collector.appkeys import STORE, TERRITORY
from collector.credentials import POLICE
from collector.opendata import LICENSE, _window
from collector.params import int_param, invalid, json_response, page_of
from collector.problem import Problem
from collector.rollup import PARIS
from collector.vehicles.rounds import local_date, rounds, trips
from collector.vehicles.store import Vehicle, VehicleStore

DEFAULT_PUBLISH_DELAY_S = 6 * 3600
PUBLISH_DELAY_MS = web.AppKey("waste_publish_delay_ms", int)
#: how long the restricted names are cached (a vehicle added elsewhere is restricted within this)
NAMES_TTL_S = 2.0
WEEK_MS = 7 * 86_400_000
MAX_WINDOW_MS = 62 * 86_400_000


def publish_delay_from_env() -> int:
    raw = os.environ.get("CITYGATE_WASTE_PUBLISH_DELAY_S")
    try:
        value = DEFAULT_PUBLISH_DELAY_S if raw is None else float(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 30 * 86_400:
        raise ValueError(f"CITYGATE_WASTE_PUBLISH_DELAY_S={raw!r}: expected seconds between 0 and 30 days")
    return int(value * 1000)


class _PoliceNames:
    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._at = -NAMES_TTL_S

    async def __call__(self, app: web.Application) -> Mapping[str, str]:
        if time.monotonic() - self._at > NAMES_TTL_S:
            names: dict[str, str] = {}
            for v in await app[STORE].vehicles():
                if v.service == POLICE:
                    names[v.name] = names[v.gateway] = POLICE
            self._names, self._at = names, time.monotonic()
        return self._names


def add_vehicle_routes(app: web.Application, *, publish_delay_s: float | None = None) -> None:
    app[PUBLISH_DELAY_MS] = publish_delay_from_env() if publish_delay_s is None else int(publish_delay_s * 1000)
    add_restricted(app, _PoliceNames())
    r = app.router
    r.add_get("/api/v1/vehicles", get_vehicles)
    r.add_get("/api/v1/vehicles/{vehicle}", get_vehicle)
    r.add_get("/api/v1/vehicles/{vehicle}/trips", get_trips)
    r.add_get("/api/v1/vehicles/{vehicle}/rounds", get_rounds)
    r.add_get("/opendata/v1/waste/collected.json", get_collected)


async def _may_read(request: web.Request, v: Vehicle) -> bool:
    return v.service != POLICE or await has_role(request, POLICE)


async def _vehicle(request: web.Request) -> Vehicle:
    store: VehicleStore = request.app[STORE]
    v = await store.vehicle(request.match_info["vehicle"])
    if v is None or not await _may_read(request, v):  # a police vehicle does not exist for the others
        raise Problem(404, "unknown-vehicle", "Not Found", f"no vehicle {request.match_info['vehicle']!r}")
    return v


async def _doc(store: VehicleStore, v: Vehicle) -> dict[str, Any]:
    pos = await store.latest_position(v)
    return {"name": v.name, "service": v.service, "depot_commune": v.depot_commune, "gateway": v.gateway,
            "device": v.device, "position": pos.as_json() if pos else None}


async def get_vehicles(request: web.Request) -> web.Response:
    store: VehicleStore = request.app[STORE]
    page, meta = page_of(request, [v for v in await store.vehicles() if await _may_read(request, v)])
    return json_response({"vehicles": [await _doc(store, v) for v in page], **meta})


async def get_vehicle(request: web.Request) -> web.Response:
    return json_response(await _doc(request.app[STORE], await _vehicle(request)))


def _window_ms(request: web.Request) -> tuple[int, int]:
    now = now_ms()
    until = int_param(request, "to", now, 0, 2**62)
    since = int_param(request, "from", until - WEEK_MS, 0, 2**62)
    if since > until or until - since > MAX_WINDOW_MS:
        raise invalid("from", "from must be before to, at most 62 days apart")
    return since, until


async def get_trips(request: web.Request) -> web.Response:
    v = await _vehicle(request)
    since, until = _window_ms(request)
    return json_response({"vehicle": v.name, "from": since, "to": until,
                          "trips": await trips(request.app[STORE], v, since, until)})


async def get_rounds(request: web.Request) -> web.Response:
    v = await _vehicle(request)
    if v.service != "waste":
        raise Problem(404, "not-a-waste-vehicle", "Not Found", f"{v.name} is not a refuse vehicle: it has no rounds")
    since, until = _window_ms(request)
    return json_response({"vehicle": v.name, "from": since, "to": until,
                          "rounds": await rounds(request.app[STORE], v, since, until)})


async def get_collected(request: web.Request) -> web.Response:
    """Streets collected per day by the waste rounds that ended before now - the publication delay."""
    first, last = _window(request)
    raw = request.query.get("commune")
    commune = None
    if raw is not None:
        found = request.app[TERRITORY].resolve(raw)
        if found is None:
            raise Problem(404, "unknown-commune", "Not Found", f"{raw!r} is no commune of the territory",
                          parameter="commune")
        commune = found.insee
    store: VehicleStore = request.app[STORE]
    published_until = now_ms() - request.app[PUBLISH_DELAY_MS]
    since = int(_midnight(first.isoformat()))
    until = min(published_until, int(_midnight(last.isoformat())) + 86_400_000 + 3_600_000)
    streets = await store.streets()
    rows: set[tuple[str, str, str]] = set()
    for v in await store.vehicles():
        if v.service != "waste":
            continue
        for rnd in await rounds(store, v, since - 86_400_000, until, streets):
            if rnd["ended_ms"] > published_until:
                continue
            for s in rnd["streets"]:
                day = local_date(int(s["first_ms"]))
                if first.isoformat() <= day <= last.isoformat() and commune in (None, s["commune"]):
                    rows.add((day, s["commune"], s["street"]))
    return json_response({
        "license": LICENSE, "from": first.isoformat(), "to": last.isoformat(),
        "published_until": local_date(published_until),
        "rows": [{"date": d, "commune_insee": c, "street": s} for d, c, s in sorted(rows)],
    })


def _midnight(day: str) -> float:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), PARIS).timestamp() * 1000
