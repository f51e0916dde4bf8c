"""Time-of-day and week tables, read in local time, evaluated at an instant given by the caller.

A *day table* is a list of switch points (local wall-clock time -> plan, or a functional
position); each lasts until the next, and the last one of a day carries over into the next
day until that day's first switch point. The *week table* names the day table of each weekday;
*special days* (public holidays) name another for one date.

Switch points are local time: on 2026-03-29 a 06:30 switch happens at 06:30 CEST (04:30 UTC).
A switch point inside the spring-forward gap (02:30 on 2026-03-29) happens once, when the gap
ends (03:00 CEST); one inside the repeated fall-back hour happens once, at its first occurrence.
No function here reads the wall clock: the instant is always an argument.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from citygate_wire.common import now_ms
from drivers.traffic.model import Position

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: How far back a carry-over is looked for: a week of day tables, plus the day itself.
_LOOKBACK_DAYS = 8


@dataclass(frozen=True, slots=True)
class Switch:
    at: time
    #: Plan to run; None for a switch to yellow flash or dark, which keeps the last plan for later.
    plan: int | None
    position: Position = Position.NORMAL


@dataclass(frozen=True, slots=True)
class DayTable:
    id: str
    switches: tuple[Switch, ...]


@dataclass(frozen=True)
class Schedule:
    day_tables: Mapping[str, DayTable]
    #: Day-table id for Monday .. Sunday.
    week: tuple[str, str, str, str, str, str, str]
    special_days: Mapping[date, str]

    def table_for(self, day: date) -> DayTable:
        return self.day_tables[self.special_days.get(day, self.week[day.weekday()])]


@dataclass(frozen=True, slots=True)
class Active:
    """What the tables ask for at an instant."""

    position: Position
    #: Plan of the latest switch that names one (a yellow-flash switch keeps the plan before it).
    plan: int | None
    #: Instant (UTC) of the switch that set the position.
    since: datetime


def utc_now() -> datetime:
    """Default clock for callers that do not inject one."""
    return datetime.fromtimestamp(now_ms() / 1000, UTC)


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant at which wall-clock `at` happens on `day` (gap: when it ends; fold: first time)."""
    naive = datetime.combine(day, at)
    first = naive.replace(tzinfo=tz, fold=0)
    utc = first.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) == naive:
        return utc
    # In the gap: the gap ends where the UTC offset changes, between the two readings of `naive`.
    lo = int(naive.replace(tzinfo=tz, fold=1).timestamp())
    hi = int(utc.timestamp())
    lo, hi = min(lo, hi), max(lo, hi)
    after = datetime.fromtimestamp(hi, UTC).astimezone(tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def switches_on(schedule: Schedule, day: date, tz: ZoneInfo) -> list[tuple[datetime, Switch]]:
    """The switch points of `day`'s table with their UTC instants, in order."""
    table = schedule.table_for(day)
    return [(local_instant(day, s.at, tz), s) for s in table.switches]


def _recent_switches(schedule: Schedule, instant: datetime, tz: ZoneInfo) -> Iterator[tuple[datetime, Switch]]:
    """Switch points at or before `instant`, newest first, over the last days."""
    today = instant.astimezone(tz).date()
    for back in range(_LOOKBACK_DAYS):
        day = today - timedelta(days=back)
        # Two switch points of one day can fall on one instant (02:30 and 03:00 on the
        # spring-forward day): newest first puts the later one in the table first, and it wins.
        yield from reversed([(at, s) for at, s in switches_on(schedule, day, tz) if at <= instant])


def active_at(schedule: Schedule, instant: datetime, tz: ZoneInfo) -> Active:
    """What the tables ask for at `instant` (aware). Raises LookupError if no switch point applies."""
    current: tuple[datetime, Switch] | None = None
    for at, switch in _recent_switches(schedule, instant, tz):
        if current is None:
            current = (at, switch)
        if switch.plan is not None:
            return Active(position=current[1].position, plan=switch.plan, since=current[0])
    if current is None:
        raise LookupError("no switch point in the day tables of the last week")
    return Active(position=current[1].position, plan=None, since=current[0])


def next_switch_after(schedule: Schedule, instant: datetime, tz: ZoneInfo) -> datetime | None:
    """The instant of the first switch point strictly after `instant`, within a week."""
    today = instant.astimezone(tz).date()
    for ahead in range(_LOOKBACK_DAYS):
        for at, _ in switches_on(schedule, today + timedelta(days=ahead), tz):
            if at > instant:
                return at
    return None


@dataclass(frozen=True, slots=True)
class Segment:
    """One stretch of a local day during which the same switch point applies."""

    start: datetime  # UTC
    end: datetime  # UTC, exclusive
    position: Position
    plan: int | None
    #: True for the stretch carried over from the previous day's last switch point.
    carried: bool


def day_segments(schedule: Schedule, day: date, tz: ZoneInfo) -> list[Segment]:
    """Which plan or position runs when on local `day`, from local midnight to the next one."""
    start = local_instant(day, time(0), tz)
    end = local_instant(day + timedelta(days=1), time(0), tz)
    points: list[tuple[datetime, Active, bool]] = [(start, active_at(schedule, start, tz), True)]
    for at, _ in switches_on(schedule, day, tz):
        active = active_at(schedule, at, tz)
        if at == start:
            points[0] = (at, active, False)
        elif points[-1][0] == at:
            points[-1] = (at, active, False)
        else:
            points.append((at, active, False))
    return [
        Segment(at, points[i + 1][0] if i + 1 < len(points) else end, a.position, a.plan, carried)
        for i, (at, a, carried) in enumerate(points)
    ]


def switch_pairs(schedule: Schedule) -> set[tuple[int, int]]:
    """Every (from plan, to plan) the tables can change between without leaving normal operation.

    A switch point to yellow flash or dark ends the chain: coming back is a start-up, not a plan
    change. Days follow each other as the week does (Sunday -> Monday included), and around each
    special day as the calendar does."""
    pairs: set[tuple[int, int]] = set()

    def walk(table: DayTable, carried: int | None) -> int | None:
        current = carried
        for s in table.switches:
            nxt = s.plan if s.position is Position.NORMAL else None
            if current is not None and nxt is not None and nxt != current:
                pairs.add((current, nxt))
            current = nxt
        return current

    ends = {tid: walk(table, None) for tid, table in schedule.day_tables.items()}
    days = {(schedule.week[d], schedule.week[(d + 1) % 7]) for d in range(7)}
    for day in schedule.special_days:
        for a in (day - timedelta(days=1), day):
            days.add((schedule.table_for(a).id, schedule.table_for(a + timedelta(days=1)).id))
    for before, after in days:
        walk(schedule.day_tables[after], ends[before])
    return pairs
