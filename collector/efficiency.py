"""The city's lighting efficiency, per commune and month: open data anyone may read (no login).

    GET /efficiency/                        the public page (collector/dashboard/public/)
    GET /efficiency/assets/{path}           its script, style and the vendored chart library
    GET /opendata/v1/efficiency.json        ?from=YYYY-MM&to=YYYY-MM (default: the last 12 months)
    GET /opendata/v1/efficiency.csv         the same rows; ?format=excel-fr: UTF-8 with BOM, `;`, decimal comma

Figures of a commune and a month (Europe/Paris months; the current one up to now, `partial`):

- `energy_kwh`: the lamps' energy, the commune day rollups (collector.rollup) of the month's days.
- `baseline_kwh`: every lamp at full power from civil dusk to civil dawn (collector.nights) over
  the month's days that the commune sent data (a day without any reading is no saving), at the
  commune's centre. A lamp's full power is the highest
  `power_w × 100 / level_pct` it reported at a level of at least 50 % over the FULL_POWER_DAYS
  days before the window's end, or now (LED drivers draw nearly in proportion to their level); a
  lamp that reported none counts as the median of the commune's others. Lamps: those the
  collector knows today (`lamp_on` readings), for every month.
- `saved_kwh` = baseline − energy, `saved_pct` = saved / baseline; euros and kg CO₂ of the energy
  and of the savings at the configured factors (FACTORS, stated in the document).
- `availability_pct`: the share of lamp-nights lit as programmed. A lamp-night is one known lamp
  and one night (civil dusk to dawn) whose evening falls in the month, has begun and is on a day
  the commune sent data; it was lit as programmed unless the lamp had a `lamp_failure` open
  (reported and not yet cleared by its `lamp_restored`) at any moment between that dusk and dawn.
  A night without readings from its own cabinet is not held against the lamp: the telemetry cannot
  tell.
- `repair_median_h`: the median time from a lamp's `lamp_failure` to the `lamp_restored` that
  clears it, over the repairs finished in the month (`repairs`); `faults_open` at the month's end.
- `reports_received`: residents' reports (Open311, collector.reports) made in the month, of any
  service; `report_resolution_median_h`: median time from a report to its first `resolved` state,
  over the reports resolved in the month (`reports_resolved`).
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import statistics
import time
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from collector.appkeys import STORE, TERRITORY
from collector.control.engines import PgControl
from collector.nights import dark_ms, nights
from collector.opendata import LICENSE
from collector.params import invalid, json_response
from collector.problem import Problem
from collector.readmodel import RESTORED
from collector.rollup import FAULT_CODE, PARIS
from collector.sqlprims import SqlPrimitives, marks
from collector.territory import Commune

PUBLIC = Path(__file__).parent / "dashboard" / "public"
VENDOR = Path(__file__).parent / "dashboard" / "assets" / "vendor"
HOUR_MS = 3_600_000
DEFAULT_MONTHS = 12
MAX_MONTHS = 36
FULL_POWER_DAYS = 3
FULL_POWER_MIN_LEVEL = 50
#: how long a computed document is served again before it is computed anew
CACHE_S = 60.0
#: a failure this long before the window still open at its start counts; older ones are not read
FAULT_LOOKBACK_MS = 366 * 24 * HOUR_MS
FIELDS = ("month", "commune_insee", "commune_name", "partial", "lamps", "energy_kwh", "baseline_kwh", "saved_kwh",
          "saved_pct", "energy_eur", "saved_eur", "energy_co2_kg", "saved_co2_kg", "lamp_nights",
          "lamp_nights_lit", "availability_pct", "repairs", "repair_median_h", "faults_open", "reports_received",
          "reports_resolved", "report_resolution_median_h")
UNITS = {"energy_kwh": "kWh", "baseline_kwh": "kWh", "saved_kwh": "kWh", "saved_pct": "%", "energy_eur": "EUR",
         "saved_eur": "EUR", "energy_co2_kg": "kg CO2e", "saved_co2_kg": "kg CO2e", "availability_pct": "%",
         "repair_median_h": "h", "report_resolution_median_h": "h", "lamps": "lamps", "lamp_nights": "lamp-nights",
         "lamp_nights_lit": "lamp-nights"}


@dataclass(frozen=True, slots=True)
class Factors:
    """Euros and CO₂ per kWh, with where they come from: stated on the page and in the data."""

    eur_per_kwh: float = 0.20
    eur_source: str = "tarif moyen retenu par la métropole (configurable : CITYGATE_EUR_PER_KWH)"
    co2_kg_per_kwh: float = 0.052
    co2_source: str = ("ADEME, Base Empreinte 2023 : électricité, mix moyen France, 0,052 kg CO2e/kWh "
                       "(configurable : CITYGATE_CO2_KG_PER_KWH)")

    def as_json(self) -> dict[str, Any]:
        return {"eur_per_kwh": self.eur_per_kwh, "eur_source": self.eur_source,
                "co2_kg_per_kwh": self.co2_kg_per_kwh, "co2_source": self.co2_source}


def factors_from_env() -> Factors:
    """$CITYGATE_EUR_PER_KWH and $CITYGATE_CO2_KG_PER_KWH (each with its source in ..._SOURCE), else the
    defaults; ValueError names the variable that is wrong."""
    out: dict[str, Any] = Factors().as_json()
    for name, key, source, hi in (("CITYGATE_EUR_PER_KWH", "eur_per_kwh", "eur_source", 10.0),
                                  ("CITYGATE_CO2_KG_PER_KWH", "co2_kg_per_kwh", "co2_source", 5.0)):
        raw = os.environ.get(name)
        if raw is None:
            continue
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not 0 <= value <= hi:
            raise ValueError(f"{name}={raw!r}: expected a number between 0 and {hi}")
        out[key] = value
        out[source] = os.environ.get(f"{name}_SOURCE") or f"{name} = {raw}"
    return Factors(**out)


FACTORS = web.AppKey("efficiency_factors", Factors)


@dataclass
class _Cache:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    docs: dict[tuple[str, str, str | None], tuple[float, dict[str, Any]]] = field(default_factory=dict)


CACHE = web.AppKey("efficiency_cache", _Cache)
#: a lamp's full power does not change from one hour to the next, and finding it reads days of samples
FULL_POWER_TTL_S = 3600.0


@dataclass
class _FullPowerCache:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    maps: dict[tuple[int, str | None], tuple[float, dict[tuple[str, str], float]]] = field(default_factory=dict)


FULL_POWER_CACHE = web.AppKey("efficiency_full_power_cache", _FullPowerCache)


async def full_power_cached(app: web.Application, until_ms: int, commune: str | None) -> dict[tuple[str, str], float]:
    """full_power_w, computed once an hour (of `until_ms`) and commune (None: all) per process."""
    store = app[STORE]
    if not isinstance(store, SqlPrimitives):
        raise TypeError("the efficiency figures need one of the SQL stores")
    cache = app.get(FULL_POWER_CACHE)
    if cache is None:  # an app built without add_efficiency_routes (the asset pages alone)
        return await full_power_w(store, until_ms, commune)
    key = (until_ms - until_ms % HOUR_MS, commune)
    async with cache.lock:
        hit = cache.maps.get(key)
        if hit is not None and time.monotonic() - hit[0] < FULL_POWER_TTL_S:
            return hit[1]
        found = await full_power_w(store, key[0], commune)
        if len(cache.maps) > 256:
            cache.maps.clear()
        cache.maps[key] = (time.monotonic(), found)
        return found


# -- months ---------------------------------------------------------------------------------------


_MONTH = re.compile(r"[0-9]{4}-[0-9]{2}")


def month_of(raw: str, name: str) -> date:
    try:
        if not _MONTH.fullmatch(raw):
            raise ValueError
        found = date(int(raw[:4]), int(raw[5:]), 1)
    except ValueError:
        raise invalid(name, f"{name} must be a month YYYY-MM, got {raw!r}") from None
    if not 2000 <= found.year < 2100:
        raise invalid(name, f"{name} {raw!r} is not between 2000 and 2100")
    return found


def next_month(m: date) -> date:
    return date(m.year + m.month // 12, m.month % 12 + 1, 1)


def months(first: date, last: date) -> list[date]:
    out = [first]
    while out[-1] < last:
        out.append(next_month(out[-1]))
    return out


def start_ms(day: date) -> int:
    """00:00 of a Paris day, UTC ms."""
    return int(datetime(day.year, day.month, day.day, tzinfo=PARIS).timestamp() * 1000)


def month_window(request: web.Request, now_ms: int) -> tuple[date, date]:
    this = datetime.fromtimestamp(now_ms / 1000, PARIS).date().replace(day=1)
    raw_from, raw_to = request.query.get("from"), request.query.get("to")
    last = this if raw_to is None else month_of(raw_to, "to")
    if raw_from is not None:
        first = month_of(raw_from, "from")
    else:
        first = last
        for _ in range(DEFAULT_MONTHS - 1):
            first = date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)
    if first > last:
        raise invalid("from", "from is after to")
    if len(months(first, last)) > MAX_MONTHS:
        raise invalid("from", f"at most {MAX_MONTHS} months at once")
    return first, last


# -- what the store holds -------------------------------------------------------------------------


def _number_sql(db: SqlPrimitives, key: str) -> str:
    """A sample value as a number when it is one, else NULL (a device may send text under any name)."""
    if isinstance(db, PgControl):
        return f"(CASE WHEN jsonb_typeof(s.vals->'{key}') = 'number' THEN (s.vals->>'{key}')::double precision END)"
    return f"(CASE WHEN json_type(s.vals, '$.{key}') IN ('integer', 'real') THEN s.vals->>'{key}' END)"


async def lamps_by_commune(db: SqlPrimitives) -> dict[str, list[tuple[str, str]]]:
    """The lamps the collector knows, (gateway, device), by commune."""
    rows = await db._ctl_rows(
        "SELECT g.commune, g.name, d.device FROM device_state d JOIN gateways g ON g.id = d.gateway_id"
        " WHERE d.lamp_on IS NOT NULL AND g.removed_ms IS NULL ORDER BY g.commune, g.name, d.device")
    out: dict[str, list[tuple[str, str]]] = {}
    for commune, gateway, device in rows:
        out.setdefault(str(commune), []).append((str(gateway), str(device)))
    return out


#: lamps one statement asks about: an index seek each (samples_by_device), well under the parameter limits
LAMPS_PER_QUERY = 500


async def full_power_w(db: SqlPrimitives, until_ms: int, commune: str | None = None) -> dict[tuple[str, str], float]:
    """(gateway, lamp) -> its full-power draw, W: the highest power × 100 / level at a level >= 50 % over the
    FULL_POWER_DAYS days before `until_ms`. Asked cabinet by cabinet, lamp by lamp through the
    (gateway, device, time) index, so it reads those days' samples only (a time filter alone reads
    every sample SQLite holds)."""
    power, level = _number_sql(db, "power_w"), _number_sql(db, "level_pct")
    args: list[Any] = [] if commune is None else [commune]
    lamps = await db._ctl_rows(
        "SELECT g.id, g.name, d.device FROM device_state d JOIN gateways g ON g.id = d.gateway_id"
        f" WHERE d.lamp_on IS NOT NULL AND g.removed_ms IS NULL{'' if commune is None else ' AND g.commune = $1'}"
        " ORDER BY g.id, d.device", *args)
    by_gateway: dict[tuple[int, str], list[str]] = {}
    for gid, name, device in lamps:
        by_gateway.setdefault((int(gid), str(name)), []).append(str(device))
    out: dict[tuple[str, str], float] = {}
    since = until_ms - FULL_POWER_DAYS * 24 * HOUR_MS
    for (gid, name), devices in by_gateway.items():
        for i in range(0, len(devices), LAMPS_PER_QUERY):
            part = devices[i:i + LAMPS_PER_QUERY]
            rows = await db._ctl_rows(
                f"SELECT s.device, MAX({power} * 100.0 / {level}) FROM samples s WHERE s.gateway_id = $1"
                f" AND s.device IN ({marks(5, len(part))}) AND s.ts_ms >= $2 AND s.ts_ms < $3 AND {level} >= $4"
                f" AND {power} > 0 GROUP BY s.device", gid, since, until_ms, FULL_POWER_MIN_LEVEL, *part)
            out.update(((name, str(r[0])), float(r[1])) for r in rows if r[1] is not None)
    return out


def installed_w(lamps: Sequence[tuple[str, str]], full: dict[tuple[str, str], float]) -> float:
    """The commune's lamps at full power; a lamp never seen at 50 % or more counts as the median of the others."""
    known = [full[k] for k in lamps if k in full]
    if not known:
        return 0.0
    median = statistics.median(known)
    return sum(full.get(k, median) for k in lamps)


