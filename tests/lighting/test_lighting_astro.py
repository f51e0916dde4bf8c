"""Sun times against the reference table of DOMAIN.md (astral 3.2, Dijon), and the polar cases."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from edge_agent.lighting.astro import NoEvent, Site, sun_event

PARIS = ZoneInfo("Europe/Paris")
DIJON = Site(47.322, 5.041, PARIS)

# date, sunrise, sunset, civil dusk (local wall times, from shared/DOMAIN.md §2)
REFERENCE = [
    ("2026-12-21", "08:24:16", "16:51:31", "17:28:02"),
    ("2026-03-29", "07:25:15", "20:04:47", "20:36:17"),
    ("2026-06-21", "05:43:36", "21:39:41", "22:20:49"),
    ("2026-10-25", "07:12:51", "17:34:11", "18:06:15"),
]


def _local(day: str, hms: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hms}").replace(tzinfo=PARIS)


@pytest.mark.parametrize(("day", "rise", "set_", "dusk"), REFERENCE)
def test_dijon_sun_times_match_the_reference_within_two_minutes(day: str, rise: str, set_: str, dusk: str) -> None:
    d = date.fromisoformat(day)
    for event, expected in (("sunrise", rise), ("sunset", set_), ("dusk", dusk)):
        got = sun_event(DIJON, event, d)
        assert isinstance(got, datetime), event
        assert abs(got - _local(day, expected)) <= timedelta(minutes=2), (event, got.astimezone(PARIS))
        assert got.utcoffset() == timedelta(0)  # instants are UTC internally


def test_dawn_comes_before_sunrise_and_dusk_after_sunset() -> None:
    d = date(2026, 9, 1)
    dawn, rise, set_, dusk = (sun_event(DIJON, e, d) for e in ("dawn", "sunrise", "sunset", "dusk"))
    assert isinstance(dawn, datetime) and isinstance(rise, datetime)
    assert isinstance(set_, datetime) and isinstance(dusk, datetime)
    assert dawn < rise < set_ < dusk
    assert timedelta(minutes=20) < rise - dawn < timedelta(minutes=50)


def test_polar_day_and_night_say_which_instead_of_raising() -> None:
    tromso = Site(69.65, 18.96, ZoneInfo("Europe/Oslo"))
    assert sun_event(tromso, "sunset", date(2026, 6, 21)) is NoEvent.ALWAYS_UP
    assert sun_event(tromso, "sunrise", date(2026, 12, 21)) is NoEvent.ALWAYS_DOWN
    # In the polar night the sun still climbs above −6° at noon: civil dawn exists.
    assert isinstance(sun_event(tromso, "dawn", date(2026, 12, 21)), datetime)
    # Svalbard in December never even reaches civil twilight.
    longyearbyen = Site(78.22, 15.65, ZoneInfo("Arctic/Longyearbyen"))
    assert sun_event(longyearbyen, "dusk", date(2026, 12, 21)) is NoEvent.ALWAYS_DOWN


def test_a_site_off_the_globe_is_refused() -> None:
    with pytest.raises(ValueError, match="latitude"):
        Site(91.0, 0.0, PARIS)
