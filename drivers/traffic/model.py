"""Intersections and timing plans, as the French rules (IISR 6th part, CEREMA DiagFeux) describe them.

The facts the rules depend on are held per signal group: the speed limit of a vehicle, tram or
bus approach (its amber: IISR 6th part art. 110 C, 3 s at 50 km/h or less, 5 s above), the
length of a pedestrian group's crosswalk and the speed its clearance is computed at (art. 110 C 2:
a pedestrian who steps off in the last second of green clears the crosswalk before any
conflicting green; 1 m/s), and the tram or bus groups with their own signals (R17/R18) a group
gives way to (art. 110 C 3 as completed by the arrêté of 9 April 2021: such a group may wait up to
240 s, only on the cycles that serve that priority call, i.e. in a plan marked `priority`).

All durations are whole seconds: signal controllers count in seconds, and the rules are stated
in seconds. The model holds what a file says; `validate.py` decides whether it is lawful.

- A *signal group* is one stream's signal head(s): vehicle, pedestrian, tram or bus.
- The *conflict matrix* gives, for each ordered pair of conflicting groups (from, to), the
  minimum intergreen: time from the end of `from`'s green to the start of `to`'s green. It is
  either given, or computed from the conflict-zone distance the `from` stream must clear:
  clearance red = ceil(distance / speed), at least 2 s, and intergreen = amber + clearance red.
- A *plan* is a cycle of stages. Stage k's groups are green for `green_s`, then comes the
  interstage of `interstage_s` before stage k+1: groups that are in stage k but not in k+1 end
  their green at the start of the interstage (amber, then red); groups in k+1 but not in k
  start their green at its end; groups in both stay green through it. Cycle second 0 is the
  start of stage 1's green. Greens plus interstages sum to the cycle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction

MIN_GREEN_S = 6
MIN_CLEARANCE_RED_S = 2
MAX_WAIT_S = 120
#: Allowed since 2021 (arrêté of 9 April 2021) for a group that gives way to a tram or bus with its
#: own signals, on the cycles that serve that priority call only: in a plan marked `priority`.
MAX_WAIT_PRIORITY_S = 240
#: Above this speed limit an approach needs the long amber (IISR 6th part art. 110 C).
URBAN_SPEED_LIMIT_KMH = 50
#: Pedestrians' clearance speed (IISR 6th part art. 110 C 2; CEREMA): 1 m/s.
PEDESTRIAN_CLEARANCE_SPEED_M_S = 1.0
#: Register-map limits: group masks are two 16-bit words, plan numbers one byte.
MAX_GROUPS = 32
MAX_PLAN_NUMBER = 255


class GroupKind(StrEnum):
    VEHICLE = "vehicle"
    PEDESTRIAN = "pedestrian"
    TRAM = "tram"
    BUS = "bus"


class Setting(StrEnum):
    """Built-up area or not: descriptive only, the amber follows each group's speed limit."""

    URBAN = "urban"
    RURAL = "rural"


class Position(StrEnum):
    """Functional position a central may command."""

    NORMAL = "normal"
    YELLOW_FLASH = "yellow_flash"
    DARK = "dark"


#: Amber of vehicle, tram and bus signals: 3 s at 50 km/h or less, 5 s above. French pedestrian
#: signals (R12) have no amber: their intergreen is all clearance red.
SHORT_AMBER_S = 3
LONG_AMBER_S = 5

#: Speed at which a stream is assumed to clear the conflict zone (m/s).
CLEARANCE_SPEED_M_S: Mapping[GroupKind, int] = {
    GroupKind.VEHICLE: 10,
    GroupKind.TRAM: 10,
    GroupKind.BUS: 10,
    GroupKind.PEDESTRIAN: 1,
}


def required_amber_s(kind: GroupKind, speed_limit_kmh: int | None) -> int:
    """The amber a group must show. No speed limit given counts as above 50 km/h: the long amber is
    the safe side (a 3 s amber on a fast approach leaves drivers unable to stop)."""
    if kind is GroupKind.PEDESTRIAN:
        return 0
    if speed_limit_kmh is not None and speed_limit_kmh <= URBAN_SPEED_LIMIT_KMH:
        return SHORT_AMBER_S
    return LONG_AMBER_S


def crossing_clearance_s(crossing_m: float, speed_m_s: float) -> int:
    """Seconds a pedestrian who steps off in the last second of green needs to clear the crosswalk."""
    return max(MIN_CLEARANCE_RED_S, math.ceil(Fraction(str(crossing_m)) / Fraction(str(speed_m_s))))


def clearance_red_s(kind: GroupKind, distance_m: float) -> int:
    """Clearance red for a stream leaving over `distance_m`: rounded up, never below 2 s."""
    # Fraction of the decimal text, so 20.0 m at 10 m/s is exactly 2 s, not 2.0000000001 rounded up to 3.
    exact = Fraction(str(distance_m)) / CLEARANCE_SPEED_M_S[kind]
    return max(MIN_CLEARANCE_RED_S, math.ceil(exact))


@dataclass(frozen=True, slots=True)
class SignalGroup:
    id: str
    kind: GroupKind
    amber_s: int
    label: str = ""
    #: Vehicle, tram and bus groups: the approach's speed limit; None = not given (treated as above 50).
    speed_limit_kmh: int | None = None
    #: Pedestrian groups: length of the crosswalk (m) and the speed its clearance is computed at.
    crossing_m: float | None = None
    clearance_speed_m_s: float = PEDESTRIAN_CLEARANCE_SPEED_M_S
    #: Tram or bus groups with their own signals this group gives way to (may wait 240 s on their cycles).
    gives_way_to: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Conflict:
    """One ordered entry of the conflict matrix: `from_group` ends, `to_group` may start `intergreen_s` later."""

    from_group: str
    to_group: str
    intergreen_s: int
    #: The distance the intergreen was computed from, when the file gives one.
    clearance_m: float | None = None
    #: True when the file states the intergreen itself (it must then cover amber + 2 s, and the distance if given).
    given: bool = False


@dataclass(frozen=True)
class Intersection:
    id: str
    name: str
    commune: str
    setting: Setting
    groups: tuple[SignalGroup, ...]
    matrix: Mapping[tuple[str, str], Conflict]
    index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {g.id: i for i, g in enumerate(self.groups)})

    def group(self, group_id: str) -> SignalGroup:
        return self.groups[self.index[group_id]]

    def conflicting(self, a: str, b: str) -> bool:
        return (a, b) in self.matrix or (b, a) in self.matrix

    def intergreen_s(self, from_group: str, to_group: str) -> int | None:
        entry = self.matrix.get((from_group, to_group))
        return entry.intergreen_s if entry is not None else None


@dataclass(frozen=True, slots=True)
class Stage:
    groups: frozenset[str]
    green_s: int
    #: Time from the end of this stage's green to the start of the next stage's green.
    interstage_s: int
    name: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    number: int
    name: str
    cycle_s: int
    offset_s: int
    stages: tuple[Stage, ...]
    #: Run only on the cycles that serve a tram or bus priority call (never from a table): the groups
    #: that give way to a tram or bus it shows green may wait up to 240 s in it.
    priority: bool = False


def max_wait_s(ix: Intersection, plan: Plan, group: str) -> int:
    """The longest `group` may wait in `plan`: 240 s only when the plan serves a priority call of a
    tram or bus it gives way to, 120 s otherwise (pedestrians included)."""
    if plan.priority and ix.group(group).gives_way_to:
        return MAX_WAIT_PRIORITY_S
    return MAX_WAIT_S
