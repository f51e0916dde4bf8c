"""The asset pages' API on a real collector and both stores: a lamp's curves, energy and burn hours
per day, its faults; a cabinet; a junction's modes and plans; a commune's energy against the
previous period and the all-night baseline. Expected figures are worked out by hand from the
uploaded readings (comments say how)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from astral import Observer
from astral.sun import dawn, dusk
from web_testkit import Web, event, sample

from collector.rollup import PARIS

GW, DIJON = "gw-dijon-0001", "21231"
DAY = "2026-11-28"
LAT, LON = 47.3220, 5.0415  # Dijon's centre in configs/territory.json


def at(day: str, hh: int, mm: int = 0, ss: int = 0) -> int:
    return int(datetime.fromisoformat(f"{day}T{hh:02d}:{mm:02d}:{ss:02d}").replace(tzinfo=PARIS).timestamp() * 1000)


async def seed_lamps(web: Web, earlier: list[dict[str, Any]] | None = None) -> None:
    await web.add_cabinet(GW, DIJON, 47.3221, 5.0415, cabinet="DIJ-001")
    await web.upload(GW, [
        *(earlier or []),
        sample(0, "lamp-1", at(DAY, 17), commanded_level_pct=100, level_pct=100),  # the agent's command
        sample(0, "lamp-1", at(DAY, 17, 0, 30), lamp_on=True, level_pct=100, power_w=60.0, voltage_v=230.0,
               energy_wh=1000),
        sample(0, "lamp-1", at(DAY, 17, 10), lamp_on=True, level_pct=100, power_w=60.0, voltage_v=232.0,
               energy_wh=1010),
        sample(0, "lamp-1", at(DAY, 22), commanded_level_pct=50, level_pct=50),
        sample(0, "lamp-1", at(DAY, 22, 0, 30), lamp_on=True, level_pct=50, power_w=30.0, voltage_v=228.0,
               energy_wh=1300),
        sample(0, "lamp-1", at(DAY, 22, 10), lamp_on=True, level_pct=50, power_w=30.0, energy_wh=1305),
        sample(0, "lamp-2", at(DAY, 17, 0, 30), lamp_on=True, level_pct=100, power_w=40.0, energy_wh=50),
        event(0, "group:north", at(DAY, 22), "group_level", "info", level_pct=50, previous_pct=100,
              program="eco", mode="synchronised"),
        event(0, "lamp-1", at(DAY, 23), "lamp_failure", "major", group="north", commanded_pct=50, power_w=0.2),
        event(0, "lamp-1", at(DAY, 23, 30), "lamp_restored", "info", group="north", cleared="lamp_failure"),
    ])


async def test_a_lamps_day_by_hand(web: Web) -> None:
    await seed_lamps(web)
    ops = await web.add_operator()
    reply = await web.get(f"/control/api/lamps/{GW}/lamp-1?from={DAY}&to={DAY}", headers=ops)
    assert reply.status == 200, reply.doc
    doc = reply.doc
    chart = doc["series"]
    assert chart["bucket_ms"] == 0  # six samples: as they are
    assert chart["ts"] == [at(DAY, 17), at(DAY, 17, 0, 30), at(DAY, 17, 10), at(DAY, 22), at(DAY, 22, 0, 30),
                           at(DAY, 22, 10)]
    # the commanded level holds from one command to the next
    assert chart["level_commanded_pct"] == [100, 100, 100, 50, 50, 50]
    assert chart["power_w"] == [None, 60, 60, None, 30, 30]
    assert chart["voltage_v"] == [None, 230, 232, None, 228, None]
    # energy: 1000 -> 1010 -> 1300 -> 1305 = 305 Wh; burn: 17:00:30-17:10 (9.5 min), 22:00-22:00:30 after a
    # reading that said on (0.5 min), 22:00:30-22:10 (9.5 min); 17:10-22:00 is a gap over 15 min: 19.5 min
    assert doc["days"] == [{"day": DAY, "energy_kwh": 0.305, "burn_h": 0.325}]
    gw_day = (await web.get(f"/api/v1/gateways/{GW}/rollups/day?from={DAY}&to={DAY}", headers=ops)).doc
    assert gw_day["buckets"][0]["burn_h"] == 0.325  # the cabinet's rollup agrees (lamp-2's one reading burns nothing)
    assert [e["code"] for e in doc["events"]] == ["lamp_restored", "lamp_failure"]  # newest first
    assert doc["open_faults"] == []
    assert doc["group"]["group"] == "north" and doc["group"]["program"] == "eco" and doc["group"]["level_pct"] == 50
    assert doc["group"]["next_switch"] is None and doc["group"]["next_switch_note"]
    assert doc["latest"]["ts_ms"] == at(DAY, 22, 10)


async def test_the_next_switch_is_the_one_the_gateway_sent_while_it_is_ahead(web: Web) -> None:
    import time as clock

    await seed_lamps(web)
    ops = await web.add_operator()
    ahead = int(clock.time() * 1000) + 3_600_000
    await web.upload(GW, [event(0, "group:north", int(clock.time() * 1000) - 60_000, "group_level", "info",
                                level_pct=50, previous_pct=100, program="eco", mode="synchronised",
                                next_switch_ms=ahead, next_level_pct=0)])
    doc = (await web.get(f"/control/api/lamps/{GW}/lamp-1?from={DAY}&to={DAY}", headers=ops)).doc
    assert doc["group"]["next_switch"] == {"at": ahead, "level_pct": 0} and doc["group"]["next_switch_note"] is None
    # a switch that has passed is not shown as the next one: the note says why
    await web.upload(GW, [event(0, "group:north", int(clock.time() * 1000) - 30_000, "group_level", "info",
                                level_pct=0, previous_pct=50, program="eco", mode="synchronised",
                                next_switch_ms=int(clock.time() * 1000) - 1, next_level_pct=50)])
    doc = (await web.get(f"/control/api/lamps/{GW}/lamp-1?from={DAY}&to={DAY}", headers=ops)).doc
    assert doc["group"]["next_switch"] is None and doc["group"]["next_switch_note"]


async def test_the_commanded_level_before_the_range_holds_into_it(web: Web) -> None:
    await seed_lamps(web)
    ops = await web.add_operator()
    doc = (await web.get(f"/control/api/lamps/{GW}/lamp-1?from={at(DAY, 22, 5)}&to={at(DAY, 23)}",
                         headers=ops)).doc
    assert doc["series"]["ts"] == [at(DAY, 22, 10)]
    assert doc["series"]["level_commanded_pct"] == [50]
    # the first reading's counter delta is taken from the reading before the range: 1305 - 1300
    assert doc["days"] == [{"day": DAY, "energy_kwh": 0.005, "burn_h": (9 * 60 + 30) / 3600}]


async def test_a_long_range_comes_in_buckets(web: Web) -> None:
    await web.add_cabinet(GW, DIJON)
    ops = await web.add_operator()
    start = at("2026-11-20", 1)  # 00:00 UTC: a multiple of every bucket
    # 2,100 readings a minute apart (35 h): over RAW_MAX_POINTS, so 5-minute buckets (420 of them)
    records = [sample(0, "lamp-9", start + i * 60_000, power_w=float(i % 10), lamp_on=True) for i in range(2100)]
    for part in range(0, len(records), 700):
        await web.upload(GW, records[part:part + 700])
    doc = (await web.get(f"/control/api/lamps/{GW}/lamp-9?from={start}&to={start + 2099 * 60_000}",
                         headers=ops)).doc
    chart = doc["series"]
    assert chart["bucket_ms"] == 300_000
    assert len(chart["ts"]) == 420 and chart["ts"][:2] == [start, start + 300_000]
    # minutes 0-4 draw 0..4 W (mean 2), minutes 5-9 draw 5..9 W (mean 7), and so on
    assert chart["power_w"][:4] == [2.0, 7.0, 2.0, 7.0] and set(chart["power_w"]) == {2.0, 7.0}


async def test_bad_parameters_are_problems(web: Web) -> None:
    await seed_lamps(web)
    ops = await web.add_operator()
    for query, parameter in (("from=yesterday", "from"), ("from=2026-11-28T10:00:00", "from"),
                             ("from=2026-01-01&to=2026-11-28", "from"), ("from=2026-11-29&to=2026-11-28", "from")):
        reply = await web.get(f"/control/api/lamps/{GW}/lamp-1?{query}", headers=ops)
        assert reply.status == 400, query
        assert reply.content_type == "application/problem+json" and reply.doc["parameter"] == parameter
    assert (await web.get(f"/control/api/lamps/{GW}/lamp-404?from={DAY}&to={DAY}", headers=ops)).status == 404
    assert (await web.get(f"/control/api/lamps/gw-nope/lamp-1?from={DAY}&to={DAY}", headers=ops)).status == 404
    assert (await web.get(f"/control/api/junctions/{GW}/lamp-1?from={DAY}&to={DAY}", headers=ops)).status == 404
    assert (await web.get("/control/api/communes/99999/charts", headers=ops)).status == 404
    assert (await web.get(f"/control/api/communes/{DIJON}/charts?from=2024-01-01&to=2026-01-01",
                          headers=ops)).status == 400


async def test_a_cabinet(web: Web) -> None:
    await seed_lamps(web)
    ops = await web.add_operator()
    doc = (await web.get(f"/control/api/cabinets/{GW}/charts?from={DAY}&to={DAY}", headers=ops)).doc
    assert [lamp["device"] for lamp in doc["lamps"]] == ["lamp-1", "lamp-2"]
    assert doc["lamps"][0]["level_pct"] == 50 and doc["lamps"][1]["power_w"] == 40.0
    # lamp-1's 305 Wh; lamp-2's single reading is its counter's reference: nothing consumed
    assert [(d["day"], d["energy_kwh"]) for d in doc["days"]] == [(DAY, 0.305)]
    volts = doc["voltage"]
    assert volts["ts"] == [at(DAY, 17), at(DAY, 17, 10), at(DAY, 22)]  # minute buckets of the readings
    assert volts["mean"] == [230.0, 232.0, 228.0]
    assert [g["group"] for g in doc["groups"]] == ["north"]


async def test_a_junction_mode_and_plans(web: Web) -> None:
    await web.add_cabinet("gw-jaures", DIJON)
    ops = await web.add_operator()
    await web.upload("gw-jaures", [
        sample(0, "signals", at(DAY, 6), mode="normal", plan=1, stage=1, central=False),
        sample(0, "signals", at(DAY, 7), mode="normal", plan=2, stage=1, central=False),
        sample(0, "signals", at(DAY, 9), mode="normal", plan=1, stage=1, central=False),
        sample(0, "signals", at(DAY, 10), mode="yellow_flash", plan=0, stage=0, central=True),
        event(0, "signals", at(DAY, 10), "position_commanded", "info", position="yellow_flash"),
        # a detector's count names the junction: the map knows it by that name
        sample(0, "det-1", at(DAY, 10, 1), junction="jaures", approach="N", lane=1, interval=1, interval_s=60,
               count_veh=12, occupancy_pct=8.5),
    ])
    doc = (await web.get(f"/control/api/junctions/gw-jaures/signals?from={at(DAY, 6)}&to={at(DAY, 12)}",
                         headers=ops)).doc
    assert doc["current"]["mode"] == "yellow_flash" and doc["current"]["plan"] == 0
    # plan 1: 06-07 and 09-10 (2 h, entered twice); plan 2: 07-09 (2 h); flashing 10-12 (2 h)
    hours = {(p["mode"], p["plan"]): (p["duration_ms"] / 3_600_000, p["entered"]) for p in doc["plans"]}
    assert hours == {("normal", 1): (2.0, 2), ("normal", 2): (2.0, 1), ("yellow_flash", 0): (2.0, 1)}
    assert [e["code"] for e in doc["events"]] == ["position_commanded"]
    named = (await web.get(f"/control/api/junctions/jaures?from={at(DAY, 6)}&to={at(DAY, 12)}", headers=ops)).doc
    assert (named["junction"], named["gateway"], named["device"]) == ("jaures", "gw-jaures", "signals")
    assert named["plans"] == doc["plans"]
    assert (await web.get("/control/api/junctions/nowhere", headers=ops)).status == 404


def dark_hours(day: str) -> float:
    """Hours of civil night in a Paris day at Dijon: midnight to dawn, and dusk to the next midnight."""
    d = datetime.fromisoformat(day).date()
    obs = Observer(LAT, LON)
    midnight = datetime.combine(d, time(), PARIS)
    morning = dawn(obs, d, depression=6, tzinfo=PARIS) - midnight
    evening = datetime.combine(d + timedelta(days=1), time(), PARIS) - dusk(obs, d, depression=6, tzinfo=PARIS)
    return (morning + evening).total_seconds() / 3600


async def test_a_commune_against_its_previous_days_and_the_baseline(web: Web) -> None:
    # the previous period of a one-day range is the day before it: 940 -> 1000 Wh, 60 Wh
    await seed_lamps(web, [
        sample(0, "lamp-1", at("2026-11-27", 18), lamp_on=True, level_pct=100, power_w=60.0, energy_wh=940),
        sample(0, "lamp-1", at("2026-11-27", 19), lamp_on=True, level_pct=100, power_w=60.0, energy_wh=1000),
    ])
    ops = await web.add_operator()
    doc = (await web.get(f"/control/api/communes/{DIJON}/charts?from={DAY}&to={DAY}", headers=ops)).doc
    (day,) = doc["days"]
    assert day["energy_kwh"] == 0.305 and day["previous_day"] == "2026-11-27" and day["previous_kwh"] == 0.06
    # full power: lamp-1 60 W (60 W at 100 %, 30 W at 50 %), lamp-2 40 W
    assert doc["lamps"] == 2 and doc["installed_w"] == 100.0
    night = dark_hours(DAY)
    assert 13.5 < night < 14.5  # late November in Dijon: about 14 hours of civil night
    assert abs(day["night_h"] - night) < 1e-6
    assert abs(day["baseline_kwh"] - 100 * night / 1000) < 1e-6
    assert abs(doc["saved_vs_baseline_pct"] - 100 * (1 - 0.305 / (0.1 * night))) < 1e-6
