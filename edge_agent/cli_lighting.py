"""`citygate-agent schedule` and `citygate-agent simulate-year`: what the lighting programs will do.

Both read only the `[lighting]` table of the agent config (no bus is opened), so a technician
can check a program before the cabinet is wired. A program day runs from 12:00 on the given
date to 12:00 the next day: `--date 2026-07-14` shows the night of 14 to 15 July.
"""

from __future__ import annotations

import sys
import tomllib
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

# astral (sunset times), rich and the config parser come with the command that runs, not with `--help`
if TYPE_CHECKING:
    from edge_agent.lighting.config import LightingConfig
    from edge_agent.lighting.engine import DayPlan


def load_lighting(file: Path) -> LightingConfig:
    """The `[lighting]` table of an agent config file; AgentConfigError naming file, key and reason."""
    from drivers.errors import ConfigError
    from edge_agent.config import AgentConfigError
    from edge_agent.lighting.config import from_config

    try:
        doc = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AgentConfigError(file, "", f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise AgentConfigError(file, "", "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise AgentConfigError(file, "", f"not valid TOML: {exc}") from None
    if "lighting" not in doc:
        raise AgentConfigError(file, "lighting", "missing: this config has no [lighting] table")
    try:
        return from_config(doc["lighting"], "lighting", file.parent)
    except ConfigError as exc:
        raise AgentConfigError(file, exc.key, exc.reason) from None


def _load_or_exit(file: Path) -> LightingConfig:
    from edge_agent.config import AgentConfigError

    try:
        return load_lighting(file)
    except AgentConfigError as exc:
        click.echo(f"config error: {exc}", err=True)
        sys.exit(2)


def _dump(doc: Any) -> None:
    click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())


def plan_doc(plan: DayPlan) -> dict[str, Any]:
    return {
        "program": plan.program,
        "start": plan.start.isoformat(),
        "end": plan.end.isoformat(),
        "initial_level_pct": plan.initial,
        "switches": [
            {"at_utc": s.at.isoformat(), "local": s.local.isoformat(), "level_pct": s.level} for s in plan.switches
        ],
        "burn_h": round(plan.burn_seconds() / 3600, 3),
    }


@click.command()
@click.option("--config", "config_file", required=True, type=click.Path(path_type=Path), help="Agent TOML config.")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Night starting on this date (default: the current one).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def schedule(config_file: Path, day: datetime | None, as_json: bool) -> None:
    """Switch times and levels of each lamp group for one night. The night runs 12:00 to 12:00 local."""
    from rich.console import Console
    from rich.table import Table

    from edge_agent.lighting.engine import Engine

    cfg = _load_or_exit(config_file)
    engine = Engine(cfg.programs, cfg.site)
    the_day = day.date() if day is not None else engine.program_day(datetime.now().astimezone())
    plans = [(g, engine.plan(g.calendar, the_day)) for g in cfg.groups]
    if as_json:
        _dump({
            "date": the_day.isoformat(), "timezone": cfg.site.timezone.key,
            "groups": [{"group": g.name, "calendar": g.calendar, "lamps": len(g.lamps), **plan_doc(p)} for g, p in plans],
        })
        return
    console = Console()
    console.print(f"[bold]Night of {the_day.isoformat()}[/bold] to {(the_day + timedelta(days=1)).isoformat()}"
                  f" ({cfg.site.timezone.key}, {cfg.site.latitude:.3f} N {cfg.site.longitude:.3f} E)")
    for g, p in plans:
        console.print(f"[bold]{g.name}[/bold]: {len(g.lamps)} lamp(s), calendar {g.calendar or '-'}, program {p.program}")
        table = Table()
        table.add_column("local time")
        table.add_column("UTC")
        table.add_column("level %", justify="right")
        table.add_row(p.start.astimezone(cfg.site.timezone).strftime("%a %H:%M:%S %Z"), p.start.strftime("%H:%M:%S"),
                      str(p.initial))
        for s in p.switches:
            table.add_row(s.local.strftime("%a %H:%M:%S %Z"), s.at.strftime("%H:%M:%S"), str(s.level))
        console.print(table)
        console.print(f"  lit {p.burn_seconds() / 3600:.2f} h")


@dataclass
class YearTotals:
    burn_s: float = 0.0  # per lamp
    level_s: float = 0.0  # ∫ level/100 dt, per lamp
    switches: int = 0


def simulate_year(cfg: LightingConfig, year: int) -> dict[str, Any]:
    from edge_agent.lighting.engine import Engine

    """Burn hours and energy of every group over the nights that start in `year` (power follows the level)."""
    engine = Engine(cfg.programs, cfg.site)
    groups = []
    total_energy = 0.0
    for g in cfg.groups:
        totals = YearTotals()
        programs: Counter[str] = Counter()
        day = date(year, 1, 1)
        while day.year == year:
            plan = engine.plan(g.calendar, day)
            totals.burn_s += plan.burn_seconds()
            totals.level_s += plan.level_seconds()
            totals.switches += len(plan.switches)
            programs[plan.program] += 1
            day += timedelta(days=1)
        energy_kwh = totals.level_s / 3600 * g.rated_power_w * len(g.lamps) / 1000
        total_energy += energy_kwh
        groups.append({
            "group": g.name, "calendar": g.calendar, "lamps": len(g.lamps), "rated_power_w": g.rated_power_w,
            "burn_h_per_lamp": round(totals.burn_s / 3600, 2), "energy_kwh": round(energy_kwh, 2),
            "switches": totals.switches, "nights_per_program": dict(programs),
        })
    return {"year": year, "timezone": cfg.site.timezone.key, "groups": groups,
            "cabinet_energy_kwh": round(total_energy, 2),
            "power_model": "lamp power = rated power × level / 100"}


@click.command("simulate-year")
@click.option("--config", "config_file", required=True, type=click.Path(path_type=Path), help="Agent TOML config.")
@click.option("--year", type=click.IntRange(2000, 2100), required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def simulate_year_cmd(config_file: Path, year: int, as_json: bool) -> None:
    """Burn hours and energy per lamp group over the nights of YEAR."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    cfg = _load_or_exit(config_file)
    result = simulate_year(cfg, year)
    if as_json:
        _dump(result)
        return
    # 80 columns: the group's name whole, and its nights per programme as lines under the table
    table = Table(title=f"{year}, {result['timezone']}: power = rated × level / 100", box=box.SIMPLE_HEAD)
    for col in ("group", "lamps", "burn h / lamp", "energy kWh", "switches"):
        table.add_column(col, justify="left" if col == "group" else "right", no_wrap=col == "group")
    for g in result["groups"]:
        table.add_row(g["group"], str(g["lamps"]), f"{g['burn_h_per_lamp']:.1f}", f"{g['energy_kwh']:.1f}",
                      str(g["switches"]))
    console = Console()
    console.print(table)
    for g in result["groups"]:
        nights = ", ".join(f"{k} {v}" for k, v in sorted(g["nights_per_program"].items()))
        console.print(f"{g['group']}: nights per programme: {nights}")
    console.print(f"cabinet: {result['cabinet_energy_kwh']:.1f} kWh")
