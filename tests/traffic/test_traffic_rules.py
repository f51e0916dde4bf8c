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
from drivers.traffic.model import GroupKind, Stage, clearance_red_s
from drivers.traffic.validate import validate_intersection, validate_plan, validate_timings
from simulators.procs import bin_path


def check(doc: dict[str, Any]) -> list[Any]:
    return validate_timings(parse_timings(doc))


def test_shipped_intersections_and_the_test_crossing_are_lawful() -> None:
    for path in (DIJON, RURAL):
        assert validate_timings(load_timings(path)) == [], path
    assert validate_timings(small()) == []


# ---- figures ----------------------------------------------------------------------------


def test_amber_is_3_s_urban_and_5_s_rural_and_none_for_pedestrians() -> None:
    urban = small().intersection
    assert [g.amber_s for g in urban.groups] == [3, 3, 0]
    doc = small_doc()
    doc["intersection"]["setting"] = "rural"
    rural = parse_timings(doc).intersection
    assert [g.amber_s for g in rural.groups] == [5, 5, 0]


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
    doc["intersection"]["setting"] = "rural"
    assert parse_timings(doc).intersection.intergreen_s("V1", "V2") == 5 + 2


# ---- intersection rules -----------------------------------------------------------------


def test_urban_amber_other_than_3_s_is_refused() -> None:
    doc = small_doc()
    doc["intersection"]["groups"][0]["amber_s"] = 4
    v = only(check(doc), "amber")
    assert (v.groups, v.required, v.actual) == (("V1",), 3, 4)
    assert "group V1 (vehicle): amber 4 s, required 3 s (urban intersection)" in v.message


def test_rural_amber_other_than_5_s_is_refused() -> None:
    doc = small_doc()
    doc["intersection"]["setting"] = "rural"
    doc["intersection"]["groups"][1]["amber_s"] = 3
    v = only(check(doc), "amber")
    assert (v.groups, v.required, v.actual) == (("V2",), 5, 3)
    assert "rural intersection" in v.message


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
    assert v.message == "plan 1: intergreen P1→V2 after stage 1 is 6 s, the conflict matrix requires 8 s"


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
    assert "240 s only with public_transport_wait = true" in v.message


def test_wait_up_to_240_s_only_with_the_public_transport_flag() -> None:
    doc = small_doc()
    plan = doc["plan"][0]
    plan["stages"][0]["green_s"], plan["cycle_s"] = 130, 163
    plan["public_transport_wait"] = True
    assert check(doc) == []
    plan["stages"][0]["green_s"], plan["cycle_s"] = 235, 268
    v = only(check(doc), "max_wait")
    assert (v.required, v.actual) == (240, 248)


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
    done = _agent("plan", "check", str(RURAL), "--json")
    assert done.returncode == 0
    doc = orjson.loads(done.stdout)
    assert doc["valid"] is True and doc["setting"] == "rural" and doc["violations"] == []


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
