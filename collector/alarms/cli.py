"""`citygate-collector alarms ...`: the operators' alarms in a terminal (registered in collector/cli.py).

Lines fit 80 columns; times are Europe/Paris. Every command reads what came in first (the fold,
as the server does), and none creates a database: a path that holds none is an error.
"""

from __future__ import annotations

import textwrap
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import click

from citygate_wire.common import now_ms
from collector.alarms.fold import Fold
from collector.alarms.model import ACTIVE, MAX_COMMENT, SEVERITIES, STATES, Alarm, AlarmError, Filters
from collector.cli_db import db_option
from collector.control.cli import cli_actor, run_store
from collector.dburl import redact_url, sqlite_path
from collector.errors import CollectorError
from collector.rollup import PARIS
from collector.store import Store, open_store
from collector.territory import Territory, load_territory

T = TypeVar("T")
WIDTH = 80
STATE_SHORT = {"open": "open", "acknowledged": "ack", "cleared": "clrd"}
SEVERITY_SHORT = {"critical": "crit", "major": "maj"}


def _existing(db_url: str) -> str:
    path = sqlite_path(db_url)
    if path is not None and not path.is_file():
        raise click.ClickException(f"no database at {path}\n(--db or $CITYGATE_DB names the collector's database)")
    return db_url


def _on_folded(db_url: str, work: Callable[[Store], Awaitable[T]]) -> T:
    """`work` on the store, once what came in is folded."""
    async def run() -> T:
        async with open_store(_existing(db_url)) as store:
            await Fold(store).catch_up()
            return await work(store)

    try:
        return run_store(run())
    except OSError as exc:
        raise click.ClickException(f"{redact_url(db_url)}: {exc}") from None


def _territory() -> Territory | None:
    try:
        return load_territory()
    except CollectorError:
        return None


def paris(ms: int | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, PARIS).strftime(fmt)


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    minutes = ms // 60_000
    return f"{minutes // 1440} d {minutes // 60 % 24} h" if minutes >= 1440 else f"{minutes // 60} h {minutes % 60:02d}"


def _line(a: Alarm) -> str:
    devices = f"{a.devices_active}/{a.devices_total}"
    return (f"{a.id:>6} {STATE_SHORT[a.state]:<4} {SEVERITY_SHORT.get(a.severity, a.severity[:4]):<4} {paris(a.first_ts_ms, '%d/%m %H:%M'):<11} "
            f"{cut(a.code, 22):<22} {cut(a.gateway, 16):<16} {devices:>7}")


@click.group("alarms")
def alarms() -> None:
    """Operators' alarms: one per cause (a lost bus is one alarm of its devices)."""


@alarms.command("list")
@click.option("--state", default="active", show_default=True,
              help="active, all, or a comma-separated list of open, acknowledged, cleared.")
@click.option("--commune", default=None, help="INSEE code.")
@click.option("--severity", type=click.Choice(SEVERITIES), default=None)
@click.option("--kind", default=None, help="The cause's code (communication_failure, lamp_failure ...).")
@click.option("--gateway", default=None)
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@db_option
def list_(state: str, commune: str | None, severity: str | None, kind: str | None, gateway: str | None, limit: int,
          db_url: str) -> None:
    """Alarms, the most severe and latest first, with the counts per state."""
    states = ACTIVE if state == "active" else STATES if state == "all" else tuple(s.strip() for s in state.split(","))
    if any(s not in STATES for s in states):
        raise click.BadParameter(f"active, all, or a list of {', '.join(STATES)}", param_hint="--state")
    if commune is not None:
        territory = _territory()
        found = territory.resolve(commune) if territory else None
        if territory is not None and found is None:
            raise click.BadParameter(f"{commune!r} is no commune of {territory.name}", param_hint="--commune")
        commune = found.insee if found else commune
    f = Filters(states=states, commune=commune, severity=severity, kind=kind, gateway=gateway, limit=limit)
    rows, total, counts = _on_folded(db_url, lambda store: store.list_alarms(f, now_ms()))
    if not rows:
        click.echo("no alarm matches")
    else:
        click.echo(f"{'ID':>6} {'STAT':<4} {'SEV':<4} {'SINCE':<11} {'KIND':<22} {'GATEWAY':<16} {'DEVICES':>7}")
        for a in rows:
            click.echo(_line(a))
    s = counts.state
    click.echo(f"{len(rows)} shown of {total}; open {s['open']}, acknowledged {s['acknowledged']}, "
               f"cleared in 24 h {s['cleared']} (times Europe/Paris)")


