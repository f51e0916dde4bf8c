"""The pure engine: levels at instants, switch plans, daylight saving, calendars and overrides."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.lighting.astro import Site, sun_event
from edge_agent.lighting.config import load_programs
from edge_agent.lighting.engine import Engine, local_instant, override_for
from edge_agent.lighting.model import Limits, Override, parse_program_set

PARIS = ZoneInfo("Europe/Paris")
DIJON = Site(47.322, 5.041, PARIS)
CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "lighting"


def paris(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


@pytest.fixture(scope="module")
def shipped() -> Engine:
    files = [CONFIGS / n for n in ("common.toml", "dijon.toml", "quetigny.toml", "sennecey-les-dijon.toml")]
    return Engine(load_programs(files, Limits()), DIJON)


def test_dijon_sends_70_at_22_00_and_100_at_05_00(shipped: Engine) -> None:
    level = lambda t: shipped.level_at("dijon", paris(t))  # noqa: E731
    assert level("2026-01-12T21:59:59") == 100
    assert level("2026-01-12T22:00:00") == 70
    assert level("2026-01-12T23:30:00") == 70
    assert level("2026-01-13T04:59:59") == 70
    assert level("2026-01-13T05:00:00") == 100
    assert level("2026-01-13T13:00:00") == 0
    plan = shipped.plan("dijon", date(2026, 1, 12))
    assert [(s.local.strftime("%H:%M"), s.level) for s in plan.switches][1:3] == [("22:00", 70), ("05:00", 100)]


def test_dijon_switches_on_at_sunset_plus_10_and_off_at_sunrise_minus_10(shipped: Engine) -> None:
    day = date(2026, 12, 21)
    sunset = sun_event(DIJON, "sunset", day)
    sunrise = sun_event(DIJON, "sunrise", day + timedelta(days=1))
    assert isinstance(sunset, datetime) and isinstance(sunrise, datetime)
    plan = shipped.plan("dijon", day)
    on, off = plan.switches[0], plan.switches[-1]
    assert (on.level, off.level) == (100, 0)
    assert abs(on.at - (sunset + timedelta(minutes=10))) < timedelta(seconds=1)
    assert abs(off.at - (sunrise - timedelta(minutes=10))) < timedelta(seconds=1)


def test_summer_night_keeps_the_order_even_when_sunrise_is_near_05_00(shipped: Engine) -> None:
    plan = shipped.plan("dijon", date(2026, 6, 21))
    assert [s.level for s in plan.switches] == [100, 70, 100, 0]
    assert plan.switches[2].local.strftime("%H:%M") == "05:00"
    assert plan.switches[3].local.strftime("%H:%M") == "05:33"


def test_sennecey_is_off_from_midnight_to_five(shipped: Engine) -> None:
    level = lambda t: shipped.level_at("sennecey-les-dijon", paris(t))  # noqa: E731
    assert level("2026-11-03T23:59:00") == 100
    assert level("2026-11-04T00:00:00") == 0
    assert level("2026-11-04T04:59:59") == 0
    assert level("2026-11-04T05:00:00") == 100


def test_the_14_july_rule_governs_the_night_of_the_14th_to_the_15th(shipped: Engine) -> None:
    assert shipped.plan("sennecey-les-dijon", date(2026, 7, 14)).program == "all-night"
    assert shipped.level_at("sennecey-les-dijon", paris("2026-07-15T01:00:00")) == 100
    assert shipped.level_at("sennecey-les-dijon", paris("2026-07-14T01:00:00")) == 0  # the night before
    assert shipped.level_at("sennecey-les-dijon", paris("2026-07-16T01:00:00")) == 0  # the night after
    assert shipped.level_at("dijon", paris("2026-07-14T23:00:00")) == 100


def _one_point_engine(at: str) -> Engine:
    ps = parse_program_set({"program": [{"name": "p", "switch_points": [{"at": at, "level": 50},
                                                                        {"at": "06:00", "level": 100}]}],
                            "calendar": [{"name": "c", "default": "p"}]})
    return Engine(ps, DIJON)


def _transitions(engine: Engine, start: datetime, hours: int, step_s: int = 60) -> list[tuple[datetime, int]]:
    start = start.astimezone(UTC)  # step in UTC: aware local arithmetic would ignore the offset change
    out, previous = [], engine.level_at("c", start)
    for i in range(1, hours * 3600 // step_s):
        t = start + timedelta(seconds=i * step_s)
        lv = engine.level_at("c", t)
        if lv != previous:
            out.append((t, lv))
            previous = lv
    return out


def test_spring_forward_point_at_02_30_fires_once_at_03_00() -> None:
    engine = _one_point_engine("02:30")
    changes = _transitions(engine, paris("2026-03-28T12:00"), 24)
    to_50 = [t for t, lv in changes if lv == 50]
    assert len(to_50) == 1
    assert to_50[0] == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST, the first instant after the gap
    assert to_50[0].astimezone(PARIS).strftime("%H:%M %Z") == "03:00 CEST"
    plan = engine.plan("c", date(2026, 3, 28))
    assert plan.end - plan.start == timedelta(hours=23)


def test_fall_back_point_at_02_30_fires_once_at_its_first_occurrence() -> None:
    engine = _one_point_engine("02:30")
    changes = _transitions(engine, paris("2026-10-24T12:00"), 25)
    to_50 = [t for t, lv in changes if lv == 50]
    assert to_50 == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]  # 02:30 CEST, not again at 02:30 CET
    assert engine.plan("c", date(2026, 10, 24)).end - engine.plan("c", date(2026, 10, 24)).start == timedelta(hours=25)


def test_night_length_across_spring_forward_is_computed_in_utc() -> None:
    ps = parse_program_set({"program": [{"name": "p", "periods": [{"start": "sunset", "end": "sunrise"}]}],
                            "calendar": [{"name": "c", "default": "p"}]})
    plan = Engine(ps, DIJON).plan("c", date(2026, 3, 28))
    assert plan.burn_seconds() / 3600 == pytest.approx(11.37, abs=0.01)  # not 12.37


def test_local_instant_handles_gap_and_fold() -> None:
    from datetime import time
    assert local_instant(date(2026, 3, 29), time(2, 0), PARIS) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert local_instant(date(2026, 3, 29), time(2, 59), PARIS) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert local_instant(date(2026, 3, 29), time(3, 0), PARIS) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert local_instant(date(2026, 10, 25), time(2, 0), PARIS) == datetime(2026, 10, 25, 0, 0, tzinfo=UTC)
    assert local_instant(date(2026, 10, 25), time(3, 0), PARIS) == datetime(2026, 10, 25, 2, 0, tzinfo=UTC)


def test_no_calendar_is_the_default_light_state_100() -> None:
    engine = Engine(parse_program_set({}), DIJON)
    assert engine.level_at(None, paris("2026-05-01T03:00")) == 100
    assert engine.level_at(None, paris("2026-05-01T15:00")) == 100


def test_polar_day_leaves_lamps_off_and_polar_night_lit_all_day() -> None:
    ps = parse_program_set({"program": [{"name": "p", "periods": [{"start": "sunset", "end": "sunrise"}]}],
                            "calendar": [{"name": "c", "default": "p"}]})
    tromso = Engine(ps, Site(69.65, 18.96, ZoneInfo("Europe/Oslo")))
    summer = tromso.plan("c", date(2026, 6, 21))
    assert summer.initial == 0 and summer.switches == ()
    winter = tromso.plan("c", date(2026, 12, 21))
    assert winter.initial == 100 and winter.switches == ()


def test_overrides_lamp_beats_group_and_windows_are_half_open() -> None:
    t0 = datetime(2026, 1, 1, 20, tzinfo=UTC)
    created = t0
    group = Override.make("g", 30, t0, t0 + timedelta(hours=1), created)
    lamp = Override.make("lamp-1", 0, t0, t0 + timedelta(minutes=30), created)
    assert override_for([group, lamp], "lamp-1", "g", t0) is lamp
    assert override_for([group, lamp], "lamp-2", "g", t0) is group
    assert override_for([group, lamp], "lamp-1", "g", t0 + timedelta(minutes=30)) is group
    assert override_for([group, lamp], "lamp-1", "g", t0 + timedelta(hours=1)) is None
    assert override_for([group], "lamp-1", "other", t0) is None


# --- properties over random programs and instants ----------------------------------------------

hm = st.tuples(st.integers(0, 23), st.sampled_from([0, 15, 30, 59])).map(lambda x: f"{x[0]:02d}:{x[1]:02d}")
astro = st.sampled_from(["sunset", "sunset+10", "dusk", "sunrise-10", "sunrise", "dawn+5"])


def _key(t: str) -> int:
    return (int(t[:2]) * 60 + int(t[3:]) - 720) % 1440


@st.composite
def programs(draw: st.DrawFn) -> dict[str, Any]:
    points = draw(st.lists(st.tuples(hm, st.integers(0, 100)), max_size=6, unique_by=lambda x: _key(x[0])))
    points.sort(key=lambda x: _key(x[0]))
    periods = draw(st.lists(st.tuples(astro | hm, astro | hm), max_size=2))
    periods = [p for p in periods if p[0] != p[1] and not (":" in p[0] and ":" in p[1] and _key(p[1]) < _key(p[0]))]
    return {"name": "p", "periods": [{"start": a, "end": b} for a, b in periods],
            "switch_points": [{"at": t, "level": lv} for t, lv in points],
            "astro_switch_points": draw(st.lists(st.tuples(astro, st.integers(0, 100)), max_size=2,
                                                 unique_by=lambda x: x[0]).map(
                lambda xs: [{"at": a, "level": lv} for a, lv in xs]))}


instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC))


@settings(max_examples=150, deadline=None)
@given(programs(), instants)
def test_plan_is_consistent_with_the_level_and_the_next_change(program: dict[str, Any], t: datetime) -> None:
    engine = Engine(parse_program_set({"program": [program], "calendar": [{"name": "c", "default": "p"}]}), DIJON)
    day = engine.program_day(t)
    plan = engine.plan("c", day)
    assert plan.start <= t < plan.end
    assert all(0 <= s.level <= 100 for s in plan.switches) and 0 <= plan.initial <= 100
    instants_ = [s.at for s in plan.switches]
    assert instants_ == sorted(set(instants_)) and all(plan.start < x < plan.end for x in instants_)
    levels = [plan.initial, *(s.level for s in plan.switches)]
    assert all(a != b for a, b in itertools.pairwise(levels))  # a switch always changes the level
    now = engine.level_at("c", t)
    nxt = engine.next_change("c", t)
    assert nxt > t
    assert engine.level_at("c", nxt) != now or nxt >= t + timedelta(days=7)
    # nothing changes in between: probe a few instants
    for frac in (0.1, 0.5, 0.9):
        probe = t + (nxt - t) * frac
        if probe < nxt:
            assert engine.level_at("c", probe) == now
