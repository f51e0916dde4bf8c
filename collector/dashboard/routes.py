"""Routes of the control-centre page: the page, its assets, its JSON and its live stream.

    GET /                                  -> 302 /control/
    GET /control                           -> 301 /control/ (the page has one address, with its slash)
    GET /control/                          the page
    GET /control/assets/{path}             any file under assets/ (vendor/ included) of a served type
    GET /control/api/me                    who is there: {"name", "roles", "login"}
    GET /control/api/summary               the metropolis
    GET /control/api/communes/{insee}      one commune (a former commune's code works too)
    GET /control/api/cabinets/{gateway}    one cabinet
    GET /control/api/stream                SSE: `summary` at once and at every change, and `change`
                                           {"topic": ...} when a topic of STREAM_TOPICS fires; with
                                           ?delta=1 `summary` once, then `summary-delta` (what changed)
    GET /control/api/communes/{insee}/stream
                                           SSE: `commune` (the commune's document) at once, then
                                           `delta`: the cabinets that changed, keyed by gateway

The page itself is described in assets/README.md (the front-end contract every feature module follows).

Like the read API, these are for operators only with `serve --operator-login` (collector.access);
without it they need no login, for a collector on the operators' own network.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from collector.access import effective_roles, operator_name, operator_roles
from collector.alarms.model import TOPIC as ALARMS_TOPIC
from collector.appkeys import INGEST_LISTENERS, OPERATOR_LOGIN, TERRITORY
from collector.dashboard import data
from collector.live import CHANGES, KEEPALIVE_S
from collector.params import json_response, page_of, page_params
from collector.problem import Problem
from collector.reports.routes import TOPIC as REPORTS_TOPIC

ASSETS = Path(__file__).parent / "assets"
#: extension -> content type: a file under assets/ of another type (a .py, a dot-file) is never served
SERVED = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".png": "image/png",
          ".svg": "image/svg+xml", ".json": "application/json", ".txt": "text/plain", ".map": "application/json",
          ".woff2": "font/woff2"}
TEXT = frozenset({".js", ".css", ".html", ".svg", ".json", ".txt", ".map"})
INGEST_TOPIC = "ingest"
#: the topics that move the summary (the totals count the open reports)
SUMMARY_TOPICS = (INGEST_TOPIC, REPORTS_TOPIC, ALARMS_TOPIC)  # an acknowledgement moves the KPI too
STREAM_GAP_S = 1.0
STREAM_POLL_S = 5.0
SUMMARY_TTL_S = 0.5


@dataclass
class SummaryCache:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    doc: dict[str, Any] | None = None
    at: float = 0.0
    version: int = -1


SUMMARY_CACHE = web.AppKey("dashboard_summary_cache", SummaryCache)
#: a commune's document shared by the streams of that commune, as the summary is (insee -> cache)
COMMUNE_CACHES = web.AppKey("dashboard_commune_caches", dict[str, SummaryCache])
#: CHANGES topics the page hears of as `change` events (features add theirs with add_stream_topic)
STREAM_TOPICS = web.AppKey("dashboard_stream_topics", list[str])


def add_stream_topic(app: web.Application, topic: str) -> None:
    """Tell the page (a `change` event {"topic": topic} on its stream) whenever `topic` changes
    (`app[CHANGES].notify(topic)`); call it at app setup, in any order with add_dashboard_routes."""
    topics = app.setdefault(STREAM_TOPICS, [])
    if topic not in topics:
        topics.append(topic)


def add_dashboard_routes(app: web.Application) -> None:
    changes = app[CHANGES]
    app[SUMMARY_CACHE] = SummaryCache()
    app[COMMUNE_CACHES] = {}
    app.setdefault(STREAM_TOPICS, [])
    app[INGEST_LISTENERS].append(lambda *_: changes.notify(INGEST_TOPIC))
    r = app.router
    r.add_get("/", root)
    r.add_get("/control", to_page)
    r.add_get("/control/", page)
    r.add_get("/control/assets/{path:.+}", asset)
    r.add_get("/control/api/me", get_me)
    r.add_get("/control/api/summary", get_summary)
    r.add_get("/control/api/communes/{insee}", get_commune)
    r.add_get("/control/api/cabinets/{gateway}", get_cabinet)
    r.add_get("/control/api/stream", stream)
    r.add_get("/control/api/communes/{insee}/stream", commune_stream)


async def root(request: web.Request) -> web.Response:
    raise web.HTTPFound("/control/")


async def to_page(request: web.Request) -> web.Response:
    query = request.rel_url.raw_query_string  # as it came, still percent-encoded: nothing to split the header
    raise web.HTTPMovedPermanently("/control/" + (f"?{query}" if query else ""))


def asset_file(path: str) -> Path | None:
    """The file under assets/ that `path` names, if it is one of a served type; None for anything else
    (a "..", an absolute path, a dot-file, a folder, a link out of assets/, another extension)."""
    parts = path.split("/")
    if any(not p or p.startswith(".") or "\\" in p or "\0" in p for p in parts):
        return None
    file = ASSETS.joinpath(*parts)
    if file.suffix not in SERVED:
        return None
    try:
        resolved = file.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return resolved if resolved.is_relative_to(ASSETS.resolve()) and resolved.is_file() else None


def _file(request: web.Request, file: Path) -> web.Response:
    stat = file.stat()
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    headers = {"Cache-Control": "no-cache", "ETag": etag}  # revalidated every load: a new version shows at once
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    text = file.suffix in TEXT
    resp = web.Response(body=file.read_bytes(), content_type=SERVED[file.suffix], charset="utf-8" if text else None,
                        headers=headers)
    if text:
        resp.enable_compression()  # leaflet.js 147 kB -> 43 kB; the client says whether it takes gzip
    return resp


async def page(request: web.Request) -> web.Response:
    return _file(request, ASSETS / "index.html")


async def asset(request: web.Request) -> web.Response:
    path = request.match_info["path"]
    file = asset_file(path)
    if file is None:
        raise Problem(404, "not-found", "Not Found", f"no asset {path[:200]!r}")
    return _file(request, file)


async def get_me(request: web.Request) -> web.Response:
    """Who is there: the operator's name and every role its rank grants (a supervisor is an operator and a
    viewer too: collector.access.effective_roles), and whether the collector asks for a login (the page
    shows a logout then). Without a login nobody is named: no role, the page is read-only."""
    name = await operator_name(request)
    roles = effective_roles(await operator_roles(request)) if name is not None else []
    return json_response({"name": name, "roles": roles, "login": request.app.get(OPERATOR_LOGIN, False)})


async def get_summary(request: web.Request) -> web.Response:
    return json_response(await data.summary(request.app))


#: a page of a commune's cabinets (Dijon has 916 of the metropolis's 1,500): by default and at most
COMMUNE_PAGE = 1000


async def get_commune(request: web.Request) -> web.Response:
    """The commune and a page of its cabinets (`limit`, `offset`; `total` and `next` beside them); its
    alarms and faulty lamps are the first LIST_LIMIT of the whole commune's, on every page."""
    page_params(request, COMMUNE_PAGE, COMMUNE_PAGE)  # a bad value is a 400 before any work
    doc = await data.commune(request.app, request.match_info["insee"])
    if doc is None:
        raise Problem(404, "unknown-commune", "Not Found", f"{request.match_info['insee']!r} is no commune")
    cabinets, meta = page_of(request, doc["cabinets"], COMMUNE_PAGE, COMMUNE_PAGE)
    resp = json_response({**doc, "cabinets": cabinets, **meta})
    resp.enable_compression()  # Dijon's 916 cabinets: 217 kB of JSON, about 20 kB gzipped
    return resp


