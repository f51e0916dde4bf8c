"""The French rules (DOMAIN.md §3), each refused when broken, with which groups and required vs actual."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
from traffic_testkit import DIJON, RURAL, only, small, small_doc, write_toml

from drivers.errors import ConfigError
from drivers.traffic.config import load_timings, parse_timings
from drivers.traffic.model import GroupKind, Stage, clearance_red_s, crossing_clearance_s, required_amber_s
from drivers.traffic.validate import validate_intersection, validate_plan, validate_timings
from simulators.procs import bin_path


def check(doc: dict[str, Any]) -> list[Any]:
    return validate_timings(parse_timings(doc))


def test_shipped_intersections_and_the_test_crossing_are_lawful() -> None:
    for path in (DIJON, RURAL):
        assert validate_timings(load_timings(path)) == [], path
    assert validate_timings(small()) == []


# ---- figures ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "speed_kmh", "amber_s"),
    [
        (GroupKind.VEHICLE, 50, 3),  # at most 50 km/h: 3 s
        (GroupKind.VEHICLE, 30, 3),
        (GroupKind.VEHICLE, 51, 5),  # above 50 km/h: 5 s
        (GroupKind.VEHICLE, 70, 5),
        (GroupKind.TRAM, 50, 3),
        (GroupKind.BUS, 90, 5),
        (GroupKind.VEHICLE, None, 5),  # not given: the safe side, the long amber
        (GroupKind.PEDESTRIAN, None, 0),  # R12 pedestrian signals have no amber
    ],
)
def test_amber_follows_the_speed_limit_of_the_approach(kind: GroupKind, speed_kmh: int | None, amber_s: int) -> None:
    assert required_amber_s(kind, speed_kmh) == amber_s


def test_amber_is_per_group_not_per_intersection() -> None:
    doc = small_doc()
    doc["intersection"]["groups"][1]["speed_limit_kmh"] = 70  # V2 is a fast approach, V1 stays at 50
    ix = parse_timings(doc).intersection
    assert [g.amber_s for g in ix.groups] == [3, 5, 0]
    doc["intersection"]["setting"] = "rural"  # the setting no longer decides the amber
    assert [g.amber_s for g in parse_timings(doc).intersection.groups] == [3, 5, 0]
    del doc["intersection"]["groups"][0]["speed_limit_kmh"]
    assert [g.amber_s for g in parse_timings(doc).intersection.groups] == [5, 5, 0]


@pytest.mark.parametrize(
    ("kind", "distance_m", "red_s"),
    [
        (GroupKind.VEHICLE, 20, 2),  # 20 m at 10 m/s: exactly 2 s, not rounded up to 3
        (GroupKind.VEHICLE, 20.1, 3),  # rounded up
        (GroupKind.VEHICLE, 5, 2),  # never below 2 s
        (GroupKind.VEHICLE, 0, 2),
        (GroupKind.TRAM, 35, 4),
        (GroupKind.PEDESTRIAN, 8, 8),  # 1 m/s
        (GroupKind.PEDESTRIAN, 7.2, 8),
        (GroupKind.PEDESTRIAN, 1.5, 2),
    ],
)
def test_clearance_red_from_the_distance(kind: GroupKind, distance_m: float, red_s: int) -> None:
    assert clearance_red_s(kind, distance_m) == red_s


def test_intergreen_is_amber_plus_clearance_red() -> None:
    ix = small().intersection
    assert ix.intergreen_s("V1", "V2") == 3 + 2
    assert ix.intergreen_s("P1", "V2") == 0 + 8
    doc = small_doc()
    doc["intersection"]["groups"][0]["speed_limit_kmh"] = 80
    assert parse_timings(doc).intersection.intergreen_s("V1", "V2") == 5 + 2


# ---- intersection rules -----------------------------------------------------------------


def test_amber_other_than_3_s_at_50_kmh_is_refused() -> None:
    doc = small_doc()
    doc["intersection"]["groups"][0]["amber_s"] = 4
    v = only(check(doc), "amber")
    assert (v.groups, v.required, v.actual) == (("V1",), 3, 4)
    assert "group V1 (vehicle): amber 4 s, required 3 s (speed limit 50 km/h, at most 50 km/h; IISR 6th part art. 110 C)" \
        in v.message


def test_amber_other_than_5_s_above_50_kmh_is_refused() -> None:
    doc = small_doc()
    doc["intersection"]["groups"][1].update(speed_limit_kmh=70, amber_s=3)
    v = only(check(doc), "amber")
    assert (v.groups, v.required, v.actual) == (("V2",), 5, 3)
    assert "speed limit 70 km/h, above 50 km/h" in v.message


def test_a_3_s_amber_without_a_speed_limit_is_refused() -> None:
    doc = small_doc()
    doc["intersection"]["groups"][1].pop("speed_limit_kmh")
    doc["intersection"]["groups"][1]["amber_s"] = 3
    v = only(check(doc), "amber")
    assert (v.groups, v.required, v.actual) == (("V2",), 5, 3)
    assert "no speed_limit_kmh given: treated as above 50 km/h" in v.message


def test_pedestrian_amber_is_refused() -> None:
    doc = small_doc()
    doc["intersection"]["groups"][2]["amber_s"] = 3
    v = only(check(doc), "amber")
    assert (v.groups, v.required, v.actual) == (("P1",), 0, 3)
    assert "pedestrian signals have no amber" in v.message


def test_given_intergreen_with_clearance_red_below_2_s_is_refused() -> None:
    doc = small_doc()
    doc["intersection"]["conflicts"][0] = {"from": "V1", "to": "V2", "intergreen_s": 4}
    v = only(check(doc), "clearance_red")
    assert (v.groups, v.required, v.actual) == (("V1", "V2"), 5, 4)
    assert "clearance red of 1 s after the 3 s amber, required at least 2 s" in v.message


def test_given_intergreen_shorter_than_its_distance_needs_is_refused() -> None:
    doc = small_doc()
    doc["intersection"]["conflicts"][2] = {"from": "V2", "to": "P1", "clearance_m": 25, "intergreen_s": 5}
    v = only(check(doc), "clearance_distance")
    assert (v.groups, v.required, v.actual) == (("V2", "P1"), 6, 5)
    assert "to clear 25 m" in v.message


@pytest.mark.parametrize(
    ("crossing_m", "speed_m_s", "need_s"),
    [(7, 1.0, 7), (7.5, 1.0, 8), (12, 1.0, 12), (7, 0.8, 9), (10, 1.2, 9), (1, 1.0, 2)],
)
def test_crossing_clearance_is_the_crosswalk_at_the_clearance_speed(crossing_m: float, speed_m_s: float,
                                                                     need_s: int) -> None:
    # art. 110 C 2: a pedestrian who steps off in the last second of green clears the crosswalk at that speed
    assert crossing_clearance_s(crossing_m, speed_m_s) == need_s


def test_pedestrian_clearance_shorter_than_the_crosswalk_needs_is_refused() -> None:
    doc = small_doc()
    doc["intersection"]["groups"][2]["crossing_m"] = 9  # P1→V2 is 8 s from its 8 m conflict distance
    v = only(check(doc), "crossing_clearance")
    assert (v.groups, v.required, v.actual) == (("P1", "V2"), 9, 8)
    assert "clear the 9 m crosswalk at 1 m/s (IISR 6th part art. 110 C 2)" in v.message
    doc["intersection"]["groups"][2].update(crossing_m=7, clearance_speed_m_s=0.8)  # slower walkers: 8.75 s
    v = only(check(doc), "crossing_clearance")
    assert (v.required, v.actual) == (9, 8)
    doc["intersection"]["groups"][2]["clearance_speed_m_s"] = 1.0
    assert check(doc) == []


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (lambda g: g[0].update(crossing_m=5), "intersection.groups[0].crossing_m", "only for pedestrian groups"),
        (lambda g: g[2].update(speed_limit_kmh=50), "intersection.groups[2].speed_limit_kmh", "only for vehicle"),
        (lambda g: g[0].update(speed_limit_kmh=0), "intersection.groups[0].speed_limit_kmh", "out of range"),
        (lambda g: g[2].update(clearance_speed_m_s=5), "intersection.groups[2].clearance_speed_m_s", "5"),
        (lambda g: g[0].update(gives_way_to=["V2"]), "intersection.groups[0].gives_way_to", "kind tram or bus"),
    ],
)
def test_new_group_keys_are_checked_where_they_belong(change: Any, key: str, reason: str) -> None:
    doc = small_doc()
    change(doc["intersection"]["groups"])
    with pytest.raises(ConfigError) as err:
        parse_timings(doc)
    assert err.value.key == key
    assert reason in err.value.reason


def test_giving_way_to_a_tram_it_does_not_conflict_with_is_refused() -> None:
    doc = small_doc()
    doc["intersection"]["groups"].append({"id": "T1", "kind": "tram", "speed_limit_kmh": 30})
    doc["intersection"]["groups"][0]["gives_way_to"] = ["T1"]
    with pytest.raises(ConfigError) as err:
        parse_timings(doc)
    assert err.value.key == "intersection.groups[0].gives_way_to"
    assert "no conflict between them" in err.value.reason


def test_matrix_entry_without_its_reverse_is_refused() -> None:
    doc = small_doc()
    del doc["intersection"]["conflicts"][3]  # P1→V2
    v = only(check(doc), "matrix_symmetry")
    assert v.groups == ("P1", "V2")
    assert "conflict V2→P1 has no entry P1→V2" in v.message


# ---- plan rules -------------------------------------------------------------------------


def test_conflicting_greens_in_one_stage_are_refused() -> None:
    doc = small_doc()
    doc["plan"][0]["stages"][1]["groups"] = ["V2", "P1"]
    v = only(check(doc), "conflicting_greens")
    assert (v.plan, v.stage, v.groups) == (1, 2, ("V2", "P1"))
    assert v.message == "plan 1 stage 2: V2 and P1 conflict and are green together"


def test_intergreen_below_the_matrix_is_refused() -> None:
    doc = small_doc()
    stages = doc["plan"][0]["stages"]
    stages[0]["green_s"], stages[0]["interstage_s"] = 32, 6  # cycle still 63
    v = only(check(doc), "intergreen")
    assert (v.plan, v.stage, v.groups, v.required, v.actual) == (1, 1, ("P1", "V2"), 8, 6)
    assert v.message.startswith("plan 1: intergreen P1→V2 after stage 1 is 6 s, the conflict matrix requires 8 s")
    assert "IISR 6th part art. 110 C 2" in v.message


def test_green_below_6_s_is_refused() -> None:
    doc = small_doc()
    stages = doc["plan"][0]["stages"]
    stages[0]["green_s"], stages[1]["green_s"] = 45, 5
    v = only(check(doc), "min_green")
    assert (v.groups, v.required, v.actual) == (("V2",), 6, 5)
    assert "group V2 is green 5 s in stage 2, required at least 6 s" in v.message


def test_wait_above_120_s_is_refused() -> None:
    doc = small_doc()
    plan = doc["plan"][0]
    plan["stages"][0]["green_s"], plan["cycle_s"] = 130, 163
    v = only(check(doc), "max_wait")
    assert (v.groups, v.required, v.actual) == (("V2",), 120, 143)
    assert "group V2 waits 143 s from the end of its green (stage 2) to its next green, limit 120 s" in v.message
    assert "arrêté of 9 April 2021" in v.message and "gives_way_to" in v.message


def tram_doc() -> dict[str, Any]:
    """The small crossing with a tram T1 crossing V2's road; V2 gives way to it. Stage 1 (V1, P1, T1) is long."""
    doc = small_doc()
    ix = doc["intersection"]
    ix["groups"].append({"id": "T1", "kind": "tram", "speed_limit_kmh": 30})
    ix["groups"][1]["gives_way_to"] = ["T1"]
    ix["conflicts"] += [{"from": "T1", "to": "V2", "clearance_m": 20}, {"from": "V2", "to": "T1", "clearance_m": 20}]
    doc["plan"][0]["stages"][0].update(groups=["V1", "P1", "T1"], green_s=130)
    doc["plan"][0]["cycle_s"] = 163
    return doc


