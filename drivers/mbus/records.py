"""M-Bus application layer (EN 13757-3): the variable-data header and its DIF/DIFE/VIF/VIFE data records.

A record that cannot be understood (unknown VIF, odd data) is still returned, with quantity
UNKNOWN_VIF or a `problem`; only bytes that break the record structure itself (a record running
past the end, a reserved DIF) raise MbusDecodeError.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from drivers.mbus.frame import Ack, MbusDecodeError, ShortFrame, decode_telegram, is_response
from drivers.mbus.manufacturer import decode_manufacturer
from drivers.mbus.vif import UNKNOWN, Kind, VifInfo, combinable, extension_fb, extension_fd, primary

CI_VARIABLE = 0x72
CI_VARIABLE_MSB = 0x76
CI_VARIABLE_NO_HEADER = 0x78
_CI_NAMES = {
    0x70: "application error",
    0x71: "alarm status",
    0x73: "fixed data",
    0x77: "fixed data, MSB first",
}

FUNCTIONS = ("INSTANTANEOUS_VALUE", "MAXIMUM_VALUE", "MINIMUM_VALUE", "ERROR_STATE_VALUE")

DIF_MANUFACTURER = 0x0F
DIF_MORE_RECORDS = 0x1F
DIF_IDLE_FILLER = 0x2F
MAX_DIFE = 10
MAX_VIFE = 10

# data field coding (DIF bits 0-3) -> (length, kind); 0x0D (LVAR) and 0x0F (special) handled apart
_CODINGS: dict[int, tuple[int, str]] = {
    0x0: (0, "none"), 0x1: (1, "int"), 0x2: (2, "int"), 0x3: (3, "int"), 0x4: (4, "int"),
    0x5: (4, "real"), 0x6: (6, "int"), 0x7: (8, "int"), 0x8: (0, "none"),
    0x9: (1, "bcd"), 0xA: (2, "bcd"), 0xB: (3, "bcd"), 0xC: (4, "bcd"), 0xE: (6, "bcd"),
}  # fmt: skip

Number = int | float
RecordValue = int | float | str | None


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


@dataclass(frozen=True, slots=True)
class VariableData:
    header: Header | None
    records: tuple[Record, ...]
    manufacturer_data: bytes = b""
    more_records_follow: bool = False  # DIF 0x1F: send REQ_UD2 again for the rest


@dataclass(frozen=True, slots=True)
class Response:
    c: int
    a: int
    ci: int
    data: VariableData


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


def _year(y: int, hundred: int = 0) -> int:
    # Meters leave the hundred-year bits at 0; libmbus's pivot (81) maps 0..80 to 20xx.
    if hundred:
        return 1900 + 100 * hundred + y
    return 2000 + y if y < 81 else 1900 + y


def _date_g(v: int, hundred: int = 0) -> str:
    day, month = v & 0x1F, (v >> 8) & 0x0F
    year = ((v >> 5) & 0x07) | ((v >> 9) & 0x78)
    return f"{_year(year, hundred):04d}-{month:02d}-{day:02d}"


def decode_date_g(v: int) -> str:
    """Type G: day bits 0-4, month bits 8-11, year bits 5-7 and 12-15. Not validated: "2000-00-00" occurs."""
    return _date_g(v)


def decode_date_f(v: int) -> str:
    """Type F: minute, hour (with the hundred-year bits 5-6), then a type G date."""
    minute, hour = v & 0x3F, (v >> 8) & 0x1F
    return f"{_date_g(v >> 16, (v >> 13) & 0x03)}T{hour:02d}:{minute:02d}"


def decode_date_i(v: int) -> str:
    """Type I (6 bytes): seconds, then type F."""
    second = v & 0x3F
    return f"{decode_date_f(v >> 8)}:{second:02d}"


def _scale(n: Number, exp10: int, factor: int) -> Number:
    # dividing by an exact power of ten rounds once: 2013 / 1000 is 2.013, 2013 * 0.001 is not
    n *= factor
    return n * 10**exp10 if exp10 >= 0 else n / 10 ** (-exp10)


def _float32(raw: bytes, big_endian: bool) -> float:
    (f,) = struct.unpack(">f" if big_endian else "<f", raw)
    # shortest decimal that is the same float32: 41.737434, not 41.73743438720703
    for digits in range(6, 10):
        short = float(f"{f:.{digits}g}")
        if struct.pack("<f", short) == struct.pack("<f", f):
            return short
    return f


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


def decode_variable_data(ci: int, payload: bytes) -> VariableData:
    """Header (per CI) and records of a variable-data response."""
    if ci in (CI_VARIABLE, CI_VARIABLE_MSB):
        if len(payload) < 12:
            raise MbusDecodeError(f"variable-data header needs 12 bytes, got {len(payload)}")
        header: Header | None = _header(payload[:12], ci == CI_VARIABLE_MSB)
        pos = 12
    elif ci == CI_VARIABLE_NO_HEADER:
        header, pos = None, 0
    else:
        name = _CI_NAMES.get(ci, "not a variable-data response")
        raise MbusDecodeError(f"CI 0x{ci:02X} ({name}): only variable data (0x72, 0x76, 0x78) is decoded")
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


def _need(payload: bytes, pos: int, n: int, what: str) -> None:
    if pos + n > len(payload):
        raise MbusDecodeError(f"{what} at byte {pos} needs {n} byte(s), {len(payload) - pos} left")


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

    info, orthogonal = _value_info(vif, vifes, text_unit)
    names: list[str] = []
    exp10 = info.exp10
    manufacturer_vifes = False
    for vife in orthogonal:
        if manufacturer_vifes:
            names.append(f"MANUFACTURER_VIFE_0x{vife:02X}")
            continue
        name, extra = combinable(vife)
        names.append(name)
        exp10 += extra
        manufacturer_vifes = vife & 0x7F == 0x7F

    coding = dif & 0x0F
    if coding == 0x0D:
        _need(payload, pos, 1, "LVAR length")
        lvar = payload[pos]
        pos += 1
        size = _lvar_size(lvar, start)
        _need(payload, pos, size, f"LVAR data (0x{lvar:02X})")
        raw = bytes(payload[pos : pos + size])
        pos += size
        value, problem = _lvar_value(lvar, raw)
    else:
        size, kind = _CODINGS[coding]
        _need(payload, pos, size, f"data of record at byte {start} (DIF 0x{dif:02X})")
        raw = bytes(payload[pos : pos + size])
        pos += size
        value, problem = _fixed_value(kind, raw, info, exp10, big_endian)

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
            quantity=info.quantity,
            unit=info.unit,
            value=value,
            raw=raw,
            vife_names=tuple(names),
            text_unit=text_unit,
            problem=problem,
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
        return VifInfo("MANUFACTURER_SPECIFIC", "NONE", kind=Kind.CODE), []
    return primary(vif), vifes


def _lvar_size(lvar: int, start: int) -> int:
    if lvar <= 0xBF:
        return lvar
    if 0xC0 <= lvar <= 0xCF or 0xD0 <= lvar <= 0xDF:
        return lvar & 0x0F
    if 0xE0 <= lvar <= 0xEF:
        return lvar - 0xE0
    if 0xF0 <= lvar <= 0xF4:
        return 4 * (lvar - 0xEC)
    if lvar == 0xF5:
        return 48
    if lvar == 0xF6:
        return 64
    raise MbusDecodeError(f"record at byte {start}: LVAR 0x{lvar:02X} is reserved")


def _lvar_value(lvar: int, raw: bytes) -> tuple[RecordValue, str | None]:
    if lvar <= 0xBF:
        return raw[::-1].decode("latin-1"), None  # characters are sent last one first
    if lvar <= 0xDF:
        try:
            n = decode_bcd(raw)
        except ValueError as exc:
            return None, str(exc)
        return (-n if lvar >= 0xD0 else n), None
    return int.from_bytes(raw, "little"), None


def _fixed_value(
    kind: str, raw: bytes, info: VifInfo, exp10: int, big_endian: bool
) -> tuple[RecordValue, str | None]:
    if kind == "none":
        return None, None
    order: Literal["big", "little"] = "big" if big_endian else "little"
    if kind == "real":
        f = _float32(raw, big_endian)
        if info.kind is not Kind.NUMBER:
            return f, None
        return _scale(f, exp10, info.factor), None
    if kind == "bcd":
        try:
            n = decode_bcd(raw[::-1] if big_endian else raw)
        except ValueError as exc:
            return None, str(exc)
    else:
        n = int.from_bytes(raw, order, signed=info.kind is Kind.NUMBER)
    if info.kind is Kind.DATE:
        if len(raw) != 2:
            return None, f"a type G date is 2 bytes, got {len(raw)}"
        return decode_date_g(n), None
    if info.kind is Kind.DATE_TIME:
        if len(raw) == 4:
            return decode_date_f(n), None
        if len(raw) == 6:
            return decode_date_i(n), None
        return None, f"a type F date-time is 4 bytes (type I: 6), got {len(raw)}"
    if info.kind is Kind.CODE:
        return n, None
    return _scale(n, exp10, info.factor), None


def decode_response(raw: bytes) -> Response:
    """One RSP_UD long frame with variable data (as received from the slave), fully decoded."""
    t = decode_telegram(raw)
    if isinstance(t, Ack):
        raise MbusDecodeError("single character E5 (ACK): no data to decode")
    if isinstance(t, ShortFrame):
        raise MbusDecodeError(f"short frame C=0x{t.c:02X} A={t.a}: a request, not a response")
    if not is_response(t.c):
        raise MbusDecodeError(f"C=0x{t.c:02X} is not RSP_UD (0x08 with ACD/DFC bits)")
    return Response(t.c, t.a, t.ci, decode_variable_data(t.ci, t.data))
