"""Nights at a place: from civil dusk to civil dawn (sun 6° below the horizon), as the lighting runs.

The all-night baseline of the efficiency figures is every lamp at its full power from dusk to
dawn. The agent computes the same instants for its programs (edge_agent/lighting/astro.py, civil
−6°, astral 3); the collector may not import the agent (the layering contract in pyproject.toml),
so it asks astral itself with the same definition. Where the sun does not go 6° below the
horizon (never in France) the night has no dark part; where it never rises above, the whole day is.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from astral import Observer
from astral.sun import dawn, dusk, elevation, noon

CIVIL_DEPRESSION = 6.0
_DAY = timedelta(days=1)


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


@functools.lru_cache(maxsize=16_384)
def night(lat: float, lon: float, evening: date) -> tuple[int, int] | None:
    """[dusk of `evening`, dawn of the next day) in UTC ms; None when the sun never goes that low."""
    observer = Observer(lat, lon)
    try:
        start = dusk(observer, evening, depression=CIVIL_DEPRESSION, tzinfo=UTC)
    except ValueError:
        start = None
    try:
        end = dawn(observer, evening + _DAY, depression=CIVIL_DEPRESSION, tzinfo=UTC)
    except ValueError:
        end = None
    if start is None or end is None:
        # polar: the sun stays on one side of −6° all day; dark all day if even at noon it is below
        if elevation(observer, noon(observer, evening)) >= -CIVIL_DEPRESSION:
            return None
        midnight = datetime(evening.year, evening.month, evening.day, tzinfo=UTC)
        return _ms(midnight), _ms(midnight + _DAY)
    return (_ms(start), _ms(end)) if end > start else None


def dark_ms(lat: float, lon: float, first_ms: int, last_ms: int) -> int:
    """Milliseconds of night between two instants (UTC ms, `last_ms` excluded)."""
    return sum(min(b, last_ms) - max(a, first_ms) for a, b in nights(lat, lon, first_ms, last_ms))


def nights(lat: float, lon: float, first_ms: int, last_ms: int) -> Iterator[tuple[int, int]]:
    """The nights (dusk, dawn) that overlap [first_ms, last_ms), oldest first."""
    day = datetime.fromtimestamp(first_ms / 1000, UTC).date() - _DAY
    end = datetime.fromtimestamp(last_ms / 1000, UTC).date()
    while day <= end:
        span = night(lat, lon, day)
        if span is not None and span[1] > first_ms and span[0] < last_ms:
            yield span
        day += _DAY
