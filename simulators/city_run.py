"""`citygate-sim city`: the whole metropolis (simulators.city) against a collector.

On its own it builds everything in a work folder: a collector (SQLite there, or `--db`), a real
Mosquitto (its config as docs/mqtt.md says, with the fleet's passwords and ACL), the city's
inventory, provisioned in one `citygate-collector gateway import`; then it runs the cabinets and
prints a line of figures every `--report-s` seconds until Ctrl-C or `--duration`. With
`--collector-url`, `--tokens-dir` and `--mqtt-url` it joins a collector already running.
`--workers N` runs the cabinets in N processes (this one starts them and sums their lines).

By default the city has its junctions, cameras, service vehicles and parking spaces
(simulators.city_assets; `--no-assets` leaves them out): the vehicles are registered and their
streets loaded in the store, and the collector is started with $CITYGATE_PARKING naming the
parking inventory written in the work folder. `--agents N` runs N cabinets with real
`citygate-agent` processes and lamp simulators instead (simulators.city_agents).
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from simulators.city import (
    NONE,
    Assets,
    Cabinet,
    City,
    Rates,
    parking_inventory,
    plan_city,
    streets_geojson,
    write_inventory,
)
from simulators.city_agents import Agents, agent_cabinets, command_key
from simulators.mosquitto import Mosquitto
from simulators.procs import Proc, bin_path, start_collector

REPO = Path(__file__).resolve().parent.parent
TERRITORY = REPO / "configs" / "territory.json"
FIGURES = re.compile(r"^city: (\{.*\})$")


def provision(db: str, inventory: Path, tokens_dir: Path) -> None:
    """The fleet registered through the collector's bulk import (idempotent)."""
    subprocess.run([bin_path("citygate-collector"), "gateway", "import", str(inventory), "--tokens-dir",
                    str(tokens_dir), "--db", db], check=True, capture_output=True, text=True, timeout=900)


def mqtt_files(db: str, out: Path) -> Path:
    """Mosquitto's password and ACL files from the registry; the collector's password file."""
    password = out / "collector-mqtt-password"
    subprocess.run([bin_path("citygate-collector"), "mqtt-acl", "--out", str(out), "--collector-password-file",
                    str(password), "--db", db], check=True, capture_output=True, text=True, timeout=900)
    return password


def provision_assets(db: str, plan: list[Cabinet], workdir: Path) -> dict[str, str]:
    """What the collector must know of the city's other assets before it starts: the vehicles (each
    gateway on board registered as its service's vehicle, idempotent) and the streets they drive, and
    the parking inventory (written to a folder); the environment the collector needs (its
    $CITYGATE_PARKING)."""
    env: dict[str, str] = {}
    if any(c.parking for c in plan):
        env["CITYGATE_PARKING"] = str(parking_inventory(plan, workdir / "parking"))
    if any(c.vehicle for c in plan):
        streets = workdir / "streets.geojson"
        streets.write_text(json.dumps(streets_geojson(plan)))
        asyncio.run(_register_vehicles(db, plan, streets))
    return env


async def _register_vehicles(db: str, plan: list[Cabinet], streets: Path) -> None:
    from collector.store import open_store
    from collector.vehicles.cli import read_streets

    async with open_store(db) as store:
        known = {v.name for v in await store.vehicles()}
        now = int(time.time() * 1000)
        for c in plan:
            if c.vehicle is not None and c.vehicle.name not in known:
                await store.add_vehicle(c.vehicle.name, c.vehicle.service, c.commune, c.gateway, "gps", now)
        await store.load_streets(read_streets(streets))


def read_tokens(tokens_dir: Path, names: list[str]) -> dict[str, str]:
    return {n: (tokens_dir / f"{n}.token").read_text().strip() for n in names}


def figures(city: City) -> dict[str, object]:
    c = city.counters
    lat = sorted(c.latencies_ms)
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else None
    return {"records": c.records, "acked": c.acked, "backlog": city.backlog(), "batches": c.batches,
            "p99_ms": None if p99 is None else round(p99, 1), "retries": c.retries, "throttled": c.throttled,
            "refused": c.refused, "alarms": c.alarms, "commands": c.commands, "reports": c.reports,
            "mqtt_online": sum(g.mqtt_online for g in city.gateways), "gateways": len(city.gateways),
            "counts": c.counts, "parking": c.parking, "positions": c.positions, "trips": c.trips,
            "sim_time": time.strftime("%Y-%m-%d %H:%M", time.gmtime(city.clock.now_ms() / 1000))}


