"""`citygate-sim cameras`: N simulated cameras on loopback, the agent's [[bus]] table and a 0600 credentials
file written for it, and faults on a schedule that the cameras bus then sees."""

from __future__ import annotations

import asyncio
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

from citygate_wire.aio import stop_tasks
from drivers.base import BusContext
from drivers.cameras.bus import CameraBus
from drivers.model import Event, Record
from drivers.registry import parse_bus
from simulators.cameras import FAULT_HELP

RUN = "from simulators.cameras import cameras; cameras()"


async def test_the_simulator_command_writes_the_bus_table_and_its_faults_reach_the_bus(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", RUN, "--count", "2", "--out", str(tmp_path), "--fault", "0.8:cam-2:rtsp=503",
        "--fault", "0.8:cam-1:tampering", stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert "cameras-bus.toml" in line and "(mode 0600)" in line
        secret = tmp_path / "cameras.secret"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        raw = tomllib.loads((tmp_path / "cameras-bus.toml").read_text())["bus"][0]
        raw.update(interval_s=0.1, pull_timeout_s=0.3)
        bus = parse_bus(raw, BusContext("bus[0]", tmp_path)).build()
        assert isinstance(bus, CameraBus)
        records: list[Record] = []
        task = asyncio.create_task(bus.run(records.append))
        try:
            for _ in range(200):
                codes = {(r.device, r.code) for r in records if isinstance(r, Event)}
                if {("cam-2", "camera_stream_unavailable"), ("cam-1", "camera_tampering")} <= codes:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"faults not seen: {codes}")
        finally:
            await stop_tasks([task])
    finally:
        proc.terminate()
        await proc.wait()


def test_a_malformed_fault_is_refused_with_the_forms_it_takes() -> None:
    done = subprocess.run([sys.executable, "-c", RUN, "--fault", "soon:cam-1:fire"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2 and "SECONDS is a number" in done.stderr
    done = subprocess.run([sys.executable, "-c", RUN, "--fault", "1:cam-1:fire"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2 and "unknown fault 'fire'" in done.stderr
    assert "rtsp=503" in FAULT_HELP and "resolution=1280x720" in FAULT_HELP
