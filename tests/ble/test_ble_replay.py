"""The replay backend: bleak's own scanner reports real BLEDevice/AdvertisementData built from a scenario."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ble_testkit import KEY, KEY_HEX, until
from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from drivers import bthome, ruuvi
from simulators.ble import (
    ReplayScanner,
    Scenario,
    ScenarioError,
    SimDevice,
    load_scenario,
    parse_scenario,
    timeline,
)
from tests.vectors import load_vectors

REPO = Path(__file__).resolve().parents[2]
VECTORS = load_vectors("bthome.json")


def scenario(*devices: dict[str, Any]) -> Scenario:
    return parse_scenario({"devices": list(devices)}, "test")


async def test_bleak_scanner_reports_the_replayed_devices() -> None:
    scn = scenario(
        {"mac": "A4:C1:38:8D:18:B2", "name": "ATC_8D18B2", "kind": "bthome", "interval_s": 0.03, "rssi": -61,
         "values": {"temperature_c": 21.5}},
        {"mac": "CB:B8:33:4C:88:4F", "kind": "ruuvi", "interval_s": 0.03, "rssi": -80,
         "payload": "0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F"},
    )
    seen: list[tuple[BLEDevice, AdvertisementData]] = []
    async with BleakScanner(lambda d, a: seen.append((d, a)), None, "passive", backend=ReplayScanner,
                            scenario=scn) as scanner:
        assert scanner.backend_id == "ReplayScanner"
        await until(lambda: len({d.address for d, _ in seen}) == 2 and len(seen) >= 6, what="adverts")
        found = scanner.discovered_devices_and_advertisement_data
    assert all(isinstance(d, BLEDevice) and isinstance(a, AdvertisementData) for d, a in seen)
    device, adv = found["A4:C1:38:8D:18:B2"]
    assert device.name == "ATC_8D18B2" and adv.local_name == "ATC_8D18B2" and adv.rssi == -61
    assert bthome.decode(adv.service_data[bthome.SERVICE_UUID]).values()["temperature_c"] == 21.5
    _, adv = found["CB:B8:33:4C:88:4F"]
    assert ruuvi.decode(adv.manufacturer_data[ruuvi.MANUFACTURER_ID]).temperature_c == 24.3
    assert adv.rssi == -80 and not adv.service_data


async def test_service_uuid_filter_of_the_scanner_applies() -> None:
    scn = scenario({"mac": "A4:C1:38:8D:18:B2", "kind": "bthome", "interval_s": 0.03, "values": {"count": 1}},
                   {"mac": "CB:B8:33:4C:88:4F", "kind": "ruuvi", "interval_s": 0.03, "values": {}})
    seen: list[str] = []
    async with BleakScanner(lambda d, a: seen.append(d.address), [bthome.SERVICE_UUID], backend=ReplayScanner,
                            scenario=scn):
        await until(lambda: len(seen) >= 5, what="adverts")
    assert set(seen) == {"A4:C1:38:8D:18:B2"}


def test_timeline_orders_counts_repeats_and_gaps() -> None:
    scn = scenario(
        {"mac": "00:00:00:00:00:01", "kind": "bthome", "interval_s": 1.0, "count": 4, "repeat": 2,
         "gaps": [[0.5, 2.5]], "values": {"battery_pct": 50}},
        {"mac": "00:00:00:00:00:02", "kind": "ruuvi", "interval_s": 1.5, "start_s": 0.25, "count": 2, "values": {}},
    )
    got = [(a.t_s, a.device.mac[-2:], a.payload) for a in timeline(scn)]
    assert [(t, m) for t, m, _ in got] == [(0.0, "01"), (0.0, "01"), (0.25, "02"), (1.75, "02"), (3.0, "01"),
                                           (3.0, "01")]
    # packet ids and sequence numbers keep counting through the gap, as the sensor's do
    assert bthome.decode(got[4][2]).packet_id == 3
    assert ruuvi.decode(got[3][2]).sequence == 1


def test_values_are_encoded_with_packet_id_counter_and_key() -> None:
    d = scenario({"mac": "54:48:E6:8F:80:A5", "kind": "bthome", "key": KEY_HEX,
                  "values": {"temperature_c": 10.8, "motion": True}}).devices[0]
    frames = [bthome.decode(d.payload_at(k), key=KEY, mac=bthome.parse_mac(d.mac)) for k in range(3)]
    assert [(f.packet_id, f.counter) for f in frames] == [(0, 1), (1, 2), (2, 3)]
    assert frames[2].values() == {"packet_id": 2, "temperature_c": 10.8, "motion": True}


@pytest.mark.parametrize("vector", [v for v in VECTORS["vectors"] if "adv_hex" in v], ids=lambda v: v["name"])
def test_on_air_bytes_match_the_spec_example(vector: dict[str, Any]) -> None:
    d = SimDevice(mac="00:00:00:00:00:01", name=vector["local_name"], kind="bthome", interval_s=1, rssi=-60,
                  payloads=(bytes.fromhex(vector["service_data_hex"]),))
    adv, scan_response = next(timeline(Scenario((d,), "test"))).on_air()
    assert adv.hex() == vector["adv_hex"] and scan_response == b""


def test_a_ruuvi_advert_fills_the_legacy_31_bytes_so_its_name_goes_in_the_scan_response() -> None:
    scn = scenario({"mac": "CB:B8:33:4C:88:4F", "name": "Ruuvi 884F", "kind": "ruuvi",
                    "payload": "0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F"})
    adv, scan_response = next(timeline(scn)).on_air()
    assert adv.hex() == "0201061bff99040512fc5394c37c0004fffc040cac364200cdcbb8334c884f" and len(adv) == 31
    assert scan_response == b"\x0b\x09Ruuvi 884F"


def test_toml_and_json_scenarios_load_alike(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text('[[devices]]\nmac = "a4:c1:38:8d:18:b2"\nkind = "bthome"\n'
                                     'interval_s = 2\nvalues = { temperature_c = 21.5 }\n')
    (tmp_path / "s.json").write_text('{"devices": [{"mac": "A4:C1:38:8D:18:B2", "kind": "bthome", '
                                     '"interval_s": 2, "values": {"temperature_c": 21.5}}]}')
    a, b = load_scenario(tmp_path / "s.toml"), load_scenario(tmp_path / "s.json")
    assert a.devices == b.devices and a.devices[0].mac == "A4:C1:38:8D:18:B2"


def test_shipped_example_scenario_loads_and_decodes() -> None:
    scn = load_scenario(REPO / "configs" / "ble" / "street-sensors.json")
    keys = {"54:48:E6:8F:80:A5": KEY}
    for advert in [a for a, _ in zip(timeline(scn), range(40), strict=False)]:
        d = advert.device
        if d.kind == "ruuvi":
            assert ruuvi.decode(advert.payload).mac == d.mac.lower()
        else:
            bthome.decode(advert.payload, key=keys.get(d.mac), mac=bthome.parse_mac(d.mac))


@pytest.mark.parametrize(("entry", "reason"), [
    ({"kind": "bthome", "values": {}}, r"devices\[0\]\.mac: missing"),
    ({"mac": "zz", "kind": "bthome", "values": {}}, r"devices\[0\]\.mac: 'zz' is not a MAC"),
    ({"mac": "00:00:00:00:00:01", "kind": "ibeacon", "values": {}}, "expected 'bthome' or 'ruuvi'"),
    ({"mac": "00:00:00:00:00:01", "kind": "bthome"}, "exactly one of payload"),
    ({"mac": "00:00:00:00:00:01", "kind": "bthome", "payload": "40", "values": {}}, "exactly one of payload"),
    ({"mac": "00:00:00:00:00:01", "kind": "bthome", "payload": "4g"}, r"payload\[0\]: not a hex string"),
    ({"mac": "00:00:00:00:00:01", "kind": "bthome", "values": {"temp": 1}}, "no BTHome object for quantity 'temp'"),
    ({"mac": "00:00:00:00:00:01", "kind": "ruuvi", "values": {"temperature": 1}}, "not a Ruuvi field"),
    ({"mac": "00:00:00:00:00:01", "kind": "ruuvi", "values": {}, "key": KEY_HEX}, "only for a bthome device"),
    ({"mac": "00:00:00:00:00:01", "kind": "bthome", "values": {}, "key": "00"}, "16 bytes"),
    ({"mac": "00:00:00:00:00:01", "kind": "bthome", "values": {}, "interval_s": 0}, "out of range"),
    ({"mac": "00:00:00:00:00:01", "kind": "bthome", "values": {}, "rssi": True}, "wrong type bool"),
    ({"mac": "00:00:00:00:00:01", "kind": "bthome", "values": {}, "gaps": [[2, 1]]}, r"gaps\[0\]"),
    ({"mac": "00:00:00:00:00:01", "kind": "bthome", "values": {}, "colour": "red"}, r"colour: unknown key"),
])
def test_scenario_mistakes_name_the_entry(entry: dict[str, Any], reason: str) -> None:
    with pytest.raises(ScenarioError, match=reason):
        parse_scenario({"devices": [entry]}, "scn.json")


def test_scenario_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "none.json")
    (tmp_path / "bad.toml").write_text("[[devices]\n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(tmp_path / "bad.toml")
    (tmp_path / "dup.json").write_text(json.dumps({"devices": [
        {"mac": "00:00:00:00:00:01", "kind": "ruuvi", "values": {}},
        {"mac": "00:00:00:00:00:01", "kind": "ruuvi", "values": {}}]}))
    with pytest.raises(ScenarioError, match="MAC 00:00:00:00:00:01 appears twice"):
        load_scenario(tmp_path / "dup.json")
