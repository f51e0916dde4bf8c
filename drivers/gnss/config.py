"""The `gnss` bus's config: one `[[bus]]` table, validated once into a frozen GnssConfig (see README.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drivers.base import BusContext
from drivers.conf import ConfigTable
from drivers.errors import ConfigError
from drivers.serial_line import LineSettings, parse_line

CYCLE_KINDS = ("bin_lift", "compactor")


@dataclass(frozen=True, slots=True)
class IoConfig:
    """A Modbus TCP I/O module's digital inputs: input n is discrete input `address` + n (FC2), or, for a
    module that only offers a status word, bit n of the register at `address` (FC3 or FC4)."""

    host: str
    port: int
    unit: int
    inputs: str  # "discrete" or "status_word"
    function: int  # 2 discrete inputs; 3 holding or 4 input register for the status word
    address: int  # the first discrete input, or the status word's register
    poll_s: float
    timeout_s: float
    ignition_bit: int | None
    cycle_bit: int | None
    cycle_kind: str

    @property
    def count(self) -> int:
        """How many discrete inputs a poll reads: up to the highest one used."""
        return max(b for b in (self.ignition_bit, self.cycle_bit) if b is not None) + 1


@dataclass(frozen=True, slots=True)
class GnssConfig:
    name: str
    line: LineSettings
    device: str
    silent_after_s: float
    debounce_epochs: int
    max_hdop: float
    min_satellites: int
    max_speed_kmh: float
    thin_heading_deg: float
    thin_speed_kmh: float
    thin_interval_s: float
    thin_distance_m: float
    trip_start_kmh: float
    trip_start_after_s: float
    trip_stop_after_s: float
    idle_kmh: float
    clock_holdover_s: float
    clock_offset_alarm_s: float
    io: IoConfig | None

    @property
    def port(self) -> str:
        return self.line.port


INPUT_KINDS = ("discrete", "status_word")
MAX_INPUT = {"discrete": 127, "status_word": 15}  # a status word has 16 bits
ONLY_FOR = {"address": "discrete", "function": "status_word", "register": "status_word"}


def _bit(t: ConfigTable, name: str, hi: int) -> int | None:
    value = t.integer(name, -1, lo=-1, hi=hi)
    return None if value < 0 else value


def _io(raw: Any, key: str) -> IoConfig | None:
    if raw is None:
        return None
    t = ConfigTable(raw, key)
    inputs = t.text("inputs", "discrete")
    if inputs not in INPUT_KINDS:
        raise ConfigError(f"{key}.inputs", f"expected one of {', '.join(INPUT_KINDS)}, got {inputs!r}")
    for name, kind in ONLY_FOR.items():
        if name in t.raw and kind != inputs:
            raise ConfigError(f"{key}.{name}", f'only with inputs = "{kind}" (this module\'s inputs are {inputs!r})')
    if inputs == "status_word":
        function, address = t.integer("function", 4, lo=3, hi=4), t.integer("register", 0, lo=0, hi=65535)
    else:
        function, address = 2, t.integer("address", 0, lo=0, hi=65535 - MAX_INPUT["discrete"])
    hi = MAX_INPUT[inputs]
    cfg = IoConfig(
        host=t.text("host", required=True), port=t.integer("port", 502, lo=1, hi=65535),
        unit=t.integer("unit", 1, lo=0, hi=247), inputs=inputs, function=function, address=address,
        poll_s=t.number("poll_s", 0.5, lo=0.01, hi=60), timeout_s=t.number("timeout_s", 1.0, lo=0.05, hi=30),
        ignition_bit=_bit(t, "ignition_bit", hi), cycle_bit=_bit(t, "cycle_bit", hi),
        cycle_kind=t.text("cycle_kind", "bin_lift"),
    )
    t.done()
    if cfg.cycle_kind not in CYCLE_KINDS:
        raise ConfigError(f"{key}.cycle_kind", f"expected one of {', '.join(CYCLE_KINDS)}, got {cfg.cycle_kind!r}")
    if cfg.ignition_bit is None and cfg.cycle_bit is None:
        raise ConfigError(key, "an I/O module with neither ignition_bit nor cycle_bit reads nothing")
    if cfg.ignition_bit is not None and cfg.ignition_bit == cfg.cycle_bit:
        raise ConfigError(f"{key}.cycle_bit", "is the same input as ignition_bit")
    return cfg


def parse_config(raw: Mapping[str, Any], key: str) -> GnssConfig:
    t = ConfigTable(dict(raw), key)
    name = t.text("name", required=True)
    t.text("type")
    io_raw = raw.get("io")
    t.used.add("io")
    cfg = GnssConfig(
        name=name,
        line=parse_line(t, baudrate=9600, bytesize=8, rates=(4800, 9600, 19200, 38400, 57600, 115200), parity="N"),
        device=t.text("device", name),
        silent_after_s=t.number("silent_after_s", 5.0, lo=0.1, hi=3600),
        debounce_epochs=t.integer("debounce_epochs", 5, lo=1, hi=600),
        max_hdop=t.number("max_hdop", 5.0, lo=0.5, hi=99.9),
        min_satellites=t.integer("min_satellites", 4, lo=0, hi=50),
        max_speed_kmh=t.number("max_speed_kmh", 200.0, lo=10, hi=2000),
        thin_heading_deg=t.number("thin_heading_deg", 15.0, lo=1, hi=180),
        thin_speed_kmh=t.number("thin_speed_kmh", 10.0, lo=0.5, hi=200),
        thin_interval_s=t.number("thin_interval_s", 60.0, lo=1, hi=86400),
        thin_distance_m=t.number("thin_distance_m", 250.0, lo=1, hi=100_000),
        trip_start_kmh=t.number("trip_start_kmh", 8.0, lo=0.5, hi=100),
        trip_start_after_s=t.number("trip_start_after_s", 10.0, lo=0, hi=3600),
        trip_stop_after_s=t.number("trip_stop_after_s", 180.0, lo=1, hi=86400),
        idle_kmh=t.number("idle_kmh", 3.0, lo=0, hi=50),
        clock_holdover_s=t.number("clock_holdover_s", 3600.0, lo=1, hi=7 * 86400),
        clock_offset_alarm_s=t.number("clock_offset_alarm_s", 2.0, lo=0, hi=86400),
        io=_io(io_raw, f"{key}.io"),
    )
    t.done()
    if not cfg.name or not cfg.device:
        raise ConfigError(f"{key}.name", "must not be empty")
    if cfg.idle_kmh > cfg.trip_start_kmh:
        raise ConfigError(f"{key}.idle_kmh", f"{cfg.idle_kmh} is above trip_start_kmh ({cfg.trip_start_kmh})")
    return cfg


def parse(raw: Mapping[str, Any], ctx: BusContext) -> GnssConfig:
    return parse_config(raw, ctx.key)
