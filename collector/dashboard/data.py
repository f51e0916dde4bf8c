"""What the control-centre page shows, as JSON: the metropolis, one commune, one cabinet.

Energy "today" is from local (Europe/Paris) midnight up to the current hour, compared with
the same hours of the same weekday a week before (wall-clock time, so a DST change in
between still compares 18:00 with 18:00). Alarms come from the MQTT alarm log when the
control link runs, otherwise from the uploaded events (collector.readmodel); presence the
same way (collector.online). Each answer says which source it used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from citygate_wire.common import now_ms
from collector.alarms.overview import overview_alarms
from collector.appkeys import STORE, TERRITORY
from collector.online import GatewayStatus, fleet
from collector.readmodel import LampFault
from collector.reports.model import OPEN_STATES
from collector.reports.store import Filters
from collector.rollup import HOUR_MS, PARIS

ALARM_WINDOW_MS = 24 * HOUR_MS  # uploaded alarms older than this are not "open" on the page
LIST_LIMIT = 50
RECENT_EVENTS = 20


@dataclass(frozen=True, slots=True)
class EnergyWindow:
    today: tuple[int, int]  # first and last hour bucket
    last_week: tuple[int, int]
    until: str  # local time the comparison runs to, "HH:MM"
    last_week_day: str  # "YYYY-MM-DD"


def energy_window(now: int) -> EnergyWindow:
    local = datetime.fromtimestamp(now / 1000, PARIS)
    week_ago = local - timedelta(days=7)  # wall-clock arithmetic: same local time

    def hours(t: datetime) -> tuple[int, int]:
        midnight = t.replace(hour=0, minute=0, second=0, microsecond=0)
        first = int(midnight.timestamp() * 1000)
        last = int(t.timestamp() * 1000)
        return first, last - last % HOUR_MS

    return EnergyWindow(hours(local), hours(week_ago), local.strftime("%H:%M"), week_ago.date().isoformat())


def _kwh(wh: float) -> float:
    return round(wh / 1000, 3)


async def _alarms(app: web.Application, now: int, names: dict[str, str]) -> list[dict[str, Any]]:
    """Open and acknowledged alarms, one per cause (collector.alarms: a lost bus is one alarm of its N
    devices), the most severe and latest first: the counts the alarms page and its widget show."""
    return await overview_alarms(app[STORE])


@dataclass(frozen=True, slots=True)
class Snapshot:
    source: str
    gateways: list[GatewayStatus]
    alarms: list[dict[str, Any]]
    faults: list[LampFault]
    window: EnergyWindow


async def _snapshot(app: web.Application, now: int) -> Snapshot:
    source, gateways = await fleet(app, now)
    alarms = await _alarms(app, now, {g.name: g.commune for g in gateways})
    faults = await app[STORE].open_lamp_faults()
    return Snapshot(source, gateways, alarms, faults, energy_window(now))


def _fault_json(f: LampFault) -> dict[str, Any]:
    return {**f.as_json(), "lamp": f"{f.gateway}/{f.device}"}


async def summary(app: web.Application) -> dict[str, Any]:
    now = now_ms()
    store, territory = app[STORE], app[TERRITORY]
    snap = await _snapshot(app, now)
    today = await store.energy_wh_by("commune", *snap.window.today)
    before = await store.energy_wh_by("commune", *snap.window.last_week)
    open_reports = await store.reports(Filters(states=OPEN_STATES, limit=10_000))
    communes = []
    for c in territory.communes.values():
        mine = [g for g in snap.gateways if g.commune == c.insee]
        communes.append({
            "insee": c.insee, "name": c.name, "lat": c.lat, "lon": c.lon,
            "gateways": len(mine), "online": sum(1 for g in mine if g.online),
            "alarms": sum(1 for a in snap.alarms if a["commune"] == c.insee),
            "faulty_lamps": sum(1 for f in snap.faults if f.commune == c.insee),
            "open_reports": sum(1 for r in open_reports if r.jurisdiction == c.insee),
            "energy_today_kwh": _kwh(today.get(c.insee, 0.0)),
            "energy_last_week_kwh": _kwh(before.get(c.insee, 0.0)),
        })
    return {
        "territory": territory.name,
        "presence_source": snap.source,
        "totals": {
            "gateways": len(snap.gateways),
            "online": sum(1 for g in snap.gateways if g.online),
            "alarms": len(snap.alarms),
            "faulty_lamps": len(snap.faults),
            "open_reports": len(open_reports),
            "energy_today_kwh": _kwh(sum(today.values())),
            "energy_last_week_kwh": _kwh(sum(before.values())),
            "energy_until": snap.window.until,
            "energy_last_week_day": snap.window.last_week_day,
        },
        "communes": communes,
        "alarms": snap.alarms[:LIST_LIMIT],
        "faulty_lamps": [_fault_json(f) for f in snap.faults[:LIST_LIMIT]],
    }


async def commune(app: web.Application, insee: str) -> dict[str, Any] | None:
    found = app[TERRITORY].resolve(insee)
    if found is None:
        return None
    now = now_ms()
    store = app[STORE]
    snap = await _snapshot(app, now)
    today = await store.energy_wh_by("gateway", *snap.window.today)
    before = await store.energy_wh_by("gateway", *snap.window.last_week)
    alarms = [a for a in snap.alarms if a["commune"] == found.insee]
    faults = [f for f in snap.faults if f.commune == found.insee]
    cabinets = [{
        **g.as_json(),
        "energy_today_kwh": _kwh(today.get(g.name, 0.0)),
        "energy_last_week_kwh": _kwh(before.get(g.name, 0.0)),
        "alarms": sum(1 for a in alarms if a["gateway"] == g.name),
        "faulty_lamps": sum(1 for f in faults if f.gateway == g.name),
    } for g in snap.gateways if g.commune == found.insee]
    return {
        "commune": {"insee": found.insee, "name": found.name, "lat": found.lat, "lon": found.lon},
        "presence_source": snap.source,
        "energy_until": snap.window.until,
        "cabinets": cabinets,
        "alarms": alarms[:LIST_LIMIT],
        "faulty_lamps": [_fault_json(f) for f in faults[:LIST_LIMIT]],
    }


async def cabinet(app: web.Application, name: str) -> dict[str, Any] | None:
    store = app[STORE]
    gateway = await store.gateway(name)
    if gateway is None:
        return None
    now = now_ms()
    snap = await _snapshot(app, now)
    status = next(g for g in snap.gateways if g.name == name)
    faults = {f.device: f for f in snap.faults if f.gateway == name}
    devices = await store.devices(name, limit=1000)
    today = await store.energy_wh_by("gateway", *snap.window.today)
    before = await store.energy_wh_by("gateway", *snap.window.last_week)
    commune_ = app[TERRITORY].communes.get(gateway.commune)
    return {
        "gateway": {**status.as_json(), "commune_name": commune_.name if commune_ else gateway.commune},
        "presence_source": snap.source,
        "energy_today_kwh": _kwh(today.get(name, 0.0)),
        "energy_last_week_kwh": _kwh(before.get(name, 0.0)),
        "energy_until": snap.window.until,
        "devices": [{"device": d.device, "last_ts_ms": d.last_ts_ms, "lamp_on": d.lamp_on, "energy_wh": d.energy_wh,
                     "volume_m3": d.volume_m3, "fault_since_ms": faults[d.device].since_ms if d.device in faults else None}
                    for d in devices],
        "alarms": [a for a in snap.alarms if a["gateway"] == name][:LIST_LIMIT],
        "events": [e.as_json() for e in await store.recent_events(gateway, RECENT_EVENTS)],
    }
