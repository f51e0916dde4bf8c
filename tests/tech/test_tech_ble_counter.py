"""A BTHome sensor whose counter restarted (a battery change): refused as a replay by an agent
that remembers its counter across a restart, let in again by `citygate-agent ble forget-counter`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from tech_kit import agent_config, cli, cli_json, start_agent, wait_until

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "configs" / "ble" / "street-sensors.json"
KEYED, PLAIN = "54:48:E6:8F:80:A5", "A4:C1:38:8D:18:B2"

pytestmark = pytest.mark.timeout(240)


def ble_bus(scenario: Path) -> str:
    doc = orjson.loads(SCENARIO.read_bytes())
    key = next(d["key"] for d in doc["devices"] if d["mac"] == KEYED)
    return f"""
[[bus]]
name = "ble0"
type = "ble"
backend = "replay:{scenario}"
min_interval_s = 0

[[bus.allow]]
mac = "{KEYED}"
id = "bt-shelly"
kind = "bthome"
key = "{key}"

[[bus.allow]]
mac = "{PLAIN}"
id = "bt-atc"
kind = "bthome"
"""


def events(sock: tuple[str, str], code: str) -> list[dict[str, Any]]:
    _, doc = cli_json("events", *sock)
    return [e for e in doc if e["code"] == code]


def test_a_restarted_counter_is_refused_across_an_agent_restart_until_the_technician_forgets_it(
        tmp_path: Path) -> None:
    # the replay restarts the sensor's counter at 1 each time the agent starts, as a sensor does
    # after a battery change; it advertises fast before the restart and slowly after it, so the
    # counter it restarts with stays below the one remembered while the test runs
    scenario = tmp_path / "street.json"

    def advertise_every(seconds: float) -> None:
        doc = orjson.loads(SCENARIO.read_bytes())
        for d in doc["devices"]:
            d["interval_s"] = seconds
        scenario.write_bytes(orjson.dumps(doc))

    advertise_every(0.05)
    config = agent_config(tmp_path, uplink="http://127.0.0.1:9", extra=ble_bus(scenario))
    sock = ("--socket", str(tmp_path / "run" / "agent.sock"))
    counters = tmp_path / "state" / "ble-ble0.counters.json"

    agent = start_agent(config)
    try:
        wait_until(lambda: counters.exists() and orjson.loads(counters.read_bytes())["sensors"][KEYED]["counter"] >= 60,
                   30, "the keyed sensor's counter on disk")
    finally:
        agent.stop()
    before = orjson.loads(counters.read_bytes())["sensors"][KEYED]["counter"]
    advertise_every(1.0)

    agent = start_agent(config)
    try:
        wait_until(lambda: events(sock, "bthome_replay"), 30, "the restarted counter refused as a replay")
        refused = events(sock, "bthome_replay")[0]
        assert refused["device"] == "bt-shelly" and f"(last {before})" in refused["detail"]["reason"]
        assert "citygate-agent ble forget-counter bt-shelly" in refused["detail"]["reason"]

        run = cli("ble", "forget-counter", "bt-shelly", *sock)
        assert run.returncode == 0, run.stderr
        assert f"bt-shelly: counter forgotten (was {before})" in run.stdout
        def kept() -> int | None:
            return orjson.loads(counters.read_bytes())["sensors"].get(KEYED, {}).get("counter")

        wait_until(lambda: (kept() or before) < before, 30, "the sensor's new counter accepted and kept")
        audit = events(sock, "ble_counter_forgotten")
        assert [(e["device"], e["detail"]["previous"], e["detail"]["uid"]) for e in audit] == [("bt-shelly", before, 0)]

        no_key = cli("ble", "forget-counter", "bt-atc", *sock)
        assert no_key.returncode == 1 and "has no bindkey" in no_key.stderr
        unknown = cli("ble", "forget-counter", "bt-nope", *sock)
        assert unknown.returncode == 1 and "no BLE sensor of this gateway" in unknown.stderr
    finally:
        agent.stop()
