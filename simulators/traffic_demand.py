"""Traffic demand at a simulated junction: how many vehicles cross each lane in an interval.

The flow of a lane is its approach's peak flow times a day profile in local time: on a weekday
a morning and an evening peak (08:00 and 17:30) over a day-time plateau, on Saturday a late
morning and a late afternoon peak (11:30 and 17:00), on Sunday two low humps (11:00 and
18:00), and little at night. Each approach leans to one peak: inbound roads carry more in the
morning, outbound ones in the evening (even-numbered approaches in the file's order lean to the
morning, odd ones to the evening). Counts are Poisson draws from a generator seeded with
(seed, lane, interval index): the same interval always gives the same vehicles, whichever
process asks and however often, so a restarted controller agrees with itself.

Per vehicle: a length class (8 % heavy), a speed around 85 % of the approach's limit, slower
as the lane fills; the interval's occupancy is the time vehicles spend over a 2 m loop. The
model keeps every interval it produced (`truth`): what a test compares what the collector
publishes with.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

LOOP_M = 2.0
LIGHT_M, HEAVY_M = 4.5, 12.0
HEAVY_SHARE = 0.08
#: (hour, height, width h) of the profile's humps, by day type; the plateau is added on top
PEAKS: Mapping[str, tuple[tuple[float, float, float], ...]] = {
    "weekday": ((8.0, 1.0, 0.9), (17.5, 1.0, 1.1)),
    "saturday": ((11.5, 0.7, 1.6), (17.0, 0.65, 1.5)),
    "sunday": ((11.0, 0.35, 1.8), (18.0, 0.4, 1.8)),
}
PLATEAU = {"weekday": 0.45, "saturday": 0.35, "sunday": 0.2}
NIGHT = 0.04
DEFAULT_PEAK_VEH_H = 600  # a lane's flow at the height of its peak
DEFAULT_SPEED_KMH = 50


@dataclass(frozen=True, slots=True)
class Lane:
    approach: str
    lane: int
    peak_veh_h: float = DEFAULT_PEAK_VEH_H
    speed_limit_kmh: int = DEFAULT_SPEED_KMH
    morning: bool = True  # leans to the morning peak (inbound)


@dataclass(frozen=True, slots=True)
class LaneInterval:
    """What really crossed one lane in one interval: the ground truth."""

    count: int
    light: int
    heavy: int
    occupancy_permille: int
    speed_dkmh: int | None  # mean speed, 0.1 km/h; None when no vehicle crossed


def day_type(local: datetime) -> str:
    return "sunday" if local.weekday() == 6 else "saturday" if local.weekday() == 5 else "weekday"


def profile(local: datetime, morning: bool = True) -> float:
    """Share of the peak flow at this local time (0..~1.2)."""
    kind = day_type(local)
    h = local.hour + local.minute / 60 + local.second / 3600
    day = 1 / (1 + math.exp(-(h - 6.5) * 2)) * 1 / (1 + math.exp((h - 21.5) * 1.5))
    value = NIGHT + PLATEAU[kind] * day
    for k, (at, height, width) in enumerate(PEAKS[kind]):
        lean = 1.0 if kind != "weekday" else (1.0 if (k == 0) == morning else 0.6)
        value += height * lean * math.exp(-0.5 * ((h - at) / width) ** 2)
    return value


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 50:  # normal approximation: exact enough, and no loop of thousands of draws
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class DemandModel:
    """Vehicles per lane and interval, deterministic for a seed; keeps the truth of what it produced."""

    def __init__(self, lanes: Sequence[Lane], *, tz: ZoneInfo, seed: int = 1) -> None:
        self.lanes = tuple(lanes)
        self.tz = tz
        self.seed = seed
        #: (approach, lane, interval index) -> what crossed: every interval produced
        self.truth: dict[tuple[str, int, int], LaneInterval] = {}

    def interval(self, lane: Lane, index: int, length_s: int) -> LaneInterval:
        key = (lane.approach, lane.lane, index)
        known = self.truth.get(key)
        if known is not None:
            return known
        start = index * length_s
        middle = datetime.fromtimestamp(start + length_s / 2, UTC).astimezone(self.tz)
        share = profile(middle, lane.morning)
        rng = random.Random(f"{self.seed}:{lane.approach}:{lane.lane}:{index}:{length_s}")
        count = _poisson(rng, lane.peak_veh_h * share * length_s / 3600)
        heavy = sum(rng.random() < HEAVY_SHARE for _ in range(count))
        # slower as the lane fills: 85 % of the limit when empty, 55 % at the peak
        mean_speed = lane.speed_limit_kmh * (0.85 - 0.3 * min(share, 1.0))
        occupied = 0.0
        speeds = 0.0
        for k in range(count):
            v = max(5.0, rng.gauss(mean_speed, mean_speed * 0.12))
            occupied += ((HEAVY_M if k < heavy else LIGHT_M) + LOOP_M) / (v / 3.6)
            speeds += v
        result = LaneInterval(
            count=count,
            light=count - heavy,
            heavy=heavy,
            occupancy_permille=min(1000, round(1000 * occupied / length_s)),
            speed_dkmh=round(10 * speeds / count) if count else None,
        )
        self.truth[key] = result
        return result
