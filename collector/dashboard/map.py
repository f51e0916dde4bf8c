"""The control-centre map's data: every cabinet and every lamp of the metropolis in one compact answer,
then only what changed.

    GET /control/api/map/config               the tile URL ($CITYGATE_TILE_URL; none: a plain
                                              background), the communes as points, the legend's states
    GET /control/api/map/layers?layers=a,b&limit=&offset=&stamp=
                                              the layers asked (default all): cabinets, lamps, junctions,
                                              cameras, parking, vehicles; with their states (`states`);
                                              the lamps a page at a time (below)
    GET /control/api/map/states?since=STAMP   the states of cabinets and lamps: only those that changed
                                              since STAMP when this process still holds it, else all

Columns, not objects: 34,000 lamps as arrays of names, positions and one state letter each
(about 0.2 MB compressed: bench/bench_map_page.py). A lamp is known by its index in the answer's
`layout`; a `layout` that changed (a lamp, a cabinet or a position added or moved) makes the page
ask the layers again.

Pages of one snapshot: the lamps (and their states) come `limit` at a time from `offset`, with `total`
and `next`; every page has the snapshot's `stamp` and `layout`, and `stamp=S` asks a page of snapshot S
(`next` carries it) as long as this process holds it (the last HISTORY snapshots: at least half a
minute, one rebuild a second at most), else 410 and the client starts over. The other layers, the
cabinets and their states come with the first page (offset 0) only. A map page is a piece of one
picture, not a list page: MAP_PAGE lamps (10,000: 0.7 MB of JSON, 0.1 MB gzipped) by default,
MAX_MAP_PAGE (20,000) at most, so the metropolis's 34,000 lamps are four pages the page asks at once
after the first has told it the total and the stamp; ten times the metropolis is 34 pages, never one
answer of 24 MB.

A lamp's state, first that applies:
- `U` unreachable: its gateway offline (collector.online: MQTT presence, or its uploads), or its
  newest `communication_failure` not followed by `communication_restored` (the driver lost the
  device), or no reading for STALE_AFTER_MS (the lamp maps report a heartbeat every 15 min, the
  shipped configs batch uploads for up to 15 min: three heartbeats missed and a batch), or a lamp
  placed by an import that never reported (`never_read`). Never "off": nobody knows.
- `F` failed: an open `lamp_failure` (collector.readmodel).
- `X` off (level 0, or `lamp_on` false), `D` dimmed (0 < level < 100), `O` on.
Overridden (an operator's override acknowledged by the gateway, not expired, cleared or ended) is
a flag beside the state; the level is the newest `level_pct` the lamp reported (-1: none).
A lamp stands at its own position (collector.positions: `positionSource` config or import), else at its
cabinet's (`cabinet`); a lamp with neither is left off the map and counted in `unplaced`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from citygate_wire.batch import Batch
from citygate_wire.common import now_ms
from collector.access import has_role
from collector.appkeys import INGEST_LISTENERS, STORE, TERRITORY
from collector.credentials import POLICE
from collector.dashboard.routes import add_stream_topic
from collector.live import CHANGES
from collector.model import Gateway, IngestResult
from collector.online import GatewayStatus, fleet
from collector.params import MAX_ID, int_param, invalid, page_params, parse_int
from collector.positions import LampReading, Located, device_positions
from collector.problem import Problem
from collector.readmodel import RESTORED as LAMP_RESTORED
from collector.rollup import FAULT_CODE
from collector.store import Store

log = logging.getLogger("citygate.collector.map")
TOPIC = "map"  # CHANGES topic: what the map shows may have changed (a batch stored)
TILE_ENV = "CITYGATE_TILE_URL"
ATTRIBUTION_ENV = "CITYGATE_TILE_ATTRIBUTION"
#: the tile URL template the page uses ("" for none); `create_app` callers may set it, else $CITYGATE_TILE_URL
TILE_URL = web.AppKey("map_tile_url", str)
TILE_ATTRIBUTION = web.AppKey("map_tile_attribution", str)
LAYERS = ("cabinets", "lamps", "junctions", "cameras", "parking", "vehicles")
STALE_AFTER_MS = 60 * 60 * 1000
#: communication events older than this are not read (a device lost longer ago is stale anyway)
COMM_WINDOW_MS = 7 * 24 * 3600 * 1000
LOST, RESTORED = "communication_failure", "communication_restored"
OVERRIDE, CLEAR, OVERRIDE_ENDED = "lighting.override", "lighting.clear_override", "override_ended"
#: commands read for the overrides in force (an override lasts a day at most: citygate_wire.mqtt)
RECENT_COMMANDS = 2000
#: a state rebuilt at most this often however often batches arrive, and at least this often (time
#: makes a lamp stale, another instance's writes come without a local change)
MIN_REBUILD_S, MAX_AGE_S = 1.0, 5.0
FULL_READ_S = 30.0
READ_BATCH = 500  # gateways a readings statement names
HISTORY = 32  # stamps a delta can start from
SOURCE_LETTER = {"config": "c", "import": "i", "cabinet": "b"}
STATES = {"O": "on", "D": "dimmed", "X": "off", "F": "failed", "U": "unreachable"}
#: lamps a page of /layers: by default, and at most (see above)
MAP_PAGE, MAX_MAP_PAGE = 10_000, 20_000


def tile_url_problem(url: str) -> str | None:
    """Why `url` is no tile URL template, or None ('' is none configured)."""
    if url and (not url.startswith(("http://", "https://", "/")) or not all(p in url for p in ("{z}", "{x}", "{y}"))):
        return f"{url!r}: expected an http(s) URL template with {{z}}, {{x}} and {{y}}"
    return None


@dataclass(frozen=True, slots=True)
class Lamp:
    cabinet: int  # index in the snapshot's cabinets
    device: str
    lat: float
    lon: float
    source: str  # config | import | cabinet


#: (state: a letter of STATES, level: -1 unknown, overridden, why: of an unreachable lamp gateway_offline |
#: communication_lost | stale | never_read); a tuple: 34,000 of them are made at every rebuild
LampState = tuple[str, int, bool, str | None]


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each lamp stands: made again only when a position, a cabinet or the set of lamps changed."""

    signature: tuple[Any, ...]
    digest: str
    lamps: list[Lamp]
    keys: list[tuple[str, str]]
    unplaced: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    stamp: int
    layout: str
    presence_source: str
    cabinets: list[GatewayStatus]
    lamps: list[Lamp]
    states: list[LampState]
    unplaced: int
    #: a letter a cabinet, its marker: x offline, f a failed lamp, u an unreachable lamp, o all well
    cabinet_status: str


