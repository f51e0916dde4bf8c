"""Whether the gateway's clock can judge a camera's: the `time_source` of the bus, an entry point.

A camera's clock drift is measured against the gateway's clock, which is only worth it while a
time source (NTP, GNSS ...) keeps that clock right. The agent knows it (edge_agent.timesync, the
adjtimex read the lighting's clock trust uses too); the driver layer may not import the agent, so
the source comes in through the `citygate.time_sources` entry points, as BLE backends do through
theirs: citygate declares `kernel = "edge_agent.timesync:KernelTimeSync"`. `none`: the clock is
trusted from 2020 on, as the lighting's `time_source = "none"`.
"""

from __future__ import annotations

from typing import Protocol, cast

from drivers.entry_points import entry_points
from drivers.errors import ConfigError

GROUP = "citygate.time_sources"
NONE = "none"


class TimeSync(Protocol):
    def is_synchronized(self) -> bool:
        """Whether a time source disciplines the gateway's clock right now."""


def check(name: str, key: str) -> str:
    """`name` if it is `none` or an installed time source; else a ConfigError listing them."""
    known = sorted({ep.name for ep in entry_points(GROUP)})
    if name != NONE and name not in known:
        raise ConfigError(key, f"{name!r}: expected {' or '.join(repr(n) for n in [*known, NONE])}")
    return name


def load(name: str) -> TimeSync | None:
    """The time source `name` names (None for `none`); loaded when the bus runs, never when it is parsed."""
    if name == NONE:
        return None
    found = [ep for ep in entry_points(GROUP) if ep.name == name]
    if not found:
        raise ConfigError("time_source", f"{name!r} is no longer installed")
    ep = found[0]
    factory = cast(type[TimeSync], ep.load())
    return factory()
