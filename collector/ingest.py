"""Batch ingest: `POST /api/v1/batches` from a gateway, authenticated by its bearer token."""

from __future__ import annotations

import logging

from aiohttp import web

from citygate_wire.batch import PATH, FutureTimestamp, WireError, decode_batch
from citygate_wire.common import FUTURE_TIMESTAMP, now_ms
from collector.admission import ADMISSION, Admission, ClientGone, client_gone, limit_from_env
from collector.appkeys import INGEST_LISTENERS, MAX_BODY, MAX_FUTURE_MS, STORE, TERRITORY
from collector.body import read_body
from collector.model import Gateway
from collector.params import bearer_owner, json_response
from collector.problem import Problem

log = logging.getLogger("citygate.collector")

REALM = "citygate"


def add_ingest_routes(app: web.Application) -> None:
    app.setdefault(ADMISSION, Admission(limit_from_env()))
    app.router.add_post(PATH, post_batch)


async def authenticate(request: web.Request) -> Gateway:
    """The gateway owning the bearer token, or Problem 401."""
    return await bearer_owner(request, REALM, "gateway", request.app[STORE].gateway_for_token)


async def post_batch(request: web.Request) -> web.Response:
    """A bounded number at once, a few waiting (collector.admission): beyond them a 503, before anything is read."""
    async with request.app[ADMISSION].slot():
        return await _post_batch(request)


async def _post_batch(request: web.Request) -> web.Response:
    gateway = await authenticate(request)
    content_type = request.headers.get("Content-Type", "application/json")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise Problem(415, "unsupported-media-type", "Unsupported media type",
                      f"Content-Type {content_type!r}: a batch is application/json")
    try:
        body = await read_body(request, request.app[MAX_BODY])
    except ConnectionResetError:
        request.app[ADMISSION].gone += 1
        raise ClientGone("the connection closed while the batch was read") from None
    now = now_ms()
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
    if client_gone(request):  # it gave up while the batch waited: storing it would acknowledge it to nobody
        request.app[ADMISSION].gone += 1
        log.info("gateway %s closed its connection before its batch was stored: not stored", gateway.name)
        raise ClientGone("the connection closed before the batch was stored")
    result = await request.app[STORE].ingest(gateway, batch.records)
    for listener in request.app[INGEST_LISTENERS]:
        listener(gateway, batch, result)
    return json_response({"ack_seq": result.ack_seq, "stored": result.stored, "duplicates": result.duplicates})
