"""Report policies in register maps and gateway configs: the shipped defaults, overrides, and errors
that name the file, the key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.errors import ConfigError
from drivers.modbus.config import BusConfig
from drivers.modbus.regmap import load_register_map
from drivers.reporting import Policy
from edge_agent.config import AgentConfigError, load_config

REPO = Path(__file__).resolve().parents[2]
MAPS = REPO / "configs" / "registermaps"
GATEWAYS = REPO / "configs" / "gateways"

HEAD = """model = "test controller"

[[register]]
name = "level_cmd_pct"
address = 0
access = "rw"
"""


def write_map(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "map.toml"
    path.write_text(HEAD + text)
    return path


@pytest.mark.parametrize("name", ["lamp-lc100.toml", "lamp-dali-gw.toml"])
def test_shipped_maps_report_states_on_change_with_a_heartbeat_and_counters_on_period(name: str) -> None:
    regmap = load_register_map(MAPS / name)
    policies = {reg.name: reg.report for reg in regmap.registers}
    for state in ("level_cmd_pct", "level_pct", "lamp_on", "lamp_failure"):
        assert policies[state] == Policy("change_or_period", 900.0), state
    for counter in ("energy_wh", "operating_hours_h"):
        assert policies[counter].strategy == "period" and policies[counter].counter, counter
    assert policies["power_w"] == Policy("change_or_period", 900.0, deadband_pct=5.0)
    assert all(p.strategy != "every" for p in policies.values()), "a shipped map reports every quantity by exception"


def test_shipped_gateway_configs_load_with_their_maps_policies() -> None:
    for path in sorted(GATEWAYS.glob("*.toml")):
        cfg = load_config(path)
        assert cfg.buses, path


@pytest.mark.parametrize(("text", "key", "reason"), [
    ('report = "sometimes"\n', "register[0].report.strategy", "'sometimes' is not one of every, change"),
    ('report = "change_or_period"\n', "register[0].report.period_s", "needs a period_s from 1"),
    ('report = { strategy = "change", period_s = 60 }\n', "register[0].report.period_s", "has no period"),
    ('report = { strategy = "period", period_s = 60, deadband = 1 }\n', "register[0].report.deadband",
     "does not report on change"),
    ('report = { strategy = "change", deadband = 1, deadband_pct = 5 }\n', "register[0].report.deadband_pct",
     "not both"),
    ('report = { strategy = "change", deadband = -1 }\n', "register[0].report.deadband", "negative"),
    ('report = { strategy = "change", deadband = "1" }\n', "register[0].report.deadband", "expected a number"),
    ('report = { strategy = "change", dead_band = 1 }\n', "register[0].report.dead_band", "unknown key"),
    ('report = { strategy = "period", period_s = 60, counter = "yes" }\n', "register[0].report.counter",
     "true or false"),
    ('report = 5\n', "register[0].report", "expected a strategy name or a table"),
])
def test_a_bad_register_policy_names_file_key_and_reason(tmp_path: Path, text: str, key: str, reason: str) -> None:
    path = write_map(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_register_map(path)
    assert err.value.key == f"{path}:{key}"
    assert reason in err.value.reason


def test_a_flag_has_neither_deadband_nor_counter(tmp_path: Path) -> None:
    flag = '\n[[register]]\nname = "lamp_on"\naddress = 1\nbit = 0\n'
    for policy, key in (('{ strategy = "change", deadband = 1 }', "deadband"),
                        ('{ strategy = "period", period_s = 60, counter = true }', "counter")):
        path = write_map(tmp_path, flag + f"report = {policy}\n")
        with pytest.raises(ConfigError) as err:
            load_register_map(path)
        assert err.value.key == f"{path}:register[1].report.{key}"
        assert "a flag or a text, not a number" in err.value.reason


def test_the_map_default_applies_to_registers_that_say_nothing_less_what_a_flag_cannot_have(tmp_path: Path) -> None:
    path = write_map(tmp_path, (
        '\n[[register]]\nname = "lamp_on"\naddress = 1\nbit = 0\n'
        '\n[[register]]\nname = "power_w"\naddress = 2\nreport = { deadband = 3 }\n'
        '\n[[register]]\nname = "energy_wh"\naddress = 3\nreport = { strategy = "period", period_s = 900, counter = true }\n'
        '\n[report]\nstrategy = "change_or_period"\nperiod_s = 600\ndeadband_pct = 2\n'
    ))
    policies = {reg.name: reg.report for reg in load_register_map(path).registers}
    assert policies["level_cmd_pct"] == Policy("change_or_period", 600.0, deadband_pct=2.0)
    assert policies["lamp_on"] == Policy("change_or_period", 600.0)
    # a table without a strategy adjusts the default: here it swaps the relative deadband for an absolute one
    assert policies["power_w"] == Policy("change_or_period", 600.0, deadband=3.0)
    assert policies["energy_wh"] == Policy("period", 900.0, counter=True)


def test_a_bad_map_default_names_the_map_report_table(tmp_path: Path) -> None:
    path = write_map(tmp_path, '\n[report]\nstrategy = "period"\n')
    with pytest.raises(ConfigError) as err:
        load_register_map(path)
    assert err.value.key == f"{path}:report.period_s"


def gateway(tmp_path: Path, device_extra: str) -> Path:
    path = tmp_path / "gw.toml"
    path.write_text(f"""
