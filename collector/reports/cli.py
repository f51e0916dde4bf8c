"""`citygate-collector reports ...`: the residents' reports for operators who live in a terminal.

    reports list [--state S] [--commune C] [--assigned NAME|none] [--limit N]
    reports show ID
    reports move ID STATE [--note TEXT]
    reports assign ID OPERATOR|none

Each action is audited as the Unix user running it (collector.control.cli.cli_actor). These
commands never create a database: a SQLite file that does not exist is an error naming it.
Output fits an 80-column terminal: times in Europe/Paris, long texts wrapped.
"""

from __future__ import annotations

import textwrap
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import click

from citygate_wire.common import now_ms
from collector.cli_db import db_option
from collector.control.cli import cli_actor, on_store
from collector.dburl import sqlite_path
from collector.reports.model import STATES, TRANSITIONS, HistoryRow, Reporter, ReportRow
from collector.reports.services import SERVICES
from collector.reports.store import Filters, ReportConflict
from collector.rollup import PARIS
from collector.store import Store

T = TypeVar("T")
WIDTH = 80


def _existing(db_url: str, work: Callable[[Store], Awaitable[T]]) -> T:
    path = sqlite_path(db_url)
    if path is not None and not path.exists():
        raise click.ClickException(f"no database at {path}: give --db (or $CITYGATE_DB) the collector's")
    return on_store(db_url, work)


def _time(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, PARIS).strftime("%d/%m %H:%M")


