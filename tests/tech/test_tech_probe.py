"""`citygate-agent probe` talks to devices with no agent running: Modbus scans find units and their register
map, meter probes read a simulated Linky and water meter through the agent's own drivers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from tech_kit import cli, cli_json

from simulators.procs import Proc, bin_path

REPO = Path(__file__).resolve().parents[2]
MAPS = REPO / "configs" / "registermaps"


@pytest.fixture
def lamps_tcp() -> Iterator[int]:
    sim = Proc("lamps", [bin_path("citygate-sim"), "lamps", "--tcp", "127.0.0.1:0", "--units", "2,5,9",
                         "--register-map", str(MAPS / "lamp-lc100.toml"), "--level", "60", "--fault", "9=no-answer"])
    try:
        yield int(sim.wait_for(r"on modbus-tcp 127\.0\.0\.1:(\d+)").group(1))
    finally:
        sim.stop()


def test_probe_modbus_tcp_lists_the_units_that_answer_and_the_map_that_fits(lamps_tcp: int) -> None:
    code, doc = cli_json("probe", "modbus", "--tcp", f"127.0.0.1:{lamps_tcp}", "--units", "1-10", "--timeout", "0.3")
    assert code == 0
    assert doc["scanned"] == 10 and set(doc["maps"]) == {"lamp-lc100.toml", "lamp-dali-gw.toml"}
    units = {u["unit"]: u for u in doc["units"]}
    assert set(units) == {2, 5}  # unit 9 is configured in the simulator but does not answer
    for u in units.values():
        assert u["fitting"] == ["lamp-lc100.toml"]
        fit = next(m for m in u["maps"] if m["map"] == "lamp-lc100.toml")
        assert fit["values"]["level_pct"] == 60 and fit["values"]["power_w"] > 0
        wrong = next(m for m in u["maps"] if m["map"] == "lamp-dali-gw.toml")
        assert wrong["fits"] is False and "exception 02" in wrong["reason"]
    human = cli("probe", "modbus", "--tcp", f"127.0.0.1:{lamps_tcp}", "--units", "1-6", "--timeout", "0.3",
                "--map", str(MAPS / "lamp-lc100.toml"))
    assert human.returncode == 0
    assert "2 unit(s)" in human.stdout and "lamp-lc100.toml" in human.stdout


def test_probe_modbus_rtu_on_a_serial_line_finds_dali_gateway_ballasts() -> None:
    sim = Proc("lamps-rtu", [bin_path("citygate-sim"), "lamps", "--rtu-pty", "--units", "3,4",
                             "--register-map", str(MAPS / "lamp-dali-gw.toml"), "--level", "50"])
    try:
        pty = sim.wait_for(r"on modbus-rtu (\S+)").group(1)
        code, doc = cli_json("probe", "modbus", "--port", pty, "--baud", "19200", "--parity", "N",
                             "--units", "1-5", "--timeout", "0.3")
        assert code == 0
        assert [u["unit"] for u in doc["units"]] == [3, 4]
        assert all(u["fitting"] == ["lamp-dali-gw.toml"] for u in doc["units"])
        assert doc["where"] == f"modbus-rtu {pty} 19200 8N1"
    finally:
        sim.stop()


def test_probe_modbus_says_when_nothing_answers_and_refuses_bad_usage(tmp_path: Path) -> None:
    from simulators.procs import free_port

    nobody = cli("probe", "modbus", "--tcp", f"127.0.0.1:{free_port()}", "--units", "1-2", "--timeout", "0.2")
    assert nobody.returncode == 1 and "cannot open modbus-tcp" in nobody.stderr
    assert cli("probe", "modbus", "--units", "1-2").returncode == 2  # neither --tcp nor --port
    bad_units = cli("probe", "modbus", "--tcp", "127.0.0.1:1", "--units", "0-300")
    assert bad_units.returncode == 2 and "1..247" in bad_units.stderr
    bad_map = tmp_path / "bad.toml"
    bad_map.write_text('model = "x"\n')
    run = cli("probe", "modbus", "--tcp", "127.0.0.1:1", "--units", "1", "--map", str(bad_map))
    assert run.returncode == 2 and "register map error" in run.stderr


def test_probe_tic_reads_a_linky_through_the_tic_driver() -> None:
    meter = Proc("tic", [bin_path("citygate-sim"), "tic", "--mode", "historic", "--period", "0.3"])
    try:
        pty = meter.wait_for(r"tic meter \(historic\) on (\S+)").group(1)
        code, doc = cli_json("probe", "tic", pty, "--parity", "N", "--bytesize", "8", "--seconds", "3")
        assert code == 0, doc
        samples = [r for r in doc["records"] if r["kind"] == "sample"]
        assert samples and samples[-1]["values"]["energy_wh"] > 0
        assert doc["devices"][0]["state"] == "ok"
    finally:
        meter.stop()


def test_probe_mbus_reads_a_water_meter_through_the_mbus_driver() -> None:
    meter = Proc("mbus", [bin_path("citygate-sim"), "mbus", "--primary", "7", "--secondary", "12345678"])
    try:
        pty = meter.wait_for(r"on (/dev/\S+)").group(1)
        code, doc = cli_json("probe", "mbus", pty, "--address", "7", "--address", "12345678", "--parity", "N",
                             "--timeout", "0.3")
        assert code == 0, doc
        by_device = {r["device"]: r for r in doc["records"] if r["kind"] == "sample"}
        assert set(by_device) == {"primary-7", "secondary-12345678"}
        assert by_device["primary-7"]["values"]["volume_m3"] > 0
        human = cli("probe", "mbus", pty, "--scan", "6-7", "--parity", "N", "--timeout", "0.2")
        assert human.returncode == 0
        assert re.search(r"primary-7\s+ok", human.stdout), human.stdout
        assert "primary-6" in human.stdout
    finally:
        meter.stop()
