"""The collector's aiohttp application: batch ingest and the read API.

`create_app(store)` builds the app; other features add their routes to it
(`app.router.add_get(...)`) and reach the store through `request.app[STORE]`.
`start(app, host, port)` serves it the way it must be served (aiohttp's own request
decompression off: collector.body bounds the inflated size itself).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import orjson
from aiohttp import web

from citygate_wire.batch import PATH, Batch, FutureTimestamp, WireError, decode_batch
from citygate_wire.common import FUTURE_TIMESTAMP
from collector.body import read_body
from collector.errors import UnknownGateway
from collector.model import Gateway, IngestResult
from collector.params import day_bound, hour_bound, int_param, refuse_nul
from collector.problem import Problem, problem_middleware
from collector.store import Level, Period, Store
from collector.territory import Territory, load_territory
from collector.tokens import hash_token

log = logging.getLogger("citygate.collector")

STORE = web.AppKey("store", Store)
OPERATOR_LOGIN = web.AppKey("operator_login", bool)
TERRITORY = web.AppKey("territory", Territory)
MAX_BODY = web.AppKey("max_body_bytes", int)
#: Called after each stored batch (metrics, live updates): must not block, must not raise.
IngestListener = Callable[[Gateway, Batch, IngestResult], None]
INGEST_LISTENERS = web.AppKey("ingest_listeners", list[IngestListener])

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024  # decompressed; the agent's batches are about 2 MB
#: How far ahead of the collector's clock a record may be dated: gateways keep time by NTP, so more
#: is a broken clock (a sample dated 2099 would count every later one as late). $CITYGATE_MAX_FUTURE_S.
DEFAULT_MAX_FUTURE_S = 300.0
MAX_FUTURE_MS = web.AppKey("max_future_ms", int)
MAX_READ_LIMIT = 10_000
#: more devices than a cabinet ever has: whether a device is known is looked up among them all
MAX_DEVICES = 100_000


def json_response(doc: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(doc), content_type="application/json")


def create_app(
    store: Store, *, territory: Territory | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    operator_login: bool = False, max_future_s: float | None = None,
) -> web.Application:
    """The collector app; `territory` defaults to configs/territory.json (or $CITYGATE_TERRITORY).
    `operator_login`: the control-centre page and the read API for operators only (collector.access).
    `max_future_s`: how far ahead of now a record may be dated; defaults to $CITYGATE_MAX_FUTURE_S or
    DEFAULT_MAX_FUTURE_S."""
    middlewares = [problem_middleware, refuse_nul]
    if operator_login:
        from collector.access import operators_only  # here: that module imports this one

        middlewares.append(operators_only)
    app = web.Application(middlewares=middlewares)
    app[OPERATOR_LOGIN] = operator_login
    app[STORE] = store
    app[TERRITORY] = territory or load_territory()
    app[MAX_BODY] = max_body_bytes
    app[MAX_FUTURE_MS] = int(1000 * (max_future_from_env() if max_future_s is None else max_future_s))
    app[INGEST_LISTENERS] = []
    app.router.add_post(PATH, post_batch)
    app.router.add_get("/api/v1/gateways", get_gateways)
    app.router.add_get("/api/v1/gateways/{gateway}/devices/{device}/samples", get_device_samples)
    app.router.add_get("/api/v1/gateways/{gateway}/events", get_gateway_events)
    app.router.add_get("/api/v1/gateways/{gateway}/rollups/{period}", get_gateway_rollups)
    app.router.add_get("/api/v1/communes", get_communes)
    app.router.add_get("/api/v1/communes/{insee}/rollups/{period}", get_commune_rollups)
    app.router.add_get("/api/v1/rollups/{period}", get_metropolis_rollups)
    from collector.control.routes import add_control_routes  # here: that module imports this one

    add_control_routes(app)
    from collector.features import install_features  # here: those modules import this one

    install_features(app)
    if operator_login:
        from collector.access import add_login_routes

        add_login_routes(app)
    return app


def max_future_from_env() -> float:
    """$CITYGATE_MAX_FUTURE_S (seconds, >= 0), or DEFAULT_MAX_FUTURE_S; ValueError says what is wrong."""
    raw = os.environ.get("CITYGATE_MAX_FUTURE_S")
    if raw is None:
        return DEFAULT_MAX_FUTURE_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 365 * 86_400:
        raise ValueError(f"CITYGATE_MAX_FUTURE_S={raw!r}: expected seconds between 0 and one year")
    return value


async def start(app: web.Application, host: str = "127.0.0.1", port: int = 8080) -> tuple[web.AppRunner, str]:
    """Serve `app`; return the runner (to `cleanup()`) and the base URL with the real port (port 0 picks one)."""
    runner = web.AppRunner(app, auto_decompress=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    shown = f"[{host}]" if ":" in host else host
    return runner, f"http://{shown}:{bound}"


# -- ingest ---------------------------------------------------------------------------------

async def authenticate(request: web.Request) -> Gateway:
    """The gateway owning the bearer token, or Problem 401."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="citygate"'}
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "unauthorized", "Unauthorized", "send Authorization: Bearer <gateway token>",
                      headers=challenge)
    gateway = await request.app[STORE].gateway_for_token(hash_token(token.strip()))
    if gateway is None:
        raise Problem(401, "unauthorized", "Unauthorized", "unknown gateway token", headers=challenge)
    return gateway


