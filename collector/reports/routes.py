"""Open311 GeoReport v2 under /open311/v2/ (XML and JSON: every path answers JSON bare or with
`.json`, XML with `.xml`), the reporter's live follow stream, and the operators' side of the reports.

Public (no login), errors as `[{"code", "description"}]` (`<errors><error>…` on `.xml` paths):

    GET  /open311/discovery.{json,xml}                     the endpoints, their formats and changeset
                                                           (also under /open311/v2/)
    GET  /open311/v2/services.json                         the report types
    GET  /open311/v2/services/{service_code}.json          a type's attributes (lamp-out: lamp_id)
    POST /open311/v2/requests.json                         a new report -> its id; a private follow token
                                                           in the headers (rate-limited: collector.reports.ratelimit)
    GET  /open311/v2/requests.json                         search (ids, service_code, status, 90-day window)
    GET  /open311/v2/requests/{id}.json                    one report
    GET  /open311/v2/tokens/{token}.json                   the report a follow token belongs to
    GET  /open311/v2/requests/{id}/events?token=...        SSE: the report's status, live, for its reporter

    GET  /open311/follow/{id}                              the resident's page of a request (page.py)

Every text a resident reads is in French, or in English with `?lang=en` or an Accept-Language
preferring it (collector.i18n; the messages are in messages.py), Open311 errors included.

Operators work the reports as a queue under /api/v1/reports (queue.py); lamp reports follow
their lamp's fault (lamps.py).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from citygate_wire.common import now_ms
from collector.access import client_address, site_origin
from collector.appkeys import STORE, TERRITORY
from collector.i18n import msg, request_lang, t
from collector.live import CHANGES, sse
from collector.params import MAX_ID, bearer_token, parse_int, path_id, storable
from collector.problem import OPEN311_PREFIX, Handler, Problem
from collector.reports.formats import JSON_TYPE, XML_TYPE, document
from collector.reports.lamps import install_lamp_follower, lamp_near
from collector.reports.model import (
    MAX_RESULTS,
    OPEN_STATES,
    NewReport,
    Open311Error,
    ReportRow,
    jurisdiction,
    parse_new_report,
    search_window,
)
from collector.reports.page import PAGE, render
from collector.reports.queue import TOPIC, add_queue_routes
from collector.reports.ratelimit import ReportLimiter
from collector.reports.services import CHANGESET, LAMP_ID, LAMP_ID_RE, SERVICES
from collector.reports.store import Filters, Lamp
from collector.territory import Commune
from collector.tokens import hash_token

log = logging.getLogger("citygate.collector")

ROOT = "/open311"
PREFIX = ROOT + "/v2"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
#: each path answers JSON bare or with `.json`, XML with `.xml`
SUFFIXES = ("", ".json", ".xml")
#: the private follow token of a new report, and where to follow it (kept out of the spec's reply body)
FOLLOW_TOKEN_HEADER = "Citygate-Follow-Token"
FOLLOW_URL_HEADER = "Citygate-Follow-URL"
FOLLOW_TOKEN_PREFIX = "cgf_"
#: the resident's page of the new report, the follow token in its fragment
FOLLOW_PAGE_HEADER = "Citygate-Follow-Page"
#: a report's fields, URL-encoded or JSON: the longest texts allowed (4000-character description...)
#: written with 4-byte characters stay well under it
MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 100
LIMITER = web.AppKey("report_limiter", ReportLimiter)


def add_report_routes(app: web.Application) -> None:
    app[LIMITER] = ReportLimiter.from_env()  # tests and embedders may set their own before start
    r = app.router
    for suffix in (".json", ".xml"):
        r.add_get(f"{ROOT}/discovery{suffix}", get_discovery)
        r.add_get(f"{PREFIX}/discovery{suffix}", get_discovery)
    for suffix in SUFFIXES:
        r.add_get(f"{PREFIX}/services{suffix}", get_services)
        r.add_get(PREFIX + "/services/{service_code:[A-Za-z0-9_-]+}" + suffix, get_service_definition)
        r.add_post(f"{PREFIX}/requests{suffix}", post_request)
        r.add_get(f"{PREFIX}/requests{suffix}", get_requests)
        r.add_get(PREFIX + "/requests/{service_request_id:[0-9]+}" + suffix, get_request)
        r.add_get(PREFIX + "/tokens/{token:[A-Za-z0-9_-]+}" + suffix, get_token)
    r.add_get(PREFIX + "/requests/{service_request_id:[0-9]+}/events", follow_request)
    r.add_get(PAGE + "/{service_request_id:[0-9]+}", follow_page)
    app.middlewares.append(open311_language)
    add_queue_routes(app)
    install_lamp_follower(app)


_HTTP_ERRORS = {404: "open311.http_not_found", 405: "open311.http_method"}


@web.middleware
async def open311_language(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Open311 errors in the request's language (the problem middleware around it writes the body)."""
    if not request.path.startswith(OPEN311_PREFIX):
        return await handler(request)
    lang = request_lang(request)
    for where, items in (("path", request.match_info.items()), ("query", request.query.items())):
        for name, value in items:  # what collector.params.refuse_nul does elsewhere, in the resident's words
            if not (storable(name) and storable(value)):
                raise Open311Error(400, msg("open311.nul", where=where, name=repr(name))).in_language(lang)
    try:
        return await handler(request)
    except Open311Error as exc:
        raise exc.in_language(lang) from None
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        key = _HTTP_ERRORS.get(exc.status, "open311.http_other")
        headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
        raise Open311Error(exc.status, msg(key, method=request.method, path=request.path, status=exc.status),
                           headers=headers).in_language(lang) from None
    except Problem:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        raise Open311Error(500, msg("open311.internal")).in_language(lang) from None


