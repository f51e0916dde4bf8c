"""Open data as NGSI-LD entities with the FIWARE Smart Data Models' field names.

    GET /ngsi-ld/v1/entities?type=T[&limit=20&offset=0][&options=keyValues]
    GET /ngsi-ld/v1/entities/{id}[?options=keyValues]

Types and where their values come from (the newest sample of each device, its rollup state,
its open faults):

- `Streetlight` (a device reporting `lamp_on`): status (ok / defectiveLamp), powerState (on,
  off, low below 100 %), illuminanceLevel (0-1), powerConsumption (W), voltage, current,
  refStreetlightControlCabinet. Location: its cabinet's (the collector knows no lamp positions).
- `StreetlightControlCabinet` (a gateway): workingMode, features, energyConsumed (kWh since
  metering started: its day rollups), lastMeterReading (kWh: its lamps' counters), areaServed.
- `WaterConsumptionObserved` (a device reporting `volume_m3`): waterConsumption (cumulative
  index, m³), alarmFlowPersistence (a night-flow leak still open, from the agent's events).
- `Device` (every device): controlledProperty, deviceState, batteryLevel (0-1), rssi,
  dateLastValueReported.

Ids: `urn:ngsi-ld:<Type>:<gateway>` for cabinets, `urn:ngsi-ld:<Type>:<gateway>:<device>`
otherwise, the device name percent-encoded. No personal data is ever in an entity.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

import orjson
from aiohttp import web

from collector.app import STORE, TERRITORY
from collector.params import int_param, storable
from collector.problem import Problem
from collector.readmodel import DeviceRow

CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
_SDM = "https://raw.githubusercontent.com/smart-data-models/{}/master/context.jsonld"
CONTEXTS = {
    "Streetlight": _SDM.format("dataModel.Streetlighting"),
    "StreetlightControlCabinet": _SDM.format("dataModel.Streetlighting"),
    "WaterConsumptionObserved": _SDM.format("dataModel.WaterConsumption"),
    "Device": _SDM.format("dataModel.Device"),
}
KIND = {"Streetlight": "lamp", "WaterConsumptionObserved": "water", "Device": None}
#: quantity -> Smart Data Models controlledProperty
CONTROLLED = {"energy_wh": "energy", "power_w": "power", "volume_m3": "waterConsumption", "temperature_c": "temperature",
              "humidity_pct": "humidity", "illuminance_lx": "light", "level_pct": "light"}
LEAK = "water_leak"
LEAK_WINDOW_MS = 7 * 24 * 3_600_000
MAX_LIMIT = 1000
CONTENT_TYPE = "application/ld+json"


def add_ngsi_routes(app: web.Application) -> None:
    app.router.add_get("/ngsi-ld/v1/entities", get_entities)
    app.router.add_get("/ngsi-ld/v1/entities/{entity_id}", get_entity)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def entity_id(kind: str, gateway: str, device: str | None = None) -> str:
    base = f"urn:ngsi-ld:{kind}:{gateway}"
    return base if device is None else f"{base}:{quote(device, safe='-._~')}"


def _prop(value: Any, observed_ms: int | None = None, unit: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Property", "value": value}
    if observed_ms is not None:
        out["observedAt"] = iso(observed_ms)
    if unit is not None:
        out["unitCode"] = unit
    return out


def _rel(target: str) -> dict[str, Any]:
    return {"type": "Relationship", "object": target}


def _location(lat: float | None, lon: float | None) -> dict[str, Any] | None:
    if lat is None or lon is None:
        return None
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


def _number(values: dict[str, Any], key: str) -> float | None:
    v = values.get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


class Builder:
    """Entities of one request: caches what several entities share."""

    def __init__(self, request: web.Request) -> None:
        self.app = request.app
        self.store = request.app[STORE]
        self._faults: set[tuple[str, str]] | None = None
        self._leaks: set[tuple[str, str]] | None = None

    async def faults(self) -> set[tuple[str, str]]:
        if self._faults is None:
            self._faults = {(f.gateway, f.device) for f in await self.store.open_lamp_faults()}
        return self._faults

    async def leaks(self) -> set[tuple[str, str]]:
        if self._leaks is None:
            alarms = await self.store.open_event_alarms(now_ms() - LEAK_WINDOW_MS)
            self._leaks = {(a.gateway, a.device) for a in alarms if a.code == LEAK}
        return self._leaks

    async def devices(self, kind: str, rows: list[DeviceRow]) -> list[dict[str, Any]]:
        out = []
        by_gateway: dict[str, list[DeviceRow]] = {}
        for d in rows:
            by_gateway.setdefault(d.gateway, []).append(d)
        for gateway, devices in by_gateway.items():
            latest = await self.store.latest_values(gateway, [d.device for d in devices])
            for d in devices:
                ts, values = latest.get(d.device, (d.last_ts_ms, {}))
                out.append(await self.device_entity(kind, d, ts, values))
        return out

    async def device_entity(self, kind: str, d: DeviceRow, ts: int | None, values: dict[str, Any]) -> dict[str, Any]:
        e: dict[str, Any] = {"id": entity_id(kind, d.gateway, d.device), "type": kind}
        location = _location(d.lat, d.lon)
        if location is not None:
            e["location"] = location
        if kind == "Streetlight":
            faulty = (d.gateway, d.device) in await self.faults()
            level = _number(values, "level_pct")
            state = "off" if not d.lamp_on else "low" if level is not None and level < 100 else "on"
            e["status"] = _prop("defectiveLamp" if faulty else "ok", ts)
            e["powerState"] = _prop(state, ts)
            if level is not None:
                e["illuminanceLevel"] = _prop(round(level / 100, 4), ts)
            for key, name, unit in (("power_w", "powerConsumption", "WTT"), ("voltage_v", "voltage", "VLT"),
                                    ("current_a", "current", "AMP")):
                v = _number(values, key)
                if v is not None:
                    e[name] = _prop(v, ts, unit)
            e["refStreetlightControlCabinet"] = _rel(entity_id("StreetlightControlCabinet", d.gateway))
        elif kind == "WaterConsumptionObserved":
            e["waterConsumption"] = _prop(d.volume_m3, ts, "MTQ")
            leak = (d.gateway, d.device) in await self.leaks()
            e["alarmFlowPersistence"] = _prop("persistentNightFlow" if leak else "nothingToReport", ts)
            e["refDevice"] = _rel(entity_id("Device", d.gateway, d.device))
        else:
            controlled = sorted({CONTROLLED[k] for k in values if k in CONTROLLED})
            if controlled:
                e["controlledProperty"] = _prop(controlled)
            faulty = (d.gateway, d.device) in await self.faults()
            e["deviceState"] = _prop("faulty" if faulty else "ok", ts)
            battery = _number(values, "battery_pct")
            if battery is not None:
                e["batteryLevel"] = _prop(round(battery / 100, 4), ts)
            rssi = _number(values, "rssi_dbm")
            if rssi is not None:
                e["rssi"] = _prop(rssi, ts, "2N")
            if ts is not None:
                e["dateLastValueReported"] = _prop({"@type": "DateTime", "@value": iso(ts)})
        e["@context"] = [CONTEXTS[kind], CORE_CONTEXT]
        return e

    async def cabinets(self, names: list[str] | None = None, limit: int = MAX_LIMIT,
                       offset: int = 0) -> list[dict[str, Any]]:
        infos = await self.store.gateways()
        if names is not None:
            infos = [i for i in infos if i.gateway.name in names]
        infos = infos[offset:offset + limit]
        consumed = await self.store.gateway_energy_wh()
        communes = self.app[TERRITORY].communes
        out = []
        for info in infos:
            g = info.gateway
            lamps = await self.store.devices(g.name, kind="lamp")
            meter = sum(d.energy_wh or 0.0 for d in lamps)
            e: dict[str, Any] = {"id": entity_id("StreetlightControlCabinet", g.name),
                                 "type": "StreetlightControlCabinet"}
            location = _location(g.lat, g.lon)
            if location is not None:
                e["location"] = location
            commune = communes.get(g.commune)
            e["areaServed"] = _prop(commune.name if commune else g.commune)
            e["workingMode"] = _prop("automatic")
            e["features"] = _prop(["astronomicalClock", "individualControl"])
            e["energyConsumed"] = _prop(round(consumed.get(g.name, 0.0) / 1000, 6), info.last_seen_ms, "KWH")
            e["lastMeterReading"] = _prop(round(meter / 1000, 6), info.last_seen_ms, "KWH")
            if g.cabinet:
                e["name"] = _prop(g.cabinet)
            e["@context"] = [CONTEXTS["StreetlightControlCabinet"], CORE_CONTEXT]
            out.append(e)
        return out


def key_values(entity: dict[str, Any]) -> dict[str, Any]:
    """The simplified (keyValues) form: each attribute as its bare value or object."""
    out: dict[str, Any] = {}
    for k, v in entity.items():
        if isinstance(v, dict) and v.get("type") in ("Property", "GeoProperty"):
            out[k] = v["value"]
        elif isinstance(v, dict) and v.get("type") == "Relationship":
            out[k] = v["object"]
        else:
            out[k] = v
    return out


def _respond(request: web.Request, doc: Any) -> web.Response:
    if request.query.get("options") == "keyValues":
        doc = [key_values(e) for e in doc] if isinstance(doc, list) else key_values(doc)
    return web.Response(body=orjson.dumps(doc), content_type=CONTENT_TYPE)


def _check_options(request: web.Request) -> None:
    options = request.query.get("options")
    if options not in (None, "keyValues", "normalized"):
        raise Problem(400, "invalid-parameter", "Invalid query parameter",
                      f"options {options!r}: keyValues or normalized", parameter="options")


async def get_entities(request: web.Request) -> web.Response:
    _check_options(request)
    kind = request.query.get("type")
    if kind not in CONTEXTS:
        raise Problem(400, "invalid-parameter", "Invalid query parameter",
                      f"type is required: one of {', '.join(CONTEXTS)}", parameter="type")
    limit = int_param(request, "limit", 20, 1, MAX_LIMIT)
    offset = int_param(request, "offset", 0, 0, 2**31)
    builder = Builder(request)
    if kind == "StreetlightControlCabinet":
        return _respond(request, await builder.cabinets(limit=limit, offset=offset))
    rows = await builder.store.devices(kind=KIND[kind], limit=limit, offset=offset)
    return _respond(request, await builder.devices(kind, rows))


async def get_entity(request: web.Request) -> web.Response:
    _check_options(request)
    raw = request.match_info["entity_id"]
    parts = raw.split(":")
    not_found = Problem(404, "not-found", "Not Found", f"no entity {raw!r}")
    if len(parts) not in (4, 5) or parts[:2] != ["urn", "ngsi-ld"] or parts[2] not in CONTEXTS:
        raise not_found
    kind, gateway = parts[2], parts[3]
    builder = Builder(request)
    if kind == "StreetlightControlCabinet":
        found = await builder.cabinets([gateway]) if len(parts) == 4 else []
        if not found:
            raise not_found
        return _respond(request, found[0])
    if len(parts) != 5:
        raise not_found
    device = unquote(parts[4])
    if not storable(device):
        raise Problem(400, "invalid-parameter", "Invalid parameter",
                      f"entity_id {raw!r}: the device name holds a NUL", parameter="entity_id")
    rows = [d for d in await builder.store.devices(gateway, kind=KIND[kind]) if d.device == device]
    if not rows:
        raise not_found
    return _respond(request, (await builder.devices(kind, rows))[0])
