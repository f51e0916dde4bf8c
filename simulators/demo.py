"""`citygate-sim demo`: the whole system on embedded defaults, on this machine only: a living city.

Starts an embedded MQTT broker (amqtt, in this process), a collector (SQLite) linked to it,
one lamp-controller simulator per street cabinet (Modbus TCP, in this process too, so that faults
can be injected) and one agent per cabinet running its commune's lighting program, in three
communes; creates an operator (supervisor) and prints how to log in; runs until Ctrl-C, which
stops every process it started. Everything listens on 127.0.0.1 only.

The agents and the simulated lamps run on a simulated clock (citygate_wire.simclock): it starts
shortly before tonight's lamp-on time and runs `--speed` times faster (120: an hour in 30 s), so
the lamps light at dusk, dim to 70 % at 22:00 and switch off at dawn within minutes of watching.
The collector keeps the real clock (its sessions, its "last seen"): it is started with
$CITYGATE_MAX_FUTURE_S at its maximum, a year, so the agents' records dated ahead are accepted
(a year of simulated time is three days of demo at x120). The agents count the simulated clock
as their synchronised time source, so `citygate-agent status` is green when all is well.

Each simulated night the scenario (SCENARIO) fails a lamp, has a resident report it, takes a
cabinet's bus away and gives it back, and repairs the lamp, which closes the resident's report.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from citygate_wire.simclock import ENV as CLOCK_ENV
from citygate_wire.simclock import SimulatedClock
from edge_agent.lighting.astro import Site, sun_event
from simulators.lamps import LampSimulator
from simulators.procs import Proc, add_gateway, bin_path, start_collector

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


def agent_config(cab: Cabinet, state: Path, collector_url: str, token_file: Path, sim_port: int,
                 broker_url: str, command_key: str, poll_s: float = 5.0) -> str:
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
        'time_source = "kernel"   # in the demo, its simulated clock (citygate_wire.simclock)',
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
        f"interval_s = {poll_s}",
        "timeout_s = 2.0   # the demo's simulators share this machine with everything else",
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


PARIS = ZoneInfo("Europe/Paris")
#: the simulated clock starts this long before tonight's lamp-on, and reads that a little after the
#: demo starts (the processes take some seconds to be up): the lamps are seen to light
LEAD = timedelta(minutes=20)
STARTUP_S = 5.0
DEFAULT_SPEED = 120.0
#: the collector's $CITYGATE_MAX_FUTURE_S: its maximum, the agents' clock runs ahead of its own
MAX_FUTURE_S = 365 * 86_400
OPERATOR = "demo"
FAILING = ("gw-dijon-0001", 3)  # the cabinet and Modbus unit of the lamp that fails every night
BUSLESS = "gw-quetigny-0001"  # the cabinet whose bus goes away every night


@dataclass(frozen=True)
class Step:
    after: timedelta  # after the night's lamp-on, simulated time
    action: str
    say: str


SCENARIO = (
    Step(timedelta(hours=1, minutes=30), "fail", f"lamp-{FAILING[1]:03d} of {FAILING[0]} fails"),
    Step(timedelta(hours=2), "report", f"a resident reports lamp-{FAILING[1]:03d} of {FAILING[0]} out"),
    Step(timedelta(hours=2, minutes=30), "pothole", "a resident reports a pothole in Quetigny"),
    Step(timedelta(hours=4), "bus-lost", f"{BUSLESS} loses its lamp bus"),
    Step(timedelta(hours=6), "bus-back", f"{BUSLESS}'s lamp bus is back"),
    Step(timedelta(hours=8), "repair", f"lamp-{FAILING[1]:03d} of {FAILING[0]} is repaired"),
)


def lamp_on(day: date) -> datetime:
    """When the demo's programs light the lamps that evening: sunset + 10 min at Dijon (UTC)."""
    cab = CABINETS[0]
    sunset = sun_event(Site(cab.location[0], cab.location[1], PARIS), "sunset", day)
    assert isinstance(sunset, datetime)  # Dijon has a sunset every day
    return (sunset + timedelta(minutes=10)).astimezone(UTC)


