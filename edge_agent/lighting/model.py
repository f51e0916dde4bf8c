"""Lighting programs, calendars and overrides after the TALQ control model, validated at the edge.

A *program* describes one program day, which runs from 12:00 local time to 12:00 the next day,
so that one night is one unit: the calendar rule for `--07-14` governs the night of 14 to 15 July,
and switch points ascend through the night (22:00 before 05:00).

- *Active periods* (start, end): a fixed local time or an astronomical event with an offset in
  minutes (`"sunset+10"`, `"sunrise-10"`, `"dusk"`, `"dawn+5"`; dusk and dawn are civil, −6°).
  Outside every active period the lamps are off. A program without periods is active all day.
- *Switch points* (`switch_points`: fixed local times; `astro_switch_points`: astronomical): each
  sets a level that lasts until the next one; before the first point of the day the last one
  still holds (the program is a 24 h cycle). A program without switch points is at 100 %.
- A *calendar* is an ordered list of rules; the first rule that matches the program day's date
  wins, else its default program.
- An *override* (level, start, expiry) on a group or a lamp replaces the program until it expires.

Everything that breaks a rule raises LightingError naming the program (or calendar) and the rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

DAY_START = time(12, 0)
EVENTS = ("sunset", "sunrise", "dusk", "dawn")
EVENING_EVENTS = frozenset({"sunset", "dusk"})
MAX_OFFSET_MIN = 240
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_LEVEL = 100


class LightingError(ValueError):
    """A program, calendar or override that breaks a rule: names the thing (`kind` `name`) and the rule."""

    def __init__(self, kind: str, name: str, rule: str, reason: str) -> None:
        super().__init__(f"{kind} {name!r}: {reason} (rule: {rule})")
        self.kind = kind
        self.name = name
        self.rule = rule
        self.reason = reason


class UnknownTarget(LightingError):
    """No lamp (or lamp group) of that name on this gateway."""


class NotALamp(LightingError):
    """The device exists but is not a lamp controller."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What the gateway supports; a program beyond these is refused."""

    max_switch_points: int = 16
    max_periods: int = 4
    max_rules: int = 64


# --- times of day ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FixedTime:
    """A local wall-clock time; before 12:00 it falls on the morning after the program day's date."""

    at: time

    @property
    def night_order(self) -> int:
        """Minutes since the program day began at 12:00, for ordering within the night."""
        minutes = self.at.hour * 60 + self.at.minute
        return (minutes - 12 * 60) % (24 * 60)

    def __str__(self) -> str:
        return self.at.strftime("%H:%M")


@dataclass(frozen=True, slots=True)
class AstroTime:
    """An astronomical event (sunset, dusk on the program day's date; sunrise, dawn on the next) + minutes."""

    event: str
    offset_min: int = 0

    def __str__(self) -> str:
        return self.event if self.offset_min == 0 else f"{self.event}{self.offset_min:+d}"


TimeSpec = FixedTime | AstroTime

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_ASTRO = re.compile(r"^(sunset|sunrise|dusk|dawn)\s*(?:([+-])\s*(\d{1,4}))?$")


def parse_time_spec(value: Any, kind: str, name: str, what: str, *, astro: bool, fixed: bool) -> TimeSpec:
    if isinstance(value, time) and fixed:
        if value.second or value.microsecond or value.tzinfo is not None:
            raise LightingError(kind, name, "time_format", f"{what}: {value} must be a whole minute, local time")
        return FixedTime(value)
    if not isinstance(value, str):
        raise LightingError(kind, name, "time_format", f"{what}: expected a string, got {type(value).__name__}")
    text = value.strip()
    if fixed and (m := _HHMM.match(text)):
        return FixedTime(time(int(m.group(1)), int(m.group(2))))
    if astro and (m := _ASTRO.match(text)):
        offset = int(m.group(3) or 0) * (-1 if m.group(2) == "-" else 1)
        if abs(offset) > MAX_OFFSET_MIN:
            raise LightingError(
                kind, name, "offset_range", f"{what}: offset {offset:+d} min is beyond ±{MAX_OFFSET_MIN} min"
            )
        return AstroTime(m.group(1), offset)
    expected = " or ".join(
        s for s, ok in (("'HH:MM'", fixed), ("'sunset|sunrise|dusk|dawn[+-minutes]'", astro)) if ok
    )
    raise LightingError(kind, name, "time_format", f"{what}: {value!r} is not {expected}")


