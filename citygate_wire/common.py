"""What every format shares and the gateway needs without the batch decoder: the batch
endpoint and version, and the error a malformed message raises.

The agent imports this and citygate_wire.mqtt only: the batch decoder (msgspec, 2.8 MB of
resident memory) is the collector's.
"""

from __future__ import annotations

import time
from typing import Any

from citygate_wire.simclock import ACTIVE as _SIMULATED

VERSION = 1
PATH = "/api/v1/batches"
#: the problem type (after the collector's prefix) of a batch refused for a record dated ahead of
#: the collector's clock: the gateway quarantines that record and reports `clock_suspect`
FUTURE_TIMESTAMP = "future-timestamp"


def now_ms() -> int:
    """Wall-clock UTC time in epoch milliseconds, the unit of every timestamp both halves exchange
    (the demo's simulated clock when $CITYGATE_SIMULATED_CLOCK gives one: citygate_wire.simclock)."""
    if _SIMULATED is not None:
        return _SIMULATED.now_ms()
    return time.time_ns() // 1_000_000


class WireError(ValueError):
    """A message that does not follow the format. `pointer` is the JSON pointer of the bad field."""

    def __init__(self, pointer: str, reason: str) -> None:
        super().__init__(f"{pointer or '/'}: {reason}")
        self.pointer = pointer
        self.reason = reason


def pointer_token(name: str) -> str:
    """A member name as a JSON pointer token (RFC 6901)."""
    return name.replace("~", "~0").replace("/", "~1")


def nul_pointer(doc: Any, pointer: str = "") -> str | None:
    """The JSON pointer of the first string or member name in `doc` holding U+0000 (which PostgreSQL
    cannot store), or None. A member name holding it points at its object."""
    if type(doc) is str:
        return pointer if "\x00" in doc else None
    if type(doc) is dict:
        for name, value in doc.items():
            if "\x00" in name:
                return pointer
            found = nul_pointer(value, f"{pointer}/{pointer_token(name)}")
            if found is not None:
                return found
    elif type(doc) is list:
        for i, value in enumerate(doc):
            found = nul_pointer(value, f"{pointer}/{i}")
            if found is not None:
                return found
    return None
