"""How a feature of the agent (lighting, traffic, analytics, control link) plugs into it.

The agent builds one AgentContext, then runs every Service's `run()` as a task beside the bus
pollers and the uploader. A service reads device state through the buses, commands devices
through their bus methods, and writes what it wants kept (events, energy samples) through
`ctx.emit`, which journals the record first. Services that want to see every record (analytics,
fault detection) subscribe with `ctx.subscribe`: they get every poll whole, even when its bus's
report policies journal only part of it or nothing (edge_agent.live_feed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from drivers.base import Bus
from drivers.model import Record
from edge_agent.clock import Clock
from edge_agent.journal import Journal
from edge_agent.uploader import Uploader

Observer = Callable[[Record], None]


def bus_of(buses: Iterable[Bus], device: str) -> Bus | None:
    """The bus that has `device` among its polled devices, if any."""
    for bus in buses:
        if any(state.device == device for state in bus.states()):
            return bus
    return None


class Overriding(Protocol):
    """An override as the lighting service returns it."""

    def to_doc(self) -> dict[str, Any]: ...


@runtime_checkable
class Lighting(Protocol):
    """The lighting service (edge_agent.lighting.service) as the control link and the local API drive it."""

    def set_override(self, group_or_lamp: str, level: int, start: datetime | None, expiry: datetime) -> Overriding: ...

    def clear_override(self, group_or_lamp: str) -> bool: ...

    def push_programs(self, doc: Mapping[str, Any]) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...

    def lamp_override(self, lamp: str) -> dict[str, Any] | None:
        """The override that governs `lamp` now, as `devices` shows it."""


@runtime_checkable
class Reporting(Protocol):
    """A service that reports its state (the MQTT control link: broker connection) in the local `status`."""

    def status(self) -> Mapping[str, Any]: ...


@dataclass
class Services:
    """The agent's parts a service may drive (the MQTT control link, the local API), typed. Filled by the Agent."""

    journal: Journal | None = None
    uploader: Uploader | None = None
    lighting: Lighting | None = None
    #: services that report a state of their own, by name
    reporting: dict[str, Reporting] = field(default_factory=dict)
    #: every feature service by name
    features: dict[str, Service] = field(default_factory=dict)


@dataclass
class AgentContext:
    gateway_id: str
    commune: str
    state_dir: Path
    clock: Clock
    buses: dict[str, Bus]
    emit: Callable[[Record], None]
    observers: list[Observer] = field(default_factory=list)
    services: Services = field(default_factory=Services)
    config_file: Path | None = None

    def bus_of(self, device: str) -> Bus | None:
        return bus_of(self.buses.values(), device)

    def subscribe(self, observer: Observer) -> None:
        """`observer` is called (in the event loop, must not block) with each record, in emit order, once
        what was journalled of it and before it is committed."""
        self.observers.append(observer)


class Service(Protocol):
    name: str

    async def run(self, ctx: AgentContext) -> None:
        """Run until cancelled; keep going through device faults and uplink loss."""
