"""`citygate-collector vehicle ...`: the service vehicles' registry and the streets table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson

from citygate_wire.common import now_ms
from collector.cli_db import db_option
from collector.control.cli import cli_actor, on_store
from collector.vehicles.store import SERVICES, Street, VehicleError


@click.group()
def vehicle() -> None:
    """Service vehicles (police, waste): each is the gateway on board, of a service and a depot commune."""


@vehicle.command("add")
@click.argument("name")
@click.option("--service", type=click.Choice(SERVICES), required=True)
@click.option("--commune", required=True, help="INSEE code of the depot commune.")
@click.option("--gateway", required=True, help="The gateway on board (citygate-collector gateway add first).")
@click.option("--device", default="gps", show_default=True, help="Device id of that gateway's gnss bus.")
@db_option
def vehicle_add(name: str, service: str, commune: str, gateway: str, device: str, db_url: str) -> None:
    """Register vehicle NAME."""
    try:
        v = on_store(db_url, lambda store: store.add_vehicle(name, service, commune, gateway, device, now_ms()))
    except VehicleError as exc:
        raise click.ClickException(str(exc)) from None
    on_store(db_url, lambda store: store.audit(cli_actor(), "vehicle.add", name, f"{service}, gateway {gateway}",
                                               now_ms()))
    click.echo(f"vehicle {v.name}: {v.service}, depot {v.depot_commune}, gateway {v.gateway} device {v.device}")


@vehicle.command("list")
@db_option
def vehicle_list(db_url: str) -> None:
    """Vehicles: name, service, depot commune, gateway and device."""
    for v in on_store(db_url, lambda store: store.vehicles()):
        click.echo(f"{v.name}\t{v.service}\t{v.depot_commune}\t{v.gateway}\t{v.device}")


@vehicle.command("remove")
@click.argument("name")
@db_option
def vehicle_remove(name: str, db_url: str) -> None:
    """Take vehicle NAME out of the registry (its gateway and records stay)."""
    if not on_store(db_url, lambda store: store.remove_vehicle(name)):
        raise click.ClickException(f"no vehicle named {name!r}")
    click.echo(f"vehicle {name} removed")


def read_streets(path: Path) -> list[Street]:
    """A GeoJSON FeatureCollection of LineStrings with properties `name` and `commune` (INSEE)."""
    try:
        doc: Any = orjson.loads(path.read_bytes())
        streets = []
        for i, f in enumerate(doc["features"]):
            props, geom = f["properties"], f["geometry"]
            if geom["type"] != "LineString" or len(geom["coordinates"]) < 2:
                raise ValueError(f"feature {i}: a LineString of two points or more")
            line = tuple((float(lat), float(lon)) for lon, lat, *_ in geom["coordinates"])
            streets.append(Street(str(props["commune"]), str(props["name"]), line))
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise click.ClickException(f"{path}: {exc}") from None
    return streets


@vehicle.command("streets")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@db_option
def vehicle_streets(file: Path, db_url: str) -> None:
    """Replace the streets table with FILE (GeoJSON LineStrings, properties name and commune)."""
    streets = read_streets(file)
    count = on_store(db_url, lambda store: store.load_streets(streets))
    click.echo(f"{count} streets loaded")
