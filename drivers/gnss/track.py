"""From sentences to judged fixes, and from fixes to the few positions worth an uplink (pure, no I/O).

`Epochs` joins the sentences of one receiver epoch into a `Fix`: RMC closes the epoch (it has
the date, the speed and the course); the GGA and GSA of the same second, sent before it, give the
quality, the satellites and the HDOP; a VTG between the GGA and the RMC fills in a speed or course
RMC left empty. A receiver that sends no RMC gives no fix (every receiver we know sends it).

`Judge` marks each fix: no fix (RMC V, GGA quality 0, GSA fix type 1), low quality (HDOP above
`max_hdop` or fewer than `min_satellites`), or an outlier: a jump from the last accepted
position that would need more than `max_speed_kmh`. An outlier is refused (never a position, never
distance); after `reanchor_after` outliers in a row that agree with each other, the receiver is
believed and the track starts again from there (a bad anchor must not refuse a whole day).

`Thinning` decides which accepted fixes become position samples: the first, then one whenever
the heading turns by more than `heading_deg` (while moving), the speed changes by more than
`speed_kmh`, the fix's quality changes (ok / low quality), `max_interval_s` has passed or
`max_distance_m` has been driven.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass

from drivers.gnss.nmea import GGA, GSA, KNOT_KMH, RMC, VTG, Sentence

EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def heading_change(a: float, b: float) -> float:
    """The smaller angle between two headings, 0..180 degrees."""
    d = abs(a - b) % 360
    return 360 - d if d > 180 else d


@dataclass(frozen=True, slots=True)
class Fix:
    """One receiver epoch. `ts_ms` is its UTC instant from RMC's date and time (None without them)."""

    ts_ms: int | None
    valid: bool  # the receiver claims a fix
    lat: float | None
    lon: float | None
    speed_kmh: float | None
    course_deg: float | None
    quality: int | None  # GGA quality, when a GGA of the same epoch came
    satellites: int | None
    hdop: float | None
    altitude_m: float | None
    fix_type: int | None  # GSA: 1 none, 2 2D, 3 3D

    @property
    def has_position(self) -> bool:
        return self.valid and self.lat is not None and self.lon is not None


def utc_ms(date: _dt.date, time_ms: int) -> int:
    midnight = _dt.datetime(date.year, date.month, date.day, tzinfo=_dt.UTC)
    return int(midnight.timestamp()) * 1000 + time_ms


class Epochs:
    """Sentences in, a Fix at each RMC out."""

    def __init__(self) -> None:
        self._gga: GGA | None = None
        self._gsa: GSA | None = None
        self._vtg: VTG | None = None

    def feed(self, s: Sentence) -> Fix | None:
        if isinstance(s, GGA):
            self._gga = s
            self._vtg = None  # a GGA opens the epoch: a VTG sent after the last RMC belonged to that one
        elif isinstance(s, GSA):
            self._gsa = s
        elif isinstance(s, VTG):
            self._vtg = s
        else:
            return self._close(s)
        return None

    def _close(self, rmc: RMC) -> Fix:
        gga = self._gga if self._gga is not None and self._gga.time_ms == rmc.time_ms else None
        gsa, vtg = self._gsa, self._vtg
        self._gga = self._gsa = self._vtg = None
        speed = rmc.speed_kn * KNOT_KMH if rmc.speed_kn is not None else None
        course = rmc.course_deg
        if vtg is not None:
            if speed is None:
                speed = vtg.speed_kmh if vtg.speed_kmh is not None else (
                    vtg.speed_kn * KNOT_KMH if vtg.speed_kn is not None else None)
            if course is None:
                course = vtg.course_deg
        valid = rmc.valid and (gga is None or gga.quality > 0) and (gsa is None or gsa.fix_type > 1)
        ts = utc_ms(rmc.date, rmc.time_ms) if rmc.date is not None and rmc.time_ms is not None else None
        return Fix(ts, valid, rmc.lat, rmc.lon, speed, course,
                   gga.quality if gga else None, gga.satellites if gga else None,
                   gga.hdop if gga and gga.hdop is not None else (gsa.hdop if gsa else None),
                   gga.altitude_m if gga else None, gsa.fix_type if gsa else None)


