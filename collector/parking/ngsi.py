"""NGSI-LD `ParkingSpot` and `OnStreetParking` (Smart Data Models, dataModel.Parking) from the
parking tables, live (collector.parking.live). Served for the spaces whose gateway is registered:
an inventory line whose sensors no gateway relays yet is not open data.

- ParkingSpot: status (occupied | free | unknown, observed at the last change), category
  ["onStreet"], refParkingSite (its street's OnStreetParking), name, location.
- OnStreetParking: availableSpotNumber (free spaces), occupiedSpotNumber, totalSpotNumber,
  occupancyDetectionType ["singleSpaceDetection"], category (its zones' categories in the
  model's terms), refParkingSpot, name, location.

No vehicle is named: a space is occupied or not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from collector.parking.live import refreshed
from collector.parking.store import SpaceRow
from collector.store import Store

CONTEXT = "https://raw.githubusercontent.com/smart-data-models/dataModel.Parking/master/context.jsonld"
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "ParkingSpot": ("location", "name", "status", "category", "refParkingSite"),
    "OnStreetParking": ("location", "name", "category", "occupancyDetectionType", "availableSpotNumber",
                        "occupiedSpotNumber", "totalSpotNumber", "refParkingSpot"),
}
TYPES = tuple(ATTRIBUTES)
#: a zone's category -> the OnStreetParking category of the model
SDM_CATEGORY = {"pay_zone": "feeCharged", "blue_zone": "blueZone", "delivery_bay": "forLoadUnload",
                "disabled_bay": "forDisabled"}

Entity = dict[str, Any]


def spot_id(space: str) -> str:
    return f"urn:ngsi-ld:ParkingSpot:{space}"


def street_id(street: str) -> str:
    return f"urn:ngsi-ld:OnStreetParking:{street}"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _prop(value: Any, observed_ms: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Property", "value": value}
    if observed_ms is not None:
        out["observedAt"] = _iso(observed_ms)
    return out


def _point(lat: float, lon: float) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


def spot(s: SpaceRow) -> Entity:
    return {"id": spot_id(s.space), "type": "ParkingSpot", "location": _point(s.lat, s.lon), "name": _prop(s.space),
            "status": _prop(s.state, s.since_ms), "category": _prop(["onStreet"]),
            "refParkingSite": {"type": "Relationship", "object": street_id(s.street)}}


async def stream(store: Store, kind: str) -> AsyncIterator[Entity]:
    """The type's entities in id order."""
    await refreshed(store)
    registered = {i.gateway.name for i in await store.gateways()}
    spaces = [s for s in await store.parking_spaces() if s.gateway in registered]
    if kind == "ParkingSpot":
        for s in sorted(spaces, key=lambda s: spot_id(s.space)):
            yield spot(s)
        return
    zones = {z.id: z for z in await store.parking_zones()}
    by_street: dict[str, list[SpaceRow]] = {}
    for s in spaces:
        by_street.setdefault(s.street, []).append(s)
    for st in sorted(await store.parking_streets(), key=lambda st: street_id(st.id)):
        mine = by_street.get(st.id)
        if not mine:
            continue
        observed = max((s.last_ms for s in mine if s.last_ms is not None), default=None)
        categories = sorted({SDM_CATEGORY[zones[s.zone].category] for s in mine if s.zone in zones})
        yield {"id": street_id(st.id), "type": "OnStreetParking", "location": _point(st.lat, st.lon),
               "name": _prop(st.name), "category": _prop(categories),
               "occupancyDetectionType": _prop(["singleSpaceDetection"]),
               "availableSpotNumber": _prop(sum(s.state == "free" for s in mine), observed),
               "occupiedSpotNumber": _prop(sum(s.state == "occupied" for s in mine), observed),
               "totalSpotNumber": _prop(len(mine)),
               "refParkingSpot": {"type": "Relationship", "object": [spot_id(s.space) for s in mine]}}


async def by_id(store: Store, kind: str, key: str) -> Entity | None:
    """The entity of a space (ParkingSpot) or a street (OnStreetParking), or None."""
    wanted = spot_id(key) if kind == "ParkingSpot" else street_id(key)
    async for e in stream(store, kind):
        if e["id"] == wanted:
            return e
    return None
