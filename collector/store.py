"""The store interface the HTTP layer and the CLI use, and how a database URL picks one.

`sqlite:///abs/path.db`, `sqlite://rel/path.db` or a bare path open the embedded SQLite store;
`postgresql://...` (optionally `?schema=NAME`) opens the PostgreSQL one. Opening a store runs its schema migrations.
Use as `async with open_store(url) as store:`.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Protocol, Self

from citygate_wire.batch import WireRecord
from collector.alarms.store import AlarmStore
from collector.cameras.store import CameraStore
from collector.control.store import ControlStore
from collector.credentials import CredentialStore
from collector.dburl import redact_url, sqlite_path
from collector.errors import StoreError
from collector.model import (
    Gateway,
    GatewayInfo,
    IngestResult,
    Level,
    Period,
    RecordCounts,
    Rollup,
    StoredEvent,
    StoredSample,
)
from collector.parking.store import ParkingStore
from collector.positions import PositionStore
from collector.readmodel import ReadModel
from collector.reports.store import ReportStore
from collector.traffic.store import TrafficStore
from collector.vehicles.store import VehicleStore


class Store(ControlStore, ReportStore, ReadModel, CredentialStore, ParkingStore, TrafficStore,
            VehicleStore, CameraStore, PositionStore, AlarmStore, Protocol):
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

    async def gateways_page(self, limit: int, offset: int) -> tuple[list[GatewayInfo], int]:
        """The `limit` gateways from `offset` on of gateways()'s list, and how many it holds."""

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

    async def rollups(
        self, level: Level, period: Period, key: str | None, first: int | str, last: int | str
    ) -> list[Rollup]:
        """Buckets `first`..`last` (inclusive, ascending) of a gateway (key: its name), a commune
        (key: its current INSEE code) or the metropolis (key: None, the sum over communes).
        Hour buckets are UTC epoch ms (multiples of 3,600,000), day buckets "YYYY-MM-DD"
        (Europe/Paris). Buckets without data are absent."""


def open_store(url: str) -> Store:
    path = sqlite_path(url)
    if path is None:
        from collector.store_pg import PgStore

        try:
            return PgStore(url)
        except ValueError as exc:  # urllib's own message names no part of the URL
            raise StoreError(f"{redact_url(url)}: {exc}") from None
    from collector.store_sqlite import SqliteStore

    return SqliteStore(path)
