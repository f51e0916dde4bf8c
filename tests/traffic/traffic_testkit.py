"""Shared by the traffic tests: a small lawful intersection to break one rule at a time, and helpers."""

from __future__ import annotations

import asyncio
import copy
import time
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from drivers.traffic.config import Timings, parse_timings
from drivers.traffic.validate import Violation

PARIS = ZoneInfo("Europe/Paris")
REPO = Path(__file__).resolve().parents[2]
DIJON = REPO / "configs" / "intersections" / "dijon-jaures-tram.toml"
RURAL = REPO / "configs" / "intersections" / "breteniere-rural.toml"

# V1 and V2 cross (both limited to 50 km/h: amber 3 s); P1 crosses V2's road (a 7 m crosswalk). Intergreens from the distances:
#   V1→V2 20 m: 3 + 2 = 5 s; V2→V1 20 m: 5 s; V2→P1 4 m: 3 + 2 = 5 s; P1→V2 8 m: 0 + 8 = 8 s.
# Stage 1 (V1, P1) 30 s, interstage 8 s; stage 2 (V2) 20 s, interstage 5 s; cycle 63 s.
_SMALL: dict[str, Any] = {
    "intersection": {
        "id": "test-small",
        "name": "small test crossing",
        "commune": "21231",
        "setting": "urban",
        "groups": [
            {"id": "V1", "kind": "vehicle", "speed_limit_kmh": 50},
            {"id": "V2", "kind": "vehicle", "speed_limit_kmh": 50},
            {"id": "P1", "kind": "pedestrian", "crossing_m": 7},
        ],
        "conflicts": [
            {"from": "V1", "to": "V2", "clearance_m": 20},
            {"from": "V2", "to": "V1", "clearance_m": 20},
            {"from": "V2", "to": "P1", "clearance_m": 4},
            {"from": "P1", "to": "V2", "clearance_m": 8},
        ],
    },
    "plan": [
        {
            "number": 1,
            "name": "day",
            "cycle_s": 63,
            "offset_s": 0,
            "stages": [
                {"groups": ["V1", "P1"], "green_s": 30, "interstage_s": 8},
                {"groups": ["V2"], "green_s": 20, "interstage_s": 5},
            ],
        },
    ],
    "day_table": [{"id": "everyday", "switches": [{"at": "00:00", "plan": 1}]}],
    "week": {d: "everyday" for d in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")},
}


def small_doc() -> dict[str, Any]:
    """A fresh copy of the small lawful intersection, to modify."""
    return copy.deepcopy(_SMALL)


def write_toml(path: Path, doc: dict[str, Any]) -> Path:
    """Write a document of the small crossing's shape as an intersection TOML file."""

    def array(items: list[dict[str, Any]]) -> str:
        rows = ("  { " + ", ".join(f"{k} = {orjson.dumps(v).decode()}" for k, v in i.items()) + " },\n" for i in items)
        return "[\n" + "".join(rows) + "]"

    ix = doc["intersection"]
    lines = [f"[intersection]\nid = \"{ix['id']}\"\nsetting = \"{ix['setting']}\"",
             "groups = " + array(ix["groups"]), "conflicts = " + array(ix["conflicts"])]
    for p in doc["plan"]:
        lines.append(f"[[plan]]\nnumber = {p['number']}\ncycle_s = {p['cycle_s']}\noffset_s = {p['offset_s']}")
        lines.append("stages = " + array(p["stages"]))
    for t in doc["day_table"]:
        lines.append(f"[[day_table]]\nid = \"{t['id']}\"\nswitches = " + array(t["switches"]))
    lines.append("[week]\n" + "\n".join(f'{d} = "{t}"' for d, t in doc["week"].items()))
    path.write_text("\n".join(lines) + "\n")
    assert tomllib.loads(path.read_text()) is not None
    return path


def small() -> Timings:
    return parse_timings(small_doc())


def only(violations: list[Violation], rule: str) -> Violation:
    """The single violation of `rule`; fails with all of them otherwise."""
    found = [v for v in violations if v.rule == rule]
    assert len(found) == 1, f"expected one {rule!r}, got: {[v.message for v in violations]}"
    return found[0]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


async def until(cond: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll `cond` in the event loop until it holds (robust on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)
