"""One override model for the technician's local API, whether or not the gateway runs lighting.

With a `[lighting]` section the lighting service owns overrides (`LightingOverrides`): a group
or a lamp, kept across a reboot, back to the programme at expiry. Without one, `DirectLamps`
commands a lamp straight through its bus and, at the override's expiry (or when the agent
stops), puts back the level it had before. Both hold `Override`s of `edge_agent.lighting.model`,
show a lamp's override in the same form (`override_of`) and journal `override_ended` when one
expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from drivers.base import Bus, LampBus
from drivers.errors import DriverError
from drivers.model import Event, Record, Severity
from edge_agent.clock import Clock, epoch_ms
from edge_agent.lighting.model import NotALamp, Override, UnknownTarget
from edge_agent.service import Lighting, bus_of

log = logging.getLogger("citygate.lighting")

LIVE_READ_TIMEOUT_S = 30.0
DEFAULT_LIGHT_PCT = 100  # TALQ's default light state, when no earlier level is known to restore
RESTORE_ON_STOP_S = 5.0


def override_view(override: Override, **extra: Any) -> dict[str, Any]:
    """A lamp's or a group's override as `devices` and `lamp status` show it."""
    return {"target": override.target, "level_pct": override.level, "start_ms": epoch_ms(override.start),
            "until_ms": epoch_ms(override.expiry), **extra}


class LampOverrides(Protocol):
    """Overrides as the local API drives them."""

    via: str

    async def hold(self, target: str, level: int, until: datetime, by_uid: int | None) -> dict[str, Any]:
        """Hold `target` at `level` until `until`; the reply's fields. Raises LightingError or DriverError."""

    async def release(self, target: str) -> dict[str, Any] | None:
        """End `target`'s override now; None if it had none."""

    def override_of(self, lamp: str) -> dict[str, Any] | None:
        """The override that governs `lamp` now, if any."""

    async def aclose(self) -> None:
        """The agent stops."""


class LightingOverrides:
    """The lighting service's overrides (kept across a reboot, expiry journalled by the service)."""

    via = "lighting"

    def __init__(self, service: Lighting) -> None:
        self.service = service

    async def hold(self, target: str, level: int, until: datetime, by_uid: int | None) -> dict[str, Any]:
        override = self.service.set_override(target, level, None, until)
        return {"override": override.to_doc()}

    async def release(self, target: str) -> dict[str, Any] | None:
        return {} if self.service.clear_override(target) else None

    def override_of(self, lamp: str) -> dict[str, Any] | None:
        return self.service.lamp_override(lamp)

    async def aclose(self) -> None:
        """Nothing to undo: the service keeps its overrides across a restart."""


@dataclass
class DirectOverride:
    """A lamp held through its bus, and the level it goes back to."""

    override: Override
    restore_pct: int
    by_uid: int | None
    task: asyncio.Task[None] | None = None

    @property
    def device(self) -> str:
        return self.override.target

    def to_doc(self) -> dict[str, Any]:
        return {"device": self.device, **override_view(self.override, via="direct"), "restore_pct": self.restore_pct,
                "by_uid": self.by_uid}


class DirectLamps:
    """Overrides commanded straight through the lamp bus (no lighting service on this gateway)."""

    via = "direct"

    def __init__(self, buses: Iterable[Bus], clock: Clock, emit: Callable[[Record], None]) -> None:
        self.buses = list(buses)
        self.clock = clock
        self.emit = emit
        self.overrides: dict[str, DirectOverride] = {}

    def _lamp_bus(self, device: str) -> LampBus:
        bus = bus_of(self.buses, device)
        if bus is None:
            raise UnknownTarget("lamp", device, "unknown_target", "no bus of this gateway has this device")
        if not isinstance(bus, LampBus) or device not in bus.lamps():
            raise NotALamp("lamp", device, "not_a_lamp", f"{device} on {bus.name} is not a lamp controller")
        return bus

    async def hold(self, target: str, level: int, until: datetime, by_uid: int | None) -> dict[str, Any]:
        bus = self._lamp_bus(target)
        previous = self.overrides.get(target)
        if previous is not None:
            # a new override replaces the previous one, and the level to restore is still the one before both
            restore = previous.restore_pct
            if previous.task is not None:
                previous.task.cancel()
        else:
            restore = await self._level_now(bus, target)
        feedback = await bus.set_level(target, level)
        now = self.clock.now()
        current = DirectOverride(Override.make(target, level, now, until, now), restore, by_uid)
        current.task = asyncio.get_running_loop().create_task(self._expire(current))
        self.overrides[target] = current
        return {**current.to_doc(), "feedback_level_pct": feedback}

    async def release(self, target: str) -> dict[str, Any] | None:
        current = self.overrides.get(target)
        if current is None:
            return None
        if current.task is not None:
            current.task.cancel()
        return {"level_pct": await self._restore(current)}

    def override_of(self, lamp: str) -> dict[str, Any] | None:
        current = self.overrides.get(lamp)
        return current.to_doc() if current is not None else None

    async def _level_now(self, bus: LampBus, device: str) -> int:
        for s in bus.states():
            if s.device == device and isinstance(s.last_values.get("level_pct"), int):
                return int(s.last_values["level_pct"])  # type: ignore[arg-type]
        with contextlib.suppress(DriverError, TimeoutError):
            async with asyncio.timeout(LIVE_READ_TIMEOUT_S):
                sample = await bus.read(device)
            level = sample.values.get("level_pct")
            if isinstance(level, int | float) and not isinstance(level, bool):
                return round(level)
        return DEFAULT_LIGHT_PCT

    async def _expire(self, override: DirectOverride) -> None:
        await self.clock.sleep_until(override.override.expiry)
        try:
            await self._restore(override)
        except DriverError as exc:
            log.error("override of %s expired but restoring %d %% failed: %s", override.device,
                      override.restore_pct, exc)
            self.emit(Event(override.device, epoch_ms(self.clock.now()), "override_restore_failed", Severity.MAJOR,
                            {"restore_level_pct": override.restore_pct, "reason": str(exc)}))

    async def _restore(self, override: DirectOverride) -> int:
        if self.overrides.get(override.device) is override:
            del self.overrides[override.device]
        bus = bus_of(self.buses, override.device)
        if not isinstance(bus, LampBus):
            raise DriverError(f"{override.device} is no longer on a lamp bus")
        level = await bus.set_level(override.device, override.restore_pct)
        log.info("override_ended %s: back to %d %%", override.device, level)
        self.emit(Event(override.device, epoch_ms(self.clock.now()), "override_ended", Severity.INFO,
                        {"restored_level_pct": level, "via": self.via, "source": "local_api"}))
        return level

    async def aclose(self) -> None:
        """Lamps under a direct override go back to their level, or they would stay at a test level."""
        for override in list(self.overrides.values()):
            if override.task is not None:
                override.task.cancel()
            try:
                async with asyncio.timeout(RESTORE_ON_STOP_S):
                    await self._restore(override)
            except (DriverError, TimeoutError) as exc:
                log.error("could not restore %s to %d %% on shutdown: %s", override.device, override.restore_pct, exc)
