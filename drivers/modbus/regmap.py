"""Register maps: one TOML file per controller model, validated once at load into typed objects.

Addresses, scaling and word order differ between every vendor, so they are data, not code. A
map is a list of `[[register]]` tables, each naming the quantity it carries (the name ends with
its unit: `power_w`, `energy_wh` ...). Every error is a ConfigError naming the file, the key and
the reason. `RegisterMap.plan()` groups the registers into as few read requests as possible.

The two level registers have fixed names: `level_cmd_pct` (the commanded level, read/write;
what `set_level` writes) and `level_pct` (the level the controller reports). The map's
`level_curve` says how they are stored: "linear" (percent, times `scale`) or "dali" (IEC
62386-102 arc level 0..254, converted by drivers.dali).

Each register may say how its quantity is reported (`report`, drivers.reporting): a strategy
name or a table; the map's own `[report]` table is the default of the registers that say
nothing (less what a flag cannot have: a deadband, a counter). Without either, every reading is.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from drivers import dali
from drivers.conf import ConfigTable
from drivers.errors import ConfigError
from drivers.modbus.codec import (
    VALUE_TYPES,
    WORD_ORDERS,
    WORDS,
    ValueType,
    WordOrder,
    decimals_for,
    decode_raw,
    encode_raw,
    raw_range,
    scaled,
    unscaled,
)
from drivers.model import Value
from drivers.reporting import EVERY, Policy, parse_policy

LevelCurve = Literal["linear", "dali"]
LEVEL_CURVES: tuple[LevelCurve, ...] = ("linear", "dali")
LEVEL_CMD = "level_cmd_pct"
LEVEL_FEEDBACK = "level_pct"
LEVEL_NAMES = (LEVEL_CMD, LEVEL_FEEDBACK)
FUNCTIONS = {3: "holding registers", 4: "input registers"}
MAX_READ = 125  # registers in one FC03/FC04 request (Modbus Application Protocol §6.3)

#: A quantity name's unit suffix and the unit the map must then declare (if it declares one).
UNIT_SUFFIXES: dict[str, str] = {
    "_pct": "%",
    "_w": "W",
    "_wh": "Wh",
    "_kwh": "kWh",
    "_va": "VA",
    "_vah": "VAh",
    "_v": "V",
    "_a": "A",
    "_c": "°C",
    "_h": "h",
    "_s": "s",
    "_hz": "Hz",
    "_lx": "lx",
}
_T = TypeVar("_T", bound=str)
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def unit_for(name: str) -> str:
    """The unit a quantity name carries in its suffix; "" for unitless names (lamp_on, fault_bits)."""
    for suffix, unit in UNIT_SUFFIXES.items():
        if name.endswith(suffix):
            return unit
    return ""


@dataclass(frozen=True, slots=True)
class Register:
    """One mapped value: where it is, how it is stored, and the quantity it carries."""

    name: str
    address: int
    function: int
    type: ValueType
    word_order: WordOrder
    scale: float
    unit: str
    writable: bool
    bit: int | None = None
    curve: LevelCurve = "linear"
    description: str = ""
    decimals: int = 0
    report: Policy = EVERY

    @property
    def words(self) -> int:
        return WORDS[self.type]

    def decode(self, words: Sequence[int], at: int) -> Value:
        """The engineering value stored at `words[at:]` (None when the device says "not available")."""
        if self.bit is not None:
            return bool((words[at] >> self.bit) & 1)
        raw = decode_raw(words, at, self.type, self.word_order)
        if raw is None:
            return None
        if self.curve == "dali":
            # 255 is DALI's "mask, no change": not a level, so not a reading either.
            return round(dali.arc_to_percent(int(raw)), 1) if raw <= dali.MAX_ARC else None
        return scaled(raw, self.scale, self.decimals)

    def expression(self, at: int, scale: str) -> str | None:
        """`decode(w, at)` as a Python expression over the words `w`, `scale` naming this register's
        scale; None for the layouts `decode` alone handles (s32, f32, DALI levels)."""
        if self.bit is not None:
            return f"bool((w[{at}] >> {self.bit}) & 1)"
        raw = _RAW.get(self.type if self.type != "u32" else f"u32-{self.word_order}")
        if raw is None or self.curve != "linear":
            return None
        raw = raw.format(at=at, next=at + 1)
        if self.scale == 1:
            return raw
        return f"round({raw} * {scale})" if self.decimals == 0 else f"round({raw} * {scale}, {self.decimals})"

    def encode(self, value: float) -> list[int]:
        """Words to write for an engineering value; ValueError if it cannot be stored."""
        if self.curve == "dali":
            if not float(value).is_integer():
                raise ValueError(f"{self.name}: DALI levels are whole percent, got {value}")
            return [dali.percent_to_arc(int(value))]
        return encode_raw(unscaled(value, self.scale, self.type), self.type, self.word_order)


#: The raw integer of the layouts `Register.expression` writes out (the others go through `decode`).
_RAW = {
    "u16": "w[{at}]",
    "s16": "(w[{at}] - 0x10000 if w[{at}] & 0x8000 else w[{at}])",
    "u32-big": "((w[{at}] << 16) | w[{next}])",
    "u32-little": "((w[{next}] << 16) | w[{at}])",
}


def _decoder(registers: tuple[tuple[Register, int], ...]) -> Callable[[Sequence[int]], dict[str, Value]]:
    """One function decoding a whole block into a new dict, written out once per read plan.

    A poll decodes every register of every lamp (2,200 values a second for 200 lamps). As
    `dataclasses` writes `__init__`, the function is generated: one call per block with the
    offsets and conversions in its code, instead of a call per register through the type and
    word-order dispatch of `decode` (1.2 us instead of 4.9 us for the LC100 block). Names are
    quantity names (checked by _NAME), scales are passed as objects, never written as text.
    """
    env: dict[str, Any] = {"__builtins__": {"bool": bool, "round": round}}
    items = []
    for i, (reg, at) in enumerate(registers):
        expr = reg.expression(at, f"scale_{i}")
        env[f"scale_{i}"] = reg.scale
        if expr is None:
            env[f"reg_{i}"] = reg
            expr = f"reg_{i}.decode(w, {at})"
        items.append(f"{reg.name!r}: {expr}")
    exec("def decode(w):\n    return {" + ", ".join(items) + "}\n", env)
    decode: Callable[[Sequence[int]], dict[str, Value]] = env["decode"]
    return decode


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request: `count` registers from `address` with `function`, and where each value sits in it."""

    function: int
    address: int
    count: int
    registers: tuple[tuple[Register, int], ...]
    decode: Callable[[Sequence[int]], dict[str, Value]] = field(init=False, repr=False, compare=False)
    """The values of the registers of this block, from the words read (a new dict)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "decode", _decoder(self.registers))

    def decode_into(self, words: Sequence[int], values: dict[str, Value]) -> None:
        values.update(self.decode(words))


@dataclass(frozen=True, slots=True)
class RegisterMap:
    path: Path
    model: str
    level_curve: LevelCurve
    max_block: int
    max_gap: int
    registers: tuple[Register, ...]
    description: str = ""

    def get(self, name: str) -> Register | None:
        for reg in self.registers:
            if reg.name == name:
                return reg
        return None

    def plan(self, offset: int = 0) -> tuple[ReadBlock, ...]:
        """Read requests covering every register, `offset` added to each address (a ballast's block on a gateway).

        Registers of one function code that are contiguous (or `max_gap` apart at most) share one
        request of at most `max_block` registers.
        """
        blocks: list[ReadBlock] = []
        run: list[Register] = []
        start = end = 0
        for reg in sorted(self.registers, key=lambda r: (r.function, r.address)):
            lo, hi = reg.address + offset, reg.address + offset + reg.words
            if run and reg.function == run[0].function and lo - end <= self.max_gap and max(end, hi) - start <= self.max_block:
                run.append(reg)
                end = max(end, hi)
                continue
            if run:
                blocks.append(_block(run, start, end, offset))
            run, start, end = [reg], lo, hi
        if run:
            blocks.append(_block(run, start, end, offset))
        return tuple(blocks)


def _block(run: list[Register], start: int, end: int, offset: int) -> ReadBlock:
    return ReadBlock(run[0].function, start, end - start, tuple((r, r.address + offset - start) for r in run))


def load_register_map(path: Path | str) -> RegisterMap:
    """Read and validate one register-map TOML file."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read register map: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    return parse_register_map(doc, path)


def parse_register_map(doc: Mapping[str, Any], path: Path) -> RegisterMap:
    """Validate a register map already parsed from TOML; `path` names it in errors."""
    here = str(path)
    t = ConfigTable(doc, here)
    try:
        model = _required_text(t, "model")
        description = t.text("description", "")
        level_curve = _choice(t, "level_curve", LEVEL_CURVES, "linear")
        word_order = _choice(t, "word_order", WORD_ORDERS, "big")
        max_block = t.integer("max_block", MAX_READ, lo=2, hi=MAX_READ)
        max_gap = t.integer("max_gap", 0, lo=0, hi=MAX_READ - 2)
        report = parse_policy(doc["report"], f"{here}:report") if "report" in doc else EVERY
        t.used.update(("register", "report"))
        t.done()
    except ConfigError as exc:
        # "map.toml:max_block", as the register keys read ("map.toml:register[3].type").
        raise ConfigError(f"{here}:{exc.key[len(here) + 1 :]}", exc.reason) from None
    raw_regs = doc.get("register")
    if not isinstance(raw_regs, list) or not raw_regs:
        raise ConfigError(f"{here}:register", "a register map needs at least one [[register]] table")
    registers = tuple(
        _register(ConfigTable(raw, f"{here}:register[{i}]"), word_order, level_curve, report)
        for i, raw in enumerate(raw_regs)
    )
    _check_layout(registers, here)
    return RegisterMap(path, model, level_curve, max_block, max_gap, registers, description)


def _scale(t: ConfigTable) -> float:
    scale = t.number("scale", 1, lo=-1e12, hi=1e12)
    if scale == 0:
        raise ConfigError(f"{t.key}.scale", "must not be 0")
    return int(scale) if scale.is_integer() else scale


def _unit(t: ConfigTable, name: str) -> str:
    """The unit, which the quantity name already says: a `unit` key may only repeat it."""
    expected_unit = unit_for(name)
    unit: str = t.text("unit", expected_unit)
    if unit != expected_unit:
        said = f"unit {expected_unit!r}" if expected_unit else "no unit"
        raise ConfigError(f"{t.key}.unit", f"{unit!r} does not match the name {name!r}, which says {said}")
    return unit


def _report(t: ConfigTable, numeric: bool, default: Policy) -> Policy:
    """The register's report policy: its own `report`, else the map's default fitted to a flag."""
    t.used.add("report")
    base = default if numeric else Policy(default.strategy, default.period_s)
    if "report" in t.raw:
        return parse_policy(t.raw["report"], f"{t.key}.report", base, numeric=numeric)
    return base


def _register(t: ConfigTable, default_order: WordOrder, level_curve: LevelCurve, report: Policy) -> Register:
    key = t.key
    name = _required_text(t, "name")
    if not _NAME.match(name):
        raise ConfigError(f"{key}.name", f"{name!r} is not a quantity name (lower case, digits, _; unit as suffix)")
    if "address" not in t.raw:
        raise ConfigError(f"{key}.address", "missing")
    address = t.integer("address", 0, lo=0, hi=0xFFFF)
    function = t.integer("function", 3, lo=1, hi=255)
    if function not in FUNCTIONS:
        raise ConfigError(f"{key}.function", f"{function} is not a register read function; use 3 (holding) or 4 (input)")
    vtype = _choice(t, "type", VALUE_TYPES, "u16")
    order = _choice(t, "word_order", WORD_ORDERS, default_order)
    if address + WORDS[vtype] - 1 > 0xFFFF:
        raise ConfigError(f"{key}.address", f"{vtype} at {address} runs past the last register address 65535")
    scale = _scale(t)
    unit = _unit(t, name)
    writable = _choice(t, "access", ("r", "rw"), "r") == "rw"
    if writable and function != 3:
        raise ConfigError(f"{key}.access", "only holding registers (function 3) can be written")
    bit = None
    if "bit" in t.raw:
        bit = t.integer("bit", 0, lo=0, hi=15)
        if vtype != "u16" or scale != 1 or writable:
            raise ConfigError(f"{key}.bit", "a bit flag is read from a u16 register, with no scale, read-only")
    curve: LevelCurve = "linear"
    if name in LEVEL_NAMES:
        curve = level_curve
        if bit is not None:
            raise ConfigError(f"{key}.bit", f"{name} is a level, not a bit flag")
        if curve == "dali" and (vtype != "u16" or scale != 1):
            raise ConfigError(f"{key}.type", f"with level_curve = 'dali', {name} holds an arc level: u16, scale 1")
    if name == LEVEL_CMD and not writable:
        raise ConfigError(f"{key}.access", f"{LEVEL_CMD} is the commanded level: it must be access = 'rw'")
    if writable and curve == "linear":
        _check_level_fits(name, vtype, float(scale), key)
    description = t.text("description", "")
    policy = _report(t, bit is None, report)
    t.done()
    return Register(
        name=name,
        address=address,
        function=function,
        type=vtype,
        word_order=order,
        scale=scale,
        unit=unit,
        writable=writable,
        bit=bit,
        curve=curve,
        description=description,
        decimals=decimals_for(scale),
        report=policy,
    )


def _check_level_fits(name: str, vtype: ValueType, scale: float, key: str) -> None:
    if name != LEVEL_CMD or vtype == "f32":
        return
    lo, hi = raw_range(vtype)
    top = round(100 / scale)
    if not lo <= top <= hi or top <= 0:
        raise ConfigError(f"{key}.scale", f"100 % at scale {scale} is raw {top}, which a {vtype} cannot hold")


def _check_layout(registers: tuple[Register, ...], here: str) -> None:
    names: dict[str, int] = {}
    whole: dict[tuple[int, int], tuple[int, Register]] = {}  # (function, address) -> index, register
    bits: dict[tuple[int, int, int], int] = {}
    for i, reg in enumerate(registers):
        key = f"{here}:register[{i}]"
        if reg.name in names:
            raise ConfigError(f"{key}.name", f"{reg.name!r} is already register[{names[reg.name]}]")
        names[reg.name] = i
        if reg.bit is not None:
            slot = (reg.function, reg.address, reg.bit)
            if slot in bits:
                raise ConfigError(f"{key}.bit", f"bit {reg.bit} of register {reg.address} is already register[{bits[slot]}]")
            bits[slot] = i
            continue
        for a in range(reg.address, reg.address + reg.words):
            if (reg.function, a) in whole:
                j, other = whole[(reg.function, a)]
                raise ConfigError(f"{key}.address", f"{reg.name} overlaps register[{j}] ({other.name}) at address {a}")
            whole[(reg.function, a)] = (i, reg)
    for (function, address, _bit), i in bits.items():
        holder = whole.get((function, address))
        if holder is not None and holder[1].type != "u16":
            raise ConfigError(
                f"{here}:register[{i}].address",
                f"bit flag at {address} falls inside the {holder[1].type} register {holder[1].name}",
            )


def _required_text(t: ConfigTable, name: str) -> str:
    value: str = t.text(name, required=True)
    if not value.strip():
        raise ConfigError(f"{t.key}.{name}", "must not be empty")
    return value


def _choice(t: ConfigTable, name: str, options: tuple[_T, ...], default: _T) -> _T:
    value = t.text(name, default)
    for option in options:
        if value == option:
            return option
    raise ConfigError(f"{t.key}.{name}", f"{value!r} is not one of {', '.join(options)}")