# --- programs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActivePeriod:
    start: TimeSpec
    end: TimeSpec


@dataclass(frozen=True, slots=True)
class SwitchPoint:
    at: TimeSpec
    level: int


@dataclass(frozen=True, slots=True)
class Program:
    name: str
    periods: tuple[ActivePeriod, ...] = ()
    switch_points: tuple[SwitchPoint, ...] = ()
    astro_switch_points: tuple[SwitchPoint, ...] = ()
    description: str = ""

    def uses_astronomy(self) -> bool:
        specs: list[TimeSpec] = [p.start for p in self.periods] + [p.end for p in self.periods]
        specs += [s.at for s in self.switch_points + self.astro_switch_points]
        return any(isinstance(s, AstroTime) for s in specs)


#: The level while nothing is assigned (TALQ default light state).
DEFAULT_PROGRAM = Program("default-light-state", description="no calendar assigned: 100 % at all times")

#: Fallback when the clock cannot be trusted but still runs: lit all night at 100 %, with a
#: half-hour margin each side so a drifting clock never leaves a street dark at dusk.
SAFE_ALL_NIGHT = Program(
    "safe-all-night",
    periods=(ActivePeriod(AstroTime("sunset", -30), AstroTime("sunrise", 30)),),
    description="clock not trusted: 100 % from sunset − 30 min to sunrise + 30 min",
)


