"""How a feature of the agent (lighting, traffic, analytics, control link) plugs into it.

The agent builds one AgentContext, then runs every Service's `run()` as a task beside the bus
pollers and the uploader. A service reads device state through the buses, commands devices
through their bus methods, and writes what it wants kept (events, energy samples) through
`ctx.emit`, which journals the record first. Services that want to see every journalled record
(analytics, fault detection) subscribe with `ctx.subscribe`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from drivers.base import Bus
from drivers.model import Record
from edge_agent.clock import Clock

Observer = Callable[[Record], None]


@dataclass
class AgentContext:
    gateway_id: str
    commune: str
    state_dir: Path
    clock: Clock
    buses: dict[str, Bus]
    emit: Callable[[Record], None]
    observers: list[Observer] = field(default_factory=list)
    #: The agent's parts by name, for a service that drives others (the MQTT control link):
    #: each feature service under its `name`, plus "journal" and "uploader". Filled by the Agent.
    services: dict[str, object] = field(default_factory=dict)
    config_file: Path | None = None

    def subscribe(self, observer: Observer) -> None:
        """`observer` is called (in the event loop, must not block) with each record after it is journalled."""
        self.observers.append(observer)


class Service(Protocol):
    name: str

    async def run(self, ctx: AgentContext) -> None:
        """Run until cancelled; keep going through device faults and uplink loss."""
