"""Reading a request body with a hard bound on its *decompressed* size.

A gzip bomb (1 GB of zeros is about 1 MB compressed) must cost no more than the limit in
memory and time, so the body is inflated incrementally with `max_length` and refused as soon
as the output passes the limit. A zstd body (citygate_wire.compression) declares its content size,
which is checked against the limit before it is decompressed. aiohttp's own request decompression must be off
(`AppRunner(..., auto_decompress=False)`, see collector.app.start) for this to see the raw bytes.
"""

from __future__ import annotations

import zlib

from aiohttp import web

from citygate_wire.compression import DecodeError, unzstd
from collector.problem import Problem

CHUNK = 64 * 1024


def _too_large(limit: int, what: str) -> Problem:
    return Problem(413, "body-too-large", "Request body too large",
                   f"the {what} body exceeds the limit of {limit} bytes", limit=limit)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The body, decompressed if `Content-Encoding: gzip` or `zstd`; Problem 413/415/400 when it cannot be used."""
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "zstd"):
        raise Problem(415, "unsupported-encoding", "Unsupported content encoding",
                      f"Content-Encoding {encoding!r} is not supported; send gzip, zstd or identity")
    declared = request.content_length
    if declared is not None and declared > limit:
        raise _too_large(limit, "declared")
    if encoding == "zstd":
        return _unzstd(await _raw(request, limit), limit)
    inflater = zlib.decompressobj(wbits=31) if encoding == "gzip" else None  # wbits=31: gzip container only
    out = bytearray()
    received = 0
    async for chunk in request.content.iter_chunked(CHUNK):
        received += len(chunk)
        if received > limit:
            raise _too_large(limit, "received")
        if inflater is None:
            out += chunk
            continue
        data = chunk
        while data:
            if inflater.eof:
                raise Problem(400, "bad-encoding", "Malformed gzip body", "bytes follow the end of the gzip stream")
            try:
                # never 0: max_length=0 means "no limit" to zlib
                out += inflater.decompress(data, limit + 1 - len(out))
            except zlib.error as exc:
                raise Problem(400, "bad-encoding", "Malformed gzip body", f"cannot inflate the body: {exc}") from None
            if len(out) > limit:
                raise _too_large(limit, "decompressed")
            if inflater.unused_data:
                raise Problem(400, "bad-encoding", "Malformed gzip body", "bytes follow the end of the gzip stream")
            data = inflater.unconsumed_tail
    if inflater is not None and not inflater.eof:
        raise Problem(400, "bad-encoding", "Malformed gzip body", "the gzip stream is truncated")
    return bytes(out)


async def _raw(request: web.Request, limit: int) -> bytes:
    out = bytearray()
    async for chunk in request.content.iter_chunked(CHUNK):
        out += chunk
        if len(out) > limit:
            raise _too_large(limit, "received")
    return bytes(out)


def _unzstd(data: bytes, limit: int) -> bytes:
    try:
        return unzstd(data, limit)
    except DecodeError as exc:
        if exc.too_large:
            raise _too_large(limit, "decompressed") from None
        raise Problem(400, "bad-encoding", "Malformed zstd body", str(exc)) from None
