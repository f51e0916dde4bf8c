"""The operators' HTTP API of the control plane (docs/collector-api.md, "Control plane").

Every route needs an operator (`Authorization: Bearer <operator token>`, or the page's login
session), of the rank it says (collector.access.require_role): reading needs a viewer, lighting
commands, reading a device, the agent's log level and handling alarms an operator, traffic
commands a supervisor. The operator's name goes into the audit of every command and alarm action.

    GET  /api/v1/control/presence                     every gateway: online, since, stale, last state
    GET  /api/v1/control/alarms?status=&gateway=&limit=&before=   the alarm log, newest first, a page at a time
    POST /api/v1/control/alarms/{id}/acknowledge      {"note": "..."} (optional body)
    POST /api/v1/control/alarms/{id}/clear            {"note": "..."} (optional body)
    POST /api/v1/control/commands                     {"gateway"|"commune", "action", "args", "valid_s", "reason"}
    GET  /api/v1/control/commands?limit=&before=      the audit log, newest first, a page at a time
    GET  /api/v1/control/commands/{id}?wait_s=        one command and its acks; wait_s long-polls until final
    GET  /api/v1/control/junctions                    each junction's controller: mode, plan (collector.control.junctions)
    POST /api/v1/control/junctions/{junction}/mode    {"mode": "yellow_flash"|"dark"|"normal", "reason", "duration_s"}

Each command recorded or answered is told to the page's stream (topic `commands`).

The two logs are paged by a `before` cursor (the time and id of the previous page's last row, given
by `next`), not an offset: they grow at their head, where a new alarm would shift every offset by one
and the next page would show a row again; the cursor resumes right after the last row seen, however
many came since, and is an index seek where an offset reads every row it skips.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from citygate_wire.aio import stop_tasks
from citygate_wire.common import now_ms
from citygate_wire.mqtt import MAX_VALIDITY_MS, Command, WireError
from collector.access import install_role_floor, require_role
from collector.appkeys import LINK, STORE, TERRITORY
from collector.control.commands import (
    ACTION_RANK,
    MAX_REASON,
    OPERATOR,
    REASON_NEEDED,
    SUPERVISOR,
    VIEWER,
    TargetError,
    new_command,
    resolve_targets,
)
from collector.control.junctions import MODES, junction_controllers
from collector.control.link import ControlLink, LinkConfig
from collector.control.model import ALARM_ACTIONS, ALARM_STATUSES
from collector.dashboard.routes import add_stream_topic
from collector.live import CHANGES
from collector.params import (
    LOG_PAGE,
    MAX_ID,
    MAX_LOG_PAGE,
    int_param,
    json_body,
    json_response,
    log_cursor,
    log_page,
    page_from,
    page_of,
    parse_int,
    path_id,
)
from collector.problem import Problem

PREFIX = "/api/v1/control"
#: the collector.live topic of commands recorded and answered (the page's stream relays it)
COMMANDS_TOPIC = "commands"
DEFAULT_VALID_S = 300
MAX_WAIT_S = 60
MAX_NOTE = 500
#: a `before` cursor's command id is at most this long (ids are UUIDs: collector.control.commands)
MAX_COMMAND_ID = 100


def add_control_routes(app: web.Application) -> None:
    install_role_floor(app)  # every operators' route of the app checked for a rank (collector.access)
    r = app.router
    r.add_get(f"{PREFIX}/presence", get_presence)
    r.add_get(f"{PREFIX}/alarms", get_alarms)
    r.add_post(PREFIX + "/alarms/{alarm}/{action}", post_alarm_action)
    r.add_post(f"{PREFIX}/commands", post_command)
    r.add_get(f"{PREFIX}/commands", get_commands)
    r.add_get(PREFIX + "/commands/{command}", get_command)
    r.add_get(f"{PREFIX}/junctions", get_junctions)
    r.add_post(PREFIX + "/junctions/{junction}/mode", post_junction_mode)
    add_stream_topic(app, COMMANDS_TOPIC)


def attach_link(app: web.Application, cfg: LinkConfig) -> ControlLink:
    """Run the MQTT link with the app (started and stopped with it); commands need it."""
    link = ControlLink(app[STORE], cfg)
    app[LINK] = link

    async def relay() -> None:
        # each ack, alarm or expiry the link records: the page's stream tells its commands view
        while True:
            await link.next_change().wait()
            app[CHANGES].notify(COMMANDS_TOPIC)

    async def running(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(link.run(), name="mqtt-link")
        relaying = asyncio.create_task(relay(), name="mqtt-link-changes")
        yield
        await stop_tasks([relaying])
        # on 3.11 aiomqtt's connect (wait_for) can swallow one cancellation: the link then ran on
        # and the app's cleanup waited for it for ever; stop_tasks cancels until it has ended
        await stop_tasks([task])

    app.cleanup_ctx.append(running)
    return link


# -- presence and alarms --------------------------------------------------------------------------

async def get_presence(request: web.Request) -> web.Response:
    await require_role(request, VIEWER, identified=True)
    now = now_ms()
    rows, meta = await page_from(request, request.app[STORE].presence_page)
    link = request.app.get(LINK)
    return json_response({
        "link": None if link is None else {"connected": link.connected, "last_error": link.last_error},
        "gateways": [p.as_json(now) for p in rows], **meta,
    })


async def get_alarms(request: web.Request) -> web.Response:
    await require_role(request, VIEWER, identified=True)
    status = request.query.get("status")
    if status is not None and status not in ALARM_STATUSES:
        raise Problem(400, "invalid-parameter", "Invalid query parameter",
                      f"status must be one of {', '.join(ALARM_STATUSES)}", parameter="status")
    limit = int_param(request, "limit", LOG_PAGE, 1, MAX_LOG_PAGE)
    before = log_cursor(request, _alarm_id)
    rows = await request.app[STORE].alarms(status=status, gateway=request.query.get("gateway"), limit=limit + 1,
                                           before=before)
    page, meta = log_page(request, rows, limit, lambda a: f"{a.received_ms}:{a.id}")
    return json_response({"alarms": [a.as_json() for a in page], **meta})


def _alarm_id(raw: str) -> int | None:
    value = parse_int(raw)
    return value if value is not None and 0 <= value <= MAX_ID else None


async def post_alarm_action(request: web.Request) -> web.Response:
    who = await require_role(request, OPERATOR)
    action = request.match_info["action"]
    if action not in ALARM_ACTIONS:
        raise Problem(404, "not-found", "Not Found", f"no alarm action {action!r}: use acknowledge or clear")
    alarm_id = path_id(request, "alarm")
    if alarm_id is None:
        raise Problem(404, "unknown-alarm", "Not Found", f"no alarm {request.match_info['alarm']!r}")
    body = await json_body(request, optional=True)
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
        raise Problem(400, "invalid-body", "Invalid body", f"note: a string of at most {MAX_NOTE} characters",
                      pointer="/note")
    store = request.app[STORE]
    current = await store.alarm(alarm_id)
    if current is None:
        raise Problem(404, "unknown-alarm", "Not Found", f"no alarm {alarm_id}")
    updated = await store.update_alarm(alarm_id, action, who, note, now_ms())
    if updated is None:
        raise Problem(409, "alarm-state", "Conflict", f"alarm {alarm_id} is {current.status}: cannot {action} it",
                      status_now=current.status)
    return json_response(updated.as_json())


# -- commands -------------------------------------------------------------------------------------

COMMAND_MEMBERS = frozenset({"gateway", "commune", "action", "args", "valid_s", "reason"})


def _link(request: web.Request) -> ControlLink:
    link = request.app.get(LINK)
    if link is None:
        raise Problem(503, "control-unavailable", "Service Unavailable",
                      "this collector has no MQTT broker configured (serve --mqtt-url): it cannot send commands")
    if link.cfg.command_key is None:
        raise Problem(503, "control-unavailable", "Service Unavailable",
                      "this collector has no command signing key (serve --command-key-file): gateways would refuse "
                      "its commands")
    return link


def reason_of(body: dict[str, Any], action: str) -> str | None:
    """The body's `reason`: a string of at most MAX_REASON characters, not blank where the action needs one."""
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
        raise Problem(400, "invalid-command", "Invalid command", f"reason: a string of at most {MAX_REASON} characters",
                      pointer="/reason")
    reason = (reason or "").strip() or None
    if reason is None and action in REASON_NEEDED:
        raise Problem(400, "reason-needed", "Invalid command", f"{action} needs a reason: say why, it is audited",
                      pointer="/reason")
    return reason