def _jurisdiction(request: web.Request) -> Commune | None:
    """The commune `?jurisdiction_id=` names, None when not given (or empty: the spec's optional argument)."""
    raw = request.query.get("jurisdiction_id")
    if raw is None or not raw.strip():
        return None
    return jurisdiction(raw, request.app[TERRITORY])


# -- discovery and services ---------------------------------------------------------------------

async def get_discovery(request: web.Request) -> web.Response:
    """The spec's Service Discovery document: one production endpoint, both formats."""
    territory = request.app[TERRITORY]
    lang = request_lang(request)
    return document(request, "discovery", {
        "changeset": CHANGESET,
        "contact": t("report.discovery.contact", lang, territory=territory.name),
        "key_service": t("report.discovery.key", lang),
        "endpoints": [{
            "specification": SPECIFICATION,
            "url": site_origin(request) + PREFIX,
            "changeset": CHANGESET,
            "type": "production",
            "formats": [XML_TYPE, JSON_TYPE],
        }],
    })


async def get_services(request: web.Request) -> web.Response:
    _jurisdiction(request)  # every commune has the same report types: a known one is all it takes
    lang = request_lang(request)
    return document(request, "services", [s.as_json(lang) for s in SERVICES.values()])


async def get_service_definition(request: web.Request) -> web.Response:
    _jurisdiction(request)
    code = request.match_info["service_code"]
    service = SERVICES.get(code)
    if service is None:
        raise Open311Error(404, msg("open311.unknown_service_short", code=repr(code)))
    return document(request, "service_definition", service.definition(request_lang(request)))


# -- new reports ------------------------------------------------------------------------------------

