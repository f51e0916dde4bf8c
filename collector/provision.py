"""Bulk provisioning: the whole fleet of gateways from one inventory file, in one command.

`citygate-collector gateway import FILE --tokens-dir DIR` reads an inventory (JSON or CSV, one
gateway a cabinet) and makes the registry match it:

- a gateway not registered yet is added; its token (also its MQTT password) is written to
  `DIR/<gateway>.token` (mode 0600) *before* it is registered, so no token exists that nobody holds;
- a registered gateway whose commune, cabinet or position differ from its row is updated (its
  token stays);
- a registered gateway with the same values is left alone: importing the same file twice changes
  nothing. One that has no token file in DIR keeps its token (the registry has only its hash):
  the command says so; `gateway rotate` issues a new one.
- lamps with a position go to the position store (collector.positions, `device_position`); a lamp
  without one stands at its cabinet, as the map shows it.

The whole file is checked before anything is written: every problem is reported with its line (CSV)
or its entry (JSON), its field and the reason, and nothing is imported.

JSON: a list (or `{"gateways": [...]}`) of
`{"gateway": "gw-0001", "cabinet": "C-0001", "commune": "21231", "lat": 47.32, "lon": 5.04,
"lamps": ["L-1", {"id": "L-2", "lat": 47.3201, "lon": 5.0402}]}`; `gateway` defaults to the cabinet.
CSV: a header with `gateway,cabinet,commune,lat,lon,lamps`; `lamps` holds lamp ids separated by
spaces or semicolons (positions of lamps: the JSON form, or `citygate-collector lamps import`).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import orjson

from citygate_wire.common import now_ms
from collector.cli_db import db_option
from collector.control.acl import gateway_name_problem, mosquitto_hash
from collector.errors import CollectorError
from collector.positions import MAX_NAME, DevicePosition, position_problem
from collector.sqlprims import SqlPrimitives
from collector.store import Store
from collector.territory import Territory
from collector.tokens import hash_token, new_token, write_private

CSV_FIELDS = ("gateway", "cabinet", "commune", "lat", "lon", "lamps")
TOKEN_SUFFIX = ".token"


class InventoryError(CollectorError):
    """An inventory that cannot be imported: every problem found, one a line."""

    def __init__(self, file: str, problems: Sequence[str]) -> None:
        shown = list(problems[:50]) + ([f"... and {len(problems) - 50} more"] if len(problems) > 50 else [])
        super().__init__(f"{file}: {len(problems)} problem(s), nothing imported:\n  " + "\n  ".join(shown))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class Lamp:
    id: str
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class Row:
    where: str  # "line 12" or "entry 3": how problems name it
    gateway: str
    cabinet: str | None
    commune: str
    lat: float | None
    lon: float | None
    lamps: tuple[Lamp, ...] = ()


@dataclass
class ImportResult:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    #: registered before, with no token file in the folder: they keep the token they have
    no_token_file: list[str] = field(default_factory=list)
    lamp_positions: int = 0
    lamp_positions_changed: int = 0
    lamps: int = 0
    notes: list[str] = field(default_factory=list)


# -- reading and checking ----------------------------------------------------------------------------


def _entries(path: Path, data: bytes) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(where, raw entry) of each gateway of the file; InventoryError if the file is unreadable as a whole."""
    if path.suffix.lower() == ".json" or data.lstrip()[:1] in (b"[", b"{"):
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InventoryError(str(path), [f"not JSON: {exc}"]) from None
        items = doc.get("gateways") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise InventoryError(str(path), ["expected a list of gateways, or {\"gateways\": [...]}"])
        for i, item in enumerate(items, 1):
            yield f"entry {i}", item if isinstance(item, dict) else {"": item}
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InventoryError(str(path), [f"not UTF-8 text (byte {exc.start})"]) from None
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [f for f in ("commune",) if f not in header]
    if "gateway" not in header and "cabinet" not in header:
        missing.insert(0, "gateway or cabinet")
    unknown = [f for f in header if f not in CSV_FIELDS]
    if missing or unknown:
        raise InventoryError(str(path), [f"line 1 (header): {what}" for what in
                                         [f"missing column {m!r}" for m in missing]
                                         + [f"unknown column {u!r} (expected {', '.join(CSV_FIELDS)})"
                                            for u in unknown]])
    for raw in reader:
        if None in raw:
            yield f"line {reader.line_num}", {"": "more fields than the header has"}
            continue
        yield f"line {reader.line_num}", {k: v for k, v in raw.items() if v not in (None, "")}


def _number(raw: Mapping[str, Any], name: str, problems: list[str], where: str) -> float | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            problems.append(f"{where}, {name}: {value!r} is not a number")
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(f"{where}, {name}: {value!r} is not a number")
        return None
    return float(value)


def _position(raw: Mapping[str, Any], problems: list[str], where: str) -> tuple[float | None, float | None]:
    lat, lon = _number(raw, "lat", problems, where), _number(raw, "lon", problems, where)
    if (lat is None) != (lon is None):
        problems.append(f"{where}, {'lon' if lon is None else 'lat'}: missing (give both lat and lon, or neither)")
        return None, None
    if lat is not None:
        problem = position_problem(lat, lon)
        if problem is not None:
            problems.append(f"{where}, {problem.split(' ', 1)[0]}: {problem}")
            return None, None
    return lat, lon