async def post_batch(request: web.Request) -> web.Response:
    gateway = await authenticate(request)
    content_type = request.headers.get("Content-Type", "application/json")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise Problem(415, "unsupported-media-type", "Unsupported media type",
                      f"Content-Type {content_type!r}: a batch is application/json")
    body = await read_body(request, request.app[MAX_BODY])
    now = time.time_ns() // 1_000_000
    try:
        batch = decode_batch(body, latest_ts_ms=now + request.app[MAX_FUTURE_MS])
    except FutureTimestamp as exc:
        log.warning("gateway %s sent a record dated ahead of the clock: %s", gateway.name, exc)
        raise Problem(400, FUTURE_TIMESTAMP, "Record dated in the future", exc.reason, pointer=exc.pointer,
                      device=exc.device, ts_ms=exc.ts_ms, latest_ts_ms=exc.latest_ts_ms, collector_ms=now) from None
    except WireError as exc:
        raise Problem(400, "invalid-batch", "Invalid batch", exc.reason, pointer=exc.pointer) from None
    if batch.gateway != gateway.name:
        log.warning("gateway %s sent a batch for %r: refused", gateway.name, batch.gateway)
        raise Problem(403, "wrong-gateway", "Forbidden",
                      f"this token belongs to gateway {gateway.name!r}, not {batch.gateway!r}", pointer="/gateway")
    if not batch.records:
        raise Problem(400, "invalid-batch", "Invalid batch", "a batch holds at least one record", pointer="/records")
    if batch.commune is not None:
        commune = request.app[TERRITORY].resolve(batch.commune)
        if commune is None:
            raise Problem(400, "invalid-batch", "Invalid batch", f"{batch.commune!r} is no commune of the territory",
                          pointer="/commune")
        if commune.insee != gateway.commune:
            # a former commune's code resolves to the commune it merged into, and is accepted there
            raise Problem(403, "wrong-commune", "Forbidden",
                          f"gateway {gateway.name!r} is registered in {gateway.commune}, not {batch.commune}",
                          pointer="/commune")
    result = await request.app[STORE].ingest(gateway, batch.records)
    for listener in request.app[INGEST_LISTENERS]:
        listener(gateway, batch, result)
    return json_response({"ack_seq": result.ack_seq, "stored": result.stored, "duplicates": result.duplicates})


# -- reads ----------------------------------------------------------------------------------

async def get_gateways(request: web.Request) -> web.Response:
    infos = await request.app[STORE].gateways()
    return json_response({"gateways": [info.as_json() for info in infos]})


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
