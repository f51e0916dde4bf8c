"""Is every loop of the agent still making progress? Judged from heartbeats, read by the watchdog and `status`.

Each loop ticks `Agent.healthy[name]` (a monotonic time) when it makes progress: a bus when it
hands over a record or when its devices' state changes (a failed poll is progress too: the
poller is alive), the journal when it commits, the uploader at each turn of its loop. A loop is
stuck when its last tick is older than its limit, which is the longest quiet time its own
configuration allows, plus a margin. An unreachable collector or a dead lamp controller is not
a stuck loop: the agent must keep running its programs, so neither stops the watchdog.

A loop can also be busy and failing: the uploader retrying one batch the collector refuses for
ever. Its `problem` (a sentence for the technician) makes it unhealthy in `status` and in the
service's status line, but only silence (`stuck`) stops the watchdog: restarting the agent would
send the same batch again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from drivers.base import Bus
from edge_agent.config import AgentConfig
from edge_agent.journal import Journal

JOURNAL = "journal"
UPLOADER = "uploader"
#: How long a journal commit or a probe through the journal's writer thread may take before it is stuck.
JOURNAL_LIMIT_S = 60.0
#: Added to each loop's own longest quiet time: a loaded 2-core gateway is slow, not stuck.
MARGIN_S = 30.0


def bus_loop(name: str) -> str:
    return f"bus {name}"


def limits_for(config: AgentConfig) -> dict[str, float]:
    """Seconds each loop may stay silent before it counts as stuck."""
    up = config.uplink
    # the uploader's longest legitimate pause: one request that times out, then the longest back-off or idle wait
    uploader = up.timeout_s + max(up.backoff_max_s, up.interval_s + 0.5) + MARGIN_S
    limits = {JOURNAL: JOURNAL_LIMIT_S, UPLOADER: uploader}
    for bus in config.buses:
        limits[bus_loop(bus.name)] = config.watchdog.bus_silence_s
    return limits


@dataclass(frozen=True, slots=True)
class LoopHealth:
    name: str
    age_s: float
    limit_s: float
    #: why a loop that still ticks is failing all the same, or None
    problem: str | None = None

    @property
    def silent(self) -> bool:
        return self.age_s > self.limit_s

    @property
    def healthy(self) -> bool:
        return not self.silent and self.problem is None

    def describe(self) -> str:
        if self.silent:
            return f"{self.name} silent {self.age_s:.0f} s (limit {self.limit_s:.0f} s)"
        return f"{self.name}: {self.problem}" if self.problem else f"{self.name} ok"


def judge(beats: Mapping[str, float], limits: Mapping[str, float], now: float,
          problems: Mapping[str, str | None] | None = None) -> list[LoopHealth]:
    """One verdict per watched loop; a loop that never ticked counts from `beats` seeded at start-up."""
    problems = problems or {}
    return [LoopHealth(name, max(0.0, now - beats.get(name, now)), limit, problems.get(name))
            for name, limit in limits.items()]


def _fingerprint(bus: Bus) -> tuple[tuple[object, ...], ...]:
    # anything a poll changes, success or failure: a poller that fails every poll is still alive
    return tuple(
        (s.device, s.last_ts_ms, s.consecutive_failures, sum(s.errors.values()), s.last_error, s.state)
        for s in bus.states()
    )


class HealthMonitor:
    """Ticks what the loops cannot tick themselves: bus state changes, and a probe of the idle journal."""

    def __init__(self, beats: dict[str, float], buses: Iterable[Bus], journal: Journal, limits: Mapping[str, float]):
        self.beats = beats
        self.buses = list(buses)
        self.journal = journal
        self.limits = dict(limits)
        #: loop -> what says why it fails while it ticks (the uploader's stall)
        self.problems: dict[str, Callable[[], str | None]] = {}
        self._prints: dict[str, tuple[tuple[object, ...], ...]] = {}

    def seed(self) -> None:
        """Start every loop's clock now, so a loop gets its full limit to show its first progress."""
        now = time.monotonic()
        for name in self.limits:
            self.beats.setdefault(name, now)

    def verdicts(self) -> list[LoopHealth]:
        return judge(self.beats, self.limits, time.monotonic(), {name: say() for name, say in self.problems.items()})

    def stuck(self) -> list[LoopHealth]:
        """Silent loops: the watchdog is no longer fed."""
        return [v for v in self.verdicts() if v.silent]

    def unhealthy(self) -> list[LoopHealth]:
        """Silent loops and loops failing while they tick."""
        return [v for v in self.verdicts() if not v.healthy]

    async def check(self) -> None:
        """One round: compare bus states with the last round, and probe the journal's writer thread."""
        for bus in self.buses:
            fp = _fingerprint(bus)
            if self._prints.get(bus.name) != fp:
                self._prints[bus.name] = fp
                self.beats[bus_loop(bus.name)] = time.monotonic()
        # the journal ticks on every commit; when nothing is written, this probe proves its thread still answers
        try:
            async with asyncio.timeout(JOURNAL_LIMIT_S):
                await self.journal.stats()
        except TimeoutError:
            return
        self.beats[JOURNAL] = time.monotonic()
