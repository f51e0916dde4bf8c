"""M-Bus application layer (EN 13757-3): per CI, variable data (header, DIF/DIFE/VIF/VIFE records),
the fixed data structure, or an application error.

A record that cannot be understood (unknown VIF, odd data) is still returned, with quantity
UNKNOWN_VIF or a `problem`; a value the meter itself marks as none (a date with the IV bit or a
"not specified" field, BCD error digits, a record error VIFE) is None with `invalid`; the
manufacturer's own data is None with `manufacturer_specific`, its bytes in `raw`. Only bytes that
break the record structure itself (a record running past the end, a reserved DIF or LVAR) raise
MbusDecodeError.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from drivers.mbus.frame import Ack, MbusDecodeError, ShortFrame, decode_telegram, is_response
from drivers.mbus.manufacturer import decode_manufacturer
from drivers.mbus.vif import (
    UNKNOWN,
    VIFE_EXTENSION,
    VIFE_MANUFACTURER,
    Kind,
    VifInfo,
    combinable,
    combinable_extension,
    extension_fb,
    extension_fd,
    primary,
)

CI_APPLICATION_ERROR = 0x70
CI_ALARM = 0x71
CI_VARIABLE = 0x72
CI_FIXED = 0x73
CI_VARIABLE_MSB = 0x76
CI_FIXED_MSB = 0x77
CI_VARIABLE_NO_HEADER = 0x78

# CI 0x70: the one data byte (EN 13757-3 "codes for general application errors"); no byte means 0x00
APPLICATION_ERRORS = {
    0x00: "unspecified error",
    0x01: "unimplemented CI field",
    0x02: "buffer too long, truncated",
    0x03: "too many records",
    0x04: "premature end of record",
    0x05: "more than 10 DIFEs",
    0x06: "more than 10 VIFEs",
    0x07: "reserved",
    0x08: "application busy",
    0x09: "too many readouts",
}

FUNCTIONS = ("INSTANTANEOUS_VALUE", "MAXIMUM_VALUE", "MINIMUM_VALUE", "ERROR_STATE_VALUE")

DIF_MANUFACTURER = 0x0F
DIF_MORE_RECORDS = 0x1F
DIF_IDLE_FILLER = 0x2F
MAX_DIFE = 10
MAX_VIFE = 10
# Integers beyond this are not exact in a float (nor in a JSON reader's number): kept as int or Decimal here.
EXACT_FLOAT_LIMIT = 2**53

# data field coding (DIF bits 0-3) -> (length, kind); 0x0D (LVAR) and 0x0F (special) handled apart
_CODINGS: dict[int, tuple[int, str]] = {
    0x0: (0, "none"), 0x1: (1, "int"), 0x2: (2, "int"), 0x3: (3, "int"), 0x4: (4, "int"),
    0x5: (4, "real"), 0x6: (6, "int"), 0x7: (8, "int"), 0x8: (0, "none"),
    0x9: (1, "bcd"), 0xA: (2, "bcd"), 0xB: (3, "bcd"), 0xC: (4, "bcd"), 0xE: (6, "bcd"),
}  # fmt: skip

Number = int | float | Decimal
RecordValue = int | float | Decimal | str | None


@dataclass(frozen=True, slots=True)
class Header:
    """The 12-byte header of CI 0x72. `id` is the 8-digit identification number as printed (secondary address)."""

    id: str
    manufacturer: str
    version: int
    medium: int
    access_no: int
    status: int
    signature: int


@dataclass(frozen=True, slots=True)
class Record:
    dif: int
    difes: tuple[int, ...]
    vif: int
    vifes: tuple[int, ...]
    function: str
    storage: int
    tariff: int
    subunit: int
    quantity: str
    unit: str
    value: RecordValue
    raw: bytes  # the data field as received
    vife_names: tuple[str, ...] = ()
    text_unit: str | None = None  # plain-text VIF (0x7C / 0xFC)
    problem: str | None = None  # why `value` is None although data was present
    invalid: bool = False  # the meter itself says "no valid value" (IV bit, "not specified" date, BCD F..F, record error)
    manufacturer_specific: bool = False  # VIF 0x7F or VIFE 0x7F: the data means what the maker says, kept raw


@dataclass(frozen=True, slots=True)
class VariableData:
    header: Header | None
    records: tuple[Record, ...]
    manufacturer_data: bytes = b""
    more_records_follow: bool = False  # DIF 0x1F: send REQ_UD2 again for the rest
    empty: bool = False  # CI 0x72/0x76 with no byte at all: a control frame answering "no data"


@dataclass(frozen=True, slots=True)
class FixedData:
    """CI 0x73 / 0x77, the fixed data structure: two counters with their units."""

    id: str
    access_no: int
    status: int
    medium: str
    records: tuple[Record, ...]
    historic: bool  # status bit 6: the counters are values stored at a fixed date, not current ones


@dataclass(frozen=True, slots=True)
class ApplicationError:
    """CI 0x70: the slave reports an application error instead of data."""

    code: int
    name: str
    extra: bytes = b""  # bytes after the code, undecoded


ApplicationData = VariableData | FixedData | ApplicationError


@dataclass(frozen=True, slots=True)
class Response:
    c: int
    a: int
    ci: int
    data: ApplicationData


def decode_bcd(raw: bytes) -> int:
    """Packed BCD, least significant byte first; a high nibble F in the last byte means negative."""
    digits = raw.hex()  # most significant nibble of each byte first
    text = "".join(digits[i : i + 2] for i in range(len(digits) - 2, -2, -2))
    negative = text[:1] in ("f", "F")
    if negative:
        text = text[1:]
    if not text.isdigit():
        raise ValueError(f"not BCD: {raw.hex(' ')}")
    n = int(text) if text else 0
    return -n if negative else n


def _bcd(raw: bytes) -> tuple[int | None, str | None]:
    """A BCD data field, or None and why: EN 13757-3 gives the hex codes A-F no numeric meaning,
    except F as the top digit (a minus sign); a field of F digits only is "no value"."""
    if raw and all(b == 0xFF for b in raw):
        return None, "no value: every BCD digit is F"
    try:
        return decode_bcd(raw), None
    except ValueError:
        return None, f"not BCD: {raw.hex(' ')} holds a digit A-F (an error code, not a number)"


# Dates and times (EN 13757-3 annex A). Each returns the ISO text, or None and why there is no
# date: the time-invalid bit, a field out of its range (the standard's "not specified" and
# "every ..." codes: day 0, month 0 or 15, year 127, minute 63, hour 31 ...), or no such day.


def _year(y: int, hundred: int = 0) -> int:
    # Meters leave the hundred-year bits at 0; libmbus's pivot (81) maps 0..80 to 20xx.
    if hundred:
        return 1900 + 100 * hundred + y
    return 2000 + y if y < 81 else 1900 + y


def _date(lo: int, hi: int, hundred: int = 0) -> tuple[str | None, str | None]:
    day, month = lo & 0x1F, hi & 0x0F
    y = ((lo >> 5) & 0x07) | ((hi >> 1) & 0x78)
    if not 1 <= day <= 31:
        return None, f"day {day}: not specified"
    if not 1 <= month <= 12:
        return None, f"month {month}: not specified"
    if y > 99:
        return None, f"year {y}: not specified"
    year = _year(y, hundred)
    try:
        return date(year, month, day).isoformat(), None
    except ValueError:
        return None, f"{year:04d}-{month:02d}-{day:02d} is no calendar date"


def _time(second: int | None, minute: int, hour: int) -> tuple[str | None, str | None]:
    if second is not None and second > 59:
        return None, f"second {second}: not specified"
    if minute > 59:
        return None, f"minute {minute}: not specified"
    if hour > 23:
        return None, f"hour {hour}: not specified"
    text = f"{hour:02d}:{minute:02d}"
    return (text if second is None else f"{text}:{second:02d}"), None


def decode_date_g(raw: bytes) -> tuple[str | None, str | None]:
    """Type G (2 bytes): day bits 0-4, month bits 8-11, year bits 5-7 and 12-15."""
    return _date(raw[0], raw[1])


def decode_time_j(raw: bytes) -> tuple[str | None, str | None]:
    """Type J (3 bytes): second, minute, hour; a time of day without a date."""
    return _time(raw[0] & 0x3F, raw[1] & 0x3F, raw[2] & 0x1F)


def decode_date_f(raw: bytes) -> tuple[str | None, str | None]:
    """Type F (4 bytes): minute (bit 7: time invalid), hour (bits 5-6: hundred years), then a type G date."""
    if raw[0] & 0x80:
        return None, "time invalid (IV bit set)"
    day, why = _date(raw[2], raw[3], (raw[1] >> 5) & 0x03)
    if day is None:
        return None, why
    hm, why = _time(None, raw[0] & 0x3F, raw[1] & 0x1F)
    return (None, why) if hm is None else (f"{day}T{hm}", None)


def decode_date_i(raw: bytes) -> tuple[str | None, str | None]:
    """Type I (6 bytes): second, minute (bit 7: time invalid), hour and weekday, type G date, week."""
    if raw[1] & 0x80:
        return None, "time invalid (IV bit set)"
    day, why = _date(raw[3], raw[4])
    if day is None:
        return None, why
    hms, why = _time(raw[0] & 0x3F, raw[1] & 0x3F, raw[2] & 0x1F)
    return (None, why) if hms is None else (f"{day}T{hms}", None)


# a time point's type follows its data field's length (EN 13757-3:2013, VIF 0x6D)
_TIME_POINTS = {2: decode_date_g, 3: decode_time_j, 4: decode_date_f, 6: decode_date_i}


def _scale(n: Number, exp10: int, factor: int) -> Number:
    # dividing by an exact power of ten rounds once: 2013 / 1000 is 2.013, 2013 * 0.001 is not
    n *= factor
    if exp10 >= 0:
        return n * 10**exp10
    if isinstance(n, int) and abs(n) > EXACT_FLOAT_LIMIT:
        return Decimal(n).scaleb(exp10)  # a float would lose digits the meter sent
    return n / 10 ** (-exp10)


def _float32(raw: bytes, big_endian: bool) -> float:
    (f,) = struct.unpack(">f" if big_endian else "<f", raw)
    # shortest decimal that is the same float32: 41.737434, not 41.73743438720703
    for digits in range(6, 10):
        short = float(f"{f:.{digits}g}")
        if struct.pack("<f", short) == struct.pack("<f", f):
            return short
    return f


def _bcd_id(raw: bytes) -> str:
    """An identification number as printed: the BCD digits, most significant first (F wildcards stay F)."""
    return raw[::-1].hex().upper()


def _header(raw: bytes, big_endian: bool) -> Header:
    order: Literal["big", "little"] = "big" if big_endian else "little"
    ident = int.from_bytes(raw[0:4], order)
    return Header(
        id=f"{ident:08X}",
        manufacturer=decode_manufacturer(int.from_bytes(raw[4:6], order)),
        version=raw[6],
        medium=raw[7],
        access_no=raw[8],
        status=raw[9],
        signature=int.from_bytes(raw[10:12], order),
    )


def decode_application_data(ci: int, payload: bytes) -> ApplicationData:
    """The data of a slave's answer, per CI: variable data, the fixed structure, or an application error."""
    if ci == CI_APPLICATION_ERROR:
        code = payload[0] if payload else 0  # "unspecified error, also if the data field is missing"
        name = APPLICATION_ERRORS.get(code, f"reserved error code 0x{code:02X}")
        return ApplicationError(code, name, bytes(payload[1:]))
    if ci in (CI_FIXED, CI_FIXED_MSB):
        return decode_fixed_data(payload, ci == CI_FIXED_MSB)
    return decode_variable_data(ci, payload)


