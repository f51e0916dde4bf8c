"""Typed, strict access to one TOML table, shared by the agent core and every driver's config parser.

Every mistake becomes drivers.errors.ConfigError with the dotted key and the reason; `done()`
refuses unknown keys (a typo must not silently fall back to a default).
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar, overload

from drivers.errors import ConfigError

T = TypeVar("T")


class ConfigTable:
    """Typed access to one TOML table; every mistake becomes a ConfigError with the dotted key."""

    def __init__(self, raw: Any, key: str) -> None:
        if not isinstance(raw, dict):
            raise ConfigError(key, "expected a table")
        self.raw = raw
        self.key = key
        self.used: set[str] = set()

    def _get(self, name: str, kind: type[T] | tuple[type[T], ...], required: bool, default: T) -> T:
        self.used.add(name)
        if name not in self.raw:
            if required:
                raise ConfigError(f"{self.key}.{name}", "missing")
            return default
        value: object = self.raw[name]
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise ConfigError(f"{self.key}.{name}", f"expected {_kind_name(kind)}, got a boolean")
        if not isinstance(value, kind):
            raise ConfigError(f"{self.key}.{name}", f"expected {_kind_name(kind)}, got {type(value).__name__}")
        return value

    # Overloads: a key with a default, or a required key, is a `str`; only an optional key without a
    # default may be None, so callers narrow exactly where a key may be absent.
    @overload
    def text(self, name: str, default: str, *, required: bool = False) -> str: ...
    @overload
    def text(self, name: str, default: None = None, *, required: Literal[True]) -> str: ...
    @overload
    def text(self, name: str, default: None = None, *, required: Literal[False] = False) -> str | None: ...
    def text(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        return self._get(name, str, required, default)

    def number(self, name: str, default: float, *, lo: float, hi: float) -> float:
        value = float(self._get(name, (int, float), False, default))
        if not lo <= value <= hi:
            raise ConfigError(f"{self.key}.{name}", f"{value} is out of range [{lo}, {hi}]")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        return bool(self._get(name, bool, False, default))

    def integer(self, name: str, default: int, *, lo: int, hi: int) -> int:
        value = self._get(name, int, False, default)
        if not lo <= value <= hi:
            raise ConfigError(f"{self.key}.{name}", f"{value} is out of range [{lo}, {hi}]")
        return int(value)

    def done(self) -> None:
        unknown = sorted(set(self.raw) - self.used)
        if unknown:
            raise ConfigError(f"{self.key}.{unknown[0]}", "unknown key")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean"}
    return " or ".join(dict.fromkeys(names.get(k.__name__, k.__name__) for k in kinds))