@dataclass
class MapCache:
    """The snapshot and what it is built from. Positions are read again only when their fingerprint
    moved; readings only for the gateways whose batches this process stored since (`dirty`), and all of
    them every FULL_READ_S (another instance's batches): at the metropolis a full read is 1-3 s of the
    collector's time, a gateway's a millisecond."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    current: Snapshot | None = None
    at: float = 0.0
    version: int = -1
    #: each process starts its stamps at a random place (below 2**52: a number the page holds exactly),
    #: so a stamp or a `since` another instance behind the proxy gave is unknown here (a full answer, a
    #: 410 for a page), never taken for one of this process's snapshots
    next_stamp: int = field(default_factory=lambda: secrets.randbelow(2**51) + 1)
    history: OrderedDict[int, Snapshot] = field(default_factory=OrderedDict)
    position_marks: tuple[Any, ...] | None = None
    positions: dict[tuple[str, str], Located] = field(default_factory=dict)
    readings: dict[tuple[str, str], LampReading] = field(default_factory=dict)
    read_at: float = -1e9
    dirty: set[str] = field(default_factory=set)
    new_lamps: bool = True  # a reading came from a lamp the layout does not hold
    min_rebuild_s: float = MIN_REBUILD_S
    max_age_s: float = MAX_AGE_S
    layout: Layout | None = None
    #: what the events say, read again only when their fingerprint moved (each read scans every such event)
    events: dict[str, tuple[tuple[Any, ...], Any]] = field(default_factory=dict)
    warming: asyncio.Task[None] | None = None
    refreshing: asyncio.Task[None] | None = None


MAP_CACHE = web.AppKey("map_cache", MapCache)


def add_map_routes(app: web.Application) -> None:
    if TILE_URL not in app:
        app[TILE_URL] = os.environ.get(TILE_ENV, "").strip()
    problem = tile_url_problem(app[TILE_URL])
    if problem is not None:
        raise ValueError(f"{TILE_ENV}: {problem}")
    app.setdefault(TILE_ATTRIBUTION, os.environ.get(ATTRIBUTION_ENV, "").strip())
    cache = app[MAP_CACHE] = MapCache()
    changes = app[CHANGES]

    def ingested(gateway: Gateway, batch: Batch, result: IngestResult) -> None:
        cache.dirty.add(gateway.name)
        changes.notify(TOPIC)

    app[INGEST_LISTENERS].append(ingested)
    add_stream_topic(app, TOPIC)  # the page hears of it (a `change` event) and asks for the delta
    app.on_startup.append(_warm_up)
    app.on_cleanup.append(_cool_down)
    app.router.add_get("/control/api/map/config", get_config)
    app.router.add_get("/control/api/map/layers", get_layers)
    app.router.add_get("/control/api/map/states", get_states)


def _compressed(request: web.Request, doc: object) -> web.Response:
    response = web.Response(body=orjson.dumps(doc), content_type="application/json")
    response.enable_compression()  # 34,000 lamps: 2.4 MB of JSON, 0.2 MB gzipped
    return response


async def get_config(request: web.Request) -> web.Response:
    territory = request.app[TERRITORY]
    communes = list(territory.communes.values())
    return _compressed(request, {
        "tile_url": request.app[TILE_URL] or None,
        "tile_attribution": request.app[TILE_ATTRIBUTION] or None,
        "territory": territory.name,
        "communes": [{"insee": c.insee, "name": c.name, "lat": c.lat, "lon": c.lon} for c in communes],
        "layers": list(LAYERS),
        "states": STATES,
        "stale_after_ms": STALE_AFTER_MS,
    })


def _layers_param(request: web.Request) -> list[str]:
    raw = request.query.get("layers")
    if raw is None:
        return list(LAYERS)
    asked = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in asked if name not in LAYERS]
    if unknown or not asked:
        raise invalid("layers", f"{(unknown or [raw])[0][:40]!r} is no layer; layers: {', '.join(LAYERS)}")
    return asked


async def get_layers(request: web.Request) -> web.Response:
    asked = _layers_param(request)
    limit, offset = page_params(request, MAP_PAGE, MAX_MAP_PAGE)
    snap = await _snapshot_asked(request)
    doc: dict[str, Any] = {"stamp": snap.stamp, "layout": snap.layout, "presence_source": snap.presence_source}
    store = request.app[STORE]
    first = offset == 0
    if first and ("cabinets" in asked or "lamps" in asked):  # lamps name their cabinet by its index
        doc["cabinets"] = _cabinets(snap)
    if "lamps" in asked:
        doc["lamps"] = _lamps(snap, offset, offset + limit)
    if first and "junctions" in asked:
        doc["junctions"] = await _junctions(store, snap)
    if first and "cameras" in asked:
        doc["cameras"] = await _cameras(store, snap)
    if first and "parking" in asked:
        doc["parking"] = await _parking(store)
    if first and "vehicles" in asked:
        doc["vehicles"] = await _vehicles(request, store)
    doc["states"] = _full_states(snap, (offset, offset + limit) if "lamps" in asked else None, cabinets=first)
    if "lamps" in asked:
        more = offset + limit < len(snap.lamps)
        doc.update(total=len(snap.lamps), limit=limit, offset=offset, next=str(request.rel_url.update_query(
            limit=limit, offset=offset + limit, stamp=snap.stamp)) if more else None)
    return _compressed(request, doc)


async def _snapshot_asked(request: web.Request) -> Snapshot:
    """The snapshot `stamp` names (a page after the first), else the current one; Problem 410 when this
    process no longer holds it (or never did: another instance's): the client asks the first page again."""
    if "stamp" not in request.query:
        return await snapshot(request.app)
    stamp = int_param(request, "stamp", 0, 0, MAX_ID)
    held = request.app[MAP_CACHE].history.get(stamp)
    if held is None:
        raise Problem(410, "snapshot-gone", "Snapshot gone",
                      f"the map's snapshot {stamp} is no longer held: ask the first page again", parameter="stamp")
    return held


async def get_states(request: web.Request) -> web.Response:
    raw = request.query.get("since")
    since = None if raw is None else parse_int(raw)
    if raw is not None and (since is None or since < 0):
        raise invalid("since", f"{raw[:40]!r}: the stamp of an earlier answer, an integer")
    cache = request.app[MAP_CACHE]
    snap = await snapshot(request.app)
    before = cache.history.get(since) if since is not None else None
    if before is None or before.layout != snap.layout:
        return _compressed(request, _full_states(snap))
    return _compressed(request, _delta(before, snap))


# -- the snapshot --------------------------------------------------------------------------------


async def _warm_up(app: web.Application) -> None:
    """Build the first snapshot as the collector starts, so the first page need not wait for it."""
    app[MAP_CACHE].warming = asyncio.create_task(_refresh(app))


async def _cool_down(app: web.Application) -> None:
    for task in (app[MAP_CACHE].warming, app[MAP_CACHE].refreshing):
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _readings(store: Store, cache: MapCache, loop_now: float) -> dict[tuple[str, str], LampReading]:
    if loop_now - cache.read_at > FULL_READ_S:
        cache.dirty.clear()
        readings = {(r.gateway, r.device): r for r in await store.lamp_readings()}
        cache.new_lamps |= readings.keys() != cache.readings.keys()
        cache.readings, cache.read_at = readings, loop_now
    elif cache.dirty:
        dirty = sorted(cache.dirty)
        cache.dirty.clear()
        for start in range(0, len(dirty), READ_BATCH):
            for r in await store.lamp_readings(dirty[start:start + READ_BATCH]):
                key = (r.gateway, r.device)
                cache.new_lamps |= key not in cache.readings
                cache.readings[key] = r
    return cache.readings


async def _positions(store: Store, cache: MapCache) -> dict[tuple[str, str], Located]:
    marks_ = await store.position_marks()
    if marks_ != cache.position_marks:
        cache.positions, cache.position_marks = await device_positions(store), marks_
    return cache.positions


async def snapshot(app: web.Application) -> Snapshot:
    """The map's cabinets and lamps with their states, shared by every request of this process. The
    first is built before answering; later ones, when something changed (at most every MIN_REBUILD_S)
    or MAX_AGE_S passed, in the background while requests get the current one (a rebuild of the
    metropolis is 0.2-1 s of the collector's time): when the states moved, the map topic fires and the
    pages ask for the delta."""
    cache = app[MAP_CACHE]
    if cache.current is None:
        await _refresh(app)
    elif _due(app, cache) and (cache.refreshing is None or cache.refreshing.done()):
        cache.refreshing = asyncio.create_task(_refresh(app))
    assert cache.current is not None
    return cache.current


def _due(app: web.Application, cache: MapCache) -> bool:
    age = asyncio.get_running_loop().time() - cache.at
    return age > cache.max_age_s or (app[CHANGES].version != cache.version and age >= cache.min_rebuild_s)


async def _refresh(app: web.Application) -> None:
    cache = app[MAP_CACHE]
    async with cache.lock:
        if cache.current is not None and not _due(app, cache):
            return  # built while this one waited for the lock
        loop_now, version = asyncio.get_running_loop().time(), app[CHANGES].version
        try:
            built = await _build(app, cache, cache.next_stamp)
        except Exception:
            if cache.current is None:
                raise
            log.exception("the map's states could not be rebuilt; the last ones are served")
            cache.at = loop_now
            return
        cache.at, cache.version = loop_now, version
        prev = cache.current
        if prev is None or (built.layout, built.states, _online(built), built.cabinet_status) != (
                prev.layout, prev.states, _online(prev), prev.cabinet_status):
            cache.next_stamp += 1
            cache.current = built
            cache.history[built.stamp] = built
            while len(cache.history) > HISTORY:
                cache.history.popitem(last=False)
            if prev is not None:
                app[CHANGES].notify(TOPIC)
                cache.version = app[CHANGES].version  # its own news is no reason to rebuild


def _online(snap: Snapshot) -> str:
    return "".join("1" if g.online else "0" for g in snap.cabinets)


async def _by_events(store: Store, cache: MapCache, codes: tuple[str, ...],
                     read: Callable[[Store], Awaitable[Any]]) -> Any:
    """`read(store)`, again only when the events of `codes` changed."""
    marks_ = await store.event_marks(codes)
    known = cache.events.get(read.__name__)
    if known is None or known[0] != marks_:
        known = cache.events[read.__name__] = (marks_, await read(store))
    return known[1]


async def _failed(store: Store) -> set[tuple[str, str]]:
    return {(f.gateway, f.device) for f in await store.open_lamp_faults()}


async def _lost(store: Store) -> set[tuple[str, str]]:
    codes = await store.latest_codes((LOST, RESTORED), now_ms() - COMM_WINDOW_MS)
    return {k for k, (code, _) in codes.items() if code == LOST}


async def _overridden(store: Store, cache: MapCache, now: int) -> set[tuple[str, str]]:
    """(gateway, lamp) under an override its gateway took, not expired, cleared or ended since; a group's
    override reaches the lamps whose group the collector knows (from their fault events)."""
    commands = sorted(await store.commands(limit=RECENT_COMMANDS), key=lambda c: c.issued_at_ms)
    if not any(c.action in (OVERRIDE, CLEAR) for c in commands):
        return set()
    groups = await _by_events(store, cache, (FAULT_CODE, LAMP_RESTORED), _groups)
    members: dict[tuple[str, str], list[str]] = {}
    for (gw, lamp), group in groups.items():
        members.setdefault((gw, group), []).append(lamp)
    until: dict[tuple[str, str], int] = {}
    for c in commands:
        if c.action not in (OVERRIDE, CLEAR):
            continue
        for d in c.deliveries:
            if d.status not in ("done", "accepted"):
                continue
            lamps = [str(c.args["lamp"])] if "lamp" in c.args else members.get((d.gateway, str(c.args.get("group"))), [])
            for lamp in lamps:
                if c.action == CLEAR:
                    until.pop((d.gateway, lamp), None)
                else:
                    until[(d.gateway, lamp)] = int(c.args.get("until_ms", 0))
    ended = await store.latest_codes((OVERRIDE_ENDED,), now - 2 * 86_400_000)
    return {k for k, end in until.items() if end > now and k not in ended}


def _layout(cache: MapCache, gateways: list[GatewayStatus], positions: dict[tuple[str, str], Located],
            readings: dict[tuple[str, str], LampReading]) -> Layout:
    signature = (cache.position_marks, tuple((g.name, g.lat, g.lon) for g in gateways))
    if cache.layout is not None and cache.layout.signature == signature and not cache.new_lamps:
        return cache.layout
    cache.new_lamps = False
    index = {g.name: i for i, g in enumerate(gateways)}
    imported = [k for k, p in positions.items() if p.source == "import"]
    lamps: list[Lamp] = []
    keys: list[tuple[str, str]] = []
    unplaced = 0
    for key in sorted({k for k in (*readings, *imported) if k[0] in index}):
        gw = gateways[index[key[0]]]
        own = positions.get(key)
        if own is not None:
            lat, lon, src = own.lat, own.lon, own.source
        elif gw.lat is not None and gw.lon is not None:
            lat, lon, src = gw.lat, gw.lon, "cabinet"
        else:
            unplaced += 1
            continue
        lamps.append(Lamp(index[key[0]], key[1], round(lat, 6), round(lon, 6), src))
        keys.append(key)
    digest = hashlib.blake2b(digest_size=8)
    for g in gateways:
        digest.update(f"{g.name}\0{g.lat}\0{g.lon}\n".encode())
    for lamp in lamps:
        digest.update(f"{lamp.cabinet}\0{lamp.device}\0{lamp.lat}\0{lamp.lon}\0{lamp.source}\n".encode())
    cache.layout = Layout(signature, digest.hexdigest(), lamps, keys, unplaced)
    return cache.layout


async def _groups(store: Store) -> dict[tuple[str, str], str]:
    return await store.lamp_groups()


def _judge(reading: LampReading | None, online: bool, lost: bool, failed: bool, fresh_after: int) -> tuple[str, int, str | None]:
    level = -1 if reading is None or reading.level_pct is None else round(reading.level_pct)
    if not online:
        return "U", level, "gateway_offline"
    if reading is None:
        return "U", -1, "never_read"
    if lost:
        return "U", level, "communication_lost"
    if reading.last_ts_ms is None or reading.last_ts_ms < fresh_after:
        return "U", level, "stale"
    if failed:
        return "F", level, None
    if level == 0 or (level < 0 and reading.lamp_on is False):
        return "X", level, None
    if 0 < level < 100:
        return "D", level, None
    return "O", level, None


async def _build(app: web.Application, cache: MapCache, stamp: int) -> Snapshot:
    store = app[STORE]
    now = now_ms()
    source, gateways = await fleet(app, now)
    gateways.sort(key=lambda g: g.name)
    positions = await _positions(store, cache)
    readings = await _readings(store, cache, asyncio.get_running_loop().time())
    layout = _layout(cache, gateways, positions, readings)
    failed: set[tuple[str, str]] = await _by_events(store, cache, (FAULT_CODE, LAMP_RESTORED), _failed)
    lost: set[tuple[str, str]] = await _by_events(store, cache, (LOST, RESTORED), _lost)
    overridden = await _overridden(store, cache, now)
    online = [g.online for g in gateways]
    fresh_after = now - STALE_AFTER_MS
    states: list[LampState] = []
    for lamp, key in zip(layout.lamps, layout.keys, strict=True):
        state, level, why = _judge(readings.get(key), online[lamp.cabinet], key in lost, key in failed, fresh_after)
        states.append((state, level, key in overridden, why))
    worst = ["o" if up else "x" for up in online]
    for lamp, (state, *_) in zip(layout.lamps, states, strict=True):
        if state in "FU" and worst[lamp.cabinet] != "x" and worst[lamp.cabinet] != "f":
            worst[lamp.cabinet] = state.lower()
    return Snapshot(stamp, layout.digest, source, gateways, layout.lamps, states, layout.unplaced, "".join(worst))


# -- answers -------------------------------------------------------------------------------------


def _cabinets(snap: Snapshot) -> dict[str, Any]:
    lamps = [0] * len(snap.cabinets)
    for lamp in snap.lamps:
        lamps[lamp.cabinet] += 1
    return {"name": [g.name for g in snap.cabinets], "commune": [g.commune for g in snap.cabinets],
            "lat": [g.lat for g in snap.cabinets], "lon": [g.lon for g in snap.cabinets], "lamps": lamps}


def _lamps(snap: Snapshot, lo: int, hi: int) -> dict[str, Any]:
    lamps = snap.lamps[lo:hi]
    return {"cabinet": [lamp.cabinet for lamp in lamps], "device": [lamp.device for lamp in lamps],
            "lat": [lamp.lat for lamp in lamps], "lon": [lamp.lon for lamp in lamps],
            "positionSource": "".join(SOURCE_LETTER[lamp.source] for lamp in lamps),
            "positionSources": {v: k for k, v in SOURCE_LETTER.items()}, "unplaced": snap.unplaced}


def _full_states(snap: Snapshot, lamps: tuple[int, int] | None = (0, MAX_ID), *, cabinets: bool = True) -> dict[str, Any]:
    """Every state of `snap`: the cabinets' (unless not `cabinets`) and the lamps' of [lo, hi) (none when
    `lamps` is None), each lamp known by its index in the whole snapshot."""
    doc: dict[str, Any] = {"stamp": snap.stamp, "layout": snap.layout, "full": True}
    if cabinets:
        doc["cabinets"] = {"online": _online(snap), "status": snap.cabinet_status}
    if lamps is not None:
        lo, hi = lamps
        states = snap.states[lo:hi]
        doc["lamps"] = {"state": "".join(s[0] for s in states), "level": [s[1] for s in states],
                        "overridden": [lo + i for i, s in enumerate(states) if s[2]],
                        "why": {str(lo + i): s[3] for i, s in enumerate(states) if s[3] is not None}}
    return doc


def _delta(before: Snapshot, snap: Snapshot) -> dict[str, Any]:
    old, new = _online(before), _online(snap)
    status, was = snap.cabinet_status, before.cabinet_status
    return {
        "stamp": snap.stamp, "layout": snap.layout, "full": False, "since": before.stamp,
        "cabinets": {"changed": [[i, int(new[i]), status[i]] for i in range(len(new))
                                 if new[i] != old[i] or status[i] != was[i]]},
        "lamps": {"changed": [[i, *s] for i, (s, b) in enumerate(zip(snap.states, before.states, strict=True)) if s != b]},
    }


def _at_cabinet(snap: Snapshot, gateway: str) -> GatewayStatus | None:
    return next((g for g in snap.cabinets if g.name == gateway and g.lat is not None and g.lon is not None), None)


async def _junctions(store: Store, snap: Snapshot) -> list[dict[str, Any]]:
    """Junctions that sent counts, at their cabinet (a junction has no position of its own yet)."""
    out = []
    for junction, gateway, newest in await store.traffic_junctions():
        gw = _at_cabinet(snap, gateway)
        if gw is not None:
            out.append({"id": junction, "gateway": gateway, "lat": gw.lat, "lon": gw.lon, "newest_ms": newest})
    return out


async def _cameras(store: Store, snap: Snapshot) -> list[dict[str, Any]]:
    """Cameras whose place operators wrote with a position (collector.cameras)."""
    return [{"gateway": s.gateway, "device": s.device, "location": s.location, "lat": s.lat, "lon": s.lon}
            for s in (await store.camera_sites()).values() if s.lat is not None and s.lon is not None]


async def _parking(store: Store) -> list[dict[str, Any]]:
    """Each parking street with its spaces' states counted (collector.parking)."""
    counts: dict[str, dict[str, int]] = {}
    for space in await store.parking_spaces():
        per = counts.setdefault(space.street, {})
        per[space.state] = per.get(space.state, 0) + 1
    return [{"id": s.id, "name": s.name, "commune": s.commune, "lat": s.lat, "lon": s.lon,
             "spaces": counts.get(s.id, {})} for s in await store.parking_streets()]


async def _vehicles(request: web.Request, store: Store) -> list[dict[str, Any]]:
    """Service vehicles at their newest position; a police vehicle only for an operator of that role."""
    police = await has_role(request, POLICE)
    out = []
    for v in await store.vehicles():
        if v.service == POLICE and not police:
            continue
        pos = await store.latest_position(v)
        if pos is not None:
            out.append({"name": v.name, "service": v.service, "lat": pos.lat, "lon": pos.lon, "ts_ms": pos.ts_ms})
    return out
