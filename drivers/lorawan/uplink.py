"""ChirpStack v4 MQTT integration events (JSON marshalling), parsed without I/O.

Topics: `application/{application_id}/device/{dev_eui}/event/{up|status|...}`. The JSON is
protobuf's canonical mapping of `integration.UplinkEvent` / `integration.StatusEvent`
(chirpstack/chirpstack, api/proto/integration/integration.proto; ChirpStack serialises the
integration messages with every field, defaults included): camelCase names, `data` base64,
`time` RFC 3339, `deviceInfo.devEui` 16 hex digits, `rxInfo[]` one entry per gateway that heard
the frame with `rssi` (dBm) and `snr` (dB).

Every malformed event is a DecodeError naming the field; nothing else is raised.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from drivers.errors import DecodeError

_EUI = re.compile(r"[0-9a-fA-F]{16}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_EARLIEST_MS, _LATEST_MS = 946_684_800_000, 4_102_444_800_000  # 2000-01-01, 2100-01-01 UTC
MAX_FCNT = 2**32 - 1


@dataclass(frozen=True, slots=True)
class Uplink:
    dev_eui: str  # lower-case hex
    time_ms: int  # when the network server received it (UTC epoch ms)
    f_cnt: int
    f_port: int  # 0: a MAC-only frame, no application payload
    data: bytes
    rssi_dbm: int | None  # best gateway's
    snr_db: float | None


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """The answer to the network server's DevStatusReq: battery and the downlink margin."""

    dev_eui: str
    time_ms: int
    battery_pct: float | None  # None: external power, or the device cannot measure it
    margin_db: int | None


def topic_parts(topic: str) -> tuple[str, str, str] | None:
    """(application_id, dev_eui, event) of an integration topic, or None if it is not one."""
    parts = topic.split("/")
    if len(parts) != 6 or parts[0] != "application" or parts[2] != "device" or parts[4] != "event":
        return None
    return parts[1], parts[3].lower(), parts[5]


def _doc(raw: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise DecodeError(f"expected a JSON object, got {type(doc).__name__}")
    return doc


def _int(doc: dict[str, Any], key: str, lo: int, hi: int) -> int:
    v = doc.get(key)
    if isinstance(v, str) and v.isdigit():  # protobuf's JSON may write integers as strings
        v = int(v)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise DecodeError(f"{key}: expected an integer in [{lo}, {hi}], got {v!r}")
    return v


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and abs(v) < 1e6 else None


def _dev_eui(doc: dict[str, Any]) -> str:
    info = doc.get("deviceInfo")
    eui = info.get("devEui") if isinstance(info, dict) else None
    if not isinstance(eui, str) or not _EUI.fullmatch(eui):
        raise DecodeError(f"deviceInfo.devEui: expected 16 hex digits, got {eui!r}")
    return eui.lower()


def _time_ms(doc: dict[str, Any]) -> int:
    raw = doc.get("time")
    if not isinstance(raw, str):
        raise DecodeError(f"time: expected an RFC 3339 string, got {raw!r}")
    try:
        t = datetime.fromisoformat(raw)
    except ValueError:
        raise DecodeError(f"time: not an RFC 3339 time: {raw[:40]!r}") from None
    if t.tzinfo is None:
        raise DecodeError(f"time: no UTC offset in {raw[:40]!r}")
    try:
        ms: int = (t - _EPOCH) // _MS  # exact: a float timestamp x 1000 can land 1 ms short
    except OverflowError:
        ms = -1
    if not _EARLIEST_MS <= ms < _LATEST_MS:
        raise DecodeError(f"time: {raw[:40]!r} is not a time a network server stamps (2000-2099)")
    return ms


def _radio(rx: Any) -> tuple[int | None, float | None]:
    if not isinstance(rx, list):
        return None, None
    best: tuple[int | None, float | None] = (None, None)
    for gw in rx:
        if not isinstance(gw, dict):
            continue
        rssi = _number(gw.get("rssi"))
        if rssi is not None and (best[0] is None or rssi > best[0]):
            best = (int(rssi), _number(gw.get("snr")))
    return best


def parse_up(raw: bytes) -> Uplink:
    doc = _doc(raw)
    data = doc.get("data", "")
    if not isinstance(data, str):
        raise DecodeError(f"data: expected base64 text, got {type(data).__name__}")
    try:
        payload = binascii.a2b_base64(data, strict_mode=True) if data else b""
    except (binascii.Error, ValueError):
        raise DecodeError(f"data: not base64: {data[:40]!r}") from None
    rssi, snr = _radio(doc.get("rxInfo"))
    return Uplink(_dev_eui(doc), _time_ms(doc), _int(doc, "fCnt", 0, MAX_FCNT), _int(doc, "fPort", 0, 255), payload,
                  rssi, snr)


def parse_status(raw: bytes) -> DeviceStatus:
    doc = _doc(raw)
    unavailable = doc.get("batteryLevelUnavailable") is True or doc.get("externalPowerSource") is True
    level = _number(doc.get("batteryLevel"))
    if level is not None and not 0 <= level <= 100:
        raise DecodeError(f"batteryLevel: {level} is not a percentage")
    margin = _number(doc.get("margin"))
    return DeviceStatus(_dev_eui(doc), _time_ms(doc), None if unavailable else level,
                        None if margin is None else int(margin))