def decode_variable_data(ci: int, payload: bytes) -> VariableData:
    """Header (per CI) and records of a variable-data response."""
    if ci in (CI_VARIABLE, CI_VARIABLE_MSB):
        if not payload:
            # L=3 control frame: RSP_UD with the CI and nothing else; the slave has no data to give
            return VariableData(None, (), empty=True)
        if len(payload) < 12:
            raise MbusDecodeError(f"variable-data header needs 12 bytes, got {len(payload)}")
        header: Header | None = _header(payload[:12], ci == CI_VARIABLE_MSB)
        pos = 12
    elif ci == CI_VARIABLE_NO_HEADER:
        header, pos = None, 0
    else:
        name = {CI_APPLICATION_ERROR: "application error", CI_ALARM: "alarm status",
                CI_FIXED: "fixed data", CI_FIXED_MSB: "fixed data, MSB first"}.get(ci, "not a variable-data response")  # fmt: skip
        raise MbusDecodeError(f"CI 0x{ci:02X} ({name}): only variable data (0x72, 0x76, 0x78) is decoded here")
    big_endian = ci == CI_VARIABLE_MSB
    records: list[Record] = []
    while pos < len(payload):
        dif = payload[pos]
        if dif == DIF_IDLE_FILLER:
            pos += 1
            continue
        if dif in (DIF_MANUFACTURER, DIF_MORE_RECORDS):
            return VariableData(header, tuple(records), bytes(payload[pos + 1 :]), dif == DIF_MORE_RECORDS)
        if dif & 0x0F == 0x0F:
            raise MbusDecodeError(f"DIF 0x{dif:02X} at byte {pos}: reserved special function")
        record, pos = _record(payload, pos, big_endian)
        records.append(record)
    return VariableData(header, tuple(records))