def test_240_s_only_for_a_group_giving_way_to_a_tram_in_a_priority_plan() -> None:
    doc = tram_doc()
    v = only(check(doc), "max_wait")  # a plan of the tables: every cycle, so 120 s
    assert (v.groups, v.required, v.actual) == (("V2",), 120, 143)
    doc["plan"][0]["priority"] = True
    doc["plan"].append({**doc["plan"][0], "number": 2, "priority": False, "cycle_s": 63,
                        "stages": [{"groups": ["V1", "P1", "T1"], "green_s": 30, "interstage_s": 8},
                                   {"groups": ["V2"], "green_s": 20, "interstage_s": 5}]})
    doc["day_table"][0]["switches"] = [{"at": "00:00", "plan": 2}]
    assert check(doc) == []  # the priority plan serves a tram call on some cycles: V2 may wait 143 s there
    doc["plan"][0]["stages"][0]["green_s"], doc["plan"][0]["cycle_s"] = 235, 268
    v = only(check(doc), "max_wait")
    assert (v.groups, v.required, v.actual) == (("V2",), 240, 248)


def test_pedestrians_keep_120_s_even_in_a_priority_plan() -> None:
    doc = tram_doc()
    doc["plan"][0]["priority"] = True
    # P1 now waits through a long V2 stage; P1 gives way to no tram, so the limit stays 120 s
    doc["plan"][0]["stages"] = [{"groups": ["V1", "P1", "T1"], "green_s": 30, "interstage_s": 8},
                                {"groups": ["V2"], "green_s": 120, "interstage_s": 5}]
    doc["plan"][0]["cycle_s"] = 163
    rules = {(v.rule, v.groups, v.required) for v in check(doc)}
    assert ("max_wait", ("P1",), 120) in rules and ("max_wait", ("V1",), 120) in rules


