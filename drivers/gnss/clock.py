"""GNSS time as a clock source: the UTC instant of the last RMC with a fix, carried forward on the monotonic clock.

A vehicle gateway often has no NTP (no uplink in a tunnel, on a rural round) and a cheap RTC.
Its GNSS receiver tells UTC to well under a second once it has a fix; between fixes the
monotonic clock carries that time forward (a crystal's 50 ppm is 0.2 s an hour), for `holdover_s`.

Every running gnss bus registers its clock here (`active()`), so the agent's clock-trust logic
(edge_agent/timesync.py) can ask "is there a trusted time source?" without knowing the bus.
"""

from __future__ import annotations

import time

#: a fix's date before this is a receiver's cold-start guess (or a week-number rollover), never time
EARLIEST_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z


class GnssClock:
    def __init__(self, holdover_s: float = 3600.0) -> None:
        self.holdover_s = holdover_s
        self._utc_ms: int | None = None
        self._at: float = 0.0  # monotonic seconds when _utc_ms was the time
        self.fixes = 0

    def update(self, utc_ms: int, at: float | None = None) -> bool:
        """The time of an RMC with a fix, received at monotonic `at`; False if it is no plausible time."""
        if utc_ms < EARLIEST_MS:
            return False
        self._utc_ms, self._at = utc_ms, time.monotonic() if at is None else at
        self.fixes += 1
        return True

    def now_ms(self, at: float | None = None) -> int | None:
        """UTC now by the receiver's last fix, or None with no fix within holdover_s."""
        if self._utc_ms is None:
            return None
        elapsed = (time.monotonic() if at is None else at) - self._at
        if not 0 <= elapsed <= self.holdover_s:
            return None
        return self._utc_ms + int(elapsed * 1000)

    def synchronised(self, at: float | None = None) -> bool:
        return self.now_ms(at) is not None

    def offset_ms(self, at: float | None = None) -> int | None:
        """How far the system clock is ahead of GNSS time (negative: behind), or None without a trusted fix."""
        gnss = self.now_ms(at)
        return None if gnss is None else time.time_ns() // 1_000_000 - gnss


_ACTIVE: list[GnssClock] = []


def register(clock: GnssClock) -> None:
    if clock not in _ACTIVE:
        _ACTIVE.append(clock)


def unregister(clock: GnssClock) -> None:
    if clock in _ACTIVE:
        _ACTIVE.remove(clock)


def active() -> list[GnssClock]:
    """The clocks of the gnss buses running in this process."""
    return list(_ACTIVE)