async def post_command(request: web.Request) -> web.Response:
    await require_role(request, OPERATOR)
    body = await json_body(request)
    extra = body.keys() - COMMAND_MEMBERS
    if extra:
        raise Problem(400, "invalid-command", "Invalid command", f"unknown member(s) {sorted(extra)}", pointer="")
    action = body.get("action")
    if not isinstance(action, str):
        raise Problem(400, "invalid-command", "Invalid command", "expected the action's name", pointer="/action")
    if action not in ACTION_RANK:
        raise Problem(400, "invalid-command", "Invalid command",
                      f"{action[:100]!r}: expected one of {', '.join(sorted(ACTION_RANK))}", pointer="/action")
    who = await require_role(request, ACTION_RANK[action])
    link = _link(request)
    valid_s = body.get("valid_s", DEFAULT_VALID_S)
    if type(valid_s) not in (int, float) or not 1 <= valid_s <= MAX_VALIDITY_MS / 1000:
        raise Problem(400, "invalid-command", "Invalid command",
                      f"valid_s: seconds the command stays valid, 1 to {MAX_VALIDITY_MS // 1000}", pointer="/valid_s")
    args = body.get("args", {})
    if not isinstance(args, dict):
        raise Problem(400, "invalid-command", "Invalid command", "expected an object", pointer="/args")
    reason = reason_of(body, action)
    cmd = _command(who, action, args, valid_s)
    target, gateway_ids = await _targets(request, body)
    row = await issue(request, link, cmd, target, gateway_ids, reason)
    return json_response(row, status=202)


