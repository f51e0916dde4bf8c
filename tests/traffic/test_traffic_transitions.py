"""Plan changes are safe: every intergreen of the matrix holds across the change from one plan to another.

A transition (drivers/traffic/transition.py) starts at the old plan's cycle boundary; greens the
new plan's stage 1 does not keep end after their minimum green; the new plan's first cycle starts
once every intergreen into stage 1 is met. Then its later stages must also keep every intergreen
from the groups that ended before, which each plan's own check cannot see. The validator refuses a
table that makes such a change; the controller's upload check refuses it too; and in service the
controller waits as long as it takes before the new plan's first cycle, whatever pair a central
asks for and whatever the offset error at the change. The property test at the end runs random
plan pairs and switch instants on the controller and watches its outputs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from test_traffic_property import WEEK, _one_plan_table, draw_plan, intersections
from traffic_testkit import PARIS, only, small_doc, utc, write_toml

from drivers.traffic.config import Timings, parse_timings
from drivers.traffic.registers import Refusal, encode_timings
from drivers.traffic.tables import switch_pairs
from drivers.traffic.timeline import Aspect
from drivers.traffic.transition import transition
from drivers.traffic.validate import validate_plan, validate_timings
from simulators.procs import bin_path
from simulators.signals_engine import Phase, SignalController, check_block

#: P1→V2 needs 14 s (a 14 m clearance at 1 m/s).
#: Plan 1 ends its cycle with V1 and P1 green on into stage 1; plan 2 starts with V1 alone (6 s, then 5 s
#: to V2): its own P1 comes last, 14 s before V2 through the cycle boundary. Each plan is lawful; the
#: change from 1 to 2 ends P1 at the boundary and would start V2 11 s later.
PLAN_1 = {"number": 1, "cycle_s": 69, "offset_s": 0, "stages": [
    {"groups": ["V1", "P1"], "green_s": 20, "interstage_s": 14},
    {"groups": ["V2"], "green_s": 20, "interstage_s": 5},
    {"groups": ["V1", "P1"], "green_s": 10, "interstage_s": 0}]}
PLAN_2 = {"number": 2, "cycle_s": 49, "offset_s": 0, "stages": [
    {"groups": ["V1"], "green_s": 6, "interstage_s": 5},
    {"groups": ["V2"], "green_s": 20, "interstage_s": 5},
    {"groups": ["P1"], "green_s": 10, "interstage_s": 3}]}


def pair_doc(switches: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    doc = small_doc()
    doc["intersection"]["conflicts"][3] = {"from": "P1", "to": "V2", "clearance_m": 14}
    doc["plan"] = [dict(PLAN_1), dict(PLAN_2)]
    doc["day_table"] = [{"id": "everyday", "switches": switches or [{"at": "00:00", "plan": 1}, {"at": "12:00", "plan": 2}]}]
    return doc


def test_each_plan_alone_is_lawful_but_the_change_from_1_to_2_is_refused() -> None:
    t = parse_timings(pair_doc())
    assert [validate_plan(t.intersection, p) for p in t.plans] == [[], []]
    v = only(validate_timings(t), "transition_intergreen")
    assert (v.from_plan, v.plan, v.groups, v.required, v.actual) == (1, 2, ("P1", "V2"), 14, 11)
    assert v.message.startswith("plan 1 → plan 2: the new plan starts at 0 s after the change")
    assert "intergreen P1→V2 in its first cycle is 11 s, the conflict matrix requires 14 s" in v.message


def test_the_transition_follows_its_definition() -> None:
    t = parse_timings(pair_doc())
    change = transition(t.intersection, t.plans[0], t.plans[1])
    # P1 was green since 10 s before the boundary: it has had its 6 s and ends at the change;
    # V2 last ended at 20 + 14 + 20 = 54 s into plan 1's 69 s cycle, 15 s before the change.
    assert change.ended == {"P1": 0, "V2": -15}
    assert change.start_s == 0  # V1 continues: nothing in stage 1 waits
    # the same pair the other way round is lawful: plan 1's stage 1 starts P1 after V2 of plan 2
    assert transition(t.intersection, t.plans[1], t.plans[0]).shortfalls == ()


def test_a_green_ended_at_the_change_first_shows_its_minimum_green() -> None:
    doc = pair_doc()
    doc["plan"][0]["stages"][1]["green_s"] = 26  # plan 1's wrapping V1/P1 span now starts 4 s before the boundary
    doc["plan"][0]["stages"][2]["green_s"] = 4
    t = parse_timings(doc)
    change = transition(t.intersection, t.plans[0], t.plans[1])
    assert change.ended["P1"] == 2 and change.start_s == 2  # 4 s + 2 s = 6 s of green, then plan 2


def test_only_pairs_the_tables_switch_between_are_checked() -> None:
    # a yellow-flash period between them: back to normal is a start-up, not a plan change
    flash = [{"at": "00:00", "plan": 1}, {"at": "11:00", "position": "yellow_flash"}, {"at": "12:00", "plan": 2},
             {"at": "13:00", "position": "dark"}]
    t = parse_timings(pair_doc(flash))
    assert switch_pairs(t.schedule) == set()
    assert validate_timings(t) == []
    # the change can also come at midnight, from one day's table to the next day's
    doc = pair_doc([{"at": "06:00", "plan": 2}, {"at": "22:00", "position": "yellow_flash"}])
    doc["day_table"].append({"id": "sunday", "switches": [{"at": "00:00", "plan": 1}]})
    doc["week"]["sunday"] = "sunday"
    t = parse_timings(doc)
    assert switch_pairs(t.schedule) == {(1, 2)}  # Sunday's plan 1 runs on into Monday 06:00
    assert only(validate_timings(t), "transition_intergreen").from_plan == 1
    # and around a special day only
    doc = pair_doc([{"at": "00:00", "plan": 2}])
    doc["day_table"].append({"id": "holiday", "switches": [{"at": "00:00", "plan": 1}]})
    doc["special_days"] = {"2026-07-14": "holiday"}
    assert switch_pairs(parse_timings(doc).schedule) == {(2, 1), (1, 2)}


def test_plan_check_names_the_pair(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "pair.toml", pair_doc())
    done = subprocess.run([bin_path("citygate-agent"), "plan", "check", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert "[transition_intergreen] plan 1 → plan 2" in done.stderr


def test_the_controllers_upload_check_refuses_the_change_too() -> None:
    t = parse_timings(pair_doc())
    timings, refusal = check_block(t.intersection, encode_timings(t))
    assert timings is None and refusal is not None
    # plan word: from * 256 + to; groups 1-based in the intersection's order (P1 is 3, V2 is 2)
    assert (refusal.code, refusal.plan, refusal.group_a, refusal.group_b) == (Refusal.TRANSITION, 1 << 8 | 2, 3, 2)
    assert (refusal.required, refusal.actual) == (14, 11)


def test_a_central_command_to_any_plan_keeps_every_intergreen_whatever_the_offset_error() -> None:
    # only plan 1 in the tables: the upload check has no change to refuse; a central then asks for plan 2
    for offset in range(0, 49, 3):
        doc = pair_doc([{"at": "00:00", "plan": 1}])
        doc["plan"][1]["offset_s"] = offset
        t = parse_timings(doc)
        ctrl = SignalController(t.intersection, t, start=utc(2026, 6, 1, 10, 0), tz=PARIS)
        ctrl.steps(200)
        assert ctrl.phase is Phase.RUN and ctrl.trip is None
        ctrl.take_control(600)
        ctrl.command_plan(2, 600)
        problems = watch(ctrl, t, 300)
        assert problems == [], (offset, problems)
        assert ctrl.state().plan == 2


def test_the_controller_refuses_an_amber_cut_short_by_the_same_groups_next_green() -> None:
    doc = small_doc()
    doc["plan"][0].update(cycle_s=65, stages=[
        {"groups": ["V1", "P1"], "green_s": 20, "interstage_s": 0},
        {"groups": ["P1"], "green_s": 2, "interstage_s": 0},  # V1: 2 s of its 3 s amber, then green again
        {"groups": ["V1", "P1"], "green_s": 10, "interstage_s": 8},
        {"groups": ["V2"], "green_s": 20, "interstage_s": 5},
    ])
    t = parse_timings(doc)
    assert only(validate_timings(t), "amber_cut").actual == 2
    timings, refusal = check_block(t.intersection, encode_timings(t))
    assert timings is None and refusal is not None
    assert (refusal.code, refusal.group_a, refusal.required, refusal.actual) == (Refusal.AMBER, 1, 3, 2)


def test_the_monitor_watches_ambers() -> None:
    t = parse_timings(small_doc())
    ctrl = SignalController(t.intersection, t, start=utc(2026, 6, 1, 10, 0), tz=PARIS)
    for _ in range(400):
        ctrl.step()
        if ctrl.phase is Phase.RUN and ctrl.out.aspects[0] is Aspect.AMBER:
            break
    ctrl.force_green("V1")  # a stuck output: V1 green again in the middle of its amber
    ctrl.step()
    assert ctrl.trip is not None and "V1 amber" in ctrl.trip.reason and ctrl.mode().name == "FAILURE"


def watch(ctrl: SignalController, t: Timings, seconds: int) -> list[str]:
    """Step the controller; report conflicting greens, short intergreens, short ambers and monitor trips."""
    ix = t.intersection
    ids = [g.id for g in ix.groups]
    need = [[ix.intergreen_s(a, b) for b in ids] for a in ids]
    amber = [g.amber_s for g in ix.groups]
    was = [a is Aspect.GREEN for a in ctrl.out.aspects]
    left: list[int | None] = list(ctrl.monitor.left_green)
    problems: list[str] = []
    for _ in range(seconds):
        ctrl.step()
        now = ctrl.clock_s
        aspects = ctrl.out.aspects
        green = [a is Aspect.GREEN for a in aspects]
        for i, a in enumerate(ids):
            if was[i] and not green[i]:
                left[i] = now
            since = left[i]
            if since is not None and now - since < amber[i] and aspects[i] is not Aspect.AMBER:
                problems.append(f"t={now}: {a} amber cut after {now - since} s")
            for j, b in enumerate(ids):
                if i != j and green[i] and green[j] and need[i][j] is not None:
                    problems.append(f"t={now}: {a} and {b} green together")
                req = need[i][j]
                if green[j] and not was[j] and req is not None and since is not None and now - since < req:
                    problems.append(f"t={now}: intergreen {a}→{b} {now - since} s < {req} s")
        was = green
        if ctrl.trip is not None:
            return [*problems, f"monitor tripped: {ctrl.trip.reason}"]
    return problems


@st.composite
def plan_pairs(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    """An intersection with two plans each lawful on its own, and the second at which a central asks for plan 2."""
    # pedestrians half the time: their clearance (1 m/s) is what a short first stage can cut
    doc, conflicting = draw(intersections(kinds_from=("vehicle", "pedestrian"), min_groups=4))
    first: dict[str, Any] | None = None
    second: dict[str, Any] | None = None
    ids = [g["id"] for g in doc["intersection"]["groups"]]
    pairs = sorted(p for p in conflicting if p[0] < p[1])
    if pairs and draw(st.booleans()):
        # Half the time, the shape that makes a change unsafe, with random groups, conflicts and times:
        # X green across plan 1's cycle boundary; plan 2 first runs a stage with nothing against X,
        # then one that starts Y, which conflicts with X. Each plan is checked lawful on its own below.
        x, y = draw(st.permutations(draw(st.sampled_from(pairs))))
        quiet = [g for g in ids if g != x and (x, g) not in conflicting]
        if quiet:
            first = draw_plan(draw, doc, conflicting, members=[[x], [y], [x]], longest_green_s=20)
            second = draw_plan(draw, doc, conflicting, members=[[draw(st.sampled_from(quiet))], [y], [x]],
                               longest_green_s=10)
            # plan 2's own X→Y runs through its cycle boundary: its last interstage keeps it lawful
            need = parse_timings({**doc, **_one_plan_table([{"groups": [x], "green_s": 10, "interstage_s": 0}], 10, 0)})
            s1, last = second["stages"][0], second["stages"][-1]
            gap = s1["green_s"] + s1["interstage_s"] + last["interstage_s"]
            last["interstage_s"] += max(0, (need.intersection.intergreen_s(x, y) or 0) - gap) + draw(st.integers(0, 2))
            second["cycle_s"] = sum(s["green_s"] + s["interstage_s"] for s in second["stages"])
            second["offset_s"] %= second["cycle_s"]
    if first is None or second is None:
        first = draw_plan(draw, doc, conflicting, min_stages=2, longest_green_s=20)
        second = draw_plan(draw, doc, conflicting, longest_green_s=20)
    doc["plan"] = [{"number": 1, **first}, {"number": 2, **second}]
    doc["day_table"] = [{"id": "all", "switches": [{"at": "00:00", "plan": 1}, {"at": "12:00", "plan": 2}]}]
    doc["week"] = dict.fromkeys(WEEK, "all")
    return doc, draw(st.integers(0, 2 * first["cycle_s"]))


def central_change(doc: dict[str, Any], wait_s: int) -> tuple[SignalController, Timings]:
    """A controller running plan 1 of its tables, to which a central then commands plan 2."""
    t = parse_timings(doc)
    table_of_1 = parse_timings({**doc, "day_table": [{"id": "all", "switches": [{"at": "00:00", "plan": 1}]}]})
    ctrl = SignalController(t.intersection, table_of_1, start=utc(2026, 6, 1, 10, 0), tz=PARIS)
    for _ in range(400):
        ctrl.step()
        if ctrl.phase is Phase.RUN:
            break
    ctrl.steps(wait_s)
    ctrl.take_control(3600)
    ctrl.command_plan(2, 3600)
    return ctrl, t


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(plan_pairs(), st.one_of(st.just(0), st.integers(0, 90)))
def test_a_plan_change_never_shows_conflicting_greens_nor_a_short_intergreen(case: tuple[dict[str, Any], int],
                                                                             offset_error_s: int) -> None:
    doc, wait_s = case
    t = parse_timings(doc)
    alone = [v for p in t.plans for v in validate_plan(t.intersection, p)]
    if alone or validate_timings(parse_timings({**doc, "day_table": [
            {"id": "all", "switches": [{"at": "00:00", "plan": 1}]}]})):
        return  # the generator's plans are lawful on their own almost always; the property is about pairs
    violations = validate_timings(t)
    note(f"violations: {[v.message for v in violations]}")
    accepted, refusal = check_block(t.intersection, encode_timings(t))
    note(f"controller refusal: {refusal}")
    if any(v.rule.startswith("transition_") for v in violations):
        assert accepted is None and refusal is not None and refusal.code is Refusal.TRANSITION
    elif not violations:
        assert accepted is not None, refusal
    # In service the change is safe whatever the validator said (a central may command any pair), and
    # whatever the offset error the new plan starts with: plan 2's offset is set so that its first cycle
    # begins that far from it (the controller then holds stage 1 a few seconds a cycle to catch up).
    probe, _ = central_change(doc, wait_s)
    for _ in range(3 * t.plans[0].cycle_s + 400):
        probe.step()
        if probe.state().plan == 2:
            break
    cycle = t.plans[1].cycle_s
    doc["plan"][1]["offset_s"] = (probe.t_ref + offset_error_s) % cycle
    ctrl, t = central_change(doc, wait_s)
    assert watch(ctrl, t, t.plans[0].cycle_s + 2 * cycle + 400) == []
    assert ctrl.state().plan == 2


def priority_doc() -> dict[str, Any]:
    """A tram T1 crossing V2's road; V2 gives way to it. Plan 1 for the tables; plan 9 serves a tram call."""
    doc = small_doc()
    ix = doc["intersection"]
    ix["groups"].append({"id": "T1", "kind": "tram", "speed_limit_kmh": 30})
    ix["groups"][1]["gives_way_to"] = ["T1"]
    ix["conflicts"] += [{"from": "T1", "to": "V2", "clearance_m": 20}, {"from": "V2", "to": "T1", "clearance_m": 20}]
    doc["plan"][0]["stages"][0]["groups"] = ["V1", "P1", "T1"]
    doc["plan"].append({"number": 9, "cycle_s": 163, "offset_s": 0, "priority": True, "stages": [
        {"groups": ["V1", "P1", "T1"], "green_s": 130, "interstage_s": 8},  # V2 waits 143 s on this cycle
        {"groups": ["V2"], "green_s": 20, "interstage_s": 5}]})
    return doc


