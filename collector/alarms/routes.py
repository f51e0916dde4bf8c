"""The alarms API (docs/collector-api.md, "Alarms"), and the fold running with the app.

    GET  /api/v1/alarms?state=&commune=&severity=&kind=&gateway=&limit=&offset=
    GET  /api/v1/alarms/{id}                     with its devices, history, comments and audit
    POST /api/v1/alarms/{id}/ack                 {"comment"?}
    POST /api/v1/alarms/{id}/assign              {"operator"}
    POST /api/v1/alarms/{id}/comment             {"comment"}
    POST /api/v1/alarms/{id}/clear               {"comment"}: why, since the devices did not say they are back

Reads need a viewer (anyone, without `serve --operator-login`), actions an operator (collector.access
.require_role): the operator's name goes into the audit. Every change notifies the CHANGES topic
"alarms", which the control-centre page hears as a `change` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from citygate_wire.common import now_ms
from collector.access import RESTRICTED, operator_roles, require_role
from collector.alarms.fold import Fold
from collector.alarms.model import ACTIVE, MAX_COMMENT, SEVERITIES, STATES, TOPIC, AlarmError, Filters
from collector.appkeys import INGEST_LISTENERS, LINK, STORE, TERRITORY
from collector.dashboard.routes import add_stream_topic
from collector.live import CHANGES
from collector.params import int_param, invalid, json_body, json_response, path_id
from collector.problem import Problem

log = logging.getLogger("citygate.collector.alarms")

PREFIX = "/api/v1/alarms"
#: the fold runs this often with nothing to wake it (another instance's writes, a quiet link)
POLL_S = 2.0
#: and no more often than this however often batches come (a metropolis posts several a second)
MIN_GAP_S = 0.5
MAX_LIMIT = 500
ACTIONS = {"ack": "acknowledge", "assign": "assign", "comment": "comment", "clear": "clear"}
FOLD = web.AppKey("alarm_fold", Fold)


def add_alarm_routes(app: web.Application) -> None:
    fold = app[FOLD] = Fold(app[STORE])
    wake = asyncio.Event()
    app[INGEST_LISTENERS].append(lambda *_: wake.set())
    add_stream_topic(app, TOPIC)
    r = app.router
    r.add_get(PREFIX, get_alarms)
    r.add_get(PREFIX + "/{alarm}", get_alarm)
    r.add_post(PREFIX + "/{alarm}/{action}", post_action)

    async def folding(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_fold_forever(app, fold, wake), name="alarm-fold")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(folding)


async def _fold_forever(app: web.Application, fold: Fold, wake: asyncio.Event) -> None:
    """A pass whenever a batch is stored or the link records an alarm, and every POLL_S anyway."""
    failures = 0
    while True:
        link = app.get(LINK)
        waits = [asyncio.ensure_future(wake.wait())]
        if link is not None:
            waits.append(asyncio.ensure_future(link.next_change().wait()))
        try:
            await asyncio.wait(waits, timeout=POLL_S if not failures else min(60.0, POLL_S * 2 ** failures),
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        wake.clear()
        try:
            await caught_up(app)
            failures = 0
        except Exception:  # a database away for a while: the next pass reads from the same cursor
            failures += 1
            log.exception("alarm fold failed (%d in a row): trying again", failures)
        await asyncio.sleep(MIN_GAP_S)


async def caught_up(app: web.Application) -> None:
    """Fold what is new, and tell the page if an alarm changed."""
    if await app[FOLD].catch_up():
        app[CHANGES].notify(TOPIC)


async def hidden(request: web.Request) -> tuple[str, ...]:
    """The gateways whose alarms this reader may not see: those a feature restricts to a role it does
    not hold (collector.access.add_restricted: a police vehicle's gateway without the police role)."""
    restricted: dict[str, str] = {}
    for names in request.app.get(RESTRICTED, []):
        restricted.update(await names(request.app))
    if not restricted:
        return ()
    roles = await operator_roles(request)
    return tuple(sorted(name for name, role in restricted.items() if role not in roles))


def filters(request: web.Request, hide: tuple[str, ...]) -> Filters:
    q = request.query
    raw_state = q.get("state", "active")
    if raw_state == "active":
        states: tuple[str, ...] = ACTIVE
    elif raw_state == "all":
        states = STATES
    else:
        states = tuple(dict.fromkeys(s.strip() for s in raw_state.split(",")))
        if not states or any(s not in STATES for s in states):
            raise invalid("state", f"state: active, all, or a comma-separated list of {', '.join(STATES)}")
    severity = q.get("severity")
    if severity is not None and severity not in SEVERITIES:
        raise invalid("severity", f"severity: one of {', '.join(SEVERITIES)}")
    commune = q.get("commune")
    if commune is not None:
        found = request.app[TERRITORY].resolve(commune)
        if found is None:
            raise invalid("commune", f"{commune[:20]!r} is no commune of the territory")
        commune = found.insee
    return Filters(states=states, commune=commune, severity=severity, kind=q.get("kind"), gateway=q.get("gateway"),
                   limit=int_param(request, "limit", 50, 1, MAX_LIMIT), offset=int_param(request, "offset", 0, 0, 10**9),
                   hidden=hide)


async def get_alarms(request: web.Request) -> web.Response:
    await require_role(request, "viewer")
    f = filters(request, await hidden(request))
    await caught_up(request.app)
    alarms, total, counts = await request.app[STORE].list_alarms(f, now_ms())
    names = _commune_names(request.app, {*counts.commune, *(a.commune for a in alarms)})
    return json_response({"alarms": [{**a.as_json(), "commune_name": names.get(a.commune)} for a in alarms],
                          "total": total, "limit": f.limit, "offset": f.offset, "counts": counts.as_json(),
                          "commune_names": names})


def _commune_names(app: web.Application, codes: set[str]) -> dict[str, str]:
    communes = app[TERRITORY].communes
    return {c: communes[c].name for c in sorted(codes) if c in communes}


def _alarm_id(request: web.Request) -> int:
    alarm_id = path_id(request, "alarm")
    if alarm_id is None:
        raise Problem(404, "unknown-alarm", "Not Found", f"no alarm {request.match_info['alarm'][:40]!r}")
    return alarm_id


async def alarm_document(app: web.Application, alarm_id: int, hide: tuple[str, ...] = ()) -> dict[str, Any]:
    store = app[STORE]
    alarm = await store.get_alarm(alarm_id)
    if alarm is None or alarm.gateway in hide:
        raise Problem(404, "unknown-alarm", "Not Found", f"no alarm {alarm_id}")
    audit = await store.alarm_audit(alarm_id)
    return {
        **alarm.as_json(),
        "commune_name": _commune_names(app, {alarm.commune}).get(alarm.commune),
        "devices": [d.as_json() for d in alarm.devices],
        "history": [h.as_json() for h in await store.alarm_history(alarm_id)],
        "comments": [{"at_ms": a.at_ms, "operator": a.operator, "action": a.action.removeprefix("alarm."),
                      "text": a.detail} for a in audit if a.detail and a.action != "alarm.assign"],
        "audit": [a.as_json() for a in audit],
    }


async def get_alarm(request: web.Request) -> web.Response:
    await require_role(request, "viewer")
    alarm_id = _alarm_id(request)
    await caught_up(request.app)
    return json_response(await alarm_document(request.app, alarm_id, await hidden(request)))


def _text(body: dict[str, Any], name: str, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_COMMENT:
        raise Problem(400, "invalid-body", "Invalid body", f"{name}: text of 1 to {MAX_COMMENT} characters",
                      pointer=f"/{name}")
    return value.strip()


async def post_action(request: web.Request) -> web.Response:
    action = ACTIONS.get(request.match_info["action"])
    if action is None:
        raise Problem(404, "not-found", "Not Found",
                      f"no alarm action {request.match_info['action'][:40]!r}: ack, assign, comment or clear")
    who = await require_role(request, "operator")
    alarm_id = _alarm_id(request)
    body = await json_body(request, optional=action == "acknowledge")
    allowed = {"assign": {"operator"}}.get(action, {"comment"})
    extra = body.keys() - allowed
    if extra:
        raise Problem(400, "invalid-body", "Invalid body", f"unknown member(s) {sorted(extra)}: {action} takes "
                      f"{', '.join(sorted(allowed))}", pointer="")
    store = request.app[STORE]
    await alarm_document(request.app, alarm_id, await hidden(request))  # 404 for an alarm it may not see
    if action == "assign":
        text = _text(body, "operator", True)
        if text not in {o.name for o in await store.operators()}:
            raise Problem(400, "unknown-operator", "Invalid body", f"no operator named {text!r}", pointer="/operator")
    else:
        text = _text(body, "comment", action in ("comment", "clear"))
    try:
        await store.act_on_alarm(alarm_id, action, f"operator:{who}", text, now_ms())
    except AlarmError as exc:
        problem = Problem(exc.status, exc.slug, "Conflict" if exc.status == 409 else "Not Found", str(exc))
        if exc.state:
            problem.extra["state"] = exc.state
        raise problem from None
    request.app[CHANGES].notify(TOPIC)
    return json_response(await alarm_document(request.app, alarm_id))
