"""A bad agent config is refused with the file, the key and the reason; a good one loads into typed objects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.config import AgentConfigError, load_config

GOOD = """
[gateway]
id = "gw-test-1"
commune = "21231"
state_dir = "state"

[uplink]
url = "http://127.0.0.1:9"
token = "secret"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_good_config_loads_with_defaults_and_relative_paths(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.gateway.id == "gw-test-1"
    assert cfg.gateway.state_dir == tmp_path / "state"
    assert cfg.uplink.token == "secret" and cfg.uplink.batch_max_records == 5000
    assert cfg.journal.synchronous == "full"
    assert cfg.buses == []


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        (GOOD.replace('commune = "21231"', "commune = 21231"), "gateway.commune", "expected a string, got int"),
        (GOOD.replace('commune = "21231"', 'commune = "Dijon"'), "gateway.commune", "not an INSEE commune code"),
        (GOOD.replace('id = "gw-test-1"\n', ""), "gateway.id", "missing"),
        (GOOD + "\n[journal]\nmax_recods = 5\n", "journal.max_recods", "unknown key"),
        (GOOD + "\n[journal]\nmax_records = 5\n", "journal.max_records", "out of range"),
        (GOOD + "\n[journal]\nsynchronous = 'off'\n", "journal.synchronous", "expected 'full' or 'normal'"),
        (GOOD.replace("http://127.0.0.1:9", "ftp://x"), "uplink.url", "not an http:// or https:// URL"),
        (GOOD.replace('token = "secret"', 'token_file = "nope.txt"'), "uplink.token_file", "cannot read"),
        (GOOD.replace('token = "secret"', 'token = "a"\ntoken_file = "b"'), "uplink.token", "exactly one"),
        (GOOD + '\nca_file = "ca.pem"\n', "uplink.ca_file", "https"),
        (GOOD.replace("[uplink]", "[uplnk]"), "uplnk", "unknown section"),
        (GOOD + '\n[[bus]]\nname = "x"\ntype = "carrier-pigeon"\n', "bus[0].type", "unknown bus type"),
        ("bus = 3\n" + GOOD, "bus", "array of tables"),
    ],
)
def test_bad_config_names_file_key_and_reason(tmp_path: Path, text: str, key: str, reason: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(AgentConfigError) as err:
        load_config(path)
    assert err.value.file == str(path)
    assert err.value.key == key
    assert reason in err.value.reason
    assert str(path) in str(err.value) and key in str(err.value)


def test_a_bad_register_map_is_refused_naming_the_map_key_and_reason(tmp_path: Path) -> None:
    regmap = tmp_path / "broken-map.toml"
    regmap.write_text('model = "x"\n[[register]]\nname = "level_pct"\naddress = -4\n')
    path = write(tmp_path, GOOD + f"""
[[bus]]
name = "rs485"
type = "modbus-tcp"
host = "127.0.0.1"
port = 502

[[bus.device]]
id = "lamp-1"
unit = 1
register_map = "{regmap}"
""")
    with pytest.raises(AgentConfigError) as err:
        load_config(path)
    assert err.value.file == str(path)
    # the error names the map file, the key inside it, and the reason
    assert err.value.key == f"{regmap}:register[0].address"
    assert "out of range" in err.value.reason


def test_not_toml_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[gateway\nid=")
    with pytest.raises(AgentConfigError, match="not valid TOML"):
        load_config(path)


def test_check_config_command_exits_2_with_the_message(tmp_path: Path) -> None:
    bad = write(tmp_path, GOOD.replace('commune = "21231"', "commune = 7"))
    run = subprocess.run(
        [sys.executable, "-m", "edge_agent", "check-config", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 2
    assert f"{bad}: gateway.commune: expected a string" in run.stderr
    assert "Traceback" not in run.stderr
    good = write(tmp_path, GOOD)
    ok = subprocess.run(
        [sys.executable, "-m", "edge_agent", "check-config", str(good)], capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stderr
    assert "ok" in ok.stdout
