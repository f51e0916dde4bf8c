"""Traffic plans: validations per second for a 16-group intersection, as ratios to baselines of the same run.

A central pushing tables to 113 intersections must not wait on the validator. The intersection
is a large urban crossing (4 arms x through, left turn and crosswalk, plus 2 tram and 2 bus
groups), its matrix computed from clearance distances; the plan has 8 stages built to be lawful
(the run checks that the validator accepts it). Baselines, same process, same plan:
  - copy: rebuilding the plan's objects (Plan and Stage dataclasses), the least any check costs;
  - timeline: computing the plan's second-by-second aspects once (what the validator's spans replace);
  - controller: the simulated controller's own check of the same plan (three cycles under its monitor).

    python bench/bench_traffic.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
from collections.abc import Callable
from typing import Any

from drivers.traffic.config import Timings, parse_timings
from drivers.traffic.registers import encode_timings
from drivers.traffic.timeline import cycle_aspects
from drivers.traffic.validate import validate_plan, validate_timings
from simulators.signals_engine import check_block

ARMS = ("N", "E", "S", "W")
WEEK = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def big_crossing(seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    groups: list[dict[str, str]] = []
    for arm in ARMS:
        groups += [{"id": f"{arm}T", "kind": "vehicle"}, {"id": f"{arm}L", "kind": "vehicle"},
                   {"id": f"{arm}P", "kind": "pedestrian"}]
    groups += [{"id": "TR1", "kind": "tram"}, {"id": "TR2", "kind": "tram"},
               {"id": "BU1", "kind": "bus"}, {"id": "BU2", "kind": "bus"}]
    ids = [g["id"] for g in groups]
    axis = {"N": 0, "S": 0, "E": 1, "W": 1, "TR1": 0, "TR2": 0, "BU1": 1, "BU2": 1}

    def side(g: str) -> int:
        return axis[g] if g in axis else axis[g[0]]

    exits = {"NL": "E", "SL": "W", "EL": "S", "WL": "N"}  # where a left turn leaves (right-hand traffic)

    def conflicting(a: str, b: str) -> bool:
        """Crossing streams conflict; opposing left turns pass each other; a crosswalk conflicts with what crosses its arm."""
        if a.endswith("P") and b.endswith("P"):
            return False
        if a.endswith("P") or b.endswith("P"):
            walk, other = (a, b) if a.endswith("P") else (b, a)
            if other.endswith("L"):
                return exits[other] == walk[0]
            return side(other) == side(walk)
        if side(a) != side(b):
            return True
        lefts = [g for g in (a, b) if g.endswith("L")]
        if len(lefts) != 1:
            return False
        left, other = (a, b) if a in lefts else (b, a)
        return other[0] != left[0]  # the opposite through stream, or the tram/bus of that axis

    conflicts = [
        {"from": a, "to": b, "clearance_m": rng.randint(8, 14) if a.endswith("P") else rng.randint(6, 30)}
        for a in ids for b in ids if a != b and conflicting(a, b)
    ]
    doc: dict[str, Any] = {
        "intersection": {"id": "bench-16", "setting": "urban", "groups": groups, "conflicts": conflicts},
        "day_table": [{"id": "all", "switches": [{"at": "00:00", "plan": 1}]}],
        "week": dict.fromkeys(WEEK, "all"),
    }
    ix = parse_timings({**doc, "plan": [{"number": 1, "cycle_s": 1, "offset_s": 0,
                                         "stages": [{"groups": [ids[0]], "green_s": 1, "interstage_s": 0}]}]}).intersection
    stage_sets = [
        ["NT", "ST", "TR1", "TR2", "EP", "WP"], ["NT", "ST", "TR1", "TR2"], ["NL", "SL"], ["NL", "SL", "NP", "SP"],
        ["ET", "WT", "BU1", "BU2", "NP", "SP"], ["ET", "WT", "BU1", "BU2"], ["EL", "WL"], ["EL", "WL", "EP", "WP"],
    ]
    stages: list[dict[str, Any]] = []
    for k, members in enumerate(stage_sets):
        nxt = stage_sets[(k + 1) % len(stage_sets)]
        need = [ix.intergreen_s(a, b) or 0 for a in members if a not in nxt for b in nxt if b not in members]
        stages.append({"groups": members, "green_s": 8 if k % 2 else 12, "interstage_s": max([0, *need])})
    # Neighbouring stages are cleared above; a crosswalk ending two stages before a conflicting
    # start may need more: lengthen the interstage after its stage until the validator agrees.
    for _ in range(20):
        plan = {"number": 1, "cycle_s": sum(s["green_s"] + s["interstage_s"] for s in stages), "offset_s": 0,
                "stages": stages}
        short = [v for v in validate_plan(ix, parse_timings({**doc, "plan": [plan]}).plans[0]) if v.rule == "intergreen"]
        if not short:
            break
        for v in short:
            assert v.stage is not None and v.required is not None and v.actual is not None
            stages[v.stage - 1]["interstage_s"] += v.required - v.actual
    cycle = sum(s["green_s"] + s["interstage_s"] for s in stages)
    doc["plan"] = [{"number": n, "cycle_s": cycle, "offset_s": (7 * n) % cycle, "stages": stages} for n in (1, 2, 3, 4)]
    return doc


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of `fn`, measured for about `seconds`."""
    n, t0 = 0, time.perf_counter()
    batch = 1
    while (elapsed := time.perf_counter() - t0) < seconds:
        for _ in range(batch):
            fn()
        n += batch
        batch = min(batch * 2, 1000)
    return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="measuring time per figure")
    args = ap.parse_args()
    timings: Timings = parse_timings(big_crossing())
    ix, plan = timings.intersection, timings.plans[0]
    assert len(ix.groups) == 16
    assert validate_timings(timings) == [], [v.message for v in validate_timings(timings)]
    block = encode_timings(timings)

    validate = rate(lambda: validate_plan(ix, plan), args.seconds)
    copy = rate(lambda: dataclasses.replace(plan, stages=tuple(dataclasses.replace(s) for s in plan.stages)), args.seconds)
    timeline = rate(lambda: cycle_aspects(ix, plan), args.seconds)
    whole = rate(lambda: validate_timings(timings), args.seconds)
    controller = rate(lambda: check_block(ix, block), args.seconds)

    print(f"intersection: {len(ix.groups)} groups, {len(ix.matrix)} matrix entries; plan: {len(plan.stages)} stages, "
          f"cycle {plan.cycle_s} s; file: {len(timings.plans)} plans")
    print(f"validate one plan:           {validate:12,.0f} plans/s   ({1e6 / validate:8.1f} µs)")
    print(f"  baseline copy the plan:    {copy:12,.0f} /s       ratio validate/copy     = {validate / copy:.3f}")
    print(f"  baseline one timeline:     {timeline:12,.0f} /s       ratio validate/timeline = {validate / timeline:.2f}")
    print(f"validate the whole file:     {whole:12,.0f} files/s   ({1e3 / whole:8.3f} ms)")
    print(f"controller's own check:      {controller:12,.0f} files/s   ratio validate-file/controller = "
          f"{whole / controller:.1f}")
    print(f"113 intersections x {len(timings.plans)} plans: {113 / whole * 1e3:.1f} ms of validation in all")


if __name__ == "__main__":
    main()
