"""The technician's commands in an 80-column terminal: names whole, values a person reads, helpful mistakes.

A running agent (its lamps on `citygate-sim lamps`, long device and group names as real
streets have) and the CLI as a subprocess, as a technician types it.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tech_kit import LC100, agent_config, lamps_bus, start_agent, wait_until

from simulators.procs import Proc, bin_path

REPO = Path(__file__).resolve().parents[2]
LAMPS = ["lamp-rue-de-la-liberte-01", "lamp-rue-de-la-liberte-02", "lamp-rue-de-la-liberte-03"]
SENSORS = {"A4:C1:38:8D:18:B2": "thermometre-place-darcy-nord", "CB:B8:33:4C:88:4F": "ruuvi-jardin-darcy-ouest"}


@dataclass
class Street:
    socket: Path
    agent: Proc


def street_config(port: int) -> str:
    sensors = "".join(f"""
[[bus.allow]]
mac = "{mac}"
id = "{name}"
kind = "{'ruuvi' if name.startswith('ruuvi') else 'bthome'}"
""" for mac, name in SENSORS.items())
    return lamps_bus(port, LAMPS, name="cabinet-modbus-rs485") + f"""
[[bus]]
name = "ble-street"
type = "ble"
backend = "replay:{REPO / 'configs' / 'ble' / 'street-sensors.json'}"
{sensors}
[lighting]
programs = ["{REPO / 'configs/lighting/common.toml'}", "{REPO / 'configs/lighting/dijon.toml'}"]
timezone = "Europe/Paris"
latitude = 47.322
longitude = 5.042

