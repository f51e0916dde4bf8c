"""The technician CLI's client of the agent's local API: HTTP over its Unix socket.

The standard library, as the agent itself uses: the CLI loads no aiohttp (0.3 s of a command's
start) and no event loop for one request. Imported by a command when it asks the agent, not by
`--help` (http.client alone is 20 ms of a start that should stay under 0.1 s).
"""

from __future__ import annotations

import http.client
import socket as sockets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

PREFIX = "/v1"
CALL_TIMEOUT_S = 45.0  # above the agent's own 30 s bound on a live read
CONNECT_TIMEOUT_S = 5.0


class Unreachable(Exception):
    """The agent's socket does not answer; the message is the one-line reason."""


class Refused(Exception):
    """The agent answered with a problem document."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such socket (is the agent running?)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (the agent is not running; the socket file is stale)"
    if isinstance(exc, PermissionError):
        return "permission denied (join the socket's group, e.g. citygate, or use sudo)"
    if isinstance(exc, TimeoutError):
        return f"no answer within {CALL_TIMEOUT_S:.0f} s"
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


class UnixConnection(http.client.HTTPConnection):
    """HTTP over the agent's Unix socket (the agent serves HTTP/1.0: one request per connection)."""

    def __init__(self, path: Path, timeout: float | None) -> None:
        super().__init__("agent", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self.path))


class AgentClient:
    """One request per call, as the agent serves them."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def _open(self, method: str, path: str, params: Mapping[str, str] | None, body: Any,
              timeout: float | None) -> tuple[UnixConnection, http.client.HTTPResponse]:
        conn = UnixConnection(self.socket, timeout)
        url = f"{PREFIX}/{path}" + (f"?{urlencode(params)}" if params else "")
        try:
            conn.request(method, url, body=None if body is None else orjson.dumps(body),
                         headers={"Content-Type": "application/json"} if body is not None else {})
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise Unreachable(_reason(exc)) from None

    def call(self, method: str, path: str, *, params: Mapping[str, str] | None = None, body: Any = None) -> Any:
        conn, resp = self._open(method, path, params, body, CALL_TIMEOUT_S)
        try:
            payload = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(_reason(exc)) from None
        finally:
            conn.close()
        return _answer(resp.status, payload)

    def stream(self, path: str, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        conn, resp = self._open("GET", path, params, None, CONNECT_TIMEOUT_S)
        try:
            if resp.status != 200:
                _answer(resp.status, resp.read())
            if conn.sock is not None:
                conn.sock.settimeout(None)  # a quiet street sends nothing for minutes: no read timeout
            while line := resp.readline():
                if line.strip():
                    yield orjson.loads(line)
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(_reason(exc)) from None
        finally:
            conn.close()


def _answer(status: int, payload: bytes) -> Any:
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        doc = {"detail": payload[:200].decode("utf-8", "replace")}
    if status >= 400:
        detail = doc.get("detail") if isinstance(doc, dict) else None
        raise Refused(status, str(detail or f"the agent answered {status}"))
    return doc
