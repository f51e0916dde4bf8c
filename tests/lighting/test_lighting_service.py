"""The lighting service on a FakeClock: on time, straight to the right level after a restart,
overrides, program pushes, faults, energy, and a clock it cannot trust."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
from lighting_testkit import Harness, LampModel, SettableTimeSync, lighting_config

from citygate_wire.aio import stop_tasks
from drivers.model import Event, Severity
from edge_agent.clock import SystemClock
from edge_agent.lighting.engine import Engine
from edge_agent.lighting.faults import failure_power_w
from edge_agent.lighting.model import LightingError
from edge_agent.lighting.service import LightingService
from edge_agent.lighting.state import STATE_FILE
from edge_agent.service import AgentContext

PARIS = ZoneInfo("Europe/Paris")
LAMPS = ["lamp-1", "lamp-2", "lamp-3"]


def paris(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS).astimezone(UTC)


def dijon_harness(tmp_path: Path, start: str, **kw: object) -> Harness:
    cfg = lighting_config([("avenue", ["lamp-1", "lamp-2"], "dijon"), ("impasse", ["lamp-3"], "sennecey-les-dijon")],
                          **kw)
    return Harness(cfg, tmp_path / "state", paris(start), [LampModel(n) for n in LAMPS])


async def test_reboot_at_23_30_in_dijon_goes_straight_to_70(tmp_path: Path) -> None:
    h = dijon_harness(tmp_path, "2026-01-12T23:30:00")
    await h.start()
    m = h.bus.models
    assert m["lamp-1"].commands == [(paris("2026-01-12T23:30:00"), 70)]  # never through 100 %
    assert m["lamp-2"].commands == [(paris("2026-01-12T23:30:00"), 70)]
    assert m["lamp-3"].commands == [(paris("2026-01-12T23:30:00"), 100)]  # Sennecey: lit until midnight
    cmd = h.samples("lamp-1", "commanded_level_pct")
    assert cmd[0].values == {"commanded_level_pct": 70, "level_pct": 70}
    snap = h.svc.snapshot()
    avenue = next(g for g in snap["groups"] if g["group"] == "avenue")
    assert (avenue["level_pct"], avenue["program"]) == (70, "dijon-night")
    assert avenue["next_switch"]["local"] == "2026-01-13T05:00:00+01:00" and avenue["next_switch"]["level_pct"] == 100
    lamp = next(x for x in snap["lamps"] if x["lamp"] == "lamp-3")
    assert (lamp["commanded_level_pct"], lamp["faults"]) == (100, [])
    await h.stop()


async def test_a_whole_night_is_switched_exactly_on_the_plan(tmp_path: Path) -> None:
    h = dijon_harness(tmp_path, "2026-03-28T12:00:00")
    await h.start()
    await h.run_until(paris("2026-03-29T12:00:00"))
    engine = Engine(h.config.programs, h.config.site)
    for lamp, calendar in (("lamp-1", "dijon"), ("lamp-3", "sennecey-les-dijon")):
        plan = engine.plan(calendar, date(2026, 3, 28))
        assert h.bus.models[lamp].commands == [(paris("2026-03-28T12:00:00"), 0)] + [
            (s.at, s.level) for s in plan.switches]
    # 22:00 CET -> 70 %, 05:00 CEST -> 100 % (the night has only 23 hours)
    assert (paris("2026-03-28T22:00:00"), 70) in h.bus.models["lamp-1"].commands
    assert (paris("2026-03-29T05:00:00"), 100) in h.bus.models["lamp-1"].commands
    avenue = [e for e in h.events("group_level") if e.device == "group:avenue"]
    assert [e.detail["level_pct"] for e in avenue] == [0, 100, 70, 100, 0]
    # each switch names the next one, which the control centre shows: it is the switch that follows
    for switch, following in pairwise(avenue):
        assert (switch.detail["next_switch_ms"], switch.detail["next_level_pct"]) == (
            following.ts_ms, following.detail["level_pct"])
    await h.stop()


@pytest.mark.parametrize(("night", "expected_utc"), [("2026-03-28", "2026-03-29T01:00:00"),
                                                     ("2026-10-24", "2026-10-25T00:30:00")])
async def test_a_02_30_point_fires_once_on_both_daylight_saving_nights(
        tmp_path: Path, night: str, expected_utc: str) -> None:
    programs = tmp_path / "p.toml"
    programs.write_text('[[program]]\nname = "p"\nswitch_points = [{ at = "02:30", level = 50 }, '
                        '{ at = "04:00", level = 100 }]\n[[calendar]]\nname = "c"\ndefault = "p"\n')
    cfg = lighting_config([("g", ["lamp-1"], "c")], programs=[str(programs)])
    h = Harness(cfg, tmp_path / "state", paris(f"{night}T12:00:00"), [LampModel("lamp-1")])
    await h.start()
    await h.run_until(paris(f"{night}T12:00:00") + timedelta(days=1))
    fifty = [t for t, lv in h.bus.models["lamp-1"].commands if lv == 50]
    assert fifty == [datetime.fromisoformat(expected_utc).replace(tzinfo=UTC)]
    await h.stop()


async def test_override_replaces_expires_and_survives_a_restart(tmp_path: Path) -> None:
    h = dijon_harness(tmp_path, "2026-01-12T20:00:00")
    svc = await h.start()
    t0 = h.clock.now()
    svc.set_override("avenue", 30, None, t0 + timedelta(hours=3))
    await h.kick()
    assert h.bus.models["lamp-1"].commands[-1] == (t0, 30)
    # a new override on the group replaces the previous one
    svc.set_override("avenue", 50, None, t0 + timedelta(hours=1))
    await h.kick()
    assert h.bus.models["lamp-2"].commands[-1] == (t0, 50)
    # a lamp's own override, then the process dies
    svc.set_override("lamp-3", 10, t0 + timedelta(minutes=10), t0 + timedelta(hours=5))
    await h.kick()
    await h.run_until(t0 + timedelta(minutes=20))
    assert h.bus.models["lamp-3"].commands[-1] == (t0 + timedelta(minutes=10), 10)
    await h.stop()
    saved = orjson.loads((tmp_path / "state" / STATE_FILE).read_bytes())
    assert {o["target"]: o["level"] for o in saved["overrides"]} == {"avenue": 50, "lamp-3": 10}

    for m in h.bus.models.values():
        m.commands.clear()
    await h.start()  # a new service on the same state folder
    now = h.clock.now()
    assert h.bus.models["lamp-1"].commands == [(now, 50)] and h.bus.models["lamp-3"].commands == [(now, 10)]
    # the group's override expires at t0 + 1 h: back to the program (100 % before 22:00)
    await h.run_until(t0 + timedelta(hours=1, minutes=1))
    assert h.bus.models["lamp-1"].commands[-1] == (t0 + timedelta(hours=1), 100)
    assert h.svc.clear_override("lamp-3") and not h.svc.clear_override("lamp-3")
    await h.kick()
    assert h.bus.models["lamp-3"].commands[-1][1] == 100
    await h.stop()


async def test_an_expired_override_is_journalled_and_a_lamps_own_shows_like_a_groups(tmp_path: Path) -> None:
    h = dijon_harness(tmp_path, "2026-01-12T20:00:00")
    svc = await h.start()
    t0 = h.clock.now()
    svc.set_override("avenue", 30, None, t0 + timedelta(hours=1))
    svc.set_override("lamp-3", 10, None, t0 + timedelta(hours=2))
    await h.kick()
    lamps = {lamp["lamp"]: lamp for lamp in svc.snapshot()["lamps"]}
    assert lamps["lamp-3"]["override"] == svc.overrides["lamp-3"].to_doc()  # its own, in the form a group's shows
    assert lamps["lamp-1"]["override"] == svc.overrides["avenue"].to_doc()  # the group's governs it
    assert svc.lamp_override("lamp-3") == {"target": "lamp-3", "level_pct": 10, "via": "lighting",
                                           "start_ms": int(t0.timestamp() * 1000),
                                           "until_ms": int((t0 + timedelta(hours=2)).timestamp() * 1000)}
    assert h.events("override_ended") == []
    await h.run_until(t0 + timedelta(hours=2, minutes=1))
    ended = h.events("override_ended")
    assert [(e.device, e.ts_ms) for e in ended] == [
        ("avenue", int((t0 + timedelta(hours=1)).timestamp() * 1000)),
        ("lamp-3", int((t0 + timedelta(hours=2)).timestamp() * 1000)),
    ]
    assert svc.lamp_override("lamp-3") is None and svc.snapshot()["lamps"][0]["override"] is None
    await h.stop()


async def test_bad_overrides_are_refused(tmp_path: Path) -> None:
    h = dijon_harness(tmp_path, "2026-01-12T20:00:00")
    svc = await h.start()
    t0 = h.clock.now()
    with pytest.raises(LightingError, match="unknown_target"):
        svc.set_override("lamp-99", 30, None, t0 + timedelta(hours=1))
    with pytest.raises(LightingError, match="level_range"):
        svc.set_override("avenue", 130, None, t0 + timedelta(hours=1))
    with pytest.raises(LightingError, match="override_window"):
        svc.set_override("avenue", 30, t0 + timedelta(hours=2), t0 + timedelta(hours=1))
    with pytest.raises(LightingError, match="override_window"):
        svc.set_override("avenue", 30, t0 - timedelta(hours=2), t0 - timedelta(hours=1))
    assert svc.overrides == {}
    await h.stop()


SENNECEY_STYLE = {
    "program": [{"name": "dark-early", "periods": [{"start": "sunset+10", "end": "sunrise-10"}],
                 "switch_points": [{"at": "21:00", "level": 0}, {"at": "06:00", "level": 100}]}],
    "calendar": [{"name": "dijon", "default": "dark-early"}, {"name": "sennecey-les-dijon", "default": "dark-early"}],
}


async def test_an_invalid_push_is_refused_and_the_previous_programs_stay(tmp_path: Path) -> None:
    h = dijon_harness(tmp_path, "2026-01-12T23:30:00")
    svc = await h.start()
    bad = {"program": [{"name": "dijon-night", "switch_points": [{"at": "05:00", "level": 100},
                                                                 {"at": "22:00", "level": 70}]}],
           "calendar": [{"name": "dijon", "default": "dijon-night"}]}
    with pytest.raises(LightingError) as info:
        svc.push_programs(bad)
    assert info.value.name == "dijon-night" and info.value.rule == "switch_points_sorted"
    with pytest.raises(LightingError) as info:
        svc.push_programs({"program": SENNECEY_STYLE["program"], "calendar": [{"name": "dijon", "default": "dark-early"}]})
    assert info.value.rule == "unknown_calendar" and "impasse" in str(info.value)  # a group's calendar went missing
    with pytest.raises(LightingError) as info:
        svc.push_programs({**SENNECEY_STYLE, "program": [{**SENNECEY_STYLE["program"][0], "switch_points": [
            {"at": f"{h_:02d}:00", "level": 50} for h_ in [*range(12, 24), *range(0, 6)]]}]})
    assert info.value.rule == "switch_point_limit"
    assert h.bus.models["lamp-1"].commands == [(h.clock.now(), 70)]  # still the Dijon program
    assert Engine(svc.programs, h.config.site).level_at("dijon", h.clock.now()) == 70
    assert svc.programs.programs.keys() >= {"dijon-night"}

    svc.push_programs(SENNECEY_STYLE)
    await h.kick()
    assert h.bus.models["lamp-1"].commands[-1] == (h.clock.now(), 0)
    await h.stop()
    await h.start()  # the pushed set is what the gateway runs after a restart
    assert "dark-early" in h.svc.programs.programs and h.bus.models["lamp-1"].commands[-1][1] == 0
    await h.stop()


async def test_lamp_failure_day_burner_and_restoration_are_reported(tmp_path: Path) -> None:
    h = dijon_harness(tmp_path, "2026-01-12T18:00:00")
    await h.start()
    lamp1, lamp2, lamp3 = (h.bus.models[n] for n in LAMPS)
    lamp1.broken = True
    lamp3.welded_on = True
    lamp2.stuck_at = 100  # will not dim at 22:00
    await h.run_until(paris("2026-01-13T12:00:00"), poll_every=timedelta(minutes=5))
    failures = h.events("lamp_failure")
    assert [(e.device, e.severity) for e in failures] == [("lamp-1", Severity.MAJOR)]
    assert failures[0].detail["power_w"] == 0.0 and failures[0].detail["rated_power_w"] == 40.0
    dimming = h.events("dimming_failure")
    assert [e.device for e in dimming] == ["lamp-2"]
    assert dimming[0].ts_ms == int(paris("2026-01-12T22:00:00").timestamp() * 1000)  # seen in the read-back
    burners = [(e.device, alarm_time(e)) for e in h.events("day_burner")]
    # Sennecey's welded lamp is lit from 00:00 to 05:00 although the program says off, and again after
    # sunrise; the lamp stuck at 100 % burns on after sunrise too
    off_at = Engine(h.config.programs, h.config.site).plan("dijon", date(2026, 1, 12)).switches[-1].at
    assert [d for d, _ in burners] == ["lamp-3", "lamp-2", "lamp-3"]
    assert paris("2026-01-13T00:00:00") <= burners[0][1] <= paris("2026-01-13T00:10:00")
    assert off_at <= burners[1][1] <= off_at + timedelta(minutes=10)
    # the broken lamp is off in the day: nothing wrong with it then, and the restoration is reported
    restored = {(e.device, e.detail["cleared"]) for e in h.events("lamp_restored")}
    assert ("lamp-2", "dimming_failure") in restored  # at 05:00 the program asks for 100 % again
    lamp1.broken = False
    lamp3.welded_on = False
    await h.run_until(paris("2026-01-13T18:00:00"), poll_every=timedelta(minutes=5))
    restored = {(e.device, e.detail["cleared"]) for e in h.events("lamp_restored")}
    assert {("lamp-1", "lamp_failure"), ("lamp-3", "day_burner")} <= restored
    assert len(h.events("lamp_failure")) == 1  # reported once, not at every poll
    await h.stop()


async def test_a_lamp_dimmed_to_5_percent_is_not_a_failure_but_a_dark_one_is(tmp_path: Path) -> None:
    # a healthy 40 W lamp at 5 % draws 2 W, under 10 % of its rated power; a broken one draws nothing
    programs = tmp_path / "p.toml"
    programs.write_text('[[program]]\nname = "p"\nperiods = [{ start = "sunset", end = "sunrise" }]\n'
                        'switch_points = [{ at = "23:00", level = 5 }, { at = "05:00", level = 100 }]\n'
                        '[[calendar]]\nname = "c"\ndefault = "p"\n')
    cfg = lighting_config([("g", ["lamp-1", "lamp-2"], "c")], programs=[str(programs)])
    h = Harness(cfg, tmp_path / "state", paris("2026-01-12T20:00:00"), [LampModel("lamp-1"), LampModel("lamp-2")])
    await h.start()
    await h.run_until(paris("2026-01-13T01:00:00"), poll_every=timedelta(minutes=5))
    assert h.bus.models["lamp-1"].commands[-1] == (paris("2026-01-12T23:00:00"), 5)
    assert h.events("lamp_failure") == []
    h.bus.models["lamp-2"].broken = True
    await h.run_until(paris("2026-01-13T02:00:00"), poll_every=timedelta(minutes=5))
    assert [(e.device, e.detail["commanded_pct"]) for e in h.events("lamp_failure")] == [("lamp-2", 5)]
    await h.stop()


def test_the_failure_threshold_is_10_percent_of_rated_and_scales_down_below_20_percent() -> None:
    assert failure_power_w(40.0, 100) == failure_power_w(40.0, 20) == pytest.approx(4.0)
    assert failure_power_w(40.0, 10) == pytest.approx(2.0)
    assert failure_power_w(40.0, 5) == pytest.approx(1.0)
    assert all(failure_power_w(40.0, a) <= failure_power_w(40.0, b) for a, b in pairwise(range(1, 101)))


async def test_burn_hours_and_energy_per_lamp_and_per_cabinet(tmp_path: Path) -> None:
    h = dijon_harness(tmp_path, "2026-01-12T12:00:00", report_interval_s=86_400)
    await h.start()
    await h.run_until(paris("2026-01-13T12:00:00"), poll_every=timedelta(minutes=1))
    engine = Engine(h.config.programs, h.config.site)
    dijon, sennecey = engine.plan("dijon", date(2026, 1, 12)), engine.plan("sennecey-les-dijon", date(2026, 1, 12))
    reports = {s.device: s.values for s in h.samples(key="burn_h")}
    assert reports["lamp-1"]["burn_h"] == pytest.approx(dijon.burn_seconds() / 3600, abs=2 / 60)
    assert reports["lamp-3"]["burn_h"] == pytest.approx(sennecey.burn_seconds() / 3600, abs=2 / 60)
    assert reports["lamp-1"]["consumed_wh"] == pytest.approx(40 * dijon.level_seconds() / 3600, rel=0.01)
    cabinet = reports["cabinet"]
    assert cabinet["burn_h"] == pytest.approx(sum(reports[n]["burn_h"] for n in LAMPS), abs=0.01)
    assert cabinet["consumed_wh"] == pytest.approx(sum(reports[n]["consumed_wh"] for n in LAMPS), abs=0.01)
    assert cabinet["lamps"] == 3 and cabinet["lamps_failed"] == 0
    # totals persist: a restart continues the account
    await h.stop()
    saved = orjson.loads((tmp_path / "state" / STATE_FILE).read_bytes())
    assert saved["lamps"]["lamp-1"]["burn_total_s"] == pytest.approx(reports["lamp-1"]["burn_h"] * 3600, abs=1)
    assert cabinet["burn_total_h"] == pytest.approx(cabinet["burn_h"], abs=0.001)  # the first interval


async def test_a_replaced_driver_resetting_its_counter_never_counts_negative(tmp_path: Path) -> None:
    h = dijon_harness(tmp_path, "2026-01-12T19:00:00", lamp_report_interval_s=3600)
    await h.start()
    await h.run_until(paris("2026-01-12T19:30:00"), poll_every=timedelta(minutes=1))
    h.bus.models["lamp-1"].energy_wh = 0.0  # the driver was swapped
    await h.run_until(paris("2026-01-12T20:00:30"), poll_every=timedelta(minutes=1))
    report = [s for s in h.samples("lamp-1", "consumed_wh")][-1]
    assert 0 < report.values["consumed_wh"] <= 40 * 1.0 + 0.1


async def test_a_counter_jump_no_lamp_could_draw_is_reported_not_counted(tmp_path: Path) -> None:
    h = dijon_harness(tmp_path, "2026-01-12T19:00:00", lamp_report_interval_s=3600)
    await h.start()
    await h.run_until(paris("2026-01-12T19:30:00"), poll_every=timedelta(minutes=1))
    h.bus.models["lamp-1"].energy_wh = 1.7e308  # a garbled register, read once
    await h.run_until(paris("2026-01-12T19:31:30"), poll_every=timedelta(minutes=1))
    h.bus.models["lamp-1"].energy_wh = 5_000.0  # read right again
    await h.run_until(paris("2026-01-12T20:00:30"), poll_every=timedelta(minutes=1))
    # the jump up, then the fall back (a reset that would count all of 5 kWh as used since): neither counted
    jump, back = h.events("counter_implausible")
    assert {jump.device, back.device} == {"lamp-1"} and jump.severity == Severity.MAJOR
    assert jump.detail["current"] == 1.7e308 and jump.detail["rated_power_w"] == 40
    assert back.detail["previous"] == 1.7e308 and 5_000 <= back.detail["current"] < 5_010
    report = [s for s in h.samples("lamp-1", "consumed_wh")][-1]
    assert 0 < report.values["consumed_wh"] <= 40 * 1.0 + 0.1  # the hour's 40 W at most, never 1.7e308
    cabinet = [s for s in h.samples("cabinet", "consumed_wh")][-1]
    assert cabinet.values["consumed_wh"] < 3 * 40 * 1.0 + 0.1


async def test_a_controller_that_does_not_answer_is_reported_and_retried(tmp_path: Path) -> None:
    h = dijon_harness(tmp_path, "2026-01-12T21:59:00")
    h.bus.models["lamp-2"].failing = True
    await h.start()
    assert [e.device for e in h.events("command_failure")] == ["lamp-2"]
    await h.run_until(paris("2026-01-12T22:00:00"))
    assert len(h.events("command_failure")) == 1  # once per failure streak
    h.bus.models["lamp-2"].failing = False
    await h.run_until(paris("2026-01-12T22:01:00"))
    assert h.bus.models["lamp-2"].commands == [(paris("2026-01-12T22:00:30"), 70)]  # retry_s = 30


async def test_a_clock_before_2020_keeps_the_lamps_at_100_and_raises_an_alarm(tmp_path: Path) -> None:
    cfg = lighting_config([("avenue", ["lamp-1"], "dijon")])
    h = Harness(cfg, tmp_path / "state", datetime(1970, 1, 1, 0, 5, tzinfo=UTC), [LampModel("lamp-1")])
    await h.start()
    assert h.bus.models["lamp-1"].commands == [(h.clock.now(), 100)]
    alarm = h.events("clock_invalid")
    assert len(alarm) == 1 and alarm[0].severity == Severity.CRITICAL
    # NTP steps the clock to a real night at 23:30: the program takes over (70 %) within a check period
    await h.clock.jump(paris("2026-01-12T23:30:00"))
    await h.run_until(paris("2026-01-12T23:32:00"))
    assert h.bus.models["lamp-1"].commands[-1][1] == 70
    assert len(h.events("clock_restored")) == 1
    await h.stop()


async def test_a_lost_time_source_falls_back_to_the_safe_all_night_program(tmp_path: Path) -> None:
    cfg = lighting_config([("avenue", ["lamp-1"], "dijon")], clock_lost_after_s=3600)
    sync = SettableTimeSync(True)
    h = Harness(cfg, tmp_path / "state", paris("2026-01-12T21:00:00"), [LampModel("lamp-1")], time_sync=sync)
    await h.start()  # synchronised at 21:00
    sync.synchronized = False
    await h.run_until(paris("2026-01-12T22:00:00"))
    lamp = h.bus.models["lamp-1"]
    assert lamp.commands[-1] == (paris("2026-01-12T22:00:00"), 70)  # lost for 1 h: still trusted
    assert not h.events("clock_unsynchronised")
    await h.run_until(paris("2026-01-12T22:30:00"))
    alarm = h.events("clock_unsynchronised")
    assert len(alarm) == 1 and alarm[0].severity == Severity.MAJOR
    assert alarm[0].detail["fallback"] == "safe-all-night"
    assert alarm_time(alarm[0]) == paris("2026-01-12T22:01:00")  # the first check past the bound
    assert lamp.commands[-1] == (paris("2026-01-12T22:01:00"), 100)  # the safe program: 100 % all night
    sync.synchronized = True
    await h.run_until(paris("2026-01-12T22:40:00"))
    assert lamp.commands[-1] == (paris("2026-01-12T22:31:00"), 70)
    assert [e.code for e in h.events() if e.code.startswith("clock")] == ["clock_unsynchronised", "clock_restored"]
    await h.stop()


def alarm_time(alarm: Event) -> datetime:
    return datetime.fromtimestamp(alarm.ts_ms / 1000, UTC)


async def test_a_change_is_applied_within_one_second_on_the_system_clock(tmp_path: Path) -> None:
    cfg = lighting_config([("avenue", ["lamp-1"], None)])
    h = Harness(cfg, tmp_path / "state", datetime.now(UTC), [LampModel("lamp-1")])
    clock = SystemClock()
    h.bus.clock = clock  # type: ignore[assignment]
    ctx = AgentContext("gw", "21231", tmp_path / "state", clock, {h.bus.name: h.bus}, h.emit)
    svc = LightingService(cfg)
    task = asyncio.create_task(svc.run(ctx))
    commands = h.bus.models["lamp-1"].commands

    async def until(n: int) -> None:
        for _ in range(3000):
            if len(commands) >= n:
                return
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        raise AssertionError(f"only {commands} after 30 s")

    try:
        await until(1)
        start = datetime.now(UTC) + timedelta(seconds=1.5)
        svc.set_override("lamp-1", 40, start, start + timedelta(seconds=1.5))
        await until(3)
        (t_on, lv_on), (t_off, lv_off) = h.bus.models["lamp-1"].commands[1:3]
        assert (lv_on, lv_off) == (40, 100)
        assert timedelta(0) <= t_on - start < timedelta(seconds=1)
        assert timedelta(0) <= t_off - (start + timedelta(seconds=1.5)) < timedelta(seconds=1)
    finally:
        await stop_tasks([task])


WRITER = """
import sys, itertools
from pathlib import Path
from edge_agent.lighting.state import write_json_atomic
path = Path(sys.argv[1])
for i in itertools.count():
    write_json_atomic(path, {"version": 1, "i": i, "pad": "x" * 20000})
    if i == 0:
        print("ready", flush=True)
"""


def test_the_state_file_survives_kill_minus_9_at_any_moment(tmp_path: Path) -> None:
    path = tmp_path / STATE_FILE
    for run in range(10):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                                cwd=Path(__file__).resolve().parents[2])
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(0.01 + run * 0.013)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        doc = orjson.loads(path.read_bytes())  # never torn: the old or the new file, whole
        assert doc["version"] == 1 and len(doc["pad"]) == 20000