# Fixed data structure (EN 13757-3 annex, m-bus.com 6.2): unit code (6 bits) -> (quantity, unit, exp10)
_FIXED_UNITS: dict[int, tuple[str, str, int]] = {
    0x00: ("TIME_HMS", "HMS", 0), 0x01: ("DATE_DMY", "DMY", 0),
    **{0x02 + i: ("ENERGY_WH", "WH", i) for i in range(3)},
    **{0x05 + i: ("ENERGY_WH", "WH", 3 + i) for i in range(3)},
    **{0x08 + i: ("ENERGY_WH", "WH", 6 + i) for i in range(3)},
    **{0x0B + i: ("ENERGY_J", "J", 3 + i) for i in range(3)},
    **{0x0E + i: ("ENERGY_J", "J", 6 + i) for i in range(3)},
    **{0x11 + i: ("ENERGY_J", "J", 9 + i) for i in range(3)},
    **{0x14 + i: ("POWER_W", "W", i) for i in range(3)},
    **{0x17 + i: ("POWER_W", "W", 3 + i) for i in range(3)},
    **{0x1A + i: ("POWER_W", "W", 6 + i) for i in range(3)},
    **{0x1D + i: ("POWER_J_H", "J_H", 3 + i) for i in range(3)},
    **{0x20 + i: ("POWER_J_H", "J_H", 6 + i) for i in range(3)},
    **{0x23 + i: ("POWER_J_H", "J_H", 9 + i) for i in range(3)},
    **{0x26 + i: ("VOLUME", "M3", i - 6) for i in range(3)},
    **{0x29 + i: ("VOLUME", "M3", i - 3) for i in range(3)},
    **{0x2C + i: ("VOLUME", "M3", i) for i in range(3)},
    **{0x2F + i: ("VOLUME_FLOW", "M3_H", i - 6) for i in range(3)},
    **{0x32 + i: ("VOLUME_FLOW", "M3_H", i - 3) for i in range(3)},
    **{0x35 + i: ("VOLUME_FLOW", "M3_H", i) for i in range(3)},
    0x38: ("TEMPERATURE", "C", -3), 0x39: ("UNITS_FOR_HCA", "HCA", 0), 0x3F: ("DIMENSIONLESS", "NONE", 0),
}  # fmt: skip
_FIXED_SAME_BUT_HISTORIC = 0x3E
FIXED_MEDIUM = (
    "other", "oil", "electricity", "gas", "heat", "steam", "hot_water", "water", "heat_cost_allocator",
    "reserved", "gas_mode_2", "heat_mode_2", "hot_water_mode_2", "water_mode_2", "heat_cost_allocator_mode_2",
    "reserved",
)  # fmt: skip
FIXED_STATUS_BINARY = 0x80  # counters are binary, else BCD
FIXED_STATUS_HISTORIC = 0x40  # counters were stored at a fixed date


