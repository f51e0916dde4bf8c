"""`citygate-agent plan ...`: check an intersection's plans and tables against the French rules; show what runs when.

`plan check FILE` exits 0 when the file is lawful and 2 with every reason when it is not (the
same check the driver makes before it uploads anything). `plan show FILE --date D` lists, in
local time, which plan or functional position runs from when to when on that day.
"""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import orjson

from edge_agent.cli_group import SuggestingGroup

# the traffic model is loaded by the command that reads a file, not by `--help`
if TYPE_CHECKING:
    from drivers.traffic.config import Timings
    from drivers.traffic.validate import Violation

REFUSED = 2


@click.group(cls=SuggestingGroup)
def plan() -> None:
    """Intersection plans and time-of-day tables. Files: configs/intersections/*.toml."""


def _load(file: Path) -> tuple[Timings | None, list[Violation]]:
    from drivers.errors import ConfigError
    from drivers.traffic.config import load_timings
    from drivers.traffic.validate import Violation, validate_timings

    try:
        timings = load_timings(file)
    except ConfigError as exc:
        return None, [Violation("structure", str(exc))]
    return timings, validate_timings(timings)


def _echo_json(doc: Any) -> None:
    click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())


def _refuse(file: Path, violations: list[Violation], as_json: bool) -> None:
    if as_json:
        _echo_json({"file": str(file), "valid": False, "violations": [v.as_dict() for v in violations]})
    else:
        click.echo(f"{file}: refused, {len(violations)} violation(s):", err=True)
        for v in violations:
            click.echo(f"  [{v.rule}] {v.message}", err=True)
    sys.exit(REFUSED)


@plan.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
def check(file: Path, as_json: bool) -> None:
    """Exit 0 if FILE's intersection, plans and tables are lawful; 2 with the reasons if not."""
    from drivers.traffic.validate import transition_pairs

    timings, violations = _load(file)
    if timings is None or violations:
        _refuse(file, violations, as_json)
        return
    ix = timings.intersection
    plans = [{"number": p.number, "name": p.name, "cycle_s": p.cycle_s, "offset_s": p.offset_s, "stages": len(p.stages),
              "priority": p.priority} for p in timings.plans]
    changes = [[a.number, b.number] for a, b in transition_pairs(timings)]
    if as_json:
        _echo_json({"file": str(file), "valid": True, "intersection": ix.id, "setting": str(ix.setting),
                    "groups": len(ix.groups), "conflicts": len(ix.matrix), "plans": plans,
                    "day_tables": sorted(timings.schedule.day_tables), "transitions": changes, "violations": []})
        return
    click.echo(f"{file}:\nvalid: {ix.id} ({ix.setting}), {len(ix.groups)} groups, {len(ix.matrix)} matrix entries")
    for p in plans:
        kind = ", priority plan (one cycle per tram or bus call)" if p["priority"] else ""
        click.echo(f"  plan {p['number']} {p['name']!r}: cycle {p['cycle_s']} s, offset {p['offset_s']} s, "
                   f"{p['stages']} stages{kind}")
    pairs = ", ".join(f"{a}→{b}" for a, b in changes) or "none"
    click.echo(f"  plan changes checked: {pairs}")


@plan.command("show")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--date", "day", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="Local date, YYYY-MM-DD.")
@click.option("--timezone", "tz_name", default="Europe/Paris", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
def show(file: Path, day: datetime, tz_name: str, as_json: bool) -> None:
    """Which plan or position runs when on one local day (times in local time, DST included)."""
    from drivers.traffic.tables import day_segments

    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"unknown time zone {tz_name!r}", param_hint="--timezone") from None
    timings, violations = _load(file)
    if timings is None or violations:
        _refuse(file, violations, as_json)
        return
    d: date = day.date()
    segments = day_segments(timings.schedule, d, tz)
    hours = (segments[-1].end - segments[0].start).total_seconds() / 3600
    table_id = timings.schedule.table_for(d).id
    rows: list[dict[str, Any]] = []
    for s in segments:
        p = timings.plan(s.plan) if s.plan is not None else None
        rows.append({
            "start": s.start.astimezone(tz).isoformat(),
            "end": s.end.astimezone(tz).isoformat(),
            "start_utc": s.start.isoformat(),
            "end_utc": s.end.isoformat(),
            "position": str(s.position),
            "plan": s.plan,
            "plan_name": p.name if p is not None else None,
            "cycle_s": p.cycle_s if p is not None else None,
            "carried_over": s.carried,
        })
    if as_json:
        _echo_json({"file": str(file), "date": d.isoformat(), "timezone": tz_name, "day_table": table_id,
                    "hours": hours, "segments": rows})
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{timings.intersection.id}[/bold] on {d:%A %Y-%m-%d} ({tz_name}), "
                  f"day table {table_id!r}, {hours:g} h")
    table = Table("from", "to", "runs", "note")
    for r, s in zip(rows, segments, strict=True):
        runs = (f"plan {r['plan']} {r['plan_name']!r} (cycle {r['cycle_s']} s)" if r["position"] == "normal"
                else r["position"].replace("_", " "))
        table.add_row(s.start.astimezone(tz).strftime("%H:%M %Z"), s.end.astimezone(tz).strftime("%H:%M %Z"),
                      runs, "carried over from the day before" if r["carried_over"] else "")
    console.print(table)
