"""Police vehicles' positions and trips reach only operators with the police role: on EVERY route of the app
(enumerated from app.router, so a route added later that leaks is caught), open data and the page included."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import aiohttp
import pytest
from aiohttp import web

from collector.app import create_app, start
from collector.rollup import PARIS
from collector.store import Store
from collector.tokens import hash_token
from collector.vehicles.routes import PUBLISH_DELAY_MS
from collector.vehicles.store import Street
from tests.collector_web.web_testkit import Web, event, sample

POLICE_LAT, POLICE_LON, POLICE_KM = 47.2961357, 5.0123457, 12345.6
#: what must never reach anyone without the role: the police car's coordinates and its trip's length
MARKERS = ("2961357", "0123457", "12345.6")
RUE_A = Street("21231", "Rue de la Liberté", ((47.3219, 5.0400), (47.3219, 5.0440)))
RUE_B = Street("21231", "Rue Chabot-Charny", ((47.3200, 5.0450), (47.3170, 5.0450)))
HOUR = 3_600_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def add_operator(store: Store, name: str, roles: frozenset[str] = frozenset()) -> dict[str, str]:
    token = "cop_" + secrets.token_urlsafe(24)
    await store.add_operator(name, hash_token(token), now_ms())
    if roles:
        assert await store.set_operator_roles(name, roles, "test", now_ms())
    return {"Authorization": f"Bearer {token}"}


async def fleet(w: Web) -> int:
    """A police car and a refuse truck, each with its gateway, a trip and positions; returns the trip's end."""
    store = w.store
    await w.add_cabinet("gw-police-1", "21231")
    await w.add_cabinet("gw-waste-1", "21231")
    await w.add_cabinet("gw-cab-1", "21231", lat=47.32, lon=5.04, cabinet="C-1")
    await store.add_vehicle("police-1", "police", "21231", "gw-police-1", "gps", now_ms())
    await store.add_vehicle("waste-1", "waste", "21231", "gw-waste-1", "gps", now_ms())
    await store.load_streets([RUE_A, RUE_B])
    t0 = now_ms() - 3 * HOUR
    end = t0 + 40 * 60_000
    await w.upload("gw-police-1", [
        event(0, "gps", t0, "trip_started", "info", trip=t0, by="speed", lat=POLICE_LAT, lon=POLICE_LON),
        sample(0, "gps", t0 + 1000, latitude_deg=POLICE_LAT, longitude_deg=POLICE_LON, speed_kmh=42.0,
               fix_quality="ok", in_trip=True),
        event(0, "gps", end, "trip_ended", "info", trip=t0, started_ms=t0, ended_ms=end, duration_s=2400.0,
              distance_m=POLICE_KM, idle_s=60.0, cycles=0, start_lat=POLICE_LAT, start_lon=POLICE_LON,
              lat=POLICE_LAT, lon=POLICE_LON),
        event(0, "gps", end + 1000, "gnss_no_fix", "minor", epochs=5, time_known=True),
    ])
    await w.upload("gw-waste-1", [
        event(0, "gps", t0, "trip_started", "info", trip=t0, by="ignition", lat=47.3219, lon=5.0401),
        sample(0, "gps", t0 + 1000, latitude_deg=47.3219, longitude_deg=5.0401, speed_kmh=12.0, fix_quality="ok",
               in_trip=True),
        event(0, "gps", t0 + 60_000, "bin_lift", "info", started_ms=t0 + 60_000, duration_s=20.0, trip=t0,
              lat=47.32191, lon=5.0410),
        event(0, "gps", t0 + 120_000, "bin_lift", "info", started_ms=t0 + 120_000, duration_s=20.0, trip=t0,
              lat=47.3190, lon=5.04502),
        event(0, "gps", end, "trip_ended", "info", trip=t0, started_ms=t0, ended_ms=end, duration_s=2400.0,
              distance_m=3100.0, idle_s=600.0, cycles=2, start_lat=47.3219, start_lon=5.0401, lat=47.3190,
              lon=5.0450),
    ])
    return end


@asynccontextmanager
async def serving(store: Store, *, operator_login: bool, delay_s: float = 0) -> AsyncIterator[tuple[Web, web.Application]]:
    app = create_app(store, operator_login=operator_login)
    app[PUBLISH_DELAY_MS] = int(delay_s * 1000)
    runner, url = await start(app, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30),
                                         cookie_jar=aiohttp.DummyCookieJar()) as session:
            yield Web(url, store, session), app
    finally:
        await runner.cleanup()


#: path parameters by name: the police vehicle's everywhere it can be named
PARAMS = {"gateway": "gw-police-1", "device": "gps", "vehicle": "police-1", "insee": "21231", "period": "day",
          "entity_id": "urn:ngsi-ld:Device:gw-police-1:gps", "name": "app.js"}
QUERY = {"gateway": "gw-police-1", "device": "gps", "vehicle": "police-1", "commune": "21231"}


def fill_in(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{([^}:]+)(:[^}]*)?\}", lambda m: values[m.group(1)], template)


def every_request(app: web.Application) -> list[tuple[str, str]]:
    """(method, path) for every route of the app, its parameters filled twice: by name, and all with the
    police gateway's name."""
    out = []
    for resource in app.router.resources():
        info = resource.get_info()
        template = info.get("formatter") or info.get("path") or ""
        names = re.findall(r"\{([^}:]+)", template)
        for route in resource:
            if route.method == "HEAD":
                continue
            for fill in ({n: PARAMS.get(n, "1") for n in names}, dict.fromkeys(names, "gw-police-1")):
                out.append((route.method, fill_in(template, fill)))
    assert len(out) > 40, "the app's routes were not found"
    return sorted(set(out))


