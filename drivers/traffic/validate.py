"""The French rules, checked: a list of precise violations (rule, groups, required vs actual), empty when lawful.

Each message cites its rule: IISR 6th part (instruction interministérielle sur la signalisation
routière, "feux de circulation permanents"), art. 110 C, as amended by the arrêté of 9 April 2021.

Intersection rules: amber 3 s for an approach limited to 50 km/h or less, 5 s above or when no
limit is given (none for pedestrians); clearance red of a given intergreen at least 2 s and at
least what the clearance distance needs; every intergreen from a pedestrian group at least its
crosswalk's length at its clearance speed; a matrix entry for both directions of every conflict.
Plan rules: offset in [0, cycle), greens plus interstages equal to the cycle, no two
conflicting groups green in one stage, every intergreen at least the matrix's, greens of at
least 6 s (a green that runs on from the last stage into stage 1 also in stage 1 alone: a
controller enters a plan there, at start-up and at a plan change), an amber shown in full
before a group's next green, no wait above 120 s (240 s only for a group that gives way to a
tram or bus, in a plan that serves that priority call). Table rules: every plan a table names
exists and is not a priority plan; every change between two plans the tables can switch
between is a lawful transition (drivers/traffic/transition.py).

This is the agent's check before it uploads anything; the controller checks again on its own
(simulators/signals_engine.py), through a different code path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from drivers.traffic.config import Timings
from drivers.traffic.model import (
    MAX_WAIT_PRIORITY_S,
    MIN_CLEARANCE_RED_S,
    MIN_GREEN_S,
    URBAN_SPEED_LIMIT_KMH,
    GroupKind,
    Intersection,
    Plan,
    SignalGroup,
    clearance_red_s,
    crossing_clearance_s,
    max_wait_s,
    required_amber_s,
)
from drivers.traffic.tables import Schedule, switch_pairs
from drivers.traffic.timeline import GreenSpan, green_spans, period_s, stage_timings
from drivers.traffic.transition import transition

#: The rules' sources, cited in each message.
AMBER_RULE = "IISR 6th part art. 110 C"
CLEARANCE_RULE = "IISR 6th part art. 110 C 2"
WAIT_RULE = "IISR 6th part art. 110 C 3, completed by the arrêté of 9 April 2021"


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    message: str
    plan: int | None = None
    stage: int | None = None  # 1-based, as people count stages
    groups: tuple[str, ...] = ()
    required: int | None = None
    actual: int | None = None
    #: For a transition: the plan changed from (`plan` is the plan changed to).
    from_plan: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "message": self.message,
            "plan": self.plan,
            "from_plan": self.from_plan,
            "stage": self.stage,
            "groups": list(self.groups),
            "required": self.required,
            "actual": self.actual,
        }


def validate_intersection(ix: Intersection) -> list[Violation]:
    out: list[Violation] = []
    for g in ix.groups:
        need = required_amber_s(g.kind, g.speed_limit_kmh)
        if g.amber_s != need:
            if g.kind is GroupKind.PEDESTRIAN:
                why = "pedestrian signals have no amber"
            elif g.speed_limit_kmh is None:
                why = "no speed_limit_kmh given: treated as above 50 km/h"
            else:
                above = "above" if g.speed_limit_kmh > URBAN_SPEED_LIMIT_KMH else "at most"
                why = f"speed limit {g.speed_limit_kmh} km/h, {above} 50 km/h"
            out.append(
                Violation(
                    "amber",
                    f"group {g.id} ({g.kind}): amber {g.amber_s} s, required {need} s ({why}; {AMBER_RULE})",
                    groups=(g.id,),
                    required=need,
                    actual=g.amber_s,
                )
            )
    for (a, b), entry in ix.matrix.items():
        if (b, a) not in ix.matrix:
            out.append(
                Violation(
                    "matrix_symmetry",
                    f"conflict {a}→{b} has no entry {b}→{a}: the matrix needs both directions",
                    groups=(b, a),
                )
            )
        leaving = ix.group(a)
        if leaving.crossing_m is not None:
            need = crossing_clearance_s(leaving.crossing_m, leaving.clearance_speed_m_s)
            if entry.intergreen_s < need:
                out.append(
                    Violation(
                        "crossing_clearance",
                        f"intergreen {a}→{b}: {entry.intergreen_s} s, required {need} s for a pedestrian who steps "
                        f"off in the last second of green to clear the {leaving.crossing_m:g} m crosswalk at "
                        f"{leaving.clearance_speed_m_s:g} m/s ({CLEARANCE_RULE})",
                        groups=(a, b),
                        required=need,
                        actual=entry.intergreen_s,
                    )
                )
        if not entry.given:
            continue
        amber = ix.group(a).amber_s
        if entry.intergreen_s - amber < MIN_CLEARANCE_RED_S:
            out.append(
                Violation(
                    "clearance_red",
                    f"intergreen {a}→{b}: {entry.intergreen_s} s leaves a clearance red of "
                    f"{entry.intergreen_s - amber} s after the {amber} s amber, required at least "
                    f"{MIN_CLEARANCE_RED_S} s (intergreen >= {amber + MIN_CLEARANCE_RED_S} s; {CLEARANCE_RULE})",
                    groups=(a, b),
                    required=amber + MIN_CLEARANCE_RED_S,
                    actual=entry.intergreen_s,
                )
            )
        if entry.clearance_m is not None:
            need = amber + clearance_red_s(ix.group(a).kind, entry.clearance_m)
            if entry.intergreen_s < need:
                out.append(
                    Violation(
                        "clearance_distance",
                        f"intergreen {a}→{b}: {entry.intergreen_s} s, required {need} s to clear "
                        f"{entry.clearance_m:g} m ({amber} s amber + clearance red; {CLEARANCE_RULE})",
                        groups=(a, b),
                        required=need,
                        actual=entry.intergreen_s,
                    )
                )
    return out


def validate_plan(ix: Intersection, plan: Plan) -> list[Violation]:
    out = _plan_shape(ix, plan)
    period = period_s(plan)
    if period == 0 or any(v.rule == "unknown_group" for v in out):
        return out  # nothing below can be judged
    together, greens = _conflicting_greens(ix, plan)
    out += greens
    spans = green_spans(plan)
    for g in ix.groups:
        out += _group_greens(ix, plan, g, sorted(spans.get(g.id, []), key=lambda s: s.start_s), period)
    out += _intergreens(ix, plan, spans, together, period)
    return out


def _plan_shape(ix: Intersection, plan: Plan) -> list[Violation]:
    """Offset within the cycle, greens and interstages that sum to it, groups the intersection has."""
    out: list[Violation] = []
    p = plan.number
    if not 0 <= plan.offset_s < plan.cycle_s:
        out.append(
            Violation(
                "offset",
                f"plan {p}: offset {plan.offset_s} s is outside [0, {plan.cycle_s}) s",
                plan=p,
                required=plan.cycle_s - 1,
                actual=plan.offset_s,
            )
        )
    period = period_s(plan)
    if period != plan.cycle_s:
        out.append(
            Violation(
                "cycle_sum",
                f"plan {p}: greens and interstages sum to {period} s, the cycle is {plan.cycle_s} s",
                plan=p,
                required=plan.cycle_s,
                actual=period,
            )
        )
    unknown = sorted({g for s in plan.stages for g in s.groups} - set(ix.index))
    for gid in unknown:
        out.append(Violation("unknown_group", f"plan {p}: group {gid} is not a group of {ix.id}", plan=p, groups=(gid,)))
    return out


def _conflicting_greens(ix: Intersection, plan: Plan) -> tuple[set[tuple[str, str]], list[Violation]]:
    """Conflicting groups green in one stage, as ordered pairs (both ways), and their violations."""
    p = plan.number
    out: list[Violation] = []
    together: set[tuple[str, str]] = set()
    for k, stage in enumerate(plan.stages):
        members = sorted(stage.groups, key=ix.index.__getitem__)
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                if ix.conflicting(a, b):
                    together.update({(a, b), (b, a)})
                    out.append(
                        Violation(
                            "conflicting_greens",
                            f"plan {p} stage {k + 1}: {a} and {b} conflict and are green together",
                            plan=p,
                            stage=k + 1,
                            groups=(a, b),
                        )
                    )
    return together, out


def _group_greens(ix: Intersection, plan: Plan, g: SignalGroup, runs: list[GreenSpan], period: int) -> list[Violation]:
    """One group's greens: long enough, also when the plan is entered at stage 1, never too far apart, amber whole."""
    p = plan.number
    out: list[Violation] = []
    limit_s = max_wait_s(ix, plan, g.id)
    if not runs:
        out.append(
            Violation(
                "max_wait",
                f"plan {p}: group {g.id} is never green (waits forever, limit {limit_s} s; {WAIT_RULE})",
                plan=p,
                groups=(g.id,),
                required=limit_s,
            )
        )
        return out
    for i, span in enumerate(runs):
        if span.length_s >= period:
            continue  # green in every stage: it never ends, so it never waits and is never cut short
        stages = _stage_range(span.first_stage, span.last_stage)
        if span.length_s < MIN_GREEN_S:
            out.append(
                Violation(
                    "min_green",
                    f"plan {p}: group {g.id} is green {span.length_s} s in {stages}, required at least {MIN_GREEN_S} s "
                    f"({AMBER_RULE})",
                    plan=p,
                    stage=span.first_stage + 1,
                    groups=(g.id,),
                    required=MIN_GREEN_S,
                    actual=span.length_s,
                )
            )
        entry_s = _entry_green_s(plan, span)
        if entry_s is not None and entry_s < MIN_GREEN_S:
            # the controller enters a plan at stage 1 (start-up, plan change): then this green
            # starts there, without the part it has before the cycle boundary
            out.append(
                Violation(
                    "min_green",
                    f"plan {p}: group {g.id} is green only {entry_s} s in stage 1 when the controller enters the "
                    f"plan there (start-up, plan change): its green of {span.length_s} s in {stages} starts "
                    f"before the cycle boundary; required at least {MIN_GREEN_S} s ({AMBER_RULE})",
                    plan=p,
                    stage=1,
                    groups=(g.id,),
                    required=MIN_GREEN_S,
                    actual=entry_s,
                )
            )
        nxt = runs[(i + 1) % len(runs)]
        wait = (nxt.start_s - span.end_s) % period
        if wait > limit_s:
            why = "" if limit_s == MAX_WAIT_PRIORITY_S else (
                f"; {MAX_WAIT_PRIORITY_S} s only for a group that gives way to a tram or bus (gives_way_to), "
                "in a plan that serves its priority call (priority = true)")
            out.append(
                Violation(
                    "max_wait",
                    f"plan {p}: group {g.id} waits {wait} s from the end of its green (stage "
                    f"{span.last_stage + 1}) to its next green, limit {limit_s} s ({WAIT_RULE}{why})",
                    plan=p,
                    stage=span.last_stage + 1,
                    groups=(g.id,),
                    required=limit_s,
                    actual=wait,
                )
            )
        if wait < g.amber_s:
            out.append(
                Violation(
                    "amber_cut",
                    f"plan {p}: group {g.id} is green again {wait} s after its green ends (stage "
                    f"{span.last_stage + 1}): its {g.amber_s} s amber must be shown in full ({AMBER_RULE})",
                    plan=p,
                    stage=span.last_stage + 1,
                    groups=(g.id,),
                    required=g.amber_s,
                    actual=wait,
                )
            )
    return out


