"""RuuviTag data format 5 (RAWv2): pure decoder and encoder, no I/O.

The payload is bleak's ``manufacturer_data[0x0499]``: 24 big-endian bytes starting with the
format byte 5. Every field has a "not available" code; it decodes to None, never to a number
(ruuvitag-sensor turns some of them into numbers, which is why we decode ourselves).
Source: ruuvi/ruuvi-sensor-protocols, dataformat_05.md.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from drivers.errors import DecodeError
from drivers.model import Value

MANUFACTURER_ID = 0x0499
DATA_FORMAT = 5
LENGTH = 24

_LAYOUT = struct.Struct(">BhHHhhhHBH6s")

_NA_TEMPERATURE = -0x8000
_NA_U16 = 0xFFFF
_NA_ACCELERATION = -0x8000
_NA_BATTERY = 2047
_NA_TX_POWER = 31
_NA_MOVEMENT = 255
_NA_SEQUENCE = 65535
_NA_MAC = b"\xff" * 6


class RuuviReading(NamedTuple):
    """One RAWv2 measurement in the format's own units; None where the tag said "not available"."""

    temperature_c: float | None  # 0.005 °C steps, ±163.835
    humidity_pct: float | None  # 0.0025 % steps, 0-163.8375
    pressure_pa: int | None  # 50000-115534 Pa
    acceleration_x_mg: int | None
    acceleration_y_mg: int | None
    acceleration_z_mg: int | None
    battery_mv: int | None  # 1600-3646 mV
    tx_power_dbm: int | None  # -40..+20 dBm, 2 dBm steps
    movement_count: int | None  # 0-254, rolls over
    sequence: int | None  # measurement sequence number 0-65534, for de-duplication
    mac: str | None  # "cb:b8:33:4c:88:4f"

    def sample_values(self) -> dict[str, Value]:
        """The reading as the project's quantities: hPa, g and V like the other sensors."""
        p, b = self.pressure_pa, self.battery_mv
        return {
            "temperature_c": self.temperature_c,
            "humidity_pct": self.humidity_pct,
            "pressure_hpa": None if p is None else p / 100,
            "acceleration_x_g": _g(self.acceleration_x_mg),
            "acceleration_y_g": _g(self.acceleration_y_mg),
            "acceleration_z_g": _g(self.acceleration_z_mg),
            "battery_v": None if b is None else b / 1000,
            "tx_power_dbm": self.tx_power_dbm,
            "movement_count": self.movement_count,
        }


#: Unit of each RuuviReading field, for people.
UNITS: dict[str, str] = {
    "temperature_c": "°C",
    "humidity_pct": "%RH",
    "pressure_pa": "Pa",
    "acceleration_x_mg": "mG",
    "acceleration_y_mg": "mG",
    "acceleration_z_mg": "mG",
    "battery_mv": "mV",
    "tx_power_dbm": "dBm",
    "movement_count": "",
    "sequence": "",
    "mac": "",
}


def _g(mg: int | None) -> float | None:
    return None if mg is None else mg / 1000


def decode(data: bytes) -> RuuviReading:
    """Decode one 24-byte RAWv2 payload; DecodeError says what is wrong."""
    if len(data) != LENGTH:
        raise DecodeError(f"Ruuvi RAWv2 payload is {LENGTH} bytes, got {len(data)}")
    fmt, t, h, p, ax, ay, az, power, move, seq, mac = _LAYOUT.unpack(data)
    if fmt != DATA_FORMAT:
        raise DecodeError(f"Ruuvi data format {fmt}, only format {DATA_FORMAT} (RAWv2) is supported")
    battery = power >> 5
    tx = power & 0x1F
    return RuuviReading(
        temperature_c=None if t == _NA_TEMPERATURE else t / 200,
        humidity_pct=None if h == _NA_U16 else h / 400,
        pressure_pa=None if p == _NA_U16 else p + 50_000,
        acceleration_x_mg=None if ax == _NA_ACCELERATION else ax,
        acceleration_y_mg=None if ay == _NA_ACCELERATION else ay,
        acceleration_z_mg=None if az == _NA_ACCELERATION else az,
        battery_mv=None if battery == _NA_BATTERY else battery + 1600,
        tx_power_dbm=None if tx == _NA_TX_POWER else tx * 2 - 40,
        movement_count=None if move == _NA_MOVEMENT else move,
        sequence=None if seq == _NA_SEQUENCE else seq,
        mac=None if mac == _NA_MAC else mac.hex(":"),
    )


def encode(r: RuuviReading) -> bytes:
    """The 24 payload bytes of a reading (None -> "not available"); ValueError if a value cannot be sent."""

    def raw(name: str, value: float | None, scale: int, offset: int, lo: int, hi: int, na: int) -> int:
        if value is None:
            return na
        n = round((value - offset) * scale)
        if not lo <= n <= hi:
            raise ValueError(f"{name} = {value} is outside what RAWv2 can carry")
        return n

    tx = raw("tx_power_dbm", r.tx_power_dbm, 1, -40, 0, 60, _NA_TX_POWER * 2)
    if tx % 2:
        raise ValueError(f"tx_power_dbm = {r.tx_power_dbm}: RAWv2 carries even dBm values only")
    if r.mac is None:
        mac = _NA_MAC
    else:
        mac = bytes.fromhex(r.mac.replace(":", ""))
        if len(mac) != 6:
            raise ValueError(f"mac = {r.mac!r} is not 6 bytes")
    power = raw("battery_mv", r.battery_mv, 1, 1600, 0, 2046, _NA_BATTERY) << 5 | tx // 2
    return _LAYOUT.pack(
        DATA_FORMAT,
        raw("temperature_c", r.temperature_c, 200, 0, -0x7FFF, 0x7FFF, _NA_TEMPERATURE),
        raw("humidity_pct", r.humidity_pct, 400, 0, 0, 0xFFFE, _NA_U16),
        raw("pressure_pa", r.pressure_pa, 1, 50_000, 0, 0xFFFE, _NA_U16),
        raw("acceleration_x_mg", r.acceleration_x_mg, 1, 0, -0x7FFF, 0x7FFF, _NA_ACCELERATION),
        raw("acceleration_y_mg", r.acceleration_y_mg, 1, 0, -0x7FFF, 0x7FFF, _NA_ACCELERATION),
        raw("acceleration_z_mg", r.acceleration_z_mg, 1, 0, -0x7FFF, 0x7FFF, _NA_ACCELERATION),
        power,
        raw("movement_count", r.movement_count, 1, 0, 0, 254, _NA_MOVEMENT),
        raw("sequence", r.sequence, 1, 0, 0, 65534, _NA_SEQUENCE),
        mac,
    )
