"""The operators' side of the residents' reports: a work queue (problem+json errors, audited).

    GET  /api/v1/reports?state=&commune=&service=&assigned=&limit=&offset=
                                        newest first, with the total; `assigned` an operator's name,
                                        `me`, or `none` (unassigned); states and services comma-separated
    GET  /api/v1/reports/{id}           with its reporters, its history and its lamp's fault now
    POST /api/v1/reports/{id}/state     {"state", "note"?, "expected_datetime"?, "from_state"?}: a move
                                        model.TRANSITIONS allows, or the same state with a new public
                                        note; `from_state` the state the operator saw (409 if it moved)
    POST /api/v1/reports/{id}/assign    {"operator": name or null}

Reading needs a viewer, handling an operator (collector.access.require_role).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from citygate_wire.common import now_ms
from collector.access import require_role
from collector.appkeys import STORE, TERRITORY
from collector.i18n import request_lang
from collector.live import CHANGES
from collector.params import MAX_ID, int_param, json_body, json_response, path_id
from collector.problem import Problem
from collector.reports.model import MAX_NOTE, MAX_RESULTS, STATES, Open311Error, ReportRow, parse_datetime
from collector.reports.services import SERVICES
from collector.reports.store import Filters, ReportConflict

TOPIC = "reports"
#: `assigned=` values that are no operator's name
UNASSIGNED, ME = "none", "me"


def add_queue_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/reports", operator_reports)
    r.add_get("/api/v1/reports/{report:[0-9]+}", operator_report)
    r.add_post("/api/v1/reports/{report:[0-9]+}/state", operator_set_state)
    r.add_post("/api/v1/reports/{report:[0-9]+}/assign", operator_assign)


def _invalid(parameter: str, detail: str) -> Problem:
    return Problem(400, "invalid-parameter", "Invalid query parameter", detail, parameter=parameter)


def _invalid_body(pointer: str, detail: str) -> Problem:
    return Problem(400, "invalid-body", "Invalid body", detail, pointer=pointer)


def _csv(raw: str | None) -> list[str]:
    return [] if raw is None else [v.strip() for v in raw.split(",") if v.strip()]


async def queue_filters(request: web.Request, who: str) -> Filters:
    q = request.query
    states = _csv(q.get("state"))
    bad = [s for s in states if s not in STATES]
    if bad:
        raise _invalid("state", f"state {bad[0]!r}: one of {', '.join(STATES)}")
    services = _csv(q.get("service"))
    unknown = [s for s in services if s not in SERVICES]
    if unknown:
        raise _invalid("service", f"service {unknown[0]!r}: one of {', '.join(SERVICES)}")
    commune = None
    if q.get("commune"):
        found = request.app[TERRITORY].resolve(q["commune"])
        if found is None:
            raise Problem(404, "unknown-commune", "Not Found", f"{q['commune']!r} is no commune", parameter="commune")
        commune = found.insee
    assigned = q.get("assigned")
    if assigned is not None:
        assigned = assigned.strip()
        assigned = "" if assigned in (UNASSIGNED, "") else who if assigned == ME else assigned
    limit = int_param(request, "limit", 100, 1, MAX_RESULTS)
    offset = int_param(request, "offset", 0, 0, MAX_ID)
    return Filters(None, services, states, commune, 0, 2**62, limit, assigned=assigned, offset=offset)


async def operator_reports(request: web.Request) -> web.Response:
    who = await require_role(request, "viewer")
    filters = await queue_filters(request, who)
    store = request.app[STORE]
    rows = await store.reports(filters)
    lang = request_lang(request)
    return json_response({"reports": [r.operator_json(lang) for r in rows], "total": await store.count_reports(filters),
                          "limit": filters.limit, "offset": filters.offset})


async def _operator_row(request: web.Request) -> ReportRow:
    rid = path_id(request, "report")
    row = None if rid is None else await request.app[STORE].report(rid)
    if row is None:
        raise Problem(404, "unknown-report", "Not Found", f"no report {request.match_info['report']}")
    return row


async def _detail(request: web.Request, row: ReportRow) -> dict[str, Any]:
    store = request.app[STORE]
    fault = None
    if row.lamp_gateway is not None:
        faults = [f for f in await store.open_lamp_faults(row.lamp_gateway) if f.device == row.lamp_device]
        fault = {"open": bool(faults), "since_ms": faults[0].since_ms if faults else None}
    return {**row.operator_json(request_lang(request)),
            "lamp_fault": fault,
            "reporters": [p.as_json() for p in await store.report_reporters(row.id)],
            "history": [h.as_json() for h in await store.report_history(row.id)]}


async def operator_report(request: web.Request) -> web.Response:
    await require_role(request, "viewer")
    return json_response(await _detail(request, await _operator_row(request)))


def _note(body: dict[str, Any]) -> str | None:
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or not note.strip() or len(note) > MAX_NOTE):
        raise _invalid_body("/note", f"note: a text of 1 to {MAX_NOTE} characters")
    return None if note is None else note.strip()


async def operator_set_state(request: web.Request) -> web.Response:
    who = await require_role(request, "operator")
    row = await _operator_row(request)
    body = await json_body(request)
    extra = body.keys() - {"state", "note", "expected_datetime", "from_state"}
    if extra:
        raise _invalid_body("", f"unknown member(s) {sorted(extra)}")
    state = body.get("state")
    if state not in STATES:
        raise _invalid_body("/state", f"state: one of {', '.join(STATES)}")
    from_state = body.get("from_state")
    if from_state is not None and from_state not in STATES:
        raise _invalid_body("/from_state", f"from_state: one of {', '.join(STATES)}")
    note = _note(body)
    expected = body.get("expected_datetime")
    expected_ms = None
    if expected is not None:
        if not isinstance(expected, str):
            raise _invalid_body("/expected_datetime", "expected_datetime: an ISO 8601 date-time")
        try:
            expected_ms = parse_datetime(expected, "expected_datetime")
        except Open311Error as exc:
            raise _invalid_body("/expected_datetime", exc.detail) from None
    try:
        updated = await request.app[STORE].set_report_state(row.id, state, note, expected_ms, who, now_ms(),
                                                            from_state=from_state)
    except ReportConflict as exc:
        raise Problem(409, "report-state", "Conflict", str(exc), state=row.state) from None
    assert updated is not None
    request.app[CHANGES].notify(TOPIC)
    return json_response(await _detail(request, updated))


async def operator_assign(request: web.Request) -> web.Response:
    who = await require_role(request, "operator")
    row = await _operator_row(request)
    body = await json_body(request)
    extra = body.keys() - {"operator"}
    if extra or "operator" not in body:
        raise _invalid_body("", 'expected {"operator": <an operator\'s name, or null>}')
    assignee = body["operator"]
    if assignee is not None:
        if not isinstance(assignee, str) or not assignee.strip():
            raise _invalid_body("/operator", "operator: an operator's name, or null")
        known = {o.name for o in await request.app[STORE].operators()}
        if assignee not in known:
            raise Problem(404, "unknown-operator", "Not Found", f"no operator named {assignee!r}", pointer="/operator")
    updated = await request.app[STORE].assign_report(row.id, assignee, f"operator:{who}", now_ms())
    assert updated is not None
    request.app[CHANGES].notify(TOPIC)
    return json_response(await _detail(request, updated))