async def run_city(city: City, duration_s: float | None, report_s: float, outages: list[tuple[str, float, float]],
                   machine: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if duration_s is not None:
        loop.call_later(duration_s, stop.set)

    def cut(insee: str) -> None:
        click.echo(f"commune {insee}: uplink cut ({city.cut_commune(insee)} cabinets)")

    def restore(insee: str) -> None:
        city.restore_commune(insee)
        click.echo(f"commune {insee}: uplink back")

    for insee, start_s, length_s in outages:
        loop.call_later(city.clock.real_s(start_s), cut, insee)
        loop.call_later(city.clock.real_s(start_s + length_s), restore, insee)

    async def report() -> None:
        while not stop.is_set():
            await asyncio.sleep(report_s)
            f = figures(city)
            click.echo(f"city: {json.dumps(f)}" if machine else line(f))

    task = loop.create_task(report())
    try:
        await city.run(stop)
    finally:
        task.cancel()


def line(f: dict[str, object]) -> str:
    """A report line that fits 80 columns for the whole metropolis."""
    p99 = "" if f.get("p99_ms") is None else f" p99 {f['p99_ms']:.0f}ms"
    return (f"{str(f['sim_time'])[-5:]} acked {f['acked']:,} of {f['records']:,}{p99} "
            f"mqtt {f['mqtt_online']}/{f['gateways']} alarms {f['alarms']} reports {f['reports']}")


def parse_outage(text: str) -> tuple[str, float, float]:
    try:
        insee, start, length = text.split(":")
        return insee, float(start), float(length)
    except ValueError:
        raise click.BadParameter(f"{text!r}: INSEE:START_S:DURATION_S (simulated seconds)") from None


@click.command("city")
@click.option("--cabinets", default=1500, show_default=True, type=click.IntRange(23))
@click.option("--lamps", default=34_000, show_default=True, type=click.IntRange(23))
@click.option("--accel", default=1.0, show_default=True, type=click.FloatRange(1, 10_000),
              help="Simulated seconds a wall-clock second.")
@click.option("--duration", "duration_s", type=click.FloatRange(1), default=None,
              help="Stop after this many wall-clock seconds (default: Ctrl-C). The simulated period "
                   "(accel x duration) ends now.")
@click.option("--sample-s", default=300.0, show_default=True, type=click.FloatRange(1, 3600),
              help="A sample a lamp every this many simulated seconds (1-15 min in the field).")
@click.option("--upload-s", default=300.0, show_default=True, type=click.FloatRange(1, 3600),
              help="A cabinet uploads its journal this often (simulated seconds).")
@click.option("--state-s", default=60.0, show_default=True, type=click.FloatRange(1, 3600),
              help="Retained MQTT state every this many wall-clock seconds.")
@click.option("--lamp-failure-rate", default=0.05, show_default=True, type=click.FloatRange(0),
              help="Failures a lamp-year.")
@click.option("--uplink-loss-rate", default=4.0, show_default=True, type=click.FloatRange(0),
              help="Uplink losses a cabinet-year.")
@click.option("--power-cut-rate", default=2.0, show_default=True, type=click.FloatRange(0),
              help="Night-time power cuts a cabinet-year.")
@click.option("--junctions", default=113, show_default=True, type=click.IntRange(0),
              help="Signalised junctions (traffic counts, signal state and faults).")
@click.option("--cameras", default=269, show_default=True, type=click.IntRange(0),
              help="Cameras (health samples, camera-down events) on cabinets.")
@click.option("--vehicles", default=205, show_default=True, type=click.IntRange(0),
              help="Service vehicles (police and refuse), each its own gateway.")
@click.option("--parking-spaces", default=5000, show_default=True, type=click.IntRange(0),
              help="On-street spaces with an occupancy sensor.")
@click.option("--no-assets", is_flag=True,
              help="Cabinets and lamps only: no junction, camera, vehicle or parking.")
@click.option("--counts-interval-s", default=60.0, show_default=True, type=click.FloatRange(10, 3600),
              help="A junction controller's counting interval (simulated s).")
@click.option("--detector-fault-rate", default=1.0, show_default=True, type=click.FloatRange(0),
              help="Detector faults (stuck off or on) a detector-year.")
@click.option("--camera-down-rate", default=3.0, show_default=True, type=click.FloatRange(0),
              help="Times a camera-year a camera stops answering.")
@click.option("--agents", default=0, show_default=True, type=click.IntRange(0, 50),
              help="Cabinets run by a real citygate-agent with a lamp simulator.")
@click.option("--commune-outage", "outages", multiple=True,
              help="INSEE:START_S:DURATION_S: cut a whole commune's uplink (simulated seconds from the start).")
@click.option("--no-mqtt", is_flag=True, help="Uploads only, no control plane.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=Path("/tmp/citygate-city"),
              show_default=True)
@click.option("--db", "db_url", default=None, help="The collector's database (default: SQLite in the workdir).")
@click.option("--collector-url", default=None, help="Join this collector instead of starting one.")
@click.option("--tokens-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="With --collector-url: the fleet's tokens (as `gateway import` wrote them).")
@click.option("--mqtt-url", default=None, help="With --collector-url: its broker.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 32),
              help="Processes the cabinets are spread over.")
@click.option("--slice", "slice_", default=None, hidden=True)
@click.option("--report-s", default=10.0, show_default=True, type=click.FloatRange(0.2))
@click.option("--machine", is_flag=True, hidden=True, help="Figures as JSON lines (for --workers, benchmarks).")
@click.option("--seed", default=18, show_default=True)
def city(cabinets: int, lamps: int, accel: float, duration_s: float | None, sample_s: float, upload_s: float,
         state_s: float, lamp_failure_rate: float, uplink_loss_rate: float, power_cut_rate: float, junctions: int,
         cameras: int, vehicles: int, parking_spaces: int, no_assets: bool, counts_interval_s: float,
         detector_fault_rate: float, camera_down_rate: float, agents: int, outages: tuple[str, ...], no_mqtt: bool,
         workdir: Path, db_url: str | None, collector_url: str | None, tokens_dir: Path | None,
         mqtt_url: str | None, workers: int, slice_: str | None, report_s: float, machine: bool, seed: int) -> None:
    """The whole metropolis at the wire level: a simulated gateway a street cabinet (its lamps, meter,
    junctions, cameras and parking sensors) and a gateway a service vehicle; a few cabinets can be run
    by real agents (--agents)."""
    assets = NONE if no_assets else Assets(junctions, cameras, vehicles, parking_spaces)
    plan = plan_city(TERRITORY, cabinets, lamps, seed, assets=assets)
    rates = Rates(sample_s=sample_s, upload_s=upload_s, state_s=state_s, lamp_failure_rate=lamp_failure_rate,
                  uplink_loss_rate=uplink_loss_rate, power_cut_rate=power_cut_rate,
                  counts_interval_s=counts_interval_s, detector_fault_rate=detector_fault_rate,
                  camera_down_rate=camera_down_rate)
    cuts = [parse_outage(o) for o in outages]
    if agents and (no_mqtt or (collector_url is not None and slice_ is None)):
        raise click.BadParameter("real agents need the city's own collector and broker (no --collector-url, "
                                 "no --no-mqtt)", param_hint="--agents")
    try:
        real = agent_cabinets(plan, agents)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--agents") from None
    procs: list[Proc] = []
    started: list[Mosquitto | Agents] = []  # stopped in reverse order, after the processes
    try:
        if collector_url is None:
            tokens_dir = workdir / "tokens"
            collector_url, mqtt_url = _start_own(plan, real, workdir, db_url, no_mqtt, procs, started)
        elif any(c.parking or c.vehicle for c in plan) and slice_ is None:
            click.echo("joining a collector: it shows the parking if it runs with CITYGATE_PARKING="
                       f"{workdir / 'parking'} (written by a run of its own), the vehicles once registered")
        if tokens_dir is None:
            raise click.BadParameter("needed with --collector-url", param_hint="--tokens-dir")
        if workers > 1 and slice_ is None:
            _run_workers(workers, collector_url, tokens_dir, mqtt_url, report_s)
            return
        mine = [c for c in plan if c not in real]
        if slice_ is not None:
            k, n = (int(x) for x in slice_.split("/"))
            mine = mine[k::n]
        tokens = read_tokens(tokens_dir, [c.gateway for c in mine])
        the_city = City(mine, tokens, collector_url=collector_url, mqtt_url=None if no_mqtt else mqtt_url,
                        accel=accel, duration_s=duration_s, rates=rates, seed=seed + (hash(slice_) & 0xFFFF))
        vehicles_here = sum(c.vehicle is not None for c in mine)
        click.echo(f"{len(mine) - vehicles_here} cabinets, {sum(len(c.lamps) for c in mine):,} lamps, x{accel:g}")
        if vehicles_here or any(c.junctions or c.cameras or c.parking for c in mine):
            click.echo(f"{sum(len(c.junctions) for c in mine)} junctions, {sum(len(c.cameras) for c in mine)} "
                       f"cameras, {vehicles_here} vehicles, "
                       f"{sum(len(s.spaces()) for c in mine for s in c.parking):,} parking spaces")
        asyncio.run(run_city(the_city, duration_s, report_s, cuts, machine))
        f = figures(the_city)
        click.echo(f"city: {json.dumps(f)}" if machine else f"stopped at {line(f)}")
    finally:
        for p in reversed(procs):
            p.stop()
        for thing in reversed(started):
            thing.stop()


def _start_own(plan: list[Cabinet], real: list[Cabinet], workdir: Path, db_url: str | None, no_mqtt: bool,
               procs: list[Proc], started: list[Mosquitto | Agents]) -> tuple[str, str | None]:
    """The city's own collector, provisioned, with its broker and the real agents: (collector URL,
    broker URL); what it starts is appended to `procs` and `started` for the caller to stop."""
    workdir.mkdir(parents=True, exist_ok=True)
    db = db_url or str(workdir / "collector.db")
    inventory = workdir / "inventory.json"
    write_inventory(plan, inventory)
    tokens_dir = workdir / "tokens"
    click.echo(f"provisioning {len(plan)} gateways, {sum(len(c.lamps) for c in plan):,} lamps ...")
    provision(db, inventory, tokens_dir)
    env = provision_assets(db, plan, workdir)
    extra: list[str] = []
    key_line = ""
    mqtt_url = None
    if real:
        key_file = workdir / "command.key"
        key_file.unlink(missing_ok=True)
        key_line = command_key(key_file)
        extra += ["--command-key-file", str(key_file)]
    if not no_mqtt:
        password = mqtt_files(db, workdir / "mqtt")
        broker = Mosquitto(workdir / "broker", password_file=workdir / "mqtt" / "passwd",
                           acl_file=workdir / "mqtt" / "acl")
        broker.start()
        started.append(broker)
        mqtt_url = broker.url
        extra += ["--mqtt-url", mqtt_url, "--mqtt-password-file", str(password)]
    collector, collector_url = start_collector(db, extra=extra, die_with_parent=True, env=env)
    procs.append(collector)
    click.echo(f"collector and control centre: {collector_url}/")
    click.echo(f"MQTT broker: {mqtt_url}")
    if real:
        assert mqtt_url is not None
        fleet = Agents(real, workdir / "agents", tokens_dir)
        started.append(fleet)
        fleet.start(collector_url, mqtt_url, key_line)
        click.echo(f"real agents: {', '.join(c.gateway for c in real)}")
    return collector_url, mqtt_url


def _run_workers(n: int, collector_url: str, tokens_dir: Path, mqtt_url: str | None, report_s: float) -> None:
    """This command again in n processes, each with a slice of the cabinets; their figures summed."""
    args = [a for a in sys.argv[1:] if a != "--machine"]
    base = [bin_path("citygate-sim"), *args, "--collector-url", collector_url, "--tokens-dir", str(tokens_dir),
            "--machine", *(["--mqtt-url", mqtt_url] if mqtt_url else [])]
    kids = [Proc(f"city-{k}", [*base, "--slice", f"{k}/{n}"], die_with_parent=True) for k in range(n)]
    try:
        while any(k.popen.poll() is None for k in kids):
            time.sleep(report_s)
            latest = []
            for k in kids:
                found = [m for line in k.output().splitlines() if (m := FIGURES.match(line))]
                if found:
                    latest.append(json.loads(found[-1].group(1)))
            if latest:
                total: dict[str, object] = {key: sum(f[key] for f in latest) for key in (
                    "records", "acked", "mqtt_online", "gateways", "alarms", "reports")}
                click.echo(line({**total, "sim_time": latest[0]["sim_time"]}))
    finally:
        for k in kids:
            k.stop()

