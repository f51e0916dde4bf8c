"""The four engine primitives feature queries are written over (`$n` parameters, SQL both engines run).

SqliteStore and PgStore get them from collector.control.engines (SqliteControl, PgControl); a
feature's query mixin inherits this class to declare what it needs, and the store class lists
the mixin among its bases, so the same query text runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any


class SqlPrimitives(ABC):
    @abstractmethod
    async def _ctl_exec(self, sql: str, *args: Any) -> int:
        """Run one write; return the number of rows it touched."""

    @abstractmethod
    async def _ctl_rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Run one read."""

    @abstractmethod
    async def _ctl_atomic(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Run writes in one transaction."""

    @abstractmethod
    def _ctl_unique_violation(self, exc: BaseException) -> bool:
        """Whether `exc` is the engine's unique-constraint violation."""


def marks(first: int, count: int) -> str:
    """`$first, $first+1, ...`: the placeholders of an IN list."""
    return ", ".join(f"${first + i}" for i in range(count))