def test_the_controller_lets_a_giving_way_group_wait_240_s_only_in_a_priority_plan() -> None:
    t = parse_timings(priority_doc())
    assert validate_timings(t) == []
    accepted, refusal = check_block(t.intersection, encode_timings(t))
    assert accepted is not None, refusal
    doc = priority_doc()
    doc["plan"][1]["priority"] = False  # the same long cycle as a plan of its own: 120 s for everyone
    doc["plan"][1]["number"] = 1
    doc["plan"] = doc["plan"][1:]
    t = parse_timings(doc)
    accepted, refusal = check_block(t.intersection, encode_timings(t))
    assert accepted is None and refusal is not None
    assert (refusal.code, refusal.group_a, refusal.required, refusal.actual) == (Refusal.MAX_WAIT, 2, 120, 143)


def test_the_controller_refuses_tables_that_run_a_priority_plan() -> None:
    doc = priority_doc()
    doc["day_table"][0]["switches"].append({"at": "07:00", "plan": 9})
    t = parse_timings(doc)
    assert only(validate_timings(t), "priority_plan_in_table").plan == 9
    accepted, refusal = check_block(t.intersection, encode_timings(t))
    assert accepted is None and refusal is not None and (refusal.code, refusal.plan) == (Refusal.STRUCTURE, 9)


