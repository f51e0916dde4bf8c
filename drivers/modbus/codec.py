"""Register words <-> values: u16/s16/u32/s32/f32, word order, scale. Pure, no I/O.

Modbus registers are 16-bit big-endian words; a 32-bit value spans two words whose order is the
vendor's choice: "big" puts the high word first (at the lower address), "little" the low word.
The engineering value is `raw * scale`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from decimal import Decimal
from typing import Literal

ValueType = Literal["u16", "s16", "u32", "s32", "f32"]
WordOrder = Literal["big", "little"]

VALUE_TYPES: tuple[ValueType, ...] = ("u16", "s16", "u32", "s32", "f32")
WORD_ORDERS: tuple[WordOrder, ...] = ("big", "little")
WORDS: dict[ValueType, int] = {"u16": 1, "s16": 1, "u32": 2, "s32": 2, "f32": 2}
_RANGE: dict[ValueType, tuple[int, int]] = {
    "u16": (0, 0xFFFF),
    "s16": (-0x8000, 0x7FFF),
    "u32": (0, 0xFFFF_FFFF),
    "s32": (-0x8000_0000, 0x7FFF_FFFF),
}
_F32 = struct.Struct(">f")
_HH = struct.Struct(">HH")


def raw_range(vtype: ValueType) -> tuple[int, int]:
    """Smallest and largest raw integer of an integer type."""
    return _RANGE[vtype]


def decode_raw(words: Sequence[int], at: int, vtype: ValueType, order: WordOrder) -> int | float | None:
    """The raw number stored at `words[at:]`. None for an f32 NaN or infinity (the device's "not available")."""
    if vtype == "u16":
        return words[at]
    if vtype == "s16":
        w = words[at]
        return w - 0x10000 if w & 0x8000 else w
    if order == "big":
        hi, lo = words[at], words[at + 1]
    else:
        lo, hi = words[at], words[at + 1]
    if vtype == "u32":
        return (hi << 16) | lo
    if vtype == "s32":
        v = (hi << 16) | lo
        return v - 0x1_0000_0000 if v & 0x8000_0000 else v
    f: float = _F32.unpack(_HH.pack(hi, lo))[0]
    return f if math.isfinite(f) else None


def encode_raw(raw: int | float, vtype: ValueType, order: WordOrder) -> list[int]:
    """Words for a raw number; ValueError if it does not fit the type."""
    if vtype == "f32":
        if not math.isfinite(raw):
            raise ValueError(f"{raw} cannot be sent as f32")
        try:
            hi, lo = _HH.unpack(_F32.pack(raw))
        except OverflowError:
            raise ValueError(f"{raw} is too large for f32") from None
    else:
        if not isinstance(raw, int):
            raise ValueError(f"{vtype} takes an integer, got {raw!r}")
        lo_lim, hi_lim = _RANGE[vtype]
        if not lo_lim <= raw <= hi_lim:
            raise ValueError(f"{raw} is outside the {vtype} range {lo_lim}..{hi_lim}")
        if WORDS[vtype] == 1:
            return [raw & 0xFFFF]
        u = raw & 0xFFFF_FFFF
        hi, lo = u >> 16, u & 0xFFFF
    return [hi, lo] if order == "big" else [lo, hi]


def decimals_for(scale: float) -> int:
    """Decimal places worth keeping after scaling: 0.1 -> 1, 0.25 -> 2, 0.001 -> 3, 1/3600 -> 6, 10 -> 0."""
    written = -min(0, int(Decimal(repr(float(scale))).normalize().as_tuple().exponent))
    return min(written, max(0, -math.floor(math.log10(abs(scale)))) + 2)


def scaled(raw: int | float, scale: float, decimals: int) -> int | float:
    """Engineering value: raw * scale, rounded to what the scale can resolve (no 0.30000000000000004)."""
    if scale == 1:
        return raw
    v = raw * scale
    return round(v) if decimals == 0 and isinstance(raw, int) else round(v, decimals)


def unscaled(value: float, scale: float, vtype: ValueType) -> int | float:
    """Raw number for an engineering value: value / scale, rounded to an integer for integer types."""
    raw = value / scale
    return raw if vtype == "f32" else round(raw)
