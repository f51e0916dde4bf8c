"""Property: for random intersections and plans, the validator refuses, or the plan runs safely on the controller.

"Safely" is checked three times, by three independent pieces of code: the controller's own
conflict monitor must not trip, its own upload check must accept the plan, and this test
watches the outputs second by second for two conflicting greens or an intergreen shorter
than the matrix. Conversely, when the validator refuses for a reason the controller checks
too (conflict, intergreen, minimum green, wait, cycle sum, offset), the controller's check
must refuse as well.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from traffic_testkit import PARIS, utc

from drivers.traffic.config import Timings, parse_timings
from drivers.traffic.model import GroupKind, required_amber_s
from drivers.traffic.registers import encode_timings
from drivers.traffic.timeline import Aspect
from drivers.traffic.validate import validate_timings
from simulators.signals_engine import Phase, SignalController, check_block

KINDS = ("vehicle", "vehicle", "pedestrian", "tram", "bus")
#: Approach speed limits: None is "not given" (long amber, the safe side).
SPEEDS = (30, 50, 50, 70, 90, None)
CONTROLLER_RULES = {"conflicting_greens", "intergreen", "min_green", "max_wait", "cycle_sum", "offset", "amber_cut"}
WEEK = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


#: At most one rule is broken on purpose per example; None most of the time.
FLAWS = (None, None, None, None, None, "together", "missing", "short_green", "interstage", "cycle", "offset", "given_ig")


@st.composite
def intersections(draw: st.DrawFn, flaw: str | None = None,
                  kinds_from: tuple[str, ...] = KINDS, min_groups: int = 2) -> tuple[dict[str, Any], set[tuple[str, str]]]:
    """A random intersection document, and its conflicting pairs (both directions)."""
    n = draw(st.integers(min_groups, 7))
    ids = [f"G{i + 1}" for i in range(n)]
    kinds = {g: draw(st.sampled_from(kinds_from)) for g in ids}
    groups: list[dict[str, Any]] = []
    for g in ids:
        speed = None if kinds[g] == "pedestrian" else draw(st.sampled_from(SPEEDS))
        groups.append({"id": g, "kind": kinds[g]} | ({"speed_limit_kmh": speed} if speed is not None else {}))
    conflicts: list[dict[str, Any]] = []
    conflicting: set[tuple[str, str]] = set()
    for i in range(n):
        for j in range(i + 1, n):
            if draw(st.booleans()):
                conflicting |= {(ids[i], ids[j]), (ids[j], ids[i])}
                for a, b in ((ids[i], ids[j]), (ids[j], ids[i])):
                    if draw(st.integers(0, 3)) == 3:
                        amber = required_amber_s(GroupKind(kinds[a]), groups[ids.index(a)].get("speed_limit_kmh"))
                        low = 0 if flaw == "given_ig" else amber + 2
                        conflicts.append({"from": a, "to": b, "intergreen_s": draw(st.integers(low, amber + 12))})
                    else:
                        conflicts.append({"from": a, "to": b, "clearance_m": draw(st.integers(0, 30))})
    setting = draw(st.sampled_from(["urban", "rural"]))
    return {"intersection": {"id": "random", "setting": setting, "groups": groups, "conflicts": conflicts}}, conflicting


def draw_plan(draw: st.DrawFn, doc: dict[str, Any], conflicting: set[tuple[str, str]],
              flaw: str | None = None, min_stages: int = 1, members: list[list[str]] | None = None,
              longest_green_s: int = 30) -> dict[str, Any]:
    """A plan for the intersection of `doc`: lawful unless `flaw` says otherwise; `members`: its stages' groups."""
    ids = [g["id"] for g in doc["intersection"]["groups"]]
    n = len(ids)
    ix = parse_timings({**doc, **_one_plan_table([{"groups": [ids[0]], "green_s": 10, "interstage_s": 0}], 10, 0)})
    need = ix.intersection.intergreen_s

    def fits(g: str, members: list[str]) -> bool:
        return flaw == "together" or not any((g, m) in conflicting for m in members)

    # Lawful unless the flaw says otherwise: conflict-free stages covering every group,
    # interstages long enough for the matrix between neighbouring stages, greens of 6 s or more.
    stages: list[dict[str, Any]] = [{"groups": list(m)} for m in members or []]
    for _ in range(0 if members else draw(st.integers(min_stages, 5))):
        chosen: list[str] = []
        for g in draw(st.permutations(ids))[: draw(st.integers(1, n))]:
            if fits(g, chosen):
                chosen.append(g)
        stages.append({"groups": chosen})
    missing = [g for g in ids if not any(g in s["groups"] for s in stages)]
    for g in missing[1:] if flaw == "missing" else missing:
        home = next((s for s in stages if fits(g, s["groups"])), None)
        if home is None:
            stages.append(home := {"groups": []})
        home["groups"].append(g)
    stages = [s for s in stages if s["groups"]]
    for stage in stages:
        stage["green_s"] = draw(st.integers(1, 8) if flaw == "short_green" else st.integers(6, longest_green_s))
    for k, stage in enumerate(stages):
        nxt = stages[(k + 1) % len(stages)]
        ending = set(stage["groups"]) - set(nxt["groups"])
        starting = set(nxt["groups"]) - set(stage["groups"])
        required = max([need(a, b) or 0 for a in ending for b in starting] + [0])
        stage["interstage_s"] = draw(st.integers(0, 15) if flaw == "interstage" else st.integers(required, required + 3))
    total = sum(s["green_s"] + s["interstage_s"] for s in stages)
    cycle = draw(st.integers(max(1, total - 3), total + 3)) if flaw == "cycle" else total
    offset = draw(st.integers(-3, cycle + 3) if flaw == "offset" else st.integers(0, cycle - 1))
    return {"cycle_s": cycle, "offset_s": offset, "stages": stages}