def demo_clock(speed: float, real_now: float | None = None) -> SimulatedClock:
    """Tonight's lamp-on minus LEAD, read STARTUP_S from now, running `speed` times faster."""
    real_ms = int(1000 * ((time.time() if real_now is None else real_now) + STARTUP_S))
    today = datetime.fromtimestamp(real_ms / 1000, PARIS).date()
    start = lamp_on(today) - LEAD
    return SimulatedClock(int(start.timestamp() * 1000), real_ms, speed)


def sim_text(clock: SimulatedClock, real_s: float | None = None) -> str:
    ms = clock.at(int(1000 * (time.time() if real_s is None else real_s)))
    return datetime.fromtimestamp(ms / 1000, PARIS).strftime("%d/%m %H:%M")


class LoopThread:
    """An asyncio loop in a thread of its own, running `main` until stop(); `call` runs a coroutine there."""

    def __init__(self, name: str, main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
        self._main = main
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self, what: str) -> None:
        self._thread.start()
        if not self._ready.wait(30) or self.error is not None:
            raise click.ClickException(f"{what} did not start: {self.error}")

    def ready(self) -> None:
        self._ready.set()

    def _run(self) -> None:
        try:
            asyncio.run(self._body())
        except Exception as exc:  # reported by start(), or by the demo's watch loop
            self.error = exc
            self._ready.set()

    async def _body(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await self._main(self._stop)

    def call(self, work: Coroutine[Any, Any, Any]) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(30)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)


class BrokerThread:
    """The demo's MQTT broker (amqtt, loopback only) in a thread with its own event loop."""

    def __init__(self) -> None:
        self.url = ""
        self._thread = LoopThread("mqtt-broker", self._main)

    def start(self) -> str:
        self._thread.start("the embedded MQTT broker")
        return self.url

    async def _main(self, stop: asyncio.Event) -> None:
        from simulators.embedded_broker import start_embedded_broker

        async with start_embedded_broker("127.0.0.1", 0) as broker:
            self.url = broker.url
            self._thread.ready()
            await stop.wait()

    def stop(self) -> None:
        self._thread.stop()


class LampsThread:
    """Every cabinet's lamp controllers (Modbus TCP on loopback), in one thread: faults come and go."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.ports: dict[str, int] = {}
        self._sims: dict[str, LampSimulator] = {}
        self._thread = LoopThread("lamp-simulators", self._main)

    def start(self) -> dict[str, int]:
        self._thread.start("the lamp simulators")
        return self.ports

    async def _main(self, stop: asyncio.Event) -> None:
        regmap = CONFIGS / "registermaps" / "lamp-lc100.toml"
        try:
            for n, cab in enumerate(CABINETS, 1):
                # the lamps are off at dusk; the agent lights them when its program says
                sim = LampSimulator(range(1, cab.lamps + 1), regmap, level_pct=0, speed=self.speed, seed=n)
                self._sims[cab.gateway] = sim
                self.ports[cab.gateway] = await sim.serve_tcp("127.0.0.1", 0)
            self._thread.ready()
            await stop.wait()
        finally:
            for sim in self._sims.values():
                await sim.aclose()

    def set_fault(self, gateway: str, units: list[int], kind: str) -> None:
        sim = self._sims[gateway]

        async def apply() -> None:
            for unit in units:
                sim.set_fault(unit, kind)

        self._thread.call(apply())

    def units(self, gateway: str) -> list[int]:
        return self._sims[gateway].units

    @property
    def error(self) -> BaseException | None:
        return self._thread.error

    def stop(self) -> None:
        self._thread.stop()


def check_port(port: int) -> None:
    """A clear error, not a traceback, when something already listens on the port."""
    if port == 0:
        return
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the collector does: TIME_WAIT is no owner
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise click.ClickException(f"port {port} on 127.0.0.1 is busy (another program listens there): "
                                           f"choose another, e.g. --port 8090 (make demo PORT=8090)") from None
            raise click.ClickException(f"port {port} on 127.0.0.1: {exc.strerror}") from None


class Scenario:
    """Runs SCENARIO night after night on the simulated clock, in a thread; says what it does."""

    def __init__(self, clock: SimulatedClock, lamps: LampsThread, url: str, say: Callable[[str], None]) -> None:
        self.clock, self.lamps, self.url, self.say = clock, lamps, url, say
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scenario", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        try:
            first = datetime.fromtimestamp(self.clock.start_ms / 1000, PARIS).date()
            for night in range(366):
                on = lamp_on(first + timedelta(days=night))
                for step in SCENARIO:
                    at = self.clock.real_at(int((on + step.after).timestamp() * 1000)) / 1000
                    if self._stop.wait(max(0.0, at - time.time())):
                        return
                    self.say(f"[{sim_text(self.clock)} simulated] {step.say}{self._do(step.action)}")
        except Exception as exc:  # reported by the demo's watch loop
            self.error = exc

    def _do(self, action: str) -> str:
        gateway, unit = FAILING
        if action in ("fail", "repair"):
            self.lamps.set_fault(gateway, [unit], "lamp-failure" if action == "fail" else "none")
        elif action in ("bus-lost", "bus-back"):
            self.lamps.set_fault(BUSLESS, self.lamps.units(BUSLESS), "no-answer" if action == "bus-lost" else "none")
        elif action == "report":
            rid = self._report({"jurisdiction_id": CABINETS[0].commune, "service_code": "lamp-out",
                                "attribute[lamp_id]": f"{gateway}/lamp-{unit:03d}", "attribute[symptom]": "off",
                                "address_string": CABINETS[0].cabinet, "description": "Lampadaire éteint"})
            return f": its page {self.url}/open311/follow/{rid}"
        elif action == "pothole":
            cab = CABINETS[2]
            rid = self._report({"jurisdiction_id": cab.commune, "service_code": "pothole",
                                "lat": str(cab.location[0]), "long": str(cab.location[1]),
                                "address_string": cab.cabinet, "description": "Trou profond sur la chaussée"})
            return f" (report {rid})"
        return ""

    def _report(self, fields: dict[str, str]) -> str:
        body = urllib.parse.urlencode(fields).encode()
        with urllib.request.urlopen(f"{self.url}/open311/v2/requests.json", body, timeout=30) as resp:
            return str(json.load(resp)[0]["service_request_id"])


def say(line: str) -> None:
    """A line of the demo's story, at once even when its output is a pipe or a file."""
    click.echo(line)
    sys.stdout.flush()


