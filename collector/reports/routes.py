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

Operators (`Authorization: Bearer <operator token>`, problem+json errors):

    GET  /api/v1/reports?state=&commune=&limit=            with the reporters' contact details
    GET  /api/v1/reports/{id}                              and its reporters and history
    POST /api/v1/reports/{id}/state                        {"state", "note"?, "expected_datetime"?}
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from citygate_wire.common import now_ms
from collector.access import client_address, operator, site_origin
from collector.appkeys import STORE, TERRITORY
from collector.live import CHANGES, sse
from collector.params import MAX_ID, bearer_token, int_param, json_body, json_response, parse_int, path_id
from collector.problem import Problem
from collector.reports.formats import JSON_TYPE, XML_TYPE, document
from collector.reports.model import (
    MAX_NOTE,
    MAX_RESULTS,
    OPEN_STATES,
    STATES,
    NewReport,
    Open311Error,
    ReportRow,
    distance_m,
    jurisdiction,
    parse_datetime,
    parse_new_report,
    search_window,
)
from collector.reports.ratelimit import ReportLimiter
from collector.reports.services import CHANGESET, LAMP_ID, LAMP_ID_RE, SERVICES
from collector.reports.store import Filters, Lamp, ReportConflict
from collector.territory import Commune
from collector.tokens import hash_token

