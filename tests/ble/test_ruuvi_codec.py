"""Ruuvi RAWv2 codec: the shared vectors, the format's max/min/invalid cases, round trips, fuzz."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import ruuvi
from drivers.errors import DecodeError
from tests.vectors import load_vectors

VECTORS = load_vectors("ruuvi.json")

# Vector key -> RuuviReading field (same units: °C, %, Pa, mG, mV, dBm).
FIELDS = {
    "temperature": "temperature_c", "humidity": "humidity_pct", "pressure": "pressure_pa",
    "acceleration_x": "acceleration_x_mg", "acceleration_y": "acceleration_y_mg", "acceleration_z": "acceleration_z_mg",
    "battery": "battery_mv", "tx_power": "tx_power_dbm", "movement_counter": "movement_count",
    "measurement_sequence_number": "sequence", "mac": "mac",
}


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["case"])
def test_shared_vector_decodes_to_its_expected_fields(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    if "expected" not in vector:
        with pytest.raises(DecodeError):
            ruuvi.decode(data)
        return
    reading = ruuvi.decode(data)
    assert vector["expected"]
    for key, expected in vector["expected"].items():
        if key == "data_format":
            assert data[0] == expected
            continue
        value = getattr(reading, FIELDS[key])
        if key == "mac" and value is not None:
            value = value.replace(":", "")
            expected = expected.lower().replace(":", "")
        if isinstance(expected, float):
            assert value == pytest.approx(expected, rel=1e-9), key
        else:
            assert value == expected, key
    assert ruuvi.encode(reading) == data


# dataformat_05.md, "Test vectors": maximum, minimum and all-invalid values.
def test_maximum_values() -> None:
    r = ruuvi.decode(bytes.fromhex("057FFFFFFEFFFE7FFF7FFF7FFFFFDEFEFFFECBB8334C884F"))
    assert r == ruuvi.RuuviReading(163.835, 163.835, 115534, 32767, 32767, 32767, 3646, 20, 254, 65534,
                                   "cb:b8:33:4c:88:4f")


def test_minimum_values() -> None:
    r = ruuvi.decode(bytes.fromhex("058001000000008001800180010000000000CBB8334C884F"))
    assert r == ruuvi.RuuviReading(-163.835, 0.0, 50000, -32767, -32767, -32767, 1600, -40, 0, 0, "cb:b8:33:4c:88:4f")


def test_every_not_available_value_is_none() -> None:
    r = ruuvi.decode(bytes.fromhex("058000FFFFFFFF800080008000FFFFFFFFFFFFFFFFFFFFFF"))
    assert all(v is None for v in r), r
    assert all(v is None for v in r.sample_values().values())


def test_sample_values_use_the_project_units() -> None:
    r = ruuvi.decode(bytes.fromhex("0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F"))
    assert r.sample_values() == {
        "temperature_c": 24.3, "humidity_pct": 53.49, "pressure_hpa": 1000.44, "acceleration_x_g": 0.004,
        "acceleration_y_g": -0.004, "acceleration_z_g": 1.036, "battery_v": 2.977, "tx_power_dbm": 4,
        "movement_count": 66,
    }


@pytest.mark.parametrize(("hex_payload", "reason"), [
    ("", "24 bytes, got 0"),
    ("0512FC5394C37C0004FFFC040CAC364200CDCBB8334C88", "24 bytes, got 23"),
    ("990405" + "00" * 23, "24 bytes, got 26"),
    ("0312FC5394C37C0004FFFC040CAC364200CDCBB8334C884F", "data format 3"),
])
def test_malformed_payload_is_a_precise_decode_error(hex_payload: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        ruuvi.decode(bytes.fromhex(hex_payload))


def test_encoder_refuses_what_the_format_cannot_carry() -> None:
    base = ruuvi.decode(bytes.fromhex("0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F"))
    for bad in ({"temperature_c": 170.0}, {"pressure_pa": 40_000}, {"tx_power_dbm": 5}, {"battery_mv": 4000},
                {"movement_count": 255}, {"mac": "cb:b8"}):
        with pytest.raises(ValueError):
            ruuvi.encode(base._replace(**bad))


@settings(max_examples=1000, deadline=None)
@given(st.binary(min_size=23, max_size=23))
def test_every_format_5_payload_round_trips_byte_for_byte(rest: bytes) -> None:
    data = b"\x05" + rest
    assert ruuvi.encode(ruuvi.decode(data)) == data


@settings(max_examples=500, deadline=None)
@given(
    st.none() | st.integers(-32767, 32767).map(lambda n: n / 200),
    st.none() | st.integers(0, 65534).map(lambda n: n / 400),
    st.none() | st.integers(50_000, 115_534),
    st.none() | st.integers(-32767, 32767),
    st.none() | st.integers(1600, 3646),
    st.none() | st.integers(-20, 10).map(lambda n: 2 * n),
    st.none() | st.integers(0, 254),
    st.none() | st.integers(0, 65534),
    st.none() | st.binary(min_size=6, max_size=6).filter(lambda b: b != b"\xff" * 6).map(lambda b: b.hex(":")),
)
def test_reading_round_trip(t: float | None, h: float | None, p: int | None, a: int | None, b: int | None,
                            tx: int | None, mv: int | None, seq: int | None, mac: str | None) -> None:
    reading = ruuvi.RuuviReading(t, h, p, a, a, a, b, tx, mv, seq, mac)
    assert ruuvi.decode(ruuvi.encode(reading)) == reading


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=40))
def test_random_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    try:
        ruuvi.decode(data)
    except DecodeError:
        pass


@pytest.mark.timeout(120)
def test_fuzz_mutated_vectors() -> None:
    rng = random.Random(4991)
    seeds = [bytes.fromhex(v["hex"]) for v in VECTORS["vectors"]]
    outcomes = {"ok": 0, "error": 0}
    start = time.monotonic()
    for _ in range(50_000):
        data = bytearray(rng.choice(seeds))
        op = rng.randrange(3)
        if op == 0:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif op == 1:
            data.insert(rng.randint(0, len(data)), rng.randrange(256))
        else:
            del data[rng.randrange(len(data))]
        try:
            ruuvi.decode(bytes(data))
            outcomes["ok"] += 1
        except DecodeError:
            outcomes["error"] += 1
    assert outcomes["ok"] > 1000 and outcomes["error"] > 1000, outcomes
    assert time.monotonic() - start < 100