def test_a_priority_plan_serves_one_cycle_then_the_tables_plan_returns() -> None:
    t = parse_timings(priority_doc())
    ctrl = SignalController(t.intersection, t, start=utc(2026, 6, 1, 10, 0), tz=PARIS)
    ctrl.steps(300)
    ctrl.take_control(3600)
    ctrl.command_plan(9, 3600)  # the tram's call
    plans = []
    problems = []
    for _ in range(63 + 163 + 63 + 120):
        problems += watch(ctrl, t, 1)
        plans.append(ctrl.state().plan)
    assert problems == []
    served = [p for p in plans if p == 9]
    assert 163 <= len(served) <= 163 + 8 and plans[-1] == 1  # one cycle (and the hold of its entry), then plan 1


def test_leaving_for_yellow_flash_lets_every_amber_run_out() -> None:
    # V1 (70 km/h) has a 5 s amber, V2 a 3 s one: a flash command in any second of the cycle, even
    # while an amber runs from the stage before, goes to flashing amber only once every amber is over
    doc = small_doc()
    doc["intersection"]["groups"][0]["speed_limit_kmh"] = 70
    t = parse_timings(doc)
    for second in range(t.plans[0].cycle_s):
        ctrl = SignalController(t.intersection, t, start=utc(2026, 6, 1, 10, 0), tz=PARIS)
        ctrl.steps(200 + second)
        ctrl.take_control(600)
        ctrl.command_position(1, 600)  # yellow flash
        assert watch(ctrl, t, 12) == [], second
        assert ctrl.mode().name == "YELLOW_FLASH"