def test_a_table_never_runs_a_priority_plan() -> None:
    doc = tram_doc()
    doc["plan"][0]["priority"] = True
    v = only(check(doc), "priority_plan_in_table")
    assert v.plan == 1 and "runs only on the cycles that serve a tram or bus call" in v.message


def test_the_old_whole_plan_flag_is_refused_with_what_replaces_it() -> None:
    doc = small_doc()
    doc["plan"][0]["public_transport_wait"] = True
    with pytest.raises(ConfigError) as err:
        parse_timings(doc)
    assert err.value.key == "plan[0].public_transport_wait"
    assert "gives_way_to" in err.value.reason and "priority = true" in err.value.reason


def test_a_group_never_green_waits_forever_and_is_refused() -> None:
    doc = small_doc()
    doc["plan"][0]["stages"][1]["groups"] = ["V1"]
    v = only(check(doc), "max_wait")
    assert v.groups == ("V2",)
    assert "group V2 is never green" in v.message


def test_greens_and_interstages_not_summing_to_the_cycle_are_refused() -> None:
    doc = small_doc()
    doc["plan"][0]["cycle_s"] = 70
    v = only(check(doc), "cycle_sum")
    assert (v.required, v.actual) == (70, 63)
    assert v.message == "plan 1: greens and interstages sum to 63 s, the cycle is 70 s"


