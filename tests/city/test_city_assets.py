"""The city's junctions, cameras, vehicles and parking (simulators.city_assets) reach a real collector
through a real Mosquitto, and the collector's read API (the routes the control page reads) shows
what the simulation did; a run with a real agent mixed in gets the agent's readings in."""

from __future__ import annotations

import asyncio
import collections
import subprocess
from pathlib import Path

import aiohttp

from collector.parking.inventory import load_inventory
from collector.store import open_store
from simulators.city import Assets, City, Rates, plan_city, write_inventory
from simulators.city_run import TERRITORY, mqtt_files, provision, provision_assets, read_tokens
from simulators.mosquitto import Mosquitto
from simulators.procs import Proc, bin_path, start_collector
from tests.city.test_city import wait_until

SMALL = Assets(junctions=4, cameras=8, vehicles=4, parking_spaces=60, police_share=0.5)


def test_assets_follow_the_territory_and_leave_the_cabinets_alone(tmp_path: Path) -> None:
    plain = plan_city(TERRITORY, 1500, 34_000)
    full = plan_city(TERRITORY, 1500, 34_000, assets=Assets())
    cabinets = [c for c in full if c.vehicle is None]
    assert [(c.gateway, c.lamps, c.lat) for c in cabinets] == [(c.gateway, c.lamps, c.lat) for c in plain]
    assert sum(len(c.junctions) for c in full) == 113 and sum(len(c.cameras) for c in full) == 269
    vehicles = [c for c in full if c.vehicle is not None]
    assert len(vehicles) == 205 and len({c.gateway for c in full}) == 1705
    assert collections.Counter(c.vehicle.service for c in vehicles if c.vehicle) == {"police": 62, "waste": 143}
    junctions = collections.Counter(c.commune for c in full for _ in c.junctions)
    assert junctions.most_common(1)[0][0] == "21231"  # Dijon, the most populous, has the most
    # the parking as the collector reads its inventory: every space, one hearing gateway a commune
    from simulators.city import parking_inventory

    inv = load_inventory(parking_inventory(full, tmp_path / "parking"))
    assert len(inv.spaces) == 5000
    assert {s.gateway for s in inv.spaces.values()} <= {c.gateway for c in cabinets}
    assert len(inv.gateways()) == len({s.commune for s in inv.streets.values()})


async def _get(http: aiohttp.ClientSession, url: str) -> object:
    async with http.get(url) as resp:
        assert resp.status == 200, (url, resp.status, await resp.text())
        return await resp.json()


