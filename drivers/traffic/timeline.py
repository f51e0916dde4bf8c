"""Where each signal group is green, amber or red, second by second, in one cycle of a plan.

Stage k's green runs over [S_k, S_k + G_k), its interstage over [S_k + G_k, S_{k+1}), with
S_0 = 0. A group's green *span* is a maximal run of consecutive stages it belongs to (cyclic):
it starts at its first stage's green and ends at its last stage's green end, staying green
through the interstages in between. When a span ends, a vehicle, tram or bus group shows its
amber for `amber_s`, then red; a pedestrian group goes straight to red. So the intergreen from
a group ending at E to a group starting at S is S - E: amber plus clearance red.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from drivers.traffic.model import Intersection, Plan


class Aspect(IntEnum):
    """What a signal group shows; the values are the register codes of the controller map."""

    DARK = 0
    RED = 1
    AMBER = 2
    GREEN = 3
    FLASHING_AMBER = 4


@dataclass(frozen=True, slots=True)
class StageTiming:
    index: int  # 0-based; people and messages count stages from 1
    green_start_s: int
    green_end_s: int
    next_green_s: int  # green_end_s + interstage_s


@dataclass(frozen=True, slots=True)
class GreenSpan:
    group: str
    start_s: int  # cycle second in [0, period)
    length_s: int
    first_stage: int
    last_stage: int

    @property
    def end_s(self) -> int:
        """First second after the green; may be beyond the period when the span wraps."""
        return self.start_s + self.length_s


@dataclass(frozen=True, slots=True)
class Interstage:
    """The change from stage `after` to the next one, made explicit."""

    after: int
    start_s: int
    duration_s: int
    ending: frozenset[str]
    starting: frozenset[str]
    continuing: frozenset[str]


def period_s(plan: Plan) -> int:
    """Length of one pass through the stages: equals the cycle in a valid plan."""
    return sum(s.green_s + s.interstage_s for s in plan.stages)


def stage_timings(plan: Plan) -> list[StageTiming]:
    timings: list[StageTiming] = []
    t = 0
    for k, stage in enumerate(plan.stages):
        timings.append(StageTiming(k, t, t + stage.green_s, t + stage.green_s + stage.interstage_s))
        t += stage.green_s + stage.interstage_s
    return timings


def interstages(plan: Plan) -> list[Interstage]:
    stages = plan.stages
    out: list[Interstage] = []
    for timing in stage_timings(plan):
        here, nxt = stages[timing.index].groups, stages[(timing.index + 1) % len(stages)].groups
        out.append(
            Interstage(
                after=timing.index,
                start_s=timing.green_end_s,
                duration_s=stages[timing.index].interstage_s,
                ending=here - nxt,
                starting=nxt - here,
                continuing=here & nxt,
            )
        )
    return out


def green_spans(plan: Plan) -> dict[str, list[GreenSpan]]:
    """Each group's green spans in one period; a group green in every stage has one span of the whole period."""
    timings = stage_timings(plan)
    n = len(plan.stages)
    period = period_s(plan)
    members: dict[str, list[int]] = {}
    for k, stage in enumerate(plan.stages):
        for g in stage.groups:
            members.setdefault(g, []).append(k)
    spans: dict[str, list[GreenSpan]] = {}
    for group, ks in members.items():
        inside = set(ks)
        if len(inside) == n:
            spans[group] = [GreenSpan(group, 0, period, 0, n - 1)]
            continue
        runs: list[GreenSpan] = []
        for k in ks:
            if (k - 1) % n in inside:
                continue  # not the first stage of a run
            last = k
            while (last + 1) % n in inside:
                last = (last + 1) % n
            start = timings[k].green_start_s
            end = timings[last].green_end_s + (period if last < k else 0)
            runs.append(GreenSpan(group, start, end - start, k, last))
        spans[group] = runs
    return spans


def cycle_aspects(intersection: Intersection, plan: Plan) -> list[tuple[Aspect, ...]]:
    """One row per second of the period: the aspect of every group, in the intersection's group order."""
    period = period_s(plan)
    rows = [[Aspect.RED] * len(intersection.groups) for _ in range(period)]
    spans = green_spans(plan)
    # Ambers first, greens over them: a span wrapping into the next one's amber never shows amber.
    for group, runs in spans.items():
        i = intersection.index[group]
        amber = intersection.groups[i].amber_s
        for span in runs:
            if span.length_s < period:
                for t in range(span.end_s, span.end_s + amber):
                    rows[t % period][i] = Aspect.AMBER
    for group, runs in spans.items():
        i = intersection.index[group]
        for span in runs:
            for t in range(span.start_s, span.end_s):
                rows[t % period][i] = Aspect.GREEN
    return [tuple(r) for r in rows]