def decode_fixed_data(payload: bytes, big_endian: bool = False) -> FixedData:
    """CI 0x73/0x77: id (BCD), access no, status, medium and units, counter 1 and counter 2 (4 bytes each)."""
    if len(payload) != 16:
        raise MbusDecodeError(f"fixed data structure is 16 bytes, got {len(payload)}")

    def field(raw: bytes) -> bytes:
        return raw[::-1] if big_endian else raw

    status = payload[5]
    u1, u2 = payload[6], payload[7]
    historic = bool(status & FIXED_STATUS_HISTORIC)
    records: list[Record] = []
    first: tuple[str, str, int] = _FIXED_UNITS.get(u1 & 0x3F, (UNKNOWN, "NONE", 0))
    for code, raw in ((u1 & 0x3F, field(payload[8:12])), (u2 & 0x3F, field(payload[12:16]))):
        storage = 1 if historic else 0
        if code == _FIXED_SAME_BUT_HISTORIC and records:
            quantity, unit, exp10 = first
            storage = 1
        else:
            quantity, unit, exp10 = _FIXED_UNITS.get(code, (UNKNOWN, "NONE", 0))
        problem: str | None = None
        n: int | None
        if status & FIXED_STATUS_BINARY:
            n = int.from_bytes(raw, "little", signed=True)
        else:
            n, problem = _bcd(raw)
        plain = quantity in (UNKNOWN, "TIME_HMS", "DATE_DMY", "DIMENSIONLESS", "UNITS_FOR_HCA")
        value: RecordValue = None if n is None else (n if plain else _scale(n, exp10, 1))
        records.append(Record(
            dif=0, difes=(), vif=code, vifes=(), function=FUNCTIONS[0], storage=storage, tariff=0, subunit=0,
            quantity=quantity, unit=unit, value=value, raw=bytes(raw), problem=problem, invalid=problem is not None,
        ))  # fmt: skip
    medium = FIXED_MEDIUM[((u1 >> 6) & 0x03) | ((u2 >> 4) & 0x0C)]
    return FixedData(_bcd_id(field(payload[0:4])), payload[4], status, medium, tuple(records), historic)


