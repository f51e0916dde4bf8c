"""M-Bus encoder: the inverse of `records`, for the simulated meters and the round-trip tests."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import date, datetime
from enum import IntEnum

from drivers.mbus.frame import C_RSP_UD, encode_long
from drivers.mbus.manufacturer import encode_manufacturer
from drivers.mbus.records import CI_VARIABLE, DIF_MANUFACTURER, DIF_MORE_RECORDS, Header


class Coding(IntEnum):
    """Data field coding, DIF bits 0-3."""

    NONE = 0x0
    INT8 = 0x1
    INT16 = 0x2
    INT24 = 0x3
    INT32 = 0x4
    REAL32 = 0x5
    INT48 = 0x6
    INT64 = 0x7
    BCD2 = 0x9
    BCD4 = 0xA
    BCD6 = 0xB
    BCD8 = 0xC
    LVAR = 0xD
    BCD12 = 0xE


INT_SIZES = {
    Coding.INT8: 1,
    Coding.INT16: 2,
    Coding.INT24: 3,
    Coding.INT32: 4,
    Coding.INT48: 6,
    Coding.INT64: 8,
}
BCD_SIZES = {Coding.BCD2: 1, Coding.BCD4: 2, Coding.BCD6: 3, Coding.BCD8: 4, Coding.BCD12: 6}


def encode_bcd(value: int, size: int) -> bytes:
    """Packed BCD, least significant byte first; negative values put F in the top nibble."""
    digits = 2 * size - (1 if value < 0 else 0)
    text = f"{abs(value):0{digits}d}"
    if len(text) > digits:
        raise ValueError(f"{value} does not fit in {size} BCD byte(s)")
    if value < 0:
        text = "F" + text
    return bytes.fromhex(text)[::-1]


def encode_date_g(d: date) -> int:
    y = d.year % 100
    return d.day | ((y & 0x07) << 5) | (d.month << 8) | ((y >> 3) << 12)


def encode_date_f(t: datetime) -> int:
    return t.minute | (t.hour << 8) | (encode_date_g(t.date()) << 16)


def encode_record(
    vib: bytes,
    value: int | float | str | None,
    coding: Coding,
    *,
    storage: int = 0,
    tariff: int = 0,
    subunit: int = 0,
    function: int = 0,
) -> bytes:
    """One data record. `vib` is the VIF and its VIFEs with their extension bits already set."""
    difes = bytearray()
    rest_storage, rest_tariff, rest_subunit = storage >> 1, tariff, subunit
    while rest_storage or rest_tariff or rest_subunit:
        difes.append((rest_storage & 0x0F) | ((rest_tariff & 0x03) << 4) | ((rest_subunit & 0x01) << 6))
        rest_storage, rest_tariff, rest_subunit = rest_storage >> 4, rest_tariff >> 2, rest_subunit >> 1
    for i in range(len(difes) - 1):
        difes[i] |= 0x80
    dif = int(coding) | ((function & 0x03) << 4) | ((storage & 1) << 6) | (0x80 if difes else 0)
    return bytes((dif,)) + bytes(difes) + vib + _data(value, coding)


def _data(value: int | float | str | None, coding: Coding) -> bytes:
    if coding is Coding.NONE:
        return b""
    if coding is Coding.REAL32:
        if not isinstance(value, int | float):
            raise ValueError("REAL32 needs a number")
        return struct.pack("<f", value)
    if coding is Coding.LVAR:
        if not isinstance(value, str) or len(value) > 0xBF:
            raise ValueError("LVAR needs a string of at most 191 characters")
        return bytes((len(value),)) + value.encode("latin-1")[::-1]
    if not isinstance(value, int):
        raise ValueError(f"{coding.name} needs an integer")
    if coding in BCD_SIZES:
        return encode_bcd(value, BCD_SIZES[coding])
    return value.to_bytes(INT_SIZES[coding], "little", signed=value < 0)


def encode_header(h: Header) -> bytes:
    return (
        int(h.id, 16).to_bytes(4, "little")
        + encode_manufacturer(h.manufacturer).to_bytes(2, "little")
        + bytes((h.version, h.medium, h.access_no, h.status))
        + h.signature.to_bytes(2, "little")
    )


def encode_response(
    address: int,
    header: Header,
    records: Sequence[bytes],
    *,
    more_records_follow: bool = False,
    manufacturer_data: bytes = b"",
    c: int = C_RSP_UD,
) -> bytes:
    """A whole RSP_UD long frame, CI 0x72."""
    payload = encode_header(header) + b"".join(records)
    if more_records_follow:
        payload += bytes((DIF_MORE_RECORDS,)) + manufacturer_data
    elif manufacturer_data:
        payload += bytes((DIF_MANUFACTURER,)) + manufacturer_data
    return encode_long(c, address, CI_VARIABLE, payload)
