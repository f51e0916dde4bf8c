"""`citygate-agent decode bthome|ruuvi` and `citygate-sim ble`, as a technician runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from drivers import bthome, ruuvi
from edge_agent.cli import main as agent_cli
from simulators.cli import main as sim_cli

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
ENCRYPTED = "41a47266c95f730011223378237214"
KEY = "231d39c1d7cc1ab1aee224cd096db932"
MAC = "54:48:E6:8F:80:A5"


def agent(*args: str) -> Any:
    return CliRunner().invoke(agent_cli, ["decode", *args])


def test_bthome_json_lists_fields_with_units() -> None:
    result = agent("bthome", "40 00 09 01 5d 02 5d 09 03 b7 18", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["encrypted"] is False and doc["device_info"] == "0x40"
    assert [(f["name"], f["value"], f["unit"]) for f in doc["fields"]] == [
        ("packet_id", 9, ""), ("battery_pct", 93, "%"), ("temperature_c", 23.97, "°C"), ("humidity_pct", 63.27, "%")]


def test_bthome_table_shows_the_unknown_object_report() -> None:
    result = agent("bthome", "4002c409ee0102")
    assert result.exit_code == 0
    assert "temperature_c" in result.output and "25.0" in result.output
    assert "0xee at offset 3: length unknown, decoding stopped" in result.output


def test_encrypted_payload_with_key_and_mac() -> None:
    result = agent("bthome", ENCRYPTED, "--key", KEY, "--mac", MAC, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["encrypted"] is True and doc["counter"] == 0x33221100
    assert {f["name"]: f["value"] for f in doc["fields"]} == {"temperature_c": 25.06, "humidity_pct": 50.55}


def test_encrypted_payload_errors_are_precise_with_exit_code_2() -> None:
    no_key = agent("bthome", ENCRYPTED)
    assert no_key.exit_code == 2 and "payload is encrypted (device info 0x41" in no_key.output
    assert "a bindkey is needed" in no_key.output
    no_mac = agent("bthome", ENCRYPTED, "--key", KEY)
    assert no_mac.exit_code == 2 and "MAC is needed for the nonce" in no_mac.output
    wrong = agent("bthome", ENCRYPTED, "--key", "00" * 16, "--mac", MAC)
    assert wrong.exit_code == 2 and "AES-CCM authentication failed" in wrong.output
    short_key = agent("bthome", ENCRYPTED, "--key", "0011", "--mac", MAC)
    assert short_key.exit_code == 2 and "16 bytes" in short_key.output
    bad_mac = agent("bthome", ENCRYPTED, "--key", KEY, "--mac", "54:48")
    assert bad_mac.exit_code == 2 and "not a MAC address" in bad_mac.output


def test_ruuvi_not_available_values_are_none() -> None:
    result = agent("ruuvi", "058000FFFFFFFF800080008000FFFFFFFFFFFFFFFFFFFFFF", "--json")
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert doc["mac"] is None and doc["sequence"] is None
    assert all(f["value"] is None for f in doc["fields"]) and len(doc["fields"]) == 9


def test_decode_errors_exit_2_in_a_real_process() -> None:
    ok = subprocess.run([str(BIN / "citygate-agent"), "decode", "ruuvi",
                         "0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F", "--json"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    fields = {f["name"]: (f["value"], f["unit"]) for f in json.loads(ok.stdout)["fields"]}
    assert fields["temperature_c"] == (24.3, "°C") and fields["pressure_pa"] == (100044, "Pa")
    assert fields["battery_mv"] == (2977, "mV") and fields["acceleration_z_mg"] == (1036, "mG")
    bad = subprocess.run([str(BIN / "citygate-agent"), "decode", "bthome", "2002c409"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "decode error: device info 0x20: BTHome version 1, expected 2"
    assert "Traceback" not in bad.stderr
    # a cut-short object is reported on the advert, with what came before it, not refused whole
    cut = subprocess.run([str(BIN / "citygate-agent"), "decode", "bthome", "40016102c4", "--json"],
                         capture_output=True, text=True, timeout=60)
    assert cut.returncode == 0, cut.stderr
    doc = json.loads(cut.stdout)
    assert [f["name"] for f in doc["fields"]] == ["battery_pct"]
    assert doc["object_error"] == "0x02 at offset 2: temperature needs 2 byte(s), 1 left; not decoded: 02c4"


def test_sim_prints_the_adverts_as_hex_in_time_order() -> None:
    result = CliRunner().invoke(sim_cli, ["ble", "--scenario", str(REPO / "configs" / "ble" / "street-sensors.json"),
                                          "--count", "14"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 14
    times = [float(line.split()[0]) for line in lines]
    assert times == sorted(times)
    for line in lines:
        parts = line.split()
        payload = bytes.fromhex(parts[parts.index("payload") + 1])
        adv = bytes.fromhex(parts[parts.index("adv") + 1])
        assert payload in adv  # the on-air AD structures carry the payload
        if parts[3] == "ruuvi":
            assert ruuvi.decode(payload).sequence is not None
        elif not payload[0] & bthome.INFO_ENCRYPTED:
            bthome.decode(payload)


def test_sim_run_goes_through_bleak_in_a_real_process() -> None:
    proc = subprocess.run([str(BIN / "citygate-sim"), "ble", "--scenario",
                           str(REPO / "configs" / "ble" / "street-sensors.json"), "--run", "0.5"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "CB:B8:33:4C:88:4F  Ruuvi 884F  rssi -70  0507b282" in proc.stdout


def test_sim_reports_a_bad_scenario_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text('{"devices": [{"mac": "00:00:00:00:00:01", "kind": "bthome"}]}')
    result = CliRunner().invoke(sim_cli, ["ble", "--scenario", str(tmp_path / "s.json")])
    assert result.exit_code == 1
    assert "devices[0]: give exactly one of payload" in result.output