[[lighting.group]]
name = "rue-de-la-liberte-nord"
lamps = {LAMPS!r}
calendar = "dijon"
rated_power_w = 100
"""


@pytest.fixture(scope="module")
def street(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Street]:
    tmp = tmp_path_factory.mktemp("street")
    sim = Proc("lamps", [bin_path("citygate-sim"), "lamps", "--tcp", "127.0.0.1:0", "--units", "1-3",
                         "--register-map", str(LC100), "--level", "70", "--fault", "3=no-answer"])
    agent: Proc | None = None
    try:
        port = int(sim.wait_for(r"on modbus-tcp 127\.0\.0\.1:(\d+)").group(1))
        agent = start_agent(agent_config(tmp, uplink="http://127.0.0.1:9", extra=street_config(port)))
        yield Street(tmp / "run" / "agent.sock", agent)
    finally:
        if agent is not None:
            agent.stop()
        sim.stop()


def typed(*args: str, socket: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """`citygate-agent ARGS` as typed in an 80-column terminal of Paris, the socket in $CITYGATE_SOCKET."""
    environ = {**os.environ, "COLUMNS": "80", "TZ": "Europe/Paris", **env}
    environ.pop("CITYGATE_SOCKET", None)
    if socket is not None:
        environ["CITYGATE_SOCKET"] = str(socket)
    return subprocess.run([bin_path("citygate-agent"), *args], capture_output=True, text=True, timeout=60,
                          env=environ)


def readable(text: str) -> None:
    """What a person reads: 80 columns, nothing cut, no JSON, no Python literals, no epoch milliseconds."""
    for line in text.splitlines():
        assert len(line) <= 80, f"{len(line)} columns: {line!r}"
    assert "…" not in text, text
    assert not re.search(r"\b(True|False|None)\b", text), text
    assert not re.search(r"[{\[]\"", text), text  # a JSON object or list
    assert not re.search(r"\b1\d{12}\b", text), text  # epoch milliseconds
    for zone in re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d( ?[A-Za-z+\-0-9:]*)", text):
        assert zone in (" CET", " CEST"), text  # local time, with its zone


def test_devices_fit_80_columns_with_every_name_whole(street: Street) -> None:
    wait_until(lambda: "failing" in typed("devices", socket=street.socket).stdout, 30, "the silent lamp failing")
    run = typed("devices", socket=street.socket)
    assert run.returncode == 1
    readable(run.stdout)
    for lamp in LAMPS:
        assert re.search(rf"^\s*{lamp}\s", run.stdout, re.MULTILINE), run.stdout
    for mac, sensor in SENSORS.items():  # a table per bus: every name and MAC whole, beside its state
        assert re.search(rf"^\s*{sensor}\s+{mac}\s+(ok|unknown)\s", run.stdout, re.MULTILINE), run.stdout
    assert re.search(r"^\s*lamp-rue-de-la-liberte-03\s+unit 3\s+failing\s+never\s+timeout \d+", run.stdout,
                     re.MULTILINE), run.stdout
    assert "bus ble-street" in run.stdout
    assert "cabinet-modbus-rs485" in run.stdout and "ago" in run.stdout
    # the silent lamp's reason is told whole, under the table
    assert re.search(r"lamp-rue-de-la-liberte-03: no reply from unit 3", run.stdout), run.stdout


def test_status_journal_read_and_events_read_as_text(street: Street) -> None:
    for args in (["status"], ["journal"], ["read", LAMPS[0]], ["events", "-n", "20"]):
        run = typed(*args, socket=street.socket)
        assert run.returncode in (0, 1), (args, run.stderr)
        assert run.stdout, args
        readable(run.stdout)
    read = typed("read", LAMPS[0], socket=street.socket).stdout
    assert re.search(r"lamp_on\s+(yes|no) *\n", read) and re.search(r"lamp_failure\s+no *\n", read), read
    assert re.search(r"\d\d:\d\d:\d\d CET", read), read  # December: Paris is on CET


def test_lamp_status_shows_groups_lamps_and_overrides_in_words(street: Street) -> None:
    set_run = typed("lamp", "set", LAMPS[1], "--level", "40", "--for", "5m", socket=street.socket)
    assert set_run.returncode == 0, set_run.stderr
    readable(set_run.stdout)
    try:
        events = typed("events", socket=street.socket)
        readable(events.stdout)
        # the override's end in the event's detail is a local time, not until_ms
        assert re.search(r"override_set\s.*until=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CET", events.stdout, re.S), events.stdout
        run = typed("lamp", "status", socket=street.socket)
        assert run.returncode in (0, 1), run.stderr
        readable(run.stdout)
        assert "rue-de-la-liberte-nord" in run.stdout
        for lamp in LAMPS[:2]:  # every column beside the name: none dropped for lack of room
            assert re.search(rf"^\s*{lamp}\s+\d+ %.*\s[\d.]+ W\s+[\d.]+ h\s+[\d.]+ Wh", run.stdout, re.M), run.stdout
        assert LAMPS[2] in run.stdout
        assert re.search(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d\d:\d\d CES?T → \d+ %", run.stdout), run.stdout  # next switch
    finally:
        typed("lamp", "clear", LAMPS[1], socket=street.socket)


def test_the_socket_comes_from_citygate_socket(street: Street) -> None:
    assert typed("journal", socket=street.socket).returncode == 0
    assert "CITYGATE_SOCKET" in typed("status", "--help").stdout
    # --socket still wins over the environment
    other = street.socket.parent / "nobody.sock"
    run = typed("journal", "--socket", str(other), socket=street.socket)
    assert run.returncode == 3 and str(other) in run.stderr


def test_a_typo_gets_the_nearest_command() -> None:
    for args, meant in ((["devcies"], "devices"), (["stauts"], "status"), (["lamp", "stauts"], "status"),
                        (["probe", "modbsu"], "modbus"), (["sched"], "schedule")):
        run = typed(*args)
        assert run.returncode == 2, args
        assert f"Did you mean {meant!r}?" in run.stderr, (args, run.stderr)
    nothing_near = typed("xyzzy")
    assert nothing_near.returncode == 2 and "No such command 'xyzzy'" in nothing_near.stderr
    assert "Did you mean" not in nothing_near.stderr


def complete(words: str, socket: Path | None) -> list[str]:
    """What bash completion offers for the last of `words` (click's bash_complete protocol)."""
    run = typed(socket=socket, _CITYGATE_AGENT_COMPLETE="bash_complete", COMP_WORDS=words,
                COMP_CWORD=str(len(words.split()) - (0 if words.endswith(" ") else 1)))
    assert run.returncode == 0, run.stderr
    return [line.split(",", 1)[1] for line in run.stdout.splitlines() if line.startswith("plain,")]


def test_shell_completion_offers_commands_and_the_agents_device_ids(street: Street) -> None:
    assert "devices" in complete("citygate-agent dev", None)
    assert complete("citygate-agent read lamp-rue-de-la-liberte-0", street.socket) == LAMPS
    assert complete("citygate-agent lamp set ", street.socket) == LAMPS
    # no agent: nothing to offer, and not a word on the terminal
    assert complete("citygate-agent read lamp", street.socket.parent / "nobody.sock") == []
    assert "_CITYGATE_AGENT_COMPLETE=bash_source" in typed("--help").stdout


def test_a_duration_out_of_bounds_is_told_in_the_options_words() -> None:
    # refused before the agent is asked: no socket is needed to be told
    too_long = typed("lamp", "set", LAMPS[0], "--level", "10", "--for", "13h", "--socket", "/nonexistent.sock")
    assert too_long.returncode == 2
    assert "13h is too long: at most 12 h" in too_long.stderr and "duration_s" not in too_long.stderr
    too_short = typed("lamp", "set", LAMPS[0], "--level", "10", "--for", "0s", "--socket", "/nonexistent.sock")
    assert too_short.returncode == 2 and "at least 1 s" in too_short.stderr


def test_the_commands_without_an_agent_fit_80_columns_too() -> None:
    cabinet = REPO / "configs" / "gateways" / "dijon-cabinet.toml"
    tram = REPO / "configs" / "intersections" / "dijon-jaures-tram.toml"
    for args in (["simulate-year", "--config", str(cabinet), "--year", "2026"],
                 ["schedule", "--config", str(cabinet), "--date", "2026-07-14"],
                 ["plan", "check", str(tram)], ["plan", "show", str(tram), "--date", "2026-12-03"],
                 ["decode", "ruuvi", "0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F"]):
        run = typed(*args)
        assert run.returncode == 0, (args, run.stderr)
        readable(run.stdout)
    assert "rue-de-la-liberte" in typed("simulate-year", "--config", str(cabinet), "--year", "2026").stdout


def test_a_refusal_names_the_lamp_and_the_reason_not_an_internal_rule(street: Street) -> None:
    run = typed("lamp", "set", "lamp-nowhere", "--level", "10", socket=street.socket)
    assert run.returncode == 1
    assert run.stderr.startswith("error: lamp-nowhere: no such lamp"), run.stderr
    assert "rule" not in run.stderr and "unknown_target" not in run.stderr, run.stderr