@pytest.mark.parametrize("offset", [63, 100, -1])
def test_offset_outside_the_cycle_is_refused(offset: int) -> None:
    doc = small_doc()
    doc["plan"][0]["offset_s"] = offset
    v = only(check(doc), "offset")
    assert v.actual == offset
    assert f"offset {offset} s is outside [0, 63) s" in v.message


def test_amber_cut_by_the_next_green_is_refused() -> None:
    doc = small_doc()
    doc["plan"][0].update(cycle_s=65, stages=[
        {"groups": ["V1", "P1"], "green_s": 20, "interstage_s": 0},
        {"groups": ["P1"], "green_s": 2, "interstage_s": 0},
        {"groups": ["V1", "P1"], "green_s": 10, "interstage_s": 8},
        {"groups": ["V2"], "green_s": 20, "interstage_s": 5},
    ])
    v = only(check(doc), "amber_cut")
    assert (v.groups, v.required, v.actual) == (("V1",), 3, 2)


def test_table_naming_an_undefined_plan_is_refused() -> None:
    doc = small_doc()
    doc["day_table"][0]["switches"].append({"at": "07:00", "plan": 9})
    v = only(check(doc), "unknown_plan")
    assert v.plan == 9
    assert "day table 'everyday' at 07:00: plan 9 is not defined" in v.message


