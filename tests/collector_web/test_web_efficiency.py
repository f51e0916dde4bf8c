"""The public efficiency figures on a real collector and both stores, worked out by hand from the
readings, faults and residents' reports of a month; served without a login even with
--operator-login; its CSV in the plain form and the French spreadsheet form."""

from __future__ import annotations

import csv
import io
from datetime import datetime, time, timedelta

import aiohttp
from astral import Observer
from astral.sun import dawn, dusk
from web_testkit import Web, event, sample

from collector.app import create_app, start
from collector.reports.model import parse_new_report
from collector.rollup import PARIS
from collector.store import Store
from collector.territory import load_territory

GW, DIJON = "gw-dijon-0001", "21231"
LAT, LON = 47.3220, 5.0415  # Dijon's centre in configs/territory.json


def at(day: str, hh: int, mm: int = 0, ss: int = 0) -> int:
    return int(datetime.fromisoformat(f"{day}T{hh:02d}:{mm:02d}:{ss:02d}").replace(tzinfo=PARIS).timestamp() * 1000)


def dark_hours(*days: int) -> float:
    """Civil night (sun 6° below the horizon) in Dijon on these days of November 2026, Paris days: for each
    day, midnight to dawn and dusk to the next midnight."""
    obs, total = Observer(LAT, LON), 0.0
    for n in days:
        d = datetime(2026, 11, n).date()
        midnight, next_midnight = datetime.combine(d, time(), PARIS), datetime.combine(d + timedelta(days=1), time(),
                                                                                        PARIS)
        total += ((dawn(obs, d, depression=6, tzinfo=PARIS) - midnight)
                  + (next_midnight - dusk(obs, d, depression=6, tzinfo=PARIS))).total_seconds() / 3600
    return total


async def seed(web: Web) -> None:
    await web.add_cabinet(GW, DIJON, 47.3221, 5.0415)
    await web.upload(GW, [
        sample(0, "lamp-1", at("2026-11-28", 17, 0, 30), lamp_on=True, level_pct=100, power_w=60.0, energy_wh=1000),
        sample(0, "lamp-1", at("2026-11-28", 22, 0, 30), lamp_on=True, level_pct=50, power_w=30.0, energy_wh=1300),
        sample(0, "lamp-2", at("2026-11-28", 17, 0, 30), lamp_on=True, level_pct=100, power_w=40.0, energy_wh=50),
        event(0, "lamp-2", at("2026-11-28", 23), "lamp_failure", "major", group="g", power_w=0.1),
        event(0, "signals", at("2026-11-28", 23), "lamp_failure", "major", groups=[3]),  # a signal's: not a lamp
        event(0, "lamp-2", at("2026-11-29", 9), "lamp_restored", "info", group="g", cleared="lamp_failure"),
        event(0, "lamp-1", at("2026-11-29", 20), "lamp_failure", "major", group="g", power_w=0.1),
        event(0, "lamp-1", at("2026-11-29", 21), "lamp_restored", "info", group="g", cleared="dimming_failure"),
        event(0, "lamp-1", at("2026-11-29", 22), "lamp_restored", "info", group="g", cleared="lamp_failure"),
        sample(0, "lamp-2", at("2026-11-29", 17, 0, 30), lamp_on=True, level_pct=100, power_w=40.0, energy_wh=90),
    ])
    territory = load_territory()
    fields = {"jurisdiction_id": DIJON, "service_code": "pothole", "lat": "47.3221", "long": "5.0415",
              "description": "Lampadaire éteint"}
    first = await web.store.submit_report(parse_new_report(fields, territory), "hash-a", at("2026-11-28", 10))
    await web.store.submit_report(parse_new_report(fields, territory), "hash-b", at("2026-11-29", 12))
    await web.store.set_report_state(first.request.id, "resolved", "Réparé", None, "alice", at("2026-11-29", 10))


