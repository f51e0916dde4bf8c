"""Where each lamp (each device) stands: the gateway's config, an operator's import, or its cabinet.

Two sources, the latest word wins:

- `config`: the gateway's own config (`[positions]` of the agent's TOML, edge_agent.positions)
  journals a `device_position` event (info; detail `{"lat", "lon"}`) for each device whose
  position changed, and uploads it like any event: exactly once, no new wire format. The
  collector reads the newest such event of each device (through the events' code index).
- `import`: `citygate-collector lamps import FILE` (or `set_device_positions`, for the bulk
  provisioning of gateways) writes the `device_position` table (migration 12 of both stores).

A device with neither stands at its cabinet (the gateway's `lat`/`lon`): `cabinet`. The map says
which (`positionSource`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson

from collector.errors import CollectorError
from collector.sqlprims import SqlPrimitives, marks

#: the event a gateway journals when its config gives a device a new position
POSITION_EVENT = "device_position"
Source = Literal["config", "import", "cabinet"]
MAX_NAME = 128
#: rows a statement upserts (6 parameters each: within both engines' limits)
_ROWS_PER_STATEMENT = 500

_TABLES = """
CREATE TABLE device_position (
    gateway    TEXT   NOT NULL,
    device     TEXT   NOT NULL,
    lat        {real} NOT NULL,
    lon        {real} NOT NULL,
    updated_ms BIGINT NOT NULL,
    updated_by TEXT,
    PRIMARY KEY (gateway, device)
)
"""
SQLITE_MIGRATION = _TABLES.format(real="REAL")
PG_MIGRATION = _TABLES.format(real="DOUBLE PRECISION")


class PositionFileError(CollectorError):
    """A positions file that cannot be imported: names the file, the line and the reason."""

    def __init__(self, file: str, where: str | None, reason: str) -> None:
        super().__init__(f"{file}, {where}: {reason}" if where else f"{file}: {reason}")
        self.file, self.where, self.reason = file, where, reason


@dataclass(frozen=True, slots=True)
class DevicePosition:
    gateway: str
    device: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class LampReading:
    gateway: str
    device: str
    last_ts_ms: int | None
    lamp_on: bool | None
    level_pct: float | None


@dataclass(frozen=True, slots=True)
class Located:
    """A device's position as the map shows it, and where it came from."""

    lat: float
    lon: float
    source: Source
    updated_ms: int