async def read(w: Web, method: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
    """Status and body (the first half second of a stream that never ends)."""
    get = method == "GET"
    async with w.session.request(method, w.url + path, headers=headers, allow_redirects=False,
                                 params=QUERY if get else None, json=None if get else {}) as resp:
        chunks: list[bytes] = []
        try:
            async with asyncio.timeout(0.5):
                async for chunk in resp.content.iter_any():
                    chunks.append(chunk)
        except TimeoutError:
            pass
        return resp.status, b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.parametrize("operator_login", [True, False])
async def test_no_route_shows_a_police_position_or_trip_without_the_police_role(store: Store,
                                                                                operator_login: bool) -> None:
    async with serving(store, operator_login=operator_login) as (w, app):
        await fleet(w)
        plain = await add_operator(store, "alice")
        police = await add_operator(store, "bob", frozenset({"police"}))
        requests = every_request(app)
        leaks: list[str] = []
        seen_by_police: set[tuple[str, str]] = set()
        for method, path in requests:
            for who, headers in (("anonymous", {}), ("operator without role", plain), ("police", police)):
                status, body = await read(w, method, path, headers)
                found = [m for m in MARKERS if m in body]
                if who == "police":
                    seen_by_police.update((path, m) for m in found)
                elif found:
                    leaks.append(f"{method} {path} as {who}: {status} holds {found}")
        assert not leaks, "\n".join(leaks)
        # the test can see a leak: the same routes do show them to the police role
        police_paths = {p for p, _ in seen_by_police}
        assert {"/api/v1/vehicles", "/api/v1/vehicles/police-1", "/api/v1/vehicles/police-1/trips"} <= police_paths
        assert "/api/v1/gateways/gw-police-1/events" in police_paths


async def test_the_vehicle_api_by_role(store: Store) -> None:
    async with serving(store, operator_login=True) as (w, _):
        end = await fleet(w)
        plain = await add_operator(store, "alice")
        police = await add_operator(store, "bob", frozenset({"police"}))
        listed = (await w.get("/api/v1/vehicles", headers=plain)).doc["vehicles"]
        assert [v["name"] for v in listed] == ["waste-1"]
        assert listed[0]["position"]["lat"] == 47.3219 and listed[0]["depot_commune"] == "21231"
        assert (await w.get("/api/v1/vehicles/police-1", headers=plain)).status == 404
        assert (await w.get("/api/v1/gateways/gw-police-1/devices/gps/samples", headers=plain)).status == 404
        listed = (await w.get("/api/v1/vehicles", headers=police)).doc["vehicles"]
        assert [v["name"] for v in listed] == ["police-1", "waste-1"]
        (trip,) = (await w.get("/api/v1/vehicles/police-1/trips", headers=police)).doc["trips"]
        assert trip["distance_m"] == POLICE_KM and trip["ended_ms"] == end
        rounds = (await w.get("/api/v1/vehicles/waste-1/rounds", headers=plain)).doc["rounds"]
        assert [(s["street"], s["count"]) for s in rounds[0]["streets"]] == [("Rue de la Liberté", 1),
                                                                            ("Rue Chabot-Charny", 1)]
        assert rounds[0]["by"] == "cycles"
        assert (await w.get("/api/v1/vehicles/police-1/rounds", headers=police)).status == 404  # no rounds
        assert (await w.get("/api/v1/vehicles", headers={})).status == 401  # operators only, with the option
        assert (await w.get("/api/v1/vehicles/waste-1/trips?from=5&to=1", headers=plain)).status == 400
        # a role taken away applies at the next request: no session to wait out
        assert await store.set_operator_roles("bob", frozenset(), "test", now_ms())
        assert (await w.get("/api/v1/vehicles/police-1", headers=police)).status == 404


async def test_waste_rounds_are_open_data_only_as_street_collected_on_date_after_the_delay(store: Store) -> None:
    async with serving(store, operator_login=True, delay_s=4 * 3600) as (w, _):
        await fleet(w)  # the round ended 2 h 20 ago
        early = (await w.get("/opendata/v1/waste/collected.json")).doc
        assert early["rows"] == []  # a 4 h delay: not yet
    async with serving(store, operator_login=True, delay_s=3600) as (w, _):
        reply = await w.get("/opendata/v1/waste/collected.json")
        assert reply.status == 200
        day = datetime.fromtimestamp((now_ms() - 3 * HOUR) / 1000, PARIS).date().isoformat()
        assert reply.doc["rows"] == [{"date": day, "commune_insee": "21231", "street": "Rue Chabot-Charny"},
                                     {"date": day, "commune_insee": "21231", "street": "Rue de la Liberté"}]
        text = reply.text
        assert "waste-1" not in text and "47.3" not in text and "5.04" not in text and "police" not in text
        assert (await w.get("/opendata/v1/waste/collected.json?commune=99999")).status == 404


def test_a_position_is_on_the_nearest_street_within_40_m() -> None:
    from collector.vehicles.store import street_at

    assert street_at([RUE_A, RUE_B], 47.32200, 5.0420) == RUE_A  # 11 m north of its centre line
    assert street_at([RUE_A, RUE_B], 47.3185, 5.04505) == RUE_B
    assert street_at([RUE_A, RUE_B], 47.3260, 5.0420) is None  # 450 m away: a yard, no street
