"""How the lighting service commands its lamps.

Commands go bus by bus, one transaction at a time per bus (a bus carries one at a time), buses
in parallel; a lamp whose controller refuses a level is retried every `retry_s`, with one
`command_failure` event per streak.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from drivers.base import LampBus
from drivers.errors import DriverError
from drivers.model import Event, Record, Sample, Severity
from edge_agent.clock import Clock, epoch_ms
from edge_agent.lighting.faults import FaultJudge
from edge_agent.lighting.lamps import LampState


class Commander:
    """Sends levels to the lamps and journals what each controller read back."""

    def __init__(self, retry_s: float, faults: FaultJudge) -> None:
        self.retry_s = retry_s
        self.faults = faults

    async def command(self, bus: LampBus, jobs: list[tuple[LampState, int]], clock: Clock,
                      emit: Callable[[Record], None]) -> None:
        """Command one bus's lamps in turn (a bus carries one transaction at a time)."""
        for state, level in jobs:
            try:
                readback = await bus.set_level(state.name, level)
            except (DriverError, OSError, TimeoutError) as exc:
                state.retry_at = clock.now() + timedelta(seconds=self.retry_s)
                if not state.command_failing:
                    state.command_failing = True
                    emit(Event(
                        state.name, epoch_ms(clock.now()), "command_failure", Severity.MAJOR,
                        {"level_pct": level, "error": str(exc), "retry_s": self.retry_s},
                    ))
                continue
            at = epoch_ms(clock.now())
            state.retry_at = None
            state.command_failing = False
            state.commanded, state.readback, state.commanded_at_ms = level, readback, at
            emit(Sample(state.name, at, {"commanded_level_pct": level, "level_pct": readback}))
            for event in self.faults.judge_level(state, readback, at):
                emit(event)
