"""Rollups maintained on ingest: counters that wrap or reset, burn time, lamps on/faulty, water,
alarms, local days; equal to sums recomputed from the raw records, on randomised data."""

from __future__ import annotations

import asyncio
import math
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from collector_testkit import Client, Running, batch_body, event, sample
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.app import create_app, start
from collector.rollup import (
    COUNTER_MARGIN,
    COUNTER_SLACK_MS,
    MAX_FLOW_M3_PER_H,
    MAX_LAMP_POWER_W,
    day_of_hour,
)
from collector.store import open_store
from collector.tokens import hash_token, new_token
from tests.store_testkit import fresh_db

H = 3_600_000
MIN = 60_000
T0 = 1_764_547_200_000  # 2025-12-01T00:00:00Z = 01:00 in Paris
PARIS = ZoneInfo("Europe/Paris")
FIELDS = ("energy_kwh", "burn_h", "lamps_on", "lamps_faulty", "water_m3", "alarms", "samples", "events")


def buckets(doc: dict[str, Any]) -> dict[Any, dict[str, Any]]:
    return {b["bucket"]: {k: b[k] for k in FIELDS} for b in doc["buckets"]}


async def test_counters_burn_time_lamps_water_and_alarms_roll_up_by_hour_and_day(running: Running) -> None:
    gw, token = await running.add_gateway("gw-1", "21231")
    records = [
        sample(1, "lamp-1", T0, energy_wh=2**32 - 100, lamp_on=True),
        sample(2, "lamp-1", T0 + 10 * MIN, energy_wh=50, lamp_on=True),  # u32 wrap: +150 Wh
        sample(3, "lamp-1", T0 + 20 * MIN, energy_wh=30, lamp_on=False),  # reset: +0, counter_reset
        sample(4, "meter-1", T0 + 5 * MIN, volume_m3=10.0),
        sample(5, "lamp-1", T0 + 60 * MIN, energy_wh=80, lamp_on=True),  # +50; was off: no burn
        sample(6, "meter-1", T0 + 65 * MIN, volume_m3=10.5),  # +0.5
        sample(7, "meter-1", T0 + 70 * MIN, volume_m3=9.0),  # meter replaced: +0, counter_reset
        sample(8, "meter-1", T0 + 80 * MIN, volume_m3=9.25),  # +0.25
        sample(9, "lamp-1", T0 + 100 * MIN, energy_wh=100, lamp_on=True),  # +20; 40 min gap: no burn
        event(10, "lamp_failure", "major", "lamp-1", T0 + 101 * MIN),
        event(11, "door_open", "minor", "cabinet", T0 + 102 * MIN),
        sample(12, "lamp-1", T0 + 30 * MIN, energy_wh=10**6, lamp_on=True),  # late: counted, changes nothing
    ]
    for _ in range(2):  # the resend must not count anything twice
        status, _, doc = await running.client.post(batch_body(gw.name, records), token)
        assert status == 200, doc

    hour0 = {"energy_kwh": 0.150, "burn_h": 20 / 60, "lamps_on": 1, "lamps_faulty": 0, "water_m3": 0.0,
             "alarms": 0, "samples": 5, "events": 0}
    hour1 = {"energy_kwh": 0.070, "burn_h": 0.0, "lamps_on": 1, "lamps_faulty": 1, "water_m3": 0.75,
             "alarms": 1, "samples": 5, "events": 2}
    day = {"energy_kwh": 0.220, "burn_h": 20 / 60, "lamps_on": 1, "lamps_faulty": 1, "water_m3": 0.75,
           "alarms": 1, "samples": 10, "events": 2}
    for path in ("/api/v1/gateways/gw-1", "/api/v1/communes/21231", "/api/v1"):
        status, _, doc = await running.client.get(f"{path}/rollups/hour?from={T0}&to={T0 + 5 * H}")
        assert status == 200, doc
        assert_close(buckets(doc), {T0: hour0, T0 + H: hour1})
        _, _, doc = await running.client.get(f"{path}/rollups/day?from=2025-11-30&to=2025-12-02")
        assert_close(buckets(doc), {"2025-12-01": day})
    _, _, doc = await running.client.get("/api/v1/communes/21617/rollups/day?from=2025-11-30&to=2025-12-02")
    assert doc["buckets"] == []

    _, _, doc = await running.client.get("/api/v1/gateways/gw-1/events")
    resets = sorted((e["device"], e["detail"]["quantity"], e["detail"]["previous"], e["detail"]["current"])
                    for e in doc["events"] if e["code"] == "counter_reset")
    assert resets == [("lamp-1", "energy_wh", 50, 30), ("meter-1", "volume_m3", 10.5, 9.0)]
    assert all(e["seq"] is None and e["severity"] == "minor" for e in doc["events"] if e["code"] == "counter_reset")