def _command(who: str, action: str, args: dict[str, Any], valid_s: float) -> Command:
    try:
        return new_command(who, action, args, valid_s)
    except WireError as exc:
        raise Problem(400, "invalid-command", "Invalid command", exc.reason, pointer=exc.pointer) from None


async def issue(request: web.Request, link: ControlLink, cmd: Command, target: str, gateway_ids: list[int],
                reason: str | None) -> dict[str, Any]:
    """Audit `cmd` and queue its deliveries, send them now, tell the page; the audited command."""
    store = request.app[STORE]
    await store.add_command(cmd, target, gateway_ids, reason)
    link.kick()
    request.app[CHANGES].notify(COMMANDS_TOPIC)
    row = await store.command(cmd.id)
    assert row is not None
    return row.as_json()


async def _targets(request: web.Request, body: dict[str, Any]) -> tuple[str, list[int]]:
    gateway, commune = body.get("gateway"), body.get("commune")
    try:
        return await resolve_targets(request.app[STORE], request.app[TERRITORY],
                                     None if gateway is None else str(gateway), None if commune is None else str(commune))
    except TargetError as exc:
        status = 400 if exc.kind == "invalid-command" else 404
        raise Problem(status, exc.kind, "Invalid command" if status == 400 else "Not Found", str(exc),
                      pointer=exc.pointer) from None


