"""Routes of the control-centre page: the page, its assets, its JSON and its live stream.

    GET /                                  -> 302 /control/
    GET /control                           -> 301 /control/ (the page has one address, with its slash)
    GET /control/                          the page
    GET /control/assets/{name}             its script and style sheet
    GET /control/api/summary               the metropolis
    GET /control/api/communes/{insee}      one commune (a former commune's code works too)
    GET /control/api/cabinets/{gateway}    one cabinet
    GET /control/api/stream                SSE: `summary` at once and at every change

Like the read API, these are for operators only with `serve --operator-login` (collector.access);
without it they need no login, for a collector on the operators' own network.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from collector.appkeys import INGEST_LISTENERS
from collector.dashboard import data
from collector.live import CHANGES, sse
from collector.params import json_response
from collector.problem import Problem
from collector.reports.routes import TOPIC as REPORTS_TOPIC

ASSETS = Path(__file__).parent / "assets"
#: name -> content type; nothing else under assets/ is served
SERVED = {"app.js": "text/javascript", "app.css": "text/css", "index.html": "text/html",
          "traffic.js": "text/javascript", "cameras.js": "text/javascript", "parking.js": "text/javascript"}
INGEST_TOPIC = "ingest"
STREAM_GAP_S = 1.0
SUMMARY_TTL_S = 0.5


@dataclass
class SummaryCache:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    doc: dict[str, Any] | None = None
    at: float = 0.0
    version: int = -1


SUMMARY_CACHE = web.AppKey("dashboard_summary_cache", SummaryCache)


def add_dashboard_routes(app: web.Application) -> None:
    changes = app[CHANGES]
    app[SUMMARY_CACHE] = SummaryCache()
    app[INGEST_LISTENERS].append(lambda *_: changes.notify(INGEST_TOPIC))
    r = app.router
    r.add_get("/", root)
    r.add_get("/control", to_page)
    r.add_get("/control/", page)
    r.add_get("/control/assets/{name}", asset)
    r.add_get("/control/api/summary", get_summary)
    r.add_get("/control/api/communes/{insee}", get_commune)
    r.add_get("/control/api/cabinets/{gateway}", get_cabinet)
    r.add_get("/control/api/stream", stream)


async def root(request: web.Request) -> web.Response:
    raise web.HTTPFound("/control/")


async def to_page(request: web.Request) -> web.Response:
    query = request.rel_url.raw_query_string  # as it came, still percent-encoded: nothing to split the header
    raise web.HTTPMovedPermanently("/control/" + (f"?{query}" if query else ""))


def _file(name: str) -> web.Response:
    return web.Response(body=(ASSETS / name).read_bytes(), content_type=SERVED[name], charset="utf-8",
                        headers={"Cache-Control": "no-cache"})


async def page(request: web.Request) -> web.Response:
    return _file("index.html")


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in SERVED:
        raise Problem(404, "not-found", "Not Found", f"no asset {name!r}")
    return _file(name)


async def get_summary(request: web.Request) -> web.Response:
    return json_response(await data.summary(request.app))


async def get_commune(request: web.Request) -> web.Response:
    doc = await data.commune(request.app, request.match_info["insee"])
    if doc is None:
        raise Problem(404, "unknown-commune", "Not Found", f"{request.match_info['insee']!r} is no commune")
    return json_response(doc)


async def get_cabinet(request: web.Request) -> web.Response:
    doc = await data.cabinet(request.app, request.match_info["gateway"])
    if doc is None:
        raise Problem(404, "unknown-gateway", "Not Found", f"no gateway named {request.match_info['gateway']!r}")
    return json_response(doc)


async def stream(request: web.Request) -> web.StreamResponse:
    async def snapshot() -> tuple[str, Any]:
        return "summary", await shared_summary(request.app)

    return await sse(request, snapshot, [INGEST_TOPIC, REPORTS_TOPIC], min_gap_s=STREAM_GAP_S)


async def shared_summary(app: web.Application) -> dict[str, Any]:
    """The summary, shared by all the streams of this process until something changes (or for
    SUMMARY_TTL_S: another instance's changes and the clock move it too)."""
    cache = app[SUMMARY_CACHE]
    async with cache.lock:
        now, version = asyncio.get_running_loop().time(), app[CHANGES].version
        if cache.doc is None or version != cache.version or now - cache.at > SUMMARY_TTL_S:
            cache.doc, cache.at, cache.version = await data.summary(app), now, version
        return cache.doc
