"""The BLE bus driven by the replay backend through bleak's real BleakScanner, into a recording sink."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from ble_testkit import KEY, KEY_HEX, encrypted, replay_bus, running, until
from bleak.exc import BleakBluetoothNotAvailableError, BleakBluetoothNotAvailableReason

from drivers import bthome
from drivers.base import BusContext
from drivers.ble import AllowedSensor, BleBus, BleConfig
from drivers.errors import ConfigError, DeviceError
from drivers.model import Severity
from drivers.registry import make_bus
from simulators.ble import ReplayScanner, parse_scenario

ATC = "A4:C1:38:8D:18:B2"
SHELLY = "54:48:E6:8F:80:A5"
RUUVI = "CB:B8:33:4C:88:4F"
STRANGER = "11:22:33:44:55:66"
RUUVI_VALUES = {"temperature_c": 9.85, "humidity_pct": 83.2, "pressure_pa": 101325, "acceleration_x_mg": 4,
                "acceleration_y_mg": -4, "acceleration_z_mg": 1036, "battery_mv": 2977, "tx_power_dbm": 4,
                "movement_count": 66}


def bt(mac: str, **extra: Any) -> dict[str, Any]:
    return {"mac": mac, "kind": "bthome", "interval_s": 0.03, "rssi": -67, **extra}


async def test_replayed_adverts_reach_the_sink_as_samples_with_units() -> None:
    bus = replay_bus(
        [bt(ATC, name="ATC_8D18B2", values={"battery_pct": 93, "temperature_c": 11.25, "humidity_pct": 81.5}),
         bt(SHELLY, rssi=-74, key=KEY_HEX, values={"temperature_c": 10.8, "humidity_pct": 79.0}),
         {"mac": RUUVI.lower(), "kind": "ruuvi", "interval_s": 0.03, "rssi": -70, "values": RUUVI_VALUES}],
        [AllowedSensor(ATC, "atc-1", "bthome"), AllowedSensor(SHELLY, "shelly-1", "bthome", KEY),
         AllowedSensor(RUUVI, "ruuvi-1", "ruuvi")],
    )
    async with running(bus) as (sink, _):
        await until(lambda: all(len(sink.samples(d)) >= 3 for d in ("atc-1", "shelly-1", "ruuvi-1")), what="samples")
    assert sink.samples("atc-1")[0].values == {"battery_pct": 93, "temperature_c": 11.25, "humidity_pct": 81.5,
                                               "rssi_dbm": -67}
    assert sink.samples("shelly-1")[0].values == {"temperature_c": 10.8, "humidity_pct": 79.0, "rssi_dbm": -74}
    assert sink.samples("ruuvi-1")[0].values == {
        "temperature_c": 9.85, "humidity_pct": 83.2, "pressure_hpa": 1013.25, "acceleration_x_g": 0.004,
        "acceleration_y_g": -0.004, "acceleration_z_g": 1.036, "battery_v": 2.977, "tx_power_dbm": 4,
        "movement_count": 66, "rssi_dbm": -70}
    assert not [r for r in sink.records if r not in sink.samples(r.device)]  # no event: all went well
    assert {s.device: s.state for s in bus.states()} == {"atc-1": "ok", "shelly-1": "ok", "ruuvi-1": "ok"}


async def test_repeated_adverts_are_one_reading_each() -> None:
    bus = replay_bus(
        [bt(ATC, count=5, repeat=3, values={"temperature_c": 20.0}),
         {"mac": RUUVI, "kind": "ruuvi", "interval_s": 0.03, "count": 4, "repeat": 2, "values": RUUVI_VALUES},
         # a Ruuvi payload without sequence number: identical bytes are the same measurement
         {"mac": "CB:B8:33:4C:88:50", "kind": "ruuvi", "interval_s": 0.03, "count": 6,
          "payload": "0512FC5394C37C0004FFFC040CAC3642FFFFCBB8334C8850"}],
        [AllowedSensor(ATC, "atc", "bthome"), AllowedSensor(RUUVI, "ruuvi", "ruuvi"),
         AllowedSensor("CB:B8:33:4C:88:50", "ruuvi-noseq", "ruuvi")],
    )
    async with running(bus) as (sink, _):
        await until(lambda: len(sink.samples("atc")) == 5 and len(sink.samples("ruuvi")) == 4, what="all packets")
        await asyncio.sleep(0.5)  # the last repeats and any straggler have been delivered by now
    assert len(sink.samples("atc")) == 5
    assert len(sink.samples("ruuvi")) == 4
    assert len(sink.samples("ruuvi-noseq")) == 1


async def test_only_allowed_sensors_produce_samples() -> None:
    bus = replay_bus(
        [bt(ATC.lower(), values={"temperature_c": 20.0}), bt(STRANGER, values={"temperature_c": 35.0}),
         {"mac": "22:33:44:55:66:77", "kind": "ruuvi", "interval_s": 0.03, "values": RUUVI_VALUES}],
        [AllowedSensor(ATC, "atc", "bthome")],
    )
    async with running(bus) as (sink, _):
        await until(lambda: len(sink.samples("atc")) >= 3 and bus.ignored >= 6, what="adverts")
    assert {r.device for r in sink.records} == {"atc"}
    assert all(s.values["temperature_c"] == 20.0 for s in sink.samples("atc"))


async def test_a_sensor_that_goes_quiet_is_reported_silent_then_back() -> None:
    bus = replay_bus([bt(ATC, interval_s=0.05, gaps=[[0.3, 2.0]], values={"temperature_c": 20.0})],
                     [AllowedSensor(ATC, "atc", "bthome")], silent_after_s=0.8)
    async with running(bus) as (sink, _):
        await until(lambda: sink.events("sensor_silent"), what="sensor_silent")
        assert [s.state for s in bus.states()] == ["failing"]
        assert "no new advertisement" in (bus.states()[0].last_error or "")
        before = len(sink.samples("atc"))
        await until(lambda: sink.events("sensor_back"), what="sensor_back")
        await until(lambda: len(sink.samples("atc")) > before, what="samples again")
    silent, back = sink.events("sensor_silent")[0], sink.events("sensor_back")[0]
    assert silent.severity is Severity.MINOR and silent.detail["silent_s"] >= 0.8
    assert back.detail["silent_for_s"] >= 0.8
    assert sink.records.index(silent) < sink.records.index(back)
    assert len(sink.events("sensor_silent")) == 1 and len(sink.events("sensor_back")) == 1
    assert [s.state for s in bus.states()] == ["ok"]


async def test_a_sensor_never_heard_is_reported_silent() -> None:
    bus = replay_bus([bt(ATC, values={"temperature_c": 20.0})],
                     [AllowedSensor(ATC, "atc", "bthome"), AllowedSensor(STRANGER, "ghost", "ruuvi")],
                     silent_after_s=0.5)
    async with running(bus) as (sink, _):
        await until(lambda: sink.events("sensor_silent", "ghost"), what="ghost silent")
        await asyncio.sleep(0.3)
    assert sink.events("sensor_silent", "ghost")[0].detail["last_ts_ms"] is None
    assert not sink.events("sensor_silent", "atc")


async def test_a_silent_sensor_state_keeps_telling_how_long(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing to hear is no reason for the agent's watchdog to think the bus is stuck.
    monkeypatch.setattr("drivers.ble.REFRESH_S", 0.1)
    bus = replay_bus([bt(ATC, count=1, values={"temperature_c": 20.0})], [AllowedSensor(ATC, "atc", "bthome")],
                     silent_after_s=0.3)
    async with running(bus) as (sink, _):
        await until(lambda: sink.events("sensor_silent"), what="sensor_silent")
        first = bus.states()[0].last_error
        await until(lambda: bus.states()[0].last_error != first, what="a refreshed state")
    assert re.fullmatch(r"no new advertisement for \d+ s", bus.states()[0].last_error or "")


async def test_encrypted_counter_that_does_not_increase_is_refused() -> None:
    old, new = encrypted(SHELLY, {"temperature_c": 10.8}, 1, 1), encrypted(SHELLY, {"temperature_c": 10.9}, 2, 2)
    bus = replay_bus([bt(SHELLY, count=3, repeat=2, payload=[old, new, old])],
                     [AllowedSensor(SHELLY, "shelly", "bthome", KEY)])
    async with running(bus) as (sink, _):
        await until(lambda: sink.events("bthome_replay"), what="replay refused")
        await asyncio.sleep(0.3)
    assert [s.values["temperature_c"] for s in sink.samples("shelly")] == [10.8, 10.9]
    (event,) = sink.events("bthome_replay")  # radio repeats of the same packet are not attacks
    assert event.severity is Severity.MAJOR and "counter 1 does not increase (last 2)" in event.detail["reason"]
    assert bus.states()[0].errors == {"bthome_replay": 2}  # the replayed packet, sent twice


async def test_plaintext_from_a_sensor_with_a_key_is_refused() -> None:
    bus = replay_bus([bt(SHELLY, values={"temperature_c": 10.8})], [AllowedSensor(SHELLY, "shelly", "bthome", KEY)])
    async with running(bus) as (sink, _):
        await until(lambda: bus.states()[0].errors.get("bthome_downgrade", 0) >= 3, what="downgrades")
    assert not sink.samples("shelly")
    (event,) = sink.events("bthome_downgrade")  # one event a minute, however many adverts
    assert event.detail["count"] == 1 and event.severity is Severity.MAJOR


async def test_wrong_key_and_missing_key_are_named_events_without_samples() -> None:
    payload = encrypted(SHELLY, {"temperature_c": 10.8}, 5)
    bus = replay_bus([bt(SHELLY, payload=payload), bt(ATC, key=KEY_HEX, values={"temperature_c": 1.0})],
                     [AllowedSensor(SHELLY, "shelly", "bthome", bytes(16)), AllowedSensor(ATC, "atc", "bthome")])
    async with running(bus) as (sink, _):
        await until(lambda: sink.events("bthome_auth_failed") and sink.events("bthome_key_missing"), what="events")
    assert not sink.samples("shelly") and not sink.samples("atc")
    assert "wrong bindkey" in sink.events("bthome_auth_failed")[0].detail["reason"]
    assert "bindkey is needed" in sink.events("bthome_key_missing")[0].detail["reason"]
    assert sink.events("bthome_auth_failed")[0].detail["payload"] == payload


async def test_garbage_is_counted_and_reported_once_a_minute() -> None:
    bus = replay_bus([bt(ATC, payload=["2002c4", "e10203"]), {"mac": RUUVI, "kind": "ruuvi", "interval_s": 0.03,
                                                              "payload": "05ff"}],
                     [AllowedSensor(ATC, "atc", "bthome"), AllowedSensor(RUUVI, "ruuvi", "ruuvi")])
    async with running(bus) as (sink, _):
        await until(lambda: all(s.errors.get("decode_error", 0) >= 5 for s in bus.states()), what="decode errors")
    assert [e.device for e in sink.events("decode_error")] in (["atc", "ruuvi"], ["ruuvi", "atc"])
    assert "BTHome version 1, expected 2" in sink.events("decode_error", "atc")[0].detail["reason"]
    assert "24 bytes, got 2" in sink.events("decode_error", "ruuvi")[0].detail["reason"]
    assert all(s.state == "failing" and s.last_error for s in bus.states())


async def test_unknown_object_keeps_the_known_values_and_is_reported_once() -> None:
    bus = replay_bus([bt(ATC, payload=["400001020008ee0102", "400002020008ee0102"])], [AllowedSensor(ATC, "atc", "bthome")])
    async with running(bus) as (sink, _):
        await until(lambda: len(sink.samples("atc")) >= 4, what="samples")
    assert sink.samples("atc")[0].values == {"temperature_c": 20.48, "rssi_dbm": -67}
    (event,) = sink.events("bthome_unknown_object")
    assert event.detail == {"object_id": "0xee", "offset": 5, "not_decoded": "ee0102"}


async def test_min_interval_holds_back_repeats_but_not_state_changes_or_events() -> None:
    # packet id, then motion or a button press
    payloads = ["4000012101", "4000022101", "4000032100", "4000042100", "4000053a01", "4000063a01", "4000072100"]
    bus = replay_bus([bt(ATC, count=7, payload=payloads)], [AllowedSensor(ATC, "atc", "bthome")], min_interval_s=60)
    async with running(bus) as (sink, _):
        await until(lambda: len(sink.samples("atc")) == 5, what="the last advert")
        await asyncio.sleep(0.2)
    assert [s.values for s in sink.samples("atc")] == [
        {"motion": True, "rssi_dbm": -67}, {"motion": False, "rssi_dbm": -67},
        {"button": "press", "rssi_dbm": -67}, {"button": "press", "rssi_dbm": -67},
        {"motion": False, "rssi_dbm": -67}]


async def test_read_gives_the_last_reading_or_a_device_error() -> None:
    bus = replay_bus([bt(ATC, start_s=0.5, values={"temperature_c": 20.0})], [AllowedSensor(ATC, "atc", "bthome")])
    with pytest.raises(DeviceError, match="no advertisement received yet"):
        await bus.read("atc")
    with pytest.raises(DeviceError, match="not on BLE bus 'ble-test'"):
        await bus.read("lamp-3")
    async with running(bus) as (sink, _):
        await until(lambda: sink.samples("atc"), what="a sample")
        sample = await bus.read("atc")
    assert sample.device == "atc" and sample.values["temperature_c"] == 20.0


# --- Bluetooth stack missing --------------------------------------------------------------------------


async def test_no_dbus_gives_one_clear_event_and_the_bus_keeps_retrying(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path / 'no-such-socket'}")
    bus = BleBus(BleConfig("ble0", (AllowedSensor(ATC, "atc", "bthome"),), retry_s=0.05))  # the OS backend
    caplog.set_level(logging.DEBUG, logger="citygate.ble")
    async with running(bus) as (sink, task):
        await until(lambda: sink.events("ble_unavailable"), what="ble_unavailable")
        await asyncio.sleep(0.5)  # several retries meanwhile
        assert not task.done()
    (event,) = sink.events("ble_unavailable")
    assert event.device == "ble0" and event.severity is Severity.MAJOR
    assert "no D-Bus system bus" in event.detail["reason"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert errors[0].getMessage().startswith("BLE bus 'ble0': Bluetooth unavailable: no D-Bus system bus")
    assert bus.states()[0].state == "failing"
    assert bus.states()[0].errors["ble_unavailable"] >= 3  # each retry shows: the bus is alive, not stuck
    with pytest.raises(DeviceError, match="no D-Bus system bus"):
        await bus.read("atc")


async def test_no_bluez_on_the_system_bus_is_named(monkeypatch: pytest.MonkeyPatch, private_dbus: str) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", private_dbus)
    bus = BleBus(BleConfig("ble0", (AllowedSensor(ATC, "atc", "bthome"),), retry_s=0.05))
    async with running(bus) as (sink, task):
        await until(lambda: sink.events("ble_unavailable"), what="ble_unavailable")
        assert not task.done()
    assert "BlueZ (org.bluez) is not on the system bus" in sink.events("ble_unavailable")[0].detail["reason"]


async def test_a_hung_dbus_is_reported_not_waited_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_unix_server(never_answer, path=str(tmp_path / "hung.sock"))
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path / 'hung.sock'}")
    bus = BleBus(BleConfig("ble0", (AllowedSensor(ATC, "atc", "bthome"),), retry_s=0.05, start_timeout_s=0.5))
    async with server, running(bus) as (sink, task):
        await until(lambda: sink.events("ble_unavailable"), what="ble_unavailable")
        assert not task.done()
    assert sink.events("ble_unavailable")[0].detail["reason"] == (
        "the Bluetooth stack did not answer within 0.5 s (D-Bus or bluetoothd hung?)")


class RadioOffTwice(ReplayScanner):
    """The adapter is powered off for the first two start attempts (rfkill), then works."""

    attempts = 0

    async def start(self) -> None:
        type(self).attempts += 1
        if type(self).attempts <= 2:
            raise BleakBluetoothNotAvailableError("Bluetooth is turned off",
                                                  BleakBluetoothNotAvailableReason.POWERED_OFF)
        await super().start()


async def test_the_bus_recovers_when_the_adapter_comes_back() -> None:
    scenario = parse_scenario({"devices": [bt(ATC, values={"temperature_c": 20.0})]}, "test")
    bus = BleBus(BleConfig("ble0", (AllowedSensor(ATC, "atc", "bthome"),), min_interval_s=0, retry_s=0.05),
                 backend=RadioOffTwice, backend_kwargs={"scenario": scenario})
    async with running(bus) as (sink, _):
        await until(lambda: sink.samples("atc"), what="samples after recovery")
    codes = [r.code for r in sink.records if hasattr(r, "code")]
    assert codes == ["ble_unavailable", "ble_available"]
    assert sink.events("ble_unavailable")[0].detail["reason"] == "Bluetooth is turned off (powered_off)"
    assert RadioOffTwice.attempts == 3


# --- config ----------------------------------------------------------------------------------------------


def _ctx(tmp_path: Path) -> BusContext:
    return BusContext("bus[2]", tmp_path)


def test_config_builds_a_bus_on_the_replay_backend(tmp_path: Path) -> None:
    (tmp_path / "scn.toml").write_text(
        '[[devices]]\nmac = "A4:C1:38:8D:18:B2"\nkind = "bthome"\nvalues = { temperature_c = 20.0 }\n')
    bus = make_bus({"name": "ble0", "type": "ble", "backend": "replay:scn.toml", "silent_after_s": 120,
                    "min_interval_s": 10, "allow": [{"mac": "a4:c1:38:8d:18:b2", "id": "t1", "kind": "bthome",
                                                     "key": KEY_HEX}]}, _ctx(tmp_path))
    assert isinstance(bus, BleBus) and bus.name == "ble0"
    assert bus.config.sensors == (AllowedSensor(ATC, "t1", "bthome", KEY),)
    assert (bus.config.silent_after_s, bus.config.min_interval_s) == (120, 10)
    assert [(s.device, s.address, s.state) for s in bus.states()] == [("t1", ATC, "unknown")]


@pytest.mark.parametrize(("change", "key", "reason"), [
    ({"colour": "blue"}, "bus[2].colour", "unknown key"),
    ({"allow": []}, "bus[2].allow", "non-empty list"),
    ({"backend": "bluez"}, "bus[2].backend", "expected 'os' or 'replay:"),
    ({"backend": "replay:missing.json"}, "bus[2].backend", "cannot read"),
    ({"silent_after_s": 0}, "bus[2].silent_after_s", "out of range"),
    ({"allow": [{"mac": "A4:C1:38", "id": "t", "kind": "bthome"}]}, "bus[2].allow[0].mac", "not a MAC"),
    ({"allow": [{"mac": ATC, "id": "t", "kind": "eddystone"}]}, "bus[2].allow[0].kind", "bthome, ruuvi"),
    ({"allow": [{"mac": ATC, "id": "t", "kind": "ruuvi", "key": KEY_HEX}]}, "bus[2].allow[0].key", "only BTHome"),
    ({"allow": [{"mac": ATC, "id": "t", "kind": "bthome", "key": "abcd"}]}, "bus[2].allow[0].key", "16 bytes"),
    ({"allow": [{"mac": ATC, "id": "t", "kind": "bthome", "pin": 1}]}, "bus[2].allow[0].pin", "unknown key"),
    ({"allow": [{"mac": ATC, "id": "t", "kind": "bthome"}, {"mac": ATC.lower(), "id": "u", "kind": "bthome"}]},
     "bus[2].allow[1].mac", "listed twice"),
    ({"allow": [{"mac": ATC, "id": "t", "kind": "bthome"}, {"mac": RUUVI, "id": "t", "kind": "ruuvi"}]},
     "bus[2].allow[1].id", "used twice"),
])
def test_config_mistakes_name_the_key(tmp_path: Path, change: dict[str, Any], key: str, reason: str) -> None:
    raw = {"name": "ble0", "type": "ble", "allow": [{"mac": ATC, "id": "t", "kind": "bthome"}], **change}
    with pytest.raises(ConfigError) as info:
        make_bus(raw, _ctx(tmp_path))
    assert info.value.key == key and reason in info.value.reason


def test_a_bad_scenario_is_a_config_error_naming_the_entry(tmp_path: Path) -> None:
    (tmp_path / "scn.json").write_text('{"devices": [{"mac": "A4:C1:38:8D:18:B2", "kind": "bthome", '
                                       '"values": {"temperature_c": 5000}}]}')
    with pytest.raises(ConfigError, match=r"devices\[0\]\.values: temperature_c = 5000 fits no BTHome object"):
        make_bus({"name": "b", "type": "ble", "backend": "replay:scn.json",
                  "allow": [{"mac": ATC, "id": "t", "kind": "bthome"}]}, _ctx(tmp_path))


def test_bthome_mac_helpers() -> None:
    assert bthome.format_mac(bthome.parse_mac("a4-c1-38-8d-18-b2")) == ATC
    with pytest.raises(ValueError, match="not a MAC"):
        bthome.parse_mac("a4:c1:38:8d:18:zz")
