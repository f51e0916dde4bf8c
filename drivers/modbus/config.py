"""A Modbus bus's `[[bus]]` table, validated once into typed objects. Keys are listed in README.md.

Every error is a ConfigError whose key is the dotted path in the agent config
("bus[0].device[3].unit"); unknown keys are refused (drivers.conf.ConfigTable) so a typo never
silently means "default".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.base import BusContext
from drivers.conf import ConfigTable
from drivers.errors import ConfigError
from drivers.modbus.regmap import LEVEL_CMD, RegisterMap, load_register_map
from drivers.reporting import Policy, parse_policy
from drivers.serial_line import LineSettings, parse_line

BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


@dataclass(frozen=True, slots=True)
class TcpEndpoint:
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    id: str
    unit: int
    register_map: RegisterMap
    rated_power_w: float | None = None
    address_offset: int = 0  # added to every map address: a ballast's block on a DALI gateway
    #: the report policy of each quantity: the map's, or the device's `report` table over it
    report: Mapping[str, Policy] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BusConfig:
    name: str
    transport: TcpEndpoint | LineSettings
    devices: tuple[DeviceConfig, ...]
    interval_s: float = 1.0
    timeout_s: float = 0.5
    retries: int = 1
    failure_threshold: int = 3
    backoff_max_s: float = 60.0


def parse_bus_config(raw: Mapping[str, Any], ctx: BusContext) -> BusConfig:
    t = ConfigTable(raw, ctx.key)
    kind = t.text("type", required=True)
    if kind not in ("modbus-tcp", "modbus-rtu"):
        raise ConfigError(f"{ctx.key}.type", f"{kind!r} is not modbus-tcp or modbus-rtu")
    name = _name(t, "name")
    transport: TcpEndpoint | LineSettings
    if kind == "modbus-tcp":
        transport = TcpEndpoint(_name(t, "host"), t.integer("port", 502, lo=1, hi=65535))
    else:
        transport = parse_line(t, baudrate=9600, bytesize=8, rates=BAUDRATES)
    interval_s = t.number("interval_s", 1.0, lo=0.05, hi=86_400)
    backoff_max_s = t.number("backoff_max_s", 60.0, lo=0.05, hi=86_400)
    if backoff_max_s < interval_s:
        raise ConfigError(f"{ctx.key}.backoff_max_s", f"{backoff_max_s} s is shorter than interval_s ({interval_s} s)")
    cfg = BusConfig(
        name=name,
        transport=transport,
        devices=_devices(t, ctx),
        interval_s=interval_s,
        timeout_s=t.number("timeout_s", 0.5, lo=0.01, hi=60),
        retries=t.integer("retries", 1, lo=0, hi=10),
        failure_threshold=t.integer("failure_threshold", 3, lo=1, hi=1000),
        backoff_max_s=backoff_max_s,
    )
    t.done()
    return cfg


def _devices(bus: ConfigTable, ctx: BusContext) -> tuple[DeviceConfig, ...]:
    raw = bus.raw.get("device")
    bus.used.add("device")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{ctx.key}.device", "a bus needs at least one [[bus.device]] table")
    maps: dict[Path, RegisterMap] = {}
    map_policies: dict[Path, dict[str, Policy]] = {}
    ids: dict[str, int] = {}
    slots: dict[tuple[int, int], int] = {}
    devices = []
    for i, table in enumerate(raw):
        key = f"{ctx.key}.device[{i}]"
        t = ConfigTable(table, key)
        dev_id = _name(t, "id")
        if dev_id in ids:
            raise ConfigError(f"{key}.id", f"{dev_id!r} is already device[{ids[dev_id]}]")
        ids[dev_id] = i
        if "unit" not in table:
            raise ConfigError(f"{key}.unit", "missing")
        unit = t.integer("unit", 0, lo=1, hi=247)
        offset = t.integer("address_offset", 0, lo=0, hi=65535)
        if (unit, offset) in slots:
            raise ConfigError(f"{key}.unit", f"unit {unit} (address_offset {offset}) is already device[{slots[(unit, offset)]}]")
        slots[(unit, offset)] = i
        path = Path(_name(t, "register_map"))
        path = path if path.is_absolute() else ctx.config_dir / path
        if path not in maps:
            maps[path] = load_register_map(path)
            map_policies[path] = {reg.name: reg.report for reg in maps[path].registers}
        regmap = maps[path]
        if regmap.get(LEVEL_CMD) is None:
            raise ConfigError(f"{key}.register_map", f"{path} has no {LEVEL_CMD} register: not a lamp controller map")
        top = max(r.address + r.words - 1 for r in regmap.registers)
        if top + offset > 0xFFFF:
            raise ConfigError(f"{key}.address_offset", f"{offset} moves register {top} past the last address 65535")
        rated = t.number("rated_power_w", 0.0, lo=0.0, hi=1e6) if "rated_power_w" in table else None
        if rated is not None and rated <= 0:
            raise ConfigError(f"{key}.rated_power_w", "must be a positive number of watts")
        report = _report(t, regmap, path, map_policies[path])
        t.done()
        devices.append(DeviceConfig(dev_id, unit, regmap, rated, offset, report))
    return tuple(devices)


def _report(t: ConfigTable, regmap: RegisterMap, path: Path, of_map: dict[str, Policy]) -> Mapping[str, Policy]:
    """The map's report policies (`of_map`, shared by its devices), with the device's
    `[bus.device.report]` table laid over them (quantity = strategy name or table, as in a map)."""
    t.used.add("report")
    if "report" not in t.raw:
        return of_map
    policies = dict(of_map)
    raw = t.raw["report"]
    if isinstance(raw, str):  # one strategy for all its quantities: "every" while a technician watches it
        return {reg.name: parse_policy(raw, f"{t.key}.report", reg.report, numeric=reg.bit is None)
                for reg in regmap.registers}
    if not isinstance(raw, dict):
        raise ConfigError(f"{t.key}.report", "expected a strategy name or a table of quantity = strategy name or table")
    for name, given in raw.items():
        reg = regmap.get(name)
        if reg is None:
            raise ConfigError(f"{t.key}.report.{name}", f"{path} has no register named {name!r}")
        policies[name] = parse_policy(given, f"{t.key}.report.{name}", reg.report, numeric=reg.bit is None)
    return policies


def _name(t: ConfigTable, name: str) -> str:
    value: str = t.text(name, required=True)
    if not value.strip():
        raise ConfigError(f"{t.key}.{name}", "must not be empty")
    return value