[gateway]
id = "gw-test"
commune = "21231"
state_dir = "{tmp_path / 'state'}"

[uplink]
url = "http://127.0.0.1:9"
token = "t"

[[bus]]
name = "rs485"
type = "modbus-tcp"
host = "127.0.0.1"

[[bus.device]]
id = "lamp-1"
unit = 1
register_map = "{MAPS / 'lamp-lc100.toml'}"
{device_extra}
[[bus.device]]
id = "lamp-2"
unit = 2
register_map = "{MAPS / 'lamp-lc100.toml'}"
""")
    return path


def device_policies(path: Path, device: str) -> dict[str, Policy]:
    bus = load_config(path).buses[0].config
    assert isinstance(bus, BusConfig)
    return dict(next(d.report for d in bus.devices if d.id == device))


def test_a_device_overrides_its_maps_policies_quantity_by_quantity(tmp_path: Path) -> None:
    path = gateway(tmp_path, '[bus.device.report]\nvoltage_v = { deadband = 5 }\nlamp_on = "change"\n'
                             'energy_wh = { period_s = 3600 }\npower_w = { deadband = 2 }\n'
                             'temperature_c = { deadband_pct = 10 }\n')
    mine, neighbour = device_policies(path, "lamp-1"), device_policies(path, "lamp-2")
    assert mine["voltage_v"] == Policy("change_or_period", 900.0, deadband=5.0)
    # an absolute deadband replaces the map's relative one, and the reverse
    assert mine["power_w"] == Policy("change_or_period", 900.0, deadband=2.0)
    assert mine["temperature_c"] == Policy("change_or_period", 900.0, deadband_pct=10.0)
    assert mine["lamp_on"] == Policy("change")
    assert mine["energy_wh"] == Policy("period", 3600.0, counter=True)
    assert neighbour["power_w"] == Policy("change_or_period", 900.0, deadband_pct=5.0)
    assert neighbour["voltage_v"] == Policy("change_or_period", 900.0, deadband=2.0)


def test_a_device_can_report_every_reading_while_a_technician_watches_it(tmp_path: Path) -> None:
    policies = device_policies(gateway(tmp_path, 'report = "every"\n'), "lamp-1")
    assert {p.strategy for p in policies.values()} == {"every"}


@pytest.mark.parametrize(("extra", "key", "reason"), [
    ('[bus.device.report]\nvolts_v = "change"\n', "bus[0].device[0].report.volts_v", "has no register named 'volts_v'"),
    ('[bus.device.report]\nvoltage_v = { deadband = 3, deadband_pct = 3 }\n',
     "bus[0].device[0].report.voltage_v.deadband_pct", "not both"),
    ('[bus.device.report]\nlamp_on = { deadband = 1 }\n', "bus[0].device[0].report.lamp_on.deadband", "a flag"),
    ('report = "period"\n', "bus[0].device[0].report.period_s", "needs a period_s"),
    ('report = 3\n', "bus[0].device[0].report", "expected a strategy name or a table"),
])
def test_a_bad_device_override_names_file_key_and_reason(tmp_path: Path, extra: str, key: str, reason: str) -> None:
    path = gateway(tmp_path, extra)
    with pytest.raises(AgentConfigError) as err:
        load_config(path)
    assert err.value.file == str(path)
    assert err.value.key == key
    assert reason in err.value.reason
