"""NGSI-LD entities (normalized form) built from the store, with the FIWARE Smart Data Models' field
names, valid against their JSON schemas (tests/collector_web/sdm_schemas).

- `Streetlight` (a device reporting `lamp_on`): status, powerState, illuminanceLevel (0-1),
  powerConsumption (W), voltage, current, refStreetlightControlCabinet, refStreetlightGroup.
- `StreetlightControlCabinet` (a gateway with a lamp or a lighting group): workingMode, features,
  energyConsumed (kWh since metering started: its day rollups), lastMeterReading (kWh: its lamps'
  counters), areaServed, refStreetlightGroup.
- `StreetlightGroup`: the agent's lighting groups, known at the collector as the pseudo-devices
  `group:<name>` of its `group_level` events: powerState and illuminanceLevel from the newest one,
  activeProgramId its program. A lamp belongs to the group its fault events name (the gateway's
  configuration is not at the collector); a cabinet whose groups the collector has not heard of
  has one group `cabinet`: all its lamps, switched by the cabinet.
- `WaterConsumptionObserved` (a device reporting `volume_m3`): waterConsumption (the model's whole
  m³ of the cumulative index), waterConsumptionLitres (the same index in whole litres: the m³ of
  the model would lose them), alarmFlowPersistence (the model's list: a night-flow leak still open
  is "In progress persistence", one cleared in the last 7 days "Past Persistence during the
  period", else "Nothing to report").
- `Device`: every other device that measures a quantity of the model's controlledProperty list
  (a lighting group controls nothing itself: it is a StreetlightGroup, not a Device).

Location (required by most models): the collector knows no lamp's own position, so a lamp, a group
and a device are placed at their cabinet (within its feeders' reach, a few hundred metres), else
at their commune's centre (anywhere in the commune: up to about 6 km off); `locationSource` says
which ("cabinet" or "communeCentre"). No camera, no personal data is ever in an entity.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from citygate_wire.common import now_ms
from collector.model import GatewayInfo
from collector.parking import ngsi as parking
from collector.readmodel import GROUP_LEVEL, GROUP_PREFIX, DeviceRow
from collector.store import Store
from collector.territory import Territory
from collector.traffic import ngsi as traffic

Entity = dict[str, Any]

CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
#: the context of every Smart Data Model at once: the Link of an answer mixing types
ALL_MODELS_CONTEXT = "https://smartdatamodels.org/context.jsonld"
_SDM = "https://raw.githubusercontent.com/smart-data-models/{}/master/context.jsonld"
CONTEXTS = {
    "Streetlight": _SDM.format("dataModel.Streetlighting"),
    "StreetlightControlCabinet": _SDM.format("dataModel.Streetlighting"),
    "StreetlightGroup": _SDM.format("dataModel.Streetlighting"),
    "WaterConsumptionObserved": _SDM.format("dataModel.WaterConsumption"),
    "Device": _SDM.format("dataModel.Device"),
    **dict.fromkeys(parking.TYPES, parking.CONTEXT),
    traffic.TYPE: traffic.CONTEXT,
}
TYPES = tuple(CONTEXTS)
#: the attributes an entity of each type carries when the data is there (besides id, type)
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "Streetlight": ("location", "locationSource", "status", "powerState", "illuminanceLevel", "powerConsumption",
                    "voltage", "current", "refStreetlightControlCabinet", "refStreetlightGroup"),
    "StreetlightControlCabinet": ("location", "locationSource", "areaServed", "workingMode", "features",
                                  "energyConsumed", "lastMeterReading", "name", "refStreetlightGroup"),
    "StreetlightGroup": ("location", "locationSource", "name", "powerState", "illuminanceLevel", "activeProgramId",
                         "refStreetlightControlCabinet", "refStreetlight"),
    "WaterConsumptionObserved": ("location", "locationSource", "waterConsumption", "waterConsumptionLitres",
                                 "alarmFlowPersistence", "refDevice"),
    "Device": ("location", "locationSource", "controlledProperty", "deviceState", "batteryLevel", "rssi",
               "dateLastValueReported"),
    **parking.ATTRIBUTES,
    traffic.TYPE: traffic.ATTRIBUTES,
}
#: store device kind (collector.readmodel) of each device-backed type
KIND = {"Streetlight": "lamp", "WaterConsumptionObserved": "water", "StreetlightGroup": "group", "Device": "device"}
#: quantity name -> the Smart Data Models controlledProperty it measures
CONTROLLED: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), c) for p, c in (
    (r"_wh$", "energy"), (r"^(apparent_)?power.*_(w|va)$", "power"), (r"^temperature.*_c$", "temperature"),
    (r"^humidity", "humidity"), (r"^(illuminance_lx|level_pct|lamp_on)$", "light"),
    (r"^volume_m3$", "waterConsumption"), (r"^flow_m3h$", "waterFlow"), (r"^movement_count$", "motion"),
    (r"^pressure", "pressure"),
))
LEAK, LEAK_CLEARED = "water_leak", "water_leak_cleared"
LEAK_WINDOW_MS = 7 * 24 * 3_600_000
NO_LEAK, LEAK_NOW, LEAK_PAST = "Nothing to report", "In progress persistence", "Past Persistence during the period"
WHOLE_CABINET = "cabinet"
CHUNK = 500  # rows read at once while streaming a type: bounds memory whatever the city's size


@functools.lru_cache(maxsize=4096)  # an entity's attributes share their time, and a chunk's lamps often do
def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def entity_id(kind: str, gateway: str, device: str | None = None) -> str:
    base = f"urn:ngsi-ld:{kind}:{gateway}"
    return base if device is None else f"{base}:{quote(device, safe='-._~')}"


def group_id(gateway: str, group: str) -> str:
    return entity_id("StreetlightGroup", gateway, group)


def _prop(value: Any, observed_ms: int | None = None, unit: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Property", "value": value}
    if observed_ms is not None:
        out["observedAt"] = iso(observed_ms)
    if unit is not None:
        out["unitCode"] = unit
    return out


def _rel(target: str | list[str]) -> dict[str, Any]:
    return {"type": "Relationship", "object": target}


def _number(values: dict[str, Any], key: str) -> float | None:
    v = values.get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _state(level: float | None, on: bool | None = True) -> str:
    return "off" if not on or level == 0 else "low" if level is not None and level < 100 else "on"


def controlled_properties(row: DeviceRow, values: dict[str, Any]) -> list[str]:
    names = set(values)
    names.update(k for k, v in (("energy_wh", row.energy_wh), ("volume_m3", row.volume_m3),
                                ("lamp_on", row.lamp_on)) if v is not None)
    return sorted({c for n in names for p, c in CONTROLLED if p.search(n)})


@dataclass(frozen=True, slots=True)
class Place:
    lat: float
    lon: float
    source: str


class Builder:
    """Entities of one request: caches what several entities share (faults, leaks, groups)."""

    def __init__(self, store: Store, territory: Territory) -> None:
        self.store = store
        self.territory = territory
        self._faults: set[tuple[str, str]] | None = None
        self._leaks: dict[tuple[str, str], str] | None = None
        self._lamp_groups: dict[tuple[str, str], str] | None = None
        self._groups: dict[str, list[str]] = {}

    # -- what entities share

    async def faults(self) -> set[tuple[str, str]]:
        if self._faults is None:
            self._faults = {(f.gateway, f.device) for f in await self.store.open_lamp_faults()}
        return self._faults

    async def leaks(self) -> dict[tuple[str, str], str]:
        if self._leaks is None:
            since = now_ms() - LEAK_WINDOW_MS
            past = await self.store.event_devices(LEAK_CLEARED, since)
            open_ = {(a.gateway, a.device) for a in await self.store.open_event_alarms(since) if a.code == LEAK}
            self._leaks = {**dict.fromkeys(past, LEAK_PAST), **dict.fromkeys(open_, LEAK_NOW)}
        return self._leaks

    async def lamp_groups(self) -> dict[tuple[str, str], str]:
        if self._lamp_groups is None:
            self._lamp_groups = await self.store.lamp_groups()
        return self._lamp_groups

    async def groups_of(self, gateway: str) -> list[str]:
        """The gateway's lighting groups by name; WHOLE_CABINET when the collector knows none."""
        if gateway not in self._groups:
            rows = await self.store.devices(gateway, kind="group")
            self._groups[gateway] = [r.device.removeprefix(GROUP_PREFIX) for r in rows] or [WHOLE_CABINET]
        return self._groups[gateway]

    def place(self, lat: float | None, lon: float | None, commune: str) -> Place | None:
        if lat is not None and lon is not None:
            return Place(lat, lon, "cabinet")
        c = self.territory.communes.get(commune)
        return Place(c.lat, c.lon, "communeCentre") if c is not None else None

    def _locate(self, e: Entity, place: Place | None) -> None:
        if place is not None:
            e["location"] = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [place.lon, place.lat]}}
            e["locationSource"] = _prop(place.source)

    # -- streams, in id order

    async def gateways_in(self, box: tuple[float, float, float, float]) -> set[str]:
        """The gateways whose entities stand inside (west, south, east, north): where `place` puts them."""
        west, south, east, north = box
        out = set()
        for info in await self.store.gateways():
            g = info.gateway
            p = self.place(g.lat, g.lon, g.commune)
            if p is not None and west <= p.lon <= east and south <= p.lat <= north:
                out.add(g.name)
        return out

    async def stream(self, kind: str, gateways: set[str] | None = None) -> AsyncIterator[Entity]:
        """The type's entities in id order; with `gateways`, only theirs (and only theirs are read)."""
        if kind == "StreetlightControlCabinet":
            async for e in self._cabinet_stream(gateways):
                yield e
            return
        if kind == "StreetlightGroup":
            async for e in self._group_stream(gateways):
                yield e
            return
        if kind == traffic.TYPE:  # per lane and counting interval, at the junction's cabinet
            async for e in traffic.stream(self, gateways):
                yield e
            return
        if kind in parking.TYPES:  # placed at their streets: a geo-query filters them by their own location
            async for e in parking.stream(self.store, kind):
                yield e
            return
        for gateway in [None] if gateways is None else sorted(gateways):
            after: tuple[str, str] | None = None
            while True:
                rows = await self.store.devices(gateway, kind=KIND[kind], limit=CHUNK, after=after)
                for e in await self.devices(kind, rows):
                    yield e
                if len(rows) < CHUNK:
                    break
                after = (rows[-1].gateway, rows[-1].device)

    async def _lighting_gateways(self, names: Collection[str] | None = None) -> list[GatewayInfo]:
        lighting = await self.store.lighting_gateways()
        return [i for i in await self.store.gateways()
                if i.gateway.name in lighting and (names is None or i.gateway.name in names)]

    async def _cabinet_stream(self, gateways: set[str] | None) -> AsyncIterator[Entity]:
        infos = await self._lighting_gateways(gateways)
        consumed = await self.store.gateway_energy_wh()
        for info in infos:
            yield await self.cabinet(info, consumed)

    async def _group_stream(self, gateways: set[str] | None) -> AsyncIterator[Entity]:
        for info in await self._lighting_gateways(gateways):
            for e in await self.groups(info):
                yield e

    # -- one entity

    async def devices(self, kind: str, rows: list[DeviceRow]) -> list[Entity]:
        out = []
        by_gateway: dict[str, list[DeviceRow]] = {}
        for d in rows:
            by_gateway.setdefault(d.gateway, []).append(d)
        for gateway, devices in by_gateway.items():
            latest = await self.store.latest_values(gateway, [d.device for d in devices])
            for d in devices:
                ts, values = latest.get(d.device, (d.last_ts_ms, {}))
                e = await self.device_entity(kind, d, ts, values)
                if e is not None:
                    out.append(e)
        return out

    async def device_entity(self, kind: str, d: DeviceRow, ts: int | None, values: dict[str, Any]) -> Entity | None:
        """The entity, or None when the row is not one of that type (a Device that measures nothing)."""
        e: Entity = {"id": entity_id(kind, d.gateway, d.device), "type": kind}
        self._locate(e, self.place(d.lat, d.lon, d.commune))
        if kind == "Streetlight":
            faulty = (d.gateway, d.device) in await self.faults()
            level = _number(values, "level_pct")
            e["status"] = _prop("defectiveLamp" if faulty else "ok", ts)
            e["powerState"] = _prop(_state(level, d.lamp_on), ts)
            if level is not None:
                e["illuminanceLevel"] = _prop(round(level / 100, 4), ts)
            for key, name, unit in (("power_w", "powerConsumption", "WTT"), ("voltage_v", "voltage", "VLT"),
                                    ("current_a", "current", "AMP")):
                v = _number(values, key)
                if v is not None:
                    e[name] = _prop(v, ts, unit)
            e["refStreetlightControlCabinet"] = _rel(entity_id("StreetlightControlCabinet", d.gateway))
            group = (await self.lamp_groups()).get((d.gateway, d.device))
            if group is None and await self.groups_of(d.gateway) == [WHOLE_CABINET]:
                group = WHOLE_CABINET
            if group is not None:
                e["refStreetlightGroup"] = _rel(group_id(d.gateway, group))
        elif kind == "WaterConsumptionObserved":
            volume = d.volume_m3 or 0.0
            # the model's waterConsumption is whole m³: a meter's index shows the m³ completed
            e["waterConsumption"] = _prop(int(volume), ts, "MTQ")
            e["waterConsumptionLitres"] = _prop(round(volume * 1000), ts, "LTR")
            e["alarmFlowPersistence"] = _prop((await self.leaks()).get((d.gateway, d.device), NO_LEAK), ts)
            e["refDevice"] = _rel(entity_id("Device", d.gateway, d.device))
        else:
            controlled = controlled_properties(d, values)
            if not controlled:
                return None
            e["controlledProperty"] = _prop(controlled)
            faulty = (d.gateway, d.device) in await self.faults()
            e["deviceState"] = _prop("faulty" if faulty else "ok", ts)
            battery = _number(values, "battery_pct")
            if battery is not None and 0 <= battery <= 100:
                e["batteryLevel"] = _prop(round(battery / 100, 4), ts)
            rssi = _number(values, "rssi_dbm")
            if rssi is not None:
                e["rssi"] = _prop(rssi, ts, "2N")
            if ts is not None:
                e["dateLastValueReported"] = _prop({"@type": "DateTime", "@value": iso(ts)})
        return e

    async def cabinet(self, info: GatewayInfo, consumed: dict[str, float]) -> Entity:
        g = info.gateway
        lamps = await self.store.devices(g.name, kind="lamp")
        meter = sum(d.energy_wh or 0.0 for d in lamps)
        e: Entity = {"id": entity_id("StreetlightControlCabinet", g.name), "type": "StreetlightControlCabinet"}
        self._locate(e, self.place(g.lat, g.lon, g.commune))
        commune = self.territory.communes.get(g.commune)
        e["areaServed"] = _prop(commune.name if commune else g.commune)
        e["workingMode"] = _prop("automatic")
        e["features"] = _prop(["astronomicalClock", "individualControl"])
        e["energyConsumed"] = _prop(round(max(consumed.get(g.name, 0.0), 0.0) / 1000, 6), info.last_seen_ms, "KWH")
        e["lastMeterReading"] = _prop(round(max(meter, 0.0) / 1000, 6), info.last_seen_ms, "KWH")
        if g.cabinet:
            e["name"] = _prop(g.cabinet)
        e["refStreetlightGroup"] = _rel([group_id(g.name, n) for n in await self.groups_of(g.name)])
        return e

    async def groups(self, info: GatewayInfo, only: str | None = None) -> list[Entity]:
        g = info.gateway
        names = await self.groups_of(g.name)
        lamps = await self.store.devices(g.name, kind="lamp")
        members = await self.lamp_groups()
        out = []
        for name in names:
            if only is not None and name != only:
                continue
            e: Entity = {"id": group_id(g.name, name), "type": "StreetlightGroup"}
            self._locate(e, self.place(g.lat, g.lon, g.commune))
            e["name"] = _prop(name)
            mine = [d for d in lamps if name == WHOLE_CABINET or members.get((g.name, d.device)) == name]
            if name == WHOLE_CABINET:
                on = any(d.lamp_on for d in mine)
                e["powerState"] = _prop("on" if on else "off", max((d.last_ts_ms or 0 for d in mine), default=None))
            else:
                latest = await self.store.latest_event(g.name, GROUP_PREFIX + name, GROUP_LEVEL)
                if latest is not None:
                    ts, detail = latest
                    level = _number(detail, "level_pct")
                    e["powerState"] = _prop(_state(level), ts)
                    if level is not None and 0 <= level <= 100:
                        e["illuminanceLevel"] = _prop(round(level / 100, 4), ts)
                    if isinstance(detail.get("program"), str) and detail["program"]:
                        e["activeProgramId"] = _prop(detail["program"], ts)
            e["refStreetlightControlCabinet"] = _rel(entity_id("StreetlightControlCabinet", g.name))
            if mine:
                e["refStreetlight"] = _rel([entity_id("Streetlight", g.name, d.device) for d in mine])
            out.append(e)
        return out

    async def by_id(self, kind: str, gateway: str, device: str | None) -> Entity | None:
        if kind == traffic.TYPE:  # urn:ngsi-ld:TrafficFlowObserved:<gateway>:<junction.approach.lane.start>
            return await traffic.by_id(self, gateway, device)
        if kind in parking.TYPES:  # urn:ngsi-ld:<type>:<space or street>
            return None if device is not None else await parking.by_id(self.store, kind, gateway)
        if kind == "StreetlightControlCabinet":
            infos = await self._lighting_gateways([gateway]) if device is None else []
            return await self.cabinet(infos[0], await self.store.gateway_energy_wh()) if infos else None
        if device is None:
            return None
        if kind == "StreetlightGroup":
            infos = await self._lighting_gateways([gateway])
            found = await self.groups(infos[0], only=device) if infos else []
            return found[0] if found else None
        rows = [d for d in await self.store.devices(gateway, kind=KIND[kind]) if d.device == device]
        built = await self.devices(kind, rows)
        return built[0] if built else None

