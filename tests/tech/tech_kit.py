"""Shared by the technician tests: agent subprocesses, the CLI, and a NOTIFY_SOCKET that records what systemd would see."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from simulators.procs import Proc, bin_path

HERE = Path(__file__).parent
AGENT_READY = r"local API listening on "


class NotifyListener:
    """A datagram socket standing in for systemd's: every message with its arrival time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.messages.append((time.monotonic(), data.decode()))

    def lines(self) -> list[tuple[float, str]]:
        """(arrival, 'VAR=value') for every assignment received, in order."""
        with self._lock:
            return [(t, line) for t, msg in self.messages for line in msg.split("\n")]

    def count(self, line: str, since: float = 0.0) -> int:
        return sum(1 for t, x in self.lines() if x == line and t >= since)

    def wait_for(self, predicate: str, timeout: float) -> float:
        """Arrival time of the first line starting with `predicate`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, line in self.lines():
                if line.startswith(predicate):
                    return t
            time.sleep(0.05)
        raise AssertionError(f"no {predicate!r} within {timeout} s; got {[x for _, x in self.lines()][-20:]}")

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        self._thread.join(5)


def agent_config(tmp: Path, *, uplink: str, extra: str = "", technician: bool = True, token: str = "secret") -> Path:
    path = tmp / "agent.toml"
    path.write_text(f"""
[gateway]
id = "gw-tech-1"
commune = "21231"
state_dir = "state"

[uplink]
url = "{uplink}"
token = "{token}"
interval_s = 0.2
timeout_s = 2
backoff_max_s = 2

[local_api]
socket = "run/agent.sock"
technician = {"true" if technician else "false"}
{extra}
""")
    return path


LC100 = HERE.parents[1] / "configs" / "registermaps" / "lamp-lc100.toml"


def lamps_bus(port: int, lamps: list[str], name: str = "rs485-1") -> str:
    """A Modbus TCP bus of LC100 lamp controllers at units 1, 2, … on `citygate-sim lamps` at `port`."""
    devices = "".join(f"""
[[bus.device]]
id = "{lamp}"
unit = {unit}
register_map = "{LC100}"
rated_power_w = 100
""" for unit, lamp in enumerate(lamps, start=1))
    return f"""
[[bus]]
name = "{name}"
type = "modbus-tcp"
host = "127.0.0.1"
port = {port}
interval_s = 0.5
timeout_s = 0.3
retries = 0
failure_threshold = 2
backoff_max_s = 2
{devices}"""


def start_agent(config: Path, *, env: dict[str, str] | None = None, test_bus: bool = False) -> Proc:
    """`citygate-agent run` (or its launcher with the test bus type) in a subprocess, once its socket listens."""
    argv = [sys.executable, str(HERE / "run_agent_with_test_bus.py")] if test_bus else [bin_path("citygate-agent")]
    proc = Proc("agent", [*argv, "run", "--config", str(config), "--log-level", "debug"], env=env)
    proc.wait_for(AGENT_READY, timeout=60)
    return proc


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([bin_path("citygate-agent"), *args], capture_output=True, text=True, timeout=timeout)


def cli_json(*args: str) -> tuple[int, Any]:
    run = cli(*args, "--json")
    assert run.stdout, f"no output from {args}: rc={run.returncode} stderr={run.stderr}"
    return run.returncode, orjson.loads(run.stdout)


def wait_until(cond: object, timeout: float, what: str) -> None:
    assert callable(cond)
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)
