"""Where each device of the cabinet stands, for the control centre's map: the `[positions]` section.

    [positions]                  # WGS 84 decimal degrees, one entry a device (lamps mostly)
    "lamp-01" = { latitude = 47.32210, longitude = 5.04120 }
    "lamp-02" = { latitude = 47.32230, longitude = 5.04160 }

The collector learns a position through the upload, as a `device_position` event (info, detail
`{"lat", "lon"}`): no new wire format, exactly once like every journalled record. The agent
journals it when a device's position is new or moved since the last one it journalled
(`positions.json` in the state dir, written once the event is committed): a restart journals
nothing, a moved lamp one event. A device without a position stands at its cabinet on the map.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from drivers.errors import ConfigError
from drivers.model import Event, Record, Severity

if TYPE_CHECKING:  # the config's parser loads this module: `check-config` and the CLI need no asyncio
    from edge_agent.service import AgentContext

log = logging.getLogger("citygate.positions")

EVENT = "device_position"
FILE = "positions.json"
MAX_DEVICE_LEN = 128


@dataclass(frozen=True)
class PositionsConfig:
    devices: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # device -> (lat, lon)


def _degrees(raw: Mapping[str, Any], key: str, name: str, bound: float) -> float:
    value = raw.get(name)
    if value is None:
        raise ConfigError(f"{key}.{name}", "missing")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}.{name}", f"expected a number of degrees, got {value!r}")
    if not -bound <= value <= bound:
        raise ConfigError(f"{key}.{name}", f"{value} is outside ±{bound} degrees")
    return float(value)


def parse_section(raw: Mapping[str, Any], key: str, base: Path) -> PositionsConfig:
    """The `[positions]` section (agent config SECTIONS parser signature)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(key, "expected a table of devices")
    devices: dict[str, tuple[float, float]] = {}
    for device, entry in raw.items():
        where = f"{key}.{device}"
        if not device or len(device) > MAX_DEVICE_LEN:
            raise ConfigError(where, f"a device id of 1-{MAX_DEVICE_LEN} characters")
        if not isinstance(entry, Mapping):
            raise ConfigError(where, "expected { latitude = ..., longitude = ... }")
        unknown = sorted(set(entry) - {"latitude", "longitude"})
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}", "unknown key; known: latitude, longitude")
        devices[device] = (_degrees(entry, where, "latitude", 90), _degrees(entry, where, "longitude", 180))
    return PositionsConfig(devices)


@dataclass
class PositionsService:
    config: PositionsConfig
    name: str = "positions"
    _path: Path | None = None
    _journalled: dict[str, list[float]] = field(default_factory=dict)

    def _load(self, path: Path) -> dict[str, list[float]]:
        try:
            doc = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError) as exc:
            log.warning("%s unreadable (%s): every position is journalled again", path, exc)
            return {}
        return doc if isinstance(doc, dict) else {}

    def _save(self) -> None:
        assert self._path is not None
        tmp = self._path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            f.write(orjson.dumps(self._journalled))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)

    def _observe(self, record: Record) -> None:
        # committed: the collector will have it, so it need not be journalled again after a restart
        if isinstance(record, Event) and record.code == EVENT and record.device in self.config.devices:
            self._journalled[record.device] = [record.detail["lat"], record.detail["lon"]]
            try:
                self._save()
            except OSError as exc:
                log.warning("cannot save %s (%s): positions are journalled again at the next start", self._path, exc)

    async def run(self, ctx: AgentContext) -> None:
        import asyncio

        from edge_agent.clock import epoch_ms

        self._path = ctx.state_dir / FILE
        self._journalled = self._load(self._path)
        ctx.subscribe(self._observe)
        now = epoch_ms(ctx.clock.now())
        for device, (lat, lon) in sorted(self.config.devices.items()):
            if ctx.bus_of(device) is None:
                log.warning("positions.%s: no bus of this gateway has this device", device)
            if self._journalled.get(device) != [lat, lon]:
                ctx.emit(Event(device, now, EVENT, Severity.INFO, {"lat": lat, "lon": lon}))
        await asyncio.get_running_loop().create_future()  # nothing more to do until the agent stops


def service(cfg: PositionsConfig) -> PositionsService:
    """Factory for the agent's SERVICES table."""
    return PositionsService(cfg)