def test_plan_naming_a_group_the_intersection_lacks_is_refused() -> None:
    t = small()
    plan = dataclasses.replace(t.plans[0], stages=(Stage(frozenset({"V9"}), 30, 33), *t.plans[0].stages[1:]))
    v = only(validate_plan(t.intersection, plan), "unknown_group")
    assert v.groups == ("V9",)


def test_every_rule_broken_at_once_is_reported_at_once() -> None:
    doc = small_doc()
    doc["intersection"]["groups"][0]["amber_s"] = 4
    doc["plan"][0]["offset_s"] = 99
    doc["plan"][0]["cycle_s"] = 64
    rules = {v.rule for v in check(doc)}
    assert {"amber", "offset", "cycle_sum"} <= rules
    assert validate_intersection(parse_timings(doc).intersection)[0].rule == "amber"


# ---- file structure -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (lambda d: d["intersection"].update(colour="red"), "intersection.colour", "unknown key"),
        (lambda d: d["intersection"].update(setting="suburban"), "intersection.setting", "'suburban'"),
        (lambda d: d["intersection"]["groups"][0].update(kind="horse"), "intersection.groups[0].kind", "'horse'"),
        (lambda d: d["intersection"]["groups"].append({"id": "V1", "kind": "vehicle"}),
         "intersection.groups[3].id", "defined twice"),
        (lambda d: d["intersection"]["conflicts"].append({"from": "V1", "to": "V1", "clearance_m": 3}),
         "intersection.conflicts[4]", "itself"),
        (lambda d: d["intersection"]["conflicts"].append({"from": "V1", "to": "P1"}),
         "intersection.conflicts[4]", "clearance_m"),
        (lambda d: d["intersection"]["conflicts"].append({"from": "V1", "to": "X", "clearance_m": 3}),
         "intersection.conflicts[4].to", "unknown group 'X'"),
        (lambda d: d["plan"][0]["stages"][0].update(groups=["V1", "X"]), "plan[0].stages[0].groups", "unknown group 'X'"),
        (lambda d: d["plan"][0]["stages"][0].update(green_s=0), "plan[0].stages[0].green_s", "out of range"),
        (lambda d: d["plan"][0].update(number=256), "plan[0].number", "out of range"),
        (lambda d: d["plan"].append(dict(d["plan"][0])), "plan[1].number", "defined twice"),
        (lambda d: d["day_table"][0]["switches"].append({"at": "7:00", "plan": 1}),
         "day_table[0].switches[1].at", "HH:MM"),
        (lambda d: d["day_table"][0]["switches"].insert(0, {"at": "06:00", "plan": 1}),
         "day_table[0].switches[1].at", "ascend"),
        (lambda d: d["day_table"][0]["switches"].append({"at": "23:00", "position": "yellow_flash", "plan": 1}),
         "day_table[0].switches[1].plan", "names no plan"),
        (lambda d: d["day_table"][0]["switches"].append({"at": "23:00"}), "day_table[0].switches[1].plan", "missing"),
        (lambda d: d["week"].pop("sunday"), "week.sunday", "missing"),
        (lambda d: d["week"].update(monday="holiday"), "week.monday", "unknown day table"),
        (lambda d: d.update(special_days={"2026-02-30": "everyday"}), "special_days.2026-02-30", "date"),
        (lambda d: d.pop("plan"), "plan", "missing"),
    ],
)
def test_structural_mistakes_name_the_key(change: Any, key: str, reason: str) -> None:
    doc = small_doc()
    change(doc)
    with pytest.raises(ConfigError) as err:
        parse_timings(doc)
    assert err.value.key == key
    assert reason in err.value.reason


# ---- the CLI ------------------------------------------------------------------------------


