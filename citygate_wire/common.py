"""What every format shares and the gateway needs without the batch decoder: the batch
endpoint and version, and the error a malformed message raises.

The agent imports this and citygate_wire.mqtt only: the batch decoder (msgspec, 2.8 MB of
resident memory) is the collector's.
"""

from __future__ import annotations

VERSION = 1
PATH = "/api/v1/batches"
#: the problem type (after the collector's prefix) of a batch refused for a record dated ahead of
#: the collector's clock: the gateway quarantines that record and reports `clock_suspect`
FUTURE_TIMESTAMP = "future-timestamp"


class WireError(ValueError):
    """A message that does not follow the format. `pointer` is the JSON pointer of the bad field."""

    def __init__(self, pointer: str, reason: str) -> None:
        super().__init__(f"{pointer or '/'}: {reason}")
        self.pointer = pointer
        self.reason = reason
