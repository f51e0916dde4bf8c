"""NGSI-LD `TrafficFlowObserved` (Smart Data Models, dataModel.Transportation): one entity per lane
and counting interval, over the last day of counts each junction sent.

Attributes: laneId (the lane's number in its approach), dateObserved (the ISO 8601 interval),
dateObservedFrom / dateObservedTo, intensity (vehicles in the interval), occupancy (0..1),
averageVehicleSpeed (km/h, on lanes with a speed pair), name (junction, approach, lane), and the
location of the junction's cabinet. Id: urn:ngsi-ld:TrafficFlowObserved:<gateway>:
<junction>.<approach>.<lane>.<interval start, UTC, YYYYMMDDTHHMMSSZ>.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

from collector.traffic.rollup import LaneInterval, lane_intervals
from collector.traffic.store import QUARTER_MS, TrafficStore

TYPE = "TrafficFlowObserved"
CONTEXT = "https://raw.githubusercontent.com/smart-data-models/dataModel.Transportation/master/context.jsonld"
ATTRIBUTES = ("location", "locationSource", "name", "laneId", "dateObserved", "dateObservedFrom", "dateObservedTo",
              "intensity", "occupancy", "averageVehicleSpeed")
#: how far back from a junction's newest interval its entities go
WINDOW_MS = 24 * 3_600_000
_KEY = re.compile(r"^(?P<junction>.+)\.(?P<approach>[^.]+)\.(?P<lane>\d{1,2})\.(?P<start>\d{8}T\d{6}Z)$")

Entity = dict[str, Any]


#: sets an entity's location and locationSource from its gateway
Located = Callable[[Entity, str], None]


class _Place(Protocol):
    @property
    def lat(self) -> float: ...

    @property
    def lon(self) -> float: ...

    @property
    def source(self) -> str: ...


class Builder(Protocol):
    """What this needs of collector.ngsi_entities.Builder: the store, and where it places a gateway."""

    @property
    def store(self) -> Any: ...

    def place(self, lat: float | None, lon: float | None, commune: str) -> _Place | None: ...


def _stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y%m%dT%H%M%SZ")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _prop(value: Any, observed_ms: int | None = None, unit: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Property", "value": value}
    if observed_ms is not None:
        out["observedAt"] = _iso(observed_ms)
    if unit is not None:
        out["unitCode"] = unit
    return out


def entity_id(li: LaneInterval) -> str:
    key = f"{li.junction}.{li.approach}.{li.lane}.{_stamp(li.start_ms)}"
    return f"urn:ngsi-ld:{TYPE}:{li.gateway}:{quote(key, safe='-._~')}"


def entity(li: LaneInterval, locate: Located) -> Entity:
    e: Entity = {"id": entity_id(li), "type": TYPE}
    locate(e, li.gateway)
    end = li.end_ms
    e["name"] = _prop(f"{li.junction} {li.approach} lane {li.lane}")
    e["laneId"] = _prop(li.lane)
    e["dateObserved"] = _prop(f"{_iso(li.start_ms)}/{_iso(end)}")
    e["dateObservedFrom"] = _prop({"@type": "DateTime", "@value": _iso(li.start_ms)})
    e["dateObservedTo"] = _prop({"@type": "DateTime", "@value": _iso(end)})
    e["intensity"] = _prop(li.vehicles, end)
    e["occupancy"] = _prop(round(li.occupancy_pct / 100, 4), end)
    if li.speed_kmh is not None:
        e["averageVehicleSpeed"] = _prop(li.speed_kmh, end, "KMH")
    return e


async def locator(builder: Builder) -> Located:
    """Entities at their gateway's cabinet, else at its commune's centre (as the builder places them)."""
    gateways = {i.gateway.name: i.gateway for i in await builder.store.gateways()}

    def locate(e: Entity, gateway: str) -> None:
        g = gateways.get(gateway)
        p = builder.place(g.lat, g.lon, g.commune) if g is not None else None
        if p is not None:
            e["location"] = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [p.lon, p.lat]}}
            e["locationSource"] = _prop(p.source)
    return locate


async def stream(builder: Builder, gateways: set[str] | None) -> AsyncIterator[Entity]:
    """Each junction's lanes and intervals of its last day of counts, by gateway, in id order per gateway."""
    store: TrafficStore = builder.store
    locate = await locator(builder)
    found = sorted((g, j, newest) for j, g, newest in await store.traffic_junctions()
                   if gateways is None or g in gateways)
    for gateway, junction, newest in found:
        rows = await store.traffic_intervals(junction, newest + QUARTER_MS - WINDOW_MS, newest + QUARTER_MS, gateway)
        for e in sorted((entity(li, locate) for li in lane_intervals(rows)), key=lambda e: e["id"]):
            yield e


async def by_id(builder: Builder, gateway: str, key: str | None) -> Entity | None:
    m = _KEY.match(key or "")
    if m is None:
        return None
    start = int(datetime.strptime(m["start"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp() * 1000)
    store: TrafficStore = builder.store
    rows = await store.traffic_intervals(m["junction"], start, start + 1, gateway)
    for li in lane_intervals(rows):
        if li.approach == m["approach"] and li.lane == int(m["lane"]):
            return entity(li, await locator(builder))
    return None
