"""Traffic counts over HTTP: operators' reads, the control centre's panel and open data.

    GET /api/v1/traffic/junctions                      each junction: the last hour of counts it sent
    GET /api/v1/traffic/junctions/{junction}/rollups   ?level=detector|lane|approach|junction
                                                       &period=15min|hour|day&from=&to= (days, Paris)
    GET /api/v1/traffic/junctions/{junction}/profile   ?date=: the day's flow per quarter hour
    GET /opendata/v1/traffic/{junction}/{day}.csv      open data: per lane and interval (no login)

The /api/v1 routes are for operators when the collector runs with `--operator-login`
(collector.access), like the rest of the read API. A bucket or an interval with a faulty
detector is `flagged`, and names it: its count is not silently low.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web

from collector.appkeys import STORE
from collector.params import date_param, invalid, json_response, page_of, paged_list_response
from collector.problem import Problem
from collector.traffic.rollup import HOUR_MS, LEVELS, PARIS, PERIODS, LaneInterval, lane_intervals, roll
from collector.traffic.store import QUARTER_MS

MAX_DAYS = 31
#: CSV columns, with their units in the header row ("vehicles (veh)")
CSV_FIELDS = ("date_observed_from", "date_observed_to", "junction", "approach", "lane", "vehicles", "occupancy_pct",
              "speed_kmh", "light_veh", "heavy_veh", "flagged", "detector_faults")
CSV_UNITS = {"vehicles": "veh", "occupancy_pct": "%", "speed_kmh": "km/h", "light_veh": "veh", "heavy_veh": "veh"}


def add_traffic_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/traffic/junctions", junctions)
    r.add_get("/api/v1/traffic/junctions/{junction}/rollups", rollups)
    r.add_get("/api/v1/traffic/junctions/{junction}/profile", profile)
    r.add_get("/opendata/v1/traffic/{junction}/{day}.csv", open_csv)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, PARIS).isoformat()


def day_bounds(day: date) -> tuple[int, int]:
    """[start, end) of a Paris day in UTC ms (23 or 25 hours on the days the clocks change)."""
    start = datetime(day.year, day.month, day.day, tzinfo=PARIS)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=PARIS)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def _today() -> date:
    return datetime.fromtimestamp(time.time(), PARIS).date()


async def _known(request: web.Request) -> str:
    junction = request.match_info["junction"]
    if junction not in {j for j, _, _ in await request.app[STORE].traffic_junctions()}:
        raise Problem(404, "unknown-junction", "Not Found", f"no counts from junction {junction[:100]!r}")
    return junction


async def junctions(request: web.Request) -> web.Response:
    """Each junction's last hour up to the newest interval it sent, with the detectors faulty in it; a
    page of the junctions (`limit`, `offset`: the Link header names the next, X-Total-Count counts them)."""
    store = request.app[STORE]
    out = []
    page, meta = page_of(request, await store.traffic_junctions())
    for junction, gateway, newest in page:
        rows = await store.traffic_intervals(junction, newest - HOUR_MS, newest + QUARTER_MS, gateway)
        if not rows:
            continue
        end = max(r.start_ms + r.length_s * 1000 for r in rows)
        recent = [r for r in rows if r.start_ms >= end - HOUR_MS]
        faulty = sorted({r.detector for r in recent if r.fault})
        out.append({"junction": junction, "gateway": gateway, "from": iso(end - HOUR_MS), "to": iso(end),
                    "vehicles": sum(r.vehicles for r in recent if r.lane_count),
                    "flagged": bool(faulty), "faulty_detectors": faulty})
    return paged_list_response(request, out, meta)


def _choice(request: web.Request, name: str, options: tuple[str, ...], default: str) -> str:
    value = request.query.get(name, default)
    if value not in options:
        raise invalid(name, f"{name} is one of {', '.join(options)}, got {value[:50]!r}")
    return value


async def rollups(request: web.Request) -> web.Response:
    junction = await _known(request)
    level = _choice(request, "level", LEVELS, "junction")
    period = _choice(request, "period", PERIODS, "hour")
    last = date_param(request.query["to"], "to") if "to" in request.query else _today()
    first = date_param(request.query["from"], "from") if "from" in request.query else last
    if first > last:
        raise invalid("from", "from is after to")
    if (last - first).days >= MAX_DAYS:
        raise invalid("from", f"at most {MAX_DAYS} days at once")
    lo, hi = day_bounds(first)[0], day_bounds(last)[1]
    buckets = roll(await request.app[STORE].traffic_quarters(junction, lo, hi), level, period)
    docs = [b.doc() for b in buckets]
    if period != "day":
        for d in docs:
            d["bucket"] = iso(int(d["bucket"]))
    return json_response({"junction": junction, "level": level, "period": period, "from": first.isoformat(),
                          "to": last.isoformat(), "buckets": docs})


async def profile(request: web.Request) -> web.Response:
    """The junction's flow per quarter hour of a day: every quarter of the day, empty ones with null."""
    junction = await _known(request)
    day = date_param(request.query["date"], "date") if "date" in request.query else _today()
    lo, hi = day_bounds(day)
    have = {b.bucket: b for b in roll(await request.app[STORE].traffic_quarters(junction, lo, hi), "junction", "15min")}
    quarters: list[dict[str, Any]] = []
    for start in range(lo, hi, QUARTER_MS):
        b = have.get(start)
        quarters.append({"from": iso(start), "vehicles": b.vehicles if b else None,
                         "flagged": bool(b and b.faulty), "faulty_detectors": sorted(b.faulty) if b else []})
    total = sum(q["vehicles"] or 0 for q in quarters)
    return json_response({"junction": junction, "date": day.isoformat(), "vehicles": total,
                          "flagged": any(q["flagged"] for q in quarters), "quarters": quarters})


def csv_row(li: LaneInterval) -> list[Any]:
    return [iso(li.start_ms), iso(li.end_ms), li.junction, li.approach, li.lane, li.vehicles, li.occupancy_pct,
            "" if li.speed_kmh is None else li.speed_kmh, "" if li.light is None else li.light,
            "" if li.heavy is None else li.heavy, int(bool(li.faults)), " ".join(li.faults)]


async def open_csv(request: web.Request) -> web.Response:
    """Per lane and counting interval of one junction and Paris day, RFC 4180, units in the header row."""
    junction = request.match_info["junction"]
    day = date_param(request.match_info["day"], "day")
    lo, hi = day_bounds(day)
    rows = await request.app[STORE].traffic_intervals(junction, lo, hi)
    if not rows and junction not in {j for j, _, _ in await request.app[STORE].traffic_junctions()}:
        raise Problem(404, "unknown-junction", "Not Found", f"no counts from junction {junction[:100]!r}")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([f"{f} ({CSV_UNITS[f]})" if f in CSV_UNITS else f for f in CSV_FIELDS])
    writer.writerows(csv_row(li) for li in sorted(lane_intervals(rows), key=lambda li: (li.start_ms, li.lane_id)))
    name = f"citygate-traffic-{junction}-{day.isoformat()}.csv"
    return web.Response(body=out.getvalue().encode(), headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Content-Type": "text/csv; charset=utf-8; header=present"})
