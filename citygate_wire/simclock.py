"""A simulated wall clock for the demo: shifted to a chosen instant and running N times faster.

`citygate-sim demo` sets $CITYGATE_SIMULATED_CLOCK for the agents it starts, so that their lamps
light at dusk, dim at 22:00 and switch off at dawn within minutes of watching. The variable is
`<simulated epoch ms>@<real epoch ms>x<speed>`: at the real instant given, the clock reads the
simulated one, and from there it runs `speed` times faster than real time. Every process given
the same value reads the same time.

What reads the wall clock honours it: citygate_wire.common.now_ms (samples, events) and the
agent's SystemClock (the lighting schedule, its sleeps shortened by the speed). The clock is the
demo's reference by construction, so the agent counts it as a synchronised time source
(edge_agent.timesync: source "simulated"); without the variable nothing changes, and the real
check (the kernel's NTP state, a GNSS fix) is the only one. Monotonic time (poll intervals, loop
health, retries) stays real.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

ENV = "CITYGATE_SIMULATED_CLOCK"
_FORMAT = re.compile(r"^(\d{1,15})@(\d{1,15})x(\d{1,6}(?:\.\d{1,6})?)$")


@dataclass(frozen=True, slots=True)
class SimulatedClock:
    start_ms: int  # what the clock reads at real_ms
    real_ms: int
    speed: float

    def now_ms(self) -> int:
        return self.at(time.time_ns() // 1_000_000)

    def at(self, real_ms: int) -> int:
        """The simulated time at a real instant."""
        return self.start_ms + int((real_ms - self.real_ms) * self.speed)

    def real_at(self, simulated_ms: int) -> int:
        """The real instant the clock reads `simulated_ms`."""
        return self.real_ms + int((simulated_ms - self.start_ms) / self.speed)

    def to_env(self) -> str:
        return f"{self.start_ms}@{self.real_ms}x{self.speed:g}"


def parse(value: str) -> SimulatedClock:
    """The clock a $CITYGATE_SIMULATED_CLOCK value describes; ValueError says what is wrong."""
    m = _FORMAT.match(value.strip())
    if m is None:
        raise ValueError(f"${ENV}={value!r}: expected <simulated epoch ms>@<real epoch ms>x<speed>")
    speed = float(m.group(3))
    if not 0 < speed <= 10_000:
        raise ValueError(f"${ENV}={value!r}: the speed must be above 0 and at most 10000")
    return SimulatedClock(int(m.group(1)), int(m.group(2)), speed)


def from_env(env: Mapping[str, str] = os.environ) -> SimulatedClock | None:
    value = env.get(ENV)
    return None if not value else parse(value)


#: this process's simulated clock, read once at start (None: the real clock)
ACTIVE = from_env()