def _need(payload: bytes, pos: int, n: int, what: str) -> None:
    if pos + n > len(payload):
        raise MbusDecodeError(f"{what} at byte {pos} needs {n} byte(s), {len(payload) - pos} left")


@dataclass(slots=True)
class _Meaning:
    """What the VIF and its VIFEs make of the data field."""

    info: VifInfo
    exp10: int
    names: list[str]
    error: str | None = None
    manufacturer_specific: bool = False


def _meaning(vif: int, vifes: list[int], text_unit: str | None) -> _Meaning:
    info, orthogonal = _value_info(vif, vifes, text_unit)
    m = _Meaning(info, info.exp10, [], manufacturer_specific=info.quantity == "MANUFACTURER_SPECIFIC")
    i = 0
    while i < len(orthogonal):
        vife = orthogonal[i]
        i += 1
        if m.manufacturer_specific:
            m.names.append(f"MANUFACTURER_VIFE_0x{vife & 0x7F:02X}")
            continue
        if vife & 0x7F == VIFE_EXTENSION and i < len(orthogonal):
            m.names.append(combinable_extension(orthogonal[i]).name)
            i += 1
            continue
        e = combinable(vife)
        m.names.append(e.name)
        m.exp10 += e.exp10
        if e.error and m.error is None:
            m.error = e.name
        if e.kind is not None:
            # a date or duration of something: the data is that date or duration, not the VIF's quantity
            m.info = VifInfo(info.quantity, e.unit or info.unit, 0, e.factor, e.kind)
            m.exp10 = 0
        m.manufacturer_specific = vife & 0x7F == VIFE_MANUFACTURER
    return m


