"""From the simulated streets to open data, on a real collector and both stores: the sensors'
uplinks go through Mosquitto and the lorawan-chirpstack bus, their samples and events are uploaded
as the agent uploads them, and what the collector publishes holds the simulator's ground truth:
every change once, occupied time to the millisecond, silent spaces unknown and never free, an
overstay in the blue zone raised once and cleared when the car leaves."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import date, timedelta

import aiohttp
import pytest
from conftest import Field

from collector.app import create_app, start
from collector.parking.project import HOUR_MS, open_hours
from collector.parking.projector import Projector
from collector.parking.routes import PROJECTOR
from collector.store import Store
from drivers.model import Event, Record, Sample
from tests.collector_web.web_testkit import Web, event, sample

GATEWAY = "gw-dijon-lora"  # configs/parking/21231.toml


@pytest.fixture
async def web(store: Store) -> AsyncIterator[tuple[Web, Projector]]:
    app = create_app(store, max_future_s=3 * 3600)  # the overstay test's car leaves 91 min after the run
    runner, url = await start(app, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            w = Web(url, store, session)
            await w.add_cabinet(GATEWAY, "21231", 47.3215, 5.0410)
            yield w, app[PROJECTOR]
    finally:
        await runner.cleanup()


def wire(records: list[Record]) -> list[dict]:
    return [sample(0, r.device, r.ts_ms, **r.values) if isinstance(r, Sample)
            else event(0, r.device, r.ts_ms, r.code, r.severity.value, **r.detail) for r in records]


def truth_hours(field: Field, space: str, end_ms: int) -> dict[int, list[int]]:
    """bucket -> [occupied ms, known ms, changes] of one space, from what the simulator sent."""
    first = field.sim.truth.first.get(space)
    out: dict[int, list[int]] = {}
    if first is None:
        return out
    timeline = [first, *[c for c in field.sim.truth.changes.get(space, []) if c[0] > first[0]]]
    for i, (t0, state) in enumerate(timeline):
        t1 = timeline[i + 1][0] if i + 1 < len(timeline) else end_ms
        if i > 0:
            out.setdefault(t0 - t0 % HOUR_MS, [0, 0, 0])[2] += 1
        t = t0
        while t < t1:
            b = t - t % HOUR_MS
            span = min(t1, b + HOUR_MS) - t
            cell = out.setdefault(b, [0, 0, 0])
            cell[0] += span if state == "occupied" else 0
            cell[1] += span
            t += span
    return out


async def collected(web: Web, projector: Projector, field: Field) -> dict[str, dict[int, list[int]]]:
    await web.upload(GATEWAY, wire(field.records))
    projector.clock = lambda: field.sim.now_ms  # the end of the run: open intervals end there
    await projector.catch_up()
    lo = field.sim.started_ms - field.sim.started_ms % HOUR_MS
    hours = await web.store.parking_hours(lo, lo + 2 * HOUR_MS)
    hours += open_hours(projector.spaces.values(), field.sim.now_ms, lo)
    out: dict[str, dict[int, list[int]]] = {}
    for h in hours:
        cell = out.setdefault(h.space, {}).setdefault(h.bucket, [0, 0, 0])
        cell[0] += h.occupied_ms
        cell[1] += h.known_ms
        cell[2] += h.changes
    return out


async def test_occupied_time_and_changes_are_the_simulators_to_the_millisecond(
        web: tuple[Web, Projector], field: Field) -> None:
    w, projector = web
    got = await collected(w, projector, field)
    states: dict[str, list[tuple[int, object]]] = {}
    for r in field.records:
        if isinstance(r, Sample) and "parking_state" in r.values:
            states.setdefault(r.device, []).append((r.ts_ms, r.values["parking_state"]))
    # An unknown spell starts when the bus judged the sensor silent, by its own clock: not in the truth.
    # After the run every sensor falls silent in turn: a space whose only unknown is its last sample held
    # its last state until then. Any other unknown (the simulator's silent sensors, and on a loaded
    # machine a frame delayed past the heartbeat) leaves the space out of the exact comparison.
    silent = set(field.sim.truth.silent)
    end: dict[str, int] = {}
    for space, seen in states.items():
        unknown = [i for i, (_, state) in enumerate(seen) if state == "unknown"]
        if unknown == [len(seen) - 1]:
            end[space] = seen[-1][0]
        elif unknown:
            silent.add(space)
    checked = 0
    for space in projector.inventory.spaces:
        expected = truth_hours(field, space, max(field.sim.now_ms, end.get(space, 0)))
        mine = {b: c for b, c in got.get(space, {}).items() if c != [0, 0, 0]}
        if space in silent:  # known until the bus judged it silent: changes only
            assert {b: c[2] for b, c in mine.items() if c[2]} == {b: c[2] for b, c in expected.items() if c[2]}, space
            continue
        sent = [field.sim.truth.first.get(space), *field.sim.truth.changes.get(space, [])]
        bus = [(r.ts_ms, r.values.get("parking_state"), r.values.get("uplink")) if isinstance(r, Sample)
               else (r.ts_ms, r.code) for r in field.records if r.device == space]
        assert mine == {b: c for b, c in expected.items() if c != [0, 0, 0]}, (space, sent, bus)
        checked += 1
    assert checked >= len(projector.inventory.spaces) // 2


async def test_the_hourly_csv_and_the_daily_turnover_add_up(web: tuple[Web, Projector], field: Field) -> None:
    w, projector = web
    got = await collected(w, projector, field)
    today = date.fromtimestamp(field.sim.started_ms / 1000)
    reply = await w.get(f"/opendata/v1/parking/hourly.csv?from={today - timedelta(days=1)}&to={today + timedelta(days=1)}")
    assert reply.status == 200 and reply.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert rows and {r["street_id"] for r in rows} == set(projector.inventory.streets)
    for r in rows:
        spaces = [s for s in projector.inventory.spaces.values() if s.street == r["street_id"]]
        cells = [got.get(s.id, {}).get(int(_bucket(r["hour_utc"])), [0, 0, 0]) for s in spaces]
        occupied, known, changes = (sum(c[i] for c in cells) for i in range(3))
        assert int(r["spaces"]) == len(spaces) and int(r["changes"]) == changes
        assert float(r["occupancy_pct"]) == round(100 * occupied / known, 2)
    daily = (await w.get("/api/v1/parking/daily?by=zone")).doc["rows"]
    for d in daily:
        spaces = [s for s in projector.inventory.spaces.values() if s.zone == d["key"]]
        changes = sum(c[2] for s in spaces for c in got.get(s.id, {}).values())
        assert d["changes"] == changes and d["turnover"] == round(changes / len(spaces), 3)
    assert "pk-" not in reply.text  # per street: no space, no sensor, no vehicle


def _bucket(iso: str) -> int:
    from datetime import datetime
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


async def test_silent_spaces_are_unknown_in_the_api_and_in_open_data_never_free(
        web: tuple[Web, Projector], field: Field) -> None:
    w, projector = web
    await collected(w, projector, field)
    spaces = {s["space"]: s for s in (await w.get("/api/v1/parking/spaces")).doc}
    silent = field.silent_at_end()  # the simulator's silent sensors, and any the run's end left silent
    assert set(field.sim.truth.silent) <= silent
    for space in silent:
        assert spaces[space]["state"] == "unknown"
    for space, changes in field.sim.truth.changes.items():
        if space not in silent:
            assert spaces[space]["state"] == changes[-1][1]
    streets = (await w.get("/ngsi-ld/v1/entities?type=OnStreetParking&limit=100&options=keyValues")).doc
    now = (await w.get("/api/v1/parking/now")).doc
    by_street = {s["street"]: s for s in now["streets"]}
    for e in streets:
        street = e["id"].rsplit(":", 1)[1]
        assert e["availableSpotNumber"] == by_street[street]["free"]
        assert e["totalSpotNumber"] == by_street[street]["spaces"]
    spot = (await w.get(f"/ngsi-ld/v1/entities/urn:ngsi-ld:ParkingSpot:{min(field.sim.truth.silent)}"
                        "?options=keyValues")).doc
    assert spot["status"] == "unknown"


async def test_an_overstay_in_the_blue_zone_is_raised_once_and_cleared_when_the_car_leaves(
        web: tuple[Web, Projector], field: Field) -> None:
    w, projector = web
    await collected(w, projector, field)
    blue = {s.id for s in projector.inventory.spaces.values() if s.zone == "dijon-zb-centre"}
    occupied = {k for k, s in projector.spaces.items() if k in blue and s.state == "occupied"}
    assert occupied
    later = field.sim.now_ms + 91 * 60_000
    projector.clock = lambda: later
    assert await projector.check_overstays() == len(occupied)
    assert await projector.check_overstays() == 0  # once
    assert set((await w.get("/api/v1/parking/now")).doc["overstays"]) == occupied
    leaving = sorted(occupied)[0]
    await w.upload(GATEWAY, [sample(0, leaving, later + 1_000, parking_state="free", uplink="status", fcnt=10**6)])
    await projector.catch_up()
    found = (await w.get(f"/api/v1/gateways/{GATEWAY}/events?limit=1000")).doc["events"]
    raised = [e for e in found if e["code"] == "parking_overstay"]
    assert {e["device"] for e in raised} == occupied
    assert all(e["detail"]["max_stay_min"] == 90 and e["severity"] == "minor" for e in raised)
    assert [e["device"] for e in found if e["code"] == "parking_overstay_cleared"] == [leaving]
    assert leaving not in (await w.get("/api/v1/parking/now")).doc["overstays"]


def test_no_record_names_a_vehicle(field: Field) -> None:
    names = {k for r in field.records if isinstance(r, Sample) for k in r.values}
    names |= {k for r in field.records if isinstance(r, Event) for k in r.detail}
    assert not {n for n in names if any(w in n for w in ("plate", "tag", "vehicle", "badge"))}
