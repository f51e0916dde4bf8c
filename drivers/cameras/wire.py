"""The reader of an RTSP/1.0 or HTTP/1.1 response, sans-I/O: bytes in, a `Response` or a DecodeError out.

Both protocols frame a response alike (status line, headers, a body sized by Content-Length, or
HTTP's chunked encoding), so the RTSP probe and the ONVIF SOAP client share this one reader.
A hostile or broken camera cannot make it grow without bound: the head, every header line and
the body are capped, and anything malformed is a DecodeError naming what was wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from drivers.errors import DecodeError

MAX_HEAD = 16 * 1024  # status line and headers together
MAX_HEADERS = 64
MAX_BODY = 256 * 1024  # an SDP is under 2 KiB, a PullMessages answer a few KiB

_STATUS = re.compile(rb"(RTSP/1\.0|HTTP/1\.[01]) ([1-5][0-9]{2})(?: ([^\r\n]*))?")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True, slots=True)
class Response:
    protocol: str  # "RTSP/1.0", "HTTP/1.1"
    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased; a repeated header: the first
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class ResponseReader:
    """Feed bytes as they arrive; `feed` returns the Response once it is complete, else None."""

    def __init__(self, *, head_only: bool = False, max_body: int = MAX_BODY) -> None:
        self._buf = bytearray()
        self._head: tuple[str, int, str, dict[str, str]] | None = None
        self._head_only = head_only  # the answer to a HEAD-like request carries no body
        self._max_body = max_body

    def feed(self, data: bytes) -> Response | None:
        self._buf += data
        if self._head is None:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEAD:
                    raise DecodeError(f"response head longer than {MAX_HEAD} bytes")
                return None
            if end > MAX_HEAD:
                raise DecodeError(f"response head longer than {MAX_HEAD} bytes")
            self._head = _parse_head(bytes(self._buf[:end]))
            del self._buf[: end + 4]
        protocol, status, reason, headers = self._head
        body = self._body(protocol, headers, status)
        if body is None:
            return None
        return Response(protocol, status, reason, headers, body)

    def eof(self) -> Response:
        """The peer closed: a response whose body ran to the close, or a DecodeError if it was cut."""
        if self._head is None:
            raise DecodeError(f"connection closed after {len(self._buf)} bytes, before a complete response head")
        protocol, status, reason, headers = self._head
        if "content-length" in headers or "transfer-encoding" in headers:
            raise DecodeError("connection closed before the end of the response body")
        return Response(protocol, status, reason, headers, bytes(self._buf))

    def _body(self, protocol: str, headers: dict[str, str], status: int) -> bytes | None:
        if self._head_only or status in (204, 304) or 100 <= status < 200:
            return b""
        encoding = headers.get("transfer-encoding")
        if encoding is not None:
            if encoding.strip().lower() != "chunked":
                raise DecodeError(f"unsupported Transfer-Encoding {encoding!r}")
            return self._chunked()
        length_text = headers.get("content-length")
        if length_text is None:
            if protocol.startswith("RTSP"):
                return b""  # RTSP: no body
            if len(self._buf) > self._max_body:  # HTTP: the body runs to the close, but not for ever
                raise DecodeError(f"body without a length over the {self._max_body}-byte limit")
            return None
        if not length_text.strip().isdigit():
            raise DecodeError(f"Content-Length is not a number: {length_text[:40]!r}")
        length = int(length_text)
        if length > self._max_body:
            raise DecodeError(f"body of {length} bytes is over the {self._max_body}-byte limit")
        if len(self._buf) < length:
            return None
        return bytes(self._buf[:length])

    def _chunked(self) -> bytes | None:
        out = bytearray()
        pos = 0
        while True:
            eol = self._buf.find(b"\r\n", pos)
            if eol < 0:
                if len(self._buf) - pos > 1024:
                    raise DecodeError("chunk size line longer than 1024 bytes")
                return None
            size_text = bytes(self._buf[pos:eol]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise DecodeError(f"bad chunk size {size_text[:20]!r}") from None
            if size < 0 or len(out) + size > self._max_body:
                raise DecodeError(f"chunked body over the {self._max_body}-byte limit")
            start = eol + 2
            if size == 0:
                return bytes(out) if self._buf.find(b"\r\n", start) >= 0 else None
            if len(self._buf) < start + size + 2:
                return None
            if self._buf[start + size : start + size + 2] != b"\r\n":
                raise DecodeError("chunk not followed by CRLF")
            out += self._buf[start : start + size]
            pos = start + size + 2


def _parse_head(head: bytes) -> tuple[str, int, str, dict[str, str]]:
    lines = head.split(b"\r\n")
    m = _STATUS.fullmatch(lines[0])
    if m is None:
        raise DecodeError(f"not an RTSP or HTTP status line: {lines[0][:60]!r}")
    if len(lines) - 1 > MAX_HEADERS:
        raise DecodeError(f"more than {MAX_HEADERS} header lines")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or _TOKEN.fullmatch(name) is None:
            raise DecodeError(f"malformed header line {line[:60]!r}")
        key = name.decode("ascii").lower()
        headers.setdefault(key, value.strip().decode("latin-1"))
    return m.group(1).decode("ascii"), int(m.group(2)), (m.group(3) or b"").decode("latin-1"), headers


def request(method: str, target: str, protocol: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """One request's bytes. Header values never carry CR or LF (the caller's config is checked)."""
    lines = [f"{method} {target} {protocol}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
