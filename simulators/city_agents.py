"""Real `citygate-agent` processes mixed into the simulated city (`citygate-sim city --agents N`).

A few cabinets of the plan are run by the real agent instead of a simulated gateway: each gets a
lamp-controller simulator of its own (`citygate-sim lamps`, Modbus TCP on loopback, one unit a lamp
of the cabinet) and an agent configured as `citygate-sim demo` configures its agents
(simulators.demo.agent_config: its commune's lighting program, the collector, the city's Mosquitto
with the gateway's token as password, the collector's command key), on the real clock. They are
registered with the rest of the fleet (the same inventory), so the collector cannot tell them apart
but by what they send.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from simulators import demo
from simulators.city import Cabinet
from simulators.procs import Proc, bin_path

#: the communes with a lighting program of their own in configs/lighting (the demo's)
PROGRAMS = {c.commune: (c.commune_name, c.programs, c.calendar) for c in demo.CABINETS}
READY_LAMPS = re.compile(r"on modbus-tcp [\d.]+:(\d+)")
MAX_LAMPS = 60  # a controller's bus: enough for any cabinet the simulator would give an agent


def agent_cabinets(plan: list[Cabinet], n: int) -> list[Cabinet]:
    """`n` cabinets for real agents: in turn from each commune with its own lighting program, cabinets
    that drive lamps only (their junctions, cameras and parking stay simulated)."""
    pools = [[c for c in plan if c.commune == insee and c.vehicle is None and not c.junctions and not c.cameras
              and not c.parking and len(c.lamps) <= MAX_LAMPS] for insee in sorted(PROGRAMS)]
    out: list[Cabinet] = []
    k = 0
    while len(out) < n and any(pools):
        pool = pools[k % len(pools)]
        if pool:
            out.append(pool.pop(0))
        k += 1
    if len(out) < n:
        raise ValueError(f"only {len(out)} cabinets of {', '.join(sorted(PROGRAMS))} can take a real agent")
    return out


def command_key(key_file: Path) -> str:
    """A new signing key for the collector; the `command_key = ...` line of the agents' [mqtt]."""
    done = subprocess.run([bin_path("citygate-collector"), "command-key", "init", "--key-file", str(key_file)],
                          capture_output=True, text=True, check=True, timeout=120)
    return done.stdout.strip()


class Agents:
    """The real agents and their lamp simulators, started and stopped together."""

    def __init__(self, cabinets: list[Cabinet], workdir: Path, tokens_dir: Path) -> None:
        self.cabinets = cabinets
        self.workdir = workdir
        self.tokens_dir = tokens_dir
        self.procs: list[Proc] = []
        self.agents: list[Proc] = []

    def start(self, collector_url: str, mqtt_url: str, key_line: str, echo: bool = False) -> None:
        regmap = demo.CONFIGS / "registermaps" / "lamp-lc100.toml"
        for cab in self.cabinets:
            sim = Proc(f"lamps-{cab.gateway}", [bin_path("citygate-sim"), "lamps", "--tcp", "127.0.0.1:0",
                                                "--units", f"1-{len(cab.lamps)}", "--register-map", str(regmap),
                                                "--level", "0"], die_with_parent=True)
            self.procs.append(sim)
            port = int(sim.wait_for(READY_LAMPS, timeout=60).group(1))
            name, programs, calendar = PROGRAMS[cab.commune]
            state = self.workdir / cab.gateway
            state.mkdir(parents=True, exist_ok=True)
            config = state / "agent.toml"
            config.write_text(demo.agent_config(
                demo.Cabinet(cab.gateway, cab.commune, name, len(cab.lamps), cab.cabinet, (cab.lat, cab.lon), programs,
                             calendar),
                state, collector_url, self.tokens_dir / f"{cab.gateway}.token", port, mqtt_url, key_line))
            agent = Proc(f"agent-{cab.gateway}", [bin_path("citygate-agent"), "run", "--config", str(config)],
                         echo=echo, die_with_parent=True)
            self.procs.append(agent)
            self.agents.append(agent)

    def alive(self) -> int:
        return sum(a.popen.poll() is None for a in self.agents)

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()
