"""BTHome v2 codec: the shared vectors, the spec's table examples, round trips (plain and encrypted), fuzz."""

from __future__ import annotations

import random
import re
import time
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import bthome
from drivers.bthome import Kind
from drivers.errors import DecodeError
from tests.vectors import load_vectors

VECTORS = load_vectors("bthome.json")
KEY = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932")
MAC = bthome.parse_mac("54:48:E6:8F:80:A5")

# Vector keys are BTHome property names (bthome.io, bthome-ble); a few are spelt differently there.
ALIASES = {"dewpoint": "dew_point", "co2": "carbon_dioxide", "tvoc": "volatile_organic_compounds",
           "pm2_5": "pm25", "pm2.5": "pm25", "uv index": "uv_index", "signal strength": "signal_strength"}
# Our quantity is in another unit than the property's: energy is Wh here, kWh in BTHome.
TO_SPEC_UNIT = {"energy": 1 / 1000}


def _expected_matches(frame: bthome.BTHomeFrame, key: str, expected: Any) -> None:
    m = re.fullmatch(r"(.+)_(\d+)", key)
    prop, nth = (m.group(1), int(m.group(2))) if m and m.group(1) != "pm" else (key, 1)
    prop = ALIASES.get(prop, prop)
    # A property name can be a sensor and a binary sensor ("power", "battery"): the expected type tells which.
    found = [x for x in frame.measurements
             if x.prop == prop and not x.name.endswith("_steps") and isinstance(x.value, bool) == isinstance(expected, bool)]
    assert len(found) >= nth, f"{key}: no such field decoded in {frame.measurements}"
    value = found[nth - 1].value
    if prop == "timestamp" and isinstance(expected, str):
        expected = int(datetime.fromisoformat(expected).timestamp())
    if isinstance(expected, float) or (isinstance(expected, int) and prop in TO_SPEC_UNIT):
        assert isinstance(value, int | float) and not isinstance(value, bool)
        assert value * TO_SPEC_UNIT.get(prop, 1) == pytest.approx(expected, rel=1e-9, abs=1e-9), key
    else:
        assert value == expected, key


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_shared_vector_decodes_to_its_expected_fields(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["service_data_hex"])
    key = bytes.fromhex(vector["bindkey"]) if "bindkey" in vector else None
    mac = bthome.parse_mac(vector["address"]) if "address" in vector else None
    if "expected" not in vector:
        with pytest.raises(DecodeError):
            bthome.decode(data, key=key, mac=mac)
        return
    frame = bthome.decode(data, key=key, mac=mac)
    assert frame.encrypted == (key is not None)
    assert vector["expected"], "a vector must expect something"
    for name, expected in vector["expected"].items():
        _expected_matches(frame, name, expected)
    if key is not None:
        with pytest.raises(bthome.EncryptedPayloadError):
            bthome.decode(data, mac=mac)
        with pytest.raises(bthome.AuthenticationError):
            bthome.decode(data, key=bytes(16), mac=mac)