async def test_an_implausible_counter_jump_is_an_event_not_consumption(running: Running) -> None:
    """A lamp's energy counter read as 1.7e308 once (a garbled register) turned the hour's energy to
    null, the day's open data to inf for good, and broke the control-centre page."""
    gw, token = await running.add_gateway("gw-1", "21231")
    records = [
        sample(1, "lamp-1", T0, energy_wh=1000, lamp_on=True, level_pct=100),
        sample(2, "lamp-1", T0 + 10 * MIN, energy_wh=1.7e308, lamp_on=True, level_pct=100),  # impossible
        sample(3, "lamp-1", T0 + 20 * MIN, energy_wh=1010, lamp_on=True, level_pct=100),  # a decrease: reset
        sample(4, "lamp-1", T0 + 30 * MIN, energy_wh=1030, lamp_on=True, level_pct=100),  # +20 Wh
        sample(5, "lamp-2", T0 + 30 * MIN, energy_wh=500, lamp_on=True, level_pct=100),
        # 200 Wh in 1 min is 12 kW, but within the 15 min a timestamp may lag its counter: plausible
        sample(6, "lamp-2", T0 + 31 * MIN, energy_wh=700, lamp_on=True, level_pct=100),
        sample(7, "lamp-2", T0 + 32 * MIN, energy_wh=700 + 1_300, lamp_on=True, level_pct=100),  # over 2 kW x 2
        sample(8, "meter-1", T0, volume_m3=10.0),
        sample(9, "meter-1", T0 + 10 * MIN, volume_m3=9e307),  # impossible as well
    ]
    status, _, doc = await running.client.post(batch_body(gw.name, records), token)
    assert status == 200, doc
    _, _, doc = await running.client.get(f"/api/v1/gateways/gw-1/rollups/hour?from={T0}&to={T0}")
    [hour] = doc["buckets"]
    assert math.isclose(hour["energy_kwh"], 0.220) and hour["water_m3"] == 0.0, hour
    _, _, doc = await running.client.get("/api/v1/rollups/day?from=2025-12-01&to=2025-12-01")
    assert math.isclose(doc["buckets"][0]["energy_kwh"], 0.220)
    _, _, doc = await running.client.get("/api/v1/gateways/gw-1/events")
    implausible = sorted((e["device"], e["detail"]["quantity"], e["detail"]["current"], e["severity"])
                         for e in doc["events"] if e["code"] == "counter_implausible")
    assert implausible == [("lamp-1", "energy_wh", 1.7e308, "major"), ("lamp-2", "energy_wh", 2000, "major"),
                           ("meter-1", "volume_m3", 9e307, "major")]
    [lamp2] = [e for e in doc["events"] if e["code"] == "counter_implausible" and e["device"] == "lamp-2"]
    assert lamp2["detail"]["elapsed_ms"] == MIN and lamp2["detail"]["bound"] == 1066.667
    client = running.client
    async with client.session.get(client.url + "/opendata/v1/communes/daily.csv?from=2025-12-01&to=2025-12-01") as r:
        csv = (await r.text()).lower()
    assert r.status == 200 and "0.22" in csv and "inf" not in csv and "nan" not in csv, csv


