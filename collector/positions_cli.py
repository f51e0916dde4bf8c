"""`citygate-collector lamps import FILE`: each lamp's own position, from a CSV or JSON file."""

from __future__ import annotations

from pathlib import Path

import click

from citygate_wire.common import now_ms
from collector.cli_db import db_option
from collector.control.cli import cli_actor, on_store
from collector.positions import PositionFileError, read_positions
from collector.store import Store


@click.group()
def lamps() -> None:
    """Lamps: where each one stands on the map."""


@lamps.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@db_option
def lamps_import(file: Path, db_url: str) -> None:
    """Each lamp's position from FILE: CSV with the header gateway,device,lat,lon
    (',' or ';', a decimal comma is read) or JSON, a list of such objects. Run it again
    with the same file and nothing changes; a lamp without a position of its own stands
    at its cabinet."""
    try:
        rows = read_positions(file)
    except PositionFileError as exc:
        raise click.ClickException(str(exc)) from None
    if not rows:
        raise click.ClickException(f"{file}: no position in it")

    async def work(store: Store) -> int:
        known = {i.gateway.name for i in await store.gateways()}
        for where, p in rows:
            if p.gateway not in known:
                raise click.ClickException(f"{file}, {where}: no gateway named {p.gateway!r}"
                                           " (citygate-collector gateway add first)")
        changed = await store.set_device_positions([p for _, p in rows], now_ms(), cli_actor())
        if changed:
            await store.audit(cli_actor(), "lamps.import", str(file), f"{changed} positions", now_ms())
        return changed

    changed = on_store(db_url, work)
    click.echo(f"{len(rows)} positions read from {file.name}, {changed} changed")
