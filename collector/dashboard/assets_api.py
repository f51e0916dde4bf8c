"""The asset pages' data: a lamp, a cabinet, a junction, a commune's charts (the control centre's
`#/lamp/…`, `#/cabinet/…`, `#/junction/…` and `#/commune/…/charts`, assets/asset.js).

    GET /control/api/lamps/{gateway}/{device}          ?from=&to= (default: the last 24 hours)
    GET /control/api/cabinets/{gateway}/charts         ?from=&to= (default: the last 24 hours)
    GET /control/api/junctions/{gateway}/{device}      ?from=&to= (default: the last 24 hours)
    GET /control/api/junctions/{junction}              the same, of the junction named in its counts (the map's id)
    GET /control/api/communes/{insee}/charts           ?from=&to= days (default: the last 30 days)

`from` and `to` are UTC epoch ms, date-times with their zone, or dates (a Paris day: from its
start, to its end); a range is at most 92 days (a commune's, 366 days). Bad parameters are 400
problems, an unknown asset a 404. Behind `--operator-login` like the rest of /control/api.

What the collector knows of a lamp's program is what the agent journals (`group_level` events at
each switch: the level, the program, the mode) and what the operators pushed (the control audit's
`lighting.push_programs` that the gateway carried out). The next switch point is computed by the
agent's lighting engine (calendar, sun), which the collector may not import (the layering
contract): the agent puts it in each `group_level` event (`next_switch_ms`, `next_level_pct`), and
`next_switch` is that, or null with the reason in `next_switch_note` when the newest event is from
an agent that did not send it, or the switch it named has passed (the next event has not come).
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from citygate_wire.common import now_ms
from collector import series
from collector.alarms.model import STATES as ALARM_STATES
from collector.alarms.model import Filters as AlarmFilters
from collector.appkeys import STORE, TERRITORY
from collector.efficiency import (
    HOUR_MS,
    add_efficiency_routes,
    baseline_wh,
    full_power_cached,
    installed_w,
    lamps_by_commune,
    start_ms,
)
from collector.model import Gateway
from collector.nights import dark_ms
from collector.params import date_param, invalid, json_response, parse_int
from collector.problem import Problem
from collector.readmodel import GROUP_LEVEL, GROUP_PREFIX, RESTORED
from collector.rollup import FAULT_CODE, PARIS
from collector.sqlprims import SqlPrimitives
from collector.store import Store

DEFAULT_SPAN_MS = 24 * HOUR_MS
COMMUNE_DEFAULT_DAYS = 30
COMMUNE_MAX_DAYS = 366
MAX_LAMPS = 2_000
NEXT_SWITCH_NOTE = ("computed by the gateway's lighting engine from its calendar and the sun, and sent with each "
                    "switch (group_level); not known yet: the gateway's newest switch did not carry it, or it "
                    "has passed and the switch has not been uploaded yet")
#: events of a lamp's history: its faults and their clearing, and the overrides put on it
LAMP_EVENT_CODES = frozenset({FAULT_CODE, RESTORED, "dimming_failure", "day_burner", "lamp_unknown",
                              "override_started", "override_ended", "override_restore_failed", "counter_reset",
                              "counter_implausible", "communication_failure", "communication_restored"})


def add_asset_routes(app: web.Application) -> None:
    """The asset pages' API and the public efficiency page with its open data (collector.efficiency)."""
    r = app.router
    r.add_get("/control/api/lamps/{gateway}/{device}", get_lamp)
    r.add_get("/control/api/cabinets/{gateway}/charts", get_cabinet_charts)
    r.add_get("/control/api/junctions/{gateway}/{device}", get_junction)
    r.add_get("/control/api/junctions/{junction}", get_named_junction)
    r.add_get("/control/api/communes/{insee}/charts", get_commune_charts)
    add_efficiency_routes(app)


# -- parameters -----------------------------------------------------------------------------------


#: instants a range may name: 2000-01-01 to 2100-01-01 UTC, as the upload format dates records
FIRST_MS, LAST_MS = 946_684_800_000, 4_102_444_800_000