async def test_junctions_cameras_vehicles_and_parking_reach_the_collector(tmp_path: Path) -> None:
    plan = plan_city(TERRITORY, 24, 240, assets=SMALL)
    db = str(tmp_path / "collector.db")
    write_inventory(plan, tmp_path / "inventory.json")
    await asyncio.to_thread(provision, db, tmp_path / "inventory.json", tmp_path / "tokens")
    env = await asyncio.to_thread(provision_assets, db, plan, tmp_path)
    password = await asyncio.to_thread(mqtt_files, db, tmp_path / "mqtt")
    # the control routes are for operators (a viewer reads them)
    await asyncio.to_thread(subprocess.run, [bin_path("citygate-collector"), "operator", "add", "watcher", "--role",
                                             "viewer", "--token-file", str(tmp_path / "viewer"), "--db", db],
                            check=True, capture_output=True, timeout=120)
    viewer = (tmp_path / "viewer").read_text().strip()
    broker = Mosquitto(tmp_path / "broker", password_file=tmp_path / "mqtt" / "passwd",
                       acl_file=tmp_path / "mqtt" / "acl")
    broker.start()
    collector = None
    try:
        collector, url = await asyncio.to_thread(
            start_collector, db, extra=["--mqtt-url", broker.url, "--mqtt-password-file", str(password)], env=env)
        tokens = read_tokens(tmp_path / "tokens", [c.gateway for c in plan])
        # x60 for 60 s: an hour; vehicles on the road whatever the hour; faults frequent enough to be seen
        rates = Rates(sample_s=60, upload_s=60, state_s=5, keepalive_s=5, lamp_failure_rate=0, uplink_loss_rate=0,
                      power_cut_rate=0, counts_interval_s=60, camera_sample_s=60, camera_down_rate=20_000,
                      camera_dark_rate=0, detector_fault_rate=5_000, signal_fault_rate=20_000,
                      parking_stay_s=900, sensor_silent_rate=3_000, police_hours=(0, 24), waste_hours=(0, 24))
        city = City(plan, tokens, collector_url=url, mqtt_url=broker.url, accel=60, duration_s=60, rates=rates)
        stop = asyncio.Event()
        running = asyncio.create_task(city.run(stop))
        vehicle_gws = {g.cab.gateway for g in city.gateways if g.vehicle is not None}
        async with open_store(db) as store:
            async def all_online() -> bool:
                return all(p.online for p in await store.presence())

            await wait_until(all_online, 60, "every gateway online, the vehicles' too")
            assert vehicle_gws <= {p.gateway for p in await store.presence()}
            await asyncio.sleep(40)
            stop.set()
            await running
            for g in city.gateways:  # what is left in the journals, by hand (the loops have stopped)
                while g.journal:
                    async with aiohttp.ClientSession() as city.http:
                        assert await g.upload_once() is None
            c = city.counters
            assert c.refused == 0 and c.records == c.acked
            assert c.counts > 0 and c.parking > 0 and c.positions > 0

            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {viewer}"}) as http:
                await _check_traffic(http, url, store, city)
                await _check_cameras(http, url, city)
                await _check_vehicles(http, url, store, city)
                await _check_parking(http, url, city)
    finally:
        if collector is not None:
            collector.stop()
        broker.stop()


async def _check_traffic(http: aiohttp.ClientSession, url: str, store, city: City) -> None:  # type: ignore[no-untyped-def]
    planned = {j.junction.id: j for g in city.gateways for j in g.junctions}
    rows = await store.traffic_intervals(None, 0, 2**62)
    assert len(rows) == city.counters.counts  # every detector interval stored once
    assert {r.junction for r in rows} == set(planned)
    # the detectors the simulation has faulty flag their intervals
    faulty_now = {(j.junction.bus + "." + d) for j in planned.values() for d in j.faults}
    newest = {}
    for r in rows:
        newest[r.detector] = r
    assert {d for d, r in newest.items() if r.fault} == faulty_now
    panel = await _get(http, url + "/api/v1/traffic/junctions")
    assert isinstance(panel, list) and {j["junction"] for j in panel} == set(planned)
    assert sum(j["vehicles"] for j in panel) > 0
    for j in panel:  # a detector faulty now is named in its junction's last hour, which is flagged
        sim = planned[j["junction"]]
        now_faulty = {f"{sim.junction.bus}.{d}" for d in sim.faults}
        assert now_faulty <= set(j["faulty_detectors"]) and j["flagged"] == bool(j["faulty_detectors"])
    control = await _get(http, url + "/api/v1/control/junctions")
    assert isinstance(control, dict)
    modes = {j["junction"]: j["mode"] for j in control["junctions"]}
    assert modes == {k: "yellow_flash" if j.signal_fault and j.signal_fault[0] == "hardware_error" else "normal"
                     for k, j in planned.items()}


async def _check_cameras(http: aiohttp.ClientSession, url: str, city: City) -> None:
    truth = {(g.cab.gateway, cam): g.cameras.status(cam) for g in city.gateways if g.cameras for cam in g.cameras.cameras}
    doc = await _get(http, url + "/api/v1/cameras")
    assert isinstance(doc, dict)
    shown = {(c["gateway"], c["device"]): c["status"] for c in doc["cameras"]}
    assert shown == truth
    assert set(truth.values()) - {"ok"}, "no camera fault within the run: the rates are too low to test anything"
    assert all(c["firmware"] for c in doc["cameras"])
    assert sum(x["cameras"] for x in doc["communes"]) == len(truth)