def test_the_controller_refuses_tables_for_an_intersection_whose_facts_break_the_rules() -> None:
    doc = small_doc()
    doc["intersection"]["groups"][1]["speed_limit_kmh"] = 70  # V2 keeps a 3 s amber on a 70 km/h approach
    doc["intersection"]["groups"][1]["amber_s"] = 3
    t = parse_timings(doc)
    assert only(validate_timings(t), "amber").groups == ("V2",)
    accepted, refusal = check_block(t.intersection, encode_timings(t))
    assert accepted is None and refusal is not None
    assert (refusal.code, refusal.group_a, refusal.required, refusal.actual) == (Refusal.AMBER, 2, 5, 3)
    doc = small_doc()
    doc["intersection"]["groups"][2]["crossing_m"] = 9  # P1→V2 is 8 s: a 9 m crosswalk needs 9 s
    t = parse_timings(doc)
    assert only(validate_timings(t), "crossing_clearance").required == 9
    accepted, refusal = check_block(t.intersection, encode_timings(t))
    assert accepted is None and refusal is not None
    assert (refusal.code, refusal.group_a, refusal.group_b, refusal.required, refusal.actual) == (
        Refusal.INTERGREEN, 3, 2, 9, 8)


def test_a_wait_across_the_change_counts_like_any_other() -> None:
    # plan 1 ends V2's green 10 s before its boundary; plan 2 shows V2 111 s into its cycle: 121 s of red,
    # though V2 waits only 116 s within plan 2 (5 s of interstage before its stage 1)
    doc = small_doc()
    doc["plan"][0]["stages"][1].update(green_s=15, interstage_s=10)
    doc["plan"].append({"number": 2, "cycle_s": 136, "offset_s": 0, "stages": [
        {"groups": ["V1", "P1"], "green_s": 103, "interstage_s": 8},
        {"groups": ["V2"], "green_s": 20, "interstage_s": 5}]})
    doc["day_table"][0]["switches"].append({"at": "18:00", "plan": 2})
    t = parse_timings(doc)
    assert validate_plan(t.intersection, t.plans[1]) == []  # 116 s within plan 2
    v = only(validate_timings(t), "transition_max_wait")
    assert (v.from_plan, v.plan, v.groups, v.required, v.actual) == (1, 2, ("V2",), 120, 121)
    assert "arrêté of 9 April 2021" in v.message
    accepted, refusal = check_block(t.intersection, encode_timings(t))
    assert accepted is None and refusal is not None
    assert (refusal.code, refusal.plan, refusal.group_a, refusal.required, refusal.actual) == (
        Refusal.TRANSITION, 1 << 8 | 2, 2, 120, 121)
