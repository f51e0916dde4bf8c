"""What a person reads at the technician's terminal: values, times and tables for 80 columns.

Shared by every `citygate-agent` command module; imports neither rich (loaded when a table is
printed) nor the commands, so a module that only needs these helpers starts light.
"""

from __future__ import annotations

import re
import shutil
import sys
import textwrap
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

import click
import orjson

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

EXIT_OK, EXIT_ATTENTION, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_REFUSED = 0, 1, 2, 3, 4


def fail(code: int, message: str) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def print_json(doc: Any) -> None:
    click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())


# -- formatting: what a person reads -------------------------------------------------------------


def local_time(ts_ms: int) -> str:
    """An instant in the terminal's local time, with its zone (CET, CEST): a person compares it with a watch."""
    return f"{datetime.fromtimestamp(ts_ms / 1000).astimezone():%Y-%m-%d %H:%M:%S %Z}"


def now_ms() -> int:
    return int(datetime.now().timestamp() * 1000)


def when(ts_ms: int | None, now: int | None = None) -> str:
    """Local time and how long ago."""
    if ts_ms is None:
        return "never"
    return f"{local_time(ts_ms)}, {ago(ts_ms, now)}"


def ago(ts_ms: int | None, now: int | None = None) -> str:
    if ts_ms is None:
        return "never"
    return f"{span(((now if now is not None else now_ms()) - ts_ms) / 1000)} ago"


def span(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def human(value: Any) -> str:
    """One value as a person reads it: yes/no, a dash for nothing, key=value rather than JSON."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(_member(k, v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(human(v) for v in value)
    return str(value)


def _member(key: str, value: Any) -> str:
    """`until_ms=1796308730592` of an event's detail reads `until=2026-12-03 15:38:50 CET`."""
    if key.endswith("_ms") and isinstance(value, int) and not isinstance(value, bool) and value > 10**12:
        return f"{key.removesuffix('_ms')}={local_time(value)}"
    return f"{key}={human(value)}"


def values_text(values: Mapping[str, Any], limit: int = 6) -> str:
    items = list(values.items())
    text = ", ".join(f"{k}={human(v)}" for k, v in items[:limit])
    return text + (f", … (+{len(items) - limit})" if len(items) > limit else "")


def pct(value: Any) -> str:
    return "—" if value is None else f"{value} %"


def override_text(override: Mapping[str, Any] | None) -> str:
    """A lamp's or a group's override, as the agent describes it (level and end)."""
    if not override:
        return ""
    until = override.get("until_ms")
    return f"held at {pct(override.get('level_pct'))}" + (f" until {local_time(until)}" if until else "")


STATE_STYLE = {"ok": "green", "failing": "red", "misconfigured": "magenta", "unknown": "yellow"}


def styled(state: str) -> str:
    return f"[{STATE_STYLE.get(state, 'white')}]{state}[/]"


def terminal_width() -> int:
    return shutil.get_terminal_size((80, 24)).columns


def console() -> Console:
    from rich.console import Console

    return Console()


def table(*columns: str, title: str | None = None) -> Table:
    """A table for 80 columns: no vertical rules, the first column (a name) never cut nor wrapped."""
    from rich import box
    from rich.table import Table

    t = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", pad_edge=False)
    for i, name in enumerate(columns):
        t.add_column(name, no_wrap=i == 0, overflow="fold")
    return t


def keyed_table() -> Table:
    from rich.table import Table

    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow="fold")
    return t


#: A local time is read whole: wrapping never puts its zone on the next line.
_STAMP = re.compile(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) ([A-Z][A-Za-z0-9+:-]*)")


def notes(lines: list[str]) -> None:
    """Lines below a table, wrapped to the terminal with the continuation indented."""
    width = terminal_width()
    for line in lines:
        glued = _STAMP.sub(lambda m: "\0".join(m.groups()), line)
        wrapped = textwrap.fill(glued, width=width, subsequent_indent="    ", break_on_hyphens=False)
        click.echo(wrapped.replace("\0", " "))
