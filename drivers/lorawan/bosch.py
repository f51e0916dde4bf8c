"""Bosch Parking Lot Sensor (PLS, TPS110), firmware 0.29.x: pure codec.

Source: Bosch Connected Devices and Solutions, "Parking Lot Sensor | PLS - Communication
Interface - Technical Description rev.1, V0.29.4" (2019-11-27); the same layout is the TTN device
repository's vendor/bosch/tpl110-0292.js. One frame type per LoRaWAN port:

- port 1, parking status, 1 byte: bit 0 occupied (bits 1-7 reserved).
- port 2, heartbeat, 1 or 2 bytes: bit 0 of byte 0 occupied; byte 1 (when present) the
  temperature, signed, in °C.
- port 3, start-up, 17 bytes: three 4-byte debug records, firmware major.minor.patch (bytes
  12-14), reset cause (byte 15: 1 watchdog, 2 power on, 3 system request, 4 other), bit 0 of
  byte 16 occupied.
- ports 4 (device information), 5 (device usage), 6 (debug): diagnostics, no parking state.

The sensor reports no battery level in its payloads: its battery comes from the network server's
device-status answers (ChirpStack's status events).
"""

from __future__ import annotations

from drivers.errors import DecodeError
from drivers.lorawan.reading import Kind, Reading, SensorModel

RESET_CAUSES = {1: "watchdog", 2: "power_on", 3: "system_request", 4: "other"}
HEARTBEAT_S = 24 * 3600.0  # one heartbeat a day, the factory default (configurable by downlink: README)
_INFO_PORTS = frozenset((4, 5, 6))


def _length(port: int, payload: bytes, allowed: tuple[int, ...]) -> None:
    if len(payload) not in allowed:
        want = " or ".join(str(n) for n in allowed)
        raise DecodeError(f"port {port}: {len(payload)} bytes, the frame has {want} ({payload.hex()})")


def decode(f_port: int, payload: bytes) -> Reading:
    if f_port == 1:
        _length(f_port, payload, (1,))
        return Reading(Kind.STATUS, bool(payload[0] & 1))
    if f_port == 2:
        _length(f_port, payload, (1, 2))
        temperature = float(int.from_bytes(payload[1:2], "big", signed=True)) if len(payload) == 2 else None
        return Reading(Kind.HEARTBEAT, bool(payload[0] & 1), temperature_c=temperature)
    if f_port == 3:
        _length(f_port, payload, (17,))
        cause = RESET_CAUSES.get(payload[15], f"code {payload[15]}")
        return Reading(Kind.STARTUP, bool(payload[16] & 1), firmware=f"{payload[12]}.{payload[13]}.{payload[14]}",
                       reset_cause=cause)
    if f_port in _INFO_PORTS:
        return Reading(Kind.INFO, None)
    raise DecodeError(f"port {f_port}: not a port of the Bosch parking lot sensor ({payload.hex()})")


def encode(kind: Kind, occupied: bool, *, temperature_c: int = 12, firmware: tuple[int, int, int] = (0, 29, 4),
           reset_cause: int = 2) -> tuple[int, bytes]:
    """(port, payload) of a frame, for simulators and tests."""
    if kind is Kind.STATUS:
        return 1, bytes([int(occupied)])
    if kind is Kind.HEARTBEAT:
        return 2, bytes([int(occupied)]) + temperature_c.to_bytes(1, "big", signed=True)
    if kind is Kind.STARTUP:
        return 3, bytes(12) + bytes(firmware) + bytes([reset_cause, int(occupied)])
    raise ValueError(f"no {kind} frame to encode")


MODEL = SensorModel("bosch-pls", "Bosch Parking Lot Sensor (PLS) Communication Interface - Technical "
                    "Description rev.1, V0.29.4 (2019-11-27)", HEARTBEAT_S, decode)
