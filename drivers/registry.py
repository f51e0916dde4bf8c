"""Bus types the agent config may name, and the factory of each.

A factory takes the bus's config table (a plain dict from TOML) and a BusContext, validates it
(raising drivers.errors.ConfigError with the dotted key and the reason) and returns a Bus.
Imports are lazy so an agent that uses one bus type does not load the others' libraries.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from drivers.base import Bus, BusContext
from drivers.errors import ConfigError

Factory = Callable[[Mapping[str, Any], BusContext], Bus]

# type name -> "module:function"
BUS_TYPES: dict[str, str] = {
    "modbus-tcp": "drivers.modbus.bus:from_config",
    "modbus-rtu": "drivers.modbus.bus:from_config",
    "ble": "drivers.ble:from_config",
    "tic": "drivers.tic.bus:from_config",
    "mbus": "drivers.mbus.bus:from_config",
    "signals": "drivers.traffic.bus:from_config",
}


def make_bus(raw: Mapping[str, Any], ctx: BusContext) -> Bus:
    kind = raw.get("type")
    if kind not in BUS_TYPES:
        raise ConfigError(f"{ctx.key}.type", f"unknown bus type {kind!r}; known: {', '.join(sorted(BUS_TYPES))}")
    module, func = BUS_TYPES[kind].split(":")
    factory: Factory = getattr(importlib.import_module(module), func)
    return factory(raw, ctx)
