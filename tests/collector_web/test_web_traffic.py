"""Traffic counts at the collector, on a real server and both stores: rollups per detector, lane, approach
and junction; a faulty detector flags its buckets; each interval counts once however often it arrives;
open data per lane and interval as CSV and NGSI-LD TrafficFlowObserved; the control centre's panel."""

from __future__ import annotations

import csv
import io
from datetime import date
from urllib.parse import quote

from ngsi_testkit import schema_errors
from web_counts import JUNCTION, interval_sample
from web_testkit import Web, sample

from collector.traffic.routes import day_bounds

#: Monday 1 June 2026, 08:00 in Paris (06:00 UTC): interval index of that minute
I0 = 1_780_293_600 // 60
LD = {"Accept": "application/ld+json"}


def quarter(n: int) -> list[dict]:
    """Four detectors over `n` minutes from I0; N2 stuck on in the third minute."""
    out = []
    for k in range(n):
        i = I0 + k
        out += [interval_sample("N1", i, 10 + k, speed=40.0 + k), interval_sample("N1b", i, 10 + k),
                interval_sample("N2", i, 0 if k == 2 else 7, occupancy=100.0 if k == 2 else 8.0,
                                fault="detector_stuck_on" if k == 2 else None),
                interval_sample("E1", i, 3)]
    return out


async def rollup(web: Web, level: str, period: str) -> list[dict]:
    reply = await web.get(f"/api/v1/traffic/junctions/{JUNCTION}/rollups?level={level}&period={period}"
                          "&from=2026-06-01&to=2026-06-01")
    assert reply.status == 200, reply.text
    return reply.doc["buckets"]


async def test_rollups_per_level_and_period_and_a_faulty_detector_flags_its_buckets(web: Web) -> None:
    await web.add_cabinet("gw-jaures", "21231", 47.33, 5.05)
    await web.upload("gw-jaures", quarter(20))  # 08:00-08:20: a whole quarter hour and five minutes of the next
    lanes = {(b["key"], b["bucket"]): b for b in await rollup(web, "lane", "15min")}
    first = lanes[("V1.1", "2026-06-01T08:00:00+02:00")]
    assert first["vehicles"] == sum(10 + k for k in range(15))  # the pair's second loop is not counted again
    assert first["speed_kmh"] == round(sum((40 + k) * (10 + k) for k in range(15)) / first["vehicles"], 1)
    assert not first["flagged"]
    v12 = lanes[("V1.2", "2026-06-01T08:00:00+02:00")]
    assert (v12["vehicles"], v12["flagged"], v12["faulty_detectors"]) == (7 * 14, True, ["signals-1.N2"])
    assert not lanes[("V1.2", "2026-06-01T08:15:00+02:00")]["flagged"]
    approaches = {(b["key"], b["bucket"]): b for b in await rollup(web, "approach", "hour")}
    v1 = approaches[("V1", "2026-06-01T08:00:00+02:00")]
    assert v1["vehicles"] == sum(10 + k for k in range(20)) + 7 * 19 and v1["flagged"]
    assert approaches[("V3", "2026-06-01T08:00:00+02:00")] == {**approaches[("V3", "2026-06-01T08:00:00+02:00")],
                                                                "vehicles": 60, "flagged": False}
    [day] = await rollup(web, "junction", "day")
    assert (day["key"], day["bucket"], day["vehicles"]) == (JUNCTION, "2026-06-01", sum(10 + k for k in range(20))
                                                            + 7 * 19 + 60)
    assert day["flagged"] and day["faulty_detectors"] == ["signals-1.N2"]
    detectors = {b["key"]: b for b in await rollup(web, "detector", "day")}
    assert detectors["signals-1.N1b"]["vehicles"] == detectors["signals-1.N1"]["vehicles"]
    assert detectors["signals-1.N2"]["occupancy_pct"] == round((100 + 8 * 19) / 20, 2)

    profile = (await web.get(f"/api/v1/traffic/junctions/{JUNCTION}/profile?date=2026-06-01")).doc
    assert len(profile["quarters"]) == 96 and profile["vehicles"] == day["vehicles"] and profile["flagged"]
    q8 = profile["quarters"][32]
    assert q8["from"] == "2026-06-01T08:00:00+02:00" and q8["flagged"] and q8["vehicles"] == first["vehicles"] + 7 * 14 + 45
    assert profile["quarters"][0]["vehicles"] is None

    [panel] = (await web.get("/api/v1/traffic/junctions")).doc
    assert (panel["junction"], panel["gateway"], panel["to"]) == (JUNCTION, "gw-jaures", "2026-06-01T08:20:00+02:00")
    assert panel["vehicles"] == day["vehicles"] and panel["faulty_detectors"] == ["signals-1.N2"]