def _intergreens(ix: Intersection, plan: Plan, spans: Mapping[str, list[GreenSpan]], together: set[tuple[str, str]],
                 period: int) -> list[Violation]:
    """Each conflict's intergreen, from every end of green of one group to the next start of the other."""
    p = plan.number
    out: list[Violation] = []
    for (a, b), entry in ix.matrix.items():
        if (a, b) in together:
            continue
        starts = spans.get(b, [])
        for span in spans.get(a, []):
            if not starts or span.length_s >= period:
                continue
            actual = min((s.start_s - span.end_s) % period for s in starts)
            if actual < entry.intergreen_s:
                out.append(
                    Violation(
                        "intergreen",
                        f"plan {p}: intergreen {a}→{b} after stage {span.last_stage + 1} is {actual} s, "
                        f"the conflict matrix requires {entry.intergreen_s} s ({CLEARANCE_RULE})",
                        plan=p,
                        stage=span.last_stage + 1,
                        groups=(a, b),
                        required=entry.intergreen_s,
                        actual=actual,
                    )
                )
    return out


def validate_schedule(schedule: Schedule, plan_numbers: Iterable[int], priority: Iterable[int] = ()) -> list[Violation]:
    known = set(plan_numbers)
    called = set(priority)
    out: list[Violation] = []
    for table in schedule.day_tables.values():
        for s in table.switches:
            if s.plan is not None and s.plan not in known:
                out.append(
                    Violation(
                        "unknown_plan",
                        f"day table {table.id!r} at {s.at:%H:%M}: plan {s.plan} is not defined",
                        plan=s.plan,
                    )
                )
            elif s.plan in called:
                out.append(
                    Violation(
                        "priority_plan_in_table",
                        f"day table {table.id!r} at {s.at:%H:%M}: plan {s.plan} is a priority plan; it runs only on "
                        f"the cycles that serve a tram or bus call, a table would run it on every cycle ({WAIT_RULE})",
                        plan=s.plan,
                    )
                )
    return out