def _agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([bin_path("citygate-agent"), *args], capture_output=True, text=True, timeout=60)


def test_plan_check_exits_0_on_a_lawful_file() -> None:
    done = _agent("plan", "check", str(DIJON))
    assert done.returncode == 0, done.stderr
    assert "valid: dijon-jaures-tram (urban), 9 groups" in done.stdout
    assert "plan changes checked: 1→2, 1→3, 2→1, 3→1" in done.stdout  # the week's tables, midnight included
    done = _agent("plan", "check", str(RURAL), "--json")
    assert done.returncode == 0
    doc = orjson.loads(done.stdout)
    assert doc["valid"] is True and doc["setting"] == "rural" and doc["violations"] == []
    assert doc["transitions"] == [[1, 2]]  # day to evening; yellow flash at night, so no change back


def test_plan_check_exits_2_with_the_reasons(tmp_path: Path) -> None:
    doc = small_doc()
    stages = doc["plan"][0]["stages"]
    stages[0]["green_s"], stages[0]["interstage_s"] = 32, 6
    doc["plan"][0]["cycle_s"] = 70
    path = write_toml(tmp_path / "crossing.toml", doc)
    done = _agent("plan", "check", str(path))
    assert done.returncode == 2
    assert "refused, 2 violation(s)" in done.stderr
    assert "[intergreen] plan 1: intergreen P1→V2 after stage 1 is 6 s, the conflict matrix requires 8 s" in done.stderr
    assert "[cycle_sum] plan 1: greens and interstages sum to 63 s, the cycle is 70 s" in done.stderr
    done = _agent("plan", "check", str(path), "--json")
    assert done.returncode == 2
    result = orjson.loads(done.stdout)
    assert result["valid"] is False
    assert {(v["rule"], tuple(v["groups"]), v["required"], v["actual"]) for v in result["violations"]} == {
        ("intergreen", ("P1", "V2"), 8, 6),
        ("cycle_sum", (), 70, 63),
    }


def test_plan_check_exits_2_on_a_broken_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[intersection\n")
    done = _agent("plan", "check", str(bad))
    assert done.returncode == 2
    assert "not valid TOML" in done.stderr
    done = _agent("plan", "check", str(tmp_path / "missing.toml"))
    assert done.returncode == 2
    assert "cannot read" in done.stderr


def wrapped_green_doc(stage1_green_s: int) -> dict[str, Any]:
    """V1 and P1 green in stage 3 and on through the cycle boundary into stage 1."""
    doc = small_doc()
    doc["plan"][0]["stages"] = [
        {"groups": ["V1", "P1"], "green_s": stage1_green_s, "interstage_s": 8},
        {"groups": ["V2"], "green_s": 20, "interstage_s": 5},
        {"groups": ["V1", "P1"], "green_s": 30 - stage1_green_s, "interstage_s": 0},
    ]
    return doc


def test_a_green_that_runs_into_stage_1_needs_6_s_there_the_controller_enters_the_plan_at_stage_1() -> None:
    # the span is 30 s, but a controller starting up or changing plan begins at stage 1: 3 s of green
    violations = check(wrapped_green_doc(3))
    assert {(v.rule, v.groups, v.stage, v.required, v.actual) for v in violations} == {
        ("min_green", ("V1",), 1, 6, 3), ("min_green", ("P1",), 1, 6, 3)}
    assert "group V1 is green only 3 s in stage 1 when the controller enters the plan there" in violations[0].message
    assert check(wrapped_green_doc(6)) == []


@pytest.mark.parametrize("stage1_green_s", [3, 6])
def test_the_controllers_own_check_agrees_on_a_wrapped_green(stage1_green_s: int) -> None:
    # the simulated controller's monitor, written apart from the validator, runs the plan from stage 1
    from simulators.signals_engine import dry_run

    timings = parse_timings(wrapped_green_doc(stage1_green_s))
    refusal = dry_run(timings.intersection, timings.plans[0])
    if stage1_green_s < 6:
        assert refusal is not None and refusal.required == 6 and refusal.actual == stage1_green_s
    else:
        assert refusal is None