async def test_each_interval_counts_once_whatever_arrives_again(web: Web) -> None:
    await web.add_cabinet("gw-jaures", "21231")
    batch = quarter(5)
    await web.upload("gw-jaures", batch)
    cab = web.cabinets["gw-jaures"]
    cab.seq = 0  # the same batch again, same seqs: the uploader's resend after a lost ack
    again = await web.upload("gw-jaures", batch)
    assert (again["stored"], again["duplicates"]) == (0, len(batch))
    # the agent read an interval twice (a crash between its journal and its cursor): new seqs, same interval
    reread = await web.upload("gw-jaures", [*quarter(5)[-4:], sample(0, "lamp-1", 1_780_294_000_000, power_w=3.0)])
    assert reread["stored"] == 5
    [day] = await rollup(web, "junction", "day")
    assert day["vehicles"] == sum(10 + k for k in range(5)) + 7 * 4 + 15
    lo, hi = day_bounds(date(2026, 6, 1))
    assert len(await web.store.traffic_intervals(JUNCTION, lo, hi)) == 20


async def test_open_data_per_lane_and_interval_as_csv_and_ngsi(web: Web) -> None:
    await web.add_cabinet("gw-jaures", "21231", 47.33, 5.05)
    await web.upload("gw-jaures", quarter(3))
    reply = await web.get(f"/opendata/v1/traffic/{JUNCTION}/2026-06-01.csv")
    assert reply.status == 200 and reply.content_type == "text/csv"
    rows = list(csv.reader(io.StringIO(reply.text)))
    assert rows[0][:8] == ["date_observed_from", "date_observed_to", "junction", "approach", "lane", "vehicles (veh)",
                           "occupancy_pct (%)", "speed_kmh (km/h)"]
    body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert len(body) == 3 * 3  # three lanes (the pair is one lane), three intervals
    n2 = [r for r in body if (r["approach"], r["lane"]) == ("V1", "2")]
    assert [(r["vehicles (veh)"], r["flagged"], r["detector_faults"]) for r in n2] == [
        ("7", "0", ""), ("7", "0", ""), ("0", "1", "signals-1.N2:detector_stuck_on")]
    assert n2[0]["date_observed_from"] == "2026-06-01T08:00:00+02:00"
    assert (await web.get(f"/opendata/v1/traffic/{JUNCTION}/2026-06-02.csv")).text.count("\r\n") == 1
    assert (await web.get("/opendata/v1/traffic/nowhere/2026-06-01.csv")).status == 404
    assert (await web.get(f"/opendata/v1/traffic/{JUNCTION}/2026-13-01.csv")).status == 400

    entities = (await web.get("/ngsi-ld/v1/entities?type=TrafficFlowObserved&limit=100&options=keyValues",
                              headers=LD)).doc
    assert len(entities) == 9
    for e in entities:
        assert schema_errors(e) == [], (e["id"], schema_errors(e))
    by = {(e["laneId"], e["name"], e["dateObservedFrom"]): e for e in entities}
    one = by[(1, f"{JUNCTION} V1 lane 1", "2026-06-01T06:01:00Z")]
    assert (one["intensity"], one["averageVehicleSpeed"], one["dateObservedTo"]) == (11, 41.0, "2026-06-01T06:02:00Z")
    assert one["occupancy"] == 0.1 and one["location"]["coordinates"] == [5.05, 47.33]
    single = await web.get("/ngsi-ld/v1/entities/" + quote(one["id"], safe="") + "?options=keyValues", headers=LD)
    assert single.status == 200 and single.doc["intensity"] == 11
    missing = one["id"].replace("T060100Z", "T070100Z")
    assert (await web.get("/ngsi-ld/v1/entities/" + quote(missing, safe=""), headers=LD)).status == 404


async def test_bad_queries_are_clear_errors(web: Web) -> None:
    await web.add_cabinet("gw-jaures", "21231")
    await web.upload("gw-jaures", quarter(1))
    base = f"/api/v1/traffic/junctions/{JUNCTION}"
    assert (await web.get(base + "/rollups?level=street")).status == 400
    assert (await web.get(base + "/rollups?period=week")).status == 400
    assert (await web.get(base + "/rollups?from=2026-06-02&to=2026-06-01")).status == 400
    assert (await web.get(base + "/rollups?from=2026-01-01&to=2026-06-01")).status == 400
    assert (await web.get("/api/v1/traffic/junctions/nowhere/profile")).status == 404
    # a sample that says it is a count but is not whole is stored, and counts nothing
    await web.upload("gw-jaures", [sample(0, "signals-1.N9", 1_780_294_000_000, interval="x", count_veh=-3)])
    [day] = await rollup(web, "junction", "day")
    assert day["vehicles"] == 10 + 7 + 3


async def test_the_control_centre_shows_the_circulation_panel(web: Web) -> None:
    page = await web.get("/control/")
    assert '<script src="/control/assets/traffic.js"></script>' in page.text
    script = await web.get("/control/assets/traffic.js")
    assert script.status == 200 and "/api/v1/traffic/junctions" in script.text and "Circulation" in script.text
    assert "innerHTML" not in script.text  # every value goes in as text
