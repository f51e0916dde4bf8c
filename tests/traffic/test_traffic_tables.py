"""Time-of-day and week tables in local time: correct on both daylight-saving days, in the agent and in the controller."""

from __future__ import annotations

import itertools
import subprocess
from datetime import date, time, timedelta

import orjson
from traffic_testkit import DIJON, PARIS, RURAL, small_doc, utc

from drivers.traffic.config import load_timings, parse_timings
from drivers.traffic.model import Position
from drivers.traffic.tables import Schedule, active_at, day_segments, local_instant, next_switch_after
from simulators.procs import bin_path
from simulators.signals_engine import SignalController


def test_a_0630_change_happens_at_0630_cest_on_the_spring_forward_day() -> None:
    schedule = load_timings(DIJON).schedule
    # Sunday 2026-03-29: clocks go from 02:00 CET to 03:00 CEST; 06:30 CEST is 04:30 UTC.
    assert active_at(schedule, utc(2026, 3, 29, 4, 29, 59), PARIS).plan == 3
    switched = active_at(schedule, utc(2026, 3, 29, 4, 30), PARIS)
    assert switched.plan == 1
    assert switched.since == utc(2026, 3, 29, 4, 30)
    # The Sunday before, in winter time, 06:30 CET is 05:30 UTC.
    assert active_at(schedule, utc(2026, 3, 22, 5, 29, 59), PARIS).plan == 3
    assert active_at(schedule, utc(2026, 3, 22, 5, 30), PARIS).plan == 1


def _gap_and_fold_table() -> Schedule:
    doc = small_doc()
    doc["plan"].append({**doc["plan"][0], "number": 2})
    doc["day_table"][0]["switches"] = [
        {"at": "01:00", "plan": 1},
        {"at": "02:30", "plan": 2},
        {"at": "04:00", "plan": 1},
    ]
    return parse_timings(doc).schedule


def test_a_switch_point_in_the_spring_forward_gap_fires_once_when_the_gap_ends() -> None:
    schedule = _gap_and_fold_table()
    assert local_instant(date(2026, 3, 29), time(2, 30), PARIS) == utc(2026, 3, 29, 1, 0)  # 03:00 CEST
    assert active_at(schedule, utc(2026, 3, 29, 0, 59, 59), PARIS).plan == 1  # 01:59:59 CET
    assert active_at(schedule, utc(2026, 3, 29, 1, 0), PARIS).plan == 2  # 03:00 CEST
    assert next_switch_after(schedule, utc(2026, 3, 29, 0, 30), PARIS) == utc(2026, 3, 29, 1, 0)
    assert next_switch_after(schedule, utc(2026, 3, 29, 1, 0), PARIS) == utc(2026, 3, 29, 2, 0)  # 04:00 CEST


def test_a_switch_point_in_the_repeated_fall_back_hour_fires_once() -> None:
    schedule = _gap_and_fold_table()
    first = utc(2026, 10, 25, 0, 30)  # 02:30 CEST, the first 02:30
    assert local_instant(date(2026, 10, 25), time(2, 30), PARIS) == first
    assert active_at(schedule, first - timedelta(seconds=1), PARIS).plan == 1
    assert active_at(schedule, first, PARIS).plan == 2
    # The second 02:30 (CET, 01:30 UTC) is no switch point: the next one is 04:00 CET.
    assert active_at(schedule, utc(2026, 10, 25, 1, 30), PARIS).since == first
    assert next_switch_after(schedule, first, PARIS) == utc(2026, 10, 25, 3, 0)


def test_days_are_23_24_and_25_hours_long() -> None:
    schedule = load_timings(DIJON).schedule
    for day, hours in ((date(2026, 3, 29), 23), (date(2026, 3, 30), 24), (date(2026, 10, 25), 25)):
        segments = day_segments(schedule, day, PARIS)
        assert (segments[-1].end - segments[0].start) == timedelta(hours=hours)
        assert all(a.end == b.start for a, b in itertools.pairwise(segments))


def test_the_last_switch_point_carries_over_past_midnight() -> None:
    schedule = load_timings(RURAL).schedule
    night = active_at(schedule, utc(2026, 6, 2, 1, 0), PARIS)  # 03:00 CEST, switched to flash at 23:00 the day before
    assert night.position is Position.YELLOW_FLASH
    assert night.since == utc(2026, 6, 1, 21, 0)
    assert night.plan == 2  # the last plan named, for when the flash ends
    first = day_segments(schedule, date(2026, 6, 2), PARIS)[0]
    assert first.carried and first.position is Position.YELLOW_FLASH


def test_special_days_take_another_day_table() -> None:
    schedule = load_timings(DIJON).schedule
    # Tuesday 2026-07-14 runs the Sunday table: plan 1 at 07:45, not the weekday peak plan 2.
    assert active_at(schedule, utc(2026, 7, 14, 5, 45), PARIS).plan == 1
    assert active_at(schedule, utc(2026, 7, 7, 5, 45), PARIS).plan == 2


def test_the_controller_changes_plan_at_0630_cest_on_the_spring_forward_day() -> None:
    timings = load_timings(DIJON)
    ctrl = SignalController(timings.intersection, timings, start=utc(2026, 3, 29, 4, 0), tz=PARIS)
    seen: dict[int, int] = {}
    while ctrl.clock_s < int(utc(2026, 3, 29, 4, 32).timestamp()):
        ctrl.step()
        seen[ctrl.clock_s] = ctrl.state().plan
    change = int(utc(2026, 3, 29, 4, 30).timestamp())  # 06:30 CEST: also a cycle boundary of plan 3 (60 s, offset 0)
    assert seen[change - 1] == 3
    assert seen[change] == 1
    assert ctrl.trip is None


def test_plan_show_lists_the_dst_days_in_local_time() -> None:
    done = subprocess.run(
        [bin_path("citygate-agent"), "plan", "show", str(DIJON), "--date", "2026-03-29", "--json"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    doc = orjson.loads(done.stdout)
    assert doc["hours"] == 23 and doc["day_table"] == "sunday"
    assert [(s["start"], s["plan"]) for s in doc["segments"]] == [
        ("2026-03-29T00:00:00+01:00", 3),
        ("2026-03-29T06:30:00+02:00", 1),
        ("2026-03-29T21:00:00+02:00", 3),
    ]
    assert doc["segments"][1]["start_utc"] == "2026-03-29T04:30:00+00:00"

    done = subprocess.run(
        [bin_path("citygate-agent"), "plan", "show", str(RURAL), "--date", "2026-10-25"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "25 h" in done.stdout
    assert "yellow flash" in done.stdout and "05:30 CET" in done.stdout
