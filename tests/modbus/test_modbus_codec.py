"""Register words <-> values: known encodings, and round trips for every type, word order and scale."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus.codec import (
    VALUE_TYPES,
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


def test_known_encodings() -> None:
    assert encode_raw(0x12345678, "u32", "big") == [0x1234, 0x5678]
    assert encode_raw(0x12345678, "u32", "little") == [0x5678, 0x1234]
    assert encode_raw(-2, "s16", "big") == [0xFFFE]
    assert encode_raw(-2, "s32", "big") == [0xFFFF, 0xFFFE]
    assert decode_raw([0xFFFE], 0, "s16", "big") == -2
    assert decode_raw([0, 0x5678, 0x1234], 1, "u32", "little") == 0x12345678
    # 230.5 as IEEE 754 single: 0x43668000.
    assert encode_raw(230.5, "f32", "big") == [0x4366, 0x8000]
    assert decode_raw([0x8000, 0x4366], 0, "f32", "little") == 230.5


def test_f32_not_a_number_reads_as_none() -> None:
    nan_words = list(struct.unpack(">HH", struct.pack(">f", math.nan)))
    assert decode_raw(nan_words, 0, "f32", "big") is None
    inf_words = list(struct.unpack(">HH", struct.pack(">f", math.inf)))
    assert decode_raw(inf_words, 0, "f32", "big") is None


@pytest.mark.parametrize(
    ("raw", "vtype", "message"),
    [
        (65536, "u16", "outside the u16 range"),
        (-1, "u32", "outside the u32 range"),
        (40000, "s16", "outside the s16 range"),
        (1.5, "u16", "takes an integer"),
        (math.nan, "f32", "cannot be sent as f32"),
        (1e39, "f32", "too large for f32"),
    ],
)
def test_values_that_do_not_fit_are_refused(raw: float, vtype: ValueType, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_raw(raw, vtype, "big")


def test_scaling_keeps_what_the_scale_resolves() -> None:
    assert scaled(2305, 0.1, decimals_for(0.1)) == 230.5
    assert scaled(3, 0.1, 1) == 0.3  # not 0.30000000000000004
    assert scaled(456, 0.001, decimals_for(0.001)) == 0.456
    assert scaled(7, 10, decimals_for(10)) == 70 and isinstance(scaled(7, 10, 0), int)
    assert scaled(3600, 1 / 3600, decimals_for(1 / 3600)) == 1.0
    assert [decimals_for(s) for s in (1, 0.1, 0.25, 0.01, 10)] == [0, 1, 2, 2, 0]
    assert unscaled(230.5, 0.1, "u16") == 2305
    assert unscaled(230.5, 0.1, "f32") == pytest.approx(2305.0)


def _raw_values(vtype: ValueType) -> st.SearchStrategy[int | float]:
    if vtype == "f32":
        return st.floats(width=32, allow_nan=False, allow_infinity=False)
    lo, hi = raw_range(vtype)
    return st.integers(lo, hi)


@given(st.data(), st.sampled_from(VALUE_TYPES), st.sampled_from(["big", "little"]))
def test_round_trip_every_type_and_word_order(data: st.DataObject, vtype: ValueType, order: WordOrder) -> None:
    raw = data.draw(_raw_values(vtype))
    words = encode_raw(raw, vtype, order)
    assert len(words) == WORDS[vtype] and all(0 <= w <= 0xFFFF for w in words)
    padded = [0xAAAA, *words, 0x5555]
    assert decode_raw(padded, 1, vtype, order) == raw


@given(st.sampled_from(["u32", "s32", "f32"]), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_word_orders_are_mirror_images(vtype: ValueType, a: int, b: int) -> None:
    big = decode_raw([a, b], 0, vtype, "big")
    little = decode_raw([b, a], 0, vtype, "little")
    assert big == little or (big is None and little is None)


@given(st.integers(0, 0xFFFF), st.sampled_from([1, 10, 0.1, 0.01, 0.001, 0.5, 0.25]))
def test_scaled_u16_round_trips_through_engineering_units(raw: int, scale: float) -> None:
    value = scaled(raw, scale, decimals_for(scale))
    assert unscaled(float(value), scale, "u16") == raw