def position_problem(lat: Any, lon: Any) -> str | None:
    """Why (lat, lon) is no WGS 84 position, or None."""
    for name, value, bound in (("lat", lat, 90), ("lon", lon, 180)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return f"{name} {value!r} is not a number"
        if not -bound <= value <= bound:
            return f"{name} {value} is outside ±{bound}"
    return None


class PositionStore(Protocol):
    async def set_device_positions(self, positions: Sequence[DevicePosition], now_ms: int,
                                   by: str | None = None) -> int:
        """Write these positions in one transaction; return how many changed (a row already there with
        the same position is left alone, its time too: importing the same file twice changes nothing)."""

    async def imported_positions(self) -> dict[tuple[str, str], tuple[float, float, int]]:
        """(gateway, device) -> (lat, lon, updated_ms) of the imported positions."""

    async def config_positions(self) -> dict[tuple[str, str], tuple[float, float, int]]:
        """(gateway, device) -> (lat, lon, ts_ms) of each device's newest `device_position` event."""

    async def position_marks(self) -> tuple[Any, ...]:
        """A fingerprint of every position: it moves whenever one is written (an index-only count)."""

    async def event_marks(self, codes: Sequence[str]) -> tuple[Any, ...]:
        """A fingerprint of the events of these codes: it moves whenever one is stored or deleted."""

    async def lamp_readings(self, gateways: Sequence[str] | None = None) -> list[LampReading]:
        """Every lamp (a device that reported `lamp_on`), of these gateways or all, with its newest reading
        time, `lamp_on` and the newest `level_pct` it reported."""

    async def latest_codes(self, codes: Sequence[str], since_ms: int) -> dict[tuple[str, str], tuple[str, int]]:
        """(gateway, device) -> (code, ts_ms) of each device's newest event among `codes` since then."""


class PositionQueries(SqlPrimitives):
    async def set_device_positions(self, positions: Sequence[DevicePosition], now_ms: int,
                                   by: str | None = None) -> int:
        for p in positions:
            problem = position_problem(p.lat, p.lon)
            if problem is not None:
                raise CollectorError(f"{p.gateway}/{p.device}: {problem}")
        latest = {(p.gateway, p.device): p for p in positions}  # a device named twice: its last line
        known = await self.imported_positions()
        changed = [p for key, p in latest.items() if known.get(key, (None, None))[:2] != (p.lat, p.lon)]
        statements = []
        for start in range(0, len(changed), _ROWS_PER_STATEMENT):
            part = changed[start:start + _ROWS_PER_STATEMENT]
            values = ", ".join(f"({marks(6 * i + 1, 6)})" for i in range(len(part)))
            args = [a for p in part for a in (p.gateway, p.device, p.lat, p.lon, now_ms, by)]
            statements.append((
                f"INSERT INTO device_position (gateway, device, lat, lon, updated_ms, updated_by) VALUES {values}"
                " ON CONFLICT (gateway, device) DO UPDATE SET lat = excluded.lat, lon = excluded.lon,"
                " updated_ms = excluded.updated_ms, updated_by = excluded.updated_by", args))
        if statements:
            await self._ctl_atomic(statements)
        return len(changed)

    async def imported_positions(self) -> dict[tuple[str, str], tuple[float, float, int]]:
        rows = await self._ctl_rows("SELECT gateway, device, lat, lon, updated_ms FROM device_position")
        return {(str(r[0]), str(r[1])): (float(r[2]), float(r[3]), int(r[4])) for r in rows}

    async def config_positions(self) -> dict[tuple[str, str], tuple[float, float, int]]:
        rows = await self._ctl_rows(
            "SELECT g.name, e.device, e.ts_ms, e.detail FROM events e JOIN gateways g ON g.id = e.gateway_id"
            " WHERE e.code = $1 AND g.removed_ms IS NULL ORDER BY e.ts_ms, e.id", POSITION_EVENT)
        out: dict[tuple[str, str], tuple[float, float, int]] = {}
        for name, device, ts_ms, raw in rows:
            detail = orjson.loads(raw) if raw else {}
            lat: Any = detail.get("lat") if isinstance(detail, dict) else None
            lon: Any = detail.get("lon") if isinstance(detail, dict) else None
            if position_problem(lat, lon) is None:  # the agent checked it; a stranger's event is skipped
                out[(str(name), str(device))] = (float(lat), float(lon), int(ts_ms))
        return out

    async def position_marks(self) -> tuple[Any, ...]:
        events = await self._ctl_rows("SELECT COUNT(*), MAX(id) FROM events WHERE code = $1", POSITION_EVENT)
        imported = await self._ctl_rows("SELECT COUNT(*), MAX(updated_ms) FROM device_position")
        return (*events[0], *imported[0])

    async def event_marks(self, codes: Sequence[str]) -> tuple[Any, ...]:
        rows = await self._ctl_rows(f"SELECT COUNT(*), MAX(id) FROM events WHERE code IN ({marks(1, len(codes))})",
                                    *codes)
        return tuple(rows[0])

    async def lamp_readings(self, gateways: Sequence[str] | None = None) -> list[LampReading]:
        if gateways is not None and not gateways:
            return []
        clause = "" if gateways is None else f" AND g.name IN ({marks(2, len(gateways))})"
        # the newest sample that carries level_pct, an index seek back from the newest one (samples_by_device):
        # with report by exception a newer sample may carry only what changed (power_w)
        rows = await self._ctl_rows(
            "SELECT g.name, d.device, d.last_ts_ms, d.lamp_on, (SELECT s.vals FROM samples s"
            " WHERE s.gateway_id = d.gateway_id AND s.device = d.device AND CAST(s.vals AS TEXT) LIKE $1"
            " ORDER BY s.ts_ms DESC, s.seq DESC LIMIT 1)"
            " FROM device_state d JOIN gateways g ON g.id = d.gateway_id"
            f" WHERE d.lamp_on IS NOT NULL AND g.removed_ms IS NULL{clause}", '%"level_pct"%', *(gateways or ()))
        out = []
        for name, device, last, on, vals in rows:
            values = orjson.loads(vals) if isinstance(vals, str | bytes) else (vals or {})
            level = values.get("level_pct") if isinstance(values, dict) else None
            level = float(level) if isinstance(level, int | float) and not isinstance(level, bool) else None
            out.append(LampReading(str(name), str(device), None if last is None else int(last),
                                   None if on is None else bool(on), level))
        return out

    async def latest_codes(self, codes: Sequence[str], since_ms: int) -> dict[tuple[str, str], tuple[str, int]]:
        rows = await self._ctl_rows(
            "SELECT g.name, e.device, e.code, e.ts_ms FROM events e JOIN gateways g ON g.id = e.gateway_id"
            f" WHERE e.code IN ({marks(2, len(codes))}) AND e.ts_ms >= $1 AND g.removed_ms IS NULL"
            " ORDER BY e.ts_ms, e.id", since_ms, *codes)
        return {(str(r[0]), str(r[1])): (str(r[2]), int(r[3])) for r in rows}


def merge_positions(config: Mapping[tuple[str, str], tuple[float, float, int]],
                    imported: Mapping[tuple[str, str], tuple[float, float, int]]) -> dict[tuple[str, str], Located]:
    """Each device's own position: the newer of the gateway's config and the operators' import."""
    out = {k: Located(lat, lon, "config", at) for k, (lat, lon, at) in config.items()}
    for k, (lat, lon, at) in imported.items():
        if k not in out or at >= out[k].updated_ms:
            out[k] = Located(lat, lon, "import", at)
    return out


async def device_positions(store: PositionStore) -> dict[tuple[str, str], Located]:
    return merge_positions(await store.config_positions(), await store.imported_positions())


# -- the import file -----------------------------------------------------------------------------

_HEADER = ("gateway", "device", "lat", "lon")


def _row(file: str, where: str, gateway: Any, device: Any, lat: Any, lon: Any) -> tuple[str, DevicePosition]:
    for name, value in (("gateway", gateway), ("device", device)):
        if not isinstance(value, str) or not value.strip():
            raise PositionFileError(file, where, f"{name} is missing")
        if len(value) > MAX_NAME:
            raise PositionFileError(file, where, f"{name} is longer than {MAX_NAME} characters")
    problem = position_problem(lat, lon)
    if problem is not None:
        raise PositionFileError(file, where, problem)
    return where, DevicePosition(gateway.strip(), device.strip(), float(lat), float(lon))


def _number(text: str) -> float | str:
    try:
        return float(text.strip().replace(",", "."))  # a French spreadsheet writes 47,3221
    except ValueError:
        return text


def _csv(file: str, text: str) -> list[tuple[str, DevicePosition]]:
    sample = text[:4096]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader, [])]
    if tuple(header[:4]) != _HEADER:
        raise PositionFileError(file, "line 1", f"the header must be {delimiter.join(_HEADER)}, not {delimiter.join(header)}")
    out = []
    for row in reader:
        where = f"line {reader.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < 4:
            raise PositionFileError(file, where, f"4 columns expected ({', '.join(_HEADER)}), found {len(row)}")
        out.append(_row(file, where, row[0], row[1], _number(row[2]), _number(row[3])))
    return out


def _json(file: str, raw: bytes) -> list[tuple[str, DevicePosition]]:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise PositionFileError(file, None, f"not valid JSON: {exc}") from None
    items = doc.get("positions") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise PositionFileError(file, None, 'expected a list of {"gateway", "device", "lat", "lon"} objects'
                                            ' (or {"positions": [...]})')
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise PositionFileError(file, f"item {i}", "expected an object")
        out.append(_row(file, f"item {i}", item.get("gateway"), item.get("device"), item.get("lat"), item.get("lon")))
    return out


def read_positions(path: Path) -> list[tuple[str, DevicePosition]]:
    """(where, position) of a CSV (header gateway,device,lat,lon; `,` or `;`) or JSON file (a list of
    objects, by the `.json` suffix); where is "line N" or "item N"; PositionFileError names it and why."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PositionFileError(str(path), None, f"cannot read: {exc.strerror}") from None
    if path.suffix.lower() == ".json":
        return _json(str(path), raw)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PositionFileError(str(path), None, "not UTF-8 text") from None
    return _csv(str(path), text)

