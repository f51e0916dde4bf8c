"""`citygate-sim lamps` as a real process: serves TCP and an RTU pty, takes faults, refuses bad arguments."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from modbus_testkit import LC100, make_bus, rtu_table, tcp_table

from drivers.errors import DeviceError
from simulators.lamps import parse_fault, parse_units

SIM = str(Path(sys.executable).parent / "citygate-sim")


async def _lines(proc: asyncio.subprocess.Process, n: int) -> list[str]:
    assert proc.stdout is not None
    return [(await asyncio.wait_for(proc.stdout.readline(), 30)).decode() for _ in range(n)]


async def test_sim_process_serves_tcp_and_rtu_with_an_injected_fault() -> None:
    proc = await asyncio.create_subprocess_exec(
        SIM, "lamps", "--tcp", "127.0.0.1:0", "--rtu-pty", "--units", "1-3,7",
        "--register-map", str(LC100), "--level", "40", "--fault", "2=exception:2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        tcp_line, rtu_line = await _lines(proc, 2)
        port_match = re.search(r"4 units \(LC100 lamp controller\) on modbus-tcp 127\.0\.0\.1:(\d+)", tcp_line)
        pty_match = re.search(r"on modbus-rtu (/dev/pts/\d+)", rtu_line)
        assert port_match and pty_match, (tcp_line, rtu_line)
        for table in (tcp_table(int(port_match.group(1)), [1, 2, 7]), rtu_table(pty_match.group(1), [1, 2, 7])):
            bus = make_bus(table)
            try:
                assert (await bus.read("lamp-7")).values["level_pct"] == 40
                with pytest.raises(DeviceError, match="exception 02"):
                    await bus.read("lamp-2")
            finally:
                await bus.aclose()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--units", "1"], "give --tcp HOST:PORT and/or --rtu-pty"),
        (["--tcp", "nowhere", "--units", "1"], "is not HOST:PORT"),
        (["--tcp", "127.0.0.1:0", "--units", "0-3"], "units are 1..247"),
        (["--tcp", "127.0.0.1:0", "--units", "1", "--fault", "1=melt"], "KIND one of"),
        (["--tcp", "127.0.0.1:0", "--units", "1", "--fault", "5=no-answer"], "unit 5 is not simulated"),
    ],
)
def test_sim_refuses_bad_arguments(args: list[str], message: str) -> None:
    proc = subprocess.run([SIM, "lamps", "--register-map", str(LC100), *args],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_sim_refuses_a_bad_register_map(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "x"\n[[register]]\nname = "x"\naddress = 0\ntype = "u64"\n')
    proc = subprocess.run([SIM, "lamps", "--tcp", "127.0.0.1:0", "--register-map", str(bad)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert f"{bad}:register[0].type" in proc.stderr


def test_unit_and_fault_syntax() -> None:
    assert parse_units("1-3, 7,10-11") == [1, 2, 3, 7, 10, 11]
    assert parse_fault("3=no-answer") == (3, "no-answer", 4, 1.0)
    assert parse_fault("4=exception:0B") == (4, "exception", 0x0B, 1.0)
    assert parse_fault("5=slow:0.8") == (5, "slow", 4, 0.8)