@dataclass(frozen=True, slots=True)
class Judged:
    fix: Fix
    status: str  # "ok", "low_quality", "no_fix", "outlier"
    step_m: float = 0.0  # distance from the previous accepted fix
    implied_kmh: float | None = None  # for an outlier: the speed its jump would need

    @property
    def accepted(self) -> bool:
        return self.status in ("ok", "low_quality")


class Judge:
    def __init__(self, *, max_hdop: float, min_satellites: int, max_speed_kmh: float, reanchor_after: int = 5) -> None:
        self.max_hdop = max_hdop
        self.min_satellites = min_satellites
        self.max_speed_kmh = max_speed_kmh
        self.reanchor_after = reanchor_after
        self.last: Fix | None = None
        self._outliers: list[Fix] = []

    def judge(self, fix: Fix) -> Judged:
        if not fix.has_position or fix.ts_ms is None:
            return Judged(fix, "no_fix")
        assert fix.lat is not None and fix.lon is not None
        low = (fix.hdop is not None and fix.hdop > self.max_hdop) or (
            fix.satellites is not None and fix.satellites < self.min_satellites)
        status = "low_quality" if low else "ok"
        last = self.last
        if last is None:
            self.last = fix
            return Judged(fix, status)
        assert last.lat is not None and last.lon is not None and last.ts_ms is not None
        step = distance_m(last.lat, last.lon, fix.lat, fix.lon)
        dt_s = max((fix.ts_ms - last.ts_ms) / 1000, 1.0)  # a repeated second: as if one second passed
        implied = step / dt_s * 3.6
        if implied > self.max_speed_kmh and not self._reanchor(fix):
            return Judged(fix, "outlier", step, implied)
        self._outliers.clear()
        self.last = fix
        return Judged(fix, status, step)

    def _reanchor(self, fix: Fix) -> bool:
        """Whether this outlier completes a run of outliers that agree with each other (then it is the new anchor)."""
        run = self._outliers
        if run:
            prev = run[-1]
            assert prev.lat is not None and prev.lon is not None and prev.ts_ms is not None
            assert fix.lat is not None and fix.lon is not None and fix.ts_ms is not None
            dt_s = max((fix.ts_ms - prev.ts_ms) / 1000, 1.0)
            if distance_m(prev.lat, prev.lon, fix.lat, fix.lon) / dt_s * 3.6 > self.max_speed_kmh:
                run.clear()
        run.append(fix)
        return len(run) >= self.reanchor_after


class Thinning:
    def __init__(self, *, heading_deg: float, speed_kmh: float, max_interval_s: float, max_distance_m: float,
                 moving_kmh: float = 5.0) -> None:
        self.heading_deg = heading_deg
        self.speed_kmh = speed_kmh
        self.max_interval_s = max_interval_s
        self.max_distance_m = max_distance_m
        self.moving_kmh = moving_kmh
        self._last: Fix | None = None
        self._last_status = ""
        self._driven_m = 0.0

    def keep(self, j: Judged, force: bool = False) -> bool:
        """Whether this accepted fix is sent as a position (`force`: a trip starts or ends here)."""
        fix, last = j.fix, self._last
        self._driven_m += j.step_m
        keep = force or last is None or j.status != self._last_status or self._changed(fix, last)
        if keep:
            self._last, self._last_status, self._driven_m = fix, j.status, 0.0
        return keep

    def _changed(self, fix: Fix, last: Fix) -> bool:
        assert fix.ts_ms is not None and last.ts_ms is not None
        if fix.ts_ms - last.ts_ms >= self.max_interval_s * 1000 or self._driven_m >= self.max_distance_m:
            return True
        speed, was = fix.speed_kmh or 0.0, last.speed_kmh or 0.0
        if abs(speed - was) > self.speed_kmh:
            return True
        return (speed >= self.moving_kmh and fix.course_deg is not None and last.course_deg is not None
                and heading_change(fix.course_deg, last.course_deg) > self.heading_deg)