def transition_pairs(t: Timings) -> list[tuple[Plan, Plan]]:
    """The plan changes the tables can cause, and those into and out of each priority plan."""
    numbers = {p.number for p in t.plans}
    pairs = {(a, b) for a, b in switch_pairs(t.schedule) if a in numbers and b in numbers}
    named = {n for pair in pairs for n in pair} | {
        s.plan for table in t.schedule.day_tables.values() for s in table.switches if s.plan in numbers}
    for called in (p.number for p in t.plans if p.priority):
        pairs |= {(n, called) for n in named if n != called} | {(called, n) for n in named if n != called}
    by_number = {p.number: p for p in t.plans}
    return [(by_number[a], by_number[b]) for a, b in sorted(pairs)]


def validate_transitions(t: Timings) -> list[Violation]:
    """Each change between two plans, as drivers/traffic/transition.py defines it."""
    out: list[Violation] = []
    for old, new in transition_pairs(t):
        change = transition(t.intersection, old, new)
        for f in change.shortfalls:
            where = (f"plan {old.number} → plan {new.number}: the new plan starts at {change.start_s} s after the "
                     "change (old plan's cycle boundary)")
            if f.rule == "intergreen":
                text = (f"{where}; intergreen {f.from_group}→{f.to_group} in its first cycle is {f.actual} s, the "
                        f"conflict matrix requires {f.required} s ({CLEARANCE_RULE})")
            elif f.rule == "amber_cut":
                text = (f"{where}; group {f.from_group} is green again {f.actual} s after its green ended: its "
                        f"{f.required} s amber must be shown in full ({AMBER_RULE})")
            else:
                text = (f"{where}; group {f.from_group} waits {f.actual} s across the change, limit {f.required} s "
                        f"({WAIT_RULE})")
            groups = (f.from_group,) if f.from_group == f.to_group else (f.from_group, f.to_group)
            out.append(Violation(f"transition_{f.rule}", text, plan=new.number, groups=groups,
                                 required=f.required, actual=f.actual, from_plan=old.number))
    return out


def validate_timings(t: Timings) -> list[Violation]:
    """Every rule on an intersection, all its plans, its tables and the plan changes they cause."""
    out = validate_intersection(t.intersection)
    plan_faults = False
    for plan in t.plans:
        found = validate_plan(t.intersection, plan)
        plan_faults |= bool(found)
        out.extend(found)
    out.extend(validate_schedule(t.schedule, (p.number for p in t.plans), (p.number for p in t.plans if p.priority)))
    if not plan_faults:
        # transitions are defined between lawful plans only
        out.extend(validate_transitions(t))
    return out


def _stage_range(first: int, last: int) -> str:
    return f"stage {first + 1}" if first == last else f"stages {first + 1}-{last + 1}"


def _entry_green_s(plan: Plan, span: GreenSpan) -> int | None:
    """How long a span that runs from a later stage on into stage 1 stays green when the plan is
    entered at stage 1: from stage 1's green to the span's end. None for a span that does not."""
    if span.first_stage == 0 or span.last_stage >= span.first_stage:
        return None  # starts in stage 1, or does not run across the cycle boundary
    timings = stage_timings(plan)
    return timings[span.last_stage].green_end_s - timings[0].green_start_s
