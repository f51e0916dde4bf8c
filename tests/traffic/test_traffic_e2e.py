"""End to end, as deployed: a conflict in the controller reaches the collector's store as a critical alarm.

Three real processes: `citygate-sim signals` (the controller, on Modbus TCP, its own clock ten
times real time, a conflict injected once a plan runs), `citygate-agent run` with a signals bus,
and `citygate-collector serve`.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import orjson
from traffic_testkit import DIJON

from simulators.procs import Proc, add_gateway, bin_path, free_port, start_collector, wait_tcp

GW = "gw-traffic-e2e"


def stored_events(db: Path, code: str) -> list[tuple[str, str, dict[str, object]]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT e.device, e.severity, e.detail FROM events e JOIN gateways g ON g.id = e.gateway_id "
            "WHERE g.name = ? AND e.code = ?", (GW, code),
        ).fetchall()
    finally:
        con.close()
    return [(device, severity, orjson.loads(detail)) for device, severity, detail in rows]


def test_a_conflict_in_the_controller_reaches_the_collector_as_a_critical_alarm(tmp_path: Path) -> None:
    db = tmp_path / "collector.db"
    token_file = tmp_path / "token"
    add_gateway(str(db), GW, "21231", token_file)
    collector, url = start_collector(str(db))
    port = free_port()
    # The Dijon tables run a plan at every hour (no night flash), so the test holds whenever it runs;
    # the controller's clock starts at the wall clock, as the agent's does.
    sim = Proc("signals", [bin_path("citygate-sim"), "signals", "--intersection", str(DIJON), "--tcp", f"127.0.0.1:{port}",
                           "--speed", "10", "--fault", "1=conflict"])
    config = tmp_path / "agent.toml"
    config.write_text(f"""
[gateway]
id = "{GW}"
commune = "21231"
state_dir = "{tmp_path / 'state'}"

[uplink]
url = "{url}"
token_file = "{token_file}"
interval_s = 0.2

[[bus]]
name = "signals-jaures"
type = "signals"
host = "127.0.0.1"
port = {port}
intersection = "{DIJON}"
interval_s = 0.2
backup_time_s = 3600
refresh_s = 60
""")
    agent: Proc | None = None
    try:
        sim.wait_for("signals: controller dijon-jaures-tram on modbus-tcp", timeout=60)
        wait_tcp("127.0.0.1", port)
        agent = Proc("agent", [bin_path("citygate-agent"), "run", "--config", str(config)])
        agent.wait_for("agent .* started", timeout=60)
        sim.wait_for("fault injected: forced", timeout=90)
        sim.wait_for("mode failure", timeout=30)
        deadline = time.monotonic() + 60
        while not (found := stored_events(db, "safety_error")):
            assert time.monotonic() < deadline, f"no alarm in the store; agent:\n{agent.output()}"
            time.sleep(0.2)
        device, severity, detail = found[0]
        assert (device, severity) == ("signals-jaures", "critical")
        assert detail["mode"] == "failure"
        assert len(found) == 1
    finally:
        if agent is not None:
            agent.stop()
        sim.stop()
        collector.stop()
