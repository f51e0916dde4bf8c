"""The French rules, checked: a list of precise violations (rule, groups, required vs actual), empty when lawful.

Intersection rules: amber 3 s urban / 5 s rural (none for pedestrians), clearance red of a given
intergreen at least 2 s and at least what the clearance distance needs, a matrix entry for both
directions of every conflict. Plan rules: offset in [0, cycle), greens plus interstages equal
to the cycle, no two conflicting groups green in one stage, every intergreen at least the
matrix's, greens of at least 6 s (a green that runs on from the last stage into stage 1 also
in stage 1 alone: a controller enters a plan there, at start-up and at a plan change), an amber shown in full before a group's next green, no wait
above 120 s (240 s with the plan's public-transport flag). Table rules: every plan a table
names exists.

This is the agent's check before it uploads anything; the controller checks again on its own
(simulators/signals_engine.py), through a different code path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from drivers.traffic.config import Timings
from drivers.traffic.model import (
    MIN_CLEARANCE_RED_S,
    MIN_GREEN_S,
    GroupKind,
    Intersection,
    Plan,
    clearance_red_s,
    required_amber_s,
)
from drivers.traffic.tables import Schedule
from drivers.traffic.timeline import GreenSpan, green_spans, period_s, stage_timings


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    message: str
    plan: int | None = None
    stage: int | None = None  # 1-based, as people count stages
    groups: tuple[str, ...] = ()
    required: int | None = None
    actual: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "message": self.message,
            "plan": self.plan,
            "stage": self.stage,
            "groups": list(self.groups),
            "required": self.required,
            "actual": self.actual,
        }


def validate_intersection(ix: Intersection) -> list[Violation]:
    out: list[Violation] = []
    for g in ix.groups:
        need = required_amber_s(g.kind, ix.setting)
        if g.amber_s != need:
            why = "pedestrian signals have no amber" if g.kind is GroupKind.PEDESTRIAN else f"{ix.setting} intersection"
            out.append(
                Violation(
                    "amber",
                    f"group {g.id} ({g.kind}): amber {g.amber_s} s, required {need} s ({why})",
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
        if not entry.given:
            continue
        amber = ix.group(a).amber_s
        if entry.intergreen_s - amber < MIN_CLEARANCE_RED_S:
            out.append(
                Violation(
                    "clearance_red",
                    f"intergreen {a}→{b}: {entry.intergreen_s} s leaves a clearance red of "
                    f"{entry.intergreen_s - amber} s after the {amber} s amber, required at least "
                    f"{MIN_CLEARANCE_RED_S} s (intergreen >= {amber + MIN_CLEARANCE_RED_S} s)",
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
                        f"{entry.clearance_m:g} m ({amber} s amber + clearance red)",
                        groups=(a, b),
                        required=need,
                        actual=entry.intergreen_s,
                    )
                )
    return out


def validate_plan(ix: Intersection, plan: Plan) -> list[Violation]:
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
    if unknown or period == 0:
        return out

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

    spans = green_spans(plan)
    for g in ix.groups:
        runs = sorted(spans.get(g.id, []), key=lambda s: s.start_s)
        if not runs:
            out.append(
                Violation(
                    "max_wait",
                    f"plan {p}: group {g.id} is never green (waits forever, limit {plan.max_wait_s} s)",
                    plan=p,
                    groups=(g.id,),
                    required=plan.max_wait_s,
                )
            )
            continue
        for i, span in enumerate(runs):
            if span.length_s >= period:
                continue  # green in every stage: it never ends, so it never waits and is never cut short
            stages = _stage_range(span.first_stage, span.last_stage)
            if span.length_s < MIN_GREEN_S:
                out.append(
                    Violation(
                        "min_green",
                        f"plan {p}: group {g.id} is green {span.length_s} s in {stages}, required at least {MIN_GREEN_S} s",
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
                        f"before the cycle boundary; required at least {MIN_GREEN_S} s",
                        plan=p,
                        stage=1,
                        groups=(g.id,),
                        required=MIN_GREEN_S,
                        actual=entry_s,
                    )
                )
            nxt = runs[(i + 1) % len(runs)]
            wait = (nxt.start_s - span.end_s) % period
            if wait > plan.max_wait_s:
                limit = "" if plan.public_transport_wait else " (240 s only with public_transport_wait = true)"
                out.append(
                    Violation(
                        "max_wait",
                        f"plan {p}: group {g.id} waits {wait} s from the end of its green (stage "
                        f"{span.last_stage + 1}) to its next green, limit {plan.max_wait_s} s{limit}",
                        plan=p,
                        stage=span.last_stage + 1,
                        groups=(g.id,),
                        required=plan.max_wait_s,
                        actual=wait,
                    )
                )
            if wait < g.amber_s:
                out.append(
                    Violation(
                        "amber_cut",
                        f"plan {p}: group {g.id} is green again {wait} s after its green ends (stage "
                        f"{span.last_stage + 1}): its {g.amber_s} s amber must be shown in full",
                        plan=p,
                        stage=span.last_stage + 1,
                        groups=(g.id,),
                        required=g.amber_s,
                        actual=wait,
                    )
                )

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
                        f"the conflict matrix requires {entry.intergreen_s} s",
                        plan=p,
                        stage=span.last_stage + 1,
                        groups=(a, b),
                        required=entry.intergreen_s,
                        actual=actual,
                    )
                )
    return out


def validate_schedule(schedule: Schedule, plan_numbers: Iterable[int]) -> list[Violation]:
    known = set(plan_numbers)
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
    return out


def validate_timings(t: Timings) -> list[Violation]:
    """Every rule on an intersection, all its plans and its tables."""
    out = validate_intersection(t.intersection)
    for plan in t.plans:
        out.extend(validate_plan(t.intersection, plan))
    out.extend(validate_schedule(t.schedule, (p.number for p in t.plans)))
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
