"""A small city (24 cabinets, x60) against a real collector and a real Mosquitto: every record stored
exactly once, presence right, and a whole commune's uplink lost then back loses nothing."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path

from collector.store import Store, open_store
from simulators.city import City, Rates, lamp_level, plan_city, sun_elevation_deg, write_inventory
from simulators.city_run import TERRITORY, mqtt_files, provision, read_tokens
from simulators.mosquitto import Mosquitto
from simulators.procs import start_collector


async def wait_until(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.2)


def test_the_plan_follows_the_territory() -> None:
    plan = plan_city(TERRITORY, 1500, 34_000)
    assert len(plan) == 1500 and sum(len(c.lamps) for c in plan) == 34_000
    per = collections.Counter(c.commune for c in plan)
    assert len(per) == 23 and min(per.values()) >= 1
    assert per["21231"] == max(per.values())  # Dijon, the most populous
    assert len({c.gateway for c in plan}) == 1500
    # the same seed, the same city
    assert plan_city(TERRITORY, 1500, 34_000) == plan


def test_lamps_follow_the_night() -> None:
    noon = 1_765_000_000_000 - 1_765_000_000_000 % 86_400_000 + 11 * 3_600_000  # 11:00 UTC
    assert sun_elevation_deg(noon, 47.32, 5.04) > 15 and lamp_level(noon, 47.32, 5.04) == 0
    assert lamp_level(noon + 8 * 3_600_000, 47.32, 5.04) == 100  # 19:00 UTC, 20:00 in Paris
    assert lamp_level(noon + 14 * 3_600_000, 47.32, 5.04) == 50  # 01:00 UTC, 02:00 in Paris


async def test_a_small_city_with_a_commune_cut_off_loses_nothing(tmp_path: Path) -> None:
    plan = plan_city(TERRITORY, 24, 240)
    db = str(tmp_path / "collector.db")
    write_inventory(plan, tmp_path / "inventory.json")
    await asyncio.to_thread(provision, db, tmp_path / "inventory.json", tmp_path / "tokens")
    password = await asyncio.to_thread(mqtt_files, db, tmp_path / "mqtt")
    broker = Mosquitto(tmp_path / "broker", password_file=tmp_path / "mqtt" / "passwd",
                       acl_file=tmp_path / "mqtt" / "acl")
    broker.start()
    collector = None
    try:
        collector, url = await asyncio.to_thread(
            start_collector, db, extra=["--mqtt-url", broker.url, "--mqtt-password-file", str(password)])
        tokens = read_tokens(tmp_path / "tokens", [c.gateway for c in plan])
        # x60, a sample a lamp a minute, uploads every simulated minute; lamps failing often enough to see
        # some within the run (3,000 a lamp-year: about 20 in 20 simulated minutes)
        city = City(plan, tokens, collector_url=url, mqtt_url=broker.url, accel=60, duration_s=60,
                    rates=Rates(sample_s=60, upload_s=60, state_s=5, lamp_failure_rate=3000, uplink_loss_rate=0,
                                power_cut_rate=0, keepalive_s=5))
        cut = collections.Counter(c.commune for c in plan).most_common(1)[0][0]
        stop = asyncio.Event()
        running = asyncio.create_task(city.run(stop))
        async with open_store(db) as store:
            async def presence() -> dict[str, bool | None]:
                return {p.gateway: p.online for p in await store.presence()}

            async def all_online() -> bool:
                return all((await presence()).values())

            await wait_until(all_online, 60, "every gateway online")
            # each cabinet's connection has its epoch (`session`), in its states and its Will
            first = await sessions(store)
            assert all(first.values())
            names_cut = {g.cab.gateway for g in city.by_commune(cut)}
            assert city.cut_commune(cut) == len(names_cut) >= 2

            async def cut_offline() -> bool:
                p = await presence()
                return all(p[n] is False for n in names_cut) and all(v for n, v in p.items() if n not in names_cut)

            await wait_until(cut_offline, 30, f"commune {cut} offline, the others online")
            wills = await sessions(store)
            assert all(wills[n] == first[n] for n in names_cut), "a Will has its connection's session"
            await asyncio.sleep(4)  # 4 simulated minutes of readings journalled behind the cut
            held = sum(len(g.journal) for g in city.by_commune(cut))
            assert held > 0
            city.restore_commune(cut)
            await wait_until(all_online, 60, "every gateway online again")
            back = await sessions(store)
            assert all(back[n] > first[n] for n in names_cut), "a new connection, a later session"
            await asyncio.sleep(2)
            stop.set()
            await running
            # what is left in the journals goes up now: the loops have stopped, so drain by hand
            for g in city.gateways:
                while g.journal:
                    assert await _upload(city, g) is None

            counts = await store.count_records()
            c = city.counters
            assert c.refused == 0 and c.records == c.acked
            assert counts.samples + counts.events == c.records  # every record once, none twice
            assert counts.events >= 1 and c.alarms >= 1
            # residents reported some of the failed lamps through Open311, and none was refused
            assert c.reports >= 1 and c.reports_refused == 0
            async def alarms_in() -> bool:  # the broker acknowledged them; the collector stores them soon after
                return len(await store.alarms(limit=10_000)) >= c.alarms

            await wait_until(alarms_in, 30, f"the {c.alarms} alarms acknowledged by the broker stored")
            alarms = await store.alarms(limit=10_000)
            ids = [a.alarm_id for a in alarms]
            assert len(set(ids)) == len(ids)  # every alarm logged once
            # every alarm whose publish was acknowledged is stored; the city stopped while some were in
            # flight (still queued in their cabinet, their PUBACK not come): those may be stored too
            in_flight = sum(len(g.alarms) for g in city.gateways)
            assert c.alarms <= len(ids) <= c.alarms + in_flight, (len(ids), c.alarms, in_flight)
    finally:
        if collector is not None:
            collector.stop()
        broker.stop()


async def sessions(store: Store) -> dict[str, int]:
    """Each gateway's `session` in its stored presence (0 if none)."""
    return {p.gateway: (p.state or {}).get("session") or 0 for p in await store.presence()}


async def _upload(city: City, g) -> float | None:  # type: ignore[no-untyped-def]
    import aiohttp

    async with aiohttp.ClientSession() as city.http:
        return await g.upload_once()
