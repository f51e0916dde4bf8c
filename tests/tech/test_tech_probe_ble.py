"""`probe ble` finds BTHome and Ruuvi sensors, decodes them, and says so plainly when there is no Bluetooth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AGENT = str(Path(sys.executable).parent / "citygate-agent")
SCENARIO = REPO / "configs" / "ble" / "street-sensors.json"


def test_probe_ble_lists_each_sensor_with_its_decoded_values(tmp_path: Path) -> None:
    run = subprocess.run([AGENT, "probe", "ble", "--seconds", "3", "--backend", f"replay:{SCENARIO}", "--json"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    sensors = {s["mac"]: s for s in json.loads(run.stdout)["sensors"]}
    macs = {d["mac"].upper() for d in json.loads(SCENARIO.read_text())["devices"]}
    assert set(sensors) <= macs and len(sensors) >= 3
    kinds = {s["kind"] for s in sensors.values()}
    assert kinds == {"bthome", "ruuvi"}
    ruuvi = next(s for s in sensors.values() if s["kind"] == "ruuvi")
    assert "temperature_c" in ruuvi["values"] and ruuvi["error"] is None
    # an encrypted sensor without its bindkey is shown, with the reason, not hidden
    assert any(s["error"] and "encrypted" in s["error"] for s in sensors.values())


def test_probe_ble_without_bluetooth_says_so_in_one_line() -> None:
    env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent/system_bus_socket"}
    run = subprocess.run([AGENT, "probe", "ble", "--seconds", "1"], capture_output=True, text=True, timeout=60,
                         env=env)
    assert run.returncode == 1
    lines = [line for line in run.stderr.splitlines() if line.strip() and not line.startswith("scanning")]
    assert len(lines) == 1 and lines[0].startswith("Bluetooth unavailable:"), run.stderr
    assert "Traceback" not in run.stderr
