"""Path and query parameters, checked where they come in: a bad value is a 4xx problem naming the
parameter, never an exception deeper down (an id past 64 bits in a query, a date before year 1,
a NUL that PostgreSQL text cannot hold).

`refuse_nul` checks every path and query parameter of every route at once, so no handler can
forget it: no parameter of this API may hold a NUL, which PostgreSQL text cannot. (A lone
surrogate cannot arrive: aiohttp refuses raw non-ASCII bytes in the request line and decodes
%-escapes that are no UTF-8 to U+FFFD.)
"""

from __future__ import annotations

import re
from datetime import date

from aiohttp import web

from collector.problem import Handler, Problem

#: the largest id a store can hold: SQLite INTEGER and PostgreSQL bigint are 64-bit signed
MAX_ID = 2**63 - 1
#: ASCII only: int() also takes " 12", "1_2" and other scripts' digits ("١٢")
_INT = re.compile(r"-?[0-9]{1,19}")


def invalid(name: str, detail: str) -> Problem:
    return Problem(400, "invalid-parameter", "Invalid query parameter", detail, parameter=name)


def parse_int(raw: str) -> int | None:
    """The integer written in ASCII digits (19 at most: every 64-bit value), or None."""
    return int(raw) if _INT.fullmatch(raw) else None


def int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    value = parse_int(raw)
    if value is None or not lo <= value <= hi:
        raise invalid(name, f"{name} must be an integer in [{lo}, {hi}], got {raw!r}")
    return value


def path_id(request: web.Request, name: str) -> int | None:
    """The row id in path parameter `name`, or None when no row can have it (not digits, past 64 bits)."""
    value = parse_int(request.match_info[name])
    return value if value is not None and 0 <= value <= MAX_ID else None


def date_param(raw: str, name: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise invalid(name, f"{name} must be a date YYYY-MM-DD, got {raw!r}") from None


def storable(text: str) -> bool:
    """Whether both stores can hold `text`: PostgreSQL text cannot hold a NUL."""
    return "\x00" not in text


@web.middleware
async def refuse_nul(request: web.Request, handler: Handler) -> web.StreamResponse:
    for where, items in (("path", request.match_info.items()), ("query", request.query.items())):
        for name, value in items:
            if not (storable(name) and storable(value)):
                raise Problem(400, "invalid-parameter", "Invalid parameter",
                              f"{where} parameter {name!r} holds a NUL", parameter=name)
    return await handler(request)
