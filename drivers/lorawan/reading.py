"""What a sensor model's codec turns one uplink's payload into, and what a model declares.

A codec is pure: `decode(f_port, payload) -> Reading`, or DecodeError; never another exception.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    STATUS = "status"  # the space changed state
    HEARTBEAT = "heartbeat"  # periodic sign of life, with the current state
    STARTUP = "startup"  # the sensor (re)started, with the current state
    INFO = "info"  # a diagnostic frame without a parking state


@dataclass(frozen=True, slots=True)
class Reading:
    """One decoded payload in SI units; None where the frame does not carry the quantity."""

    kind: Kind
    occupied: bool | None
    battery_v: float | None = None
    battery_low: bool | None = None  # the model's own low-battery judgement, when its document gives one
    temperature_c: float | None = None
    firmware: str | None = None
    reset_cause: str | None = None


@dataclass(frozen=True, slots=True)
class SensorModel:
    """One sensor model: its codec and what its document says about its rhythm."""

    name: str  # the `model` of a sensor in the bus config
    document: str  # the manufacturer's payload document the codec follows (name and version)
    heartbeat_s: float  # the heartbeat period the document gives (the factory default)
    decode: Callable[[int, bytes], Reading]
