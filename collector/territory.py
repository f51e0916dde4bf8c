"""The territory: the metropolis's communes (INSEE code, name, centre) and its former communes.

Loaded from `configs/territory.json` and validated once at start. A former commune's code
(data from gateways installed before the 2019 merger into Neuilly-Crimolois) resolves to the
commune it merged into, so its data aggregates there.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector.errors import CollectorError

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "configs" / "territory.json"
ENV = "CITYGATE_TERRITORY"
_INSEE = re.compile(r"^(\d{5}|2[AB]\d{3})$")  # Corsica's codes hold a letter


class TerritoryError(CollectorError):
    def __init__(self, file: Path | str, key: str, reason: str) -> None:
        super().__init__(f"{file}: {key}: {reason}" if key else f"{file}: {reason}")
        self.file = str(file)
        self.key = key
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Commune:
    insee: str
    name: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Territory:
    name: str
    communes: Mapping[str, Commune]  # by current INSEE code
    former: Mapping[str, str]  # former commune's INSEE code -> current code

    def resolve(self, code: str) -> Commune | None:
        """The current commune of a code (current or former); None if the territory has no such code."""
        commune = self.communes.get(code)
        if commune is not None:
            return commune
        current = self.former.get(code)
        return None if current is None else self.communes[current]


def default_path() -> Path:
    return Path(os.environ.get(ENV) or DEFAULT_PATH)


def load_territory(path: Path | None = None) -> Territory:
    file = path or default_path()
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TerritoryError(file, "", f"cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise TerritoryError(file, "", f"not valid JSON: {exc}") from None
    return parse_territory(doc, file)


def _field(obj: Mapping[str, Any], key: str, where: str, file: Path | str, kind: type) -> Any:
    value = obj.get(key)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) or (kind is str and not value):
        raise TerritoryError(file, f"{where}.{key}", f"expected a {'non-empty string' if kind is str else 'number'}")
    return value


def parse_territory(doc: Any, file: Path | str = "<territory>") -> Territory:
    if not isinstance(doc, dict):
        raise TerritoryError(file, "", "expected a JSON object")
    name = _field(doc, "territory", "", file, str)
    raw_communes = doc.get("communes")
    if not isinstance(raw_communes, list) or not raw_communes:
        raise TerritoryError(file, "communes", "expected a non-empty array")
    communes: dict[str, Commune] = {}
    for i, raw in enumerate(raw_communes):
        where = f"communes[{i}]"
        if not isinstance(raw, dict):
            raise TerritoryError(file, where, "expected an object")
        insee = _field(raw, "insee", where, file, str)
        if not _INSEE.match(insee):
            raise TerritoryError(file, f"{where}.insee", f"{insee!r} is not an INSEE commune code")
        if insee in communes:
            raise TerritoryError(file, f"{where}.insee", f"{insee} is listed twice")
        lat = _field(raw, "lat", where, file, float)
        lon = _field(raw, "lon", where, file, float)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise TerritoryError(file, where, f"centre ({lat}, {lon}) is not a position")
        communes[insee] = Commune(insee, _field(raw, "name", where, file, str), lat, lon)
    former: dict[str, str] = {}
    raw_former = doc.get("former_communes", [])
    if not isinstance(raw_former, list):
        raise TerritoryError(file, "former_communes", "expected an array")
    for i, raw in enumerate(raw_former):
        where = f"former_communes[{i}]"
        if not isinstance(raw, dict):
            raise TerritoryError(file, where, "expected an object")
        insee = _field(raw, "insee", where, file, str)
        into = _field(raw, "merged_into", where, file, str)
        if not _INSEE.match(insee):
            raise TerritoryError(file, f"{where}.insee", f"{insee!r} is not an INSEE commune code")
        if into not in communes:
            raise TerritoryError(file, f"{where}.merged_into", f"{into} is not a commune of the territory")
        if insee in communes and insee != into:
            # a merged commune's code is often kept by the new one; any other current code is a mistake
            raise TerritoryError(file, f"{where}.insee", f"{insee} is a current commune, not merged into {into}")
        if former.get(insee, into) != into:
            raise TerritoryError(file, f"{where}.insee", f"{insee} is listed as merged into two communes")
        former[insee] = into
    return Territory(name, communes, former)