def _record(payload: bytes, start: int, big_endian: bool) -> tuple[Record, int]:
    pos = start
    dif = payload[pos]
    pos += 1
    storage, tariff, subunit = (dif >> 6) & 1, 0, 0
    difes: list[int] = []
    ext = dif & 0x80
    while ext:
        _need(payload, pos, 1, "DIFE")
        if len(difes) == MAX_DIFE:
            raise MbusDecodeError(f"record at byte {start}: more than {MAX_DIFE} DIFEs")
        dife = payload[pos]
        pos += 1
        n = len(difes)
        storage |= (dife & 0x0F) << (1 + 4 * n)
        tariff |= ((dife >> 4) & 0x03) << (2 * n)
        subunit |= ((dife >> 6) & 0x01) << n
        difes.append(dife)
        ext = dife & 0x80

    _need(payload, pos, 1, "VIF")
    vif = payload[pos]
    pos += 1
    text_unit: str | None = None
    if vif & 0x7F == 0x7C:
        _need(payload, pos, 1, "plain-text VIF length")
        n = payload[pos]
        _need(payload, pos + 1, n, "plain-text VIF")
        text_unit = payload[pos + 1 : pos + 1 + n][::-1].decode("latin-1")
        pos += 1 + n
    vifes: list[int] = []
    ext = vif & 0x80
    while ext:
        _need(payload, pos, 1, "VIFE")
        if len(vifes) == MAX_VIFE:
            raise MbusDecodeError(f"record at byte {start}: more than {MAX_VIFE} VIFEs")
        vifes.append(payload[pos])
        ext = payload[pos] & 0x80
        pos += 1

    m = _meaning(vif, vifes, text_unit)
    coding = dif & 0x0F
    if coding == 0x0D:
        _need(payload, pos, 1, "LVAR length")
        lvar = payload[pos]
        pos += 1
        size = _lvar_size(lvar, start)
        _need(payload, pos, size, f"LVAR data (0x{lvar:02X})")
        raw = bytes(payload[pos : pos + size])
        pos += size
        value, problem, invalid = _lvar_value(lvar, raw, m.info, m.exp10)
    else:
        size, kind = _CODINGS[coding]
        _need(payload, pos, size, f"data of record at byte {start} (DIF 0x{dif:02X})")
        raw = bytes(payload[pos : pos + size])
        pos += size
        value, problem, invalid = _fixed_value(kind, raw, m.info, m.exp10, big_endian)
    if m.manufacturer_specific and raw:
        # what the data means is the manufacturer's: no signed or unsigned reading of it is a value
        value, problem, invalid = None, None, False
    elif m.error is not None:
        value, problem, invalid = None, f"the meter flags this record: {m.error}", True

    return (
        Record(
            dif=dif,
            difes=tuple(difes),
            vif=vif,
            vifes=tuple(vifes),
            function=FUNCTIONS[(dif >> 4) & 0x03],
            storage=storage,
            tariff=tariff,
            subunit=subunit,
            quantity=m.info.quantity,
            unit=m.info.unit,
            value=value,
            raw=raw,
            vife_names=tuple(m.names),
            text_unit=text_unit,
            problem=problem,
            invalid=invalid,
            manufacturer_specific=m.manufacturer_specific,
        ),
        pos,
    )


def _value_info(vif: int, vifes: list[int], text_unit: str | None) -> tuple[VifInfo, list[int]]:
    """What the VIF means, and the VIFEs left to read as combinable (orthogonal) extensions."""
    base = vif & 0x7F
    if base in (0x7B, 0x7D):
        if not vifes:
            return VifInfo(UNKNOWN, "NONE", kind=Kind.CODE), []
        table = extension_fb if base == 0x7B else extension_fd
        return table(vifes[0]), vifes[1:]
    if base == 0x7C:
        return VifInfo("PLAIN_TEXT_UNIT", text_unit or "NONE"), vifes
    if base == 0x7E:
        return VifInfo("ANY_VIF", "NONE", kind=Kind.CODE), vifes
    if base == 0x7F:
        return VifInfo("MANUFACTURER_SPECIFIC", "NONE", kind=Kind.CODE), vifes
    return primary(vif), vifes


