"""Agent CPU and memory while polling 200 simulated lamp controllers every second, journal on.

Starts `citygate-sim lamps` (200 units, LC100 map: 11 quantities in 12 registers, one FC03
request per lamp) in its own process, then, side by side for the same minute:
- the agent: `citygate-agent run` with one modbus-tcp bus of 200 devices at interval 1 s and an
  uplink to a closed local port, so every record journalled stays there; what is journalled is
  what the map's report policies select (drivers/modbus/README.md, "Reporting"), while the
  agent decodes and hands every poll to its logic; `--every` journals every poll instead;
- the baseline: a bare pymodbus client loop (this script with --baseline) reading the same 12
  registers of the same 200 units once a second and doing nothing with them, on asyncio's standard
  loop, and the same loop on uvloop, the loop the agent runs on (edge_agent.eventloop): the first
  is the issue's baseline, the second says what of the gain is the loop's and what the agent's own.
Each is measured the same way from /proc: CPU = utime + stime over the measured window (after
a warm-up), peak RSS = VmHWM. Each reaches the simulator through its own counting proxy in this
process, so the reads each made in the window are counted too: on a loaded machine a cycle can
overrun its second (both then start the next one at once, neither catches up), and the CPU per
read is the comparison that stays fair. Targets: <= 2.5 CPU s/min and <= 40 MB. For scale: ThingsBoard
IoT Gateway 3.8.5 needs 12.5-13.9 CPU s/min and 74 MB for this load.

    python bench/bench_polling.py [--seconds 50] [--full] [--every]

Measured 2026-12-04 (2 shared cores; --seconds 40): agent on asyncio's loop 2.86 CPU s/min against
2.38 for the bare loop, 1.20x; the agent on uvloop 2.01, 0.84x of the same bare loop; see the run's
figures for the uvloop baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LC100 = REPO / "configs" / "registermaps" / "lamp-lc100.toml"
BIN = Path(sys.executable).parent
UNITS = 200
REGISTERS = 12
REQUEST_BYTES = 12  # a Modbus TCP read request: 7-byte MBAP header, function, address, count
TICK = os.sysconf("SC_CLK_TCK")
THINGSBOARD_CPU = (12.5, 13.9)
THINGSBOARD_MB = 74


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14 and 15 of stat)


def peak_rss_mb(pid: int) -> float:
    match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    assert match, f"no VmHWM for {pid}"
    return int(match.group(1)) / 1024


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def agent_config(workdir: Path, sim_port: int, every: bool = False) -> Path:
    lines = [
        "[gateway]",
        'id = "gw-bench-0001"',
        'commune = "21231"',
        f'state_dir = "{workdir / "state"}"',
        "",
        "[uplink]",
        f'url = "http://127.0.0.1:{closed_port()}"',  # nothing listens: the journal keeps everything
        'token = "bench"',
        "",
        "[local_api]",
        f'socket = "{workdir / "agent.sock"}"',
        "",
        "[[bus]]",
        'name = "cabinet-modbus"',
        'type = "modbus-tcp"',
        'host = "127.0.0.1"',
        f"port = {sim_port}",
        "interval_s = 1.0",
    ]
    for unit in range(1, UNITS + 1):
        lines += ["", "[[bus.device]]", f'id = "lamp-{unit:03d}"', f"unit = {unit}",
                  f'register_map = "{LC100}"', "rated_power_w = 100"] + (['report = "every"'] if every else [])
    (workdir / "state").mkdir()
    path = workdir / "agent.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_baseline(port: int, loop: str) -> None:
    from edge_agent import eventloop

    eventloop.run(baseline_client(port), loop)


async def baseline_client(port: int) -> None:
    """The floor: pymodbus reading the same registers of the same units once a second, nothing else."""
    from pymodbus.client import AsyncModbusTcpClient

    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=0.5, retries=0)
    await client.connect()
    start = time.monotonic()
    while True:
        for unit in range(1, UNITS + 1):
            await client.read_holding_registers(0, count=REGISTERS, device_id=unit)
        start += 1.0
        now = time.monotonic()
        start = max(start, now)  # an overrun cycle is followed at once, without catching up, as the agent's bus does
        await asyncio.sleep(start - now)


class CountingProxy:
    """A TCP relay to the simulator, in a thread of this process, counting the request bytes sent through it."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.sent = 0
        self.port = 0
        self._ready = threading.Event()
        threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True).start()
        self._ready.wait(10)

    @property
    def reads(self) -> int:
        return self.sent // REQUEST_BYTES

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await server.serve_forever()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, counted: bool) -> None:
            while data := await src.read(65536):
                if counted:
                    self.sent += len(data)
                dst.write(data)
            dst.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False), return_exceptions=True)