async def test_a_cabinet_meter_index_is_not_added_to_the_lamps_energy(running: Running) -> None:
    gw, token = await running.add_gateway("gw-1", "21231")
    records = [
        sample(1, "lamp-1", T0, energy_wh=1000, lamp_on=True, level_pct=100),
        sample(2, "linky", T0 + MIN, energy_wh=123_456_000, apparent_power_va=2400, meter_id="050022120078"),
        sample(3, "lamp-1", T0 + 10 * MIN, energy_wh=1300, lamp_on=True, level_pct=100),  # +300 Wh
        sample(4, "linky", T0 + 11 * MIN, energy_wh=123_457_000, apparent_power_va=2400, meter_id="050022120078"),
    ]
    status, _, doc = await running.client.post(batch_body(gw.name, records), token)
    assert status == 200, doc
    _, _, doc = await running.client.get(f"/api/v1/communes/21231/rollups/hour?from={T0}&to={T0 + H}")
    assert_close(buckets(doc), {T0: {"energy_kwh": 0.3, "burn_h": 10 / 60, "lamps_on": 1, "lamps_faulty": 0,
                                     "water_m3": 0.0, "alarms": 0, "samples": 4, "events": 0}})


async def test_rollup_queries_check_their_parameters(running: Running) -> None:
    for path, status in [
        ("/api/v1/rollups/week?from=1&to=2", 404),
        ("/api/v1/rollups/day?from=2025-12-01", 400),
        ("/api/v1/rollups/day?from=yesterday&to=2025-12-01", 400),
        ("/api/v1/rollups/hour?from=abc&to=5", 400),
        ("/api/v1/communes/75056/rollups/day?from=2025-12-01&to=2025-12-01", 404),
        ("/api/v1/gateways/ghost/rollups/day?from=2025-12-01&to=2025-12-01", 404),
    ]:
        got, ctype, doc = await running.client.get(path)
        assert (got, ctype) == (status, "application/problem+json"), (path, doc)


def test_a_paris_day_holds_23_24_or_25_utc_hours() -> None:
    hours_per_day: dict[str, int] = defaultdict(int)
    start = int(datetime(2026, 1, 1, tzinfo=PARIS).timestamp() * 1000)
    for i in range(365 * 24):
        hours_per_day[day_of_hour(start + i * H)] += 1
    assert hours_per_day["2026-03-29"] == 23  # spring forward
    assert hours_per_day["2026-10-25"] == 25  # fall back
    assert {n for d, n in hours_per_day.items() if d not in ("2026-03-29", "2026-10-25")} == {24}
    assert day_of_hour(int(datetime(2025, 12, 31, 23, tzinfo=UTC).timestamp() * 1000)) == "2026-01-01"


# -- property: rollups equal sums recomputed from the raw records -----------------------------

GATEWAYS = [  # name, registered commune, commune the batches are tagged with
    ("gw-dijon", "21231", "21231"),
    ("gw-crimolois", "21452", "21213"),  # installed before the merger
    ("gw-neuilly", "21452", "21452"),
    ("gw-talant", "21617", None),
]


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


SPRING, AUTUMN = _ms(datetime(2026, 3, 29, 1, tzinfo=UTC)), _ms(datetime(2026, 10, 25, 1, tzinfo=UTC))  # DST edges
NEW_YEAR = _ms(datetime(2026, 1, 1, tzinfo=PARIS))
STARTS = [T0, SPRING - 3 * H, AUTUMN - 3 * H, NEW_YEAR - 2 * H]


