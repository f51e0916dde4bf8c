"""`citygate-agent schedule` and `simulate-year`, run as the technician runs them (real subprocesses)."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from edge_agent.config import load_config
from edge_agent.lighting.engine import Engine

ROOT = Path(__file__).resolve().parents[2]
AGENT = [str(Path(sys.executable).parent / "citygate-agent")]
CONFIGS = ROOT / "configs" / "lighting"


@pytest.fixture
def cabinet(tmp_path: Path) -> Path:
    f = tmp_path / "cabinet.toml"
    f.write_text(f"""
[lighting]
programs = ["{CONFIGS}/common.toml", "{CONFIGS}/dijon.toml", "{CONFIGS}/sennecey-les-dijon.toml"]
latitude = 47.322
longitude = 5.041
rated_power_w = 40
[[lighting.group]]
name = "avenue"
lamps = ["lamp-1", "lamp-2"]
calendar = "dijon"
[[lighting.group]]
name = "impasse"
lamps = ["lamp-3"]
calendar = "sennecey-les-dijon"
rated_power_w = 60
""")
    return f


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AGENT, *args], capture_output=True, text=True, timeout=60)


def run_json(*args: str) -> Any:
    proc = run(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    return orjson.loads(proc.stdout)


def test_schedule_prints_the_nights_switch_times_per_group(cabinet: Path) -> None:
    doc = run_json("schedule", "--config", str(cabinet), "--date", "2026-03-28")
    assert doc["date"] == "2026-03-28" and doc["timezone"] == "Europe/Paris"
    avenue, impasse = doc["groups"]
    assert avenue["program"] == "dijon-night" and avenue["lamps"] == 2
    assert [(s["local"][11:16], s["level_pct"]) for s in avenue["switches"]] == [
        ("19:13", 100), ("22:00", 70), ("05:00", 100), ("07:15", 0)]
    assert avenue["switches"][2]["local"].endswith("+02:00")  # 05:00 is already summer time
    assert [(s["local"][11:16], s["level_pct"]) for s in impasse["switches"]][1:3] == [("00:00", 0), ("05:00", 100)]
    text = run("schedule", "--config", str(cabinet), "--date", "2026-03-28")
    assert text.returncode == 0 and "22:00:00" in text.stdout and "dijon-night" in text.stdout


def test_schedule_on_14_july_uses_the_all_night_rule(cabinet: Path) -> None:
    doc = run_json("schedule", "--config", str(cabinet), "--date", "2026-07-14")
    assert {g["program"] for g in doc["groups"]} == {"all-night"}


def test_simulate_year_prints_burn_hours_and_energy_per_group(cabinet: Path) -> None:
    doc = run_json("simulate-year", "--config", str(cabinet), "--year", "2026")
    avenue, impasse = doc["groups"]
    # Dijon is dark about 4,100 h a year at 47° N; the program trims 20 min a night.
    assert 3900 < avenue["burn_h_per_lamp"] < 4300
    assert avenue["nights_per_program"] == {"dijon-night": 364, "all-night": 1}
    # 70 % from 22:00 to 05:00 saves energy; Sennecey's five dark hours save burn time.
    assert avenue["energy_kwh"] < 2 * 40 * avenue["burn_h_per_lamp"] / 1000
    assert impasse["burn_h_per_lamp"] < avenue["burn_h_per_lamp"] - 1500
    assert doc["cabinet_energy_kwh"] == pytest.approx(avenue["energy_kwh"] + impasse["energy_kwh"], abs=0.02)


def test_a_bad_config_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text('[lighting]\nprograms = "nope.toml"\nlatitude = 47.3\nlongitude = 5.0\n')
    proc = run("schedule", "--config", str(f))
    assert proc.returncode == 2
    assert str(f) in proc.stderr and "lighting.programs" in proc.stderr and "does not exist" in proc.stderr
    f.write_text("[gateway]\nid = 'x'\n")
    proc = run("simulate-year", "--config", str(f), "--year", "2026")
    assert proc.returncode == 2 and "no [lighting] table" in proc.stderr


@pytest.mark.parametrize(("commune", "insee", "at_2230"), [("dijon", "21231", 70), ("quetigny", "21515", 70),
                                                          ("sennecey-les-dijon", "21605", 100)])
def test_shipped_cabinet_configs_load_and_follow_their_mayors_hours(commune: str, insee: str, at_2230: int) -> None:
    file = ROOT / "configs" / "gateways" / f"{commune}-cabinet.toml"
    cfg = load_config(file)  # the whole agent config: gateway, uplink, Modbus bus, lighting
    assert cfg.gateway.commune == insee
    lighting = cfg.sections["lighting"]
    bus_lamps = {lamp for spec in cfg.buses for lamp in spec.build().lamps()}  # type: ignore[attr-defined]
    assert {lamp for g in lighting.groups for lamp in g.lamps} == bus_lamps
    territory = {c["insee"]: c for c in orjson.loads((ROOT / "configs" / "territory.json").read_bytes())["communes"]}
    assert (lighting.site.latitude, lighting.site.longitude) == (territory[insee]["lat"], territory[insee]["lon"])
    main = lighting.groups[0]
    assert main.calendar == commune
    engine = Engine(lighting.programs, lighting.site)
    paris = ZoneInfo("Europe/Paris")
    assert engine.level_at(main.calendar, datetime(2026, 2, 3, 22, 30, tzinfo=paris)) == at_2230
    assert engine.level_at(main.calendar, datetime(2026, 2, 4, 1, 0, tzinfo=paris)) == (0 if commune.startswith("sennecey") else 70)
    assert engine.level_at(main.calendar, datetime(2026, 7, 15, 1, 0, tzinfo=paris)) == 100  # the 14 July night
    proc = run("schedule", "--config", str(file), "--date", "2026-02-03")
    assert proc.returncode == 0 and main.name in proc.stdout
