"""`citygate-agent decode ...`: decode one frame or payload given as hex, for technicians and scripts.

Each protocol adds a subcommand to the `decode` group. A subcommand calls `show()` with the
decoder's result, or lets the driver's DecodeError through to `decode_errors()`, which prints
the precise reason and exits with code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from drivers.errors import DecodeError


@click.group()
def decode() -> None:
    """Decode one frame or payload given as hex; exit code 2 on a decode error."""


def parse_hex(text: str) -> bytes:
    """Hex with or without spaces, colons or a 0x prefix."""
    cleaned = text.replace(" ", "").replace(":", "").replace("0x", "").replace("0X", "")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise click.BadParameter(f"not hexadecimal: {text!r}", param_hint="HEX") from None


@contextmanager
def decode_errors() -> Iterator[None]:
    try:
        yield
    except DecodeError as exc:
        click.echo(f"decode error: {exc}", err=True)
        sys.exit(2)


def show(doc: Mapping[str, Any], as_json: bool) -> None:
    """Print a decoded document: a `fields` list of {name, value, unit} plus any other members."""
    if as_json:
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2, default=str).decode())
        return
    console = Console()
    for key, value in doc.items():
        if key != "fields":
            console.print(f"[bold]{key}[/bold]: {value}")
    table = Table("field", "value", "unit")
    for f in doc.get("fields", []):
        table.add_row(str(f["name"]), str(f["value"]), str(f.get("unit") or ""))
    console.print(table)
