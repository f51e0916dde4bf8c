"""What happens when the controller changes from one plan to another: the transition, second by second.

The semantics, which the controller (simulators/signals_engine.py) implements on its own:

- The change happens at the old plan's cycle boundary: the second its stage 1 would start
  again. Times here count from it (0 = the change, negative = before it).
- A group green at the change that the new plan's stage 1 keeps stays green. Any other green
  ends as soon as it has shown its minimum green (6 s from its start), then shows its amber.
- The new plan's first cycle begins (its cycle second 0, the start of its stage 1 green) at
  the first second T >= 0 at which every green ended at the change is over, and every group
  stage 1 starts has its own amber behind it and every intergreen of the matrix from every
  group that ended before (in the old plan or at the change). Nothing is shortened to reach
  the new plan's offset: the controller reaches it afterwards by holding stage 1 green a few
  seconds a cycle, which only makes later starts later.
- A transition is lawful when, from that T, the new plan's first cycle as written keeps every
  intergreen of the matrix from each group that ended before T to each group it starts, shows
  every amber in full before the same group's next green, and makes no group wait longer than
  it may. The validator checks this for each pair of plans a table can switch between; the
  controller checks it again at upload, and at run time (a central command can ask for any
  pair) it waits longer before the first cycle when a start would come too early.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.traffic.model import MAX_WAIT_S, MIN_GREEN_S, Intersection, Plan, max_wait_s
from drivers.traffic.timeline import green_spans, period_s, stage_timings


@dataclass(frozen=True, slots=True)
class Shortfall:
    """One thing a transition gets wrong: `rule` is intergreen, amber_cut or max_wait."""

    rule: str
    from_group: str
    to_group: str
    required: int
    actual: int


@dataclass(frozen=True, slots=True)
class Transition:
    start_s: int  # T: the new plan's cycle second 0, counted from the change
    ended: dict[str, int]  # last green end before T, per group that is not green from the change on
    shortfalls: tuple[Shortfall, ...]


def _state_at_change(old: Plan) -> tuple[dict[str, int], dict[str, int | None]]:
    """Groups green at the change with their green start (None: green all cycle), and the others' last end."""
    period = period_s(old)
    green: dict[str, int | None] = {}
    ended: dict[str, int] = {}
    for group, spans in green_spans(old).items():
        for span in spans:
            if span.length_s >= period:
                green[group] = None
            elif span.end_s > period:
                green[group] = span.start_s - period
        if group in green:
            continue
        # a span ending at or before the boundary ended that much before the change
        ended[group] = max(span.end_s - period for span in spans)
    return ended, green


def first_cycle_greens(plan: Plan) -> dict[str, list[tuple[int, int]]]:
    """Each group's green intervals [start, end) in a plan's first cycle, entered at stage 1."""
    out: dict[str, list[tuple[int, int]]] = {}
    for timing, stage in zip(stage_timings(plan), plan.stages, strict=True):
        nxt = timing.index + 1
        following = plan.stages[nxt].groups if nxt < len(plan.stages) else frozenset()
        for g in stage.groups:
            runs = out.setdefault(g, [])
            end = timing.next_green_s if g in following else timing.green_end_s
            if runs and runs[-1][1] == timing.green_start_s:
                runs[-1] = (runs[-1][0], end)
            else:
                runs.append((timing.green_start_s, end))
    return out


def transition(ix: Intersection, old: Plan, new: Plan) -> Transition:
    ended, green = _state_at_change(old)
    amber = {g.id: g.amber_s for g in ix.groups}
    stage1 = new.stages[0].groups
    for g, since in green.items():
        if g not in stage1:
            ended[g] = max(0, since + MIN_GREEN_S) if since is not None else 0
    continuing = set(green) & stage1
    start = max([0, *(ended[g] for g in green if g not in stage1)])
    for j in stage1 - continuing:
        if j in ended:
            start = max(start, ended[j] + amber[j])
        for i, end in ended.items():
            need = ix.intergreen_s(i, j)
            if need is not None:
                start = max(start, end + need)
    greens = first_cycle_greens(new)
    shortfalls: list[Shortfall] = []
    for j, runs in greens.items():
        for s, _ in runs:
            if s == 0 and j in continuing:
                continue
            at = start + s
            for i, end in ended.items():
                need = ix.intergreen_s(i, j)
                regreened = any(a < s for a, _ in greens.get(i, []))
                if need is not None and not regreened and at - end < need:
                    shortfalls.append(Shortfall("intergreen", i, j, need, at - end))
            if j in ended and not any(a < s for a, _ in runs):
                wait = at - ended[j]
                if wait < amber[j]:
                    shortfalls.append(Shortfall("amber_cut", j, j, amber[j], wait))
                limit = max(max_wait_s(ix, old, j), max_wait_s(ix, new, j), MAX_WAIT_S)
                if wait > limit:
                    shortfalls.append(Shortfall("max_wait", j, j, limit, wait))
    return Transition(start, ended, tuple(shortfalls))
