"""The `[lighting]` table of the agent config, validated into a LightingConfig.

Example::

    [lighting]
    programs = ["../lighting/common.toml", "../lighting/dijon.toml"]  # relative to this file
    timezone = "Europe/Paris"          # the commune's zone: where the mayor's hours are read
    latitude = 47.322
    longitude = 5.041
    rated_power_w = 60.0               # per lamp, unless a group says otherwise
    time_source = "kernel"             # "kernel": ask adjtimex whether NTP keeps the clock; "none": trust it
    clock_lost_after_s = 604800        # time source lost longer than this: safe all-night program
    report_interval_s = 3600           # the cabinet's burn hours and energy, as a sample
    lamp_report_interval_s = 86400     # each lamp's burn hours and energy, as a sample
    max_reading_gap_s = 900            # readings further apart are not bridged for burn time (a silent lamp)
    max_switch_points = 16             # what the lamp controllers support
    safe_program = "all-night"         # optional; default: 100 % from sunset − 30 to sunrise + 30

    [[lighting.group]]
    name = "avenue-du-drapeau"
    lamps = ["lamp-1", "lamp-2"]
    calendar = "dijon"                 # omitted: the default light state, 100 %
    rated_power_w = 40.0
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drivers.conf import ConfigTable
from drivers.errors import ConfigError
from edge_agent.lighting.astro import Site
from edge_agent.lighting.model import (
    SAFE_ALL_NIGHT,
    LightingError,
    Limits,
    Program,
    ProgramSet,
    merge_docs,
    parse_program_set,
)


@dataclass(frozen=True)
class GroupConfig:
    name: str
    lamps: tuple[str, ...]
    calendar: str | None
    rated_power_w: float


@dataclass(frozen=True)
class LightingConfig:
    site: Site
    programs: ProgramSet
    groups: tuple[GroupConfig, ...]
    limits: Limits = field(default_factory=Limits)
    #: "kernel" (adjtimex says whether NTP/chrony/GPS disciplines the clock) or "none" (only the year is checked)
    time_source: str = "kernel"
    clock_lost_after_s: float = 604_800.0
    report_interval_s: float = 3600.0
    lamp_report_interval_s: float = 86_400.0
    #: burn time between two readings further apart than this is not counted (energy counters bridge any gap)
    max_reading_gap_s: float = 900.0
    safe_program: Program = SAFE_ALL_NIGHT
    #: after a command, samples younger than this are not judged (the lamp may still be fading)
    fault_settle_s: float = 10.0
    #: actual level further than this from the commanded one is a dimming failure
    dimming_tolerance_pct: int = 5
    #: a lamp whose command failed is tried again after this long
    retry_s: float = 30.0

    def group(self, name: str) -> GroupConfig:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(name)


def load_programs(files: Sequence[Path], limits: Limits) -> ProgramSet:
    """Read and validate program files (TOML, `[[program]]` and `[[calendar]]`); raise LightingError or OSError."""
    docs = []
    for f in files:
        try:
            docs.append(tomllib.loads(f.read_text(encoding="utf-8")))
        except tomllib.TOMLDecodeError as exc:
            raise LightingError("document", str(f), "toml", f"not valid TOML: {exc}") from None
    return parse_program_set(merge_docs(docs), ", ".join(str(f) for f in files), limits)


def check_calendars(programs: ProgramSet, groups: Sequence[GroupConfig]) -> None:
    """Every group's calendar must exist in the program set."""
    for g in groups:
        if g.calendar is not None and g.calendar not in programs.calendars:
            raise LightingError(
                "calendar", g.calendar, "unknown_calendar",
                f"group {g.name!r} uses it, but it is not defined (known: {', '.join(sorted(programs.calendars)) or 'none'})",
            )


def _string_list(t: ConfigTable, name: str, *, required: bool) -> list[str]:
    t.used.add(name)
    key = f"{t.key}.{name}"
    value = t.raw.get(name)
    if value is None:
        if required:
            raise ConfigError(key, "missing")
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(key, "expected a string or an array of non-empty strings")
    return list(value)


def _site(t: ConfigTable) -> Site:
    key = t.key
    tz_name = t.text("timezone", "Europe/Paris")
    try:
        zone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{key}.timezone", f"{tz_name!r} is not a known IANA time zone") from None
    lat = t.number("latitude", 0.0, lo=-90, hi=90) if "latitude" in t.raw else None
    lon = t.number("longitude", 0.0, lo=-180, hi=180) if "longitude" in t.raw else None
    if lat is None or lon is None:
        raise ConfigError(f"{key}.{'latitude' if lat is None else 'longitude'}", "missing (sun times need the site)")
    return Site(lat, lon, zone)