@dataclass
class Plan:
    gateways: list[tuple[str, str, str | None]]
    records: dict[str, list[dict[str, Any]]]
    sends: dict[str, list[list[dict[str, Any]]]]  # batches in sending order, with resends
    devices: dict[str, set[str]] = field(default_factory=dict)


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    gateways = draw(st.lists(st.sampled_from(GATEWAYS), min_size=1, max_size=4, unique=True))
    start = draw(st.sampled_from(STARTS))
    records: dict[str, list[dict[str, Any]]] = {}
    sends: dict[str, list[list[dict[str, Any]]]] = {}
    devices: dict[str, set[str]] = {}
    for name, _, _ in gateways:
        names = [f"lamp-{i}" for i in range(draw(st.integers(1, 3)))] + ["meter-1"]
        clock = dict.fromkeys(names, start)
        energy = {d: draw(st.integers(0, 2**32 - 1)) for d in names}
        volume = dict.fromkeys(names, 100.0)
        recs: list[dict[str, Any]] = []
        for seq in range(1, draw(st.integers(1, 40)) + 1):
            device = draw(st.sampled_from(names))
            clock[device] += draw(st.integers(0, 40 * MIN))
            ts = clock[device] - (draw(st.integers(1, 2 * H)) if draw(st.integers(0, 9)) == 0 else 0)  # late
            if draw(st.integers(0, 7)) == 0:
                recs.append(event(seq, draw(st.sampled_from(["lamp_failure", "door_open", "communication_failure"])),
                                  draw(st.sampled_from(["info", "minor", "major", "critical"])), device, ts))
                continue
            values: dict[str, Any] = {}
            if device == "meter-1":
                volume[device] = round(draw(st.floats(0, 5)), 3) if draw(st.integers(0, 9)) == 0 else \
                    round(volume[device] + draw(st.floats(0, 2.5)), 3)
                values["volume_m3"] = volume[device]
            else:
                if draw(st.integers(0, 11)) == 0:
                    energy[device] = draw(st.integers(0, 1000))  # driver replaced
                else:
                    energy[device] += draw(st.integers(0, 5000))
                if draw(st.booleans()):
                    values["energy_wh"] = energy[device] % 2**32
                if draw(st.integers(0, 4)):
                    values["lamp_on"] = draw(st.booleans())
                if draw(st.integers(0, 9)) == 0:
                    values["lamp_failure"] = True
            values["level_pct"] = draw(st.integers(0, 100))
            recs.append(sample(seq, device, ts, **values))
        chunks: list[list[dict[str, Any]]] = []
        i = 0
        while i < len(recs):
            n = draw(st.integers(1, 12))
            chunks.append(recs[i:i + n])
            i += n
        order: list[list[dict[str, Any]]] = []
        for k, chunk in enumerate(chunks):
            order.append(chunk)
            if draw(st.integers(0, 3)) == 0:  # a lost ack: an earlier batch comes again
                order.append(chunks[draw(st.integers(0, k))])
        records[name], sends[name], devices[name] = recs, order, set(names)
    return Plan(gateways, records, sends, devices)


