"""What every route reads from a request and how it replies: path and query parameters, the bearer
token, a JSON body, a JSON reply. Checked where they come in: a bad value is a 4xx problem naming
the parameter, never an exception deeper down (an id past 64 bits in a query, a date before year 1,
a NUL that PostgreSQL text cannot hold).

`refuse_nul` checks every path and query parameter of every route at once, so no handler can
forget it: no parameter of this API may hold a NUL, which PostgreSQL text cannot. (A lone
surrogate cannot arrive: aiohttp refuses raw non-ASCII bytes in the request line and decodes
%-escapes that are no UTF-8 to U+FFFD.)

No route lives here: route modules import this, and collector.app imports the routes.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

import orjson
from aiohttp import web

from collector.problem import OPEN311_PREFIX, Handler, Problem
from collector.rollup import HOUR_MS, PARIS
from collector.tokens import hash_token

T = TypeVar("T")

#: the largest id a store can hold: SQLite INTEGER and PostgreSQL bigint are 64-bit signed
MAX_ID = 2**63 - 1
#: ASCII only: int() also takes " 12", "1_2" and other scripts' digits ("١٢")
_INT = re.compile(r"-?[0-9]{1,19}")


def json_response(doc: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(doc), content_type="application/json")


async def json_body(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    """The request's body, a JSON object (`optional`: an empty body is {}), or Problem 400."""
    raw = await request.read()
    if not raw and optional:
        return {}
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, "invalid-body", "Invalid body", f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise Problem(400, "invalid-body", "Invalid body", "expected a JSON object", pointer="")
    return doc