def _lamps(raw: Any, problems: list[str], where: str) -> tuple[Lamp, ...]:
    if raw is None:
        return ()
    items: list[Any] = raw.replace(";", " ").split() if isinstance(raw, str) else raw
    if not isinstance(items, list):
        problems.append(f"{where}, lamps: expected a list of lamp ids or {{\"id\", \"lat\", \"lon\"}} objects")
        return ()
    lamps: list[Lamp] = []
    seen: set[str] = set()
    for k, item in enumerate(items, 1):
        at = f"{where}, lamps[{k}]"
        entry: Mapping[str, Any] = item if isinstance(item, dict) else {"id": item}
        lamp_id = entry.get("id")
        if not isinstance(lamp_id, str) or not lamp_id.strip() or len(lamp_id) > MAX_NAME:
            problems.append(f"{at}: the id must be a text of 1 to {MAX_NAME} characters, got {lamp_id!r}")
            continue
        if lamp_id in seen:
            problems.append(f"{at}: lamp {lamp_id!r} is listed twice")
            continue
        seen.add(lamp_id)
        unknown = set(entry) - {"id", "lat", "lon"}
        if unknown:
            problems.append(f"{at}: unknown field(s) {', '.join(sorted(unknown))}")
        lat, lon = _position(entry, problems, at)
        lamps.append(Lamp(lamp_id, lat, lon))
    return tuple(lamps)


def _row(where: str, raw: Mapping[str, Any], territory: Territory, problems: list[str],
         notes: list[str]) -> Row | None:
    if "" in raw:
        problems.append(f"{where}: {raw['']}" if isinstance(raw[""], str) and "field" in raw[""]
                        else f"{where}: expected an object, got {raw['']!r}")
        return None
    unknown = set(raw) - set(CSV_FIELDS)
    if unknown:
        problems.append(f"{where}: unknown field(s) {', '.join(sorted(unknown))} (expected {', '.join(CSV_FIELDS)})")
    before = len(problems)
    cabinet = raw.get("cabinet")
    if cabinet is not None and (not isinstance(cabinet, str) or not 1 <= len(cabinet) <= MAX_NAME):
        problems.append(f"{where}, cabinet: expected a text of 1 to {MAX_NAME} characters, got {cabinet!r}")
    name = raw.get("gateway", cabinet)
    if name is None:
        problems.append(f"{where}, gateway: missing (and no cabinet to name it after)")
    elif not isinstance(name, str) or (problem := gateway_name_problem(name)):
        problems.append(f"{where}, gateway: {name!r}: {problem if isinstance(name, str) else 'not a text'}")
    code = raw.get("commune")
    commune = None
    if not isinstance(code, str):
        problems.append(f"{where}, commune: missing (an INSEE code of {territory.name})" if code is None
                        else f"{where}, commune: {code!r} is not a text")
    else:
        resolved = territory.resolve(code.strip())
        if resolved is None:
            problems.append(f"{where}, commune: {code!r} is no commune of {territory.name}")
        else:
            commune = resolved.insee
            if resolved.insee != code.strip():
                notes.append(f"{where}: {code} is a former commune, merged into {resolved.insee} {resolved.name}: "
                             "registered there")
    lat, lon = _position(raw, problems, where)
    lamps = _lamps(raw.get("lamps"), problems, where)
    if len(problems) > before or commune is None or not isinstance(name, str):
        return None
    return Row(where, name, cabinet, commune, lat, lon, lamps)


