"""Nwave Smart Parking Sensor G4 (NPS-4.5 SM/FM), firmware 2.4.9: pure codec.

Source: Nwave's uplink layout as published by Nwave in the TTN device repository
(TheThingsNetwork/lorawan-devices, vendor/nwave/nps405.js and nps405sm.yaml, firmware 2.4.9) and
Nwave's "Nwave LoRaWAN Parking Sensor - Getting Started" (section 4.2, uplink messages):

- port 1, parking status, 1 byte: bit 7 occupied, bits 0-6 the compressed duration of the
  previous state in minutes (0-89 exact; 90-119: 90 + (v-90)*5; 120-126: 240 + (v-120)*60;
  127: longer than 660).
- port 2, heartbeat, 3 bytes: bit 7 of byte 0 occupied, bits 0-6 hardware health (0: healthy);
  byte 1 battery, 2500 + 4*v mV; byte 2 temperature, signed, v/2 + 10 °C. Battery low below
  3000 mV (at -5 °C and above) or 2900 mV (below -5 °C), as the document's battery health says.
- port 3, start-up, 5 bytes: firmware (bytes 0-2), reset cause (byte 3), bit 0 of byte 4 occupied.
- port 6, debug: no parking state.
- port 10, SDI tag registration: occupied (bit 7 of byte 0) and a badge/tag id in bytes 1-4.
  The tag identifies a vehicle or a driver: it is dropped here and never leaves the codec.
"""

from __future__ import annotations

from drivers.errors import DecodeError
from drivers.lorawan.reading import Kind, Reading, SensorModel

RESET_CAUSES = ("rejoin", "watchdog", "power_on", "user_request", "code 4", "code 5", "brownout", "other")
HEARTBEAT_S = 24 * 3600.0
LOW_MV, LOW_COLD_MV, COLD_C = 3000, 2900, -5.0


def previous_duration_min(code: int) -> int | None:
    """The compressed duration of the previous state, in minutes (None: longer than 660)."""
    if code < 90:
        return code
    if code < 120:
        return 90 + (code - 90) * 5
    if code < 127:
        return 240 + (code - 120) * 60
    return None


def _length(port: int, payload: bytes, n: int) -> None:
    if len(payload) != n:
        raise DecodeError(f"port {port}: {len(payload)} bytes, the frame has {n} ({payload.hex()})")


def decode(f_port: int, payload: bytes) -> Reading:
    if f_port == 1:
        _length(f_port, payload, 1)
        return Reading(Kind.STATUS, bool(payload[0] & 0x80))
    if f_port == 2:
        _length(f_port, payload, 3)
        millivolts = 2500 + 4 * payload[1]
        temperature = int.from_bytes(payload[2:3], "big", signed=True) / 2 + 10
        low = millivolts < (LOW_MV if temperature >= COLD_C else LOW_COLD_MV)
        return Reading(Kind.HEARTBEAT, bool(payload[0] & 0x80), battery_v=millivolts / 1000, battery_low=low,
                       temperature_c=temperature)
    if f_port == 3:
        _length(f_port, payload, 5)
        cause = RESET_CAUSES[payload[3]] if payload[3] < len(RESET_CAUSES) else f"code {payload[3]}"
        return Reading(Kind.STARTUP, bool(payload[4] & 1), firmware=f"{payload[0]}.{payload[1]}.{payload[2]}",
                       reset_cause=cause)
    if f_port == 6:
        return Reading(Kind.INFO, None)
    if f_port == 10:
        _length(f_port, payload, 5)
        return Reading(Kind.STATUS, True) if payload[0] & 0x80 else Reading(Kind.INFO, None)
    raise DecodeError(f"port {f_port}: not a port of the Nwave parking sensor ({payload.hex()})")


def encode(kind: Kind, occupied: bool, *, battery_mv: int = 3600, temperature_c: float = 12.0,
           previous_min: int = 0) -> tuple[int, bytes]:
    """(port, payload) of a frame, for simulators and tests."""
    if kind is Kind.STATUS:
        return 1, bytes([(0x80 if occupied else 0) | min(previous_min, 89)])
    if kind is Kind.HEARTBEAT:
        raw_v = max(0, min(255, (battery_mv - 2500) // 4))
        raw_t = max(-128, min(127, round((temperature_c - 10) * 2)))
        return 2, bytes([0x80 if occupied else 0, raw_v]) + raw_t.to_bytes(1, "big", signed=True)
    if kind is Kind.STARTUP:
        return 3, bytes([2, 4, 9, 2, int(occupied)])
    raise ValueError(f"no {kind} frame to encode")


MODEL = SensorModel("nwave-nps4", "Nwave Smart Parking Sensor G4 (NPS-4.5) uplink layout, firmware 2.4.9 "
                    "(TTN lorawan-devices vendor/nwave/nps405.js; Nwave LoRaWAN Parking Sensor - Getting Started, "
                    "section 4.2)", HEARTBEAT_S, decode)
