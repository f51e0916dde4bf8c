"""Each junction's signal controller as the collector knows it: which gateway and bus drive it, and
its mode and plan at its latest sample.

A junction is known from its counts (collector.traffic: `traffic_junctions`); its detectors are
devices `<bus>.<detector>` of the signals bus that drives its controller, and that bus's own
samples (drivers.traffic.bus) carry the controller's `mode`, `plan`, `position_target` ... A
junction none of whose buses has sent such a sample yet is listed without a controller: no
command can be addressed to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from citygate_wire.mqtt import POSITIONS
from collector.store import Store

#: what an operator may ask of a junction: the controller's positions, never a colour or a stage
MODES = POSITIONS
HOUR_MS = 3_600_000
QUARTER_MS = 15 * 60_000
#: the values of a controller's sample shown with its junction
SHOWN = ("mode", "plan", "stage", "central", "plan_target", "position_target", "alarms")


@dataclass(frozen=True, slots=True)
class Junction:
    junction: str
    gateway: str
    controller: str | None  # the signals bus (device) driving it; None: none heard of yet
    ts_ms: int | None = None  # its latest sample
    state: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"junction": self.junction, "gateway": self.gateway, "controller": self.controller,
                "ts_ms": self.ts_ms, **{k: self.state.get(k) for k in SHOWN}}


async def junction_controllers(store: Store) -> list[Junction]:
    """Every junction that sent counts, with its controller's latest state, by junction name."""
    out = []
    for junction, gateway, newest in await store.traffic_junctions():
        quarters = await store.traffic_quarters(junction, newest - HOUR_MS, newest + QUARTER_MS)
        buses = sorted({q.detector.split(".", 1)[0] for q in quarters if "." in q.detector})
        latest = await store.latest_values(gateway, buses) if buses else {}
        controllers = [(bus, latest[bus]) for bus in buses if bus in latest and "mode" in latest[bus][1]]
        if not controllers:
            out.append(Junction(junction, gateway, None))
            continue
        bus, (ts, values) = controllers[0]
        out.append(Junction(junction, gateway, bus, ts, dict(values)))
    return out