def read_inventory(path: Path, territory: Territory) -> tuple[list[Row], list[str]]:
    """The rows of an inventory file and notes about them; InventoryError naming every problem."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InventoryError(str(path), [exc.strerror or str(exc)]) from None
    problems: list[str] = []
    notes: list[str] = []
    rows: list[Row] = []
    first: dict[str, str] = {}
    for where, raw in _entries(path, data):
        row = _row(where, raw, territory, problems, notes)
        if row is None:
            continue
        if row.gateway in first:
            problems.append(f"{where}, gateway: {row.gateway!r} is already on {first[row.gateway]}")
            continue
        first[row.gateway] = where
        rows.append(row)
    if problems:
        raise InventoryError(str(path), problems)
    if not rows:
        raise InventoryError(str(path), ["no gateway in it"])
    return rows, notes


# -- writing ------------------------------------------------------------------------------------------


def token_path(tokens_dir: Path, gateway: str) -> Path:
    return tokens_dir / f"{gateway}{TOKEN_SUFFIX}"


def tokens_dir_problem(tokens_dir: Path) -> str | None:
    """Why tokens cannot be written to `tokens_dir` (created 0700 if missing), or None."""
    try:
        tokens_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        return f"{tokens_dir}: {exc.strerror or exc}"
    if not os.access(tokens_dir, os.W_OK | os.X_OK):
        return f"{tokens_dir}: not writable"
    return None


async def import_inventory(store: Store, rows: Sequence[Row], tokens_dir: Path, actor: str, now_ms: int,
                           notes: Sequence[str] = ()) -> ImportResult:
    """Make the registry match `rows` (see the module's doc); the store is either engine's."""
    result = ImportResult(notes=list(notes))
    known = {i.gateway.name: i.gateway for i in await store.gateways()}
    changed_rows: list[tuple[str, list[Any]]] = []
    for row in rows:
        current = known.get(row.gateway)
        if current is None:
            await _add(store, row, tokens_dir, actor, now_ms)
            result.added.append(row.gateway)
            continue
        if (current.commune, current.cabinet, current.lat, current.lon) != (row.commune, row.cabinet, row.lat, row.lon):
            changed_rows.append((
                "UPDATE gateways SET commune = $1, cabinet = $2, lat = $3, lon = $4 WHERE id = $5",
                [row.commune, row.cabinet, row.lat, row.lon, current.id]))
            result.updated.append(row.gateway)
        else:
            result.unchanged.append(row.gateway)
        if not token_path(tokens_dir, row.gateway).exists():
            result.no_token_file.append(row.gateway)
    if changed_rows:
        if not isinstance(store, SqlPrimitives):
            raise TypeError(f"{type(store).__name__} has no SQL primitives")
        await store._ctl_atomic(changed_rows)
        by_name = {row.gateway: row for row in rows}
        for name in result.updated:
            row = by_name[name]
            await store.audit(actor, "gateway.import", name, f"updated: commune {row.commune}, cabinet "
                              f"{row.cabinet}, position {row.lat} {row.lon}", now_ms)
    positions = [DevicePosition(row.gateway, lamp.id, lamp.lat, lamp.lon)
                 for row in rows for lamp in row.lamps if lamp.lat is not None and lamp.lon is not None]
    result.lamps = sum(len(row.lamps) for row in rows)
    result.lamp_positions = len(positions)
    if positions:
        result.lamp_positions_changed = await store.set_device_positions(positions, now_ms, by=actor)
    return result


async def _add(store: Store, row: Row, tokens_dir: Path, actor: str, now_ms: int) -> None:
    """The token file first (written whole, 0600), then the registry: a failure between the two leaves a
    token file of no gateway, which the next run replaces; never a gateway whose token nobody holds."""
    token = new_token()
    write_private(token_path(tokens_dir, row.gateway), token + "\n", 0o600)
    added = await store.add_gateway(row.gateway, row.commune, hash_token(token), cabinet=row.cabinet,
                                    lat=row.lat, lon=row.lon)
    # the token is also the gateway's MQTT password: keep the hash Mosquitto reads (mqtt-acl)
    await store.set_mqtt_password(added.id, mosquitto_hash(token), now_ms)
    await store.audit(actor, "gateway.import", row.gateway, f"added, commune {row.commune}", now_ms)


def summary(result: ImportResult, tokens_dir: Path) -> list[str]:
    """What the command prints (80 columns)."""
    total = len(result.added) + len(result.updated) + len(result.unchanged)
    lines = [*result.notes,
             f"{total} gateways: {len(result.added)} added, {len(result.updated)} updated, "
             f"{len(result.unchanged)} unchanged"]
    if result.added:
        lines.append(f"tokens of the added gateways: {tokens_dir}/<gateway>{TOKEN_SUFFIX} (0600)")
    lines.append(f"{result.lamps} lamps; {result.lamp_positions} with a position "
                 f"({result.lamp_positions_changed} new or moved); the others stand at their cabinet")
    if result.no_token_file:
        shown = ", ".join(result.no_token_file[:5]) + (" ..." if len(result.no_token_file) > 5 else "")
        lines.append(f"{len(result.no_token_file)} registered gateway(s) have no token file in {tokens_dir} and "
                     f"keep their token ({shown}): `gateway rotate NAME --token-file FILE` issues a new one")
    return lines


# -- the command ----------------------------------------------------------------------------------------


@click.command("import")
@click.argument("inventory", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--tokens-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the added gateways' tokens, one file each: <gateway>.token (0600).")
@click.option("--territory", "territory_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="Territory file (default $CITYGATE_TERRITORY or configs/territory.json).")
@db_option
def gateway_import(inventory: Path, tokens_dir: Path, territory_path: Path | None, db_url: str) -> None:
    """Register or update every gateway of an INVENTORY (JSON or CSV: gateway, cabinet, commune, lat,
    lon, lamps); running it again changes nothing."""
    from collector.control.cli import cli_actor, run_store
    from collector.store import open_store
    from collector.territory import load_territory

    try:
        territory = load_territory(territory_path)
        rows, notes = read_inventory(inventory, territory)
    except CollectorError as exc:
        raise click.ClickException(str(exc)) from None
    problem = tokens_dir_problem(tokens_dir)
    if problem is not None:
        raise click.BadParameter(problem, param_hint="--tokens-dir")

    async def run() -> ImportResult:
        async with open_store(db_url) as store:
            return await import_inventory(store, rows, tokens_dir, cli_actor(), now_ms(), notes)

    for line in summary(run_store(run()), tokens_dir):
        click.echo(line)
