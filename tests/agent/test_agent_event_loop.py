"""The agent runs on uvloop when it is installed (edge_agent.eventloop), on the standard loop when the
unit's environment says CITYGATE_EVENT_LOOP=asyncio, and refuses a value it does not know before
starting anything. `status` names the loop among the versions, for the technician.

Real `citygate-agent run` processes (a bus-less gateway uploading to a closed port); the CLI as typed."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import orjson
import pytest

from edge_agent import eventloop
from simulators.procs import Proc, bin_path


def config(tmp_path: Path) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text("""
[gateway]
id = "gw-loop"
commune = "21231"
state_dir = "state"

[uplink]
url = "http://127.0.0.1:9"
token = "t"

[local_api]
socket = "run/agent.sock"
""")
    return path


@pytest.mark.parametrize("choice, loop", [(None, "uvloop"), ("auto", "uvloop"), ("asyncio", "asyncio"),
                                          ("uvloop", "uvloop")])
def test_status_names_the_loop_the_agent_runs_on(tmp_path: Path, choice: str | None, loop: str) -> None:
    env = {} if choice is None else {eventloop.ENV: choice}
    agent = Proc("agent", [bin_path("citygate-agent"), "run", "--config", str(config(tmp_path))], env=env)
    try:
        agent.wait_for(r"local API listening on ", timeout=60)
        run = subprocess.run([bin_path("citygate-agent"), "status", "--json"], capture_output=True, text=True,
                             timeout=60, env={**os.environ, "CITYGATE_SOCKET": str(tmp_path / "run" / "agent.sock")})
        assert orjson.loads(run.stdout)["versions"]["event_loop"] == loop, run.stdout + run.stderr
    finally:
        agent.stop()


def test_an_unknown_loop_is_refused_before_anything_starts(tmp_path: Path) -> None:
    run = subprocess.run([bin_path("citygate-agent"), "run", "--config", str(config(tmp_path))],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, eventloop.ENV: "trio"})
    assert run.returncode == 2, run.stdout + run.stderr
    assert "CITYGATE_EVENT_LOOP='trio': expected one of auto, uvloop, asyncio" in run.stderr
    assert not (tmp_path / "state").exists()  # nothing started: no journal made


def test_run_returns_what_the_coroutine_returns_on_each_loop() -> None:
    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__.split(".")[0]

    assert eventloop.run(which(), "asyncio") == "asyncio"
    assert eventloop.run(which(), "uvloop") == "uvloop"
    assert eventloop.run(which(), "auto") == "uvloop"