class Buckets:
    """recompute's totals by (period, bucket), for the record at hand (`at`): its hour and its day."""

    def __init__(self) -> None:
        self.out: dict[tuple[str, Any], dict[str, float]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0.0))
        self.counted: dict[tuple[str, str, str], Any] = {}  # (device, what, period) -> latest bucket counted
        self.device = ""
        self.keys: list[tuple[str, Any]] = []

    def at(self, device: str, ts: int) -> None:
        self.device = device
        self.keys = [("hour", ts // H * H), ("day", datetime.fromtimestamp(ts / 1000, PARIS).date().isoformat())]

    def add(self, name: str, amount: float) -> None:
        for key in self.keys:
            self.out[key][name] += amount

    def once(self, what: str) -> None:
        """Count the device in each of its buckets it was not counted in yet (nor in a later one)."""
        for period, bucket in self.keys:
            latest = self.counted.get((self.device, what, period))
            if latest is None or bucket > latest:
                self.counted[(self.device, what, period)] = bucket
                self.out[(period, bucket)][what] += 1


def recompute(records: list[dict[str, Any]]) -> tuple[dict[tuple[str, Any], dict[str, float]], int, int]:
    """Hour and day totals of one gateway's raw records, by the rules of collector.rollup, the resets and
    the implausible increases."""
    totals = Buckets()
    last_ts: dict[str, int] = {}
    counters: dict[tuple[str, str], float] = {}
    lit: dict[str, bool] = {}
    resets = implausible = 0
    for r in sorted(records, key=lambda r: r["seq"]):
        ts, device = r["ts_ms"], r["device"]
        totals.at(device, ts)
        add, once = totals.add, totals.once
        if r["kind"] == "event":
            add("events", 1)
            add("alarms", 1 if r["severity"] in ("major", "critical") else 0)
            if r["code"] == "lamp_failure":
                once("lamps_faulty")
            continue
        add("samples", 1)
        values = r["values"]
        if device not in last_ts or ts >= last_ts[device]:
            if device in last_ts and lit.get(device) and ts - last_ts[device] <= 15 * MIN:
                add("burn_h", (ts - last_ts[device]) / H)
            for quantity, column, scale, wraps, most in (("energy_wh", "energy_kwh", 1000, True, MAX_LAMP_POWER_W),
                                                         ("volume_m3", "water_m3", 1, False, MAX_FLOW_M3_PER_H)):
                if quantity not in values:
                    continue
                now, before = values[quantity], counters.get((device, quantity))
                if before is not None:
                    bound = most * COUNTER_MARGIN * (ts - last_ts[device] + COUNTER_SLACK_MS) / H
                    increase = expected_increase(before, now, wraps)
                    if increase is None:
                        resets += 1
                    elif increase > bound:
                        implausible += 1
                    else:
                        add(column, increase / scale)
                counters[(device, quantity)] = now
            if "lamp_on" in values:
                lit[device] = values["lamp_on"]
            last_ts[device] = ts
        if values.get("lamp_on") is True:
            once("lamps_on")
        if values.get("lamp_failure") is True:
            once("lamps_faulty")
    return totals.out, resets, implausible


def expected_increase(before: float, now: float, wraps: bool) -> float | None:
    """A counter's increase from `before` to `now`, a u32 wrap included (`wraps`); None for a reset."""
    if now >= before:
        return now - before
    if wraps and before >= 15 * 2**28 and now < 2**28:
        return now + 2**32 - before
    return None


def assert_close(got: dict[Any, dict[str, Any]], expected: dict[Any, dict[str, Any]]) -> None:
    assert got.keys() == expected.keys()
    for bucket, totals in expected.items():
        for name, value in totals.items():
            assert math.isclose(got[bucket][name], value, rel_tol=1e-9, abs_tol=1e-6), (bucket, name, got[bucket])


async def run_plan(kind: str, plan: Plan) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with fresh_db(kind, Path(tmp)) as url, open_store(url) as store:
            runner, base = await start(create_app(store), "127.0.0.1", 0)
            try:
                async with aiohttp.ClientSession() as session:
                    await check_plan(Client(base, session), store, plan)
            finally:
                await runner.cleanup()


async def check_plan(client: Client, store: Any, plan: Plan) -> None:
    tokens = {}
    for name, commune, _ in plan.gateways:
        tokens[name] = new_token()
        await store.add_gateway(name, commune, hash_token(tokens[name]))

    async def upload(name: str, tag: str | None) -> None:
        for chunk in plan.sends[name]:
            status, _, doc = await client.post(batch_body(name, chunk, commune=tag), tokens[name])
            assert status == 200, doc

    await asyncio.gather(*(upload(name, tag) for name, _, tag in plan.gateways))

    first_h, last_h = T0 - 400 * 24 * H, T0 + 400 * 24 * H
    span = {"hour": f"from={first_h}&to={last_h}", "day": "from=2024-01-01&to=2027-12-31"}
    per_commune: dict[str, dict[tuple[str, Any], dict[str, float]]] = defaultdict(
        lambda: defaultdict(lambda: dict.fromkeys(FIELDS, 0.0)))
    metropolis: dict[tuple[str, Any], dict[str, float]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0.0))
    for name, commune, _ in plan.gateways:
        # the raw records, read back from the store
        raw: list[dict[str, Any]] = []
        for device in plan.devices[name]:
            status, _, doc = await client.get(f"/api/v1/gateways/{name}/devices/{device}/samples?limit=10000")
            if status == 404:  # the plan gave it no record: the collector does not know that device
                continue
            raw += [{"kind": "sample", "device": device, **s} for s in doc["samples"]]
        _, _, doc = await client.get(f"/api/v1/gateways/{name}/events?limit=10000")
        raw += [{"kind": "event", **e} for e in doc["events"] if e["seq"] is not None]
        assert sorted(r["seq"] for r in raw) == [r["seq"] for r in plan.records[name]]
        expected, resets, implausible = recompute(raw)
        assert sum(e["code"] == "counter_reset" for e in doc["events"]) == resets
        assert sum(e["code"] == "counter_implausible" for e in doc["events"]) == implausible
        for period in ("hour", "day"):
            _, _, got = await client.get(f"/api/v1/gateways/{name}/rollups/{period}?{span[period]}")
            assert_close(buckets(got), {b: t for (p, b), t in expected.items() if p == period})
        for key, totals in expected.items():
            for f, v in totals.items():
                per_commune[commune][key][f] += v
                metropolis[key][f] += v
    for period in ("hour", "day"):
        commune_sums: dict[Any, dict[str, float]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0.0))
        for commune, expected in per_commune.items():
            _, _, got = await client.get(f"/api/v1/communes/{commune}/rollups/{period}?{span[period]}")
            assert_close(buckets(got), {b: t for (p, b), t in expected.items() if p == period})
            for b, t in buckets(got).items():
                for f in FIELDS:
                    commune_sums[b][f] += t[f]
        _, _, got = await client.get(f"/api/v1/rollups/{period}?{span[period]}")
        assert_close(buckets(got), {b: t for (p, b), t in metropolis.items() if p == period})
        assert_close(buckets(got), commune_sums)  # the communes add up to the metropolis


