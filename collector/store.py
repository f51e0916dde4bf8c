"""The store interface the HTTP layer and the CLI use, and how a database URL picks one.

`sqlite:///abs/path.db`, `sqlite://rel/path.db` or a bare path open the embedded SQLite store. Opening a store runs its schema migrations.
Use as `async with open_store(url) as store:`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from citygate_wire.batch import WireRecord
from collector.model import Gateway, GatewayInfo, IngestResult, RecordCounts, StoredEvent, StoredSample


class Store(Protocol):
    url: str

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def add_gateway(
        self,
        name: str,
        commune: str,
        token_hash: str,
        *,
        cabinet: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
    ) -> Gateway:
        """Register a gateway; raise GatewayExists if the name is taken."""

    async def gateway_for_token(self, token_hash: str) -> Gateway | None: ...

    async def gateway(self, name: str) -> Gateway | None: ...

    async def gateways(self) -> list[GatewayInfo]:
        """Every gateway with its last-seen time, ordered by name."""

    async def ingest(self, gateway: Gateway, records: Sequence[WireRecord]) -> IngestResult:
        """Store a validated batch (ascending seq, at least one record) in one transaction.

        Records whose (gateway, seq) is already stored are counted as duplicates and not
        written again; `ack_seq` is the batch's highest seq.
        """

    async def recent_samples(self, gateway: Gateway, device: str, limit: int = 100) -> list[StoredSample]:
        """A device's latest samples, newest first."""

    async def recent_events(self, gateway: Gateway, limit: int = 100) -> list[StoredEvent]:
        """The gateway's latest events (its own and those the collector derived), newest first."""

    async def count_records(self, gateway: Gateway | None = None) -> RecordCounts:
        """Stored samples and events, of one gateway or all: a full count, slow on a big store."""


DEFAULT_SQLITE_PATH = Path("var") / "collector.db"


def sqlite_path(url: str) -> Path:
    """The file of a SQLite URL or bare path."""
    if url.startswith("sqlite://"):
        return Path(url.removeprefix("sqlite://"))
    if "://" in url:
        raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or a path")
    return Path(url)


def open_store(url: str) -> Store:
    from collector.store_sqlite import SqliteStore

    return SqliteStore(sqlite_path(url))