async def get_cabinet(request: web.Request) -> web.Response:
    doc = await data.cabinet(request.app, request.match_info["gateway"])
    if doc is None:
        raise Problem(404, "unknown-gateway", "Not Found", f"no gateway named {request.match_info['gateway']!r}")
    return json_response(doc)


async def stream(request: web.Request) -> web.StreamResponse:
    """`summary` at once and whenever it changed (at most every STREAM_GAP_S), and a `change` event
    {"topic": t} for each topic of STREAM_TOPICS that fired since the last round (however often it
    fired). Changes of this process wake the stream at once; every STREAM_POLL_S it looks at the
    summary anyway (another instance's changes, the clock). With ?delta=1 the summary comes whole
    once, then as `summary-delta` events (`delta`: the communes that changed, keyed by insee)."""
    mode = request.query.get("delta", "0")
    if mode not in ("0", "1"):
        raise Problem(400, "invalid-parameter", "Invalid query parameter", f"delta must be 0 or 1, got {mode[:20]!r}",
                      parameter="delta")
    app = request.app
    topics: list[str] = app[STREAM_TOPICS]
    return await live(request, lambda: shared_summary(app), "summary",
                      ("summary-delta", "communes", "insee") if mode == "1" else None, tuple(topics))


async def commune_stream(request: web.Request) -> web.StreamResponse:
    """`commune` (GET /control/api/communes/{insee}'s document) at once, then at each change a `delta`
    event with only what changed: the cabinets, keyed by gateway name (collector.dashboard.routes.delta)."""
    app = request.app
    found = app[TERRITORY].resolve(request.match_info["insee"])
    if found is None:
        raise Problem(404, "unknown-commune", "Not Found", f"{request.match_info['insee']!r} is no commune")
    return await live(request, lambda: shared_commune(app, found.insee), "commune", ("delta", "cabinets", "name"), ())


