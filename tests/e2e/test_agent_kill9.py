"""kill -9 the agent 20 times while it polls lamp controllers and uploads: every record the journal
accepted reaches the collector exactly once."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from simulators.procs import Proc, add_gateway, bin_path, free_port, start_collector, wait_tcp
from tests.e2e.e2e_kit import stored_samples, stored_seqs, wait_until

REPO = Path(__file__).resolve().parents[2]
REGMAP = REPO / "configs" / "registermaps" / "lamp-lc100.toml"
GW = "gw-kill9"
LAMPS = 20


def agent_config(state: Path, url: str, token_file: Path, sim_port: int | None) -> str:
    text = f"""
[gateway]
id = "{GW}"
commune = "21231"
state_dir = "{state}"

[uplink]
url = "{url}"
token_file = "{token_file}"
interval_s = 0.1
batch_max_records = 40
backoff_max_s = 1

[local_api]
socket = "{state}/agent.sock"
"""
    if sim_port is not None:
        text += f"""
[[bus]]
name = "rs485"
type = "modbus-tcp"
host = "127.0.0.1"
port = {sim_port}
interval_s = 0.2
timeout_s = 0.5
"""
        # report = "every": every poll journalled, so the kills fall among many commits and uploads
        for unit in range(1, LAMPS + 1):
            text += f'\n[[bus.device]]\nid = "lamp-{unit:02d}"\nunit = {unit}\nregister_map = "{REGMAP}"\nreport = "every"\n'
    return text


def journal_unsent(state: Path, db: Path) -> int:
    """Journal rows the collector does not hold (acknowledged rows stay until the journal purges them)."""
    path = state / "journal.db"
    if not path.exists():
        return 0
    con = sqlite3.connect(path)
    try:
        seqs = {row[0] for row in con.execute("SELECT seq FROM journal")}
    finally:
        con.close()
    return len(seqs - set(stored_seqs(db, GW)))


def test_kill9_twenty_times_while_polling_and_uploading_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    db = tmp_path / "collector.db"
    token_file = tmp_path / "token"
    add_gateway(str(db), GW, "21231", token_file)
    collector, url = start_collector(str(db))
    sim_port = free_port()
    sim = Proc("lamps", [bin_path("citygate-sim"), "lamps", "--tcp", f"127.0.0.1:{sim_port}", "--units",
                         f"1-{LAMPS}", "--register-map", str(REGMAP)])
    state = tmp_path / "state"
    polling = tmp_path / "agent.toml"
    polling.write_text(agent_config(state, url, token_file, sim_port))
    draining = tmp_path / "drain.toml"
    draining.write_text(agent_config(state, url, token_file, None))
    try:
        wait_tcp("127.0.0.1", sim_port)
        for _ in range(20):
            agent = Proc("agent", [bin_path("citygate-agent"), "run", "--config", str(polling)])
            agent.wait_for("agent .* started", timeout=60)
            time.sleep(rng.uniform(0.2, 1.5))  # mid-poll, mid-commit or mid-upload: wherever it falls
            agent.kill9()
        # the last restart, with no bus, drains what the journal holds
        agent = Proc("agent", [bin_path("citygate-agent"), "run", "--config", str(draining)])
        agent.wait_for("agent .* started", timeout=60)
        wait_until(lambda: journal_unsent(state, db) == 0, 90, "the journal to drain")
        agent.popen.send_signal(signal.SIGTERM)
        try:
            agent.popen.wait(30)
        except subprocess.TimeoutExpired:
            agent.popen.send_signal(signal.SIGUSR1)  # dump the stacks of the stuck agent into its output
            time.sleep(2)
            agent.kill9()
        assert agent.popen.returncode == 0, agent.output()[-6000:]
    finally:
        sim.stop()
        collector.stop()
    seqs = stored_seqs(db, GW)
    assert len(seqs) > 20 * LAMPS, "the agent should have polled and uploaded between kills"
    # the journal numbers committed records contiguously: the store holds each exactly once
    assert seqs == list(range(seqs[0], seqs[-1] + 1))
    devices = {device for device, _, _ in stored_samples(db, GW).values()}
    assert devices == {f"lamp-{u:02d}" for u in range(1, LAMPS + 1)}
