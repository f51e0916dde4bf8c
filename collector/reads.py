"""The collector's read API: gateways, a device's samples, a gateway's events, rollups by gateway,
commune and metropolis, and the territory's communes."""

from __future__ import annotations

from aiohttp import web

from collector.appkeys import STORE, TERRITORY
from collector.errors import UnknownGateway
from collector.model import Gateway, Level, Period
from collector.params import day_bound, hour_bound, int_param, json_response, page_from
from collector.problem import Problem

MAX_READ_LIMIT = 10_000
#: more devices than a cabinet ever has: whether a device is known is looked up among them all
MAX_DEVICES = 100_000


def add_read_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/gateways", get_gateways)
    app.router.add_get("/api/v1/gateways/{gateway}/devices/{device}/samples", get_device_samples)
    app.router.add_get("/api/v1/gateways/{gateway}/events", get_gateway_events)
    app.router.add_get("/api/v1/gateways/{gateway}/rollups/{period}", get_gateway_rollups)
    app.router.add_get("/api/v1/communes", get_communes)
    app.router.add_get("/api/v1/communes/{insee}/rollups/{period}", get_commune_rollups)
    app.router.add_get("/api/v1/rollups/{period}", get_metropolis_rollups)


async def get_gateways(request: web.Request) -> web.Response:
    """A page of the fleet by name (`limit`, `offset`: collector.params.page_from, read a page at a time
    from the store), with `total` and the `next` page's address."""
    page, meta = await page_from(request, request.app[STORE].gateways_page)
    return json_response({"gateways": [info.as_json() for info in page], **meta})


async def path_gateway(request: web.Request) -> Gateway:
    name = request.match_info["gateway"]
    gateway = await request.app[STORE].gateway(name)
    if gateway is None:
        raise Problem(404, "unknown-gateway", "Not Found", f"no gateway named {name!r}")
    return gateway


async def get_device_samples(request: web.Request) -> web.Response:
    limit = int_param(request, "limit", 100, 1, MAX_READ_LIMIT)
    gateway = await path_gateway(request)
    device = request.match_info["device"]
    store = request.app[STORE]
    samples = await store.recent_samples(gateway, device, limit)
    if not samples and device not in {d.device for d in await store.devices(gateway.name, limit=MAX_DEVICES)}:
        # an empty list would say "known, quiet": a mistyped name must not look like a silent device
        raise Problem(404, "unknown-device", "Not Found", f"gateway {gateway.name!r} has no device {device!r}")
    return json_response({"gateway": gateway.name, "device": device, "samples": [s.as_json() for s in samples]})


async def get_gateway_events(request: web.Request) -> web.Response:
    limit = int_param(request, "limit", 100, 1, MAX_READ_LIMIT)
    gateway = await path_gateway(request)
    events = await request.app[STORE].recent_events(gateway, limit)
    return json_response({"gateway": gateway.name, "events": [e.as_json() for e in events]})


# -- rollups ----------------------------------------------------------------------------------

def _bounds(request: web.Request, period: str) -> tuple[int | str, int | str]:
    """Inclusive first/last bucket from `from`/`to`, either period taking the same forms: dates (a
    Paris day), date-times with their zone, or UTC epoch ms (collector.params.day_bound, hour_bound)."""
    raw_from, raw_to = request.query.get("from"), request.query.get("to")
    if raw_from is None or raw_to is None:
        raise Problem(400, "invalid-parameter", "Invalid query parameter", "from and to are required",
                      parameter="from" if raw_from is None else "to")
    if period == "day":
        # buckets are YYYY-MM-DD text: compare with that form, not the client's (20260105 is a date too)
        return day_bound(raw_from, "from"), day_bound(raw_to, "to")
    return hour_bound(raw_from, "from", last=False), hour_bound(raw_to, "to", last=True)


def _period(request: web.Request) -> Period:
    period = request.match_info["period"]
    if period == "hour":
        return "hour"
    if period == "day":
        return "day"
    raise Problem(404, "unknown-period", "Not Found", f"rollups are by hour or by day, not {period!r}")


async def _rollups_response(request: web.Request, level: Level, key: str | None, scope: dict[str, object]) -> web.Response:
    period = _period(request)
    first, last = _bounds(request, period)
    try:
        rows = await request.app[STORE].rollups(level, period, key, first, last)
    except UnknownGateway as exc:
        raise Problem(404, "unknown-gateway", "Not Found", str(exc)) from None
    return json_response({**scope, "period": period, "buckets": [r.as_json() for r in rows]})


async def get_gateway_rollups(request: web.Request) -> web.Response:
    name = request.match_info["gateway"]
    return await _rollups_response(request, "gateway", name, {"gateway": name})


async def get_commune_rollups(request: web.Request) -> web.Response:
    code = request.match_info["insee"]
    commune = request.app[TERRITORY].resolve(code)
    if commune is None:
        raise Problem(404, "unknown-commune", "Not Found", f"{code!r} is no commune of the territory")
    return await _rollups_response(request, "commune", commune.insee, {"commune": commune.insee, "name": commune.name})


async def get_metropolis_rollups(request: web.Request) -> web.Response:
    return await _rollups_response(request, "metropolis", None, {"territory": request.app[TERRITORY].name})


async def get_communes(request: web.Request) -> web.Response:
    territory = request.app[TERRITORY]
    return json_response({
        "territory": territory.name,
        "communes": [{"insee": c.insee, "name": c.name, "lat": c.lat, "lon": c.lon} for c in territory.communes.values()],
        "former_communes": [{"insee": old, "merged_into": new} for old, new in territory.former.items()],
    })
