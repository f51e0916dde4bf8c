"""M-Bus records checked against the definitions of EN 13757-3:2013 (and EN 13757-7 media), table by table.

Each case is built from the standard's own layout (bit positions, ranges, codes), not from one
meter's frame: data field codings, LVAR ranges, BCD sign and error nibbles, date types G, J, F
and I with their invalid and "not specified" patterns, the FB and FD extension tables, the
combinable VIFEs, CI 0x70 / 0x73 and the empty RSP_UD, and JSON output of any integer.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.mbus.encode import Coding, encode_date_f, encode_date_g, encode_record, encode_response
from drivers.mbus.frame import MbusDecodeError, encode_long
from drivers.mbus.records import (
    APPLICATION_ERRORS,
    ApplicationError,
    FixedData,
    Header,
    Record,
    VariableData,
    decode_response,
    decode_variable_data,
)
from drivers.mbus.values import QUANTITIES, meter_values
from drivers.mbus.vif import MEDIUM, RECORD_ERRORS, medium_name
from edge_agent.cli import main
from edge_agent.decode_mbus import mbus_document

HEADER = Header("12345678", "GWF", 1, 0x07, 3, 0, 0)


def one(record: bytes) -> Record:
    (r,) = decode_variable_data(0x78, record).records
    return r


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["decode", *args])
    return result.exit_code, result.output


# --- big integers: LVAR binary numbers and JSON ---------------------------------------------------

# libmbus test/test-frames/example_binary16_lvar.hex (BSD-3-Clause, Raditex AB): DIF 0D, VIF 7C "PW",
# LVAR F0 = 16 bytes of binary number
BINARY16 = "68 25 25 68 08 00 72 00 00 00 00 CD 25 01 02 00 00 00 00 0D 7C 02 57 50 F0 96 07 5B 2A 27 A6 93 01 3D B5 1A B3 DC D1 3E 17 D5 16"


def test_a_16_byte_binary_record_is_an_exact_decimal_string_in_json() -> None:
    code, out = cli("mbus", BINARY16, "--json")
    assert code == 0, out
    (field,) = orjson.loads(out)["fields"]
    raw = bytes.fromhex(BINARY16.replace(" ", ""))[25:41]
    assert field["unit"] == "PW" and field["value_is_decimal_string"] is True
    assert field["value"] == str(int.from_bytes(raw, "little", signed=True))
    code, out = cli("mbus", BINARY16)  # the table form too
    assert code == 0 and "30898422817515245430058481379150858134" in out


@pytest.mark.parametrize("lvar", [0xE8, 0xF0, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6])
def test_lvar_binary_numbers_of_every_size_decode_exactly(lvar: int) -> None:
    # EN 13757-3 table 5: E0h-EFh (LVAR-E0h) bytes, F0h-F4h 4*(LVAR-ECh) bytes, F5h 48, F6h 64
    size = {0xF5: 48, 0xF6: 64}.get(lvar, lvar - 0xE0 if lvar < 0xF0 else 4 * (lvar - 0xEC))
    data = bytes(range(1, size + 1))
    r = one(bytes((0x0D, 0x13, lvar)) + data)  # volume in litres
    n = int.from_bytes(data, "little", signed=True)
    assert r.raw == data and r.quantity == "VOLUME"
    assert r.value == (Decimal(n).scaleb(-3) if abs(n) > 2**53 else n / 1000)
    f = mbus_document(encode_response(1, HEADER, [bytes((0x0D, 0x13, lvar)) + data]))["fields"][0]
    orjson.dumps(f)
    assert f["value"] == str(r.value) and f.get("value_is_decimal_string") is (abs(n) > 2**53 or None)


@pytest.mark.parametrize(("lvar", "data", "value"), [
    (0x03, b"cba", "abc"),  # 00h-BFh: text, last character first
    (0xC2, bytes.fromhex("3412"), 1234),  # C0h-CFh: positive BCD, (LVAR-C0h) bytes
    (0xD2, bytes.fromhex("3412"), -1234),  # D0h-DFh: negative BCD
    (0xE2, (-2).to_bytes(2, "little", signed=True), -2),  # binary, signed for a quantity
])
def test_lvar_text_bcd_and_binary(lvar: int, data: bytes, value: Any) -> None:
    assert one(bytes((0x0D, 0x78 if isinstance(value, str) else 0x16, lvar)) + data).value == value


@pytest.mark.parametrize("lvar", [0xF7, 0xFA, 0xFF])
def test_reserved_lvar_codes_are_a_decode_error(lvar: int) -> None:
    with pytest.raises(MbusDecodeError, match=f"LVAR 0x{lvar:02X} is reserved"):
        decode_variable_data(0x78, bytes((0x0D, 0x13, lvar, 0, 0)))


# --- BCD (type A): F in the top digit is the sign, A-F elsewhere are no number -------------------


@pytest.mark.parametrize(("dif", "raw", "value"), [
    (0x0C, "78563412", 12345678), (0x0C, "785634F2", -2345678), (0x09, "F9", -9), (0x0A, "0100", 1),
    (0x0E, "0100000000F0", -1),
])
def test_bcd_values_and_the_negative_sign(dif: int, raw: str, value: int) -> None:
    assert one(bytes((dif, 0x16)) + bytes.fromhex(raw)).value == value


@pytest.mark.parametrize(("dif", "raw", "why"), [
    (0x0C, "FFFFFFFF", "every BCD digit is F"), (0x09, "FF", "every BCD digit is F"),
    (0x0C, "1A000000", "digit A-F"), (0x0C, "00E00000", "digit A-F"), (0x0A, "F000", "digit A-F"),
    (0x0B, "00B000", "digit A-F"),
])
def test_bcd_error_nibbles_are_no_value_and_flagged(dif: int, raw: str, why: str) -> None:
    r = one(bytes((dif, 0x16)) + bytes.fromhex(raw))
    assert r.value is None and r.invalid and why in (r.problem or "")
    assert r.raw == bytes.fromhex(raw)


# --- dates: types G, J, F, I --------------------------------------------------------------------


def g_bytes(day: int, month: int, year: int) -> bytes:
    """Type G laid out by the standard: day bits 0-4, year bits 5-7 and 12-15, month bits 8-11."""
    return bytes((day | (year & 0x07) << 5, month | (year >> 3) << 4))


@pytest.mark.parametrize(("day", "month", "year", "why"), [
    (0, 5, 20, "day 0"), (3, 0, 20, "month 0"), (3, 13, 20, "month 13"), (3, 15, 20, "month 15"),
    (3, 5, 100, "year 100"), (3, 5, 127, "year 127"), (31, 15, 127, "month 15"), (30, 2, 24, "no calendar date"),
    (31, 4, 24, "no calendar date"),
])
def test_type_g_invalid_or_not_specified_dates_have_no_value(day: int, month: int, year: int, why: str) -> None:
    r = one(b"\x02\x6c" + g_bytes(day, month, year))
    assert r.value is None and r.invalid and why in (r.problem or "")


def test_type_f_with_the_iv_bit_has_no_value() -> None:
    # the record: minute byte A1 = IV (bit 7) + minute 33; 21 h; 2015-07-09
    r = one(bytes.fromhex("046DA115E917"))
    assert r.value is None and r.invalid and r.problem == "time invalid (IV bit set)"
    assert one(bytes.fromhex("046D2115E917")).value == "2015-07-09T21:33"
    code, out = cli("mbus", encode_response(1, HEADER, [bytes.fromhex("046DA115E917")]).hex(), "--json")
    field = orjson.loads(out)["fields"][0]
    assert code == 0 and field["value"] is None and field["invalid"] is True and "IV" in field["problem"]
    code, out = cli("mbus", encode_response(1, HEADER, [bytes.fromhex("046DA115E917")]).hex())
    assert code == 0 and "(time invalid (IV bit set))" in out


@pytest.mark.parametrize(("minute", "hour", "why"), [(60, 10, "minute 60"), (63, 10, "minute 63"),
                                                      (5, 24, "hour 24"), (5, 31, "hour 31")])
def test_type_f_minutes_and_hours_out_of_range_have_no_value(minute: int, hour: int, why: str) -> None:
    r = one(b"\x04\x6d" + bytes((minute, hour)) + g_bytes(9, 7, 15))
    assert r.value is None and r.invalid and why in (r.problem or "")


def test_type_f_with_a_not_specified_date_has_no_value() -> None:
    r = one(b"\x04\x6d" + bytes((30, 12)) + g_bytes(0, 0, 0))
    assert r.value is None and r.invalid


def test_type_f_hundred_year_bits() -> None:
    # hour byte bits 5-6: hundred years since 1900 (year = 1900 + 100 * hy + year)
    assert one(b"\x04\x6d" + bytes((5, 10 | 1 << 5)) + g_bytes(1, 2, 3)).value == "2003-02-01T10:05"
    assert one(b"\x04\x6d" + bytes((5, 10 | 2 << 5)) + g_bytes(1, 2, 3)).value == "2103-02-01T10:05"


def i_bytes(t: datetime, iv: bool = False) -> bytes:
    """Type I: second, minute (bit 7 IV), hour (bits 5-7 weekday), type G date, week."""
    weekday = t.isoweekday()
    return (bytes((t.second, t.minute | (0x80 if iv else 0), t.hour | weekday << 5))
            + g_bytes(t.day, t.month, t.year % 100) + bytes((t.isocalendar().week,)))


def test_type_i_six_bytes_and_its_iv_bit() -> None:
    t = datetime(2016, 7, 22, 8, 0, 59)
    assert one(b"\x06\x6d" + i_bytes(t)).value == "2016-07-22T08:00:59"
    r = one(b"\x06\x6d" + i_bytes(t, iv=True))
    assert r.value is None and r.invalid and "IV" in (r.problem or "")
    bad = bytearray(i_bytes(t))
    bad[0] = 60  # second 60
    assert one(b"\x06\x6d" + bytes(bad)).value is None


@pytest.mark.parametrize(("sec", "minute", "hour", "value"), [
    (59, 30, 23, "23:30:59"), (0, 0, 0, "00:00:00"), (60, 0, 0, None), (63, 63, 31, None), (0, 60, 0, None),
    (0, 0, 24, None),
])
def test_type_j_time_of_day(sec: int, minute: int, hour: int, value: str | None) -> None:
    r = one(b"\x03\x6d" + bytes((sec, minute, hour)))
    assert r.value == value and r.invalid == (value is None)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2080, 12, 31, 23, 59, 59)))
def test_valid_dates_of_every_type_round_trip(t: datetime) -> None:
    assert one(b"\x02\x6c" + g_bytes(t.day, t.month, t.year % 100)).value == t.date().isoformat()
    assert one(b"\x03\x6d" + bytes((t.second, t.minute, t.hour))).value == t.strftime("%H:%M:%S")
    assert one(encode_record(b"\x6d", encode_date_f(t), Coding.INT32)).value == t.strftime("%Y-%m-%dT%H:%M")
    assert one(b"\x06\x6d" + i_bytes(t)).value == t.strftime("%Y-%m-%dT%H:%M:%S")
    assert one(encode_record(b"\x6c", encode_date_g(t.date()), Coding.INT16)).value == t.date().isoformat()


def test_dates_in_the_fd_table_follow_the_same_rules() -> None:
    assert one(b"\x02\xfd\x70" + g_bytes(1, 3, 24)).value == "2024-03-01"  # battery change, type G
    assert one(b"\x04\xfd\x30" + bytes((0x80, 0)) + g_bytes(1, 3, 24)).value is None  # tariff start, IV set


# --- FB and FD extension tables, combinable VIFEs ------------------------------------------------


@pytest.mark.parametrize(("vife", "quantity", "unit", "raw", "value"), [
    (0x1A, "RELATIVE_HUMIDITY", "PERCENT", 456, 45.6), (0x1B, "RELATIVE_HUMIDITY", "PERCENT", 45, 45),
    (0x00, "ENERGY_WH", "WH", 7, 700_000), (0x01, "ENERGY_WH", "WH", 7, 7_000_000),
    (0x08, "ENERGY_J", "J", 3, 300_000_000), (0x10, "VOLUME", "M3", 2, 200), (0x11, "VOLUME", "M3", 2, 2000),
    (0x18, "MASS", "KG", 1, 100_000), (0x28, "POWER_W", "W", 5, 500_000), (0x31, "POWER_J_H", "J_H", 1, 1e9),
    (0x2C, "FREQUENCY", "HZ", 50000, 50.0), (0x2F, "FREQUENCY", "HZ", 50, 50), (0x0D, "ENERGY_CAL", "CAL", 2, 2e6),
    (0x5B, "FLOW_TEMPERATURE_F", "F", 70, 70), (0x74, "TEMPERATURE_LIMIT", "C", 21500, 21.5),
    (0x7B, "CUMULATIVE_MAX_POWER", "W", 3, 3), (0x21, "VOLUME_FT3", "FT3", 15, 1.5),
    (0x23, "VOLUME_US_GAL", "US_GAL", 7, 7), (0x24, "VOLUME_FLOW_US_GAL_MIN", "US_GAL_MIN", 1500, 1.5),
    (0x26, "VOLUME_FLOW_US_GAL_H", "US_GAL_H", 2, 2),
])
def test_fb_extension_table(vife: int, quantity: str, unit: str, raw: int, value: float) -> None:
    r = one(bytes((0x04, 0xFB, vife)) + raw.to_bytes(4, "little"))
    assert (r.quantity, r.unit) == (quantity, unit) and r.value == pytest.approx(value)


def test_relative_humidity_becomes_humidity_pct_in_the_sample() -> None:
    resp = decode_response(encode_response(1, HEADER, [bytes((0x02, 0xFB, 0x1A)) + (456).to_bytes(2, "little")]))
    assert meter_values([resp])[0]["humidity_pct"] == pytest.approx(45.6)


@pytest.mark.parametrize(("vife", "quantity", "unit", "raw", "value"), [
    (0x03, "CURRENCY_CREDIT", "CURRENCY", 12345, 12345), (0x05, "CURRENCY_DEBIT", "CURRENCY", 12345, 123.45),
    (0x0E, "FIRMWARE_VERSION", "NONE", 3, 3), (0x0F, "SOFTWARE_VERSION", "NONE", 6, 6),
    (0x17, "ERROR_FLAGS", "NONE", 0xFFFF, 0xFFFF), (0x1F, "REMOTE_CONTROL", "NONE", 1, 1),
    (0x26, "STORAGE_INTERVAL", "SECONDS", 2, 7200), (0x2B, "TIME_POINT_SECOND", "SECONDS", 30, 30),
    (0x3D, "NOMINAL_TRANSMISSION_PERIOD", "SECONDS", 15, 900), (0x48, "VOLTS", "V", 2301, 230.1),
    (0x59, "AMPERE", "A", 1500, 1.5), (0x6D, "OPERATING_TIME_BATTERY", "SECONDS", 3, 3 * 86400),
    (0x71, "RSSI", "DBM", 70, 70), (0x74, "REMAINING_BATTERY_LIFE", "SECONDS", 10, 864000),
    (0x75, "METER_STOPPED_COUNT", "NONE", 4, 4),
])
def test_fd_extension_table(vife: int, quantity: str, unit: str, raw: int, value: float) -> None:
    r = one(bytes((0x04, 0xFD, vife)) + raw.to_bytes(4, "little"))
    assert (r.quantity, r.unit) == (quantity, unit) and r.value == pytest.approx(value)


@pytest.mark.parametrize("code", sorted(set(range(0x20)) - {0}))
def test_a_record_error_vife_makes_the_record_no_reading(code: int) -> None:
    r = one(bytes((0x02, 0x93, code, 0x2A, 0x00)))  # volume, VIFE = record error code
    assert r.value is None and r.invalid and r.quantity == "VOLUME"
    assert r.vife_names[0] == f"RECORD_ERROR_{RECORD_ERRORS.get(code, f'RESERVED_RECORD_ERROR_0x{code:02X}')}"


def test_combinable_vifes_scale_date_and_time_the_value() -> None:
    assert one(bytes((0x02, 0x93, 0x75, 5, 0))).value == pytest.approx(5e-4)  # x10^(5-6), litres
    assert one(bytes((0x02, 0x93, 0x7D, 5, 0))).value == pytest.approx(5)  # x10^3
    dated = one(bytes((0x02, 0xAB, 0x6A)) + g_bytes(4, 5, 26))  # power, "date of begin of first"
    assert (dated.value, dated.unit, dated.vife_names) == ("2026-05-04", "DATE_TIME", ("DATE_OF_BEGIN_FIRST",))
    lasted = one(bytes((0x02, 0xAB, 0x62, 3, 0)))  # power, "duration of first", hours
    assert (lasted.value, lasted.unit) == (3 * 3600, "SECONDS")
    phase = one(bytes((0x02, 0xFD, 0xC8, 0xFC, 0x02, 0x12, 0x09)))  # volts, extension VIFE: at phase L2
    assert phase.vife_names == ("AT_PHASE_L2",) and phase.value == pytest.approx(232.2)


def test_manufacturer_specific_data_is_kept_raw_not_read_as_a_number() -> None:
    r = one(bytes((0x04, 0x7F, 0xFE, 0xFF, 0xFF, 0xFF)))  # VIF 7F
    assert r.value is None and r.manufacturer_specific and r.raw == bytes.fromhex("feffffff")
    r = one(bytes((0x02, 0xAB, 0xFF, 0x01, 0xFE, 0xFF)))  # power, VIFE 7F then a maker's VIFE
    assert r.value is None and r.manufacturer_specific and r.vife_names == ("MANUFACTURER_SPECIFIC_VIFE", "MANUFACTURER_VIFE_0x01")
    f = mbus_document(encode_response(1, HEADER, [bytes((0x02, 0xAB, 0xFF, 0x01, 0xFE, 0xFF))]))["fields"][0]
    assert f["value"] is None and f["manufacturer_specific"] is True and f["raw"] == "fe ff"


# --- media (EN 13757-7) ----------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "name"), [
    (0x07, "water"), (0x10, "irrigation_water"), (0x11, "water_data_logger"), (0x12, "gas_data_logger"),
    (0x13, "gas_converter"), (0x14, "calorific_value"), (0x1A, "smoke_detector"), (0x1B, "room_sensor"),
    (0x1C, "gas_detector"), (0x20, "breaker"), (0x21, "valve"), (0x25, "customer_unit"), (0x28, "waste_water"),
    (0x29, "garbage"), (0x31, "communication_controller"), (0x32, "unidirectional_repeater"),
    (0x33, "bidirectional_repeater"), (0x36, "radio_converter_system_side"), (0x37, "radio_converter_meter_side"),
])
def test_media_are_named(code: int, name: str) -> None:
    assert medium_name(code) == name
    h = Header("12345678", "GWF", 1, code, 3, 0, 0)
    assert mbus_document(encode_response(1, h, []))["medium"] == f"0x{code:02X} ({name})"


def test_every_medium_code_has_a_name_and_none_is_bare_reserved() -> None:
    assert all(medium_name(c) and medium_name(c) != "reserved" for c in range(256))
    assert set(MEDIUM) == set(range(0x40))


# --- CI 0x70, 0x73, and the empty RSP_UD ---------------------------------------------------------


@pytest.mark.parametrize("code", sorted(APPLICATION_ERRORS))
def test_application_errors_are_named(code: int) -> None:
    data = decode_response(encode_long(0x08, 1, 0x70, bytes((code,)))).data
    assert data == ApplicationError(code, APPLICATION_ERRORS[code])
    assert APPLICATION_ERRORS[0x08] == "application busy"


def test_application_error_without_a_code_is_unspecified_and_reserved_codes_say_so() -> None:
    assert decode_response(bytes.fromhex("6803036808017079 16".replace(" ", ""))).data == ApplicationError(
        0, "unspecified error")
    assert decode_response(encode_long(0x08, 1, 0x70, b"\x42")).data == ApplicationError(0x42, "reserved error code 0x42")


def fixed(status: int, u1: int, u2: int, c1: bytes, c2: bytes, medium: int = 7) -> bytes:
    """CI 0x73: id (BCD), access no, status, medium/unit bytes (unit bits 0-5, medium bits 6-7), counters."""
    b6 = u1 | (medium & 0x03) << 6
    b7 = u2 | ((medium >> 2) & 0x03) << 6
    return encode_long(0x08, 1, 0x73, bytes.fromhex("78563412") + bytes((9, status, b6, b7)) + c1 + c2)


def test_fixed_data_structure_bcd_and_binary_counters() -> None:
    d = decode_response(fixed(0x00, 0x29, 0x2C, bytes.fromhex("34120000"), bytes.fromhex("05000000"))).data
    assert isinstance(d, FixedData)
    assert (d.id, d.access_no, d.medium, d.historic) == ("12345678", 9, "water", False)
    assert [(r.quantity, r.value) for r in d.records] == [("VOLUME", pytest.approx(1.234)), ("VOLUME", 5)]
    d = decode_response(fixed(0x80, 0x05, 0x3E, (1500).to_bytes(4, "little"), (900).to_bytes(4, "little"), 4)).data
    assert isinstance(d, FixedData) and d.medium == "heat"
    assert [(r.quantity, r.value, r.storage) for r in d.records] == [("ENERGY_WH", 1_500_000, 0), ("ENERGY_WH", 900_000, 1)]
    d = decode_response(fixed(0x40, 0x14, 0x3F, bytes(4), bytes(4))).data
    assert isinstance(d, FixedData) and d.historic and all(r.storage == 1 for r in d.records)
    with pytest.raises(MbusDecodeError, match="16 bytes"):
        decode_response(encode_long(0x08, 1, 0x73, bytes(15)))
    doc = mbus_document(fixed(0x00, 0x29, 0x2C, bytes.fromhex("34120000"), bytes.fromhex("05000000")))
    assert doc["structure"] == "fixed" and doc["sample"]["volume_m3"] == pytest.approx(1.234)


def test_pymeterbus_control_frame_is_an_rsp_ud_with_no_data() -> None:
    # ganehag/pyMeterBus tests/test_control_frame.py (BSD-3-Clause): RSP_UD to address 11, CI 0x72, L = 3
    code, out = cli("mbus", "68 03 03 68 08 0B 72 85 16", "--json")
    assert code == 0, out
    doc = orjson.loads(out)
    assert (doc["telegram"], doc["A"], doc["CI"], doc["fields"]) == ("control frame", 11, "0x72", [])


def test_empty_rsp_ud_control_frame_is_a_response_with_no_data() -> None:
    raw = encode_long(0x08, 5, 0x72)  # 68 03 03 68 08 05 72 CS 16
    assert raw[1] == 3
    data = decode_response(raw).data
    assert data == VariableData(None, (), empty=True)
    doc = mbus_document(raw)
    assert doc["telegram"] == "control frame" and doc["fields"] == [] and "no_data" in doc
    with pytest.raises(MbusDecodeError, match="header needs 12 bytes, got 4"):
        decode_response(encode_long(0x08, 5, 0x72, bytes(4)))


# --- JSON never fails: any bytes a meter sends ------------------------------------------------------


@settings(max_examples=600, deadline=None)
@given(st.sampled_from([0x70, 0x72, 0x73, 0x76, 0x77, 0x78]), st.binary(max_size=240))
def test_decode_document_is_always_json(ci: int, payload: bytes) -> None:
    for raw in (encode_long(0x08, 1, ci, payload), encode_long(0x08, 1, ci, bytes(12) + payload)):
        try:
            doc = mbus_document(raw)
        except MbusDecodeError:
            continue
        orjson.dumps(doc)


@settings(max_examples=300, deadline=None)
@given(st.integers(0xE0, 0xF6), st.data())
def test_any_lvar_number_is_json(lvar: int, data: st.DataObject) -> None:
    size = {0xF5: 48, 0xF6: 64}.get(lvar, lvar - 0xE0 if lvar < 0xF0 else 4 * (lvar - 0xEC))
    body = data.draw(st.binary(min_size=size, max_size=size))
    vif = data.draw(st.sampled_from([0x13, 0x06, 0x78, 0x7F, 0x2B]))
    raw = encode_response(1, HEADER, [bytes((0x0D, vif, lvar)) + body])
    orjson.dumps(mbus_document(raw))
    orjson.dumps(meter_values([decode_response(raw)])[0])


def test_sample_leaves_out_numbers_no_json_reader_keeps() -> None:
    raw = encode_response(1, HEADER, [bytes((0x0D, 0x16, 0xF0)) + b"\xff" * 15 + b"\x7f"])  # 2^127-1 m3
    values, _ = meter_values([decode_response(raw)])
    assert "volume_m3" not in values and values["meter_id"] == "12345678"


def test_dates_round_trip_through_the_encoder_still() -> None:
    d = date(2026, 11, 25)
    assert one(encode_record(b"\x6c", encode_date_g(d), Coding.INT16)).value == d.isoformat()


def test_the_mbus_readme_lists_every_sample_quantity() -> None:
    readme = (Path(__file__).resolve().parents[2] / "drivers" / "mbus" / "README.md").read_text(encoding="utf-8")
    for name, _ in QUANTITIES.values():
        assert f"`{name}`" in readme, name


@pytest.mark.parametrize(("status", "flags"), [
    (0x00, []), (0x01, ["application busy"]), (0x02, ["any application error"]),
    (0x03, ["abnormal condition / alarm"]), (0x04, ["power low"]), (0x18, ["permanent error", "temporary error"]),
    (0x25, ["application busy", "power low", "manufacturer bits 0x20"]),
])
def test_header_status_bits_are_named(status: int, flags: list[str]) -> None:
    doc = mbus_document(encode_response(1, Header("12345678", "GWF", 1, 7, 3, status, 0), []))
    assert doc["status"] == f"0x{status:02X}" and doc["status_flags"] == flags
