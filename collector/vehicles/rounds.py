"""Trips and waste rounds of one vehicle, read back from its events and positions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from collector.rollup import PARIS
from collector.vehicles.store import CYCLE_CODES, Street, Vehicle, VehicleStore, street_at

TRIP_CODES = ("trip_started", "trip_ended")


async def trips(store: VehicleStore, v: Vehicle, since_ms: int, until_ms: int) -> list[dict[str, Any]]:
    """Ended trips that started in the window, oldest first, and the trip in progress (`ended_ms` None)."""
    out: dict[int, dict[str, Any]] = {}
    for _ts, code, detail in await store.vehicle_events(v, TRIP_CODES, since_ms, until_ms + 86_400_000 * 7):
        trip = detail.get("trip")
        if not isinstance(trip, int) or not since_ms <= trip <= until_ms:
            continue
        if code == "trip_ended":
            out[trip] = {k: detail.get(k) for k in ("started_ms", "ended_ms", "duration_s", "distance_m", "idle_s",
                                                    "cycles", "start_lat", "start_lon", "lat", "lon", "by")}
            out[trip]["trip"] = trip
        elif trip not in out:
            out[trip] = {"trip": trip, "started_ms": trip, "ended_ms": None, "by": detail.get("by"),
                         "start_lat": detail.get("lat"), "start_lon": detail.get("lon")}
    return [out[k] for k in sorted(out)]


async def rounds(store: VehicleStore, v: Vehicle, since_ms: int, until_ms: int,
                 streets: list[Street] | None = None) -> list[dict[str, Any]]:
    """Each ended trip with the streets it served: where its cycles ran, else where it drove."""
    streets = await store.streets() if streets is None else streets
    out = []
    for trip in await trips(store, v, since_ms, until_ms):
        if trip["ended_ms"] is None:
            continue
        start, end = int(trip["started_ms"]), int(trip["ended_ms"])
        cycles = await store.vehicle_events(v, CYCLE_CODES, start, end)
        served: dict[tuple[str, str], dict[str, Any]] = {}
        where: list[tuple[int, float, float]] = [
            (ts, float(d["lat"]), float(d["lon"])) for ts, _, d in cycles
            if isinstance(d.get("lat"), int | float) and isinstance(d.get("lon"), int | float)]
        by = "cycles"
        if not where:
            where = [(p.ts_ms, p.lat, p.lon) for p in await store.positions(v, start, end)]
            by = "positions"
        for ts, lat, lon in where:
            s = street_at(streets, lat, lon)
            if s is None:
                continue
            row = served.setdefault((s.commune, s.name), {"commune": s.commune, "street": s.name, "first_ms": ts,
                                                          "count": 0})
            row["count"] += 1
        out.append({"trip": trip["trip"], "started_ms": start, "ended_ms": end, "by": by,
                    "streets": sorted(served.values(), key=lambda r: int(r["first_ms"]))})
    return out


def local_date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, PARIS).date().isoformat()