def delta(old: dict[str, Any], new: dict[str, Any], rows: str, key: str) -> dict[str, Any]:
    """What turns `old` into `new`, two documents with a list of objects `rows` keyed by `key`: each
    other member that changed, whole (null when it is gone); `rows`: only the rows new or changed;
    `removed`: the keys of the rows gone; `order`: every row's key, only when the order changed (a
    row came or went, or moved). {} when nothing changed."""
    out: dict[str, Any] = {k: v for k, v in new.items() if k != rows and old.get(k) != v}
    out.update((k, None) for k in old if k not in new)
    before = {r[key]: r for r in old.get(rows, [])}
    after = [r[key] for r in new.get(rows, [])]
    changed = [r for r in new.get(rows, []) if before.get(r[key]) != r]
    if changed:
        out[rows] = changed
    kept = set(after)
    if removed := [k for k in before if k not in kept]:
        out["removed"] = removed
    if after != list(before):
        out["order"] = after
    return out


Stream = tuple[str, str, str]  # the delta event's name, the rows' member, their key


async def live(request: web.Request, snapshot: Callable[[], Awaitable[dict[str, Any]]], name: str, deltas: Stream | None,
               change_topics: tuple[str, ...]) -> web.StreamResponse:
    """The page's streams: `name` with `snapshot()` at once, then whenever it changed (at most every
    STREAM_GAP_S): whole again, or with `deltas` only what changed (`delta`); a `change` event
    {"topic": t} for each of `change_topics` that fired since the last round."""
    app = request.app
    changes = app[CHANGES]
    headers = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    # gzip, flushed at every event (Z_SYNC_FLUSH: the browser decodes each at once): Dijon's 217 kB
    # document is 20 kB on the wire, a delta of one cabinet a few hundred bytes
    gz = zlib.compressobj(6, zlib.DEFLATED, 31) if "gzip" in request.headers.get("Accept-Encoding", "") else None
    if gz is not None:
        headers["Content-Encoding"] = "gzip"
    resp = web.StreamResponse(headers=headers)
    await resp.prepare(request)

    async def write(data: bytes) -> None:
        await resp.write(data if gz is None else gz.compress(data) + gz.flush(zlib.Z_SYNC_FLUSH))

    loop = asyncio.get_running_loop()
    last: dict[str, Any] | None = None
    last_body: bytes | None = None
    sent = 0
    last_write = loop.time()
    fired: set[str] = set(SUMMARY_TOPICS)  # the first round sends the document
    try:
        while not changes.closing.is_set():
            waits = {t: changes.next(t) for t in {*SUMMARY_TOPICS, *change_topics}}  # before reading: none missed
            out = []
            if fired.isdisjoint(change_topics) or not fired.isdisjoint(SUMMARY_TOPICS):
                doc = await snapshot()
                if last is None or deltas is None:
                    body = orjson.dumps(doc)
                    if body != last_body:
                        out.append((name.encode(), body))
                    last_body = body
                elif diff := delta(last, doc, deltas[1], deltas[2]):
                    out.append((deltas[0].encode(), orjson.dumps(diff)))
                last = doc
            out.extend((b"change", orjson.dumps({"topic": t})) for t in change_topics if t in fired)
            for event, body in out:
                sent += 1
                await write(b"id: %d\nevent: %s\ndata: %s\n\n" % (sent, event, body))
                last_write = loop.time()
            if not out and loop.time() - last_write >= KEEPALIVE_S:
                await write(b": keepalive\n\n")  # lets proxies and clients see the stream alive
                last_write = loop.time()
            with contextlib.suppress(TimeoutError):  # a metropolis posts several batches a second
                async with asyncio.timeout(STREAM_GAP_S):
                    await changes.closing.wait()
            tasks = [asyncio.ensure_future(e.wait()) for e in [*waits.values(), changes.closing]]
            try:
                # other instances' changes come by LISTEN/NOTIFY when it is up (collector.notify): no poll then
                wait_s = STREAM_POLL_S if changes.polling else KEEPALIVE_S
                await asyncio.wait(tasks, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in tasks:
                    t.cancel()
            fired = {t for t, e in waits.items() if e.is_set()}
        if gz is not None:
            await resp.write(gz.flush())
        await resp.write_eof()
    except ConnectionResetError:
        pass  # the client left
    return resp


async def shared_summary(app: web.Application) -> dict[str, Any]:
    """The summary, shared by all the streams of this process until something changes (or for
    SUMMARY_TTL_S: another instance's changes and the clock move it too)."""
    cache = app[SUMMARY_CACHE]
    async with cache.lock:
        now, version = asyncio.get_running_loop().time(), app[CHANGES].version
        if cache.doc is None or version != cache.version or now - cache.at > SUMMARY_TTL_S:
            cache.doc, cache.at, cache.version = await data.summary(app), now, version
        return cache.doc


async def shared_commune(app: web.Application, insee: str) -> dict[str, Any]:
    """A commune's document, shared by the streams of that commune in this process as the summary is."""
    cache = app[COMMUNE_CACHES].setdefault(insee, SummaryCache())
    async with cache.lock:
        now, version = asyncio.get_running_loop().time(), app[CHANGES].version
        if cache.doc is None or version != cache.version or now - cache.at > SUMMARY_TTL_S:
            doc = await data.commune(app, insee)
            assert doc is not None  # the stream resolved it; the territory does not change while serving
            cache.doc, cache.at, cache.version = doc, now, version
        return cache.doc