def baseline_wh(commune: Commune, watts: float, first_ms: int, last_ms: int) -> float:
    """Every lamp at full power from dusk to dawn between two instants."""
    return watts * dark_ms(commune.lat, commune.lon, first_ms, last_ms) / HOUR_MS


def baseline_days_wh(commune: Commune, watts: float, first: date, end: date, days: Set[str], now_ms: int) -> float:
    """The baseline over the Paris days in [first, end) that the commune sent data (up to now): a day
    without any reading is no saving."""
    total, day = 0.0, first
    while day < end:
        a, b = start_ms(day), min(start_ms(day + timedelta(days=1)), now_ms)
        if b > a and day.isoformat() in days:
            total += baseline_wh(commune, watts, a, b)
        day += timedelta(days=1)
    return total


@dataclass(frozen=True, slots=True)
class Fault:
    gateway: str
    device: str
    start_ms: int
    end_ms: int | None  # None: still open


async def lamp_faults(db: SqlPrimitives, since_ms: int, until_ms: int) -> dict[str, list[Fault]]:
    """Lamp failures (reported by the agent, cleared by `lamp_restored`) by commune, ended after `since_ms`."""
    rows = await db._ctl_rows(
        "SELECT g.commune, g.name, e.device, e.ts_ms, e.code, e.detail FROM events e"
        " JOIN gateways g ON g.id = e.gateway_id"
        " JOIN device_state d ON d.gateway_id = e.gateway_id AND d.device = e.device"
        " WHERE e.code IN ($1, $2) AND d.lamp_on IS NOT NULL AND e.ts_ms >= $3 AND e.ts_ms < $4"
        " ORDER BY e.gateway_id, e.device, e.ts_ms, e.id",
        FAULT_CODE, RESTORED, since_ms - FAULT_LOOKBACK_MS, until_ms)
    out: dict[str, list[Fault]] = {}
    open_: dict[tuple[str, str], tuple[str, int]] = {}
    for commune, gateway, device, ts, code, raw in rows:
        key = (str(gateway), str(device))
        if code == FAULT_CODE:
            open_.setdefault(key, (str(commune), int(ts)))
        elif orjson.loads(raw).get("cleared", FAULT_CODE) == FAULT_CODE and key in open_:
            where, began = open_.pop(key)
            if ts > since_ms:
                out.setdefault(where, []).append(Fault(key[0], key[1], began, int(ts)))
    for (gateway, device), (where, began) in open_.items():
        out.setdefault(where, []).append(Fault(gateway, device, began, None))
    return out