def instant(raw: str, name: str, *, end: bool) -> int:
    """UTC ms of `raw`: epoch ms, an ISO date-time with its zone, or a date (its Paris start, or its end)."""
    ms = parse_int(raw) if len(raw) != 8 else None  # eight digits are a date (20260329), not 1970
    if ms is None:
        try:
            when = datetime.fromisoformat(raw)
        except ValueError:
            raise invalid(name, f"{name} must be UTC epoch ms, a date-time with its zone or a date YYYY-MM-DD, "
                                f"got {raw!r}") from None
        if len(raw) > 10 and when.tzinfo is None:
            raise invalid(name, f"{name} {raw!r} has no time zone: add Z or an offset such as +01:00")
        if not 2000 <= when.year < 2100:
            ms = -1
        elif len(raw) <= 10:  # a date: a Paris day
            ms = start_ms(when.date() + timedelta(days=1 if end else 0)) - (1 if end else 0)
        else:
            ms = int(when.timestamp() * 1000)
    if not FIRST_MS <= ms <= LAST_MS:
        raise invalid(name, f"{name} {raw!r} is not between 2000 and 2100")
    return ms


def time_range(request: web.Request) -> tuple[int, int]:
    raw_from, raw_to = request.query.get("from"), request.query.get("to")
    last = int(time.time() * 1000) if raw_to is None else instant(raw_to, "to", end=True)
    first = last - DEFAULT_SPAN_MS if raw_from is None else instant(raw_from, "from", end=False)
    if first > last:
        raise invalid("from", "from is after to")
    if last - first > series.MAX_SPAN_MS:
        raise invalid("from", f"a range is at most {series.MAX_SPAN_MS // 86_400_000} days")
    return first, last


def day_of(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, PARIS).date().isoformat()


async def path_gateway(request: web.Request) -> tuple[Store, SqlPrimitives, Gateway]:
    store = request.app[STORE]
    name = request.match_info["gateway"]
    gateway = await store.gateway(name)
    if gateway is None:
        raise Problem(404, "unknown-gateway", "Not Found", f"no gateway named {name!r}")
    if not isinstance(store, SqlPrimitives):
        raise TypeError("asset pages need one of the SQL stores")
    return store, store, gateway


def commune_name(request: web.Request, insee: str) -> str:
    found = request.app[TERRITORY].resolve(insee)
    return found.name if found is not None else insee


def too_large(exc: series.RangeTooLarge) -> Problem:
    return Problem(400, "range-too-large", "Range too large", str(exc), parameter="from")


# -- what is known of programs ------------------------------------------------------------------------


async def pushed_programs(db: SqlPrimitives, gateway_id: int) -> dict[str, Any] | None:
    """The newest program set the gateway carried out (`lighting.push_programs`, delivery `done`)."""
    rows = await db._ctl_rows(
        "SELECT c.id, c.args, c.issued_by, c.issued_at_ms, d.answered_ms FROM commands c"
        " JOIN command_deliveries d ON d.command_id = c.id"
        " WHERE c.action = 'lighting.push_programs' AND d.gateway_id = $1 AND d.status = 'done'"
        " ORDER BY d.answered_ms DESC LIMIT 1", gateway_id)
    if not rows:
        return None
    r = rows[0]
    args = orjson.loads(r[1]) if isinstance(r[1], str | bytes) else r[1]
    return {"command": r[0], "issued_by": r[2], "issued_at_ms": r[3], "applied_ms": r[4],
            "program": args.get("program", []), "calendar": args.get("calendar", [])}


async def group_doc(store: Store, gateway: str, group: str) -> dict[str, Any]:
    latest = await store.latest_event(gateway, GROUP_PREFIX + group, GROUP_LEVEL)
    doc: dict[str, Any] = {"group": group, "level_pct": None, "program": None, "mode": None, "last_switch_ms": None}
    if latest is not None:
        ts, detail = latest
        doc.update(level_pct=detail.get("level_pct"), program=detail.get("program"), mode=detail.get("mode"),
                   last_switch_ms=ts)
        at, level = detail.get("next_switch_ms"), detail.get("next_level_pct")
        if isinstance(at, int) and at > int(time.time() * 1000):
            return doc | {"next_switch": {"at": at, "level_pct": level}, "next_switch_note": None}
    return doc | {"next_switch": None, "next_switch_note": NEXT_SWITCH_NOTE}


async def groups_of(store: Store, gateway: str) -> list[str]:
    rows = await store.devices(gateway, kind="group", limit=1000)
    return [d.device.removeprefix(GROUP_PREFIX) for d in rows]