def bearer_token(request: web.Request) -> str | None:
    """The token of `Authorization: Bearer <token>` (empty when the header names no token), or None
    when the request sends no bearer token at all (no header, another scheme)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def unauthorized(realm: str, detail: str) -> Problem:
    return Problem(401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": f'Bearer realm="{realm}"'})


async def bearer_owner(request: web.Request, realm: str, holder: str, lookup: Callable[[str], Awaitable[T | None]]) -> T:
    """Whom the request's bearer token belongs to (`lookup` by the token's hash; `holder`: whose tokens
    these are, for the message), or Problem 401 challenging for `realm`."""
    token = bearer_token(request)
    if not token:
        raise unauthorized(realm, f"send Authorization: Bearer <{holder} token>")
    owner = await lookup(hash_token(token))
    if owner is None:
        raise unauthorized(realm, f"unknown {holder} token")
    return owner


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


#: UTC epoch ms a rollup bound may be: up to the last instant of year 9999 (a date can still name it)
MAX_EPOCH_MS = 253_402_300_799_999
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
#: eight digits are a date (ISO 8601's basic form 20260329), never epoch ms (that would be 1970-01-01)
_BASIC_DATE = re.compile(r"[0-9]{8}")


def _date_or_ms(raw: str, name: str) -> date | int:
    """A date (ISO 8601 YYYY-MM-DD or YYYYMMDD), or an instant as UTC epoch ms: an ISO 8601 date-time
    with its zone, or the ms themselves."""
    ms = None if _BASIC_DATE.fullmatch(raw) else parse_int(raw)
    if ms is not None:
        if not 0 <= ms <= MAX_EPOCH_MS:
            raise invalid(name, f"{name}: epoch ms must be in [0, {MAX_EPOCH_MS}], got {raw!r}")
        return ms
    try:
        return date.fromisoformat(raw)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise invalid(name, f"{name} must be a date YYYY-MM-DD, a date-time with its zone "
                            f"(2026-03-29T21:00:00+02:00) or UTC epoch ms, got {raw!r}") from None
    if when.tzinfo is None:
        raise invalid(name, f"{name} {raw!r} has no time zone: add Z or an offset such as +01:00")
    return (when - _EPOCH) // _MS


def day_bound(raw: str, name: str) -> str:
    """The Paris day (YYYY-MM-DD, the day buckets' own form) a rollup bound names or falls in."""
    when = _date_or_ms(raw, name)
    if isinstance(when, int):
        try:
            when = (_EPOCH + when * _MS).astimezone(PARIS).date()
        except OverflowError:
            raise invalid(name, f"{name} {raw!r} falls past year 9999 in Paris") from None
    return when.isoformat()


def hour_bound(raw: str, name: str, *, last: bool) -> int:
    """The hour bucket (UTC epoch ms, floored to the hour) a rollup bound falls in; a date is its
    Paris day: its first hour as a first bound, its last hour as a last one (23 or 25 on DST days)."""
    when = _date_or_ms(raw, name)
    if isinstance(when, date):
        try:
            day = when + timedelta(days=1) if last else when
            when = (datetime.combine(day, time(), PARIS) - _EPOCH) // _MS - (HOUR_MS if last else 0)
        except OverflowError:
            raise invalid(name, f"{name} {raw!r}: its day ends past year 9999") from None
    return when - when % HOUR_MS


def storable(text: str) -> bool:
    """Whether both stores can hold `text`: PostgreSQL text cannot hold a NUL."""
    return "\x00" not in text


@web.middleware
async def refuse_nul(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(OPEN311_PREFIX):
        return await handler(request)  # Open311 says it in the resident's language (collector.reports.routes)
    for where, items in (("path", request.match_info.items()), ("query", request.query.items())):
        for name, value in items:
            if not (storable(name) and storable(value)):
                raise Problem(400, "invalid-parameter", "Invalid parameter",
                              f"{where} parameter {name!r} holds a NUL", parameter=name)
    return await handler(request)


# -- pages of a list that grows with the fleet ---------------------------------------------------------

#: a page of a list that grows with the fleet (gateways, presence, cameras, ...): by default, and at most;
#: the metropolis's 1,500 gateways are two pages of the most
FLEET_PAGE = 500
MAX_FLEET_PAGE = 1000


def page_params(request: web.Request, default: int = FLEET_PAGE, maximum: int = MAX_FLEET_PAGE) -> tuple[int, int]:
    """`limit` (1..maximum, `default` when absent) and `offset` (0.., 0 when absent), or Problem 400."""
    return int_param(request, "limit", default, 1, maximum), int_param(request, "offset", 0, 0, MAX_ID)


def page_meta(request: web.Request, limit: int, offset: int, total: int) -> dict[str, Any]:
    """What a client needs to go on from the page at `offset` of `limit` rows among `total`:
    {"total", "limit", "offset", "next"}, `next` the address of the following page (this route, its
    other parameters kept), null on the last one."""
    more = offset + limit < total
    return {
        "total": total, "limit": limit, "offset": offset,
        "next": str(request.rel_url.update_query(limit=limit, offset=offset + limit)) if more else None,
    }


def page_of(request: web.Request, items: list[T], default: int = FLEET_PAGE,
            maximum: int = MAX_FLEET_PAGE) -> tuple[list[T], dict[str, Any]]:
    """The page of `items` that `limit` and `offset` ask for, and its page_meta. For the lists that stay
    small (a few hundred rows: junctions, cameras, a street's parking, a commune's cabinets, the vehicles
    an operator may see) and are read whole; the fleet itself is read a page at a time (page_from)."""
    limit, offset = page_params(request, default, maximum)
    return items[offset:offset + limit], page_meta(request, limit, offset, len(items))


async def page_from(request: web.Request, read: Callable[[int, int], Awaitable[tuple[list[T], int]]],
                    default: int = FLEET_PAGE, maximum: int = MAX_FLEET_PAGE) -> tuple[list[T], dict[str, Any]]:
    """The page that `limit` and `offset` ask for, read by `read(limit, offset)` (the page's rows and the
    total, from the store: a store page method), and its page_meta; the same page and meta as page_of
    over the whole list, without reading every row of a list that grows with the fleet."""
    limit, offset = page_params(request, default, maximum)
    rows, total = await read(limit, offset)
    return rows, page_meta(request, limit, offset, total)


def paged_list_response(request: web.Request, page: list[Any], meta: dict[str, Any]) -> web.Response:
    """A route whose answer is a JSON array: the page, and its `next` as a Link header (RFC 8288) with
    the total in X-Total-Count (the array itself cannot carry them)."""
    resp = json_response(page)
    resp.headers["X-Total-Count"] = str(meta["total"])
    if meta["next"] is not None:
        resp.headers["Link"] = f'<{meta["next"]}>; rel="next"'
    return resp


# -- pages of a log that grows at its head (alarms, commands) -----------------------------------------

#: a page of a log newest first: by default, and at most (the bounds these routes had before they were paged)
LOG_PAGE, MAX_LOG_PAGE = 100, 10_000


def log_cursor(request: web.Request, parse_id: Callable[[str], T | None]) -> tuple[int, T] | None:
    """The `before` cursor of a log page, `<ms>:<id>` (the time and id of the previous page's last row,
    as its `next` gives it), or None when absent; a bad one is Problem 400."""
    raw = request.query.get("before")
    if raw is None:
        return None
    ms, sep, rest = raw.partition(":")
    when, ident = parse_int(ms), parse_id(rest) if sep else None
    if when is None or not 0 <= when <= MAX_ID or ident is None:
        raise invalid("before", f"before must be the cursor an earlier page's next gives (<ms>:<id>), got {raw[:60]!r}")
    return when, ident


def log_page(request: web.Request, rows: list[T], limit: int,
             cursor: Callable[[T], str]) -> tuple[list[T], dict[str, Any]]:
    """A page of a log read newest first with one row more than `limit` (that row says a next page exists):
    the page and {"limit", "before", "next"}, `next` this route with `before` the cursor of the page's last
    row (other parameters kept), null on the last page."""
    page = rows[:limit]
    more = len(rows) > limit and page
    return page, {
        "limit": limit, "before": request.query.get("before"),
        "next": str(request.rel_url.update_query(limit=limit, before=cursor(page[-1]))) if more else None,
    }