def _lvar_size(lvar: int, start: int) -> int:
    """Data bytes after an LVAR byte (EN 13757-3 table 5): text, BCD (+/-), binary; F7..FF reserved."""
    if lvar <= 0xBF:
        return lvar
    if lvar <= 0xDF:
        return lvar & 0x0F  # (LVAR - C0h) or (LVAR - D0h) bytes of 2 digits each
    if lvar <= 0xEF:
        return lvar - 0xE0
    if lvar <= 0xF4:
        return 4 * (lvar - 0xEC)
    if lvar == 0xF5:
        return 48
    if lvar == 0xF6:
        return 64
    raise MbusDecodeError(f"record at byte {start}: LVAR 0x{lvar:02X} is reserved")


_Decoded = tuple[RecordValue, str | None, bool]  # value, why there is none, whether the meter says "invalid"


def _lvar_value(lvar: int, raw: bytes, info: VifInfo, exp10: int) -> _Decoded:
    if lvar <= 0xBF:
        return raw[::-1].decode("latin-1"), None, False  # characters are sent last one first
    if not raw:
        return None, f"LVAR 0x{lvar:02X}: a number of no digits", False
    n: int | None
    if lvar <= 0xDF:
        n, problem = _bcd(raw)
        if n is None:
            return None, problem, True
        if lvar >= 0xD0:
            n = -n
    else:
        n = int.from_bytes(raw, "little", signed=info.kind is Kind.NUMBER)
    return _number(n, info, exp10)


def _number(n: int, info: VifInfo, exp10: int) -> _Decoded:
    if info.kind is Kind.NUMBER:
        return _scale(n, exp10, info.factor), None, False
    if info.kind is Kind.CODE:
        return n, None, False
    return None, f"a date or time is no {n.bit_length()}-bit number", False


def _fixed_value(kind: str, raw: bytes, info: VifInfo, exp10: int, big_endian: bool) -> _Decoded:
    if kind == "none":
        return None, None, False
    if info.kind is Kind.DATE or info.kind is Kind.DATE_TIME:
        if kind != "int":
            return None, f"a date or time is coded as an integer (type G, J, F or I), not {kind}", False
        decoder = _TIME_POINTS.get(len(raw)) if info.kind is Kind.DATE_TIME else (
            decode_date_g if len(raw) == 2 else None)  # fmt: skip
        if decoder is None:
            sizes = "a date (type G) is 2 bytes" if info.kind is Kind.DATE else (
                "a time point is 2, 3, 4 or 6 bytes (types G, J, F, I)")  # fmt: skip
            return None, f"{sizes}, got {len(raw)}", False
        text, why = decoder(raw[::-1] if big_endian else raw)
        return text, why, why is not None
    order: Literal["big", "little"] = "big" if big_endian else "little"
    if kind == "real":
        f = _float32(raw, big_endian)
        if not math.isfinite(f):
            return None, f"float32 {f}: no value", True
        if info.kind is not Kind.NUMBER:
            return f, None, False
        return _scale(f, exp10, info.factor), None, False
    n: int | None
    if kind == "bcd":
        n, problem = _bcd(raw[::-1] if big_endian else raw)
        if n is None:
            return None, problem, True
    else:
        n = int.from_bytes(raw, order, signed=info.kind is Kind.NUMBER)
    return _number(n, info, exp10)


def decode_response(raw: bytes) -> Response:
    """One RSP_UD frame from a slave (as received), its data fully decoded."""
    t = decode_telegram(raw)
    if isinstance(t, Ack):
        raise MbusDecodeError("single character E5 (ACK): no data to decode")
    if isinstance(t, ShortFrame):
        raise MbusDecodeError(f"short frame C=0x{t.c:02X} A={t.a}: a request, not a response")
    if not is_response(t.c):
        raise MbusDecodeError(f"C=0x{t.c:02X} is not RSP_UD (0x08 with ACD/DFC bits)")
    return Response(t.c, t.a, t.ci, decode_application_data(t.ci, t.data))
