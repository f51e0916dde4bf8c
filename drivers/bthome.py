"""BTHome v2 service data (BLE advertisement, UUID 0xFCD2): pure decoder and encoder, no I/O.

The payload is what bleak gives in ``service_data[SERVICE_UUID]``: the device-info byte, then
objects ``id | value (little-endian)``. Objects are read in order up to the first one that cannot
be: an id this table does not know (its length is unknown, so nothing after it can be found),
an object cut short by the end of the payload, a text that is not UTF-8, a binary value other
than 0/1. The objects before it are kept and the rest is reported (``BTHomeFrame.error``, an
``ObjectError``), whatever the cause. Only a payload whose header or encryption is wrong
raises DecodeError.
Encrypted payloads (device info bit 0) are ``info | ciphertext | counter (4, LE) | MIC (4)``,
AES-128-CCM with the nonce ``MAC (6) | d2 fc | info | counter``.

Quantity names carry their unit (``temperature_c``, ``humidity_pct``, ``energy_wh`` ...). BTHome
energy is sent in 0.001 kWh steps, which is exactly 1 Wh, so it becomes ``energy_wh`` like every
other driver's energy. Repeated objects of one quantity get a postfix before the unit
(``temperature_c``, ``temperature_2_c``), in payload order, as BTHome receivers number them.
Object table: bthome.io/format, with the later objects (0x60-0x64) from the reference receiver
bthome-ble; 0x5F precipitation uses its factor 0.1 (an older format page said 1).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from drivers.errors import DecodeError
from drivers.model import Value

SERVICE_UUID = "0000fcd2-0000-1000-8000-00805f9b34fb"
UUID16_LE = b"\xd2\xfc"
VERSION = 2
INFO_ENCRYPTED = 0x01
INFO_MAC_INCLUDED = 0x02
INFO_TRIGGER = 0x04
_COUNTER_LEN = 4
_MIC_LEN = 4


class EncryptedPayloadError(DecodeError):
    """The payload is encrypted and no bindkey (or no MAC for the nonce) was given."""


class AuthenticationError(DecodeError):
    """AES-CCM refused the payload: wrong bindkey, wrong MAC, or bytes altered on the way."""


class Kind(Enum):
    UINT = "uint"
    SINT = "sint"
    BOOL = "bool"
    BUTTON = "button"
    DIMMER = "dimmer"
    TEXT = "text"
    RAW = "raw"
    FIRMWARE = "firmware"


@dataclass(frozen=True, slots=True)
class ObjectType:
    """One row of the BTHome object table. value = raw * num / den, in `unit`."""

    object_id: int
    prop: str  # the BTHome property name, as BTHome receivers key it ("temperature", "dew_point")
    base: str  # our quantity name without unit
    suffix: str  # unit suffix of the quantity name ("c" -> temperature_c), "" when unitless
    unit: str  # unit for people ("°C")
    kind: Kind
    size: int  # value bytes; 0 for text/raw, which carry a length byte
    num: int = 1
    den: int = 1

    @property
    def name(self) -> str:
        return self.quantity(1)

    def quantity(self, n: int) -> str:
        """Quantity name of the n-th object of this quantity in one payload."""
        base = self.base if n == 1 else f"{self.base}_{n}"
        return f"{base}_{self.suffix}" if self.suffix else base


_U, _S, _B = Kind.UINT, Kind.SINT, Kind.BOOL


def _rows() -> Iterable[ObjectType]:
    numeric: list[tuple[int, str, str, str, str, Kind, int, int, int]] = [
        (0x00, "packet_id", "packet_id", "", "", _U, 1, 1, 1),
        (0x01, "battery", "battery", "pct", "%", _U, 1, 1, 1),
        (0x02, "temperature", "temperature", "c", "°C", _S, 2, 1, 100),
        (0x03, "humidity", "humidity", "pct", "%", _U, 2, 1, 100),
        (0x04, "pressure", "pressure", "hpa", "hPa", _U, 3, 1, 100),
        (0x05, "illuminance", "illuminance", "lx", "lx", _U, 3, 1, 100),
        (0x06, "mass", "mass", "kg", "kg", _U, 2, 1, 100),
        (0x07, "mass", "mass", "lb", "lb", _U, 2, 1, 100),
        (0x08, "dew_point", "dew_point", "c", "°C", _S, 2, 1, 100),
        (0x09, "count", "count", "", "", _U, 1, 1, 1),
        (0x0A, "energy", "energy", "wh", "Wh", _U, 3, 1, 1),
        (0x0B, "power", "power", "w", "W", _U, 3, 1, 100),
        (0x0C, "voltage", "voltage", "v", "V", _U, 2, 1, 1000),
        (0x0D, "pm25", "pm25", "ugm3", "µg/m³", _U, 2, 1, 1),
        (0x0E, "pm10", "pm10", "ugm3", "µg/m³", _U, 2, 1, 1),
        (0x12, "carbon_dioxide", "co2", "ppm", "ppm", _U, 2, 1, 1),
        (0x13, "volatile_organic_compounds", "tvoc", "ugm3", "µg/m³", _U, 2, 1, 1),
        (0x14, "moisture", "moisture", "pct", "%", _U, 2, 1, 100),
        (0x2E, "humidity", "humidity", "pct", "%", _U, 1, 1, 1),
        (0x2F, "moisture", "moisture", "pct", "%", _U, 1, 1, 1),
        (0x3D, "count", "count", "", "", _U, 2, 1, 1),
        (0x3E, "count", "count", "", "", _U, 4, 1, 1),
        (0x3F, "rotation", "rotation", "deg", "°", _S, 2, 1, 10),
        (0x40, "distance", "distance", "mm", "mm", _U, 2, 1, 1),
        (0x41, "distance", "distance", "m", "m", _U, 2, 1, 10),
        (0x42, "duration", "duration", "s", "s", _U, 3, 1, 1000),
        (0x43, "current", "current", "a", "A", _U, 2, 1, 1000),
        (0x44, "speed", "speed", "mps", "m/s", _U, 2, 1, 100),
        (0x45, "temperature", "temperature", "c", "°C", _S, 2, 1, 10),
        (0x46, "uv_index", "uv_index", "", "", _U, 1, 1, 10),
        (0x47, "volume", "volume", "l", "L", _U, 2, 1, 10),
        (0x48, "volume", "volume", "ml", "mL", _U, 2, 1, 1),
        (0x49, "volume_flow_rate", "flow", "m3h", "m³/h", _U, 2, 1, 1000),
        (0x4A, "voltage", "voltage", "v", "V", _U, 2, 1, 10),
        (0x4B, "gas", "gas", "m3", "m³", _U, 3, 1, 1000),
        (0x4C, "gas", "gas", "m3", "m³", _U, 4, 1, 1000),
        (0x4D, "energy", "energy", "wh", "Wh", _U, 4, 1, 1),
        (0x4E, "volume", "volume", "l", "L", _U, 4, 1, 1000),
        (0x4F, "water", "water", "l", "L", _U, 4, 1, 1000),
        (0x50, "timestamp", "timestamp", "s", "s (UTC epoch)", _U, 4, 1, 1),
        (0x51, "acceleration", "acceleration", "ms2", "m/s²", _U, 2, 1, 1000),
        (0x52, "gyroscope", "gyroscope", "dps", "°/s", _U, 2, 1, 1000),
        (0x55, "volume_storage", "volume_storage", "l", "L", _U, 4, 1, 1000),
        (0x56, "conductivity", "conductivity", "uscm", "µS/cm", _U, 2, 1, 1),
        (0x57, "temperature", "temperature", "c", "°C", _S, 1, 1, 1),
        (0x58, "temperature", "temperature", "c", "°C", _S, 1, 35, 100),
        (0x59, "count", "count", "", "", _S, 1, 1, 1),
        (0x5A, "count", "count", "", "", _S, 2, 1, 1),
        (0x5B, "count", "count", "", "", _S, 4, 1, 1),
        (0x5C, "power", "power", "w", "W", _S, 4, 1, 100),
        (0x5D, "current", "current", "a", "A", _S, 2, 1, 1000),
        (0x5E, "direction", "direction", "deg", "°", _U, 2, 1, 100),
        (0x5F, "precipitation", "precipitation", "mm", "mm", _U, 2, 1, 10),
        (0x60, "channel", "channel", "", "", _U, 1, 1, 1),
        (0x61, "rotational_speed", "rotational_speed", "rpm", "rpm", _U, 2, 1, 1),
        (0x62, "speed", "speed", "mps", "m/s", _S, 4, 1, 1_000_000),
        (0x63, "acceleration", "acceleration", "ms2", "m/s²", _S, 4, 1, 1_000_000),
        (0x64, "light_level", "light_level", "", "0 dark, 1 twilight, 2 bright", _U, 1, 1, 1),
        (0xF0, "device_type_id", "device_type_id", "", "", _U, 2, 1, 1),
    ]
    for oid, prop, base, suffix, unit, kind, size, num, den in numeric:
        yield ObjectType(oid, prop, base, suffix, unit, kind, size, num, den)
    binary = [
        (0x0F, "generic", "generic"),
        (0x10, "power", "power_on"),
        (0x11, "opening", "opening"),
        (0x15, "battery", "battery_low"),
        (0x16, "battery_charging", "battery_charging"),
        (0x17, "carbon_monoxide", "co_detected"),
        (0x18, "cold", "cold"),
        (0x19, "connectivity", "connected"),
        (0x1A, "door", "door_open"),
        (0x1B, "garage_door", "garage_door_open"),
        (0x1C, "gas", "gas_detected"),
        (0x1D, "heat", "heat"),
        (0x1E, "light", "light_detected"),
        (0x1F, "lock", "unlocked"),  # the spec's lock sensor is 1 = unlocked
        (0x20, "moisture", "wet"),
        (0x21, "motion", "motion"),
        (0x22, "moving", "moving"),
        (0x23, "occupancy", "occupancy"),
        (0x24, "plug", "plugged_in"),
        (0x25, "presence", "presence"),
        (0x26, "problem", "problem"),
        (0x27, "running", "running"),
        (0x28, "safety", "safe"),
        (0x29, "smoke", "smoke"),
        (0x2A, "sound", "sound"),
        (0x2B, "tamper", "tamper"),
        (0x2C, "vibration", "vibration"),
        (0x2D, "window", "window_open"),
    ]
    for oid, prop, base in binary:
        yield ObjectType(oid, prop, base, "", "", _B, 1)
    yield ObjectType(0x3A, "button", "button", "", "", Kind.BUTTON, 1)
    yield ObjectType(0x3C, "dimmer", "dimmer", "", "", Kind.DIMMER, 2)
    yield ObjectType(0x53, "text", "text", "", "", Kind.TEXT, 0)
    yield ObjectType(0x54, "raw", "raw", "", "hex", Kind.RAW, 0)
    yield ObjectType(0xF1, "firmware_version", "firmware_version", "", "", Kind.FIRMWARE, 4)
    yield ObjectType(0xF2, "firmware_version", "firmware_version", "", "", Kind.FIRMWARE, 3)


OBJECTS: dict[int, ObjectType] = {t.object_id: t for t in sorted(_rows(), key=lambda t: t.object_id)}

BUTTON_EVENTS: dict[int, str | None] = {
    0x00: None,
    0x01: "press",
    0x02: "double_press",
    0x03: "triple_press",
    0x04: "long_press",
    0x05: "long_double_press",
    0x06: "long_triple_press",
    0x80: "hold_press",
}
DIMMER_EVENTS: dict[int, str | None] = {0x00: None, 0x01: "rotate_left", 0x02: "rotate_right"}

#: Objects that can carry each quantity, in id order (the lowest ids are the common, precise ones).
BY_QUANTITY: dict[str, list[int]] = {}
for _t in OBJECTS.values():
    BY_QUANTITY.setdefault(_t.name, []).append(_t.object_id)
# The per-payload names below must be computed once, not per object decoded.
_NAMES: dict[int, str] = {oid: t.name for oid, t in OBJECTS.items()}

# Fixed-size integer readers: (object id) -> bound unpack_from, or None for 3-byte values.
_STRUCTS = {
    (1, False): struct.Struct("<B"),
    (1, True): struct.Struct("<b"),
    (2, False): struct.Struct("<H"),
    (2, True): struct.Struct("<h"),
    (4, False): struct.Struct("<I"),
    (4, True): struct.Struct("<i"),
}


class Measurement(NamedTuple):
    object_id: int
    name: str  # quantity name with unit suffix, postfixed for repeats: "temperature_c", "temperature_2_c"
    value: Value
    unit: str
    prop: str  # BTHome property name ("temperature")


class ObjectError(NamedTuple):
    """Decoding stopped at this object; the objects before it were decoded."""

    code: str  # "unknown_object", "truncated", "not_utf8" or "bad_value"
    object_id: int
    offset: int  # offset of the id within the (decrypted) object bytes
    reason: str
    remaining: bytes  # the object's id and everything after it, not decoded

    def describe(self) -> str:
        return f"0x{self.object_id:02x} at offset {self.offset}: {self.reason}; not decoded: {self.remaining.hex()}"


class BTHomeFrame(NamedTuple):
    device_info: int
    encrypted: bool
    trigger_based: bool
    mac: bytes | None  # the MAC the payload carries (device info bit 1), as normally written
    counter: int | None  # encryption counter
    packet_id: int | None
    measurements: tuple[Measurement, ...]
    error: ObjectError | None  # why decoding stopped before the end, if it did

    @property
    def has_event(self) -> bool:
        """A button or dimmer event: momentary, so never to be rate-limited away."""
        return any(m.prop in ("button", "dimmer") and m.value is not None for m in self.measurements)

    def values(self) -> dict[str, Value]:
        return {m.name: m.value for m in self.measurements}


def parse_mac(text: str) -> bytes:
    """'54:48:E6:8F:80:A5' (or with '-' or no separators) -> 6 bytes; ValueError if it is not a MAC."""
    cleaned = text.replace(":", "").replace("-", "")
    if len(cleaned) != 12:
        raise ValueError(f"{text!r} is not a MAC address (6 bytes, e.g. 54:48:E6:8F:80:A5)")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise ValueError(f"{text!r} is not a MAC address (6 bytes, e.g. 54:48:E6:8F:80:A5)") from None


def format_mac(mac: bytes) -> str:
    return ":".join(f"{b:02X}" for b in mac)


@functools.lru_cache(maxsize=1024)
def _cipher(key: bytes) -> AESCCM:
    if len(key) != 16:
        raise ValueError(f"a BTHome bindkey is 16 bytes, got {len(key)}")
    return AESCCM(key, tag_length=_MIC_LEN)


def _nonce(mac: bytes, info: int, counter: bytes) -> bytes:
    return mac + UUID16_LE + bytes((info,)) + counter


def decode(data: bytes, *, key: bytes | None = None, mac: bytes | None = None) -> BTHomeFrame:
    """Decode one BTHome v2 service-data payload.

    `key` is the device's 16-byte bindkey, `mac` its 6-byte address (the nonce needs it unless
    the payload carries it). Raises DecodeError, EncryptedPayloadError or AuthenticationError.
    """
    if not data:
        raise DecodeError("empty BTHome payload: expected a device-info byte")
    info = data[0]
    version = info >> 5
    if version != VERSION:
        raise DecodeError(f"device info 0x{info:02x}: BTHome version {version}, expected {VERSION}")
    pos = 1
    own_mac: bytes | None = None
    if info & INFO_MAC_INCLUDED:
        if len(data) < 7:
            raise DecodeError(f"device info 0x{info:02x} says a MAC follows, but only {len(data) - 1} byte(s) do")
        own_mac = data[6:0:-1]  # sent reversed
        pos = 7
    counter: int | None = None
    if info & INFO_ENCRYPTED:
        body = data[pos:]
        if len(body) < _COUNTER_LEN + _MIC_LEN + 1:
            raise DecodeError(
                f"encrypted payload has {len(body)} byte(s) after the header; "
                f"needs ciphertext + counter (4) + MIC (4)"
            )
        counter_bytes = body[-8:-4]
        counter = int.from_bytes(counter_bytes, "little")
        if key is None:
            raise EncryptedPayloadError(
                f"payload is encrypted (device info 0x{info:02x}, counter {counter}): a bindkey is needed"
            )
        nonce_mac = own_mac if own_mac is not None else mac
        if nonce_mac is None:
            raise EncryptedPayloadError("payload is encrypted: the device MAC is needed for the nonce")
        try:
            objects = _cipher(key).decrypt(_nonce(nonce_mac, info, counter_bytes), body[:-8] + body[-4:], None)
        except InvalidTag:
            raise AuthenticationError(
                f"AES-CCM authentication failed (counter {counter}, MIC {body[-4:].hex()}): "
                f"wrong bindkey or MAC, or altered payload"
            ) from None
    else:
        objects = data[pos:]
    measurements, packet_id, error = _objects(objects)
    return BTHomeFrame(
        info, bool(info & INFO_ENCRYPTED), bool(info & INFO_TRIGGER), own_mac, counter, packet_id, measurements, error
    )


def _objects(data: bytes) -> tuple[tuple[Measurement, ...], int | None, ObjectError | None]:
    out: list[Measurement] = []
    seen: dict[str, int] = {}
    packet_id: int | None = None
    end = len(data)
    pos = 0

    def stop(code: str, oid: int, reason: str) -> tuple[tuple[Measurement, ...], int | None, ObjectError]:
        return tuple(out), packet_id, ObjectError(code, oid, pos, reason, data[pos:])

    while pos < end:
        oid = data[pos]
        t = OBJECTS.get(oid)
        if t is None:
            return stop("unknown_object", oid, "length unknown, decoding stopped")
        start = pos + 1
        size = t.size
        if size == 0:  # text / raw: a length byte first
            if start >= end:
                return stop("truncated", oid, f"{t.prop}: length byte missing")
            size = data[start]
            start += 1
        stop_at = start + size
        if stop_at > end:
            return stop("truncated", oid, f"{t.prop} needs {size} byte(s), {end - start} left")
        name = _NAMES[oid]
        n = seen.get(name, 0) + 1
        try:
            value = _value(t, data, start, stop_at)
        except _BadObject as bad:
            return stop(bad.code, oid, bad.reason)
        if oid == 0x00 and packet_id is None and isinstance(value, int):  # an unscaled uint8
            packet_id = value
        seen[name] = n
        quantity = name if n == 1 else t.quantity(n)
        out.append(Measurement(oid, quantity, value, t.unit, t.prop))
        if t.kind is Kind.DIMMER:
            steps_name = f"{t.base}_steps" if n == 1 else f"{t.base}_{n}_steps"
            out.append(Measurement(oid, steps_name, data[start + 1], "steps", t.prop))
        pos = stop_at
    return tuple(out), packet_id, None


class _BadObject(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _value(t: ObjectType, data: bytes, start: int, stop_at: int) -> Value:
    """The value of one object whose bytes are data[start:stop_at]; _BadObject if they hold none."""
    kind = t.kind
    if kind is Kind.UINT or kind is Kind.SINT:
        signed = kind is Kind.SINT
        size = stop_at - start
        s = _STRUCTS.get((size, signed))
        raw = s.unpack_from(data, start)[0] if s else int.from_bytes(data[start:stop_at], "little", signed=signed)
        return raw if t.den == 1 and t.num == 1 else raw * t.num / t.den
    if kind is Kind.BOOL:
        b = data[start]
        if b > 1:
            raise _BadObject("bad_value", f"{t.prop}: binary value {b}, expected 0 or 1")
        return b == 1
    if kind is Kind.BUTTON:
        return _event_name(BUTTON_EVENTS, data[start])
    if kind is Kind.DIMMER:
        return _event_name(DIMMER_EVENTS, data[start])
    if kind is Kind.TEXT:
        try:
            return data[start:stop_at].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _BadObject("not_utf8", f"text is not UTF-8 ({exc.reason})") from None
    if kind is Kind.RAW:
        return data[start:stop_at].hex()
    # firmware version: little-endian bytes, most significant part first when written
    return ".".join(str(b) for b in reversed(data[start:stop_at]))


def _event_name(table: Mapping[int, str | None], code: int) -> str | None:
    if code in table:
        return table[code]
    return f"unknown_0x{code:02x}"


# --- encoding (the simulator and the tests speak real bytes with it) ---------------------------------

ObjectValue = Value | tuple[str | None, int]


def encode_objects(objects: Sequence[tuple[int, ObjectValue]]) -> bytes:
    """Object bytes for (object id, value) pairs, values in this module's units (energy in Wh).

    Raises ValueError for an unknown id or a value the object cannot carry.
    """
    out = bytearray()
    for oid, value in objects:
        t = OBJECTS.get(oid)
        if t is None:
            raise ValueError(f"unknown BTHome object id 0x{oid:02x}")
        out.append(oid)
        out += _encode_value(t, value)
    return bytes(out)


def _encode_value(t: ObjectType, value: ObjectValue) -> bytes:
    where = f"object 0x{t.object_id:02x} ({t.prop})"
    kind = t.kind
    if kind is Kind.UINT or kind is Kind.SINT:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        raw = round(value * t.den / t.num)
        signed = kind is Kind.SINT
        try:
            return raw.to_bytes(t.size, "little", signed=signed)
        except OverflowError:
            raise ValueError(f"{where}: {value} does not fit in {t.size} byte(s)") from None
    if kind is Kind.BOOL:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected a boolean, got {value!r}")
        return bytes((int(value),))
    if kind is Kind.BUTTON:
        return bytes((_event_code(BUTTON_EVENTS, value, where),))
    if kind is Kind.DIMMER:
        if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int)):
            raise ValueError(f"{where}: expected (event, steps), got {value!r}")
        if not 0 <= value[1] <= 255:
            raise ValueError(f"{where}: {value[1]} steps does not fit in one byte")
        return bytes((_event_code(DIMMER_EVENTS, value[0], where), value[1]))
    if kind is Kind.TEXT or kind is Kind.RAW:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string, got {value!r}")
        body = value.encode("utf-8") if kind is Kind.TEXT else bytes.fromhex(value)
        if len(body) > 255:
            raise ValueError(f"{where}: {len(body)} bytes, at most 255")
        return bytes((len(body),)) + body
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a version like '4.2.1.0', got {value!r}")
    parts = [int(p) for p in value.split(".")]
    if len(parts) != t.size or not all(0 <= p <= 255 for p in parts):
        raise ValueError(f"{where}: expected {t.size} parts 0-255, got {value!r}")
    return bytes(reversed(parts))


def _event_code(table: Mapping[int, str | None], value: object, where: str) -> int:
    for code, name in table.items():
        if name == value:
            return code
    raise ValueError(f"{where}: unknown event {value!r}; known: {[n for n in table.values() if n]}")


def encode(
    objects: Sequence[tuple[int, ObjectValue]],
    *,
    key: bytes | None = None,
    mac: bytes | None = None,
    counter: int = 0,
    trigger_based: bool = False,
    include_mac: bool = False,
) -> bytes:
    """A whole service-data payload: device info, optional MAC, objects, encrypted when `key` is given."""
    info = VERSION << 5
    if trigger_based:
        info |= INFO_TRIGGER
    if include_mac:
        info |= INFO_MAC_INCLUDED
        if mac is None:
            raise ValueError("include_mac needs the MAC")
    body = encode_objects(objects)
    header = bytes((info | (INFO_ENCRYPTED if key is not None else 0),))
    if include_mac:
        assert mac is not None
        header += mac[::-1]
    if key is None:
        return header + body
    if mac is None:
        raise ValueError("encryption needs the device MAC (part of the nonce)")
    if not 0 <= counter <= 0xFFFFFFFF:
        raise ValueError(f"counter {counter} does not fit in 4 bytes")
    counter_bytes = counter.to_bytes(4, "little")
    sealed = _cipher(key).encrypt(_nonce(mac, header[0], counter_bytes), body, None)
    return header + sealed[:-_MIC_LEN] + counter_bytes + sealed[-_MIC_LEN:]


def objects_for_values(values: Mapping[str, ObjectValue]) -> list[tuple[int, ObjectValue]]:
    """(object id, value) pairs for quantity names, in ascending id order as the spec asks.

    Each quantity goes in the first object (lowest id) that can carry the value: 21.5 °C in
    0x02 (0.01 °C), 400 °C in 0x45 (0.1 °C), a count of 1000 in 0x3D (uint16).
    """
    pairs: list[tuple[int, ObjectValue]] = []
    for name, value in values.items():
        candidates = BY_QUANTITY.get(name)
        if candidates is None:
            raise ValueError(f"no BTHome object for quantity {name!r}; known: {', '.join(sorted(BY_QUANTITY))}")
        errors = []
        for oid in candidates:
            try:
                _encode_value(OBJECTS[oid], value)
            except ValueError as exc:
                errors.append(str(exc))
                continue
            pairs.append((oid, value))
            break
        else:
            raise ValueError(f"{name} = {value!r} fits no BTHome object: {'; '.join(errors)}")
    return sorted(pairs, key=lambda p: p[0])
