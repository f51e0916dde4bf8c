"""The [lighting] table: typed config, and errors that name the key and the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drivers.errors import ConfigError
from edge_agent.lighting.config import from_config
from edge_agent.lighting.model import SAFE_ALL_NIGHT

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "lighting"


def table(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "programs": [str(CONFIGS / "common.toml"), str(CONFIGS / "dijon.toml")],
        "latitude": 47.322, "longitude": 5.041,
        "group": [{"name": "rue-a", "lamps": ["lamp-1", "lamp-2"], "calendar": "dijon"}],
    }
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not None}


def error(raw: dict[str, Any], tmp: Path | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        from_config(raw, "lighting", tmp or CONFIGS)
    return info.value


def test_a_valid_table_becomes_typed_config() -> None:
    cfg = from_config(table(rated_power_w=40), "lighting", CONFIGS)
    assert cfg.site.timezone.key == "Europe/Paris"
    assert set(cfg.programs.programs) == {"all-night", "dijon-night"}
    assert cfg.groups[0].lamps == ("lamp-1", "lamp-2") and cfg.groups[0].rated_power_w == 40
    assert cfg.safe_program == SAFE_ALL_NIGHT
    assert cfg.limits.max_switch_points == 16


def test_relative_program_paths_resolve_from_the_config_folder() -> None:
    cfg = from_config(table(programs=["common.toml", "dijon.toml"]), "lighting", CONFIGS)
    assert "dijon" in cfg.programs.calendars


@pytest.mark.parametrize(
    ("changes", "key", "words"),
    [
        ({"programs": None}, "lighting.programs", "missing"),
        ({"programs": ["nope.toml"]}, "lighting.programs", "does not exist"),
        ({"programs": [str(CONFIGS / "dijon.toml")]}, "lighting.programs", "unknown_program"),
        ({"timezone": "Europe/Dijon"}, "lighting.timezone", "not a known IANA time zone"),
        ({"latitude": None}, "lighting.latitude", "missing"),
        ({"longitude": 200}, "lighting.longitude", "out of range"),
        ({"max_switch_points": 0}, "lighting.max_switch_points", "out of range"),
        ({"safe_program": "nope"}, "lighting.safe_program", "not defined"),
        ({"colour": "amber"}, "lighting.colour", "unknown key"),
        ({"time_source": "gps"}, "lighting.time_source", "expected 'kernel' or 'none'"),
        ({"group": [{"name": "a", "lamps": ["l1"], "calendar": "paris"}]}, "lighting.group[0].calendar", "'paris'"),
        ({"group": [{"name": "a", "lamps": []}]}, "lighting.group[0].lamps", "at least one lamp"),
        ({"group": [{"name": "a", "lamps": ["l1"]}, {"name": "b", "lamps": ["l1"]}]}, "lighting.group[1].lamps",
         "already in group 'a'"),
        ({"group": [{"name": "a", "lamps": ["l1"]}, {"name": "a", "lamps": ["l2"]}]}, "lighting.group[1].name",
         "unique"),
        ({"group": [{"name": "a", "lamps": ["l1"], "power": 3}]}, "lighting.group[0].power", "unknown key"),
        ({"group": [{"name": "a", "lamps": ["a"]}]}, "lighting.group", "both a group and a lamp"),
    ],
)
def test_config_errors_name_the_key_and_the_reason(changes: dict[str, Any], key: str, words: str) -> None:
    err = error(table(**changes))
    assert err.key == key and words in err.reason, str(err)


def test_a_program_file_that_breaks_a_rule_is_named_with_the_rule(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[program]]\nname = "x"\nswitch_points = [{ at = "05:00", level = 100 }, { at = "22:00", level = 70 }]\n')
    err = error(table(programs=[str(bad)]), tmp_path)
    assert err.key == "lighting.programs" and "'x'" in err.reason and "switch_points_sorted" in err.reason
    bad.write_text("[[program]\n")
    assert "not valid TOML" in error(table(programs=[str(bad)]), tmp_path).reason
