"""End to end: BLE sensors (replayed through bleak) -> agent -> collector -> store, read back over HTTP.

The agent has a second BLE bus on the OS Bluetooth stack with no D-Bus at all: it must report that
once, cleanly, and keep everything else running.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ble_testkit import KEY_HEX

from simulators.procs import Proc, add_gateway, bin_path, start_collector

GW = "gw-ble-e2e"
RUUVI_VALUES = {"temperature_c": 9.85, "humidity_pct": 83.2, "pressure_pa": 101325, "acceleration_x_mg": 4,
                "acceleration_y_mg": -4, "acceleration_z_mg": 1036, "battery_mv": 2977, "tx_power_dbm": 4,
                "movement_count": 66}


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def wait_until(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def write_config(tmp: Path, url: str, token_file: Path) -> Path:
    (tmp / "street.json").write_text(json.dumps({"devices": [
        {"mac": "A4:C1:38:8D:18:B2", "name": "ATC_8D18B2", "kind": "bthome", "interval_s": 0.2, "rssi": -67,
         "count": 5, "repeat": 3, "values": {"battery_pct": 93, "temperature_c": 11.25, "humidity_pct": 81.5}},
        {"mac": "54:48:E6:8F:80:A5", "name": "SBHT-003C", "kind": "bthome", "interval_s": 0.3, "rssi": -74,
         "key": KEY_HEX, "values": {"temperature_c": 10.8, "humidity_pct": 79.0, "battery_pct": 88}},
        {"mac": "CB:B8:33:4C:88:4F", "kind": "ruuvi", "interval_s": 0.25, "rssi": -70, "values": RUUVI_VALUES},
        {"mac": "11:22:33:44:55:66", "kind": "bthome", "interval_s": 0.2, "values": {"temperature_c": 99.0}},
    ]}))
    path = tmp / "agent.toml"
    path.write_text(f"""
[gateway]
id = "{GW}"
commune = "21231"
state_dir = "state"

[uplink]
url = "{url}"
token_file = "{token_file}"
interval_s = 0.2
timeout_s = 5
backoff_max_s = 2

[local_api]
socket = "run/agent.sock"

[[bus]]
name = "ble0"
type = "ble"
backend = "replay:street.json"
silent_after_s = 1.5
min_interval_s = 0

[[bus.allow]]
mac = "A4:C1:38:8D:18:B2"
id = "bt-rue-12"
kind = "bthome"

[[bus.allow]]
mac = "54:48:e6:8f:80:a5"
id = "bt-parc-3"
kind = "bthome"
key = "{KEY_HEX}"

[[bus.allow]]
mac = "CB:B8:33:4C:88:4F"
id = "ruuvi-place-1"
kind = "ruuvi"

[[bus]]
name = "ble-os"
type = "ble"

[[bus.allow]]
mac = "C0:FF:EE:00:00:01"
id = "bt-armoire"
kind = "bthome"
""")
    return path


def test_replayed_sensors_reach_the_collector_and_a_missing_bluetooth_stack_is_one_event(tmp_path: Path) -> None:
    db = tmp_path / "collector.db"
    add_gateway(str(db), GW, "21231", tmp_path / "token")
    collector, url = start_collector(str(db))
    agent = None
    try:
        config = write_config(tmp_path, url, tmp_path / "token")
        agent = Proc("agent", [bin_path("citygate-agent"), "run", "--config", str(config)],
                     env={"DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={tmp_path / 'no-dbus'}"})
        agent.wait_for(f"agent {GW} started", timeout=60)

        def samples(device: str) -> list[dict[str, Any]]:
            try:
                doc = get(f"{url}/api/v1/gateways/{GW}/devices/{device}/samples?limit=1000")
            except urllib.error.HTTPError as exc:
                if exc.code == 404:  # nothing of that device yet: the collector does not know it
                    return []
                raise
            return list(doc["samples"])

        def events() -> list[dict[str, Any]]:
            return list(get(f"{url}/api/v1/gateways/{GW}/events?limit=1000")["events"])

        wait_until(lambda: len(samples("bt-parc-3")) >= 3 and len(samples("ruuvi-place-1")) >= 3
                   and any(e["code"] == "sensor_silent" for e in events()), 60, "samples and sensor_silent")
        wait_until(lambda: any(e["code"] == "ble_unavailable" for e in events()), 30, "ble_unavailable")

        atc = samples("bt-rue-12")
        assert len(atc) == 5  # 5 packets sent 3 times each: stored once each
        assert {json.dumps(s["values"], sort_keys=True) for s in atc} == {json.dumps(
            {"battery_pct": 93, "temperature_c": 11.25, "humidity_pct": 81.5, "rssi_dbm": -67}, sort_keys=True)}
        assert samples("bt-parc-3")[0]["values"] == {"temperature_c": 10.8, "humidity_pct": 79.0, "battery_pct": 88,
                                                     "rssi_dbm": -74}
        assert samples("ruuvi-place-1")[0]["values"] == {
            "temperature_c": 9.85, "humidity_pct": 83.2, "pressure_hpa": 1013.25, "acceleration_x_g": 0.004,
            "acceleration_y_g": -0.004, "acceleration_z_g": 1.036, "battery_v": 2.977, "tx_power_dbm": 4,
            "movement_count": 66, "rssi_dbm": -70}
        assert samples("11:22:33:44:55:66") == [] and samples("bt-armoire") == []

        by_code: dict[str, list[dict[str, Any]]] = {}
        for e in events():
            by_code.setdefault(e["code"], []).append(e)
        assert [e["device"] for e in by_code["sensor_silent"]] == ["bt-rue-12"]
        (unavailable,) = by_code["ble_unavailable"]
        assert unavailable["device"] == "ble-os" and unavailable["severity"] == "major"
        assert "no D-Bus system bus" in unavailable["detail"]["reason"]
    finally:
        if agent is not None:
            agent.stop()
        collector.stop()
    assert agent is not None
    output = agent.output()
    assert "Traceback" not in output, output
    assert output.count("BLE bus 'ble-os': Bluetooth unavailable: no D-Bus system bus") == 1, output
