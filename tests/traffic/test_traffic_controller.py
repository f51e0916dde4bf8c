"""The simulated controller's own behaviour: timeouts, backup time, plan changes, its monitor and its own table check."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from traffic_testkit import DIJON, PARIS, small_doc, utc

from drivers.traffic.config import Timings, load_timings, parse_timings
from drivers.traffic.model import Position, Stage
from drivers.traffic.registers import (
    POSITION_CODES,
    Alarm,
    Mode,
    Refusal,
    UploadStatus,
    crc32_words,
    encode_timings,
)
from drivers.traffic.timeline import Aspect, cycle_aspects
from simulators.signals_engine import Phase, Refused, SignalController

START = utc(2026, 6, 1, 10, 0)  # a Monday, 12:00 CEST


def two_plans() -> Timings:
    """The small crossing with a second plan of another cycle (plan 2: 83 s)."""
    doc = small_doc()
    second = {**doc["plan"][0], "number": 2, "name": "long", "cycle_s": 83}
    second["stages"] = [dict(s) for s in doc["plan"][0]["stages"]]
    second["stages"][0]["green_s"] = 50
    doc["plan"].append(second)
    return parse_timings(doc)


def running(timings: Timings, **kw: Any) -> SignalController:
    """A controller past its start-up, running its table's plan."""
    ctrl = SignalController(timings.intersection, timings, start=kw.get("start", START), tz=PARIS)
    for _ in range(400):
        ctrl.step()
        if ctrl.phase is Phase.RUN:
            return ctrl
    raise AssertionError("the controller never started its plan")


def until(ctrl: SignalController, cond: Any, limit: int, what: str) -> int:
    """Step until `cond(ctrl)`; return the seconds it took."""
    for n in range(1, limit + 1):
        ctrl.step()
        if cond(ctrl):
            return n
    raise AssertionError(f"{what}: not within {limit} s (mode {ctrl.mode()}, phase {ctrl.phase})")


def test_start_up_puts_stage_1_at_the_plan_offset() -> None:
    doc = small_doc()
    doc["plan"][0]["offset_s"] = 17
    ctrl = running(parse_timings(doc))
    assert (ctrl.clock_s - 17) % 63 == 0
    assert ctrl.state().stage == 1 and ctrl.state().cycle_second == 0


def test_outputs_follow_the_timeline_second_by_second() -> None:
    for timings in (load_timings(DIJON), two_plans()):
        ctrl = running(timings)
        assert ctrl.plan is not None
        rows = cycle_aspects(timings.intersection, timings.plan(ctrl.plan.number) or timings.plans[0])
        for _ in range(2 * len(rows)):
            ctrl.step()
            assert tuple(ctrl.out.aspects) == rows[ctrl.cycle_second()]


def test_yellow_flash_for_30_min_reverts_by_itself() -> None:
    ctrl = running(two_plans())
    ctrl.take_control(3600)
    ctrl.command_position(POSITION_CODES[Position.YELLOW_FLASH], 1800)
    ordered = ctrl.clock_s
    until(ctrl, lambda c: c.mode() is Mode.YELLOW_FLASH, 10, "flashing")
    assert ctrl.out.aspects == [Aspect.FLASHING_AMBER, Aspect.FLASHING_AMBER, Aspect.DARK]  # pedestrians dark
    ctrl.steps(ordered + 1799 - ctrl.clock_s)
    assert ctrl.mode() is Mode.YELLOW_FLASH and ctrl.state().position_command_left_s == 1
    ctrl.step()  # 30 min after the command
    assert ctrl.state().position_target.value == "normal"
    back = until(ctrl, lambda c: c.mode() is Mode.NORMAL, 63 + 15, "back to normal")
    assert ctrl.trip is None and back <= 63 + 15
    assert ctrl.state().stage == 1