def _show(a: Alarm, store_doc: dict[str, Any]) -> list[str]:
    territory = _territory()
    place = territory.communes.get(a.commune) if territory else None
    out = [cut(f"Alarm {a.id}: {a.code} on {a.gateway} ({a.commune}{' ' + place.name if place else ''})", WIDTH),
           f"  state      {a.state}, {a.severity}" + (f", assigned to {a.assignee}" if a.assignee else ""),
           f"  since      {paris(a.first_ts_ms, '%Y-%m-%d %H:%M:%S')} (latest raise {paris(a.last_ts_ms, '%H:%M:%S')})",
           f"  devices    {a.devices_total}, {a.devices_active} still failing"]
    if a.acked_by:
        out.append(f"  acked      {paris(a.acked_ms)} by {a.acked_by}")
    if a.state == "cleared":
        how = "all devices back" if a.cleared_how == "restored" else f"by {a.cleared_by}"
        out.append(f"  cleared    {paris(a.cleared_ms)} ({how}), lasted {duration(a.duration_ms)}")
    out.append("Devices:")
    out += [f"  {cut(d.device, 30):<30} raised {paris(d.raised_ts_ms, '%d/%m %H:%M:%S')}  "
            + ("failing" if d.restored_ts_ms is None else f"back {paris(d.restored_ts_ms, '%d/%m %H:%M:%S')}")
            for d in a.devices]
    if store_doc["audit"]:
        out.append("Actions:")
        for entry in store_doc["audit"]:
            head = f"  {paris(entry.at_ms)}  {cut(entry.operator, 16):<16} {entry.action.removeprefix('alarm.'):<11}"
            text = entry.detail
            lines = textwrap.wrap(text, WIDTH - len(head) - 1) or [""]
            out.append(f"{head} {lines[0]}".rstrip())
            out += [" " * (len(head) + 1) + rest for rest in lines[1:]]
    return out


@alarms.command("show")
@click.argument("alarm_id", type=click.IntRange(0))
@db_option
def show(alarm_id: int, db_url: str) -> None:
    """One alarm: its devices, and who did what (times Europe/Paris)."""
    async def fetch(store: Store) -> tuple[Alarm | None, dict[str, Any]]:
        return await store.get_alarm(alarm_id), {"audit": await store.alarm_audit(alarm_id)}

    alarm, extra = _on_folded(db_url, fetch)
    if alarm is None:
        raise click.ClickException(f"no alarm {alarm_id}")
    click.echo("\n".join(_show(alarm, extra)))


def _act(db_url: str, alarm_id: int, action: str, text: str | None) -> Alarm:
    if text is not None and (not text.strip() or len(text) > MAX_COMMENT):
        raise click.BadParameter(f"1 to {MAX_COMMENT} characters", param_hint="--comment")

    async def act(store: Store) -> Alarm:
        if action == "assign" and text not in {o.name for o in await store.operators()}:
            raise click.ClickException(f"no operator named {text!r} (citygate-collector operator list)")
        try:
            return await store.act_on_alarm(alarm_id, action, cli_actor(), text, now_ms())
        except AlarmError as exc:
            raise click.ClickException(str(exc)) from None

    return _on_folded(db_url, act)


comment_option = click.option("--comment", default=None, help="Why: kept in the alarm's audit.")


@alarms.command("ack")
@click.argument("alarm_id", type=click.IntRange(0))
@comment_option
@db_option
def ack(alarm_id: int, comment: str | None, db_url: str) -> None:
    """Acknowledge alarm ALARM_ID: someone is on it."""
    a = _act(db_url, alarm_id, "acknowledge", comment)
    click.echo(f"alarm {a.id} acknowledged by {a.acked_by}")


@alarms.command("assign")
@click.argument("alarm_id", type=click.IntRange(0))
@click.argument("operator")
@db_option
def assign(alarm_id: int, operator: str, db_url: str) -> None:
    """Give alarm ALARM_ID to OPERATOR."""
    a = _act(db_url, alarm_id, "assign", operator)
    click.echo(f"alarm {a.id} assigned to {a.assignee}")


@alarms.command("comment")
@click.argument("alarm_id", type=click.IntRange(0))
@click.argument("text")
@db_option
def comment(alarm_id: int, text: str, db_url: str) -> None:
    """Add TEXT to alarm ALARM_ID's audit."""
    _act(db_url, alarm_id, "comment", text)
    click.echo(f"comment added to alarm {alarm_id}")


@alarms.command("clear")
@click.argument("alarm_id", type=click.IntRange(0))
@click.option("--comment", required=True, help="Why it is cleared though its devices did not say they are back.")
@db_option
def clear(alarm_id: int, comment: str, db_url: str) -> None:
    """Clear alarm ALARM_ID by hand (an alarm clears itself when all its devices are back)."""
    a = _act(db_url, alarm_id, "clear", comment)
    click.echo(f"alarm {a.id} cleared by {a.cleared_by}")
