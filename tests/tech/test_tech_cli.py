"""A technician's session: every `citygate-agent` command against a running agent polling simulated lamps.

Real processes throughout: the collector, `citygate-sim lamps` on Modbus TCP (unit 3 never
answers), the agent with its local API on a Unix socket, and the CLI as a subprocess.
"""

from __future__ import annotations

import re
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from tech_kit import agent_config, cli, cli_json, lamps_bus, start_agent, wait_until

from simulators.procs import Proc, add_gateway, bin_path, start_collector

REPO = Path(__file__).resolve().parents[2]
LC100 = REPO / "configs" / "registermaps" / "lamp-lc100.toml"


@dataclass
class Cabinet:
    tmp: Path
    config: Path
    socket: Path
    db: Path
    sim_port: int
    agent: Proc

    def sock(self) -> tuple[str, str]:
        return ("--socket", str(self.socket))


def modbus_bus(port: int) -> str:
    return lamps_bus(port, ["lamp-1", "lamp-2", "lamp-3"])


@pytest.fixture(scope="module")
def cabinet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cabinet]:
    tmp = tmp_path_factory.mktemp("cabinet")
    db = tmp / "collector.db"
    collector, url = start_collector(str(db))
    sim = Proc("lamps", [bin_path("citygate-sim"), "lamps", "--tcp", "127.0.0.1:0", "--units", "1-3",
                         "--register-map", str(LC100), "--level", "70", "--fault", "3=no-answer"])
    agent: Proc | None = None
    try:
        token = add_gateway(str(db), "gw-tech-1", "21231", tmp / "token")
        port = int(sim.wait_for(r"on modbus-tcp 127\.0\.0\.1:(\d+)").group(1))
        config = agent_config(tmp, uplink=url, token=token, extra=modbus_bus(port))
        agent = start_agent(config)
        yield Cabinet(tmp, config, tmp / "run" / "agent.sock", db, port, agent)
    finally:
        if agent is not None:
            agent.stop()
        sim.stop()
        collector.stop()


def devices_by_id(cab: Cabinet) -> dict[str, Any]:
    _, doc = cli_json("devices", *cab.sock())
    return {d["device"]: d for d in doc}


def test_status_reports_uplink_journal_devices_loops_and_versions(cabinet: Cabinet) -> None:
    wait_until(lambda: cli_json("status", *cabinet.sock())[1]["uplink"]["last_success_ms"] is not None, 60,
               "a first upload to the collector")
    code, doc = cli_json("status", "--config", str(cabinet.config))  # socket found through the config
    assert doc["gateway"] == {"id": "gw-tech-1", "commune": "21231"}
    assert doc["uplink"]["connected"] is True and doc["uplink"]["uploaded_records"] > 0
    assert doc["healthy"] is True
    assert {loop["name"] for loop in doc["loops"]} == {"journal", "uploader", "bus rs485-1"}
    assert doc["devices"]["total"] == 3
    assert doc["journal"]["dropped_total"] == 0 and doc["journal"]["size_bytes"] > 0
    assert doc["versions"]["citygate"] and doc["versions"]["pymodbus"].startswith("3.16")
    assert doc["clock"]["synchronised"] in (True, False, None)
    assert doc["broker"] == {"configured": False}
    assert doc["uptime_s"] > 0
    assert code == 1  # lamp-3 never answers: that needs attention
    human = cli("status", *cabinet.sock())
    assert human.returncode == 1
    assert "gw-tech-1" in human.stdout and "uplink" in human.stdout and "up" in human.stdout
    assert re.search(r"attention: devices not ok: \d+ failing", human.stdout), human.stdout


def test_devices_show_state_last_reading_and_error_counts(cabinet: Cabinet) -> None:
    wait_until(lambda: devices_by_id(cabinet)["lamp-3"]["state"] == "failing", 30, "lamp-3 marked failing")
    wait_until(lambda: devices_by_id(cabinet)["lamp-1"]["state"] == "ok", 30, "lamp-1 ok")
    code, doc = cli_json("devices", *cabinet.sock())
    devs = {d["device"]: d for d in doc}
    assert code == 1
    assert devs["lamp-1"]["bus"] == "rs485-1" and devs["lamp-1"]["address"] == "unit 1"
    assert devs["lamp-1"]["last_values"]["level_pct"] in (70, 30, 50)  # other tests may override it
    assert devs["lamp-1"]["last_ts_ms"] > 0 and devs["lamp-1"]["bus_kind"] == "lamps"
    assert devs["lamp-3"]["errors"].get("timeout", 0) > 0 and devs["lamp-3"]["last_error"]
    human = cli("devices", *cabinet.sock())
    assert human.returncode == 1
    assert "lamp-3" in human.stdout and "failing" in human.stdout and "rs485-1" in human.stdout


