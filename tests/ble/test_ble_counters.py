"""BTHome encryption counters survive a restart of the agent: an advert recorded before it is
refused after it. A re-keyed sensor starts afresh, a lost file is an alarm, and a technician
can forget the counter of a sensor whose own counter restarted."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from ble_testkit import KEY, KEY_HEX, replay_bus, running, until

from drivers import bthome
from drivers.ble import AllowedSensor, BleBus
from drivers.model import Severity

SHELLY = "54:48:E6:8F:80:A5"
OTHER_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


def shelly(*payloads: str) -> list[dict[str, Any]]:
    return [{"mac": SHELLY, "kind": "bthome", "interval_s": 0.03, "rssi": -67, "count": len(payloads),
             "payload": list(payloads)}]


def advert(counter: int, temperature: float, key: bytes = KEY) -> str:
    objects = bthome.objects_for_values({"temperature_c": temperature})
    return bthome.encode(objects, key=key, mac=bthome.parse_mac(SHELLY), counter=counter).hex()


async def heard(bus: BleBus, until_samples: int = 0, until_event: str | None = None) -> Any:
    async with running(bus) as (sink, _):
        if until_event:
            await until(lambda: sink.events(until_event), what=until_event)
        await until(lambda: len(sink.samples("shelly")) >= until_samples, what=f"{until_samples} samples")
        await asyncio.sleep(0.2)
    return sink


async def test_a_counter_heard_before_a_restart_is_refused_after_it(tmp_path: Path) -> None:
    path = tmp_path / "ble-test.counters.json"
    sensor = [AllowedSensor(SHELLY, "shelly", "bthome", KEY)]
    recorded = advert(41, 10.8)
    sink = await heard(replay_bus(shelly(recorded, advert(42, 10.9)), sensor, counters_path=path), until_samples=2)
    assert [s.values["temperature_c"] for s in sink.samples("shelly")] == [10.8, 10.9]
    saved = orjson.loads(path.read_bytes())
    assert saved["sensors"][SHELLY]["counter"] == 42 and saved["sensors"][SHELLY]["id"] == "shelly"
    assert KEY_HEX not in path.read_text() and KEY.hex() not in path.read_text()  # a fingerprint, never the key

    # a new agent process: the recorded advert comes again, then the sensor's next one
    sink = await heard(replay_bus(shelly(recorded, advert(43, 11.0)), sensor, counters_path=path), until_samples=1,
                       until_event="bthome_replay")
    assert [s.values["temperature_c"] for s in sink.samples("shelly")] == [11.0]
    (event,) = sink.events("bthome_replay")
    assert event.severity is Severity.MAJOR and "counter 41 does not increase (last 42)" in event.detail["reason"]
    assert "citygate-agent ble forget-counter shelly" in event.detail["reason"]
    assert orjson.loads(path.read_bytes())["sensors"][SHELLY]["counter"] == 43


async def test_without_a_state_folder_nothing_is_kept(tmp_path: Path) -> None:
    sensor = [AllowedSensor(SHELLY, "shelly", "bthome", KEY)]
    await heard(replay_bus(shelly(advert(5, 1.0)), sensor), until_samples=1)
    sink = await heard(replay_bus(shelly(advert(5, 1.0)), sensor), until_samples=1)
    assert sink.events("bthome_replay") == []
    assert list(tmp_path.iterdir()) == []


async def test_the_counter_is_written_while_the_bus_runs_not_only_at_stop(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    bus = replay_bus(shelly(advert(7, 1.0)), [AllowedSensor(SHELLY, "shelly", "bthome", KEY)], counters_path=path)
    async with running(bus) as (sink, _):
        await until(lambda: sink.samples("shelly"), what="a sample")
        # a kill -9 now would lose at most a second of counters
        await until(lambda: path.exists() and orjson.loads(path.read_bytes())["sensors"][SHELLY]["counter"] == 7,
                    timeout=5, what="the counters file")


async def test_a_re_keyed_sensor_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    await heard(replay_bus(shelly(advert(900, 1.0)), [AllowedSensor(SHELLY, "shelly", "bthome", KEY)],
                           counters_path=path), until_samples=1)
    # the sensor was replaced: a new key, a counter from 1
    sink = await heard(replay_bus(shelly(advert(1, 2.0, OTHER_KEY)), [AllowedSensor(SHELLY, "shelly", "bthome", OTHER_KEY)],
                                  counters_path=path), until_samples=1)
    assert sink.events("bthome_replay") == [] and sink.samples("shelly")[0].values["temperature_c"] == 2.0


async def test_an_unreadable_counters_file_is_an_alarm_and_the_bus_runs_on(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("{ half a file")
    sink = await heard(replay_bus(shelly(advert(3, 1.0)), [AllowedSensor(SHELLY, "shelly", "bthome", KEY)],
                                  counters_path=path), until_samples=1)
    (event,) = sink.events("ble_counters_unreadable")
    assert event.severity is Severity.MAJOR and event.detail["file"] == str(path)
    assert orjson.loads(path.read_bytes())["sensors"][SHELLY]["counter"] == 3  # rewritten whole


async def test_forgetting_a_counter_lets_a_restarted_sensor_in_and_counts_again(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    sensor = [AllowedSensor(SHELLY, "shelly", "bthome", KEY)]
    await heard(replay_bus(shelly(advert(500, 1.0)), sensor, counters_path=path), until_samples=1)
    bus = replay_bus(shelly(advert(1, 2.0), advert(2, 2.5), advert(1, 2.0)), sensor, counters_path=path,
                     min_interval_s=0.0)
    assert bus.forget_counter("shelly") == 500  # the battery was changed: its counter restarted
    async with running(bus) as (sink, _):
        await until(lambda: sink.events("bthome_replay"), what="the replayed advert refused")
    assert [s.values["temperature_c"] for s in sink.samples("shelly")] == [2.0, 2.5]
    assert orjson.loads(path.read_bytes())["sensors"][SHELLY]["counter"] == 2