async def lamp_group(store: Store, gateway: str, device: str, groups: list[str]) -> str | None:
    """The group its fault events name; the cabinet's only group when it has one."""
    for code in (RESTORED, FAULT_CODE):
        latest = await store.latest_event(gateway, device, code)
        if latest is not None and isinstance(group := latest[1].get("group"), str) and group:
            return group
    return groups[0] if len(groups) == 1 else None


# -- a lamp ---------------------------------------------------------------------------------------


async def get_lamp(request: web.Request) -> web.Response:
    first, last = time_range(request)
    store, db, gw = await path_gateway(request)
    device = request.match_info["device"]
    try:
        rows = await series.device_rows(db, gw.id, device, first, last)
    except series.RangeTooLarge as exc:
        raise too_large(exc) from None
    latest = await store.latest_values(gw.name, [device])
    if not rows and device not in latest:
        raise Problem(404, "unknown-device", "Not Found", f"gateway {gw.name!r} has no device {device!r}")
    before = await series.row_before(db, gw.id, device, first)
    held = await series.commanded_before(db, gw.id, device, first)
    chart = series.series(rows, first, last, series.LAMP_QUANTITIES, commanded_before=held)
    days = series.days_of_use(device, rows, before, day_of(first), day_of(last))
    events = [e for e in await series.device_events(db, gw.id, [device], first, last) if e.code in LAMP_EVENT_CODES
              or e.severity in ("major", "critical")]
    groups = await groups_of(store, gw.name)
    group = await lamp_group(store, gw.name, device, groups)
    faults = [f.as_json() for f in await store.open_lamp_faults(gw.name) if f.device == device]
    ts, values = latest.get(device, (None, {}))
    return json_response({
        "gateway": gw.name, "commune": gw.commune, "commune_name": commune_name(request, gw.commune),
        "cabinet": gw.cabinet, "device": device, "from_ms": first, "to_ms": last, "latest": {"ts_ms": ts, "values": values}, "open_faults": faults,
        "series": chart.as_json(), "days": [d.as_json() for d in days],
        "burn_total_h": values.get("operating_hours_h"),
        "events": [e.as_json() for e in events],
        "group": None if group is None else await group_doc(store, gw.name, group),
        "programs": await pushed_programs(db, gw.id),
    })


# -- a cabinet ------------------------------------------------------------------------------------


async def get_cabinet_charts(request: web.Request) -> web.Response:
    first, last = time_range(request)
    store, db, gw = await path_gateway(request)
    try:
        voltage = series.spread(await series.gateway_quantity(db, gw.id, "voltage_v", first, last), first, last)
    except series.RangeTooLarge as exc:
        raise too_large(exc) from None
    lamps = await store.devices(gw.name, kind="lamp", limit=MAX_LAMPS)
    latest = await store.latest_values(gw.name, [d.device for d in lamps])
    faults = {f.device: f.since_ms for f in await store.open_lamp_faults(gw.name)}
    days = await store.rollups("gateway", "day", gw.name, day_of(first), day_of(last))
    # the operators' alarms of the cabinet (collector.alarms: one per cause), active first, then the latest cleared
    alarms, _, _ = await store.list_alarms(AlarmFilters(states=ALARM_STATES, gateway=gw.name, limit=100), now_ms())
    groups = await groups_of(store, gw.name)
    return json_response({
        "gateway": gw.name, "commune": gw.commune, "commune_name": commune_name(request, gw.commune),
        "cabinet": gw.cabinet, "lat": gw.lat, "lon": gw.lon,
        "from_ms": first, "to_ms": last,
        "lamps": [{"device": d.device, "lamp_on": d.lamp_on, "last_ts_ms": d.last_ts_ms,
                   "level_pct": latest.get(d.device, (0, {}))[1].get("level_pct"),
                   "power_w": latest.get(d.device, (0, {}))[1].get("power_w"),
                   "fault_since_ms": faults.get(d.device)} for d in lamps],
        "days": [{"day": b.bucket, "energy_kwh": b.energy_wh / 1000, "burn_h": b.burn_ms / HOUR_MS,
                  "lamps_on": b.lamps_on, "lamps_faulty": b.lamps_faulty} for b in days],
        "voltage": voltage,
        "alarms": [a.as_json() for a in alarms],
        "groups": [await group_doc(store, gw.name, g) for g in groups],
        "programs": await pushed_programs(db, gw.id),
    })


