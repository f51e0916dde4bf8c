"""Small truths of the read API, on a real collector and both stores: hour rollups take the same
date and time forms as day ones, /control leads to the page, and the samples of a device the
collector never heard of are a 404, not an empty list."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

import pytest
from web_testkit import Web, event, sample

from collector.rollup import HOUR_MS, PARIS

DIJON = "21231"
DST_DAY = "2026-03-29"  # Paris springs forward: a day of 23 hours


def at(day: str, hh: int, mm: int = 0) -> int:
    return int(datetime.fromisoformat(f"{day}T{hh:02d}:{mm:02d}:00").replace(tzinfo=PARIS).timestamp() * 1000)


async def seed(web: Web) -> None:
    await web.add_cabinet("gw-dijon-0001", DIJON, 47.3221, 5.0415)
    await web.upload("gw-dijon-0001", [
        sample(0, "lamp-1", at("2026-03-28", 23, 30), energy_wh=1000, lamp_on=True, power_w=60.0),
        sample(0, "lamp-1", at(DST_DAY, 0, 10), energy_wh=1010, lamp_on=True, power_w=60.0),
        sample(0, "lamp-1", at(DST_DAY, 21, 10), energy_wh=1020, lamp_on=True, power_w=60.0),
        sample(0, "lamp-1", at(DST_DAY, 23, 50), energy_wh=1030, lamp_on=True, power_w=60.0),
        sample(0, "lamp-1", at("2026-03-30", 0, 20), energy_wh=1040, lamp_on=True, power_w=60.0),
    ])


async def buckets(web: Web, period: str, first: str, last: str) -> list[int | str]:
    reply = await web.get(f"/api/v1/rollups/{period}?from={quote(first)}&to={quote(last)}")
    assert reply.status == 200, reply.text
    return [b["bucket"] for b in reply.doc["buckets"]]


async def test_hour_rollups_take_dates_date_times_and_epoch_ms(web: Web) -> None:
    await seed(web)
    day_start, next_day = at(DST_DAY, 0), at("2026-03-30", 0)
    assert (next_day - day_start) // HOUR_MS == 23
    # a date is its whole Paris day, from its first hour to its last
    by_date = await buckets(web, "hour", DST_DAY, DST_DAY)
    assert by_date == [day_start, at(DST_DAY, 21), at(DST_DAY, 23)]
    # the same hours written as date-times with a zone, or as epoch ms (floored to the hour)
    assert await buckets(web, "hour", "2026-03-29T00:00:00+01:00", "2026-03-29T21:59:00Z") == by_date
    assert await buckets(web, "hour", str(day_start + 59_000), str(next_day - 1)) == by_date
    assert await buckets(web, "hour", "20260329", "20260329") == by_date  # ISO 8601's basic form
    assert await buckets(web, "hour", DST_DAY, "2026-03-30") == [*by_date, next_day]


async def test_day_rollups_take_the_same_forms(web: Web) -> None:
    await seed(web)
    days = await buckets(web, "day", DST_DAY, DST_DAY)
    assert days == [DST_DAY]
    # a date-time or epoch ms names the Paris day it falls in: 23:30 UTC on the 28th is already the 29th
    # in Paris (UTC+1), 22:30 UTC on the 29th already the 30th (UTC+2 since that night)
    assert await buckets(web, "day", "2026-03-29T12:00:00+02:00", str(at(DST_DAY, 23, 59))) == days
    assert await buckets(web, "day", "2026-03-28T23:30:00Z", "2026-03-29T22:30:00Z") == [DST_DAY, "2026-03-30"]
    assert await buckets(web, "day", "2026-03-28T22:30:00Z", "2026-03-28T22:30:00Z") == ["2026-03-28"]


@pytest.mark.parametrize(("period", "query", "parameter", "fragment"), [
    ("hour", "from=2026-03-29T10:00:00&to=2026-03-30", "from", "no time zone"),
    ("day", "from=2026-03-29&to=yesterday", "to", "epoch ms"),
    ("hour", "from=-5&to=10", "from", "epoch ms must be in"),
    ("hour", "from=2026-03-29&to=9999-12-31", "to", "past year 9999"),
    ("day", "from=2026-03-29&to=9999-12-31T23:00:00-14:00", "to", "past year 9999"),
])
async def test_a_bound_in_no_form_is_a_400_naming_it(web: Web, period: str, query: str, parameter: str,
                                                     fragment: str) -> None:
    reply = await web.get(f"/api/v1/rollups/{period}?{query}")
    assert (reply.status, reply.content_type) == (400, "application/problem+json"), reply.text
    assert reply.doc["parameter"] == parameter and fragment in reply.doc["detail"], reply.doc


async def test_control_without_its_slash_leads_to_the_page(web: Web) -> None:
    for path, target in (("/control", "/control/"), ("/control?commune=21231", "/control/?commune=21231")):
        reply = await web.get(path, allow_redirects=False)
        assert (reply.status, reply.headers["Location"]) == (301, target)
    reply = await web.get("/control")
    assert (reply.status, reply.content_type) == (200, "text/html")


async def test_the_samples_of_an_unknown_device_are_a_404_problem(web: Web) -> None:
    await seed(web)
    await web.upload("gw-dijon-0001", [event(0, "lamp-2", at(DST_DAY, 21), "lamp_failure")])
    known = await web.get("/api/v1/gateways/gw-dijon-0001/devices/lamp-1/samples?limit=2")
    assert known.status == 200 and len(known.doc["samples"]) == 2
    # a device the collector knows from its events only: known, and no sample yet
    quiet = await web.get("/api/v1/gateways/gw-dijon-0001/devices/lamp-2/samples")
    assert (quiet.status, quiet.doc["samples"]) == (200, [])
    for path in ("/api/v1/gateways/gw-dijon-0001/devices/lamp-99/samples",
                 "/api/v1/gateways/gw-nowhere/devices/lamp-1/samples"):
        reply = await web.get(path)
        assert (reply.status, reply.content_type) == (404, "application/problem+json"), path
        assert reply.doc["status"] == 404 and reply.doc["detail"], reply.doc
    reply = await web.get("/api/v1/gateways/gw-dijon-0001/devices/lamp-99/samples")
    assert reply.doc["type"].endswith("unknown-device") and "lamp-99" in reply.doc["detail"]