# bthome.io/format, "Example" and "Result" columns.
SPEC_EXAMPLES = [
    ("0009", "packet_id", 9), ("0161", "battery_pct", 97), ("02CA09", "temperature_c", 25.06),
    ("03BF13", "humidity_pct", 50.55), ("04138A01", "pressure_hpa", 1008.83), ("05138A14", "illuminance_lx", 13460.67),
    ("065E1F", "mass_kg", 80.3), ("073E1D", "mass_lb", 74.86), ("08CA06", "dew_point_c", 17.38), ("0960", "count", 96),
    ("0A138A14", "energy_wh", 1346067), ("0B021B00", "power_w", 69.14), ("0C020C", "voltage_v", 3.074),
    ("0D120C", "pm25_ugm3", 3090), ("0E021C", "pm10_ugm3", 7170), ("12E204", "co2_ppm", 1250),
    ("133301", "tvoc_ugm3", 307), ("14020C", "moisture_pct", 30.74), ("2E23", "humidity_pct", 35),
    ("2F23", "moisture_pct", 35), ("3D0960", "count", 24585), ("3E2A2C0960", "count", 1611213866),
    ("3F020C", "rotation_deg", 307.4), ("400C00", "distance_mm", 12), ("414E00", "distance_m", 7.8),
    ("424E3400", "duration_s", 13.39), ("434E34", "current_a", 13.39), ("444E34", "speed_mps", 133.9),
    ("451101", "temperature_c", 27.3), ("4632", "uv_index", 5.0), ("478756", "volume_l", 2215.1),
    ("48DC87", "volume_ml", 34780), ("49DC87", "flow_m3h", 34.78), ("4A020C", "voltage_v", 307.4),
    ("4B138A14", "gas_m3", 1346.067), ("4C41018A01", "gas_m3", 25821.505), ("4D12138A14", "energy_wh", 344593170),
    ("4E87562A01", "volume_l", 19551.879), ("4F87562A01", "water_l", 19551.879), ("505D396164", "timestamp_s", 1684093277),
    ("518756", "acceleration_ms2", 22.151), ("528756", "gyroscope_dps", 22.151),
    ("530C48656C6C6F20576F726C6421", "text", "Hello World!"), ("540C48656C6C6F20576F726C6421", "raw", "48656c6c6f20576f726c6421"),
    ("5587562A01", "volume_storage_l", 19551.879), ("56E803", "conductivity_uscm", 1000), ("57EA", "temperature_c", -22),
    ("58EA", "temperature_c", -7.7), ("59EA", "count", -22), ("5AEAEA", "count", -5398), ("5BEA0234EA", "count", -365690134),
    ("5C02FBFFFF", "power_w", -12.78), ("5D02EA", "current_a", -5.63), ("5E9F8C", "direction_deg", 359.99),
    ("1501", "battery_low", True), ("1A00", "door_open", False), ("2101", "motion", True), ("2301", "occupancy", True),
    ("2D01", "window_open", True), ("3A01", "button", "press"), ("3A80", "button", "hold_press"), ("3A00", "button", None),
    ("F00100", "device_type_id", 1), ("F100010204", "firmware_version", "4.2.1.0"), ("F2000106", "firmware_version", "6.1.0"),
]


@pytest.mark.parametrize(("obj", "name", "value"), SPEC_EXAMPLES)
def test_spec_table_example(obj: str, name: str, value: Any) -> None:
    frame = bthome.decode(bytes.fromhex("40" + obj))
    assert frame.error is None
    assert frame.values() == {name: value}
    assert type(frame.values()[name]) is type(value)


def test_dimmer_event_gives_direction_and_steps() -> None:
    assert bthome.decode(bytes.fromhex("403C0103")).values() == {"dimmer": "rotate_left", "dimmer_steps": 3}
    assert bthome.decode(bytes.fromhex("403C020A")).values() == {"dimmer": "rotate_right", "dimmer_steps": 10}


def test_repeated_quantities_are_numbered_in_payload_order() -> None:
    frame = bthome.decode(bytes.fromhex("4002CA0902C409451101"))
    assert frame.values() == {"temperature_c": 25.06, "temperature_2_c": 25.0, "temperature_3_c": 27.3}


def test_unknown_object_stops_decoding_and_reports_the_rest() -> None:
    frame = bthome.decode(bytes.fromhex("4000090161ee01020304"))
    assert frame.values() == {"packet_id": 9, "battery_pct": 97}
    assert frame.error == bthome.ObjectError(
        "unknown_object", 0xEE, 4, "length unknown, decoding stopped", bytes.fromhex("ee01020304"))


# One rule for every object that cannot be read (bthome.io/format: a receiver stops at what it cannot
# parse): the objects before it are kept, the rest is reported on the frame. Sizes from the spec table:
# 0x02 temperature sint16, 0x53 text = length byte + UTF-8, 0x21 motion = binary 0/1, 0x3C dimmer 2 bytes.
@pytest.mark.parametrize(("hex_payload", "kept", "code", "offset", "reason"), [
    ("4002c4", {}, "truncated", 0, "needs 2 byte(s), 1 left"),
    ("400009 02c4", {"packet_id": 9}, "truncated", 2, "needs 2 byte(s), 1 left"),
    ("400161 3c01", {"battery_pct": 97}, "truncated", 2, "needs 2 byte(s), 1 left"),
    ("400161 53", {"battery_pct": 97}, "truncated", 2, "length byte missing"),
    ("40 0161 530548", {"battery_pct": 97}, "truncated", 2, "needs 5 byte(s), 1 left"),
    ("40 02c409 5302c328", {"temperature_c": 25.0}, "not_utf8", 3, "not UTF-8"),
    ("40 02c409 5301ff 0161", {"temperature_c": 25.0}, "not_utf8", 3, "not UTF-8"),
    ("40 2101 2102 0161", {"motion": True}, "bad_value", 2, "binary value 2"),
    ("40 02c409 ee0102", {"temperature_c": 25.0}, "unknown_object", 3, "length unknown"),
])
def test_a_bad_object_keeps_the_objects_before_it_and_reports_the_rest(
        hex_payload: str, kept: dict[str, Any], code: str, offset: int, reason: str) -> None:
    data = bytes.fromhex(hex_payload.replace(" ", ""))
    frame = bthome.decode(data)
    assert frame.values() == kept
    assert frame.error is not None
    assert (frame.error.code, frame.error.offset) == (code, offset) and reason in frame.error.reason
    assert frame.error.remaining == data[1 + offset:]
    assert frame.error.object_id == data[1 + offset]