# -- a junction -----------------------------------------------------------------------------------

JUNCTION_KEYS = ("mode", "plan", "stage", "central", "plan_target", "position_target")


async def get_junction(request: web.Request) -> web.Response:
    first, last = time_range(request)
    _, db, gw = await path_gateway(request)
    doc = await junction_doc(db, gw, request.match_info["device"], first, last)
    return json_response({**doc, "commune_name": commune_name(request, gw.commune)})


async def get_named_junction(request: web.Request) -> web.Response:
    """A junction by the name its counts carry: its gateway's signal controller (the device reporting a mode)."""
    first, last = time_range(request)
    store = request.app[STORE]
    name = request.match_info["junction"]
    gateways = [g for j, g, _ in await store.traffic_junctions() if j == name]
    for gateway in gateways:
        gw = await store.gateway(gateway)
        if gw is None or not isinstance(store, SqlPrimitives):
            continue
        for d in await store.devices(gateway, kind="device", limit=1000):
            if await mode_before(store, gw.id, d.device, last + 1) is not None:
                doc = await junction_doc(store, gw, d.device, first, last)
                return json_response({"junction": name, "commune_name": commune_name(request, gw.commune), **doc})
    raise Problem(404, "unknown-junction", "Not Found", f"no signal controller known for junction {name!r}")


async def mode_before(db: SqlPrimitives, gateway_id: int, device: str, before_ms: int) -> dict[str, Any] | None:
    """The device's newest sample before `before_ms` that gives a signal controller's mode."""
    rows = await db._ctl_rows(
        "SELECT vals FROM samples WHERE gateway_id = $1 AND device = $2 AND ts_ms < $3"
        " ORDER BY ts_ms DESC, seq DESC LIMIT 200", gateway_id, device, before_ms)
    return next((values for (raw,) in rows if "mode" in (values := series.json_doc(raw))), None)


async def junction_doc(db: SqlPrimitives, gw: Gateway, device: str, first: int, last: int) -> dict[str, Any]:
    try:
        rows = [r for r in await series.device_rows(db, gw.id, device, first, last) if "mode" in r.values]
    except series.RangeTooLarge as exc:
        raise too_large(exc) from None
    prior = await mode_before(db, gw.id, device, first)
    if not rows and prior is None:
        raise Problem(404, "unknown-junction", "Not Found",
                      f"gateway {gw.name!r} has no signal controller {device!r} (no mode reported)")
    changes = [{"ts_ms": r.ts_ms, **{k: r.values.get(k) for k in JUNCTION_KEYS}} for r in rows]
    start = None if prior is None else {"ts_ms": first, **{k: prior.get(k) for k in JUNCTION_KEYS}}
    current = changes[-1] if changes else start
    return {
        "gateway": gw.name, "commune": gw.commune, "cabinet": gw.cabinet, "device": device, "from_ms": first,
        "to_ms": last, "current": current, "changes": changes[-2000:],
        "plans": plan_table(([start] if start else []) + changes, last),
        "events": [e.as_json() for e in await series.device_events(db, gw.id, [device], first, last)],
        "commands": await junction_commands(db, gw.id, first, last),
    }


def plan_table(changes: list[dict[str, Any]], last_ms: int) -> list[dict[str, Any]]:
    """Each (mode, plan) seen in the range: how long it ran and how many times it was entered."""
    table: dict[tuple[str, int], dict[str, Any]] = {}
    for i, c in enumerate(changes):
        end = changes[i + 1]["ts_ms"] if i + 1 < len(changes) else last_ms
        key = (str(c.get("mode")), int(c.get("plan") or 0))
        entry = table.setdefault(key, {"mode": key[0], "plan": key[1], "duration_ms": 0, "entered": 0})
        entry["duration_ms"] += max(0, end - c["ts_ms"])
        if i == 0 or (str(changes[i - 1].get("mode")), int(changes[i - 1].get("plan") or 0)) != key:
            entry["entered"] += 1
    return sorted(table.values(), key=lambda e: (-e["duration_ms"], e["plan"]))


