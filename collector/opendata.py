"""Open data: per commune and day, energy, burn hours, lamp faults and water, as JSON and CSV.

No login and no personal data: the figures are the commune day rollups (collector.rollup),
days in Europe/Paris. `?commune=` (INSEE code, a former commune's code works too) narrows to
one commune; `?from=&to=` (YYYY-MM-DD, inclusive) default to the last 31 days, at most 366.
A day with no data from a commune has no row. Each quantity's unit is in the JSON's `units` and
in the CSV's header row (`energy_kwh (kWh)`): a spreadsheet opened alone still says what it counts.

    GET /opendata/v1/communes/daily.json
    GET /opendata/v1/communes/daily.csv
"""

from __future__ import annotations

import csv
import io
import time
from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web

from collector.appkeys import STORE, TERRITORY
from collector.params import date_param, invalid, json_response
from collector.problem import Problem
from collector.rollup import PARIS

LICENSE = "Licence Ouverte / Open Licence 2.0 (Etalab)"
DEFAULT_DAYS = 31
MAX_DAYS = 366
FIELDS = ("date", "commune_insee", "commune_name", "energy_kwh", "burn_h", "lamp_faults", "water_m3")
#: the unit of each quantity: in the JSON's `units`, and in the CSV's header as "energy_kwh (kWh)"
UNITS = {"energy_kwh": "kWh", "burn_h": "h", "lamp_faults": "lamps", "water_m3": "m3"}


def add_opendata_routes(app: web.Application) -> None:
    app.router.add_get("/opendata/v1/communes/daily.json", daily_json)
    app.router.add_get("/opendata/v1/communes/daily.csv", daily_csv)


#: the days a window may name: from the epoch to the last one whose end (the next midnight) is a date
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9999, 12, 30)


def _window(request: web.Request) -> tuple[date, date]:
    today = datetime.fromtimestamp(time.time(), PARIS).date()
    raw_from, raw_to = request.query.get("from"), request.query.get("to")
    last = today if raw_to is None else date_param(raw_to, "to")
    if raw_from is not None:
        first = date_param(raw_from, "from")
    elif last < date.min + timedelta(days=DEFAULT_DAYS - 1):
        raise invalid("to", f"to {raw_to!r}: the default {DEFAULT_DAYS} days before it start before year 1; "
                            "give from as well")
    else:
        first = last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise invalid("from", "from is after to")
    for name, day in (("from", first), ("to", last)):
        if not FIRST_DAY <= day <= LAST_DAY:  # a day's end must be an instant: 9999-12-31's is not
            raise invalid(name, f"{name} must be a day from {FIRST_DAY} to {LAST_DAY}, got {day}")
    if (last - first).days + 1 > MAX_DAYS:
        raise invalid("from", f"at most {MAX_DAYS} days at once")
    return first, last


async def daily_rows(request: web.Request) -> tuple[date, date, list[dict[str, Any]]]:
    territory = request.app[TERRITORY]
    first, last = _window(request)
    raw = request.query.get("commune")
    if raw is None:
        communes = list(territory.communes.values())
    else:
        found = territory.resolve(raw)
        if found is None:
            raise Problem(404, "unknown-commune", "Not Found", f"{raw!r} is no commune of the territory",
                          parameter="commune")
        communes = [found]
    rows: list[dict[str, Any]] = []
    for c in communes:
        for b in await request.app[STORE].rollups("commune", "day", c.insee, first.isoformat(), last.isoformat()):
            rows.append({"date": b.bucket, "commune_insee": c.insee, "commune_name": c.name,
                         "energy_kwh": b.energy_wh / 1000, "burn_h": b.burn_ms / 3_600_000,
                         "lamp_faults": b.lamps_faulty, "water_m3": b.water_m3})
    rows.sort(key=lambda r: (r["date"], r["commune_insee"]))
    return first, last, rows


async def daily_json(request: web.Request) -> web.Response:
    first, last, rows = await daily_rows(request)
    return json_response({"territory": request.app[TERRITORY].name, "license": LICENSE, "from": first.isoformat(),
                          "to": last.isoformat(), "fields": list(FIELDS), "units": UNITS, "rows": rows})


def csv_header(field: str) -> str:
    return f"{field} ({UNITS[field]})" if field in UNITS else field


async def daily_csv(request: web.Request) -> web.Response:
    first, last, rows = await daily_rows(request)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow([csv_header(f) for f in FIELDS])
    writer.writerows([row[f] for f in FIELDS] for row in rows)
    name = f"citygate-communes-daily-{first.isoformat()}-{last.isoformat()}.csv"
    # header=present (RFC 4180): the first row names the columns and their units
    return web.Response(body=out.getvalue().encode(),
                        headers={"Content-Disposition": f'attachment; filename="{name}"',
                                 "Content-Type": "text/csv; charset=utf-8; header=present"})
