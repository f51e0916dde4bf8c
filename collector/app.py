"""The collector's aiohttp application: batch ingest and the read API.

`create_app(store)` builds the app; other features add their routes to it
(`app.router.add_get(...)`) and reach the store through `request.app[STORE]`.
`start(app, host, port)` serves it the way it must be served (aiohttp's own request
decompression off: collector.body bounds the inflated size itself).
"""

from __future__ import annotations

import logging

import orjson
from aiohttp import web

from citygate_wire.batch import PATH, WireError, decode_batch
from collector.body import read_body
from collector.model import Gateway
from collector.problem import Problem, problem_middleware
from collector.store import Store
from collector.tokens import hash_token

log = logging.getLogger("citygate.collector")

STORE = web.AppKey("store", Store)
MAX_BODY = web.AppKey("max_body_bytes", int)

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024  # decompressed; the agent's batches are about 2 MB
MAX_READ_LIMIT = 10_000


def json_response(doc: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(doc), content_type="application/json")


def create_app(store: Store, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> web.Application:
    app = web.Application(middlewares=[problem_middleware])
    app[STORE] = store
    app[MAX_BODY] = max_body_bytes
    app.router.add_post(PATH, post_batch)
    app.router.add_get("/api/v1/gateways", get_gateways)
    app.router.add_get("/api/v1/gateways/{gateway}/devices/{device}/samples", get_device_samples)
    app.router.add_get("/api/v1/gateways/{gateway}/events", get_gateway_events)
    return app


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
    try:
        batch = decode_batch(body)
    except WireError as exc:
        raise Problem(400, "invalid-batch", "Invalid batch", exc.reason, pointer=exc.pointer) from None
    if batch.gateway != gateway.name:
        log.warning("gateway %s sent a batch for %r: refused", gateway.name, batch.gateway)
        raise Problem(403, "wrong-gateway", "Forbidden",
                      f"this token belongs to gateway {gateway.name!r}, not {batch.gateway!r}", pointer="/gateway")
    if not batch.records:
        raise Problem(400, "invalid-batch", "Invalid batch", "a batch holds at least one record", pointer="/records")
    result = await request.app[STORE].ingest(gateway, batch.records)
    return json_response({"ack_seq": result.ack_seq, "stored": result.stored, "duplicates": result.duplicates})


# -- reads ----------------------------------------------------------------------------------

async def get_gateways(request: web.Request) -> web.Response:
    infos = await request.app[STORE].gateways()
    return json_response({"gateways": [info.as_json() for info in infos]})


def int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = lo - 1
    if not lo <= value <= hi:
        raise Problem(400, "invalid-parameter", "Invalid query parameter",
                      f"{name} must be an integer in [{lo}, {hi}], got {raw!r}", parameter=name)
    return value


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
    samples = await request.app[STORE].recent_samples(gateway, device, limit)
    return json_response({"gateway": gateway.name, "device": device, "samples": [s.as_json() for s in samples]})


async def get_gateway_events(request: web.Request) -> web.Response:
    limit = int_param(request, "limit", 100, 1, MAX_READ_LIMIT)
    gateway = await path_gateway(request)
    events = await request.app[STORE].recent_events(gateway, limit)
    return json_response({"gateway": gateway.name, "events": [e.as_json() for e in events]})