async def _form(request: web.Request) -> dict[str, str]:
    ctype = request.content_type
    if ctype not in ("application/x-www-form-urlencoded", "application/json"):
        raise Open311Error(400, msg("open311.content_type", ctype=repr(ctype)))
    too_large = Open311Error(413, msg("open311.body_too_large", limit=MAX_FORM_BYTES))
    if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
        raise too_large
    raw = await request.read()  # a chunked body is cut by aiohttp at its client_max_size (1 MiB): 413
    if len(raw) > MAX_FORM_BYTES:
        raise too_large
    items: Iterable[tuple[Any, Any]]
    if ctype == "application/json":
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise Open311Error(400, msg("open311.bad_json", error=str(exc))) from None
        if not isinstance(doc, dict):
            raise Open311Error(400, msg("open311.json_not_object"))
        items = doc.items()
    else:
        try:
            items = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
        except UnicodeDecodeError:
            raise Open311Error(400, msg("open311.not_utf8")) from None
        except ValueError:
            raise Open311Error(400, msg("open311.too_many_fields", limit=MAX_FORM_FIELDS)) from None
    out: dict[str, str] = {}
    for key, value in items:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise Open311Error(400, msg("open311.not_text", key=key))
        if key in out:
            raise Open311Error(400, msg("open311.twice", key=key))
        out[str(key)] = str(value)
    return out


async def _lamp(request: web.Request, report: NewReport) -> tuple[Lamp | None, int | None]:
    """The lamp a lamp report is about, and when its open fault started (telemetry), if known."""
    if not report.service.lamp:
        return None, None
    store = request.app[STORE]
    if report.lamp_id is not None:
        match = LAMP_ID_RE.match(report.lamp_id)
        assert match is not None  # parse_new_report checked it
        gateway_name, device = match.group(1), match.group(2)
        gateway = await store.gateway(gateway_name)
        if gateway is None:
            raise Open311Error(400, msg("open311.no_cabinet", code=LAMP_ID, gateway=repr(gateway_name)))
        if gateway.commune != report.commune.insee:
            raise Open311Error(400, msg("open311.cabinet_elsewhere", code=LAMP_ID, gateway=gateway_name,
                                        commune=report.commune.name))
        if not any(d.device == device for d in await store.devices(gateway_name, kind="lamp")):
            raise Open311Error(400, msg("open311.no_such_lamp", code=LAMP_ID, gateway=gateway_name,
                                        device=repr(device)))
        lamp = Lamp(gateway_name, device)
        faults = [f for f in await store.open_lamp_faults(gateway_name) if f.device == device]
        return lamp, faults[0].since_ms if faults else None
    if report.lat is None or report.lon is None:
        return None, None
    return await lamp_near(store, report.commune.insee, report.lat, report.lon)


async def post_request(request: web.Request) -> web.Response:
    report = parse_new_report(await _form(request), request.app[TERRITORY])
    # counted once the report is valid: a typo costs a resident nothing
    wait_s = request.app[LIMITER].take(client_address(request), report.contact.email)
    if wait_s:
        raise Open311Error(429, msg("open311.rate_limited", wait=wait_s), headers={"Retry-After": str(wait_s)})
    lamp, fault_since = await _lamp(request, report)
    token = FOLLOW_TOKEN_PREFIX + secrets.token_urlsafe(32)
    result = await request.app[STORE].submit_report(report, hash_token(token), now_ms(), lamp=lamp,
                                                    fault_since_ms=fault_since)
    request.app[CHANGES].notify(TOPIC)
    rid = str(result.request.id)
    lang = request_lang(request)
    if result.attached:
        notice: str | None = t("report.notice.attached", lang, id=rid)
    elif fault_since is not None:
        notice = t("report.notice.known_fault", lang)
    else:
        notice = None
    # the id is known at once (every service is `realtime`): the spec then returns no `token`, and no
    # foreign element either, so the reporter's follow token travels in headers
    suffix = ".xml" if request.path.endswith(".xml") else ".json"
    return document(request, "service_requests", [
        {"service_request_id": rid, "service_notice": notice, "account_id": None}
    ], status=201, headers={
        "Location": f"{PREFIX}/requests/{rid}{suffix}",
        FOLLOW_TOKEN_HEADER: token,
        FOLLOW_URL_HEADER: f"{PREFIX}/requests/{rid}/events?token={token}",
        FOLLOW_PAGE_HEADER: f"{PAGE}/{rid}#token={token}",
    })