def _level(value: Any, kind: str, name: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LightingError(kind, name, "level_range", f"{what}: level must be an integer percent, got {value!r}")
    if not 0 <= value <= 100:
        raise LightingError(kind, name, "level_range", f"{what}: level {value} % is outside 0..100")
    return value


def _table(value: Any, kind: str, name: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise LightingError(kind, name, "structure", f"{what}: expected a table, got {type(value).__name__}")
    return value


def _list(value: Any, kind: str, name: str, what: str) -> Sequence[Any]:
    if value is None:
        return ()
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise LightingError(kind, name, "structure", f"{what}: expected an array, got {type(value).__name__}")
    return value


def _known_keys(raw: Mapping[str, Any], allowed: Iterable[str], kind: str, name: str, what: str) -> None:
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise LightingError(
            kind, name, "structure", f"{what}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _name(raw: Mapping[str, Any], kind: str, index: int) -> str:
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise LightingError(kind, f"#{index}", "structure", "every entry needs a non-empty string 'name'")
    return name


def parse_program(raw: Mapping[str, Any], index: int, limits: Limits) -> Program:
    raw = _table(raw, "program", f"#{index}", "program")
    name = _name(raw, "program", index)
    _known_keys(raw, ("name", "description", "periods", "switch_points", "astro_switch_points"), "program", name, "")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise LightingError("program", name, "structure", "description must be a string")

    periods: list[ActivePeriod] = []
    for i, p in enumerate(_list(raw.get("periods"), "program", name, "periods")):
        what = f"periods[{i}]"
        p = _table(p, "program", name, what)
        _known_keys(p, ("start", "end"), "program", name, what)
        if "start" not in p or "end" not in p:
            raise LightingError("program", name, "structure", f"{what}: needs both start and end")
        start = parse_time_spec(p["start"], "program", name, f"{what}.start", astro=True, fixed=True)
        end = parse_time_spec(p["end"], "program", name, f"{what}.end", astro=True, fixed=True)
        if start == end:
            raise LightingError("program", name, "period_order", f"{what}: starts and ends at {start}")
        if isinstance(start, FixedTime) and isinstance(end, FixedTime) and end.night_order < start.night_order:
            raise LightingError(
                "program", name, "period_order",
                f"{what}: ends at {end}, before it starts at {start} (the program day runs 12:00 → 12:00)",
            )
        periods.append(ActivePeriod(start, end))
    if len(periods) > limits.max_periods:
        raise LightingError(
            "program", name, "period_limit", f"{len(periods)} active periods; this gateway supports {limits.max_periods}"
        )

    fixed: list[SwitchPoint] = []
    for i, s in enumerate(_list(raw.get("switch_points"), "program", name, "switch_points")):
        what = f"switch_points[{i}]"
        s = _table(s, "program", name, what)
        _known_keys(s, ("at", "level"), "program", name, what)
        at = parse_time_spec(s.get("at"), "program", name, f"{what}.at", astro=False, fixed=True)
        level = _level(s.get("level"), "program", name, what)
        assert isinstance(at, FixedTime)
        if fixed:
            prev = fixed[-1].at
            assert isinstance(prev, FixedTime)
            if prev.night_order == at.night_order:
                raise LightingError("program", name, "switch_point_duplicate", f"{what}: two switch points at {at}")
            if at.night_order < prev.night_order:
                raise LightingError(
                    "program", name, "switch_points_sorted",
                    f"{what}: {at} comes after {prev}, but switch points must ascend through the program day "
                    "(12:00 → 12:00, so 22:00 before 05:00)",
                )
        fixed.append(SwitchPoint(at, level))

    astro: list[SwitchPoint] = []
    for i, s in enumerate(_list(raw.get("astro_switch_points"), "program", name, "astro_switch_points")):
        what = f"astro_switch_points[{i}]"
        s = _table(s, "program", name, what)
        _known_keys(s, ("at", "level"), "program", name, what)
        at = parse_time_spec(s.get("at"), "program", name, f"{what}.at", astro=True, fixed=False)
        level = _level(s.get("level"), "program", name, what)
        if any(other.at == at for other in astro):
            raise LightingError("program", name, "switch_point_duplicate", f"{what}: two switch points at {at}")
        astro.append(SwitchPoint(at, level))

    count = len(fixed) + len(astro)
    if count > limits.max_switch_points:
        raise LightingError(
            "program", name, "switch_point_limit",
            f"{count} switch points; this gateway supports {limits.max_switch_points}",
        )
    return Program(name, tuple(periods), tuple(fixed), tuple(astro), description)


# --- calendars ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class YearlyDate:
    """`--MM-DD`: that day every year (`--02-29` only in leap years)."""

    month: int
    day: int

    def __str__(self) -> str:
        return f"--{self.month:02d}-{self.day:02d}"


DateSpec = date | YearlyDate

_YEARLY = re.compile(r"^--(\d{2})-(\d{2})$")


def _date_spec(value: Any, name: str, what: str) -> DateSpec:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        if m := _YEARLY.match(value):
            month, day = int(m.group(1)), int(m.group(2))
            try:
                date(2024, month, day)  # a leap year: accepts --02-29
            except ValueError:
                raise LightingError("calendar", name, "date_format", f"{what}: {value!r} is not a day of the year") from None
            return YearlyDate(month, day)
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise LightingError("calendar", name, "date_format", f"{what}: {value!r} is not 'YYYY-MM-DD' or '--MM-DD'")


@dataclass(frozen=True, slots=True)
class CalendarRule:
    """Matches a date when every condition it sets holds."""

    program: str
    dates: tuple[DateSpec, ...] = ()
    date_from: DateSpec | None = None
    date_to: DateSpec | None = None
    weekdays: frozenset[int] = frozenset()  # 0 = Monday
    nth: int | None = None  # 1..5, or -1 for the last such weekday of the month
    months: frozenset[int] = frozenset()

    def matches(self, day: date) -> bool:
        if self.dates and not any(_same_day(spec, day) for spec in self.dates):
            return False
        if self.date_from is not None and self.date_to is not None and not _in_range(
            self.date_from, self.date_to, day
        ):
            return False
        if self.weekdays and day.weekday() not in self.weekdays:
            return False
        if self.months and day.month not in self.months:
            return False
        if self.nth is not None:
            if self.nth > 0:
                return (day.day - 1) // 7 + 1 == self.nth
            return day.day + 7 > _last_of_month(day).day
        return True


def _same_day(spec: DateSpec, day: date) -> bool:
    if isinstance(spec, YearlyDate):
        return (day.month, day.day) == (spec.month, spec.day)
    return spec == day


def _in_range(start: DateSpec, end: DateSpec, day: date) -> bool:
    if isinstance(start, date) and isinstance(end, date):
        return start <= day <= end
    assert isinstance(start, YearlyDate) and isinstance(end, YearlyDate)
    key = (day.month, day.day)
    lo, hi = (start.month, start.day), (end.month, end.day)
    # A yearly range may run across New Year (--12-15 to --01-05).
    return lo <= key <= hi if lo <= hi else key >= lo or key <= hi


def _last_of_month(day: date) -> date:
    first_next = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return date.fromordinal(first_next.toordinal() - 1)


@dataclass(frozen=True, slots=True)
class Calendar:
    name: str
    rules: tuple[CalendarRule, ...]
    default: str

    def program_for(self, day: date) -> str:
        for rule in self.rules:
            if rule.matches(day):
                return rule.program
        return self.default


def _weekday(value: Any, name: str, what: str) -> int:
    if isinstance(value, str) and value.strip().lower()[:3] in WEEKDAYS:
        return WEEKDAYS.index(value.strip().lower()[:3])
    raise LightingError("calendar", name, "weekday", f"{what}: {value!r} is not a weekday ({', '.join(WEEKDAYS)})")


def parse_calendar(raw: Mapping[str, Any], index: int, limits: Limits) -> Calendar:
    raw = _table(raw, "calendar", f"#{index}", "calendar")
    name = _name(raw, "calendar", index)
    _known_keys(raw, ("name", "description", "rules", "default"), "calendar", name, "")
    default = raw.get("default")
    if not isinstance(default, str) or not default:
        raise LightingError("calendar", name, "default_program", "needs a 'default' program name")
    rules: list[CalendarRule] = []
    raw_rules = _list(raw.get("rules"), "calendar", name, "rules")
    if len(raw_rules) > limits.max_rules:
        raise LightingError(
            "calendar", name, "rule_limit", f"{len(raw_rules)} rules; this gateway supports {limits.max_rules}"
        )
    for i, r in enumerate(raw_rules):
        what = f"rules[{i}]"
        r = _table(r, "calendar", name, what)
        _known_keys(r, ("program", "dates", "from", "to", "weekdays", "nth", "months"), "calendar", name, what)
        program = r.get("program")
        if not isinstance(program, str) or not program:
            raise LightingError("calendar", name, "structure", f"{what}: needs a 'program' name")
        dates = tuple(_date_spec(d, name, f"{what}.dates") for d in _list(r.get("dates"), "calendar", name, what))
        date_from = _date_spec(r["from"], name, f"{what}.from") if "from" in r else None
        date_to = _date_spec(r["to"], name, f"{what}.to") if "to" in r else None
        if (date_from is None) != (date_to is None):
            raise LightingError("calendar", name, "date_range", f"{what}: give both 'from' and 'to'")
        if date_from is not None and date_to is not None:
            if type(date_from) is not type(date_to):
                raise LightingError(
                    "calendar", name, "date_range", f"{what}: 'from' and 'to' must both be dates or both '--MM-DD'"
                )
            if isinstance(date_from, date) and isinstance(date_to, date) and date_to < date_from:
                raise LightingError("calendar", name, "date_range", f"{what}: 'to' {date_to} is before 'from' {date_from}")
        weekdays = frozenset(
            _weekday(w, name, f"{what}.weekdays") for w in _list(r.get("weekdays"), "calendar", name, what)
        )
        nth = r.get("nth")
        if nth is not None:
            if isinstance(nth, bool) or not isinstance(nth, int) or nth not in (1, 2, 3, 4, 5, -1):
                raise LightingError("calendar", name, "nth_weekday", f"{what}: nth must be 1..5 or -1 (last), got {nth!r}")
            if not weekdays:
                raise LightingError("calendar", name, "nth_weekday", f"{what}: 'nth' needs 'weekdays'")
        months: set[int] = set()
        for m in _list(r.get("months"), "calendar", name, what):
            if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= 12:
                raise LightingError("calendar", name, "month", f"{what}: month {m!r} is not 1..12")
            months.add(m)
        if not (dates or date_from or weekdays or months):
            raise LightingError(
                "calendar", name, "calendar_rule", f"{what}: a rule needs a condition (use 'default' for the rest)"
            )
        rules.append(CalendarRule(program, dates, date_from, date_to, weekdays, nth, frozenset(months)))
    return Calendar(name, tuple(rules), default)


# --- the program set ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgramSet:
    """Programs and calendars that reference only each other: what the gateway runs."""

    programs: Mapping[str, Program]
    calendars: Mapping[str, Calendar]
    source: str = ""

    def program(self, name: str) -> Program:
        return self.programs[name]

    def to_doc(self) -> dict[str, Any]:
        """The document this set was parsed from, in the push format (round-trips through parse)."""
        return {
            "program": [_program_doc(p) for p in self.programs.values()],
            "calendar": [_calendar_doc(c) for c in self.calendars.values()],
        }


def parse_program_set(doc: Mapping[str, Any], source: str = "", limits: Limits | None = None) -> ProgramSet:
    """Validate a programs document (`program` and `calendar` arrays) into a ProgramSet, or raise LightingError."""
    limits = limits or Limits()
    doc = _table(doc, "document", source or "programs", "document")
    _known_keys(doc, ("program", "calendar"), "document", source or "programs", "")
    programs: dict[str, Program] = {}
    for i, raw in enumerate(_list(doc.get("program"), "document", source, "program")):
        p = parse_program(raw, i, limits)
        if p.name in programs:
            raise LightingError("program", p.name, "duplicate_name", "defined twice")
        programs[p.name] = p
    calendars: dict[str, Calendar] = {}
    for i, raw in enumerate(_list(doc.get("calendar"), "document", source, "calendar")):
        c = parse_calendar(raw, i, limits)
        if c.name in calendars:
            raise LightingError("calendar", c.name, "duplicate_name", "defined twice")
        for j, rule in enumerate(c.rules):
            if rule.program not in programs:
                raise LightingError(
                    "calendar", c.name, "unknown_program", f"rules[{j}] names program {rule.program!r}, which is not defined"
                )
        if c.default not in programs:
            raise LightingError(
                "calendar", c.name, "unknown_program", f"default program {c.default!r} is not defined"
            )
        calendars[c.name] = c
    return ProgramSet(programs, calendars, source)


def merge_docs(docs: Iterable[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Concatenate the `program` and `calendar` arrays of several documents (duplicates are caught at parse)."""
    merged: dict[str, list[Any]] = {"program": [], "calendar": []}
    for doc in docs:
        for key in merged:
            value = doc.get(key, [])
            merged[key].extend(value if isinstance(value, list) else [value])
        for key in doc:
            if key not in merged:
                merged.setdefault(key, []).append(doc[key])
    return merged


def _program_doc(p: Program) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": p.name}
    if p.description:
        doc["description"] = p.description
    if p.periods:
        doc["periods"] = [{"start": str(x.start), "end": str(x.end)} for x in p.periods]
    if p.switch_points:
        doc["switch_points"] = [{"at": str(s.at), "level": s.level} for s in p.switch_points]
    if p.astro_switch_points:
        doc["astro_switch_points"] = [{"at": str(s.at), "level": s.level} for s in p.astro_switch_points]
    return doc


def _calendar_doc(c: Calendar) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    for r in c.rules:
        rule: dict[str, Any] = {"program": r.program}
        if r.dates:
            rule["dates"] = [str(d) if isinstance(d, YearlyDate) else d.isoformat() for d in r.dates]
        if r.date_from is not None and r.date_to is not None:
            rule["from"] = str(r.date_from) if isinstance(r.date_from, YearlyDate) else r.date_from.isoformat()
            rule["to"] = str(r.date_to) if isinstance(r.date_to, YearlyDate) else r.date_to.isoformat()
        if r.weekdays:
            rule["weekdays"] = [WEEKDAYS[w] for w in sorted(r.weekdays)]
        if r.nth is not None:
            rule["nth"] = r.nth
        if r.months:
            rule["months"] = sorted(r.months)
        rules.append(rule)
    return {"name": c.name, "default": c.default, "rules": rules}


# --- overrides ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Override:
    """An operator's level for a group or a lamp from `start` until `expiry` (aware UTC instants)."""

    target: str
    level: int
    start: datetime
    expiry: datetime
    created: datetime  # orders overrides: the newest on a target replaces the others

    def active_at(self, instant: datetime) -> bool:
        return self.start <= instant < self.expiry

    @staticmethod
    def make(target: str, level: int, start: datetime, expiry: datetime, created: datetime) -> Override:
        _level(level, "override", target, "override")
        for what, t in (("start", start), ("expiry", expiry)):
            if t.tzinfo is None:
                raise LightingError("override", target, "override_window", f"{what} must be an aware datetime")
        if expiry <= start:
            raise LightingError(
                "override", target, "override_window", f"expiry {expiry.isoformat()} is not after start {start.isoformat()}"
            )
        return Override(target, level, start.astimezone(UTC), expiry.astimezone(UTC), created.astimezone(UTC))

    def to_doc(self) -> dict[str, Any]:
        return {
            "target": self.target, "level": self.level, "start": self.start.isoformat(),
            "expiry": self.expiry.isoformat(), "created": self.created.isoformat(),
        }

    @staticmethod
    def from_doc(doc: Mapping[str, Any]) -> Override:
        return Override.make(
            str(doc["target"]), doc["level"], datetime.fromisoformat(doc["start"]),
            datetime.fromisoformat(doc["expiry"]), datetime.fromisoformat(doc["created"]),
        )
