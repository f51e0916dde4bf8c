"""The pure lighting engine: which level a group should be at, at any instant, and the day's switch plan.

No I/O and no clock: every function takes the instant it is asked about, so a test can walk
a night or a year in a loop. Instants are aware UTC datetimes; local time (the site's zone)
only interprets the program's wall-clock times and labels the plan for people.

Daylight saving: a fixed switch point whose local time does not exist (02:30 on the
spring-forward night) fires once, at the first instant after the gap (03:00); one that exists
twice (02:30 on the fall-back night) fires once, at its first occurrence. Program days are
computed between UTC instants, so a 23 h or 25 h day has its true length.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from edge_agent.lighting.astro import NoEvent, Site, sun_event
from edge_agent.lighting.model import (
    DAY_START,
    DEFAULT_LEVEL,
    DEFAULT_PROGRAM,
    EVENING_EVENTS,
    AstroTime,
    FixedTime,
    Override,
    Program,
    ProgramSet,
    TimeSpec,
)

_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Switch:
    at: datetime  # UTC
    local: datetime  # the same instant in the site's zone, for people
    level: int


@dataclass(frozen=True)
class DayPlan:
    """One program day (12:00 local on `day` to 12:00 the next day): the level at its start and each change."""

    day: date
    program: str
    start: datetime
    end: datetime
    initial: int
    switches: tuple[Switch, ...]
    _instants: list[datetime] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_instants", [s.at for s in self.switches])

    def level_at(self, instant: datetime) -> int:
        i = bisect.bisect_right(self._instants, instant)
        return self.initial if i == 0 else self.switches[i - 1].level

    def next_switch_after(self, instant: datetime) -> Switch | None:
        i = bisect.bisect_right(self._instants, instant)
        return self.switches[i] if i < len(self.switches) else None

    def segments(self) -> Iterator[tuple[datetime, datetime, int]]:
        """(from, to, level) pieces covering the whole day, in UTC."""
        at, level = self.start, self.initial
        for s in self.switches:
            yield at, s.at, level
            at, level = s.at, s.level
        yield at, self.end, level

    def burn_seconds(self) -> float:
        return sum((b - a).total_seconds() for a, b, lv in self.segments() if lv > 0)

    def level_seconds(self) -> float:
        """∫ level/100 dt: times a rated power, the energy of a lamp whose power follows its level."""
        return sum((b - a).total_seconds() * lv / 100 for a, b, lv in self.segments())


@functools.lru_cache(maxsize=4096)
def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall time: the first occurrence if it repeats, the end of the gap if it is skipped."""
    naive = datetime.combine(day, at)
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == naive:
        return first
    # Skipped by a spring-forward gap: find the first instant whose wall time is at or past it.
    lo = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    lo, hi = min(lo, first), max(lo, first)
    while (hi - lo).total_seconds() > 1:
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0)