async def get_commands(request: web.Request) -> web.Response:
    await require_role(request, VIEWER, identified=True)
    limit = int_param(request, "limit", LOG_PAGE, 1, MAX_LOG_PAGE)
    before = log_cursor(request, lambda raw: raw if 0 < len(raw) <= MAX_COMMAND_ID else None)
    rows = await request.app[STORE].commands(limit + 1, before)
    page, meta = log_page(request, rows, limit, lambda c: f"{c.issued_at_ms}:{c.id}")
    return json_response({"commands": [c.as_json() for c in page], **meta})


async def get_command(request: web.Request) -> web.Response:
    await require_role(request, VIEWER, identified=True)
    wait_s = int_param(request, "wait_s", 0, 0, MAX_WAIT_S)
    store = request.app[STORE]
    command_id = request.match_info["command"]
    link = request.app.get(LINK)
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        change = link.next_change() if link is not None else None
        row = await store.command(command_id)
        if row is None:
            raise Problem(404, "unknown-command", "Not Found", f"no command {command_id!r}")
        left = deadline - asyncio.get_running_loop().time()
        if row.final or left <= 0:
            return json_response(row.as_json())
        # woken by the link at each recorded ack; polling as well serves acks another instance recorded
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(left, 0.5)):
                await (change.wait() if change is not None else asyncio.sleep(left))


# -- junctions: mode and plan, flashing amber or dark and back ------------------------------------

DEFAULT_MODE_S = 3600
#: a junction's mode command is valid this long: one that waited longer is refused by the gateway,
#: never applied late
MODE_VALID_S = 120
MODE_MEMBERS = frozenset({"mode", "reason", "duration_s"})


async def get_junctions(request: web.Request) -> web.Response:
    await require_role(request, VIEWER, identified=True)
    rows, meta = page_of(request, await junction_controllers(request.app[STORE]))
    return json_response({"modes": sorted(MODES), "junctions": [j.as_json() for j in rows], **meta})


async def post_junction_mode(request: web.Request) -> web.Response:
    """Flashing amber, dark, or back to normal, for `duration_s` (the controller reverts by itself
    after it): a supervisor's command with a reason. Never a signal colour or a stage: the agent's
    traffic.set_position takes these three positions only, and its controller checks them."""
    await require_role(request, SUPERVISOR)
    body = await json_body(request)
    extra = body.keys() - MODE_MEMBERS
    if extra:
        raise Problem(400, "invalid-command", "Invalid command", f"unknown member(s) {sorted(extra)}", pointer="")
    mode = body.get("mode")
    if mode not in MODES:
        raise Problem(400, "invalid-command", "Invalid command", f"mode: one of {', '.join(sorted(MODES))}",
                      pointer="/mode")
    duration = body.get("duration_s", DEFAULT_MODE_S)
    if type(duration) is not int or not 60 <= duration <= 65_535:
        raise Problem(400, "invalid-command", "Invalid command", "duration_s: whole seconds, 60 to 65535 "
                      "(the controller's register holds 16 bits)", pointer="/duration_s")
    reason = reason_of(body, "traffic.set_position")
    junction = request.match_info["junction"]
    found = [j for j in await junction_controllers(request.app[STORE]) if j.junction == junction]
    if not found:
        raise Problem(404, "unknown-junction", "Not Found", f"no junction {junction[:100]!r} with a known controller")
    j = found[0]
    gateway = await request.app[STORE].gateway(j.gateway)
    if gateway is None:
        raise Problem(404, "unknown-gateway", "Not Found", f"junction {junction!r}: gateway {j.gateway!r} is gone")
    who = await require_role(request, SUPERVISOR)
    link = _link(request)
    cmd = _command(who, "traffic.set_position",
                      {"controller": j.controller, "position": mode, "timeout_s": duration}, MODE_VALID_S)
    row = await issue(request, link, cmd, f"gateway:{gateway.name}", [gateway.id], reason)
    return json_response(row, status=202)
