"""Open data on a real collector and both stores: the daily CSV and JSON equal the commune day
rollups (the NGSI-LD entities: test_web_ngsi*.py)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
from web_testkit import Web, event, sample

from collector.rollup import PARIS
from collector.territory import load_territory

DAY1, DAY2 = "2026-03-28", "2026-03-29"  # the spring-forward night in between


def at(day: str, hh: int, mm: int = 0) -> int:
    return int(datetime.fromisoformat(f"{day}T{hh:02d}:{mm:02d}:00").replace(tzinfo=PARIS).timestamp() * 1000)


async def seed(web: Web) -> None:
    await web.add_cabinet("gw-dijon-0001", "21231", 47.3221, 5.0415, cabinet="DIJ-001")
    await web.add_cabinet("gw-neuilly-0001", "21452", 47.2790, 5.1050)
    await web.upload("gw-dijon-0001", [
        sample(0, "lamp-1", at(DAY1, 21), energy_wh=1000, lamp_on=True, level_pct=100, power_w=61.5, voltage_v=231.0),
        sample(0, "lamp-1", at(DAY1, 21, 10), energy_wh=1010, lamp_on=True, level_pct=100, power_w=61.5),
        sample(0, "lamp-1", at(DAY1, 21, 20), energy_wh=1020, lamp_on=True, level_pct=70, power_w=43.0),
        sample(0, "lamp-1", at(DAY2, 21), energy_wh=1100, lamp_on=True, level_pct=70, power_w=43.0),
        sample(0, "lamp-1", at(DAY2, 21, 15), energy_wh=1111, lamp_on=True, level_pct=70, power_w=43.0,
               voltage_v=229.5, current_a=0.19),
        sample(0, "lamp-2", at(DAY2, 21), lamp_on=True, level_pct=70, power_w=0.3),
        event(0, "lamp-2", at(DAY2, 21, 5), "lamp_failure", "major", commanded_pct=70, power_w=0.3),
        sample(0, "ble:ruuvi AA:BB", at(DAY2, 21, 1), temperature_c=7.5, humidity_pct=81.0, battery_pct=88,
               rssi_dbm=-71),
    ])
    await web.upload("gw-neuilly-0001", [
        sample(0, "water-1", at(DAY1, 3), volume_m3=500.0),
        sample(0, "water-1", at(DAY2, 3), volume_m3=502.25),
        sample(0, "water-1", at(DAY2, 4), volume_m3=502.5),
        event(0, "water-1", at(DAY2, 4, 1), "water_leak", "major", night_flow_m3h=0.25),
    ])


async def test_daily_json_and_csv_equal_the_rollups(web: Web) -> None:
    await seed(web)
    reply = await web.get(f"/opendata/v1/communes/daily.json?from={DAY1}&to={DAY2}")
    assert (reply.status, reply.content_type) == (200, "application/json")
    doc = reply.doc
    assert doc["license"].startswith("Licence Ouverte") and doc["from"] == DAY1 and doc["to"] == DAY2
    expected = []
    territory = load_territory()
    for c in territory.communes.values():
        for b in await web.store.rollups("commune", "day", c.insee, DAY1, DAY2):
            expected.append({"date": b.bucket, "commune_insee": c.insee, "commune_name": c.name,
                             "energy_kwh": b.energy_wh / 1000, "burn_h": b.burn_ms / 3_600_000,
                             "lamp_faults": b.lamps_faulty, "water_m3": b.water_m3})
    assert sorted(doc["rows"], key=lambda r: (r["date"], r["commune_insee"])) == \
        sorted(expected, key=lambda r: (r["date"], r["commune_insee"]))
    by = {(r["date"], r["commune_insee"]): r for r in doc["rows"]}
    # and what those rollups must be, from the readings themselves
    assert by[(DAY1, "21231")]["energy_kwh"] == pytest.approx(0.020)
    assert by[(DAY2, "21231")]["energy_kwh"] == pytest.approx(0.091)  # 1020 -> 1111 Wh
    assert by[(DAY1, "21231")]["burn_h"] == pytest.approx(20 / 60)
    assert by[(DAY2, "21231")]["burn_h"] == pytest.approx(15 / 60)
    assert by[(DAY2, "21231")]["lamp_faults"] == 1 and by[(DAY1, "21231")]["lamp_faults"] == 0
    assert by[(DAY2, "21452")]["water_m3"] == pytest.approx(2.5)
    assert by[(DAY2, "21452")]["commune_name"] == "Neuilly-Crimolois"

    reply = await web.get(f"/opendata/v1/communes/daily.csv?from={DAY1}&to={DAY2}")
    assert reply.status == 200 and reply.content_type == "text/csv"
    assert reply.headers["Content-Type"] == "text/csv; charset=utf-8; header=present"
    assert "attachment" in reply.headers["Content-Disposition"]
    # a header row naming each column with its unit, the same units as the JSON's
    assert doc["units"] == {"energy_kwh": "kWh", "burn_h": "h", "lamp_faults": "lamps", "water_m3": "m3"}
    header, *lines = list(csv.reader(io.StringIO(reply.text)))
    assert header == ["date", "commune_insee", "commune_name", "energy_kwh (kWh)", "burn_h (h)",
                      "lamp_faults (lamps)", "water_m3 (m3)"]
    assert [h.split(" (")[0] for h in header] == doc["fields"]
    assert [(r[0], r[1], r[2], float(r[3]), float(r[4]), int(r[5]), float(r[6])) for r in lines] == \
        [tuple(r[f] for f in doc["fields"]) for r in doc["rows"]]

    # one commune, by its current code or a former one
    for code in ("21452", "21213"):
        rows = (await web.get(f"/opendata/v1/communes/daily.json?commune={code}&from={DAY1}&to={DAY2}")).doc["rows"]
        assert {r["commune_insee"] for r in rows} == {"21452"} and len(rows) == 2
    rows = (await web.get(f"/opendata/v1/communes/daily.json?from={DAY2}&to={DAY2}")).doc["rows"]
    assert {r["date"] for r in rows} == {DAY2}


@pytest.mark.parametrize(("query", "status"), [
    ("from=2026-03-29&to=2026-03-28", 400), ("from=2025-01-01&to=2026-03-28", 400), ("from=yesterday", 400),
    ("commune=99999", 404),
])
async def test_bad_open_data_queries_are_refused(web: Web, query: str, status: int) -> None:
    reply = await web.get("/opendata/v1/communes/daily.json?" + query)
    assert (reply.status, reply.content_type) == (status, "application/problem+json")


async def test_open_data_never_carries_a_reporter(web: Web) -> None:
    await seed(web)
    form = {"jurisdiction_id": "21231", "service_code": "lamp-out", "lat": "47.3221", "long": "5.0415",
            "first_name": "Prudence", "last_name": "Vaillant-Oubli", "email": "prudence@example.net",
            "phone": "0380000000", "attribute[lamp_id]": "gw-dijon-0001/lamp-2"}
    assert (await web.request("POST", "/open311/v2/requests.json", data=form)).status == 201
    today = datetime.now(PARIS).date()
    texts = []
    for path in ("/opendata/v1/communes/daily.json", "/opendata/v1/communes/daily.csv",
                 f"/opendata/v1/communes/daily.json?from={today - timedelta(days=365)}&to={today}",
                 *(f"/ngsi-ld/v1/entities?type={t}&limit=1000" for t in
                   ("Streetlight", "StreetlightControlCabinet", "StreetlightGroup", "WaterConsumptionObserved", "Device"))):
        reply = await web.get(path)
        assert reply.status == 200
        texts.append(reply.text)
    blob = "\n".join(texts)
    for secret in ("Prudence", "Vaillant", "prudence@example.net", "0380000000"):
        assert secret not in blob
