"""The `[[bus]]` table of a Modbus bus: defaults, path resolution, and every mistake as a ConfigError."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from modbus_testkit import LC100, MAPS, tcp_table

from drivers.base import BusContext
from drivers.errors import ConfigError
from drivers.modbus.bus import ModbusBus
from drivers.modbus.config import TcpEndpoint, parse_bus_config
from drivers.registry import make_bus
from drivers.serial_line import LineSettings

CTX = BusContext("bus[2]", MAPS)


def test_registry_builds_a_modbus_bus_without_io() -> None:
    bus = make_bus(tcp_table(5020, [1, 2]), CTX)
    assert isinstance(bus, ModbusBus)
    assert bus.name == "cabinet-1" and bus.lamps() == ["lamp-1", "lamp-2"]
    assert [s.state for s in bus.states()] == ["unknown", "unknown"]


def test_defaults_and_rtu_line() -> None:
    raw = {
        "name": "rs485-1",
        "type": "modbus-rtu",
        "port": "/dev/ttyUSB0",
        "device": [{"id": "l1", "unit": 1, "register_map": str(LC100)}],  # absolute path
    }
    cfg = parse_bus_config(raw, CTX)
    assert cfg.transport == LineSettings("/dev/ttyUSB0", 9600, 8, "E", 1)
    assert (cfg.interval_s, cfg.timeout_s, cfg.retries, cfg.failure_threshold, cfg.backoff_max_s) == (1.0, 0.5, 1, 3, 60.0)
    assert cfg.devices[0].rated_power_w is None and cfg.devices[0].address_offset == 0


def test_relative_map_paths_resolve_from_the_config_dir_and_load_once(tmp_path: Path) -> None:
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "lc.toml").write_text(LC100.read_text())
    raw = tcp_table(502, [1, 2])
    for dev in raw["device"]:
        dev["register_map"] = "maps/lc.toml"
    cfg = parse_bus_config(raw, BusContext("bus[0]", tmp_path))
    assert cfg.transport == TcpEndpoint("127.0.0.1", 502)
    assert cfg.devices[0].register_map is cfg.devices[1].register_map
    assert cfg.devices[0].register_map.path == tmp_path / "maps" / "lc.toml"


def _with(**changes: Any) -> dict[str, Any]:
    raw = tcp_table(502, [1, 2])
    for key, value in changes.items():
        if key.startswith("dev1_"):
            raw["device"][1][key[5:]] = value
        elif value is None:
            del raw[key]
        else:
            raw[key] = value
    return raw


BAD = [
    (_with(type="modbus-udp"), "bus[2].type", "not modbus-tcp or modbus-rtu"),
    (_with(hots="x"), "bus[2].hots", "unknown key"),
    (_with(baudrate=9600), "bus[2].baudrate", "unknown key"),  # a serial key on a TCP bus
    (_with(name=None), "bus[2].name", "missing"),
    (_with(host=""), "bus[2].host", "must not be empty"),
    (_with(port=70000), "bus[2].port", "out of range"),
    (_with(interval_s="1s"), "bus[2].interval_s", "expected"),
    (_with(timeout_s=0), "bus[2].timeout_s", "out of range"),
    (_with(retries=-1), "bus[2].retries", "out of range"),
    (_with(failure_threshold=True), "bus[2].failure_threshold", "got a boolean"),
    (_with(backoff_max_s=0.1), "bus[2].backoff_max_s", "shorter than interval_s"),
    (_with(device=[]), "bus[2].device", "at least one"),
    (_with(device=None), "bus[2].device", "at least one"),
    (_with(dev1_id="lamp-1"), "bus[2].device[1].id", "already device[0]"),
    (_with(dev1_unit=1), "bus[2].device[1].unit", "unit 1 (address_offset 0) is already device[0]"),
    (_with(dev1_unit=248), "bus[2].device[1].unit", "out of range"),
    (_with(dev1_rated_power_w=-5), "bus[2].device[1].rated_power_w", "out of range"),
    (_with(dev1_rated_power_w=0), "bus[2].device[1].rated_power_w", "positive"),
    (_with(dev1_address_offset=65530), "bus[2].device[1].address_offset", "past the last address"),
    (_with(dev1_colour="red"), "bus[2].device[1].colour", "unknown key"),
]


@pytest.mark.parametrize(("raw", "key", "reason"), BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_bad_bus_table(raw: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_bus_config(raw, CTX)
    assert info.value.key == key
    assert reason in info.value.reason


def test_rtu_specific_mistakes() -> None:
    base = {"name": "rs485", "type": "modbus-rtu", "port": "/dev/ttyS1",
            "device": [{"id": "l", "unit": 1, "register_map": "lamp-lc100.toml"}]}
    for key, value, reason in [
        ("baudrate", 9601, "not a standard rate"),
        ("parity", "X", "expected one of N, E, O"),
        ("stopbits", 3, "out of range"),
        ("bytesize", 5, "out of range"),
        ("host", "1.2.3.4", "unknown key"),
    ]:
        with pytest.raises(ConfigError) as info:
            parse_bus_config({**base, key: value}, CTX)
        assert info.value.key == f"bus[2].{key}" and reason in info.value.reason


def test_missing_or_bad_register_map_is_named(tmp_path: Path) -> None:
    raw = _with(dev1_register_map="nope.toml")
    with pytest.raises(ConfigError, match="cannot read register map") as info:
        parse_bus_config(raw, CTX)
    assert info.value.key == str(MAPS / "nope.toml")
    not_a_lamp = tmp_path / "meter.toml"
    not_a_lamp.write_text('model = "meter"\n[[register]]\nname = "energy_wh"\naddress = 0\ntype = "u32"\n')
    with pytest.raises(ConfigError, match="no level_cmd_pct register") as info:
        parse_bus_config(_with(dev1_register_map=str(not_a_lamp)), CTX)
    assert info.value.key == "bus[2].device[1].register_map"
