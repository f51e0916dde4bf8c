"""Register-map files: the shipped maps load and plan into few requests; every bad file is a ConfigError
naming the file, the key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from modbus_testkit import DALI_GW, LC100

from drivers.errors import ConfigError
from drivers.modbus.regmap import load_register_map
from drivers.model import Value

HEADER = 'model = "test"\n'


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "map.toml"
    path.write_text(text)
    return path


def _reg(**keys: object) -> str:
    lines = ["[[register]]"]
    for k, v in keys.items():
        lines.append(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"')
    return "\n".join(lines) + "\n"


LEVEL = _reg(name="level_cmd_pct", address=0, access="rw")


def test_lc100_map_is_one_request_of_twelve_registers() -> None:
    m = load_register_map(LC100)
    assert m.level_curve == "linear"
    (block,) = m.plan()
    assert (block.function, block.address, block.count) == (3, 0, 12)
    assert {r.name for r, _ in block.registers} == {
        "level_cmd_pct", "level_pct", "lamp_on", "fault_bits", "lamp_failure", "voltage_v",
        "current_a", "power_w", "temperature_c", "energy_wh", "operating_hours_h",
    }
    assert m.get("energy_wh") is not None and m.get("energy_wh").type == "u32"  # type: ignore[union-attr]


def test_dali_map_plans_two_requests_and_follows_the_ballast_offset() -> None:
    m = load_register_map(DALI_GW)
    assert m.level_curve == "dali"
    assert [(b.address, b.count) for b in m.plan()] == [(5, 11), (25034, 17)]
    assert [(b.address, b.count) for b in m.plan(offset=300)] == [(305, 11), (25334, 17)]


def test_planning_splits_on_gaps_function_codes_and_max_block(tmp_path: Path) -> None:
    text = HEADER + "max_block = 5\nmax_gap = 1\n" + LEVEL
    text += _reg(name="a", address=1) + _reg(name="b", address=3, type="u32")  # gap of 1 at 2: merged
    text += _reg(name="c", address=5)  # would make 6 > max_block: new block
    text += _reg(name="d", address=20)  # far: new block
    text += _reg(name="e", address=21, function=4)  # input register: its own request
    blocks = load_register_map(_write(tmp_path, text)).plan()
    assert [(b.function, b.address, b.count) for b in blocks] == [(3, 0, 5), (3, 5, 1), (3, 20, 1), (4, 21, 1)]
    first = blocks[0]
    assert [(r.name, at) for r, at in first.registers] == [("level_cmd_pct", 0), ("a", 1), ("b", 3)]
    values: dict[str, Value] = {}
    first.decode_into([50, 7, 0xDEAD, 0x0001, 0x0002], values)
    assert values == {"level_cmd_pct": 50, "a": 7, "b": 0x00010002}


BAD_MAPS = [
    ("model = [\n", "", "not valid TOML"),
    ('model = "x"\nvendor = "y"\n' + LEVEL, "vendor", "unknown key"),
    (HEADER, "register", "at least one [[register]]"),
    (HEADER + LEVEL + _reg(name="x", address=1, type="u64"), "register[1].type", "'u64' is not one of u16, s16, u32"),
    (HEADER + LEVEL + _reg(name="x", address=1, function=1), "register[1].function", "use 3 (holding) or 4 (input)"),
    (HEADER + LEVEL + _reg(name="x", address=1, scale=0), "register[1].scale", "must not be 0"),
    (HEADER + LEVEL + _reg(name="x", address=65535, type="u32"), "register[1].address", "runs past the last register"),
    (HEADER + LEVEL + _reg(name="x", address="5"), "register[1].address", "expected an integer"),
    (HEADER + LEVEL + _reg(name="x"), "register[1].address", "missing"),
    (HEADER + LEVEL + _reg(name="Power W", address=1), "register[1].name", "is not a quantity name"),
    (HEADER + LEVEL + _reg(name="power_w", address=1, unit="kW"), "register[1].unit", "'kW' does not match the name 'power_w'"),
    (HEADER + LEVEL + _reg(name="lamp_on", address=1, unit="V"), "register[1].unit", "which says no unit"),
    (HEADER + LEVEL + _reg(name="level_cmd_pct", address=1, access="rw"), "register[1].name", "already register[0]"),
    (HEADER + LEVEL + _reg(name="x", address=0), "register[1].address", "overlaps register[0] (level_cmd_pct)"),
    (HEADER + LEVEL + _reg(name="e", address=1, type="u32") + _reg(name="f", address=1, bit=3), "register[2].address", "inside the u32 register e"),
    (HEADER + LEVEL + _reg(name="f", address=1, bit=16), "register[1].bit", "out of range"),
    (HEADER + LEVEL + _reg(name="f", address=1, bit=2, type="s16"), "register[1].bit", "a bit flag is read from a u16"),
    (HEADER + LEVEL + _reg(name="f", address=1, bit=2) + _reg(name="g", address=1, bit=2), "register[2].bit", "already register[1]"),
    (HEADER + _reg(name="level_cmd_pct", address=0), "register[0].access", "must be access = 'rw'"),
    (HEADER + LEVEL + _reg(name="x", address=1, function=4, access="rw"), "register[1].access", "only holding registers"),
    (HEADER + _reg(name="level_cmd_pct", address=0, access="rw", scale=0.001), "register[0].scale", "cannot hold"),
    ('model = "x"\nlevel_curve = "dali"\n' + _reg(name="level_cmd_pct", address=0, access="rw", type="u32"), "register[0].type", "arc level: u16, scale 1"),
    ('model = "x"\nlevel_curve = "log"\n' + LEVEL, "level_curve", "'log' is not one of linear, dali"),
    ('model = "x"\nmax_block = 200\n' + LEVEL, "max_block", "out of range"),
    ('model = ""\n' + LEVEL, "model", "must not be empty"),
    (HEADER + LEVEL + _reg(name="x", address=1, colour="red"), "register[1].colour", "unknown key"),
]


@pytest.mark.parametrize(("text", "key", "reason"), BAD_MAPS, ids=[f"{b[1] or 'toml'}-{i}" for i, b in enumerate(BAD_MAPS)])
def test_bad_register_map_file(tmp_path: Path, text: str, key: str, reason: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_register_map(path)
    err = info.value
    assert err.key == (f"{path}:{key}" if key else str(path))
    assert reason in err.reason
    assert str(path) in str(err)


def test_missing_map_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read register map: No such file") as info:
        load_register_map(tmp_path / "nope.toml")
    assert info.value.key == str(tmp_path / "nope.toml")