def start_simulator() -> tuple[subprocess.Popen[str], int]:
    sim = subprocess.Popen(
        [str(BIN / "citygate-sim"), "lamps", "--tcp", "127.0.0.1:0", "--units", f"1-{UNITS}",
         "--register-map", str(LC100)],
        stdout=subprocess.PIPE, text=True,
    )
    assert sim.stdout is not None
    line = sim.stdout.readline()
    match = re.search(r"modbus-tcp 127\.0\.0\.1:(\d+)", line)
    if not match:
        sim.kill()
        raise SystemExit(f"simulator did not start: {line!r}")
    return sim, int(match.group(1))


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def journal_samples(workdir: Path) -> int:
    with sqlite3.connect(f"file:{workdir / 'state' / 'journal.db'}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT count(*) FROM journal").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=50.0, help="measured window (default 50)")
    parser.add_argument("--warmup", type=float, default=6.0, help="seconds before measuring (startup excluded)")
    parser.add_argument("--full", action="store_true", help="measure 120 s")
    parser.add_argument("--every", action="store_true", help="journal every poll (report = \"every\" on each lamp)")
    parser.add_argument("--baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--baseline-loop", default="asyncio", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline:
        run_baseline(args.baseline, args.baseline_loop)
        return
    seconds = 120.0 if args.full else args.seconds

    sim, port = start_simulator()
    procs: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-polling-") as tmp:
        workdir = Path(tmp)
        try:
            agent_proxy, base_proxy, uv_proxy = CountingProxy(port), CountingProxy(port), CountingProxy(port)
            config = agent_config(workdir, agent_proxy.port, args.every)
            agent = subprocess.Popen([str(BIN / "citygate-agent"), "run", "--config", str(config),
                                      "--log-level", "warning"], text=True)
            procs.append(agent)
            base = subprocess.Popen([sys.executable, __file__, "--baseline", str(base_proxy.port)], text=True)
            procs.append(base)
            uv = subprocess.Popen([sys.executable, __file__, "--baseline", str(uv_proxy.port), "--baseline-loop",
                                   "uvloop"], text=True)
            procs.append(uv)
            time.sleep(args.warmup)
            journal = workdir / "state" / "journal.db"
            for _ in range(300):  # a loaded machine may take longer than the warm-up to start the agent
                if journal.exists():
                    break
                time.sleep(0.1)
            for name, p in (("agent", agent), ("baseline", base), ("uvloop baseline", uv)):
                if p.poll() is not None:
                    raise SystemExit(f"{name} exited with {p.returncode} during warm-up")
            rows0 = journal_samples(workdir)
            cpu0 = {p.pid: cpu_seconds(p.pid) for p in procs}
            reads0 = agent_proxy.reads, base_proxy.reads, uv_proxy.reads
            t0 = time.monotonic()
            time.sleep(seconds)
            cpu1 = {p.pid: cpu_seconds(p.pid) for p in procs}
            reads1 = agent_proxy.reads, base_proxy.reads, uv_proxy.reads
            elapsed = time.monotonic() - t0
            rss = {p.pid: peak_rss_mb(p.pid) for p in procs}
            rows1 = journal_samples(workdir)
        finally:
            for p in procs:
                stop(p)
            stop(sim)

    per_min = {pid: (cpu1[pid] - cpu0[pid]) / elapsed * 60 for pid in cpu0}
    reads = tuple(after - before for before, after in zip(reads0, reads1, strict=True))
    report(args, elapsed, rows1 - rows0, [(per_min[p.pid], rss[p.pid], n) for p, n in zip(procs, reads, strict=True)])


def report(args: argparse.Namespace, elapsed: float, journalled: int, runs: list[tuple[float, float, int]]) -> None:
    """Print the figures; `runs`: (CPU s/min, peak RSS MB, reads) of the agent, the baseline and the uvloop baseline."""
    (a_cpu, a_rss, a_reads), (b_cpu, b_rss, b_reads), (u_cpu, u_rss, u_reads) = runs
    print(f"polling {UNITS} lamp controllers x {REGISTERS} registers every 1 s, measured {elapsed:.0f} s "
          f"after {args.warmup:.0f} s warm-up")
    policies = "every poll" if args.every else "the LC100 map's report policies"
    print(f"  records journalled in the window: {journalled} ({journalled / elapsed:.1f}/s; polls {a_reads / elapsed:.0f}/s, "
          f"one read each; {policies})")
    print(f"  agent (citygate-agent run)   : {a_cpu:5.2f} CPU s/min   peak RSS {a_rss:5.1f} MB   "
          f"(target <= 2.5 CPU s/min, <= 40 MB)")
    print(f"  baseline (bare pymodbus loop): {b_cpu:5.2f} CPU s/min   peak RSS {b_rss:5.1f} MB")
    a_per, b_per = a_cpu / 60 * elapsed / a_reads * 1e6, b_cpu / 60 * elapsed / b_reads * 1e6
    print(f"  reads in the window          : agent {a_reads} ({a_reads / elapsed:.0f}/s), baseline {b_reads} "
          f"({b_reads / elapsed:.0f}/s); CPU per read {a_per:.0f} us and {b_per:.0f} us")
    print(f"  ratio agent / baseline       : {a_cpu / b_cpu:5.2f}x CPU            {a_rss / b_rss:5.2f}x RSS   "
          f"{a_per / b_per:5.2f}x CPU per read")
    u_per = u_cpu / 60 * elapsed / u_reads * 1e6
    print(f"  same bare loop on uvloop     : {u_cpu:5.2f} CPU s/min   peak RSS {u_rss:5.1f} MB   CPU per read "
          f"{u_per:.0f} us; agent / it {a_cpu / u_cpu:5.2f}x CPU, {a_per / u_per:5.2f}x CPU per read "
          f"(the agent runs on uvloop: {os.environ.get('CITYGATE_EVENT_LOOP') or 'auto'})")
    print(f"  ThingsBoard IoT Gateway 3.8.5: {THINGSBOARD_CPU[0]}-{THINGSBOARD_CPU[1]} CPU s/min, {THINGSBOARD_MB} MB "
          f"-> agent uses {a_cpu / THINGSBOARD_CPU[0]:.2f}x its CPU, {a_rss / THINGSBOARD_MB:.2f}x its memory")


if __name__ == "__main__":
    main()