def add_operator(db: str, token_file: Path) -> str:
    """The demo's operator (supervisor: every control of the page); its token."""
    subprocess.run([bin_path("citygate-collector"), "operator", "add", OPERATOR, "--role", "supervisor",
                    "--token-file", str(token_file), "--db", db], capture_output=True, text=True, check=True, timeout=60)
    return token_file.read_text().strip()


def banner(url: str, token: str, clock: SimulatedClock, broker_url: str, workdir: Path) -> None:
    """What the demo runs and where to look, the login first."""
    tonight = datetime.fromtimestamp(clock.start_ms / 1000, UTC) + LEAD
    to_22 = (tonight.astimezone(PARIS).replace(hour=22, minute=0) - tonight).total_seconds() + LEAD.total_seconds()
    click.echo("")
    click.echo(f"citygate demo running: {len(CABINETS)} cabinets, {sum(c.lamps for c in CABINETS)} lamps, "
               f"communes {', '.join(sorted({c.commune_name for c in CABINETS}))}")
    click.echo(f"  control centre       {url}/control/")
    click.echo(f"  log in               {url}/control/login with the operator token")
    click.echo(f"                       {token}")
    click.echo(f"                       (operator {OPERATOR}, supervisor; in {workdir / 'operator-token'})")
    speed = clock.speed
    click.echo(f"  simulated clock      x{speed:g} from {sim_text(clock, clock.real_ms / 1000)}: lamps on at "
               f"{tonight.astimezone(PARIS):%H:%M}, 22:00 in about {(to_22 / speed + STARTUP_S) / 60:.0f} min")
    click.echo(f"  gateways, last seen  {url}/api/v1/gateways")
    click.echo(f"  open data            {url}/opendata/v1/communes/daily.csv")
    click.echo(f"  residents' reports   {url}/open311/v2/services.json")
    click.echo(f"  HTTP API (OpenAPI)   {url}/openapi.json")
    click.echo(f"  metrics              {url}/metrics")
    click.echo(f"  MQTT control plane   {broker_url} (embedded broker, loopback only)")
    cab = CABINETS[0]
    click.echo(f"  a cabinet's events   {url}/api/v1/gateways/{cab.gateway}/events (with the token)")
    click.echo(f"  agent configs        {workdir}/<gateway>/agent.toml")
    click.echo(f"  technician's view    citygate-agent status --socket {workdir / cab.gateway / 'agent.sock'}")