class Engine:
    """Levels of a program set at a site. Immutable: a new program set gets a new Engine."""

    def __init__(self, programs: ProgramSet, site: Site) -> None:
        self.programs = programs
        self.site = site
        self.zone = site.timezone
        self._plans: dict[tuple[Program, date], DayPlan] = {}

    # -- program days ----------------------------------------------------------------------------

    def program_day(self, instant: datetime) -> date:
        """The date of the program day (12:00 → 12:00 local) that contains `instant`."""
        local = instant.astimezone(self.zone)
        return local.date() if local.time() >= DAY_START else local.date() - _ONE_DAY

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        return local_instant(day, DAY_START, self.zone), local_instant(day + _ONE_DAY, DAY_START, self.zone)

    def program_for(self, calendar: str | None, day: date) -> Program:
        """The calendar's program for the night that starts on `day`; without a calendar, the default light state."""
        if calendar is None:
            return DEFAULT_PROGRAM
        return self.programs.programs[self.programs.calendars[calendar].program_for(day)]

    # -- plans -----------------------------------------------------------------------------------

    def plan(self, calendar: str | None, day: date) -> DayPlan:
        return self.plan_program(self.program_for(calendar, day), day)

    def plan_program(self, program: Program, day: date) -> DayPlan:
        key = (program, day)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) > 20_000:  # a year of days for dozens of programs; then start afresh
                self._plans.clear()
            plan = self._plans[key] = self._compute(program, day)
        return plan

    def level_at(self, calendar: str | None, instant: datetime) -> int:
        return self.plan(calendar, self.program_day(instant)).level_at(instant)

    def program_level_at(self, program: Program, instant: datetime) -> int:
        return self.plan_program(program, self.program_day(instant)).level_at(instant)

    def next_change(self, calendar: str | None, after: datetime, program: Program | None = None) -> datetime:
        """The first instant after `after` at which the level changes (at most a few days ahead)."""
        day = self.program_day(after)
        current = self._plan_for(calendar, program, day).level_at(after)
        for _ in range(8):
            plan = self._plan_for(calendar, program, day)
            if plan.start > after and plan.initial != current:
                return plan.start
            for s in plan.switches:
                if s.at > after and s.level != current:
                    return s.at
            day += _ONE_DAY
        return self.day_bounds(day)[0]

    def _plan_for(self, calendar: str | None, program: Program | None, day: date) -> DayPlan:
        return self.plan_program(program, day) if program is not None else self.plan(calendar, day)

    def _resolve(self, spec: TimeSpec, day: date, start: datetime, end: datetime) -> datetime | None:
        """The instant of a time of the program day `day`, clamped to it; None if it does not happen."""
        if isinstance(spec, FixedTime):
            on = day if spec.at >= DAY_START else day + _ONE_DAY
            return local_instant(on, spec.at, self.zone)
        assert isinstance(spec, AstroTime)
        evening = spec.event in EVENING_EVENTS
        when = sun_event(self.site, spec.event, day if evening else day + _ONE_DAY)
        if when is NoEvent.ALWAYS_UP:
            return None  # no night at all: the lamps have nothing to do
        if when is NoEvent.ALWAYS_DOWN:
            return start if evening else end  # polar night: dark from the day's start to its end
        assert isinstance(when, datetime)
        # whole seconds: a plan people read, and the sun tables are not better than that anyway
        return min(max(when.replace(microsecond=0) + timedelta(minutes=spec.offset_min), start), end)

    def _compute(self, program: Program, day: date) -> DayPlan:
        start, end = self.day_bounds(day)
        periods: list[tuple[datetime, datetime]] = []
        for p in program.periods:
            a, b = self._resolve(p.start, day, start, end), self._resolve(p.end, day, start, end)
            if a is not None and b is not None and a < b:
                periods.append((a, b))
        points: list[tuple[datetime, int, int]] = []
        for order, group in enumerate((program.switch_points, program.astro_switch_points)):
            for sp in group:
                at = self._resolve(sp.at, day, start, end)
                if at is not None and at < end:
                    # at one instant, an astronomical point wins over a fixed one (it comes later in the sort)
                    points.append((at, order, sp.level))
        points.sort()
        point_times = [p[0] for p in points]
        has_periods = bool(program.periods)

        def level(t: datetime) -> int:
            if has_periods and not any(a <= t < b for a, b in periods):
                return 0
            if not points:
                return DEFAULT_LEVEL
            i = bisect.bisect_right(point_times, t)
            # before the first point of the day, the last one still holds: the program is a 24 h cycle
            return points[i - 1][2] if i else points[-1][2]

        boundaries = sorted({start, *(a for a, _ in periods), *(b for _, b in periods), *point_times})
        initial = current = level(start)
        switches: list[Switch] = []
        for t in boundaries:
            if start < t < end and (lv := level(t)) != current:
                switches.append(Switch(t, t.astimezone(self.zone), lv))
                current = lv
        return DayPlan(day, program.name, start, end, initial, tuple(switches))


def override_for(overrides: Iterable[Override], lamp: str, group: str, instant: datetime) -> Override | None:
    """The override that governs `lamp` (in `group`) at `instant`: a lamp's own beats its group's."""
    best: Override | None = None
    for o in overrides:
        if o.target in (lamp, group) and o.active_at(instant):
            if best is None or (o.target == lamp and best.target != lamp):
                best = o
    return best
