"""One error hierarchy for the drivers package."""

from __future__ import annotations


class DriverError(Exception):
    """Base of every error a driver raises on purpose."""


class DecodeError(DriverError):
    """Bytes from outside that do not decode: says what was wrong and where."""


class ConfigError(DriverError):
    """A driver or register-map setting that is invalid. `key` is the dotted path of the setting."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class DeviceError(DriverError):
    """A device did not answer, or answered with an error. `device` names it."""

    def __init__(self, device: str, reason: str) -> None:
        super().__init__(f"{device}: {reason}")
        self.device = device
        self.reason = reason
