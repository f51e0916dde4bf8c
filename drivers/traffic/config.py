"""Intersection, plan and table files (TOML) -> typed objects; structural mistakes -> ConfigError.

This checks shape (types, names, references, ranges the register map can carry); whether the
content is lawful is `validate.py`'s job, so a file with a 2 s amber loads and is then refused
with the rule it breaks. Layout (see configs/intersections/ for complete files)::

    [intersection]
    id = "dijon-jaures-tram"
    name = "Avenue Jean Jaurès × Rue ..."
    commune = "21231"                  # INSEE code
    setting = "urban"                  # descriptive: the amber follows each group's speed limit
    groups = [
      # speed_limit_kmh: <= 50 -> amber 3 s, above -> 5 s; not given counts as above 50 (the safe side)
      { id = "V1", kind = "vehicle", speed_limit_kmh = 50, label = "Jaurès northbound" },
      { id = "T1", kind = "tram", speed_limit_kmh = 30 },
      # gives_way_to: tram/bus groups with their own signals; may wait 240 s in a `priority` plan
      { id = "V3", kind = "vehicle", speed_limit_kmh = 50, gives_way_to = ["T1"] },
      # pedestrians: no amber; crossing_m = crosswalk length, clearance_speed_m_s defaults to 1.0
      { id = "P1", kind = "pedestrian", crossing_m = 12, clearance_speed_m_s = 1.0 },
    ]
    conflicts = [                      # both directions of every conflict
      { from = "V1", to = "P1", clearance_m = 12 },   # intergreen = amber + max(2, ceil(12 m / 10 m/s))
      { from = "P1", to = "V1", intergreen_s = 14 },  # or given (then amber + 2 s at least)
    ]

    [[plan]]
    number = 1                         # 1..255
    name = "day"
    cycle_s = 80
    offset_s = 0
    priority = false                   # true: runs only on cycles serving a tram/bus call, never from a table
    stages = [ { groups = ["V1"], green_s = 30, interstage_s = 14 }, ... ]

    [[day_table]]
    id = "weekday"
    switches = [ { at = "00:00", plan = 3 }, { at = "06:30", plan = 1 }, { at = "01:30", position = "yellow_flash" } ]

    [week]                             # monday .. sunday -> day table
    [special_days]                     # "2026-07-14" = "sunday"

    [counting]                         # detector fault thresholds (drivers/traffic/detectors.py)
    [[detector]]                       # id, approach, lane, pair: traffic counts, no part of the safety check
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Any

from drivers.conf import ConfigTable
from drivers.errors import ConfigError
from drivers.traffic.detectors import Counting, Detector, parse_detectors
from drivers.traffic.model import (
    MAX_GROUPS,
    MAX_PLAN_NUMBER,
    PEDESTRIAN_CLEARANCE_SPEED_M_S,
    Conflict,
    GroupKind,
    Intersection,
    Plan,
    Position,
    Setting,
    SignalGroup,
    Stage,
    clearance_red_s,
    required_amber_s,
)
from drivers.traffic.tables import WEEKDAYS, DayTable, Schedule, Switch

_GROUP_ID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
#: Register-map limits (one word per stage count, switch count).
MAX_STAGES = 16
MAX_SWITCHES = 48
_SECTIONS = ("intersection", "plan", "day_table", "week", "special_days", "detector", "counting")


@dataclass(frozen=True)
class Timings:
    """One intersection with its plans and its time-of-day and week tables."""

    intersection: Intersection
    plans: tuple[Plan, ...]
    schedule: Schedule
    #: the detectors and their fault thresholds: counting only, no part of what the controller checks
    detectors: tuple[Detector, ...] = dataclasses.field(default=(), compare=False)
    counting: Counting = dataclasses.field(default_factory=Counting, compare=False)

    def plan(self, number: int) -> Plan | None:
        return next((p for p in self.plans if p.number == number), None)


def load_timings(path: Path) -> Timings:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    return parse_timings(doc)


def parse_timings(doc: Mapping[str, Any]) -> Timings:
    """Build Timings from a parsed document (a TOML file, or a pushed JSON document of the same shape)."""
    for key in doc:
        if key not in _SECTIONS:
            raise ConfigError(key, f"unknown section; known: {', '.join(_SECTIONS)}")
    if "intersection" not in doc:
        raise ConfigError("intersection", "missing")
    ix = _intersection(doc["intersection"])
    plans = _plans(doc.get("plan"), ix)
    tables = _day_tables(doc.get("day_table"))
    week = _week(doc.get("week"), tables)
    special = _special_days(doc.get("special_days", {}), tables)
    detectors, counting = parse_detectors(doc.get("detector"), doc.get("counting"))
    return Timings(ix, plans, Schedule(tables, week, special), detectors, counting)


def _list(raw: Any, key: str, *, lo: int, hi: int) -> list[Any]:
    if not isinstance(raw, list):
        raise ConfigError(key, "expected an array")
    if not lo <= len(raw) <= hi:
        raise ConfigError(key, f"{len(raw)} entries, expected {lo} to {hi}")
    return raw


def _array(t: ConfigTable, name: str, *, lo: int, hi: int) -> list[Any]:
    """An array member of `t`: missing counts as empty, which `lo` may refuse."""
    t.used.add(name)
    key = f"{t.key}.{name}"
    if name not in t.raw and lo > 0:
        raise ConfigError(key, "missing")
    return _list(t.raw.get(name, []), key, lo=lo, hi=hi)


def _required_int(t: ConfigTable, name: str, *, lo: int, hi: int) -> int:
    t.used.add(name)
    key = f"{t.key}.{name}"
    if name not in t.raw:
        raise ConfigError(key, "missing")
    value = t.raw[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, f"expected an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ConfigError(key, f"{value} is out of range [{lo}, {hi}]")
    return value


def _intersection(raw: Any) -> Intersection:
    t = ConfigTable(raw, "intersection")
    ix_id = t.text("id", required=True)
    name = t.text("name", ix_id)
    commune = t.text("commune", "")
    setting_text = t.text("setting", required=True)
    if setting_text not in tuple(Setting):
        raise ConfigError("intersection.setting", f"{setting_text!r}: expected 'urban' or 'rural'")
    setting = Setting(setting_text)
    groups: list[SignalGroup] = []
    yields: dict[str, tuple[str, list[Any]]] = {}
    for i, graw in enumerate(_array(t, "groups", lo=1, hi=MAX_GROUPS)):
        group, gives_way = _group(ConfigTable(graw, f"intersection.groups[{i}]"), groups)
        groups.append(group)
        if gives_way is not None:
            yields[group.id] = gives_way
    by_id = _with_yields({g.id: g for g in groups}, yields)
    groups = [by_id[g.id] for g in groups]
    matrix: dict[tuple[str, str], Conflict] = {}
    for i, craw in enumerate(_array(t, "conflicts", lo=0, hi=MAX_GROUPS**2)):
        conflict = _conflict(ConfigTable(craw, f"intersection.conflicts[{i}]"), by_id, matrix)
        matrix[(conflict.from_group, conflict.to_group)] = conflict
    t.done()
    for gid, (key, _) in yields.items():
        for name in by_id[gid].gives_way_to:
            if (gid, name) not in matrix and (name, gid) not in matrix:
                raise ConfigError(key, f"{gid} gives way to {name} but the conflict matrix has no conflict between them")
    return Intersection(ix_id, name, commune, setting, tuple(groups), matrix)


def _with_yields(by_id: dict[str, SignalGroup], yields: dict[str, tuple[str, list[Any]]]) -> dict[str, SignalGroup]:
    """The groups with the `gives_way_to` each names, checked now that every group is known."""
    for gid, (key, names) in yields.items():
        for name in names:
            other = by_id.get(name) if isinstance(name, str) else None
            if other is None or other.kind not in (GroupKind.TRAM, GroupKind.BUS) or name == gid:
                raise ConfigError(key, f"{name!r}: a group gives way only to another group of kind tram or bus "
                                       "(public transport with its own signals)")
        by_id[gid] = dataclasses.replace(by_id[gid], gives_way_to=frozenset(names))
    return by_id


def _conflict(ct: ConfigTable, by_id: Mapping[str, SignalGroup], matrix: Mapping[tuple[str, str], Conflict]) -> Conflict:
    pair: list[str] = []
    for end in ("from", "to"):
        gid = ct.text(end, required=True)
        if gid not in by_id:
            raise ConfigError(f"{ct.key}.{end}", f"unknown group {gid!r}")
        pair.append(gid)
    a, b = pair
    if a == b:
        raise ConfigError(ct.key, f"a group ({a}) cannot conflict with itself")
    if (a, b) in matrix:
        raise ConfigError(ct.key, f"conflict {a}→{b} given twice")
    has_m, has_ig = "clearance_m" in ct.raw, "intergreen_s" in ct.raw
    if not (has_m or has_ig):
        raise ConfigError(ct.key, "give clearance_m (the distance to clear) or intergreen_s, or both")
    distance = ct.number("clearance_m", 0.0, lo=0.0, hi=1000.0) if has_m else None
    if has_ig:
        ig = _required_int(ct, "intergreen_s", lo=0, hi=300)
    else:
        assert distance is not None
        ig = by_id[a].amber_s + clearance_red_s(by_id[a].kind, distance)
    ct.done()
    return Conflict(a, b, ig, distance, given=has_ig)


def _group(gt: ConfigTable, before: list[SignalGroup]) -> tuple[SignalGroup, tuple[str, list[Any]] | None]:
    """One signal group; its `gives_way_to` names are returned raw, to check once every group is known."""
    gid = gt.text("id", required=True)
    if not _GROUP_ID.match(gid):
        raise ConfigError(f"{gt.key}.id", f"{gid!r}: letters, digits, '_' and '-' only, 1-16 characters")
    if any(g.id == gid for g in before):
        raise ConfigError(f"{gt.key}.id", f"group {gid} defined twice")
    kind_text = gt.text("kind", required=True)
    if kind_text not in tuple(GroupKind):
        raise ConfigError(f"{gt.key}.kind", f"{kind_text!r}: expected one of {', '.join(GroupKind)}")
    kind = GroupKind(kind_text)
    pedestrian = kind is GroupKind.PEDESTRIAN
    for key, only_for in (("speed_limit_kmh", not pedestrian), ("crossing_m", pedestrian),
                          ("clearance_speed_m_s", pedestrian)):
        if key in gt.raw and not only_for:
            what = "vehicle, tram and bus groups (an approach)" if key == "speed_limit_kmh" else "pedestrian groups"
            raise ConfigError(f"{gt.key}.{key}", f"only for {what}; group {gid} is {kind}")
    speed: int | None = None
    if "speed_limit_kmh" in gt.raw:
        speed = _required_int(gt, "speed_limit_kmh", lo=5, hi=130)
    crossing = gt.number("crossing_m", 0.0, lo=0.5, hi=100.0) if "crossing_m" in gt.raw else None
    clearance_speed = gt.number("clearance_speed_m_s", PEDESTRIAN_CLEARANCE_SPEED_M_S, lo=0.3, hi=2.0)
    amber = gt.integer("amber_s", required_amber_s(kind, speed), lo=0, hi=30)
    gives_way: tuple[str, list[Any]] | None = None
    if "gives_way_to" in gt.raw:
        gives_way = (f"{gt.key}.gives_way_to", _array(gt, "gives_way_to", lo=1, hi=MAX_GROUPS))
    group = SignalGroup(gid, kind, amber, gt.text("label", ""), speed, crossing, clearance_speed)
    gt.done()
    return group, gives_way


def _plans(raw: Any, ix: Intersection) -> tuple[Plan, ...]:
    if raw is None:
        raise ConfigError("plan", "missing: at least one [[plan]]")
    plans: list[Plan] = []
    for i, praw in enumerate(_list(raw, "plan", lo=1, hi=MAX_PLAN_NUMBER)):
        t = ConfigTable(praw, f"plan[{i}]")
        number = _required_int(t, "number", lo=1, hi=MAX_PLAN_NUMBER)
        if "public_transport_wait" in t.raw:
            # A whole-plan flag lifted the limit for every group, pedestrians included, on every cycle.
            raise ConfigError(f"{t.key}.public_transport_wait", "no longer accepted: the 240 s wait is for the groups "
                              "that give way to a tram or bus (group key gives_way_to), in a plan that serves its "
                              "priority call (plan key priority = true)")
        if any(p.number == number for p in plans):
            raise ConfigError(f"{t.key}.number", f"plan {number} defined twice")
        stages: list[Stage] = []
        for k, sraw in enumerate(_array(t, "stages", lo=1, hi=MAX_STAGES)):
            st = ConfigTable(sraw, f"{t.key}.stages[{k}]")
            members = _array(st, "groups", lo=1, hi=MAX_GROUPS)
            for gid in members:
                if not isinstance(gid, str) or gid not in ix.index:
                    raise ConfigError(f"{st.key}.groups", f"unknown group {gid!r}")
            if len(set(members)) != len(members):
                raise ConfigError(f"{st.key}.groups", "a group is listed twice")
            stages.append(
                Stage(
                    frozenset(members),
                    _required_int(st, "green_s", lo=1, hi=3600),
                    _required_int(st, "interstage_s", lo=0, hi=3600),
                    st.text("name", ""),
                )
            )
            st.done()
        plans.append(
            Plan(
                number=number,
                name=t.text("name", f"plan {number}"),
                cycle_s=_required_int(t, "cycle_s", lo=1, hi=3600),
                # Any offset loads; validate.py says when it is outside [0, cycle).
                offset_s=_required_int(t, "offset_s", lo=-3600, hi=3600),
                stages=tuple(stages),
                priority=t.boolean("priority", False),
            )
        )
        t.done()
    return tuple(plans)


def _day_tables(raw: Any) -> dict[str, DayTable]:
    if raw is None:
        raise ConfigError("day_table", "missing: at least one [[day_table]]")
    tables: dict[str, DayTable] = {}
    for i, traw in enumerate(_list(raw, "day_table", lo=1, hi=32)):
        t = ConfigTable(traw, f"day_table[{i}]")
        tid = t.text("id", required=True)
        if tid in tables:
            raise ConfigError(f"{t.key}.id", f"day table {tid!r} defined twice")
        switches: list[Switch] = []
        for k, sraw in enumerate(_array(t, "switches", lo=1, hi=MAX_SWITCHES)):
            st = ConfigTable(sraw, f"{t.key}.switches[{k}]")
            text = st.text("at", required=True)
            m = _HHMM.match(text)
            if not m:
                raise ConfigError(f"{st.key}.at", f"{text!r}: expected local time HH:MM")
            at = time(int(m[1]), int(m[2]))
            if switches and at <= switches[-1].at:
                raise ConfigError(f"{st.key}.at", f"{text} is not after {switches[-1].at:%H:%M}: switch points ascend")
            pos_text = st.text("position", "normal")
            if pos_text not in tuple(Position):
                raise ConfigError(f"{st.key}.position", f"{pos_text!r}: expected normal, yellow_flash or dark")
            position = Position(pos_text)
            plan: int | None = None
            if "plan" in st.raw:
                if position is not Position.NORMAL:
                    raise ConfigError(f"{st.key}.plan", f"a {position} switch point names no plan")
                plan = _required_int(st, "plan", lo=1, hi=MAX_PLAN_NUMBER)
            elif position is Position.NORMAL:
                raise ConfigError(f"{st.key}.plan", "missing: a normal switch point names its plan")
            switches.append(Switch(at, plan, position))
            st.done()
        tables[tid] = DayTable(tid, tuple(switches))
        t.done()
    return tables


def _week(raw: Any, tables: Mapping[str, DayTable]) -> tuple[str, str, str, str, str, str, str]:
    if raw is None:
        raise ConfigError("week", "missing: name the day table of each weekday")
    t = ConfigTable(raw, "week")
    days = []
    for day in WEEKDAYS:
        tid = t.text(day, required=True)
        if tid not in tables:
            raise ConfigError(f"week.{day}", f"unknown day table {tid!r}")
        days.append(tid)
    t.done()
    return (days[0], days[1], days[2], days[3], days[4], days[5], days[6])


def _special_days(raw: Any, tables: Mapping[str, DayTable]) -> dict[date, str]:
    if not isinstance(raw, dict):
        raise ConfigError("special_days", "expected a table of \"YYYY-MM-DD\" = day table")
    out: dict[date, str] = {}
    for key, tid in raw.items():
        # TOML turns a bare 2026-07-14 key into text, and a 2026-07-14 value into a date.
        try:
            day = date.fromisoformat(str(key))
        except ValueError:
            raise ConfigError(f"special_days.{key}", "expected a date YYYY-MM-DD") from None
        if not isinstance(tid, str) or tid not in tables:
            raise ConfigError(f"special_days.{key}", f"unknown day table {tid!r}")
        out[day] = tid
    return out
