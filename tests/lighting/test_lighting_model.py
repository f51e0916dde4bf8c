"""Program and calendar validation: every refusal names the program (or calendar) and the rule."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.lighting.model import LightingError, Limits, parse_program_set

DIJON_NIGHT = {
    "name": "dijon-night",
    "periods": [{"start": "sunset+10", "end": "sunrise-10"}],
    "switch_points": [{"at": "22:00", "level": 70}, {"at": "05:00", "level": 100}],
}


def doc_with(program: dict[str, Any], calendars: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"program": [program], "calendar": calendars or []}


def refused(doc: dict[str, Any], limits: Limits | None = None) -> LightingError:
    with pytest.raises(LightingError) as info:
        parse_program_set(doc, "test", limits)
    return info.value


def test_dijon_program_parses_into_typed_values() -> None:
    ps = parse_program_set(doc_with(DIJON_NIGHT, [{"name": "dijon", "default": "dijon-night"}]))
    p = ps.programs["dijon-night"]
    assert [str(s.at) for s in p.switch_points] == ["22:00", "05:00"]
    assert [s.level for s in p.switch_points] == [70, 100]
    assert str(p.periods[0].start) == "sunset+10" and str(p.periods[0].end) == "sunrise-10"
    assert p.uses_astronomy()


@pytest.mark.parametrize(
    ("change", "rule", "words"),
    [
        ({"switch_points": [{"at": "22:00", "level": 70}, {"at": "22:00", "level": 50}]},
         "switch_point_duplicate", "two switch points at 22:00"),
        ({"switch_points": [{"at": "05:00", "level": 100}, {"at": "22:00", "level": 70}]},
         "switch_points_sorted", "22:00 comes after 05:00"),
        ({"switch_points": [{"at": "22:00", "level": 101}]}, "level_range", "101"),
        ({"switch_points": [{"at": "22:00", "level": -1}]}, "level_range", "-1"),
        ({"switch_points": [{"at": "22:00", "level": 70.5}]}, "level_range", "integer"),
        ({"switch_points": [{"at": "22:00", "level": True}]}, "level_range", "integer"),
        ({"switch_points": [{"at": "25:00", "level": 70}]}, "time_format", "25:00"),
        ({"switch_points": [{"at": "sunset", "level": 70}]}, "time_format", "sunset"),
        ({"astro_switch_points": [{"at": "sunset+5", "level": 70}, {"at": "sunset+5", "level": 60}]},
         "switch_point_duplicate", "sunset+5"),
        ({"astro_switch_points": [{"at": "sunset+600", "level": 70}]}, "offset_range", "+600"),
        ({"periods": [{"start": "23:00", "end": "22:00"}]}, "period_order", "before it starts"),
        ({"periods": [{"start": "sunset", "end": "sunset"}]}, "period_order", "starts and ends"),
        ({"periods": [{"start": "sunset"}]}, "structure", "both start and end"),
        ({"colour": "orange"}, "structure", "unknown key 'colour'"),
    ],
)
def test_a_broken_program_is_refused_naming_program_and_rule(change: dict[str, Any], rule: str, words: str) -> None:
    err = refused(doc_with({**DIJON_NIGHT, **change}))
    assert err.kind == "program" and err.name == "dijon-night" and err.rule == rule
    assert "dijon-night" in str(err) and rule in str(err) and words in str(err)


def test_more_switch_points_than_the_gateway_supports_is_refused() -> None:
    points = [{"at": f"{h:02d}:00", "level": 50} for h in [*range(12, 24), *range(0, 12)]]
    err = refused(doc_with({"name": "busy", "switch_points": points}), Limits(max_switch_points=16))
    assert (err.name, err.rule) == ("busy", "switch_point_limit")
    assert "24 switch points" in str(err) and "16" in str(err)
    assert parse_program_set(doc_with({"name": "busy", "switch_points": points}), limits=Limits(max_switch_points=24))


def test_switch_points_ascend_through_the_night_from_noon() -> None:
    evening_first = {"name": "p", "switch_points": [
        {"at": "12:00", "level": 100}, {"at": "23:59", "level": 50}, {"at": "00:00", "level": 0}, {"at": "11:59", "level": 10}]}
    assert len(parse_program_set(doc_with(evening_first)).programs["p"].switch_points) == 4


def test_a_calendar_naming_an_unknown_program_is_refused() -> None:
    err = refused(doc_with(DIJON_NIGHT, [{"name": "dijon", "default": "dijon-night",
                                          "rules": [{"dates": ["--07-14"], "program": "feu-d-artifice"}]}]))
    assert (err.kind, err.name, err.rule) == ("calendar", "dijon", "unknown_program")
    assert "feu-d-artifice" in str(err)
    err = refused(doc_with(DIJON_NIGHT, [{"name": "dijon", "default": "nope"}]))
    assert err.rule == "unknown_program" and "nope" in str(err)


@pytest.mark.parametrize(
    ("rule", "expected_rule"),
    [
        ({"dates": ["--13-01"]}, "date_format"),
        ({"dates": ["--02-30"]}, "date_format"),
        ({"dates": ["14 juillet"]}, "date_format"),
        ({"from": "2026-12-31", "to": "2026-12-01"}, "date_range"),
        ({"from": "2026-12-01"}, "date_range"),
        ({"from": "--12-01", "to": "2027-01-01"}, "date_range"),
        ({"weekdays": ["funday"]}, "weekday"),
        ({"weekdays": ["mon"], "nth": 6}, "nth_weekday"),
        ({"nth": 2}, "nth_weekday"),
        ({"months": [13]}, "month"),
        ({}, "calendar_rule"),
    ],
)
def test_a_broken_calendar_rule_is_refused(rule: dict[str, Any], expected_rule: str) -> None:
    err = refused(doc_with(DIJON_NIGHT, [{"name": "cal", "default": "dijon-night",
                                          "rules": [{**rule, "program": "dijon-night"}]}]))
    assert (err.kind, err.name, err.rule) == ("calendar", "cal", expected_rule)


def test_duplicate_names_are_refused() -> None:
    err = refused({"program": [DIJON_NIGHT, DIJON_NIGHT]})
    assert (err.name, err.rule) == ("dijon-night", "duplicate_name")


def _calendar(*rules: dict[str, Any]) -> Any:
    programs = [{"name": n} for n in ("a", "b", "c", "d", "default")]
    ps = parse_program_set({"program": programs, "calendar": [{"name": "cal", "default": "default", "rules": list(rules)}]})
    return ps.calendars["cal"]


def test_calendar_first_matching_rule_wins_then_the_default() -> None:
    cal = _calendar(
        {"dates": ["--07-14"], "program": "a"},
        {"from": "2026-07-01", "to": "2026-08-31", "program": "b"},
        {"weekdays": ["sat", "sun"], "program": "c"},
    )
    assert cal.program_for(date(2026, 7, 14)) == "a"  # a Tuesday inside the summer range: the first rule wins
    assert cal.program_for(date(2027, 7, 14)) == "a"  # yearly
    assert cal.program_for(date(2026, 7, 15)) == "b"
    assert cal.program_for(date(2026, 7, 18)) == "b"  # a Saturday, but the range comes first
    assert cal.program_for(date(2026, 9, 5)) == "c"  # a Saturday after the range
    assert cal.program_for(date(2026, 9, 7)) == "default"


def test_nth_and_last_weekday_of_a_month() -> None:
    cal = _calendar(
        {"weekdays": ["mon"], "nth": 2, "program": "a"},
        {"weekdays": ["fri"], "nth": -1, "months": [12], "program": "b"},
    )
    assert cal.program_for(date(2026, 3, 9)) == "a"  # 2nd Monday of March 2026
    assert cal.program_for(date(2026, 3, 2)) == "default"  # 1st Monday
    assert cal.program_for(date(2026, 3, 16)) == "default"  # 3rd Monday
    assert cal.program_for(date(2026, 12, 25)) == "b"  # last Friday of December 2026
    assert cal.program_for(date(2026, 12, 18)) == "default"
    assert cal.program_for(date(2026, 11, 27)) == "default"  # last Friday, but not December


def test_yearly_range_runs_across_new_year() -> None:
    cal = _calendar({"from": "--12-20", "to": "--01-05", "program": "a"})
    assert cal.program_for(date(2026, 12, 24)) == "a"
    assert cal.program_for(date(2027, 1, 5)) == "a"
    assert cal.program_for(date(2027, 1, 6)) == "default"
    assert cal.program_for(date(2026, 12, 19)) == "default"


def test_leap_day_rule_matches_only_in_leap_years() -> None:
    cal = _calendar({"dates": ["--02-29"], "program": "a"})
    assert cal.program_for(date(2028, 2, 29)) == "a"
    assert cal.program_for(date(2027, 2, 28)) == "default"


times = st.tuples(st.integers(0, 23), st.integers(0, 59)).map(lambda hm: f"{hm[0]:02d}:{hm[1]:02d}")
night_key = lambda t: ((int(t[:2]) * 60 + int(t[3:])) - 720) % 1440  # noqa: E731


@given(st.lists(st.tuples(times, st.integers(0, 100)), max_size=16, unique_by=lambda x: night_key(x[0])),
       st.lists(st.sampled_from(["sunset", "sunrise+15", "dusk-5", "dawn", "sunset+30"]), unique=True, max_size=3))
def test_program_documents_round_trip(points: list[tuple[str, int]], astro: list[str]) -> None:
    points.sort(key=lambda x: night_key(x[0]))
    doc = {
        "program": [{
            "name": "p", "description": "d", "periods": [{"start": "dusk", "end": "06:30"}],
            "switch_points": [{"at": t, "level": lv} for t, lv in points],
            "astro_switch_points": [{"at": a, "level": 40} for a in astro][: 16 - len(points)],
        }],
        "calendar": [{"name": "c", "default": "p", "rules": [
            {"dates": ["--07-14", "2026-12-24"], "program": "p"},
            {"weekdays": ["fri"], "nth": -1, "months": [1, 2], "program": "p"},
            {"from": "--12-20", "to": "--01-05", "program": "p"},
        ]}],
    }
    ps = parse_program_set(doc)
    assert parse_program_set(ps.to_doc()) == ps


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["name", "program", "calendar", "periods", "switch_points", "at", "level", "start",
                         "end", "rules", "default", "dates", "weekdays", "nth", "from", "to"]), inner, max_size=5),
    max_leaves=20,
))
def test_arbitrary_documents_are_refused_with_lighting_error_only(doc: Any) -> None:
    try:
        parse_program_set({"program": doc} if not isinstance(doc, dict) else doc)
    except LightingError:
        pass
