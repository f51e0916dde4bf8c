"""Sun times for a site, with the polar cases made explicit.

astral 3.2's `sun()` raises as soon as one event of the day does not exist, so each event is
computed on its own. When an event does not happen (the sun stays above or below the
threshold all day) the answer says which, so the engine can decide: a street is never left
dark because the sun "did not set".

sunrise/sunset: sun centre at −0.833° (standard refraction); dusk/dawn: civil, −6°.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from zoneinfo import ZoneInfo

from astral import Observer
from astral.sun import dawn, dusk, elevation, noon, sunrise, sunset

CIVIL_DEPRESSION = 6.0
HORIZON_ELEVATION = -0.833


class NoEvent(Enum):
    ALWAYS_UP = "sun always above the threshold"
    ALWAYS_DOWN = "sun always below the threshold"


@dataclass(frozen=True, slots=True)
class Site:
    latitude: float
    longitude: float
    timezone: ZoneInfo

    def __post_init__(self) -> None:
        if not -90 <= self.latitude <= 90:
            raise ValueError(f"latitude {self.latitude} is outside -90..90")
        if not -180 <= self.longitude <= 180:
            raise ValueError(f"longitude {self.longitude} is outside -180..180")


def sun_event(site: Site, event: str, day: date) -> datetime | NoEvent:
    """The instant (aware, UTC) of `event` on the local date `day`, or why it does not happen."""
    return _cached(site.latitude, site.longitude, site.timezone.key, event, day)


@functools.lru_cache(maxsize=8192)
def _cached(lat: float, lon: float, tz: str, event: str, day: date) -> datetime | NoEvent:
    observer = Observer(lat, lon)
    zone = ZoneInfo(tz)
    try:
        if event == "sunrise":
            when = sunrise(observer, day, tzinfo=zone)
        elif event == "sunset":
            when = sunset(observer, day, tzinfo=zone)
        elif event == "dawn":
            when = dawn(observer, day, depression=CIVIL_DEPRESSION, tzinfo=zone)
        elif event == "dusk":
            when = dusk(observer, day, depression=CIVIL_DEPRESSION, tzinfo=zone)
        else:
            raise ValueError(f"unknown sun event {event!r}")
    except ValueError as exc:
        if "unknown sun event" in str(exc):
            raise
        threshold = HORIZON_ELEVATION if event in ("sunrise", "sunset") else -CIVIL_DEPRESSION
        # The sun is highest at solar noon: if even then it is below the threshold, it never rises above it.
        highest = elevation(observer, noon(observer, day))
        return NoEvent.ALWAYS_DOWN if highest < threshold else NoEvent.ALWAYS_UP
    return when.astimezone(UTC)
