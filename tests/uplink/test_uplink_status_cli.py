"""`citygate-agent status` in an 80-column terminal shows what the gateway spent (uplink data today and
this month, disk writes today) and warns when the month's data budget will not last.

A real collector, lamp simulator and agent as subprocesses; the CLI as a technician types it."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from simulators.procs import Proc, add_gateway, bin_path, start_collector

REPO = Path(__file__).resolve().parents[2]
LC100 = REPO / "configs" / "registermaps" / "lamp-lc100.toml"


def typed(*args: str, socket: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "80", "TZ": "Europe/Paris", "CITYGATE_SOCKET": str(socket)}
    return subprocess.run([bin_path("citygate-agent"), *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture
def cabinet(tmp_path: Path) -> Iterator[Path]:
    """A 2-lamp cabinet uploading to a collector, with a 1 kB monthly budget; yields the agent's socket."""
    db = str(tmp_path / "collector.db")
    token_file = tmp_path / "token"
    add_gateway(db, "gw-uplink-cli", "21231", token_file)
    token_file.chmod(0o600)
    collector, url = start_collector(db)
    procs = [collector]
    try:
        sim = Proc("lamps", [bin_path("citygate-sim"), "lamps", "--tcp", "127.0.0.1:0", "--units", "1-2",
                             "--register-map", str(LC100), "--level", "70"])
        procs.append(sim)
        port = int(sim.wait_for(r"on modbus-tcp 127\.0\.0\.1:(\d+)").group(1))
        config = tmp_path / "agent.toml"
        config.write_text(f"""
[gateway]
id = "gw-uplink-cli"
commune = "21231"
state_dir = "state"

[uplink]
url = "{url}"
token_file = "{token_file}"
interval_s = 0.2
monthly_budget_mb = 0.001

[local_api]
socket = "run/agent.sock"

[[bus]]
name = "cabinet-modbus"
type = "modbus-tcp"
host = "127.0.0.1"
port = {port}
interval_s = 0.5
""" + "".join(f"""
[[bus.device]]
id = "lamp-rue-de-la-liberte-0{n}"
unit = {n}
register_map = "{LC100}"
""" for n in (1, 2)))
        agent = Proc("agent", [bin_path("citygate-agent"), "run", "--config", str(config)])
        procs.append(agent)
        agent.wait_for(r"local API listening on ", timeout=60)
        yield tmp_path / "run" / "agent.sock"
    finally:
        for proc in reversed(procs):
            proc.stop()


def usage(socket: Path) -> Any:
    return orjson.loads(typed("status", "--json", socket=socket).stdout)["usage"]


def test_status_shows_the_data_spent_and_warns_of_the_budget_in_80_columns(cabinet: Path) -> None:
    import time

    deadline = time.monotonic() + 30
    while usage(cabinet)["uplink_today"]["sent"] == 0:
        assert time.monotonic() < deadline, "nothing counted as sent within 30 s"
        time.sleep(0.3)
    run = typed("status", socket=cabinet)
    assert run.returncode == 1, run.stdout + run.stderr  # the budget needs attention
    for line in run.stdout.splitlines():
        assert len(line) <= 80, f"{len(line)} columns: {line!r}"
    assert "…" not in run.stdout
    assert re.search(r"^\s*data today\s+[\d.]+ (kB|MB) of uplink\s+\([\d.]+ (B|kB|MB) sent, [\d.]+ (B|kB|MB)\s+received;\s+control\s+link\s+[\d.]+ (B|kB|MB)\);",
                     run.stdout, re.M), run.stdout
    assert re.search(r"written\s+to\s+disk\s+\(\d{4}-\d\d-\d\d UTC\)", run.stdout), run.stdout
    assert re.search(r"^\s*data month\s+[\d.]+ (kB|MB) of uplink in \d{4}-\d\d of a 1\.0 kB\s+budget", run.stdout, re.M), \
        run.stdout
    assert re.search(r"attention: uplink data budget exceeded: [\d.]+.(kB|MB) sent and\s+received\s+this\s+month,\s+budget\s+1\.0.kB",
                     run.stdout), run.stdout
