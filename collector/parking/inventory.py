"""The parking inventory: each commune's streets, zones and spaces, one TOML file per commune in
`configs/parking/<insee>.toml` (or the folder $CITYGATE_PARKING names). Pure: parsed and
validated once, at start; every mistake is an InventoryError naming the file and the key.

    commune = "21231"
    gateway = "gw-dijon-lora"          # the gateway whose lorawan-chirpstack bus hears these sensors
    [[zone]]
    id = "dijon-zb-centre"
    name = "Zone bleue centre-ville"
    category = "blue_zone"             # pay_zone | blue_zone | delivery_bay | disabled_bay
    max_stay_min = 90                  # a blue zone's limit (required there): longer is an overstay
    [[street]]
    id = "dijon-liberte"
    name = "Rue de la Liberté"
    lat = 47.3220
    lon = 5.0395
    [[street.spaces]]                  # a run of spaces of one zone: ids <street>-001, -002, ...
    zone = "dijon-zb-centre"
    count = 12
    model = "bosch-pls"                # the sensor model (the simulator uses it; the agent's bus config says it too)

A space's id is `pk-<street id>-<nnn>`, numbered along the street: it is the device name the
agent's bus gives the space's sensor. No vehicle is ever named: a space is occupied or not.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector.errors import CollectorError

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "configs" / "parking"
ENV = "CITYGATE_PARKING"
CATEGORIES = ("pay_zone", "blue_zone", "delivery_bay", "disabled_bay")
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_INSEE = re.compile(r"\d{5}|2[AB]\d{3}")


class InventoryError(CollectorError):
    def __init__(self, file: Path | str, key: str, reason: str) -> None:
        super().__init__(f"{file}: {key}: {reason}")
        self.file, self.key, self.reason = str(file), key, reason


@dataclass(frozen=True, slots=True)
class Zone:
    id: str
    name: str
    category: str
    max_stay_min: int | None


@dataclass(frozen=True, slots=True)
class Street:
    id: str
    name: str
    commune: str
    gateway: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Space:
    id: str
    street: str
    zone: str
    gateway: str
    model: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Inventory:
    zones: Mapping[str, Zone]
    streets: Mapping[str, Street]
    spaces: Mapping[str, Space]  # by space id, in file order

    def gateways(self) -> set[str]:
        return {s.gateway for s in self.streets.values()}


EMPTY = Inventory({}, {}, {})


class _Table:
    def __init__(self, file: Path, key: str, raw: Any) -> None:
        if not isinstance(raw, dict):
            raise InventoryError(file, key, "expected a table")
        self.file, self.key, self.raw = file, key, raw

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if name not in self.raw:
            if default is ...:
                raise InventoryError(self.file, f"{self.key}.{name}", "missing")
            return default
        v = self.raw[name]
        if isinstance(v, bool) or not isinstance(v, kind):
            raise InventoryError(self.file, f"{self.key}.{name}", f"unexpected {type(v).__name__}: {v!r}")
        return v

    def ident(self, name: str) -> str:
        v = self.get(name, str)
        if not _ID.fullmatch(v):
            raise InventoryError(self.file, f"{self.key}.{name}", f"not an id (a-z, 0-9, '-'): {v!r}")
        return str(v)

    def tables(self, name: str) -> list[Any]:
        v = self.get(name, list, [])
        return list(v)


def _zone(file: Path, key: str, raw: Any) -> Zone:
    t = _Table(file, key, raw)
    category = t.get("category", str)
    if category not in CATEGORIES:
        raise InventoryError(file, f"{key}.category", f"expected one of {', '.join(CATEGORIES)}, got {category!r}")
    limit = t.get("max_stay_min", int, None)
    if category == "blue_zone" and limit is None:
        raise InventoryError(file, f"{key}.max_stay_min", "a blue zone needs its time limit")
    if limit is not None and not 1 <= limit <= 7 * 24 * 60:
        raise InventoryError(file, f"{key}.max_stay_min", f"{limit} is out of range [1, 10080]")
    return Zone(t.ident("id"), t.get("name", str, ""), category, limit)


def _street(file: Path, key: str, raw: Any, commune: str, gateway: str, zones: Mapping[str, Zone],
            spaces: dict[str, Space]) -> Street:
    t = _Table(file, key, raw)
    lat, lon = float(t.get("lat", (int, float))), float(t.get("lon", (int, float)))
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise InventoryError(file, key, f"({lat}, {lon}) is not a position")
    street = Street(t.ident("id"), t.get("name", str), commune, t.get("gateway", str, gateway), lat, lon)
    n = 0
    for i, run in enumerate(t.tables("spaces")):
        r = _Table(file, f"{key}.spaces[{i}]", run)
        zone = r.get("zone", str)
        if zone not in zones:
            raise InventoryError(file, f"{r.key}.zone", f"no zone {zone!r} in this file")
        count = r.get("count", int)
        if not 1 <= count <= 999:
            raise InventoryError(file, f"{r.key}.count", f"{count} is out of range [1, 999]")
        model = r.get("model", str, "bosch-pls")
        for _ in range(count):
            n += 1
            if n > 999:
                raise InventoryError(file, key, "more than 999 spaces in one street")
            # spaces spread along the street, a few metres apart, so each has its own point
            sid = f"pk-{street.id}-{n:03d}"
            spaces[sid] = Space(sid, street.id, zone, street.gateway, model, round(lat + n * 0.00004, 6),
                                round(lon + n * 0.00004, 6))
    if n == 0:
        raise InventoryError(file, f"{key}.spaces", "a street needs at least one space")
    return street


def parse_file(file: Path, zones: dict[str, Zone], streets: dict[str, Street], spaces: dict[str, Space]) -> None:
    try:
        doc = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InventoryError(file, "", f"cannot read: {exc}") from None
    top = _Table(file, "", doc)
    commune = top.get("commune", str)
    if not _INSEE.fullmatch(commune):
        raise InventoryError(file, "commune", f"not an INSEE code: {commune!r}")
    gateway = top.get("gateway", str)
    for i, raw in enumerate(top.tables("zone")):
        z = _zone(file, f"zone[{i}]", raw)
        if z.id in zones:
            raise InventoryError(file, f"zone[{i}].id", f"zone {z.id!r} is defined twice")
        zones[z.id] = z
    for i, raw in enumerate(top.tables("street")):
        s = _street(file, f"street[{i}]", raw, commune, gateway, zones, spaces)
        if s.id in streets:
            raise InventoryError(file, f"street[{i}].id", f"street {s.id!r} is defined twice")
        streets[s.id] = s


def load_inventory(folder: Path | None = None) -> Inventory:
    """Every `*.toml` of the folder (default: $CITYGATE_PARKING, else configs/parking)."""
    folder = folder or Path(os.environ.get(ENV) or DEFAULT_DIR)
    zones: dict[str, Zone] = {}
    streets: dict[str, Street] = {}
    spaces: dict[str, Space] = {}
    for file in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
        parse_file(file, zones, streets, spaces)
    return Inventory(zones, streets, spaces)
