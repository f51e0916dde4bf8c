"""The operators' camera health API (under /api/v1/: operators only with `serve --operator-login`).

    GET /api/v1/cameras[?commune=INSEE][&gateway=NAME]
        {"cameras": [...], "cabinets": [...], "communes": [...]}: each camera's status (ok | faulty
        | unreachable | dark), open faults, firmware, clock drift and place; each cabinet's count
        and whether all its cameras are dark; per commune the counts by status.
    PUT /api/v1/cameras/{gateway}/{device}/site   {"location": "...", "lat": 47.3, "lon": 5.0}
        where the camera stands (operators only: never in open data, NGSI or a public page).

No image, no stream URL, no credential is ever in an answer: the collector has none.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from aiohttp import web

from collector.access import operator_name
from collector.appkeys import STORE, TERRITORY
from collector.cameras.store import CameraSite
from collector.cameras.views import camera_doc, fold
from collector.params import json_body, json_response, page_of
from collector.problem import Problem

HISTORY_DAYS = 90  # faults older than this and never cleared drop out of the view
MAX_LOCATION = 200


def add_camera_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/cameras", get_cameras)
    app.router.add_put("/api/v1/cameras/{gateway}/{device}/site", put_site)


async def get_cameras(request: web.Request) -> web.Response:
    store = request.app[STORE]
    commune = request.query.get("commune")
    gateway = request.query.get("gateway")
    if commune is not None:
        found = request.app[TERRITORY].resolve(commune)
        if found is None:
            raise Problem(404, "unknown-commune", "Not Found", f"{commune[:20]!r} is no commune of the territory")
        commune = found.insee
    since = int(time.time() * 1000) - HISTORY_DAYS * 86_400_000
    cams, cabinets = fold(await store.camera_events(since, None if gateway is None else [gateway]))
    if commune is not None:
        cams = {k: c for k, c in cams.items() if c.commune == commune}
        cabinets = {k: c for k, c in cabinets.items() if c.commune == commune}
    sites = await store.camera_sites()
    docs: list[dict[str, Any]] = []
    for gw in sorted({c.gateway for c in cams.values()}):
        mine = sorted((c for c in cams.values() if c.gateway == gw), key=lambda c: c.device)
        latest = await store.latest_values(gw, [c.device for c in mine])
        dark = cabinets[gw].dark_since_ms is not None if gw in cabinets else False
        docs += [camera_doc(c, dark, latest.get(c.device), sites.get((gw, c.device))) for c in mine]
    communes: dict[str, Counter[str]] = {}
    for d in docs:
        communes.setdefault(d["commune"], Counter())[d["status"]] += 1
    docs, meta = page_of(request, docs)  # the communes' counts are of every camera, the rest of this page's
    per_cabinet = Counter(d["gateway"] for d in docs)
    cabinet_docs = [{"gateway": c.gateway, "commune": c.commune, "cabinet": c.cabinet,
                     "cameras": per_cabinet[c.gateway], "dark_since_ms": c.dark_since_ms}
                    for c in sorted(cabinets.values(), key=lambda c: c.gateway) if per_cabinet[c.gateway]]
    return json_response({**meta,
        "cameras": docs, "cabinets": cabinet_docs,
        "communes": [{"commune": k, "cameras": sum(v.values()), **{s: v[s] for s in
                      ("ok", "faulty", "unreachable", "dark")}} for k, v in sorted(communes.items())],
    })


async def put_site(request: web.Request) -> web.Response:
    body = await json_body(request)
    gateway, device = request.match_info["gateway"], request.match_info["device"]
    location = body.get("location") if isinstance(body, dict) else None
    if not isinstance(location, str) or not location.strip() or len(location) > MAX_LOCATION:
        raise Problem(400, "invalid-body", "Invalid body", f"location: a non-empty text of at most {MAX_LOCATION} characters")
    lat, lon = body.get("lat"), body.get("lon")
    for name, value, bound in (("lat", lat, 90), ("lon", lon, 180)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not -bound <= value <= bound):
            raise Problem(400, "invalid-body", "Invalid body", f"{name}: a number within ±{bound}, or absent")
    store = request.app[STORE]
    if await store.gateway(gateway) is None:
        raise Problem(404, "unknown-gateway", "Not Found", f"no gateway {gateway[:100]!r}")
    site = CameraSite(gateway, device, location.strip(), lat, lon, int(time.time() * 1000),
                      await operator_name(request))
    await store.set_camera_site(site)
    return json_response({"gateway": gateway, "device": device, "location": site.location,
                          "lat": lat, "lon": lon})
