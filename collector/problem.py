"""RFC 9457 problem details: every 4xx/5xx the collector sends is application/problem+json.

Handlers raise `Problem`; the middleware also turns aiohttp's own HTTP errors (unknown route,
wrong method, body too large) into problem bodies, so a client never has to parse an HTML or
plain-text error. Under /open311/ every error takes the GeoReport v2 shape instead,
`[{"code": <status>, "description": ...}]`, or `<errors><error><code>…` on a `.xml` path: an
Open311 client knows no other.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from collector.reports import formats

if TYPE_CHECKING:  # the store and the CLI import this module, never the web app: aiohttp is the app's
    from aiohttp import web

log = logging.getLogger("citygate.collector")

CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:citygate:problem:"  # the list of types is in docs/collector-api.md
OPEN311_PREFIX = "/open311/"


class Problem(Exception):
    """An HTTP error with a problem body. `slug` names the type; `extra` adds members (`pointer` ...)."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{status} {slug}: {detail}")
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra
        self.descriptions: tuple[str, ...] = (detail,)

    def response(self) -> web.Response:
        body = {"type": TYPE_PREFIX + self.slug, "title": self.title, "status": self.status, "detail": self.detail}
        body.update(self.extra)
        return problem_response(self.status, body, self.headers)

    def open311_response(self, xml: bool = False) -> web.Response:
        return open311_response(self.status, self.descriptions, self.headers, xml=xml)


def problem_response(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> web.Response:
    from aiohttp import web

    return web.Response(status=status, body=orjson.dumps(body), content_type=CONTENT_TYPE, headers=headers)


def open311_response(status: int, descriptions: Sequence[str], headers: Mapping[str, str] | None = None, *,
                     xml: bool = False) -> web.Response:
    body = [{"code": status, "description": d} for d in descriptions]
    return formats.response(xml, "errors", body, status, headers)


Handler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]


async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    from aiohttp import web  # imported by the app that runs this; a module-level import is what this avoids

    open311 = request.path.startswith(OPEN311_PREFIX)
    xml = open311 and formats.is_xml(request.path)
    try:
        return await handler(request)
    except Problem as problem:
        return problem.open311_response(xml) if open311 else problem.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # keep Allow (405) and the like; drop the plain-text body and its type
        headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
        detail = f"{request.method} {request.path}: {exc.reason}"
        if open311:
            return open311_response(exc.status, [detail], headers, xml=xml)
        body = {"type": "about:blank", "title": exc.reason, "status": exc.status, "detail": detail}
        return problem_response(exc.status, body, headers)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        detail = "the collector failed on this request; it is logged"
        if open311:
            return open311_response(500, [detail], xml=xml)
        return problem_response(500, {"type": "about:blank", "title": "Internal Server Error", "status": 500,
                                      "detail": detail})


# what @web.middleware marks (a new-style middleware), without importing aiohttp.web with this module
problem_middleware.__middleware_version__ = 1  # type: ignore[attr-defined]