def test_an_encrypted_advert_with_a_bad_last_object_keeps_the_others() -> None:
    # the ciphertext authenticates: the sensor itself sent a truncated text object
    payload = bthome.encode([(0x02, 21.5)], key=KEY, mac=MAC, counter=3)
    good = bthome.decode(payload, key=KEY, mac=MAC)
    assert good.error is None
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM
    body = bytes.fromhex("02660853")  # temperature 21.5, then a text object with no length byte
    counter = (4).to_bytes(4, "little")
    nonce = MAC + bthome.UUID16_LE + b"\x41" + counter
    sealed = AESCCM(KEY, tag_length=4).encrypt(nonce, body, None)
    frame = bthome.decode(b"\x41" + sealed[:-4] + counter + sealed[-4:], key=KEY, mac=MAC)
    assert frame.values() == {"temperature_c": 21.5}
    assert frame.error is not None and frame.error.code == "truncated"


@pytest.mark.parametrize(("hex_payload", "reason"), [
    ("", "empty"),
    ("e1020c04", "version 7"),
    ("2002c409", "version 1"),
    ("42010203", "MAC follows"),
    ("4100112233", "needs ciphertext"),
])
def test_malformed_payload_is_a_precise_decode_error(hex_payload: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=re.escape(reason)):
        bthome.decode(bytes.fromhex(hex_payload))


def test_encrypted_vector_needs_key_and_mac() -> None:
    data = bytes.fromhex("41a47266c95f730011223378237214")
    with pytest.raises(bthome.EncryptedPayloadError, match="bindkey is needed"):
        bthome.decode(data)
    with pytest.raises(bthome.EncryptedPayloadError, match="MAC is needed"):
        bthome.decode(data, key=KEY)
    with pytest.raises(bthome.AuthenticationError, match="wrong bindkey"):
        bthome.decode(data, key=KEY, mac=bthome.parse_mac("54:48:E6:8F:80:A6"))
    frame = bthome.decode(data, key=KEY, mac=MAC)
    assert frame.counter == int.from_bytes(bytes.fromhex("00112233"), "little")


def test_encoder_reproduces_the_encrypted_vector_byte_for_byte() -> None:
    counter = int.from_bytes(bytes.fromhex("00112233"), "little")
    payload = bthome.encode([(0x02, 25.06), (0x03, 50.55)], key=KEY, mac=MAC, counter=counter)
    assert payload.hex() == "41a47266c95f730011223378237214"


def test_mac_carried_in_the_payload_is_used_for_the_nonce() -> None:
    payload = bthome.encode([(0x02, 21.5)], key=KEY, mac=MAC, counter=7, include_mac=True)
    assert payload[0] == 0x43 and payload[1:7] == MAC[::-1]
    frame = bthome.decode(payload, key=KEY)
    assert frame.mac == MAC and frame.values() == {"temperature_c": 21.5}


def test_values_go_to_the_first_object_that_can_carry_them() -> None:
    assert bthome.objects_for_values({"temperature_c": 400.5, "count": 1000, "motion": True}) == [
        (0x21, True), (0x3D, 1000), (0x45, 400.5)]
    with pytest.raises(ValueError, match="no BTHome object for quantity 'temperature'"):
        bthome.objects_for_values({"temperature": 20})
    with pytest.raises(ValueError, match="fits no BTHome object"):
        bthome.objects_for_values({"battery_pct": 300})


# --- round trips -----------------------------------------------------------------------------------


