"""The collector's one error hierarchy: what a caller (CLI, HTTP handler) can catch and show."""

from __future__ import annotations


class CollectorError(Exception):
    """Base of every error the collector raises on purpose."""


class StoreError(CollectorError):
    """The database cannot be opened, migrated or used (names the URL or the table)."""


class UnknownGateway(CollectorError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no gateway named {name!r}")
        self.name = name


class GatewayExists(CollectorError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a gateway named {name!r} already exists")
        self.name = name