async def test_a_month_by_hand(web: Web) -> None:
    await seed(web)
    reply = await web.get(f"/opendata/v1/efficiency.json?from=2026-10&to=2026-11&commune={DIJON}")
    assert reply.status == 200, reply.text
    doc = reply.doc
    assert doc["factors"]["eur_per_kwh"] == 0.20 and doc["factors"]["co2_kg_per_kwh"] == 0.052
    assert "ADEME" in doc["factors"]["co2_source"] and doc["license"].startswith("Licence Ouverte")
    october, november = doc["rows"]
    assert (october["month"], november["month"]) == ("2026-10", "2026-11")
    n = november
    assert n["partial"] is False and n["lamps"] == 2
    # lamp-1 1000 -> 1300 Wh on the 28th, lamp-2 50 -> 90 Wh on the 29th (a first reading is a reference)
    assert n["energy_kwh"] == 0.34
    # full power 60 W (lamp-1: 60 W at 100 %, 30 W at 50 %) + 40 W (lamp-2) = 100 W, on the two days the
    # commune sent data (the 28th and the 29th: a day without readings is no saving)
    baseline = 0.1 * dark_hours(28, 29)
    assert 27 < dark_hours(28, 29) < 29  # about 14 h of night a day
    assert abs(n["baseline_kwh"] - baseline) < 0.001
    assert abs(n["saved_kwh"] - (baseline - 0.34)) < 0.002
    assert abs(n["saved_pct"] - 100 * (baseline - 0.34) / baseline) < 0.01
    assert (n["energy_eur"], n["energy_co2_kg"]) == (0.07, 0.02)  # 0.068 EUR, 0.01768 kg
    # the nights of the 28th and the 29th x 2 lamps; lamp-2 dark on the 28th's, lamp-1 on the 29th's (a
    # dimming fault's restoration does not end a lamp failure)
    assert (n["lamp_nights"], n["lamp_nights_lit"], n["availability_pct"]) == (4, 2, 50.0)
    assert (n["repairs"], n["repair_median_h"], n["faults_open"]) == (2, 6.0, 0)  # 10 h and 2 h
    assert (n["reports_received"], n["reports_resolved"], n["report_resolution_median_h"]) == (2, 1, 24.0)
    o = october
    # October: no reading, so nothing to compare (no baseline, no lamp-night)
    assert (o["energy_kwh"], o["baseline_kwh"], o["saved_pct"], o["lamp_nights"], o["availability_pct"], o["repairs"],
            o["repair_median_h"]) == (0.0, 0.0, None, 0, None, 0, None)
    assert o["reports_received"] == 0 and o["report_resolution_median_h"] is None


async def test_every_commune_has_a_row_a_month(web: Web) -> None:
    await seed(web)
    doc = (await web.get("/opendata/v1/efficiency.json?from=2026-11&to=2026-11")).doc
    assert sorted(r["commune_insee"] for r in doc["rows"]) == sorted(load_territory().communes)
    # the metropolis pooled: only Dijon sent anything; its medians are over all the repairs and reports
    (total,) = doc["total"]
    assert (total["month"], total["lamps"], total["energy_kwh"], total["lamp_nights"], total["lamp_nights_lit"]) == \
        ("2026-11", 2, 0.34, 4, 2)
    assert (total["repair_median_h"], total["reports_received"], total["report_resolution_median_h"]) == (6.0, 2, 24.0)


async def test_csv_plain_and_for_french_spreadsheets(web: Web) -> None:
    await seed(web)
    query = f"from=2026-11&to=2026-11&commune={DIJON}"
    async with web.session.get(f"{web.url}/opendata/v1/efficiency.csv?{query}") as resp:
        plain = await resp.read()
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
    async with web.session.get(f"{web.url}/opendata/v1/efficiency.csv?{query}&format=excel-fr") as resp:
        excel = await resp.read()
        assert "excel-fr" in resp.headers["Content-Disposition"]
    assert not plain.startswith(b"\xef\xbb\xbf") and excel.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(plain.decode("utf-8"))))
    fr = list(csv.DictReader(io.StringIO(excel.decode("utf-8-sig")), delimiter=";"))
    assert len(rows) == len(fr) == 1
    assert rows[0]["energy_kwh (kWh)"] == "0.34" and fr[0]["energy_kwh (kWh)"] == "0,34"
    assert rows[0]["availability_pct (%)"] == "50.0" and fr[0]["availability_pct (%)"] == "50,0"
    assert rows[0]["commune_name"] == fr[0]["commune_name"] == "Dijon"
    assert rows[0]["partial"] == "false" and fr[0]["partial"] == "non"
    assert excel.decode("utf-8-sig").splitlines()[0].count(";") == len(rows[0]) - 1
    bad = await web.get(f"/opendata/v1/efficiency.csv?{query}&format=xlsx")
    assert bad.status == 400 and bad.doc["parameter"] == "format"


async def test_bad_months_are_problems(web: Web) -> None:
    for query, parameter in (("from=2026-13", "from"), ("to=26-11", "to"), ("from=2026-11&to=2026-10", "from"),
                             ("from=2020-01&to=2026-11", "from")):
        reply = await web.get(f"/opendata/v1/efficiency.json?{query}")
        assert reply.status == 400 and reply.doc["parameter"] == parameter, query
    assert (await web.get("/opendata/v1/efficiency.json?commune=99999")).status == 404


async def test_public_without_login_even_with_operator_login(store: Store) -> None:
    runner, url = await start(create_app(store, operator_login=True), "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as session:
            for path, kind in (("/efficiency/", "text/html"), ("/opendata/v1/efficiency.json", "application/json"),
                               ("/efficiency/assets/efficiency.js", "text/javascript"),
                               ("/efficiency/assets/efficiency.css", "text/css")):
                async with session.get(url + path, allow_redirects=False) as resp:
                    assert (resp.status, resp.content_type) == (200, kind), path
            for path in ("/efficiency/assets/../index.html", "/efficiency/assets/%2e%2e/app.py",
                         "/efficiency/assets/vendor/../../assets_api.py", "/efficiency/assets/nope.js"):
                async with session.get(url + path, allow_redirects=False) as resp:
                    assert resp.status == 404, path
            async with session.get(url + "/control/api/lamps/gw/lamp", allow_redirects=False) as resp:
                assert resp.status in (302, 401)  # the asset pages' data stays for operators
    finally:
        await runner.cleanup()
