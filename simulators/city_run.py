"""`citygate-sim city`: the whole metropolis (simulators.city) against a collector.

On its own it builds everything in a work folder: a collector (SQLite there, or `--db`), a real
Mosquitto (its config as docs/mqtt.md says, with the fleet's passwords and ACL), the city's
inventory, provisioned in one `citygate-collector gateway import`; then it runs the cabinets and
prints a line of figures every `--report-s` seconds until Ctrl-C or `--duration`. With
`--collector-url`, `--tokens-dir` and `--mqtt-url` it joins a collector already running.
`--workers N` runs the cabinets in N processes (this one starts them and sums their lines).
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

from simulators.city import City, Rates, plan_city, write_inventory
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
         state_s: float, lamp_failure_rate: float, uplink_loss_rate: float, power_cut_rate: float,
         outages: tuple[str, ...], no_mqtt: bool, workdir: Path, db_url: str | None, collector_url: str | None,
         tokens_dir: Path | None, mqtt_url: str | None, workers: int, slice_: str | None, report_s: float,
         machine: bool, seed: int) -> None:
    """The whole metropolis at the wire level: a simulated gateway a street cabinet."""
    plan = plan_city(TERRITORY, cabinets, lamps, seed)
    rates = Rates(sample_s=sample_s, upload_s=upload_s, state_s=state_s, lamp_failure_rate=lamp_failure_rate,
                  uplink_loss_rate=uplink_loss_rate, power_cut_rate=power_cut_rate)
    cuts = [parse_outage(o) for o in outages]
    procs: list[Proc] = []
    broker = None
    try:
        if collector_url is None:
            workdir.mkdir(parents=True, exist_ok=True)
            db = db_url or str(workdir / "collector.db")
            inventory = workdir / "inventory.json"
            write_inventory(plan, inventory)
            tokens_dir = workdir / "tokens"
            click.echo(f"provisioning {len(plan)} gateways, {sum(len(c.lamps) for c in plan):,} lamps ...")
            provision(db, inventory, tokens_dir)
            extra: list[str] = []
            if not no_mqtt:
                from simulators.mosquitto import Mosquitto

                password = mqtt_files(db, workdir / "mqtt")
                broker = Mosquitto(workdir / "broker", password_file=workdir / "mqtt" / "passwd",
                                   acl_file=workdir / "mqtt" / "acl")
                broker.start()
                mqtt_url = broker.url
                extra = ["--mqtt-url", mqtt_url, "--mqtt-password-file", str(password)]
            collector, collector_url = start_collector(db, extra=extra, die_with_parent=True)
            procs.append(collector)
            click.echo(f"collector and control centre: {collector_url}/")
            click.echo(f"MQTT broker: {mqtt_url}")
        if tokens_dir is None:
            raise click.BadParameter("needed with --collector-url", param_hint="--tokens-dir")
        if workers > 1 and slice_ is None:
            _run_workers(workers, collector_url, tokens_dir, mqtt_url, report_s)
            return
        mine = plan
        if slice_ is not None:
            k, n = (int(x) for x in slice_.split("/"))
            mine = plan[k::n]
        tokens = read_tokens(tokens_dir, [c.gateway for c in mine])
        the_city = City(mine, tokens, collector_url=collector_url, mqtt_url=None if no_mqtt else mqtt_url,
                        accel=accel, duration_s=duration_s, rates=rates, seed=seed + (hash(slice_) & 0xFFFF))
        click.echo(f"{len(mine)} cabinets, {sum(len(c.lamps) for c in mine):,} lamps, x{accel:g}")
        asyncio.run(run_city(the_city, duration_s, report_s, cuts, machine))
        f = figures(the_city)
        click.echo(f"city: {json.dumps(f)}" if machine else f"stopped at {line(f)}")
    finally:
        for p in reversed(procs):
            p.stop()
        if broker is not None:
            broker.stop()


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