def run_demo(workdir: Path, port: int, echo: bool, speed: float = DEFAULT_SPEED, poll_s: float = 5.0) -> None:
    check_port(port)
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    db = str(workdir / "collector.db")
    procs: list[Proc] = []
    broker = BrokerThread()
    lamps = LampsThread(speed)
    scenario: Scenario | None = None

    def stop_all() -> None:
        if scenario is not None:
            scenario.stop()
        for proc in reversed(procs):
            proc.stop()
        lamps.stop()
        broker.stop()

    try:
        broker_url = broker.start()
        ports = lamps.start()
        # the embedded broker has no authentication (it listens on loopback only): any password will do
        collector_password = workdir / "collector-mqtt-password"
        collector_password.write_text("demo\n")
        # the collector signs commands with this key; each agent's [mqtt] gets the line it prints
        key_file = workdir / "command.key"
        command_key = subprocess.run([bin_path("citygate-collector"), "command-key", "init", "--key-file", str(key_file)],
                                     capture_output=True, text=True, check=True, timeout=60).stdout.strip()
        token = add_operator(db, workdir / "operator-token")
        os.environ["CITYGATE_MAX_FUTURE_S"] = str(MAX_FUTURE_S)  # the collector's: see the module's docstring
        try:
            collector, url = start_collector(db, port=port, echo=echo, die_with_parent=True, extra=[
                "--mqtt-url", broker_url, "--mqtt-password-file", str(collector_password),
                "--command-key-file", str(key_file), "--operator-login"])
        except RuntimeError as exc:
            raise click.ClickException(f"the collector did not start: {exc}") from None
        procs.append(collector)
        clock = demo_clock(speed)  # now: what remains to start is the agents, a few seconds
        for cab in CABINETS:
            state = workdir / cab.gateway
            state.mkdir()
            token_file = state / "token"
            add_gateway(db, cab.gateway, cab.commune, token_file, cabinet=cab.cabinet, location=cab.location)
            config = state / "agent.toml"
            config.write_text(agent_config(cab, state, url, token_file, ports[cab.gateway], broker_url, command_key,
                                           poll_s))
            procs.append(Proc(f"agent-{cab.gateway}", [bin_path("citygate-agent"), "run", "--config", str(config)],
                              env={CLOCK_ENV: clock.to_env()}, echo=echo, die_with_parent=True))
        scenario = Scenario(clock, lamps, url, say)
        scenario.start()
        banner(url, token, clock, broker_url, workdir)
        say("Faults come and go each simulated night; Ctrl-C stops every process the demo started.")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            for proc in procs:
                if proc.popen.poll() is not None:
                    raise click.ClickException(f"{proc.name} exited ({proc.popen.returncode}):\n"
                                               + "\n".join(proc.lines[-20:]))
            for name, error in (("the scenario", scenario.error), ("the lamp simulators", lamps.error)):
                if error is not None:
                    raise click.ClickException(f"{name} failed: {error!r}")
            time.sleep(1)
    except subprocess.CalledProcessError as exc:
        raise click.ClickException(f"{' '.join(exc.cmd[:3])} failed:\n{exc.stderr or exc.stdout}") from None
    except KeyboardInterrupt:
        click.echo("\nstopping the demo")
    finally:
        stop_all()


@click.command("demo")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=Path("var/demo"),
              show_default=True, help="State of this run (wiped at start).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Collector port on 127.0.0.1 (0: any free port).")
@click.option("--speed", type=click.FloatRange(1, 3600), default=DEFAULT_SPEED, show_default=True,
              help="Simulated seconds per real second (the agents' and lamps' clock; 120: an hour in 30 s).")
@click.option("--poll-s", type=click.FloatRange(0.5, 60), default=5.0, show_default=True, hidden=True,
              help="The agents' Modbus poll interval, real seconds (tests poll faster at high speeds).")
@click.option("--echo/--quiet", default=False, help="Echo every process's log lines.")
def demo(workdir: Path, port: int, speed: float, poll_s: float, echo: bool) -> None:
    """Run collector, simulated cabinets and agents together on a fast clock until Ctrl-C."""
    run_demo(workdir.resolve(), port, echo, speed, poll_s)
