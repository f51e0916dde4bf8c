"""`citygate-sim demo`: the whole system on embedded defaults, on this machine only.

Starts an embedded MQTT broker (amqtt, in this process), a collector (SQLite) linked to it,
one lamp-controller simulator per street cabinet (Modbus TCP) and one agent per cabinet running
its commune's lighting program, in three communes; prints the URLs to look at; runs until
Ctrl-C, which stops every process it started. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import click

from simulators.procs import Proc, add_gateway, bin_path, free_port, start_collector, wait_tcp

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"


@dataclass(frozen=True)
class Cabinet:
    gateway: str
    commune: str
    commune_name: str
    lamps: int
    cabinet: str
    location: tuple[float, float]
    programs: str  # configs/lighting/<programs>.toml, whose calendar has the same name but for the commune's
    calendar: str


CABINETS = [
    Cabinet("gw-dijon-0001", "21231", "Dijon", 12, "Place Darcy", (47.3227, 5.0336), "dijon", "dijon"),
    Cabinet("gw-dijon-0002", "21231", "Dijon", 8, "Rue de la Liberté", (47.3218, 5.0391), "dijon", "dijon"),
    Cabinet("gw-quetigny-0001", "21515", "Quetigny", 10, "Avenue du Château", (47.3131, 5.1064),
            "quetigny", "quetigny"),
    Cabinet("gw-sennecey-0001", "21605", "Sennecey-lès-Dijon", 6, "Rue de la Mairie", (47.2905, 5.1036),
            "sennecey-les-dijon", "sennecey-les-dijon"),
]


class BrokerThread:
    """The demo's MQTT broker (amqtt, loopback only) in a thread with its own event loop."""

    def __init__(self) -> None:
        self.url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mqtt-broker", daemon=True)

    def start(self) -> str:
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise click.ClickException(f"the embedded MQTT broker did not start: {self._error}")
        return self.url

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # reported by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        from simulators.embedded_broker import start_embedded_broker

        async with start_embedded_broker("127.0.0.1", 0) as broker:
            self.url = broker.url
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)


def agent_config(cab: Cabinet, state: Path, collector_url: str, token_file: Path, sim_port: int,
                 broker_url: str, command_key: str) -> str:
    lines = [
        "# written by citygate-sim demo",
        "[gateway]",
        f'id = "{cab.gateway}"',
        f'commune = "{cab.commune}"',
        f'state_dir = "{state}"',
        "",
        "[uplink]",
        f'url = "{collector_url}"',
        f'token_file = "{token_file}"',
        "interval_s = 2.0",
        "",
        "[journal]",
        'synchronous = "normal"',
        "",
        "[local_api]",
        f'socket = "{state / "agent.sock"}"',
        "technician = true",
        "",
        "[mqtt]",
        f'url = "{broker_url}"',
        f'username = "{cab.gateway}"',
        f'password_file = "{token_file}"',
        command_key,
        "",
        "[lighting]",
        f'programs = ["{CONFIGS / "lighting" / "common.toml"}", "{CONFIGS / "lighting" / (cab.programs + ".toml")}"]',
        f"latitude = {cab.location[0]}",
        f"longitude = {cab.location[1]}",
        'time_source = "none"   # the demo trusts this machine\'s clock',
        "",
        "[[lighting.group]]",
        'name = "street"',
        "lamps = [" + ", ".join(f'"lamp-{u:03d}"' for u in range(1, cab.lamps + 1)) + "]",
        f'calendar = "{cab.calendar}"',
        "rated_power_w = 100",
        "",
        "[[bus]]",
        'name = "cabinet-modbus"',
        'type = "modbus-tcp"',
        'host = "127.0.0.1"',
        f"port = {sim_port}",
        "interval_s = 5.0",
    ]
    for unit in range(1, cab.lamps + 1):
        lines += [
            "",
            "[[bus.device]]",
            f'id = "lamp-{unit:03d}"',
            f"unit = {unit}",
            f'register_map = "{CONFIGS / "registermaps" / "lamp-lc100.toml"}"',
            "rated_power_w = 100",
        ]
    return "\n".join(lines) + "\n"