@given(plan=plans())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_rollups_equal_sums_recomputed_from_raw_records_sqlite(plan: Plan) -> None:
    asyncio.run(run_plan("sqlite", plan))


@given(plan=plans())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_rollups_equal_sums_recomputed_from_raw_records_postgresql(plan: Plan) -> None:
    asyncio.run(run_plan("postgresql", plan))


def test_start_instants_sit_just_before_the_edges() -> None:
    def paris(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, PARIS).strftime("%Y-%m-%d %H:%M %Z")

    assert (paris(SPRING - 1), paris(SPRING)) == ("2026-03-29 01:59 CET", "2026-03-29 03:00 CEST")
    assert (paris(AUTUMN - 1), paris(AUTUMN)) == ("2026-10-25 02:59 CEST", "2026-10-25 02:00 CET")
    assert paris(NEW_YEAR) == "2026-01-01 00:00 CET"


async def test_gateways_of_one_commune_update_its_rollups_concurrently(running: Running) -> None:
    gws = [await running.add_gateway(f"gw-{i}", "21231") for i in range(6)]
    hours = [T0 + k * H for k in range(6)]

    async def upload(i: int, name: str, token: str) -> None:
        for b in range(5):
            # each batch touches every hour, in an order that differs between gateways
            order = hours[i % 6:] + hours[:i % 6]
            records = [sample(b * 6 + k + 1, f"lamp-{k}", ts + b * MIN, lamp_on=True) for k, ts in enumerate(order)]
            status, _, doc = await running.client.post(batch_body(name, records), token)
            assert status == 200, doc

    await asyncio.gather(*(upload(i, g.name, t) for i, (g, t) in enumerate(gws)))
    _, _, doc = await running.client.get(f"/api/v1/communes/21231/rollups/hour?from={T0}&to={T0 + 6 * H}")
    assert [(b["bucket"], b["samples"]) for b in doc["buckets"]] == [(h, 6 * 5) for h in hours]