async def report_times(db: SqlPrimitives, since_ms: int, until_ms: int) -> dict[str, list[tuple[int, int | None]]]:
    """(requested, first resolved or None) of the reports made before `until_ms` and resolved after `since_ms`
    (or not at all), by commune."""
    rows = await db._ctl_rows(
        "SELECT r.jurisdiction, r.requested_ms, (SELECT MIN(h.ts_ms) FROM open311_history h"
        " WHERE h.request_id = r.id AND h.state = 'resolved') FROM open311_requests r WHERE r.requested_ms < $1"
        " AND r.requested_ms >= $2", until_ms, since_ms - FAULT_LOOKBACK_MS)
    out: dict[str, list[tuple[int, int | None]]] = {}
    for commune, requested, resolved in rows:
        out.setdefault(str(commune), []).append((int(requested), None if resolved is None else int(resolved)))
    return out


# -- the figures ----------------------------------------------------------------------------------


def _median_h(durations: Iterable[int]) -> float | None:
    values = list(durations)
    return round(statistics.median(values) / HOUR_MS, 2) if values else None


def _pct(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def day_of(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, PARIS).date().isoformat()


def availability(commune: Commune, lamps: Sequence[tuple[str, str]], faults: Sequence[Fault], first_ms: int,
                 last_ms: int, now_ms: int, days: Set[str]) -> tuple[int, int]:
    """(lamp-nights, lamp-nights lit as programmed) of the nights whose evening is in [first, last), has
    begun and falls on a day the commune sent data (`days`)."""
    evenings = [n for n in nights(commune.lat, commune.lon, first_ms, last_ms)
                if first_ms <= n[0] < last_ms and n[0] <= now_ms and day_of(n[0]) in days]
    known = set(lamps)
    dark = 0
    by_lamp: dict[tuple[str, str], list[Fault]] = {}
    for f in faults:
        if (f.gateway, f.device) in known:
            by_lamp.setdefault((f.gateway, f.device), []).append(f)
    for spans in by_lamp.values():
        for dusk, dawn in evenings:
            if any(f.start_ms < dawn and (f.end_ms is None or f.end_ms > dusk) for f in spans):
                dark += 1
    total = len(lamps) * len(evenings)
    return total, total - dark


@dataclass(frozen=True, slots=True)
class Inputs:
    lamps: dict[str, list[tuple[str, str]]]
    full: dict[tuple[str, str], float]
    faults: dict[str, list[Fault]]
    reports: dict[str, list[tuple[int, int | None]]]
    energy_wh: dict[tuple[str, str], float]  # (commune, YYYY-MM) -> Wh
    days: dict[str, set[str]]  # commune -> the Paris days it sent data (a sample or an event)


@dataclass
class Month:
    """What a month adds up to, for one commune or pooled over several (the metropolis)."""

    lamps: int = 0
    energy_kwh: float = 0.0
    baseline_kwh: float = 0.0
    lamp_nights: int = 0
    lamp_nights_lit: int = 0
    repairs_ms: list[int] = field(default_factory=list)
    faults_open: int = 0
    reports_received: int = 0
    resolutions_ms: list[int] = field(default_factory=list)

    def add(self, other: Month) -> None:
        self.lamps += other.lamps
        self.energy_kwh += other.energy_kwh
        self.baseline_kwh += other.baseline_kwh
        self.lamp_nights += other.lamp_nights
        self.lamp_nights_lit += other.lamp_nights_lit
        self.repairs_ms += other.repairs_ms
        self.faults_open += other.faults_open
        self.reports_received += other.reports_received
        self.resolutions_ms += other.resolutions_ms

    def row(self, factors: Factors) -> dict[str, Any]:
        energy, baseline = self.energy_kwh, self.baseline_kwh
        saved = baseline - energy
        return {
            "lamps": self.lamps, "energy_kwh": round(energy, 3), "baseline_kwh": round(baseline, 3),
            "saved_kwh": round(saved, 3), "saved_pct": _pct(saved, baseline),
            "energy_eur": round(energy * factors.eur_per_kwh, 2), "saved_eur": round(saved * factors.eur_per_kwh, 2),
            "energy_co2_kg": round(energy * factors.co2_kg_per_kwh, 2),
            "saved_co2_kg": round(saved * factors.co2_kg_per_kwh, 2),
            "lamp_nights": self.lamp_nights, "lamp_nights_lit": self.lamp_nights_lit,
            "availability_pct": _pct(self.lamp_nights_lit, self.lamp_nights),
            "repairs": len(self.repairs_ms), "repair_median_h": _median_h(self.repairs_ms),
            "faults_open": self.faults_open, "reports_received": self.reports_received,
            "reports_resolved": len(self.resolutions_ms),
            "report_resolution_median_h": _median_h(self.resolutions_ms),
        }


def commune_month(c: Commune, month: date, inputs: Inputs, now_ms: int) -> Month:
    first, end = start_ms(month), start_ms(next_month(month))
    last = min(end, now_ms)
    lamps = inputs.lamps.get(c.insee, [])
    faults = inputs.faults.get(c.insee, [])
    days = inputs.days.get(c.insee, set())
    nights_total, nights_lit = availability(c, lamps, faults, first, end, now_ms, days)
    reports = inputs.reports.get(c.insee, [])
    return Month(
        lamps=len(lamps), energy_kwh=inputs.energy_wh.get((c.insee, month.isoformat()[:7]), 0.0) / 1000,
        baseline_kwh=baseline_days_wh(c, installed_w(lamps, inputs.full), month, next_month(month), days, now_ms) / 1000,
        lamp_nights=nights_total, lamp_nights_lit=nights_lit,
        repairs_ms=[f.end_ms - f.start_ms for f in faults if f.end_ms is not None and first <= f.end_ms < end],
        faults_open=sum(1 for f in faults if f.start_ms < last and (f.end_ms is None or f.end_ms >= last)),
        reports_received=sum(1 for q, _ in reports if first <= q < end),
        resolutions_ms=[r - q for q, r in reports if r is not None and first <= r < end],
    )


async def compute(app: web.Application, first: date, last: date, commune: Commune | None,
                  now_ms: int) -> dict[str, Any]:
    store, territory = app[STORE], app[TERRITORY]
    if not isinstance(store, SqlPrimitives):
        raise TypeError("the efficiency figures need one of the SQL stores")
    communes = [commune] if commune is not None else list(territory.communes.values())
    span = months(first, last)
    window_first, window_end = start_ms(first), start_ms(next_month(last))
    energy: dict[tuple[str, str], float] = {}
    days: dict[str, set[str]] = {}
    last_day = date.fromordinal(next_month(last).toordinal() - 1).isoformat()
    for c in communes:
        for b in await store.rollups("commune", "day", c.insee, first.isoformat(), last_day):
            key = (c.insee, str(b.bucket)[:7])
            energy[key] = energy.get(key, 0.0) + b.energy_wh
            if b.samples or b.events:
                days.setdefault(c.insee, set()).add(str(b.bucket))
    inputs = Inputs(
        lamps=await lamps_by_commune(store),
        full=await full_power_cached(app, min(now_ms, window_end), None if commune is None else commune.insee),
        faults=await lamp_faults(store, window_first, window_end),
        reports=await report_times(store, window_first, window_end),
        energy_wh=energy,
        days=days,
    )
    factors = app[FACTORS]
    rows, pooled = [], []
    for m in span:
        whole = Month()
        head = {"month": m.isoformat()[:7], "partial": start_ms(next_month(m)) > now_ms}
        for c in communes:
            figures = commune_month(c, m, inputs, now_ms)
            whole.add(figures)
            rows.append({**head, "commune_insee": c.insee, "commune_name": c.name, **figures.row(factors)})
        pooled.append({**head, **whole.row(factors)})
    return {
        "territory": territory.name, "license": LICENSE, "from": first.isoformat()[:7], "to": last.isoformat()[:7],
        "generated_ms": now_ms, "factors": factors.as_json(), "fields": list(FIELDS), "units": UNITS,
        "definitions": DEFINITIONS, "rows": rows,
        # every commune asked for, pooled (medians over all their repairs and reports, not a median of medians)
        "total": pooled,
    }


DEFINITIONS = {
    "baseline_kwh": "every lamp at full power from civil dusk to civil dawn (sun 6° below the horizon), "
                    "at the commune's centre, on the days the commune sent data; full power: the highest power × 100 / level a lamp reported "
                    f"at a level of {FULL_POWER_MIN_LEVEL} % or more in the {FULL_POWER_DAYS} days before the "
                    "period's end; a lamp never seen so counts as the median of the others",
    "availability_pct": "lamp-nights lit as programmed / lamp-nights: a lamp-night is a known lamp and a night "
                        "whose evening is in the month, on a day the commune sent data; it is lit as programmed unless a lamp_failure of the lamp "
                        "was open at any moment between dusk and dawn",
    "repair_median_h": "median time from lamp_failure to the lamp_restored clearing it, repairs finished in the month",
    "report_resolution_median_h": "median time from a resident's report to its first 'resolved' state, "
                                  "reports resolved in the month",
}


async def document(request: web.Request) -> dict[str, Any]:
    now = int(time.time() * 1000)
    first, last = month_window(request, now)
    raw = request.query.get("commune")
    commune = None
    if raw is not None:
        commune = request.app[TERRITORY].resolve(raw)
        if commune is None:
            raise Problem(404, "unknown-commune", "Not Found", f"{raw!r} is no commune of the territory",
                          parameter="commune")
    cache = request.app[CACHE]
    key = (first.isoformat(), last.isoformat(), None if commune is None else commune.insee)
    async with cache.lock:
        hit = cache.docs.get(key)
        if hit is not None and time.monotonic() - hit[0] < CACHE_S:
            return hit[1]
        doc = await compute(request.app, first, last, commune, now)
        if len(cache.docs) > 64:
            cache.docs.clear()
        cache.docs[key] = (time.monotonic(), doc)
        return doc


# -- HTTP -----------------------------------------------------------------------------------------


def add_efficiency_routes(app: web.Application) -> None:
    app[FACTORS] = factors_from_env()
    app[CACHE] = _Cache()
    app[FULL_POWER_CACHE] = _FullPowerCache()
    r = app.router
    r.add_get("/efficiency", to_page)
    r.add_get("/efficiency/", page)
    r.add_get("/efficiency/assets/{path:.+}", asset)
    r.add_get("/opendata/v1/efficiency.json", efficiency_json)
    r.add_get("/opendata/v1/efficiency.csv", efficiency_csv)


async def to_page(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("/efficiency/")


_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml",
          ".png": "image/png", ".json": "application/json", ".txt": "text/plain", ".map": "application/json",
          ".woff2": "font/woff2"}


def _served(root: Path, rel: str) -> Path | None:
    """The file `rel` under `root`, never outside it, of a type we serve."""
    if "\\" in rel or any(part in ("", ".", "..") for part in rel.split("/")):
        return None
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file() or path.suffix not in _TYPES:
        return None
    return path


def _file(path: Path) -> web.Response:
    kind = _TYPES[path.suffix]
    text = kind.startswith("text/") or kind in ("application/json", "image/svg+xml")
    return web.Response(body=path.read_bytes(), content_type=kind, charset="utf-8" if text else None,
                        headers={"Cache-Control": "no-cache"})


async def page(request: web.Request) -> web.Response:
    return _file(PUBLIC / "index.html")


async def asset(request: web.Request) -> web.Response:
    rel = request.match_info["path"]
    # the public page's own files, and the vendored libraries the control centre ships (vendor/<lib>/...)
    path = _served(VENDOR, rel.removeprefix("vendor/")) if rel.startswith("vendor/") else _served(PUBLIC, rel)
    if path is None:
        raise Problem(404, "not-found", "Not Found", f"no asset {rel!r}")
    return _file(path)


async def efficiency_json(request: web.Request) -> web.Response:
    return json_response(await document(request))


def _excel_fr(value: Any) -> Any:
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, float):
        return repr(value).replace(".", ",")
    return "" if value is None else value


def _plain(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


async def efficiency_csv(request: web.Request) -> web.Response:
    fmt = request.query.get("format", "csv")
    if fmt not in ("csv", "excel-fr"):
        raise invalid("format", f"format is csv (comma, UTF-8) or excel-fr (semicolon, decimal comma, UTF-8 with "
                                f"BOM), got {fmt!r}")
    doc = await document(request)
    excel = fmt == "excel-fr"
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";" if excel else ",", lineterminator="\r\n")  # RFC 4180 lines
    writer.writerow([f"{f} ({UNITS[f]})" if f in UNITS else f for f in FIELDS])
    cell = _excel_fr if excel else _plain
    writer.writerows([cell(row[f]) for f in FIELDS] for row in doc["rows"])
    body = ("\ufeff" if excel else "") + out.getvalue()
    suffix = "-excel-fr" if excel else ""
    name = f"citygate-efficiency-{doc['from']}-{doc['to']}{suffix}.csv"
    return web.Response(body=body.encode("utf-8"),
                        headers={"Content-Disposition": f'attachment; filename="{name}"',
                                 "Content-Type": "text/csv; charset=utf-8; header=present"})
