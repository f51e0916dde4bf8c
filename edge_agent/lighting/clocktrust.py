"""Whether the lighting may trust the gateway's clock to say day from night.

A clock before 2020 is not trusted at all (the RTC lost its time: lamps stay at 100 %); one
whose time source has been lost longer than `clock_lost_after_s` runs the safe all-night
program. Each change of mode is an event (`clock_invalid`, `clock_unsynchronised`,
`clock_restored`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from drivers.model import Event, Severity
from edge_agent.clock import epoch_ms
from edge_agent.lighting.lamps import CABINET_DEVICE

log = logging.getLogger("citygate.lighting")

EARLIEST_TRUSTED_YEAR = 2020
CLOCK_CHECK_S = 60.0


class TimeSync(Protocol):
    def is_synchronized(self) -> bool:
        """Whether a time source (NTP, GNSS, the CMS) disciplines the clock right now.

        edge_agent.timesync.KernelTimeSync counts the kernel's NTP and, on a vehicle gateway, a gnss
        bus's receiver with a fix (GnssTimeSync alone: GNSS only)."""


class ClockMode(StrEnum):
    TRUSTED = "trusted"
    UNSYNCHRONISED = "clock_unsynchronised"  # running, but no time source for too long
    INVALID = "clock_invalid"  # before 2020: the RTC lost its time


class ClockTrust:
    def __init__(self, time_sync: TimeSync | None, lost_after_s: float, safe_program: str) -> None:
        self.time_sync = time_sync
        self.lost_after_s = lost_after_s
        self.safe_program = safe_program
        self.mode = ClockMode.TRUSTED
        self.last_sync: datetime | None = None

    def check(self, now: datetime) -> Event | None:
        """Judge the clock at `now`; the event of a change of mode."""
        if now.year < EARLIEST_TRUSTED_YEAR:
            mode = ClockMode.INVALID
        elif self.time_sync is None:
            mode = ClockMode.TRUSTED
        elif self.time_sync.is_synchronized():
            self.last_sync = now
            mode = ClockMode.TRUSTED
        elif self.last_sync is not None and (now - self.last_sync).total_seconds() > self.lost_after_s:
            mode = ClockMode.UNSYNCHRONISED
        else:
            mode = self.mode if self.mode is not ClockMode.INVALID else ClockMode.TRUSTED
        if mode is self.mode:
            return None
        previous, self.mode = self.mode, mode
        if mode is ClockMode.TRUSTED:
            return Event(CABINET_DEVICE, epoch_ms(now), "clock_restored", Severity.INFO, {"previous": str(previous)})
        detail: dict[str, Any] = {
            "clock": now.isoformat(),
            "fallback": "100 % at all times" if mode is ClockMode.INVALID else self.safe_program,
        }
        if mode is ClockMode.UNSYNCHRONISED and self.last_sync is not None:
            detail["last_sync"] = self.last_sync.isoformat()
        log.warning("lighting falls back (%s): %s", mode, detail)
        severity = Severity.CRITICAL if mode is ClockMode.INVALID else Severity.MAJOR
        return Event(CABINET_DEVICE, epoch_ms(now), str(mode), severity, detail)

    def next_check(self, now: datetime) -> datetime | None:
        """When to look again: a clock that may change mode without any other wake-up is checked every minute."""
        if self.mode is ClockMode.INVALID or self.time_sync is not None:
            return now + timedelta(seconds=CLOCK_CHECK_S)
        return None