# -- reading reports ----------------------------------------------------------------------------------

def _csv(raw: str | None) -> list[str]:
    return [] if raw is None else [v.strip() for v in raw.split(",") if v.strip()]


async def get_requests(request: web.Request) -> web.Response:
    q = request.query
    lang = request_lang(request)
    ids = _csv(q.get("service_request_id"))
    if ids:
        numbers = [parse_int(i) for i in ids[:MAX_RESULTS]]
        bad = [i for i, n in zip(ids, numbers, strict=False) if n is None or not 0 <= n <= MAX_ID]
        if bad:
            raise Open311Error(400, msg("open311.bad_request_id", raw=repr(bad[0])))
        rows = await request.app[STORE].reports(Filters(ids=[n for n in numbers if n is not None]))
        return document(request, "service_requests", [r.public_json(lang) for r in rows])
    codes = _csv(q.get("service_code"))
    unknown = [c for c in codes if c not in SERVICES]
    if unknown:
        raise Open311Error(400, msg("open311.unknown_service_short", code=repr(unknown[0])))
    states: list[str] = []
    for status in _csv(q.get("status")):
        if status not in ("open", "closed"):
            raise Open311Error(400, msg("open311.bad_status", raw=repr(status)))
        states += OPEN_STATES if status == "open" else ["resolved"]
    commune = _jurisdiction(request)
    first, last = search_window(q.get("start_date"), q.get("end_date"), now_ms())
    rows = await request.app[STORE].reports(Filters(None, codes, states, None if commune is None else commune.insee,
                                                    first, last, MAX_RESULTS))
    return document(request, "service_requests", [r.public_json(lang) for r in rows])


async def request_row(request: web.Request) -> ReportRow:
    rid = path_id(request, "service_request_id")
    row = None if rid is None else await request.app[STORE].report(rid)
    if row is None:
        raise Open311Error(404, msg("open311.request_not_found", id=request.match_info["service_request_id"]))
    return row


def _in_jurisdiction(request: web.Request, row: ReportRow, key: str, **values: Any) -> None:
    commune = _jurisdiction(request)
    if commune is not None and commune.insee != row.jurisdiction:
        raise Open311Error(404, msg(key, raw=repr(request.query["jurisdiction_id"]), **values))


async def get_request(request: web.Request) -> web.Response:
    row = await request_row(request)
    _in_jurisdiction(request, row, "open311.request_not_in", id=row.id)
    return document(request, "service_requests", [row.public_json(request_lang(request))])


async def get_token(request: web.Request) -> web.Response:
    """The spec's `GET tokens/{token}`: here the token is a follow token, which a POST reply carries."""
    token = request.match_info["token"]
    row = await request.app[STORE].report_of_follower(hash_token(token))
    if row is None:
        raise Open311Error(404, msg("open311.token_not_found"))
    _in_jurisdiction(request, row, "open311.token_not_in")
    return document(request, "service_requests", [{"service_request_id": str(row.id), "token": token}])


async def follow_request(request: web.Request) -> web.StreamResponse:
    """SSE of one request for its reporters: the token given at creation, as ?token= or a bearer token."""
    row = await request_row(request)
    token = request.query.get("token") or bearer_token(request) or ""
    if not token:
        raise Open311Error(401, msg("open311.follow_token_required"))
    store = request.app[STORE]
    if not await store.report_follower(row.id, hash_token(token)):
        raise Open311Error(403, msg("open311.follow_token_wrong"))
    lang = request_lang(request)

    async def snapshot() -> tuple[str, Any]:
        current = await store.report(row.id)
        assert current is not None  # requests are never deleted
        return "status", {**current.public_json(lang), "state": current.state}

    return await sse(request, snapshot, [TOPIC])


async def follow_page(request: web.Request) -> web.Response:
    row = await request_row(request)
    lang = request_lang(request)
    return web.Response(text=render(row, lang), content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-cache", "Content-Language": lang, "Vary": "Accept-Language"})