@st.composite
def object_values(draw: st.DrawFn) -> tuple[int, Any]:
    t = draw(st.sampled_from(list(bthome.OBJECTS.values())))
    if t.kind in (Kind.UINT, Kind.SINT):
        bits = 8 * t.size
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if t.kind is Kind.SINT else (0, (1 << bits) - 1)
        raw = draw(st.integers(lo, hi))
        return t.object_id, raw if t.num == t.den == 1 else raw * t.num / t.den
    if t.kind is Kind.BOOL:
        return t.object_id, draw(st.booleans())
    if t.kind is Kind.BUTTON:
        return t.object_id, draw(st.sampled_from(list(bthome.BUTTON_EVENTS.values())))
    if t.kind is Kind.DIMMER:
        return t.object_id, (draw(st.sampled_from(list(bthome.DIMMER_EVENTS.values()))), draw(st.integers(0, 255)))
    if t.kind is Kind.TEXT:
        return t.object_id, draw(st.text(max_size=40))
    if t.kind is Kind.RAW:
        return t.object_id, draw(st.binary(max_size=40)).hex()
    return t.object_id, ".".join(str(draw(st.integers(0, 255))) for _ in range(t.size))


def _decoded_values(objects: list[tuple[int, Any]]) -> list[Any]:
    out: list[Any] = []
    for _, v in objects:
        out.extend(v if isinstance(v, tuple) else [v])
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(object_values(), max_size=8), st.booleans())
def test_plain_round_trip(objects: list[tuple[int, Any]], trigger: bool) -> None:
    payload = bthome.encode(objects, trigger_based=trigger)
    frame = bthome.decode(payload)
    assert not frame.encrypted and frame.trigger_based == trigger and frame.error is None
    assert [m.value for m in frame.measurements] == _decoded_values(objects)
    assert [m.object_id for m in frame.measurements if not m.name.endswith("_steps")] == [o for o, _ in objects]


@settings(max_examples=200, deadline=None)
@given(st.lists(object_values(), min_size=1, max_size=6), st.binary(min_size=16, max_size=16),
       st.binary(min_size=6, max_size=6), st.integers(0, 0xFFFFFFFF), st.booleans())
def test_encrypted_round_trip(objects: list[tuple[int, Any]], key: bytes, mac: bytes, counter: int,
                              include_mac: bool) -> None:
    payload = bthome.encode(objects, key=key, mac=mac, counter=counter, include_mac=include_mac)
    frame = bthome.decode(payload, key=key, mac=None if include_mac else mac)
    assert frame.encrypted and frame.counter == counter
    assert [m.value for m in frame.measurements] == _decoded_values(objects)
    with pytest.raises(bthome.AuthenticationError):
        bthome.decode(payload, key=bytes(b ^ 0x01 for b in key), mac=mac)


@settings(max_examples=200, deadline=None)
@given(st.lists(object_values(), min_size=1, max_size=4), st.data())
def test_any_altered_byte_of_an_encrypted_payload_is_refused(objects: list[tuple[int, Any]], data: st.DataObject) -> None:
    payload = bytearray(bthome.encode(objects, key=KEY, mac=MAC, counter=99))
    i = data.draw(st.integers(0, len(payload) - 1))
    payload[i] ^= data.draw(st.integers(1, 255))
    try:
        frame = bthome.decode(bytes(payload), key=KEY, mac=MAC)
    except DecodeError:
        return
    # Only clearing the encryption bit gets through the codec: the bus refuses that as a downgrade.
    assert i == 0 and not frame.encrypted


# --- fuzz ------------------------------------------------------------------------------------------


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=64), st.booleans())
def test_random_bytes_decode_or_raise_decode_error(data: bytes, with_key: bool) -> None:
    try:
        bthome.decode(data, key=KEY if with_key else None, mac=MAC)
    except DecodeError:
        pass


@pytest.mark.timeout(120)
def test_fuzz_mutated_vectors() -> None:
    rng = random.Random(20261125)
    seeds = [bytes.fromhex(v["service_data_hex"]) for v in VECTORS["vectors"]]
    seeds += [bytes.fromhex("40" + obj) for obj, _, _ in SPEC_EXAMPLES]
    seeds.append(bthome.encode([(0x00, 3), (0x02, 21.5), (0x53, "abc")], key=KEY, mac=MAC, counter=5))
    outcomes = {"ok": 0, "error": 0}
    start = time.monotonic()
    for _ in range(60_000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(4)
            if op == 0 and data:
                data[rng.randrange(len(data))] = rng.randrange(256)
            elif op == 1:
                data.insert(rng.randint(0, len(data)), rng.randrange(256))
            elif op == 2 and data:
                del data[rng.randrange(len(data))]
            else:
                data = data[: rng.randint(0, len(data))]
        try:
            bthome.decode(bytes(data), key=KEY if rng.random() < 0.3 else None, mac=MAC)
            outcomes["ok"] += 1
        except DecodeError:
            outcomes["error"] += 1
    assert outcomes["ok"] > 1000 and outcomes["error"] > 1000, outcomes  # both paths really exercised
    assert time.monotonic() - start < 100
