"""The map's data API on both stores: each lamp at its own position, its state at a glance, deltas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from web_testkit import Web, event, now_ms, sample

from citygate_wire.mqtt import Ack, Command
from collector.app import create_app, start
from collector.dashboard.map import MAP_CACHE
from collector.positions import DevicePosition
from collector.store import Store

DIJON = "21231"


@pytest.fixture
async def web(store: Store) -> AsyncIterator[Web]:
    """The collector with a map that rebuilds its states at once (the real one waits a second between
    rebuilds, 5 s for what it cannot see change): these tests would wait for nothing else."""
    app = create_app(store)
    app[MAP_CACHE].min_rebuild_s = app[MAP_CACHE].max_age_s = 0.0
    runner, url = await start(app, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            yield Web(url, store, session)
    finally:
        await runner.cleanup()


async def layers(web: Web, until: Callable[[dict[str, Any]], bool] = lambda d: True, query: str = "") -> dict[str, Any]:
    """The layers once `until` holds: the map rebuilds its states at most every second."""
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        reply = await web.get(f"/control/api/map/layers{query}")
        assert reply.status == 200, reply.text
        doc: dict[str, Any] = reply.doc
        if until(doc) or asyncio.get_running_loop().time() > deadline:
            return doc
        await asyncio.sleep(0.2)


def lamp_view(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """gateway/device -> what the page draws of it."""
    cabinets, lamps, states = doc["cabinets"], doc["lamps"], doc["states"]["lamps"]
    out = {}
    for i, device in enumerate(lamps["device"]):
        name = f"{cabinets['name'][lamps['cabinet'][i]]}/{device}"
        out[name] = {"lat": lamps["lat"][i], "lon": lamps["lon"][i],
                     "source": lamps["positionSources"][lamps["positionSource"][i]],
                     "state": states["state"][i], "level": states["level"][i],
                     "overridden": i in states["overridden"], "why": states["why"].get(str(i))}
    return out


async def test_each_lamp_stands_at_its_own_position_or_its_cabinet(web: Web) -> None:
    await web.add_cabinet("gw-a", DIJON, lat=47.32, lon=5.04)
    now = now_ms()
    await web.upload("gw-a", [
        event(0, "lamp-1", now - 5000, "device_position", "info", lat=47.3211, lon=5.0411),
        sample(0, "lamp-1", now - 4000, lamp_on=True, level_pct=100),
        sample(0, "lamp-2", now - 4000, lamp_on=True, level_pct=100),
        sample(0, "lamp-3", now - 4000, lamp_on=True, level_pct=100),
    ])
    # an operator's import moves lamp-3 and places lamp-9, which never reported
    await web.store.set_device_positions([DevicePosition("gw-a", "lamp-3", 47.3233, 5.0433),
                                          DevicePosition("gw-a", "lamp-9", 47.3299, 5.0499)], now_ms())
    doc = await layers(web, lambda d: len(d["lamps"]["device"]) == 4)
    view = lamp_view(doc)
    assert (view["gw-a/lamp-1"]["lat"], view["gw-a/lamp-1"]["lon"], view["gw-a/lamp-1"]["source"]) == (
        47.3211, 5.0411, "config")
    assert (view["gw-a/lamp-2"]["lat"], view["gw-a/lamp-2"]["source"]) == (47.32, "cabinet")
    assert (view["gw-a/lamp-3"]["lat"], view["gw-a/lamp-3"]["source"]) == (47.3233, "import")
    assert view["gw-a/lamp-9"]["state"] == "U" and view["gw-a/lamp-9"]["why"] == "never_read"
    # a newer config position wins over the import
    await web.upload("gw-a", [event(0, "lamp-3", now_ms(), "device_position", "info", lat=47.3244, lon=5.0444)])
    doc = await layers(web, lambda d: lamp_view(d)["gw-a/lamp-3"]["source"] == "config")
    assert lamp_view(doc)["gw-a/lamp-3"]["lat"] == 47.3244


async def test_each_state_is_told_apart_and_unreachable_is_not_off(web: Web) -> None:
    await web.add_cabinet("gw-a", DIJON, lat=47.32, lon=5.04)
    await web.add_cabinet("gw-quiet", DIJON, lat=47.33, lon=5.05)  # never uploaded: offline
    now = now_ms()
    await web.upload("gw-a", [
        sample(0, "on", now - 3000, lamp_on=True, level_pct=100),
        sample(0, "dim", now - 3000, lamp_on=True, level_pct=60),
        sample(0, "dim", now - 2000, lamp_on=True, power_w=40.0),  # a newer sample without the level
        sample(0, "off", now - 3000, lamp_on=False, level_pct=0),
        sample(0, "broken", now - 3000, lamp_on=False, level_pct=100),
        event(0, "broken", now - 2500, "lamp_failure", "major"),
        sample(0, "lost", now - 3000, lamp_on=False, level_pct=0),
        event(0, "lost", now - 2500, "communication_failure", "major", failures=3),
        sample(0, "back", now - 9000, lamp_on=True, level_pct=100),
        event(0, "back", now - 8000, "communication_failure", "major", failures=3),
        event(0, "back", now - 7000, "communication_restored", "info"),
        sample(0, "silent", now - 2 * 3600_000, lamp_on=False, level_pct=0),
    ])
    await web.store.set_device_positions([DevicePosition("gw-quiet", "far", 47.331, 5.051)], now_ms())
    doc = await layers(web, lambda d: len(d["lamps"]["device"]) == 8)
    view = {k.split("/")[1]: v for k, v in lamp_view(doc).items()}
    assert {k: (v["state"], v["level"], v["why"]) for k, v in view.items()} == {
        "on": ("O", 100, None), "dim": ("D", 60, None), "off": ("X", 0, None), "broken": ("F", 100, None),
        "lost": ("U", 0, "communication_lost"), "back": ("O", 100, None), "silent": ("U", 0, "stale"),
        "far": ("U", -1, "gateway_offline"),
    }
    assert doc["states"]["cabinets"]["online"] == "10"  # gw-a, gw-quiet by name
    # gw-a has a failed lamp (worse than its unreachable ones); gw-quiet is offline
    assert doc["states"]["cabinets"]["status"] == "fx"


async def test_an_acknowledged_override_marks_the_lamp_until_it_ends(web: Web) -> None:
    cab = await web.add_cabinet("gw-a", DIJON, lat=47.32, lon=5.04)
    now = now_ms()
    await web.upload("gw-a", [sample(0, "lamp-1", now - 1000, lamp_on=True, level_pct=30),
                              sample(0, "lamp-2", now - 1000, lamp_on=True, level_pct=30)])
    cmd = Command("c-1", "lighting.override", {"lamp": "lamp-1", "level_pct": 30, "until_ms": now + 3600_000},
                  now, now + 60_000, "alice")
    await web.store.add_command(cmd, "gateway:gw-a", [cab.gateway.id])
    await web.store.record_ack(cab.gateway.id, Ack("c-1", "done", now_ms()), now_ms())
    doc = await layers(web, lambda d: bool(d["states"]["lamps"]["overridden"]))
    view = lamp_view(doc)
    assert view["gw-a/lamp-1"]["overridden"] and not view["gw-a/lamp-2"]["overridden"]
    assert view["gw-a/lamp-1"]["state"] == "D"
    await web.upload("gw-a", [event(0, "lamp-1", now_ms(), "override_ended", "info", reason="cleared")])
    doc = await layers(web, lambda d: not d["states"]["lamps"]["overridden"])
    assert not lamp_view(doc)["gw-a/lamp-1"]["overridden"]


async def test_states_since_a_stamp_carry_only_what_changed(web: Web) -> None:
    await web.add_cabinet("gw-a", DIJON, lat=47.32, lon=5.04)
    now = now_ms()
    await web.upload("gw-a", [sample(0, f"lamp-{i}", now - 1000, lamp_on=True, level_pct=100) for i in range(5)])
    first = await layers(web, lambda d: len(d["lamps"]["device"]) == 5)
    stamp = first["stamp"]
    await web.upload("gw-a", [sample(0, "lamp-3", now_ms(), lamp_on=True, level_pct=50)])
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        delta = (await web.get(f"/control/api/map/states?since={stamp}")).doc
        if delta["stamp"] != stamp or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.2)
    assert delta["full"] is False and delta["since"] == stamp and delta["layout"] == first["layout"]
    index = first["lamps"]["device"].index("lamp-3")
    assert delta["lamps"]["changed"] == [[index, "D", 50, False, None]]
    assert delta["cabinets"]["changed"] == []  # its cabinet stays "all well"
    # a stamp this process does not hold (another instance's, or too old): everything
    full = (await web.get("/control/api/map/states?since=999999")).doc
    assert full["full"] is True and len(full["lamps"]["state"]) == 5


async def test_bad_parameters_are_refused_with_a_problem(web: Web) -> None:
    for path, parameter in (("/control/api/map/layers?layers=lamps,sewers", "layers"),
                            ("/control/api/map/layers?layers=", "layers"),
                            ("/control/api/map/states?since=yesterday", "since"),
                            ("/control/api/map/states?since=-1", "since")):
        reply = await web.get(path)
        assert reply.status == 400, path
        assert reply.content_type == "application/problem+json"
        assert reply.doc["parameter"] == parameter


async def test_layers_asked_are_the_layers_given_and_answers_are_compressed(web: Web) -> None:
    await web.add_cabinet("gw-a", DIJON, lat=47.32, lon=5.04)
    doc = await layers(web, lambda d: d["cabinets"]["name"] == ["gw-a"], query="?layers=cabinets,junctions")
    assert "lamps" not in doc and doc["cabinets"]["name"] == ["gw-a"] and doc["junctions"] == []
    reply = await web.get("/control/api/map/layers", headers={"Accept-Encoding": "gzip"})
    assert reply.headers.get("Content-Encoding") == "gzip"
    config = (await web.get("/control/api/map/config")).doc
    assert config["tile_url"] is None and any(c["insee"] == DIJON for c in config["communes"])
    assert set(config["states"]) == {"O", "D", "X", "F", "U"}


async def test_the_layers_come_in_pages_of_one_snapshot(web: Web) -> None:
    """limit/offset over the lamps: every page of the same stamp and layout, its slice of the lamps and of
    their states, the total and next (carrying the stamp); the other layers with the first page only; a
    stamp the process let go is a 410, and the client starts over."""
    await web.add_cabinet("gw-a", DIJON, lat=47.32, lon=5.04)
    now = now_ms()
    await web.upload("gw-a", [sample(0, f"lamp-{i}", now - 1000, lamp_on=True, level_pct=100 if i % 2 else 40)
                              for i in range(5)]
                     + [event(0, "lamp-3", now - 500, "communication_failure", "major", failures=3)])
    whole = await layers(web, lambda d: d["states"]["lamps"]["state"] == "DODUD", "?layers=lamps")
    assert whole["total"] == 5 and whole["next"] is None and whole["limit"] == 10_000 and whole["offset"] == 0
    pages, url = [], "/control/api/map/layers?limit=2"
    while url is not None:
        doc = (await web.get(url)).doc
        pages.append(doc)
        assert (doc["stamp"], doc["layout"], doc["total"], doc["limit"]) == (whole["stamp"], whole["layout"], 5, 2)
        url = doc["next"]
        assert url is None or f"stamp={whole['stamp']}" in url
    assert [p["offset"] for p in pages] == [0, 2, 4]
    assert [p["lamps"]["device"] for p in pages] == [["lamp-0", "lamp-1"], ["lamp-2", "lamp-3"], ["lamp-4"]]
    assert "".join(p["states"]["lamps"]["state"] for p in pages) == "DODUD"
    assert [p["states"]["lamps"]["why"] for p in pages] == [{}, {"3": "communication_lost"}, {}]  # whole indices
    assert "cabinets" in pages[0] and "junctions" in pages[0] and "cabinets" in pages[0]["states"]
    assert all(k not in p for p in pages[1:] for k in ("cabinets", "junctions", "cameras", "parking", "vehicles"))
    # a page past the first of a snapshot this process no longer holds (or never did)
    gone = await web.get("/control/api/map/layers?layers=lamps&offset=2&stamp=999999")
    assert gone.status == 410 and gone.content_type == "application/problem+json" and gone.doc["parameter"] == "stamp"
    # the cabinets' layers without the lamps: the cabinets' states only, no page
    cabs = (await web.get("/control/api/map/layers?layers=cabinets")).doc
    assert "lamps" not in cabs["states"] and "total" not in cabs and cabs["states"]["cabinets"]["online"] == "1"


async def test_a_bad_map_page_is_refused_naming_the_parameter(web: Web) -> None:
    for query, parameter in (("limit=0", "limit"), ("limit=20001", "limit"), ("limit=ten", "limit"),
                             ("offset=-1", "offset"), ("stamp=abc", "stamp"), ("stamp=-2", "stamp")):
        reply = await web.get(f"/control/api/map/layers?layers=lamps&{query}")
        assert reply.status == 400 and reply.doc["parameter"] == parameter, (query, reply.text)
    top = (await web.get("/control/api/map/layers?layers=lamps&limit=20000&offset=7")).doc
    assert top["limit"] == 20_000 and top["lamps"]["device"] == [] and top["next"] is None


async def test_a_stamp_of_another_instance_is_never_taken_for_one_of_this_one(store: Store) -> None:
    """Two collectors on one store, as behind a proxy: each numbers its snapshots from a place of its
    own, so B answers A's stamp with everything (states) or a 410 (a page), never a delta from a
    snapshot of B that happens to bear the same number."""
    apps, webs, runners = [], [], []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        try:
            for _ in range(2):
                app = create_app(store)
                app[MAP_CACHE].min_rebuild_s = app[MAP_CACHE].max_age_s = 0.0
                runner, url = await start(app, "127.0.0.1", 0)
                apps.append(app)
                runners.append(runner)
                webs.append(Web(url, store, session))
            a, b = webs
            await a.add_cabinet("gw-a", DIJON, lat=47.32, lon=5.04)
            b.cabinets = a.cabinets  # one fleet: each instance is sent a batch (the other reads it later)
            await a.upload("gw-a", [sample(0, f"lamp-{i}", now_ms() - 1000, lamp_on=True) for i in range(3)])
            await b.upload("gw-a", [sample(0, f"lamp-{i}", now_ms() - 500, lamp_on=True) for i in range(3)])
            on_a = await layers(a, lambda d: len(d["lamps"]["device"]) == 3)
            on_b = await layers(b, lambda d: len(d["lamps"]["device"]) == 3)
            assert on_a["stamp"] != on_b["stamp"]
            assert 0 < on_a["stamp"] < 2**53 and 0 < on_b["stamp"] < 2**53  # a number the page holds exactly
            full = (await b.get(f"/control/api/map/states?since={on_a['stamp']}")).doc
            assert full["full"] is True and len(full["lamps"]["state"]) == 3
            page = await b.get(f"/control/api/map/layers?layers=lamps&limit=1&offset=1&stamp={on_a['stamp']}")
            assert page.status == 410 and page.doc["parameter"] == "stamp"
        finally:
            for runner in runners:
                await runner.cleanup()
