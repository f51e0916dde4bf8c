"""The operators' HTTP API of the control plane (docs/collector-api.md, "Control plane").

Every route needs `Authorization: Bearer <operator token>` (`citygate-collector operator add`):
the operator's name goes into the audit of every command and alarm action.

    GET  /api/v1/control/presence                     every gateway: online, since, stale, last state
    GET  /api/v1/control/alarms?status=&gateway=&limit=
    POST /api/v1/control/alarms/{id}/acknowledge      {"note": "..."} (optional body)
    POST /api/v1/control/alarms/{id}/clear            {"note": "..."} (optional body)
    POST /api/v1/control/commands                     {"gateway"|"commune", "action", "args", "valid_s"}
    GET  /api/v1/control/commands?limit=              the audit log, newest first
    GET  /api/v1/control/commands/{id}?wait_s=        one command and its acks; wait_s long-polls until final
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from citygate_wire.aio import stop_tasks
from citygate_wire.common import now_ms
from citygate_wire.mqtt import MAX_VALIDITY_MS, Command, WireError, decode_command, encode_command
from collector.access import install_role_floor, require_role
from collector.appkeys import LINK, STORE, TERRITORY
from collector.control.link import ControlLink, LinkConfig
from collector.control.model import ALARM_ACTIONS, ALARM_STATUSES
from collector.credentials import LEVELS
from collector.params import int_param, json_body, json_response, path_id
from collector.problem import Problem

VIEWER, OPERATOR, SUPERVISOR = LEVELS
PREFIX = "/api/v1/control"
DEFAULT_VALID_S = 300
MAX_WAIT_S = 60
MAX_NOTE = 500


def add_control_routes(app: web.Application) -> None:
    install_role_floor(app)  # every operators' route of the app checked for a rank (collector.access)
    r = app.router
    r.add_get(f"{PREFIX}/presence", get_presence)
    r.add_get(f"{PREFIX}/alarms", get_alarms)
    r.add_post(PREFIX + "/alarms/{alarm}/{action}", post_alarm_action)
    r.add_post(f"{PREFIX}/commands", post_command)
    r.add_get(f"{PREFIX}/commands", get_commands)
    r.add_get(PREFIX + "/commands/{command}", get_command)


def attach_link(app: web.Application, cfg: LinkConfig) -> ControlLink:
    """Run the MQTT link with the app (started and stopped with it); commands need it."""
    link = ControlLink(app[STORE], cfg)
    app[LINK] = link

    async def running(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(link.run(), name="mqtt-link")
        yield
        # on 3.11 aiomqtt's connect (wait_for) can swallow one cancellation: the link then ran on
        # and the app's cleanup waited for it for ever; stop_tasks cancels until it has ended
        await stop_tasks([task])

    app.cleanup_ctx.append(running)
    return link


# -- presence and alarms --------------------------------------------------------------------------

async def get_presence(request: web.Request) -> web.Response:
    await require_role(request, VIEWER, identified=True)
    now = now_ms()
    rows = await request.app[STORE].presence()
    link = request.app.get(LINK)
    return json_response({
        "link": None if link is None else {"connected": link.connected, "last_error": link.last_error},
        "gateways": [p.as_json(now) for p in rows],
    })


async def get_alarms(request: web.Request) -> web.Response:
    await require_role(request, VIEWER, identified=True)
    status = request.query.get("status")
    if status is not None and status not in ALARM_STATUSES:
        raise Problem(400, "invalid-parameter", "Invalid query parameter",
                      f"status must be one of {', '.join(ALARM_STATUSES)}", parameter="status")
    limit = int_param(request, "limit", 100, 1, 10_000)
    rows = await request.app[STORE].alarms(status=status, gateway=request.query.get("gateway"), limit=limit)
    return json_response({"alarms": [a.as_json() for a in rows]})


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

async def post_command(request: web.Request) -> web.Response:
    who = await require_role(request, OPERATOR)
    link = request.app.get(LINK)
    if link is None:
        raise Problem(503, "control-unavailable", "Service Unavailable",
                      "this collector has no MQTT broker configured (serve --mqtt-url): it cannot send commands")
    if link.cfg.command_key is None:
        raise Problem(503, "control-unavailable", "Service Unavailable",
                      "this collector has no command signing key (serve --command-key-file): gateways would refuse "
                      "its commands")
    body = await json_body(request)
    extra = body.keys() - {"gateway", "commune", "action", "args", "valid_s"}
    if extra:
        raise Problem(400, "invalid-command", "Invalid command", f"unknown member(s) {sorted(extra)}", pointer="")
    valid_s = body.get("valid_s", DEFAULT_VALID_S)
    if type(valid_s) not in (int, float) or not 1 <= valid_s <= MAX_VALIDITY_MS / 1000:
        raise Problem(400, "invalid-command", "Invalid command",
                      f"valid_s: seconds the command stays valid, 1 to {MAX_VALIDITY_MS // 1000}", pointer="/valid_s")
    args = body.get("args", {})
    if not isinstance(args, dict):
        raise Problem(400, "invalid-command", "Invalid command", "expected an object", pointer="/args")
    action = body.get("action")
    if not isinstance(action, str):
        raise Problem(400, "invalid-command", "Invalid command", "expected the action's name", pointer="/action")
    issued = now_ms()
    cmd = Command(uuid.uuid4().hex, action, args, issued, issued + int(valid_s * 1000), who)
    try:
        decode_command(encode_command(cmd))  # exactly the gateway's own check
    except WireError as exc:
        raise Problem(400, "invalid-command", "Invalid command", exc.reason, pointer=exc.pointer) from None
    target, gateway_ids = await _targets(request, body)
    store = request.app[STORE]
    await store.add_command(cmd, target, gateway_ids)
    link.kick()
    row = await store.command(cmd.id)
    assert row is not None
    return json_response(row.as_json(), status=202)


async def _targets(request: web.Request, body: dict[str, Any]) -> tuple[str, list[int]]:
    store = request.app[STORE]
    gateway, commune = body.get("gateway"), body.get("commune")
    if (gateway is None) == (commune is None):
        raise Problem(400, "invalid-command", "Invalid command", "give exactly one of gateway or commune", pointer="")
    if gateway is not None:
        found = await store.gateway(str(gateway))
        if found is None:
            raise Problem(404, "unknown-gateway", "Not Found", f"no gateway named {gateway!r}", pointer="/gateway")
        return f"gateway:{found.name}", [found.id]
    resolved = request.app[TERRITORY].resolve(str(commune))
    if resolved is None:
        raise Problem(404, "unknown-commune", "Not Found", f"{commune!r} is no commune of the territory",
                      pointer="/commune")
    ids = [i.gateway.id for i in await store.gateways() if i.gateway.commune == resolved.insee]
    if not ids:
        raise Problem(404, "no-gateway", "Not Found", f"no gateway is registered in {resolved.insee} {resolved.name}",
                      pointer="/commune")
    return f"commune:{resolved.insee}", ids


async def get_commands(request: web.Request) -> web.Response:
    await require_role(request, VIEWER, identified=True)
    limit = int_param(request, "limit", 100, 1, 10_000)
    rows = await request.app[STORE].commands(limit)
    return json_response({"commands": [c.as_json() for c in rows]})


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