def test_a_plan_change_happens_at_the_next_cycle_boundary() -> None:
    ctrl = running(two_plans())
    ctrl.steps(20)
    ctrl.take_control(600)
    ctrl.command_plan(2, 300)
    assert ctrl.state().plan_target == 2
    boundary = ctrl.clock_s + (63 - ctrl.cycle_second())
    until(ctrl, lambda c: c.state().plan == 2, 100, "plan 2")
    assert ctrl.clock_s == boundary  # the small crossing's last interstage already clears stage 1
    assert ctrl.state().cycle_second == 0


def test_after_a_plan_change_stage_1_comes_back_to_the_offset_by_holding_it_a_few_seconds_a_cycle() -> None:
    doc = small_doc()
    second = {**doc["plan"][0], "number": 2, "name": "long", "cycle_s": 83, "offset_s": 40}
    second["stages"] = [dict(st) for st in doc["plan"][0]["stages"]]
    second["stages"][0]["green_s"] = 50
    doc["plan"].append(second)
    timings = parse_timings(doc)
    plan = timings.plan(2)
    assert plan is not None
    ctrl = running(timings)
    ctrl.take_control(6000)
    ctrl.command_plan(2, 3000)
    until(ctrl, lambda c: c.state().plan == 2, 100, "plan 2")
    off_by = (ctrl.clock_s - plan.offset_s) % plan.cycle_s
    assert off_by != 0 and ctrl.offset_error_s == (plan.offset_s - ctrl.clock_s) % plan.cycle_s
    # the small crossing waits 33 s at most: 16 s (a fifth of the cycle) may be held each cycle
    assert ctrl.hold_per_cycle_s == 16
    v1 = timings.intersection.index["V1"]
    green_runs, run = [], 0
    for _ in range(plan.cycle_s * 8):
        ctrl.step()
        assert ctrl.trip is None, ctrl.trip
        if ctrl.out.aspects[v1] is Aspect.GREEN:
            run += 1
        elif run:
            green_runs.append(run)
            run = 0
    assert ctrl.offset_error_s == 0
    assert (ctrl.t_ref - plan.offset_s) % plan.cycle_s == 0  # stage 1 starts on the offset again
    # V1 (stage 1) was held longer for a few cycles, never longer than a fifth of the cycle more,
    # then runs its own 50 s again; no green was cut (the monitor watched every second)
    assert max(green_runs) <= 50 + 16 and green_runs[-1] == 50 and max(green_runs) > 50


def test_a_plan_command_reverts_after_its_timeout() -> None:
    ctrl = running(two_plans())
    ctrl.take_control(3600)
    ctrl.command_plan(2, 200)
    until(ctrl, lambda c: c.state().plan == 2, 100, "plan 2")
    until(ctrl, lambda c: c.state().plan_target == 1, 200, "command timeout")
    until(ctrl, lambda c: c.state().plan == 1, 100, "table plan again")
    assert ctrl.trip is None


def test_without_refresh_the_controller_returns_to_its_table_after_the_backup_time() -> None:
    ctrl = running(two_plans())
    ctrl.take_control(60)
    ctrl.command_plan(2, 3600)
    ctrl.command_position(POSITION_CODES[Position.YELLOW_FLASH], 3600)
    taken = ctrl.clock_s
    ctrl.steps(59)
    assert ctrl.central and ctrl.mode() is Mode.YELLOW_FLASH and ctrl.state().plan_target == 2
    ctrl.steps(taken + 60 - ctrl.clock_s)
    state = ctrl.state()
    assert not state.central and state.plan_target == 1 and state.position_target.value == "normal"
    until(ctrl, lambda c: c.state().plan == 1, 200, "table plan")


def test_refreshing_keeps_control() -> None:
    ctrl = running(two_plans())
    for _ in range(10):
        ctrl.take_control(60)
        ctrl.steps(50)
    assert ctrl.central


def test_commands_need_central_control_and_a_timeout() -> None:
    ctrl = running(two_plans())
    with pytest.raises(Refused) as err:
        ctrl.command_plan(2, 60)
    assert err.value.kind == Refused.NOT_IN_CONTROL
    ctrl.take_control(60)
    for bad in (lambda: ctrl.command_plan(2, 0), lambda: ctrl.command_plan(7, 60), lambda: ctrl.command_position(9, 60)):
        with pytest.raises(Refused) as err:
            bad()
        assert err.value.kind == Refused.BAD_VALUE