async def _check_vehicles(http: aiohttp.ClientSession, url: str, store, city: City) -> None:  # type: ignore[no-untyped-def]
    sims = {g.vehicle.plan.name: g.vehicle for g in city.gateways if g.vehicle is not None}
    doc = await _get(http, url + "/api/v1/vehicles")
    assert isinstance(doc, dict)
    listed = doc["vehicles"]
    # police vehicles are for operators with the police role: without an operator login nobody has it
    assert {v["name"] for v in listed} == {n for n, s in sims.items() if s.plan.service == "waste"}
    for v in listed:
        sim = sims[v["name"]]
        assert sim.position is not None and v["position"] is not None
        assert (v["position"]["ts_ms"], v["position"]["lat"], v["position"]["lon"]) == sim.position
        trips = await _get(http, url + f"/api/v1/vehicles/{v['name']}/trips")
        assert isinstance(trips, dict) and trips["trips"], trips
        ended = [t for t in trips["trips"] if t["ended_ms"] is not None]
        rounds = await _get(http, url + f"/api/v1/vehicles/{v['name']}/rounds")
        assert isinstance(rounds, dict) and len(rounds["rounds"]) == len(ended)
        # its bin lifts (or its positions) are on the streets of its commune's grid, which the collector knows
        assert all(r["streets"] for r in rounds["rounds"]), rounds
    for name, sim in sims.items():
        if sim.plan.service == "police":
            async with http.get(url + f"/api/v1/vehicles/{name}") as resp:
                assert resp.status == 404
            found = await store.vehicle(name)
            pos = await store.latest_position(found)
            assert pos is not None and (pos.ts_ms, pos.lat, pos.lon) == sim.position


async def _check_parking(http: aiohttp.ClientSession, url: str, city: City) -> None:
    truth: dict[str, str] = {}
    for g in city.gateways:
        if g.parking is not None:
            truth.update(g.parking.occupied())
    rows = await _get(http, url + "/api/v1/parking/spaces")
    assert isinstance(rows, list)
    assert {s["space"]: s["state"] for s in rows} == truth
    now = await _get(http, url + "/api/v1/parking/now")
    assert isinstance(now, dict)
    assert sum(s["occupied"] for s in now["streets"]) == sum(v == "occupied" for v in truth.values())
    assert sum(s["spaces"] for s in now["streets"]) == len(truth) == SMALL.parking_spaces


def test_a_real_agent_mixed_into_the_city(tmp_path: Path) -> None:
    """`citygate-sim city --agents 1`: one cabinet of Dijon run by citygate-agent with a lamp simulator."""
    work = tmp_path / "city"
    proc = Proc("city", [bin_path("citygate-sim"), "city", "--cabinets", "24", "--lamps", "240", "--junctions", "2",
                         "--cameras", "4", "--vehicles", "2", "--parking-spaces", "30", "--agents", "1",
                         "--accel", "60", "--sample-s", "60", "--upload-s", "60", "--state-s", "5",
                         "--report-s", "5", "--workdir", str(work)])
    try:
        agent_gw = proc.wait_for(r"real agents: (\S+)", timeout=180).group(1)
        db = str(work / "collector.db")

        async def agent_readings() -> tuple[int, bool]:
            async with open_store(db) as store:
                latest = await store.latest_values(agent_gw, [f"lamp-{u:03d}" for u in range(1, 4)])
                online = {p.gateway: p.online for p in await store.presence()}.get(agent_gw)
                return len(latest), bool(online)

        async def watch() -> None:
            async def ready() -> bool:
                n, online = await agent_readings()
                return n == 3 and online

            await wait_until(ready, 120, f"the real agent {agent_gw}'s lamp readings and its MQTT presence")

        asyncio.run(watch())
        proc.wait_for(r"acked [\d,]+ of", timeout=60)  # the simulated city runs beside it
    finally:
        code = proc.stop(30)
    assert code == 0, proc.output()[-3000:]  # SIGTERM: the city stops, then its agents, collector and broker
    assert "Traceback" not in proc.output(), proc.output()[-3000:]