def _programs(t: ConfigTable, config_dir: Path, limits: Limits) -> ProgramSet:
    key = t.key
    files = [p if p.is_absolute() else config_dir / p for p in map(Path, _string_list(t, "programs", required=True))]
    for f in files:
        if not f.is_file():
            raise ConfigError(f"{key}.programs", f"{f} does not exist")
    try:
        return load_programs(files, limits)
    except LightingError as exc:
        raise ConfigError(f"{key}.programs", str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{key}.programs", f"cannot read: {exc}") from None


def _groups(t: ConfigTable, programs: ProgramSet, rated_default: float) -> list[GroupConfig]:
    key = t.key
    t.used.add("group")
    raw_groups = t.raw.get("group", [])
    if not isinstance(raw_groups, list):
        raise ConfigError(f"{key}.group", "expected an array of tables ([[lighting.group]])")
    groups: list[GroupConfig] = []
    owner: dict[str, str] = {}
    for i, rg in enumerate(raw_groups):
        group = _group(ConfigTable(rg, f"{key}.group[{i}]"), programs, rated_default, groups, owner)
        groups.append(group)
    for g_ in groups:
        if g_.name in owner:
            raise ConfigError(f"{key}.group", f"{g_.name!r} is both a group and a lamp: overrides would be ambiguous")
    return groups


def _group(g: ConfigTable, programs: ProgramSet, rated_default: float, groups: list[GroupConfig],
           owner: dict[str, str]) -> GroupConfig:
    """One [[lighting.group]]; `owner` (lamp -> group) gains its lamps."""
    gkey = g.key
    name = g.text("name", required=True)
    if not name or any(x.name == name for x in groups):
        raise ConfigError(f"{gkey}.name", f"{name!r}: group names must be non-empty and unique")
    lamps = _string_list(g, "lamps", required=True)
    if not lamps:
        raise ConfigError(f"{gkey}.lamps", "a group needs at least one lamp")
    for lamp in lamps:
        if lamp in owner:
            raise ConfigError(f"{gkey}.lamps", f"lamp {lamp!r} is already in group {owner[lamp]!r}")
        owner[lamp] = name
    calendar = g.text("calendar")
    if calendar is not None and calendar not in programs.calendars:
        raise ConfigError(
            f"{gkey}.calendar",
            f"calendar {calendar!r} is not defined (known: {', '.join(sorted(programs.calendars)) or 'none'})",
        )
    rated = g.number("rated_power_w", rated_default, lo=0.1, hi=10_000)
    g.done()
    return GroupConfig(name, tuple(lamps), calendar, rated)


def from_config(raw: Mapping[str, Any], key: str, config_dir: Path) -> LightingConfig:
    """Validate the `[lighting]` table; raise ConfigError naming the key and the reason."""
    t = ConfigTable(dict(raw), key)
    site = _site(t)
    limits = Limits(max_switch_points=t.integer("max_switch_points", 16, lo=1, hi=256))
    rated_default = t.number("rated_power_w", 60.0, lo=0.1, hi=10_000)
    programs = _programs(t, config_dir, limits)

    safe_name = t.text("safe_program")
    if safe_name is not None and safe_name not in programs.programs:
        raise ConfigError(f"{key}.safe_program", f"program {safe_name!r} is not defined in the program files")
    safe = programs.programs[safe_name] if safe_name is not None else SAFE_ALL_NIGHT

    time_source = t.text("time_source", "kernel")
    if time_source not in ("kernel", "none"):
        raise ConfigError(f"{key}.time_source", f"{time_source!r}: expected 'kernel' or 'none'")
    groups = _groups(t, programs, rated_default)

    cfg = LightingConfig(
        site=site,
        programs=programs,
        groups=tuple(groups),
        limits=limits,
        time_source=time_source,
        clock_lost_after_s=t.number("clock_lost_after_s", 604_800.0, lo=60, hi=365 * 86_400),
        report_interval_s=t.number("report_interval_s", 3600.0, lo=10, hi=86_400),
        lamp_report_interval_s=t.number("lamp_report_interval_s", 86_400.0, lo=10, hi=7 * 86_400),
        max_reading_gap_s=t.number("max_reading_gap_s", 900.0, lo=1, hi=86_400),
        safe_program=safe,
    )
    t.done()
    return cfg