def test_an_injected_conflict_puts_the_controller_in_failure_until_reset_on_site() -> None:
    ctrl = running(two_plans())
    ctrl.steps(5)
    forced = ctrl.inject_conflict()
    assert forced == "V2"  # V1 is green in stage 1
    ctrl.step()
    state = ctrl.state()
    assert state.mode is Mode.FAILURE and Alarm.SAFETY in state.alarms
    assert ctrl.out.aspects == [Aspect.FLASHING_AMBER, Aspect.FLASHING_AMBER, Aspect.DARK]
    ctrl.take_control(60)
    with pytest.raises(Refused) as err:
        ctrl.command_position(POSITION_CODES[Position.NORMAL], 60)
    assert err.value.kind == Refused.FAILURE
    ctrl.steps(3600)
    assert ctrl.mode() is Mode.FAILURE  # latched: no timeout, no table clears it
    ctrl.technician_reset()
    until(ctrl, lambda c: c.mode() is Mode.NORMAL, 100, "normal after reset")
    assert Alarm.SAFETY not in ctrl.state().alarms


def test_the_monitor_catches_an_intergreen_even_without_green_green() -> None:
    ctrl = running(two_plans())
    until(ctrl, lambda c: c.out.aspects[0] is Aspect.AMBER, 63, "V1 ends")
    ctrl.force_green("V2")  # V1 just ended: V2 green now is 1 s after, the matrix wants 5 s
    ctrl.step()
    assert ctrl.trip is not None and ctrl.trip.refusal is Refusal.INTERGREEN
    assert (ctrl.trip.required, ctrl.trip.actual) == (5, 1)


def test_a_stuck_sequencer_is_a_deadlock() -> None:
    ctrl = running(two_plans())
    ctrl.freeze_sequencer()
    ctrl.steps(4)
    assert ctrl.mode() is Mode.FAILURE and Alarm.DEADLOCK in ctrl.state().alarms


def test_corrupt_stored_tables_mean_failure_with_a_configuration_error() -> None:
    ctrl = running(two_plans())
    ctrl.corrupt_stored_tables()
    ctrl.step()
    assert ctrl.mode() is Mode.FAILURE and Alarm.CONFIGURATION in ctrl.state().alarms


def test_hardware_error_door_and_lamp_alarms() -> None:
    ctrl = running(two_plans())
    ctrl.set_door_open(True)
    ctrl.set_lamp_failure("P1")
    ctrl.step()
    state = ctrl.state()
    assert state.mode is Mode.NORMAL  # neither stops the intersection
    assert Alarm.DOOR_OPEN in state.alarms and Alarm.LAMP_FAILURE in state.alarms and state.lamp_failures == 0b100
    ctrl.set_door_open(False)
    ctrl.inject_hardware_error()
    ctrl.step()
    state = ctrl.state()
    assert state.mode is Mode.FAILURE and Alarm.HARDWARE in state.alarms and Alarm.DOOR_OPEN not in state.alarms


def test_bad_tables_installed_with_the_controller_mean_failure_at_power_on() -> None:
    doc = small_doc()
    stages = doc["plan"][0]["stages"]
    stages[0]["green_s"], stages[0]["interstage_s"] = 32, 6  # P1→V2 6 s < 8 s
    timings = parse_timings(doc)
    ctrl = SignalController(timings.intersection, timings, start=START, tz=PARIS)
    ctrl.step()
    state = ctrl.state()
    assert state.mode is Mode.FAILURE and Alarm.CONFIGURATION in state.alarms
    assert state.refusal is not None and state.refusal.code is Refusal.INTERGREEN
    assert ctrl.out.aspects == [Aspect.FLASHING_AMBER, Aspect.FLASHING_AMBER, Aspect.DARK]