def run_demo(workdir: Path, port: int, echo: bool) -> None:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    db = str(workdir / "collector.db")
    procs: list[Proc] = []
    broker = BrokerThread()

    def stop_all() -> None:
        for proc in reversed(procs):
            proc.stop()
        broker.stop()

    try:
        broker_url = broker.start()
        # the embedded broker has no authentication (it listens on loopback only): any password will do
        collector_password = workdir / "collector-mqtt-password"
        collector_password.write_text("demo\n")
        # the collector signs commands with this key; each agent's [mqtt] gets the line it prints
        key_file = workdir / "command.key"
        command_key = subprocess.run([bin_path("citygate-collector"), "command-key", "init", "--key-file", str(key_file)],
                                     capture_output=True, text=True, check=True, timeout=60).stdout.strip()
        collector, url = start_collector(db, port=port, echo=echo, die_with_parent=True, extra=[
            "--mqtt-url", broker_url, "--mqtt-password-file", str(collector_password),
            "--command-key-file", str(key_file)])
        procs.append(collector)
        for cab in CABINETS:
            state = workdir / cab.gateway
            state.mkdir()
            token_file = state / "token"
            add_gateway(db, cab.gateway, cab.commune, token_file, cabinet=cab.cabinet, location=cab.location)
            sim_port = free_port()
            procs.append(Proc(f"sim-{cab.gateway}", [
                bin_path("citygate-sim"), "lamps", "--tcp", f"127.0.0.1:{sim_port}", "--units", f"1-{cab.lamps}",
                "--register-map", str(CONFIGS / "registermaps" / "lamp-lc100.toml"),
            ], echo=echo, die_with_parent=True))
            wait_tcp("127.0.0.1", sim_port)
            config = state / "agent.toml"
            config.write_text(agent_config(cab, state, url, token_file, sim_port, broker_url, command_key))
            procs.append(Proc(f"agent-{cab.gateway}", [bin_path("citygate-agent"), "run", "--config", str(config)],
                              echo=echo, die_with_parent=True))
        click.echo("")
        click.echo(f"citygate demo running: {len(CABINETS)} cabinets, {sum(c.lamps for c in CABINETS)} lamps, "
                   f"communes {', '.join(sorted({c.commune_name for c in CABINETS}))}")
        click.echo(f"  control centre       {url}/control/")
        click.echo(f"  gateways, last seen  {url}/api/v1/gateways")
        click.echo(f"  open data            {url}/opendata/v1/communes/daily.csv")
        click.echo(f"  residents' reports   {url}/open311/v2/services.json")
        click.echo(f"  HTTP API (OpenAPI)   {url}/openapi.json")
        click.echo(f"  metrics              {url}/metrics")
        click.echo(f"  MQTT control plane   {broker_url} (embedded broker, loopback only)")
        cab = CABINETS[0]
        click.echo(f"  a lamp's readings    {url}/api/v1/gateways/{cab.gateway}/devices/lamp-001/samples?limit=5")
        click.echo(f"  a cabinet's events   {url}/api/v1/gateways/{cab.gateway}/events")
        click.echo(f"  agent configs        {workdir}/<gateway>/agent.toml")
        click.echo(f"  technician's view    citygate-agent status --socket {workdir / cab.gateway / 'agent.sock'}")
        click.echo("Ctrl-C stops every process the demo started.")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            for proc in procs:
                if proc.popen.poll() is not None:
                    raise click.ClickException(f"{proc.name} exited ({proc.popen.returncode}):\n"
                                               + "\n".join(proc.lines[-20:]))
            time.sleep(1)
    except KeyboardInterrupt:
        click.echo("\nstopping the demo")
    finally:
        stop_all()


@click.command("demo")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=Path("var/demo"),
              show_default=True, help="State of this run (wiped at start).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Collector port on 127.0.0.1 (0: any free port).")
@click.option("--echo/--quiet", default=False, help="Echo every process's log lines.")
def demo(workdir: Path, port: int, echo: bool) -> None:
    """Run collector, simulated cabinets and agents together until Ctrl-C."""
    run_demo(workdir.resolve(), port, echo)