@st.composite
def crossings(draw: st.DrawFn) -> dict[str, Any]:
    flaw = draw(st.sampled_from(FLAWS))
    doc, conflicting = draw(intersections(flaw))
    plan = draw_plan(draw, doc, conflicting, flaw)
    return {**doc, **_one_plan_table(plan["stages"], plan["cycle_s"], plan["offset_s"])}


def _one_plan_table(stages: list[dict[str, Any]], cycle: int, offset: int) -> dict[str, Any]:
    return {
        "plan": [{"number": 1, "cycle_s": cycle, "offset_s": offset, "stages": stages}],
        "day_table": [{"id": "all", "switches": [{"at": "00:00", "plan": 1}]}],
        "week": dict.fromkeys(WEEK, "all"),
    }


def run_and_watch(timings: Timings, cycles: int) -> list[str]:
    """Run the plan on the controller engine; return what the outputs did wrong (nothing, we expect)."""
    ix = timings.intersection
    plan = timings.plans[0]
    ctrl = SignalController(ix, timings, start=utc(2026, 6, 1, 10, 0), tz=PARIS)
    n = len(ix.groups)
    ids = [g.id for g in ix.groups]
    need = [[ix.intergreen_s(a, b) for b in ids] for a in ids]
    was_green = [False] * n
    left_green: list[int | None] = [None] * n
    problems: list[str] = []
    ran = 0
    limit = plan.cycle_s * (cycles + 1) + 60
    for _ in range(limit):
        ctrl.step()
        t = ctrl.clock_s
        green = [a is Aspect.GREEN for a in ctrl.out.aspects]
        for i in range(n):
            for j in range(n):
                if i != j and green[i] and green[j] and need[i][j] is not None:
                    problems.append(f"t={t}: {ids[i]} and {ids[j]} green together")
        for i in range(n):
            if was_green[i] and not green[i]:
                left_green[i] = t
        for j in range(n):
            if green[j] and not was_green[j]:
                for i in range(n):
                    req, left = need[i][j], left_green[i]
                    if req is not None and left is not None and t - left < req:
                        problems.append(f"t={t}: intergreen {ids[i]}→{ids[j]} {t - left} s < {req} s")
        was_green = green
        if ctrl.trip is not None:
            problems.append(f"monitor tripped: {ctrl.trip.reason}")
            break
        ran += ctrl.phase is Phase.RUN
    if ran < plan.cycle_s * cycles:
        problems.append(f"ran the plan only {ran} s")
    return problems


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(crossings())
def test_the_validator_refuses_or_the_plan_runs_safely(doc: dict[str, Any]) -> None:
    timings = parse_timings(doc)
    violations = validate_timings(timings)
    rules = {v.rule for v in violations}
    note(f"violations: {[v.message for v in violations]}")
    accepted_by_controller, refusal = check_block(timings.intersection, encode_timings(timings))
    note(f"controller refusal: {refusal}")
    if not violations:
        assert accepted_by_controller is not None, refusal
        assert run_and_watch(timings, cycles=4) == []
    elif rules & CONTROLLER_RULES:
        assert accepted_by_controller is None


def test_the_generator_produces_both_lawful_and_unlawful_plans() -> None:
    """Guard against a property that passes because every plan is refused."""
    outcomes: list[bool] = []

    @settings(max_examples=120, deadline=None, database=None)
    @given(crossings())
    def sample(doc: dict[str, Any]) -> None:
        outcomes.append(not validate_timings(parse_timings(doc)))

    sample()
    assert 0.15 < sum(outcomes) / len(outcomes) < 0.9, sum(outcomes) / len(outcomes)