def _cut(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[:width - 1] + "…"


def list_lines(rows: list[ReportRow], total: int) -> list[str]:
    """The listing: one line a request, at most WIDTH columns."""
    head = f"{'id':>5}  {'state':<11} {'received':<11} {'insee':<5} {'service':<12} {'assigned':<8} where"
    lines = [head]
    for r in rows:
        what = r.address or (f"lamp {r.lamp_gateway}/{r.lamp_device}" if r.lamp_gateway else r.description)
        line = (f"{r.id:>5}  {r.state:<11} {_time(r.requested_ms):<11} {r.jurisdiction:<5} "
                f"{_cut(r.service_code, 12):<12} {_cut(r.assigned_to or '-', 8):<8} ")
        lines.append(line + _cut(what, WIDTH - len(line)))
    lines.append(f"{len(rows)} of {total} report{'s' if total != 1 else ''}")
    return lines


def show_lines(row: ReportRow, reporters: list[Reporter], history: list[HistoryRow]) -> list[str]:
    service = SERVICES.get(row.service_code)
    moves = ", ".join(TRANSITIONS.get(row.state, ())) or "none"
    fields = [
        ("report", f"{row.id} ({row.status}, {row.state}; may move to {moves})"),
        ("service", f"{row.service_code}" + (f" ({service.name})" if service else "")),
        ("commune", row.jurisdiction),
        ("where", row.address or ("" if row.lat is None else f"{row.lat:.5f}, {row.lon:.5f}")),
        ("lamp", "" if row.lamp_gateway is None else f"{row.lamp_gateway}/{row.lamp_device}"
         + ("" if row.fault_since_ms is None else f", fault seen {_time(row.fault_since_ms)}")),
        ("assigned", row.assigned_to or "nobody"),
        ("received", _time(row.requested_ms)),
        ("updated", _time(row.updated_ms)),
        ("expected", _time(row.expected_ms)),
        ("public note", row.status_notes or ""),
        ("description", row.description or ""),
    ]
    lines = []
    for name, value in fields:
        if value:
            lines += textwrap.wrap(value, WIDTH, initial_indent=f"{name:<12} ", subsequent_indent=" " * 13)
    lines.append(f"reporters    {len(reporters)}")
    for p in reporters:
        c = p.contact
        who = " ".join(x for x in (c.first_name, c.last_name, c.email, c.phone) if x) or "anonymous"
        lines.append(_cut(f"  {_time(p.submitted_ms)} {'attached ' if p.attached else ''}{who}", WIDTH))
    lines.append("history")
    for h in history:
        lines += textwrap.wrap(f"{_time(h.ts_ms)} {h.state:<11} {h.operator or 'collector'}"
                               + (f": {h.note}" if h.note else ""), WIDTH, initial_indent="  ",
                               subsequent_indent=" " * 14)
    return lines


@click.group("reports")
def reports() -> None:
    """Residents' reports: list, show, move through their states, assign."""


@reports.command("list")
@click.option("--state", "states", multiple=True, type=click.Choice(STATES), help="Only these states (repeatable).")
@click.option("--open", "open_only", is_flag=True, help="Only the open ones (received, dispatched, in_progress).")
@click.option("--commune", default=None, help="The commune's INSEE code.")
@click.option("--assigned", default=None, help="An operator's name, or `none` for the unassigned.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@db_option
def reports_list(states: tuple[str, ...], open_only: bool, commune: str | None, assigned: str | None, limit: int,
                 db_url: str) -> None:
    """The newest reports first."""
    from collector.territory import load_territory

    insee = None
    if commune is not None:
        found = load_territory().resolve(commune)
        if found is None:
            raise click.BadParameter(f"{commune!r} is no commune", param_hint="--commune")
        insee = found.insee
    chosen = list(states) or (["received", "dispatched", "in_progress"] if open_only else [])
    filters = Filters(None, (), chosen, insee, 0, 2**62, limit,
                      assigned=None if assigned is None else "" if assigned == "none" else assigned)

    async def fetch(store: Store) -> tuple[list[ReportRow], int]:
        return await store.reports(filters), await store.count_reports(filters)

    rows, total = _existing(db_url, fetch)
    click.echo("\n".join(list_lines(rows, total)))


@reports.command("show")
@click.argument("report_id", type=click.IntRange(1))
@db_option
def reports_show(report_id: int, db_url: str) -> None:
    """A report with its reporters and its history."""
    async def fetch(store: Store) -> tuple[ReportRow, list[Reporter], list[HistoryRow]] | None:
        row = await store.report(report_id)
        if row is None:
            return None
        return row, await store.report_reporters(report_id), await store.report_history(report_id)

    found = _existing(db_url, fetch)
    if found is None:
        raise click.ClickException(f"no report {report_id}")
    click.echo("\n".join(show_lines(*found)))


@reports.command("move")
@click.argument("report_id", type=click.IntRange(1))
@click.argument("state", type=click.Choice(STATES))
@click.option("--note", default=None, help="The public note the resident reads (default: the state's own).")
@db_option
def reports_move(report_id: int, state: str, note: str | None, db_url: str) -> None:
    """Move a report to STATE (or, to its own state, give it a new public note)."""
    if note is not None and not note.strip():
        raise click.BadParameter("an empty note", param_hint="--note")
    actor = cli_actor()

    async def move(store: Store) -> ReportRow | None:
        try:
            return await store.set_report_state(report_id, state, note, None, actor, now_ms(), actor=actor)
        except ReportConflict as exc:
            raise click.ClickException(str(exc)) from None

    row = _existing(db_url, move)
    if row is None:
        raise click.ClickException(f"no report {report_id}")
    click.echo(textwrap.fill(f"report {row.id}: {row.state}; the resident reads: {row.status_notes}", WIDTH,
                             subsequent_indent="  "))


@reports.command("assign")
@click.argument("report_id", type=click.IntRange(1))
@click.argument("operator")
@db_option
def reports_assign(report_id: int, operator: str, db_url: str) -> None:
    """Assign a report to OPERATOR (`none`: to nobody)."""
    assignee = None if operator == "none" else operator

    async def assign(store: Store) -> ReportRow | None:
        if assignee is not None and assignee not in {o.name for o in await store.operators()}:
            raise click.ClickException(f"no operator named {assignee!r} (citygate-collector operator list)")
        return await store.assign_report(report_id, assignee, cli_actor(), now_ms())

    row = _existing(db_url, assign)
    if row is None:
        raise click.ClickException(f"no report {report_id}")
    click.echo(f"report {row.id}: assigned to {row.assigned_to or 'nobody'}")
