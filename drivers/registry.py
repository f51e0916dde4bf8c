"""Bus types the agent config may name, found through the `citygate.buses` entry points.

Every driver, the built-in ones included, is an entry point of that group whose name is the
`type` of a `[[bus]]` table and whose value is a `Driver`: `parse(raw, ctx)` validates the table
into the driver's typed config (pure: it may read the files the table names, such as register
maps, but opens no device; `check-config` runs it), `build(config)` makes the Bus, which opens
nothing until `run`. A third-party package adds a bus type by declaring its own entry point::

    [project.entry-points."citygate.buses"]
    my-bus = "my_package.bus:DRIVER"

Only the driver a table names is imported, so an agent with one bus type does not load the
others' libraries. See docs/adding-a-driver.md.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from drivers.base import Bus, BusContext
from drivers.entry_points import EntryPoint, entry_points
from drivers.errors import ConfigError

GROUP = "citygate.buses"


class NamedConfig(Protocol):
    """What the agent core reads of a driver's config: the bus name (loops, health, logs)."""

    @property
    def name(self) -> str: ...


C = TypeVar("C", bound=NamedConfig)


@dataclass(frozen=True, slots=True)
class Driver(Generic[C]):
    """What an entry point of the `citygate.buses` group names."""

    parse: Callable[[Mapping[str, Any], BusContext], C]
    build: Callable[[C], Bus]


@dataclass(frozen=True, slots=True)
class BusSpec:
    """One `[[bus]]` table, parsed: held by the agent config; `build()` makes the (unopened) bus."""

    type: str
    config: NamedConfig
    driver: Driver[Any]

    @property
    def name(self) -> str:
        return self.config.name

    def build(self) -> Bus:
        return self.driver.build(self.config)


@functools.cache
def bus_types() -> dict[str, list[EntryPoint]]:
    """Entry points by bus type; read once (scanning the installed distributions costs a few ms)."""
    found: dict[str, list[EntryPoint]] = {}
    for ep in entry_points(GROUP):
        found.setdefault(ep.name, []).append(ep)
    return found


def driver(kind: Any, key: str) -> Driver[Any]:
    """The Driver for a bus `type`; ConfigError at `key` if no package, or more than one, provides it."""
    known = bus_types()
    if not isinstance(kind, str) or kind not in known:
        names = ", ".join(sorted(known)) or "none (is citygate installed? pip install -e .)"
        raise ConfigError(key, f"unknown bus type {kind!r}; known: {names}")
    eps = known[kind]
    if len(eps) > 1:
        raise ConfigError(key, f"bus type {kind!r} is provided by several packages: "
                               f"{', '.join(ep.value for ep in eps)}; uninstall all but one")
    ep = eps[0]
    try:
        found = ep.load()
    except (ImportError, AttributeError) as exc:
        raise ConfigError(key, f"bus type {kind!r}: cannot load its driver {ep.value} ({exc})") from None
    if not isinstance(found, Driver):
        raise ConfigError(key, f"bus type {kind!r}: {ep.value} is not a drivers.registry.Driver")
    return found


def parse_bus(raw: Mapping[str, Any], ctx: BusContext) -> BusSpec:
    """Validate one `[[bus]]` table with its driver's parser (ConfigError with the dotted key if wrong)."""
    kind = raw.get("type")
    found = driver(kind, f"{ctx.key}.type")
    config = found.parse(raw, ctx)
    assert isinstance(kind, str)  # driver() accepted it
    return BusSpec(kind, config, found)


def make_bus(raw: Mapping[str, Any], ctx: BusContext) -> Bus:
    """Parse and build at once, for the technician's probe of a table given on the command line."""
    return parse_bus(raw, ctx).build()
