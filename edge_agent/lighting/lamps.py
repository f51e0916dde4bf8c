"""What the lighting service knows of each lamp, and which bus carries it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from drivers.base import Bus, LampBus
from edge_agent.lighting.config import GroupConfig

CABINET_DEVICE = "cabinet"


@dataclass
class LampState:
    """What the service knows of one lamp: commanded vs actual, faults, and its energy account."""

    name: str
    group: GroupConfig
    rated_power_w: float
    bus: LampBus | None = None
    target: int | None = None  # what the program (or override) wants now
    commanded: int | None = None  # last level the controller accepted
    commanded_at_ms: int = 0
    readback: int | None = None
    actual: int | None = None  # level_pct of the last poll
    power_w: float | None = None
    lit: bool | None = None
    faults: set[str] = field(default_factory=set)
    command_failing: bool = False
    retry_at: datetime | None = None
    last_ts_ms: int | None = None
    last_energy_wh: float | None = None
    last_energy_ts_ms: int | None = None
    burn_s: float = 0.0  # since the lamp's last report
    energy_wh: float = 0.0
    readings: int = 0  # since the lamp's last report: a lamp that said nothing gets no report, not a false zero
    burn_total_s: float = 0.0
    energy_total_wh: float = 0.0


def bind_lamps(lamps: Iterable[LampState], buses: Iterable[Bus]) -> list[LampState]:
    """Give each lamp its bus (and the bus's own rated power for it); the lamps that are on none."""
    on_bus: dict[str, LampBus] = {}
    for bus in buses:
        if isinstance(bus, LampBus):
            for lamp in bus.lamps():
                on_bus[lamp] = bus
    unbound = []
    for state in lamps:
        state.bus = on_bus.get(state.name)
        # the bus's own figure for this lamp, when it has one, beats the group's
        rated = getattr(state.bus, "rated_power_w", None)
        own = rated(state.name) if callable(rated) else None
        if isinstance(own, int | float) and own > 0:
            state.rated_power_w = float(own)
        if state.bus is None:
            unbound.append(state)
    return unbound