def _with_plan(timings: Timings, **changes: Any) -> Timings:
    return dataclasses.replace(timings, plans=(dataclasses.replace(timings.plans[0], **changes),))


@pytest.mark.parametrize(
    ("stages", "cycle", "code", "detail"),
    [
        # V1 and V2 green together: groups 1 and 2
        ((Stage(frozenset({"V1", "V2"}), 30, 8), Stage(frozenset({"P1"}), 20, 5)), 63, Refusal.CONFLICT, (1, 2)),
        # P1→V2 after 6 s, the matrix wants 8 s
        ((Stage(frozenset({"V1", "P1"}), 32, 6), Stage(frozenset({"V2"}), 20, 5)), 63, Refusal.INTERGREEN, (3, 2, 8, 6)),
        # V2 green 5 s
        ((Stage(frozenset({"V1", "P1"}), 45, 8), Stage(frozenset({"V2"}), 5, 5)), 63, Refusal.MIN_GREEN, (2, 0, 6, 5)),
        # V2 waits 143 s
        ((Stage(frozenset({"V1", "P1"}), 130, 8), Stage(frozenset({"V2"}), 20, 5)), 163, Refusal.MAX_WAIT, (2, 0, 120, 143)),
        # greens and interstages 63 s, cycle 70 s
        ((Stage(frozenset({"V1", "P1"}), 30, 8), Stage(frozenset({"V2"}), 20, 5)), 70, Refusal.STRUCTURE, (0, 0, 70, 63)),
    ],
)
def test_the_controller_refuses_unsafe_tables_on_its_own(
    stages: tuple[Stage, ...], cycle: int, code: Refusal, detail: tuple[int, ...]
) -> None:
    """Even if an agent skipped its validator, the controller's own check refuses, and keeps its tables."""
    good = two_plans()
    ctrl = running(good)
    ctrl.take_control(60)
    bad = _with_plan(good, stages=stages, cycle_s=cycle)
    words = encode_timings(bad)
    refusal = ctrl.commit_upload(words, crc32_words(words))
    assert refusal is not None and refusal.code is code
    got = (refusal.group_a, refusal.group_b, refusal.required, refusal.actual)
    assert got[: len(detail)] == detail
    assert ctrl.state().upload_status is UploadStatus.REFUSED
    assert ctrl.timings is not None and ctrl.timings.plan(2) is not None  # previous tables still in force
    ctrl.steps(200)
    assert ctrl.trip is None


def test_the_controller_refuses_blocks_for_another_intersection_or_with_a_bad_checksum() -> None:
    ctrl = running(two_plans())
    ctrl.take_control(60)
    other = load_timings(DIJON)
    words = encode_timings(other)
    refusal = ctrl.commit_upload(words, crc32_words(words))
    assert refusal is not None and refusal.code is Refusal.INTERSECTION
    words = encode_timings(two_plans())
    refusal = ctrl.commit_upload(words, crc32_words(words) ^ 1)
    assert refusal is not None and refusal.code is Refusal.CHECKSUM
    assert ctrl.commit_upload(words, crc32_words(words)) is None
    assert ctrl.state().upload_status is UploadStatus.ACCEPTED and ctrl.upload_generation == 1


def test_plan_changes_on_the_dijon_crossing_happen_at_boundaries_and_never_trip_the_monitor() -> None:
    timings = load_timings(DIJON)
    ctrl = running(timings)
    ctrl.take_control(60000)
    seen = []
    for step, plan in enumerate([2, 3, 1, 3, 2, 1, 2, 3] * 3):
        ctrl.command_plan(plan, 3600)
        for _ in range(300):
            before = ctrl.state().plan
            ctrl.step()
            state = ctrl.state()
            assert ctrl.trip is None, ctrl.trip
            if state.plan != before:
                assert (state.cycle_second, state.stage) == (0, 1)  # a new plan starts with its stage 1
                seen.append(state.plan)
            if state.plan == plan and step % 3:
                break  # sometimes command the next plan at once, mid-cycle
    assert seen == [2, 3, 1, 3, 2, 1, 2, 3] * 3