ROOT = "/open311"
PREFIX = ROOT + "/v2"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
#: each path answers JSON bare or with `.json`, XML with `.xml`
SUFFIXES = ("", ".json", ".xml")
#: the private follow token of a new report, and where to follow it (kept out of the spec's reply body)
FOLLOW_TOKEN_HEADER = "Citygate-Follow-Token"
FOLLOW_URL_HEADER = "Citygate-Follow-URL"
FOLLOW_TOKEN_PREFIX = "cgf_"
#: a located lamp-out report is about a faulty lamp of a cabinet at most this far away
NEAR_LAMP_M = 150.0
TOPIC = "reports"
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
    r.add_get("/api/v1/reports", operator_reports)
    r.add_get("/api/v1/reports/{report:[0-9]+}", operator_report)
    r.add_post("/api/v1/reports/{report:[0-9]+}/state", operator_set_state)


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
    return document(request, "discovery", {
        "changeset": CHANGESET,
        "contact": f"{territory.name}: the residents' reports of the street lighting and public space, "
                   "run on citygate (docs/collector-api.md)",
        "key_service": "No API key is needed: reports are open to anyone (an api_key sent is ignored).",
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
    return document(request, "services", [s.as_json() for s in SERVICES.values()])


async def get_service_definition(request: web.Request) -> web.Response:
    _jurisdiction(request)
    code = request.match_info["service_code"]
    service = SERVICES.get(code)
    if service is None:
        raise Open311Error(404, f"service_code {code!r} was not found")
    return document(request, "service_definition", service.definition())


# -- new reports ------------------------------------------------------------------------------------

async def _form(request: web.Request) -> dict[str, str]:
    ctype = request.content_type
    if ctype not in ("application/x-www-form-urlencoded", "application/json"):
        raise Open311Error(400, f"send the fields as application/x-www-form-urlencoded (or a JSON object), "
                                f"not {ctype!r}")
    too_large = Open311Error(413, f"the body exceeds {MAX_FORM_BYTES} bytes: a report is a few fields")
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
            raise Open311Error(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise Open311Error(400, "the JSON body must be an object of fields")
        items = doc.items()
    else:
        try:
            items = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
        except UnicodeDecodeError:
            raise Open311Error(400, "the form is not UTF-8") from None
        except ValueError:
            raise Open311Error(400, f"a report has at most {MAX_FORM_FIELDS} fields") from None
    out: dict[str, str] = {}
    for key, value in items:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise Open311Error(400, f"{key}: expected a text value")
        if key in out:
            raise Open311Error(400, f"{key} is given twice")
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
            raise Open311Error(400, f"attribute[{LAMP_ID}]: no lamp cabinet named {gateway_name!r}")
        if gateway.commune != report.commune.insee:
            raise Open311Error(400, f"attribute[{LAMP_ID}]: cabinet {gateway_name} is not in {report.commune.name}")
        if not any(d.device == device for d in await store.devices(gateway_name, kind="lamp")):
            raise Open311Error(400, f"attribute[{LAMP_ID}]: cabinet {gateway_name} has no lamp {device!r}")
        lamp = Lamp(gateway_name, device)
        faults = [f for f in await store.open_lamp_faults(gateway_name) if f.device == device]
        return lamp, faults[0].since_ms if faults else None
    if report.lat is None or report.lon is None:
        return None, None
    # no lamp number: a faulty lamp whose cabinet is close by (the collector knows cabinets' positions only)
    cabinets = {i.gateway.name: i.gateway for i in await store.gateways()}
    best: tuple[float, str] | None = None
    faults = await store.open_lamp_faults()
    for f in faults:
        g = cabinets.get(f.gateway)
        if g is None or g.lat is None or g.lon is None or g.commune != report.commune.insee:
            continue
        d = distance_m(report.lat, report.lon, g.lat, g.lon)
        if d <= NEAR_LAMP_M and (best is None or d < best[0]):
            best = (d, f.gateway)
    if best is None:
        return None, None
    nearby = [f for f in faults if f.gateway == best[1]]
    for f in nearby:  # a lamp of that cabinet already has an open report: that is the one
        if await store.open_report_for_lamp(Lamp(f.gateway, f.device)) is not None:
            return Lamp(f.gateway, f.device), f.since_ms
    return Lamp(nearby[0].gateway, nearby[0].device), nearby[0].since_ms


async def post_request(request: web.Request) -> web.Response:
    report = parse_new_report(await _form(request), request.app[TERRITORY])
    # counted once the report is valid: a typo costs a resident nothing
    wait_s = request.app[LIMITER].take(client_address(request), report.contact.email)
    if wait_s:
        raise Open311Error(429, f"too many reports from this address or this e-mail: try again in {wait_s} s",
                           headers={"Retry-After": str(wait_s)})
    lamp, fault_since = await _lamp(request, report)
    token = FOLLOW_TOKEN_PREFIX + secrets.token_urlsafe(32)
    result = await request.app[STORE].submit_report(report, hash_token(token), now_ms(), lamp=lamp,
                                                    fault_since_ms=fault_since)
    request.app[CHANGES].notify(TOPIC)
    rid = str(result.request.id)
    if result.attached:
        notice = f"Ce lampadaire est déjà signalé : votre signalement est rattaché à la demande {rid}."
    elif fault_since is not None:
        notice = "Panne déjà détectée par la télégestion : une intervention va être programmée."
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
    })


# -- reading reports ----------------------------------------------------------------------------------

def _csv(raw: str | None) -> list[str]:
    return [] if raw is None else [v.strip() for v in raw.split(",") if v.strip()]


async def get_requests(request: web.Request) -> web.Response:
    q = request.query
    ids = _csv(q.get("service_request_id"))
    if ids:
        numbers = [parse_int(i) for i in ids[:MAX_RESULTS]]
        bad = [i for i, n in zip(ids, numbers, strict=False) if n is None or not 0 <= n <= MAX_ID]
        if bad:
            raise Open311Error(400, f"service_request_id {bad[0]!r} is not a request id")
        rows = await request.app[STORE].reports(Filters(ids=[n for n in numbers if n is not None]))
        return document(request, "service_requests", [r.public_json() for r in rows])
    codes = _csv(q.get("service_code"))
    unknown = [c for c in codes if c not in SERVICES]
    if unknown:
        raise Open311Error(400, f"service_code {unknown[0]!r} was not found")
    states: list[str] = []
    for status in _csv(q.get("status")):
        if status not in ("open", "closed"):
            raise Open311Error(400, f"status {status!r}: open or closed")
        states += OPEN_STATES if status == "open" else ["resolved"]
    commune = _jurisdiction(request)
    first, last = search_window(q.get("start_date"), q.get("end_date"), now_ms())
    rows = await request.app[STORE].reports(Filters(None, codes, states, None if commune is None else commune.insee,
                                                    first, last, MAX_RESULTS))
    return document(request, "service_requests", [r.public_json() for r in rows])


async def _request_row(request: web.Request) -> ReportRow:
    rid = path_id(request, "service_request_id")
    row = None if rid is None else await request.app[STORE].report(rid)
    if row is None:
        raise Open311Error(404, f"service_request_id {request.match_info['service_request_id']} was not found")
    return row


def _in_jurisdiction(request: web.Request, row: ReportRow, what: str) -> None:
    commune = _jurisdiction(request)
    if commune is not None and commune.insee != row.jurisdiction:
        raise Open311Error(404, f"{what} was not found in jurisdiction_id {request.query['jurisdiction_id']!r}")


async def get_request(request: web.Request) -> web.Response:
    row = await _request_row(request)
    _in_jurisdiction(request, row, f"service_request_id {row.id}")
    return document(request, "service_requests", [row.public_json()])


async def get_token(request: web.Request) -> web.Response:
    """The spec's `GET tokens/{token}`: here the token is a follow token, which a POST reply carries."""
    token = request.match_info["token"]
    row = await request.app[STORE].report_of_follower(hash_token(token))
    if row is None:
        raise Open311Error(404, "token was not found")
    _in_jurisdiction(request, row, "token")
    return document(request, "service_requests", [{"service_request_id": str(row.id), "token": token}])


async def follow_request(request: web.Request) -> web.StreamResponse:
    """SSE of one request for its reporters: the token given at creation, as ?token= or a bearer token."""
    row = await _request_row(request)
    token = request.query.get("token") or bearer_token(request) or ""
    if not token:
        raise Open311Error(401, "the follow token given when the report was sent is required (?token=...)")
    store = request.app[STORE]
    if not await store.report_follower(row.id, hash_token(token)):
        raise Open311Error(403, "this follow token does not belong to this request")

    async def snapshot() -> tuple[str, Any]:
        current = await store.report(row.id)
        assert current is not None  # requests are never deleted
        return "status", {**current.public_json(), "state": current.state}

    return await sse(request, snapshot, [TOPIC])


# -- operators ----------------------------------------------------------------------------------------

async def operator_reports(request: web.Request) -> web.Response:
    await operator(request)
    states = _csv(request.query.get("state"))
    bad = [s for s in states if s not in STATES]
    if bad:
        raise Problem(400, "invalid-parameter", "Invalid query parameter",
                      f"state {bad[0]!r}: one of {', '.join(STATES)}", parameter="state")
    commune = None
    if request.query.get("commune") is not None:
        found = request.app[TERRITORY].resolve(request.query["commune"])
        if found is None:
            raise Problem(404, "unknown-commune", "Not Found", f"{request.query['commune']!r} is no commune",
                          parameter="commune")
        commune = found.insee
    limit = int_param(request, "limit", 100, 1, MAX_RESULTS)
    rows = await request.app[STORE].reports(Filters(None, (), states, commune, 0, 2**62, limit))
    return json_response({"reports": [r.operator_json() for r in rows]})


async def _operator_row(request: web.Request) -> ReportRow:
    rid = path_id(request, "report")
    row = None if rid is None else await request.app[STORE].report(rid)
    if row is None:
        raise Problem(404, "unknown-report", "Not Found", f"no report {request.match_info['report']}")
    return row


async def _detail(request: web.Request, row: ReportRow) -> dict[str, Any]:
    store = request.app[STORE]
    return {**row.operator_json(),
            "reporters": [p.as_json() for p in await store.report_reporters(row.id)],
            "history": [h.as_json() for h in await store.report_history(row.id)]}


async def operator_report(request: web.Request) -> web.Response:
    await operator(request)
    return json_response(await _detail(request, await _operator_row(request)))


async def operator_set_state(request: web.Request) -> web.Response:
    who = await operator(request)
    row = await _operator_row(request)
    body = await json_body(request)
    extra = body.keys() - {"state", "note", "expected_datetime"}
    if extra:
        raise Problem(400, "invalid-body", "Invalid body", f"unknown member(s) {sorted(extra)}", pointer="")
    state = body.get("state")
    if state not in STATES:
        raise Problem(400, "invalid-body", "Invalid body", f"state: one of {', '.join(STATES)}", pointer="/state")
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or not note.strip() or len(note) > MAX_NOTE):
        raise Problem(400, "invalid-body", "Invalid body", f"note: a text of 1 to {MAX_NOTE} characters",
                      pointer="/note")
    expected = body.get("expected_datetime")
    expected_ms = None
    if expected is not None:
        if not isinstance(expected, str):
            raise Problem(400, "invalid-body", "Invalid body", "expected_datetime: an ISO 8601 date-time",
                          pointer="/expected_datetime")
        try:
            expected_ms = parse_datetime(expected, "expected_datetime")
        except Open311Error as exc:
            raise Problem(400, "invalid-body", "Invalid body", exc.detail, pointer="/expected_datetime") from None
    try:
        updated = await request.app[STORE].set_report_state(row.id, state, note, expected_ms, who, now_ms())
    except ReportConflict:
        raise Problem(409, "report-state", "Conflict",
                      f"lamp {row.lamp_gateway}/{row.lamp_device} already has another open report") from None
    assert updated is not None
    request.app[CHANGES].notify(TOPIC)
    return json_response(await _detail(request, updated))