def test_read_is_a_live_read_and_a_dead_or_unknown_device_is_one_line(cabinet: Cabinet) -> None:
    code, doc = cli_json("read", "lamp-2", *cabinet.sock())
    assert code == 0
    assert doc["device"] == "lamp-2" and doc["bus"] == "rs485-1"
    assert {"level_pct", "power_w", "energy_wh", "voltage_v"} <= set(doc["values"])
    human = cli("read", "lamp-2", *cabinet.sock())
    assert human.returncode == 0 and "power_w" in human.stdout
    dead = cli("read", "lamp-3", *cabinet.sock())
    assert dead.returncode == 1
    assert dead.stderr.count("\n") == 1 and dead.stderr.startswith("error: lamp-3 on rs485-1:")
    unknown = cli("read", "lamp-99", *cabinet.sock())
    assert unknown.returncode == 1 and "lamp-99" in unknown.stderr


def test_lamp_override_holds_the_level_then_expires_by_itself_and_is_audited(cabinet: Cabinet) -> None:
    # 10 s: the two CLI calls below must see the override, each a process start on a loaded machine
    code, doc = cli_json("lamp", "set", "lamp-2", "--level", "30", "--for", "10s", *cabinet.sock())
    assert code == 0, doc
    assert doc["via"] == "direct" and doc["feedback_level_pct"] == 30 and doc["restore_pct"] == 70
    assert cli_json("read", "lamp-2", *cabinet.sock())[1]["values"]["level_pct"] == 30
    assert devices_by_id(cabinet)["lamp-2"]["override"]["level_pct"] == 30
    wait_until(lambda: cli_json("read", "lamp-2", *cabinet.sock())[1]["values"]["level_pct"] == 70, 60,
               "lamp-2 back to its level after the override")
    assert devices_by_id(cabinet)["lamp-2"]["override"] is None
    _, events = cli_json("events", *cabinet.sock())
    codes = [(e["device"], e["code"]) for e in events]
    assert ("lamp-2", "override_set") in codes and ("lamp-2", "override_ended") in codes
    set_event = next(e for e in events if e["code"] == "override_set" and e["device"] == "lamp-2")
    assert set_event["detail"]["level_pct"] == 30 and set_event["detail"]["uid"] == 0  # who: root ran the CLI

    def stored() -> set[str]:
        con = sqlite3.connect(f"file:{cabinet.db}?mode=ro", uri=True)
        try:
            return {r[0] for r in con.execute("SELECT code FROM events")}
        finally:
            con.close()

    wait_until(lambda: {"override_set", "override_ended"} <= stored(), 30, "the audit events at the collector")


def test_lamp_clear_ends_an_override_now(cabinet: Cabinet) -> None:
    run = cli("lamp", "set", "lamp-1", "--level", "50", "--for", "10m", *cabinet.sock())
    assert run.returncode == 0 and "lamp-1 held at 50 %" in run.stdout and "back to 70 %" in run.stdout
    assert cli_json("read", "lamp-1", *cabinet.sock())[1]["values"]["level_pct"] == 50
    cleared = cli("lamp", "clear", "lamp-1", *cabinet.sock())
    assert cleared.returncode == 0 and "back to 70 %" in cleared.stdout
    assert cli_json("read", "lamp-1", *cabinet.sock())[1]["values"]["level_pct"] == 70
    again = cli("lamp", "clear", "lamp-1", *cabinet.sock())
    assert again.returncode == 1 and "no override" in again.stderr


def test_lamp_set_refuses_bad_input_and_non_lamps(cabinet: Cabinet) -> None:
    assert cli("lamp", "set", "lamp-1", "--level", "130", *cabinet.sock()).returncode == 2
    bad_duration = cli("lamp", "set", "lamp-1", "--level", "10", "--for", "soon", *cabinet.sock())
    assert bad_duration.returncode == 2 and "not a duration" in bad_duration.stderr
    too_long = cli("lamp", "set", "lamp-1", "--level", "10", "--for", "13h", *cabinet.sock())
    # the limit in the words of the option, not the API's field name
    assert too_long.returncode == 2 and "at most 12 h" in too_long.stderr and "duration_s" not in too_long.stderr
    assert cli("lamp", "set", "lamp-42", "--level", "10", *cabinet.sock()).returncode == 1


def test_lamp_status_without_lighting_says_so(cabinet: Cabinet) -> None:
    run = cli("lamp", "status", *cabinet.sock())
    assert run.returncode == 1 and "no [lighting] section" in run.stderr


def test_journal_reports_counts_size_and_drops(cabinet: Cabinet) -> None:
    code, doc = cli_json("journal", *cabinet.sock())
    assert code == 0
    assert doc["path"].endswith("journal.db") and doc["dropped_total"] == 0
    assert doc["records"] == doc["samples"] + doc["events"] and doc["size_bytes"] > 0
    human = cli("journal", *cabinet.sock())
    assert human.returncode == 0 and "unsent" in human.stdout and "dropped" in human.stdout