async def junction_commands(db: SqlPrimitives, gateway_id: int, first: int, last: int) -> list[dict[str, Any]]:
    rows = await db._ctl_rows(
        "SELECT c.id, c.action, c.args, c.issued_by, c.issued_at_ms, d.status, d.reason FROM commands c"
        " JOIN command_deliveries d ON d.command_id = c.id WHERE d.gateway_id = $1"
        " AND c.action IN ('traffic.select_plan', 'traffic.set_position') AND c.issued_at_ms BETWEEN $2 AND $3"
        " ORDER BY c.issued_at_ms DESC LIMIT 200", gateway_id, first, last)
    return [{"id": r[0], "action": r[1], "args": orjson.loads(r[2]) if isinstance(r[2], str | bytes) else r[2],
             "issued_by": r[3], "issued_at_ms": r[4], "status": r[5], "reason": r[6]} for r in rows]


# -- a commune's charts -----------------------------------------------------------------------------


def day_range(request: web.Request) -> tuple[date, date]:
    raw_from, raw_to = request.query.get("from"), request.query.get("to")
    today = datetime.fromtimestamp(time.time(), PARIS).date()
    last = today if raw_to is None else date_param(raw_to, "to")
    first = last - timedelta(days=COMMUNE_DEFAULT_DAYS - 1) if raw_from is None else date_param(raw_from, "from")
    if first > last:
        raise invalid("from", "from is after to")
    if (last - first).days + 1 > COMMUNE_MAX_DAYS:
        raise invalid("from", f"a commune's range is at most {COMMUNE_MAX_DAYS} days")
    if first.year < 2000 or last.year > 2100:
        raise invalid("from", "days between 2000 and 2100")
    return first, last


async def get_commune_charts(request: web.Request) -> web.Response:
    code = request.match_info["insee"]
    commune = request.app[TERRITORY].resolve(code)
    if commune is None:
        raise Problem(404, "unknown-commune", "Not Found", f"{code!r} is no commune of the territory")
    first, last = day_range(request)
    length = (last - first).days + 1
    store = request.app[STORE]
    if not isinstance(store, SqlPrimitives):
        raise TypeError("commune charts need one of the SQL stores")
    now = int(time.time() * 1000)
    rolled = await store.rollups("commune", "day", commune.insee, first.isoformat(), last.isoformat())
    current = {b.bucket: b.energy_wh for b in rolled}
    with_data = {b.bucket for b in rolled if b.samples or b.events}
    p_first, p_last = first - timedelta(days=length), first - timedelta(days=1)
    previous = {b.bucket: b.energy_wh for b in await store.rollups("commune", "day", commune.insee,
                                                                   p_first.isoformat(), p_last.isoformat())}
    lamps = (await lamps_by_commune(store)).get(commune.insee, [])
    full = await full_power_cached(request.app, min(now, start_ms(last + timedelta(days=1))), commune.insee)
    watts = installed_w(lamps, full)
    days: list[dict[str, Any]] = []
    for i in range(length):
        day = first + timedelta(days=i)
        a, b = start_ms(day), min(start_ms(day + timedelta(days=1)), now)
        before = p_first + timedelta(days=i)
        days.append({
            "day": day.isoformat(), "energy_kwh": current.get(day.isoformat(), 0.0) / 1000,
            "previous_day": before.isoformat(), "previous_kwh": previous.get(before.isoformat(), 0.0) / 1000,
            # a day without any reading from the commune is no saving: no baseline to compare with
            "baseline_kwh": baseline_wh(commune, watts, a, b) / 1000 if b > a and day.isoformat() in with_data
            else None,
            "night_h": dark_ms(commune.lat, commune.lon, a, b) / HOUR_MS if b > a else 0.0,
        })
    totals = {k: sum(d[k] or 0.0 for d in days) for k in ("energy_kwh", "previous_kwh", "baseline_kwh")}
    return json_response({
        "commune": commune.insee, "name": commune.name, "from": first.isoformat(), "to": last.isoformat(),
        "previous_from": p_first.isoformat(), "previous_to": p_last.isoformat(), "lamps": len(lamps),
        "lamps_with_full_power": sum(1 for k in lamps if k in full), "installed_w": watts,
        "days": days, "totals": totals,
        "saved_vs_baseline_pct": (100 * (1 - totals["energy_kwh"] / totals["baseline_kwh"])
                                  if totals["baseline_kwh"] else None),
        "change_vs_previous_pct": (100 * (totals["energy_kwh"] / totals["previous_kwh"] - 1)
                                   if totals["previous_kwh"] else None),
        "generated_ms": now,
    })
