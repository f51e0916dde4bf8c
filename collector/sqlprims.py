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


def counted_page_sql(cols: str, table: str, where: str, order: str, joins: str = "") -> str:
    """One statement reading a page of `table`'s rows that match `where`, by `order` (a unique column:
    pages neither overlap nor skip a row; $1 the limit, $2 the offset), and how many rows match: each row is `cols` (the page's rows as `g`, `joins`
    may join others to them) then the count. A page past the end is one row of NULL `cols` (page_rows),
    so the count comes in the same statement, the same snapshot, as the page."""
    return (f"SELECT {cols}, n.total FROM (SELECT count(*) AS total FROM {table} WHERE {where}) n"
            f" LEFT JOIN (SELECT * FROM {table} WHERE {where} ORDER BY {order} LIMIT $1 OFFSET $2) g ON TRUE"
            f"{joins} ORDER BY g.{order}")


def page_rows(rows: Sequence[Any]) -> tuple[list[Any], int]:
    """The page's rows and the count of a counted_page_sql's answer (whose first column is never NULL in a row)."""
    return [r for r in rows if r[0] is not None], int(rows[0][-1])