def test_events_follow_streams_new_events_and_samples(cabinet: Cabinet) -> None:
    follower = subprocess.Popen([bin_path("citygate-agent"), "events", "--follow", "--samples", "--json", "-n", "0",
                                 *cabinet.sock()], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # let it subscribe
        assert cli("lamp", "set", "lamp-2", "--level", "40", "--for", "2s", *cabinet.sock()).returncode == 0
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        assert follower.stdout is not None
        while time.monotonic() < deadline:
            line = follower.stdout.readline()
            if not line:
                break
            seen.append(orjson.loads(line))
            if any(d["kind"] == "event" and d["code"] == "override_ended" for d in seen):
                break
        kinds = {(d["kind"], d.get("code")) for d in seen}
        assert ("event", "override_set") in kinds and ("event", "override_ended") in kinds, seen[-5:]
        assert any(d["kind"] == "sample" and d["device"].startswith("lamp-") for d in seen)
    finally:
        follower.terminate()
        follower.wait(10)


def test_a_locked_agent_refuses_write_calls_with_exit_4_but_reads(cabinet: Cabinet, tmp_path: Path) -> None:
    config = agent_config(tmp_path, uplink="http://127.0.0.1:9", technician=False, extra=modbus_bus(cabinet.sim_port))
    agent = start_agent(config)
    try:
        sock = ("--socket", str(tmp_path / "run" / "agent.sock"))
        refused = cli("lamp", "set", "lamp-1", "--level", "10", *sock)
        assert refused.returncode == 4
        assert "technician = true" in refused.stderr and refused.stderr.count("\n") == 1
        assert cli("lamp", "clear", "lamp-1", *sock).returncode == 4
        assert cli_json("read", "lamp-1", *sock)[0] == 0  # a live read is a read call
    finally:
        agent.stop()


def test_without_the_agent_each_command_says_so_in_one_line_and_exits_3(tmp_path: Path) -> None:
    missing = tmp_path / "agent.sock"
    for args in (["status"], ["devices"], ["read", "lamp-1"], ["journal"], ["events"], ["lamp", "status"],
                 ["lamp", "set", "lamp-1", "--level", "5"]):
        run = cli(*args, "--socket", str(missing))
        assert run.returncode == 3, (args, run.stderr)
        assert run.stderr == f"cannot reach the agent at {missing}: no such socket (is the agent running?)\n"
        assert run.stdout == ""
    stale = tmp_path / "stale.sock"
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(str(stale))  # a socket file nobody listens on: what a killed agent leaves
    try:
        run = cli("status", "--socket", str(stale))
        assert run.returncode == 3 and run.stderr.startswith(f"cannot reach the agent at {stale}: connection refused")
    finally:
        leftover.close()
    config = agent_config(tmp_path, uplink="http://127.0.0.1:9")
    via_config = cli("status", "--config", str(config))
    assert via_config.returncode == 3 and str(tmp_path / "run" / "agent.sock") in via_config.stderr
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[local_api]\ntechnician = 'yes'\n")
    run = cli("status", "--config", str(bad_config))
    assert run.returncode == 2 and "local_api.technician" in run.stderr


def test_check_config_and_decode_still_answer_beside_the_technician_commands(cabinet: Cabinet) -> None:
    run = cli("check-config", str(cabinet.config))
    assert run.returncode == 0 and "3 device(s)" in run.stdout
    help_text = cli("--help").stdout
    assert "Exit codes:" in help_text and "cannot reach it" in help_text
    for command in ("status", "devices", "read", "lamp", "journal", "events", "probe", "check-config", "decode"):
        assert re.search(rf"^\s+{command}\s", help_text, re.MULTILINE), command


def test_an_agent_that_stops_during_an_override_puts_the_lamp_back_first(cabinet: Cabinet, tmp_path: Path) -> None:
    config = agent_config(tmp_path, uplink="http://127.0.0.1:9", extra=modbus_bus(cabinet.sim_port))
    agent = start_agent(config)
    try:
        sock = ("--socket", str(tmp_path / "run" / "agent.sock"))
        assert cli("lamp", "set", "lamp-1", "--level", "20", "--for", "1h", *sock).returncode == 0
        assert cli_json("read", "lamp-1", *cabinet.sock())[1]["values"]["level_pct"] == 20
    finally:
        assert agent.stop() == 0
    # without lighting nobody else would ever undo a test level: the agent restores it on its way out
    assert cli_json("read", "lamp-1", *cabinet.sock())[1]["values"]["level_pct"] == 70


def test_a_loop_that_ticks_but_fails_is_told_apart_from_a_silent_one() -> None:
    from edge_agent.cli_tech import attention_of_status, loop_mark

    stalled = {"name": "uploader", "age_s": 1.0, "limit_s": 330.0, "healthy": False,
               "problem": "the batch from seq 7 has failed for 901 s (limit 900 s): collector answered 500: ..."}
    silent = {"name": "bus lamps", "age_s": 400.0, "limit_s": 300.0, "healthy": False, "problem": None}
    doc = {"loops": [stalled, silent], "uplink": {"consecutive_failures": 0, "last_error": None},
           "devices": {"total": 0}, "clock": {"synchronised": True}}
    assert attention_of_status(doc)[:2] == [
        "loop uploader: the batch from seq 7 has failed for 901 s (limit 900 s): collector answered 500: ...",
        "loop bus lamps silent for 400 s (limit 300 s)"]
    assert (loop_mark(stalled), loop_mark(silent)) == ("[red]FAILING[/]", "[red]STUCK[/]")
