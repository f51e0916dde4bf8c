"""The thin asyncio shell around the codecs: one request, one answer, on a fresh TCP connection.

Every exchange is bounded in time (`timeout_s`, for connect, send and the whole answer) and in
size (the reader's caps), so a camera that stalls, floods or talks nonsense costs one error,
never a hung poller. A 401 with a Digest challenge is answered once, then the answer stands.
No URL, user or password is ever put in an error message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from drivers.cameras import digest, onvif, wire
from drivers.cameras.onvif import Credentials
from drivers.cameras.sdp import VideoStream, parse_sdp
from drivers.errors import DecodeError

READ_CHUNK = 16 * 1024
USER_AGENT = "citygate-cameras/1"


class Unreachable(Exception):
    """No TCP connection, or no complete answer in time: the camera (or its path) is down."""


async def exchange(host: str, port: int, data: bytes, timeout_s: float, *, head_only: bool = False) -> wire.Response:
    """Send `data`, read one response. Unreachable for connection trouble, DecodeError for a bad answer."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(data)
            await writer.drain()
            parser = wire.ResponseReader(head_only=head_only)
            while True:
                chunk = await reader.read(READ_CHUNK)
                if not chunk:
                    return parser.eof()
                done = parser.feed(chunk)
                if done is not None:
                    return done
    except TimeoutError:
        raise Unreachable(f"no complete answer within {timeout_s:g} s") from None
    except OSError as exc:
        raise Unreachable(exc.strerror or type(exc).__name__) from None
    finally:
        if writer is not None:
            writer.close()


def _host_header(host: str, port: int) -> str:
    return f"{host}:{port}"


class DigestSession:
    """One camera's last Digest challenge, answered again with a counted nonce (RFC 7616 `nc`): a camera
    that wants Digest costs one exchange a request instead of two, until it changes its nonce."""

    def __init__(self) -> None:
        self.challenge: digest.Challenge | None = None
        self.count = 0

    def authorization(self, creds: Credentials | None, method: str, uri: str) -> dict[str, str]:
        if creds is None or self.challenge is None:
            return {}
        self.count += 1
        return {"Authorization": digest.authorization(self.challenge, creds.user, creds.password, method, uri,
                                                      self.count)}

    def learn(self, resp: wire.Response) -> bool:
        """Take the challenge of a 401; False if it has none we can answer."""
        header = resp.header("www-authenticate")
        if resp.status != 401 or header is None:
            return False
        self.challenge, self.count = digest.parse_challenge(header), 0
        return True


async def soap_call(host: str, port: int, path: str, body_for: Callable[[], bytes], timeout_s: float,
                    creds: Credentials | None, session: DigestSession | None = None) -> bytes:
    """POST one SOAP request (answering an HTTP Digest challenge if the camera sends one); the answer's body.

    A SOAP Fault comes back with HTTP 400/500: its body is returned for onvif.parse_body to raise it."""
    session = session or DigestSession()
    headers = {"Host": _host_header(host, port), "User-Agent": USER_AGENT,
               "Content-Type": 'application/soap+xml; charset=utf-8', "Connection": "close"}
    resp = await exchange(host, port, wire.request("POST", path, "HTTP/1.1",
                                                   {**headers, **session.authorization(creds, "POST", path)},
                                                   body_for()), timeout_s)
    if creds is not None and session.learn(resp):
        # a fresh body: a fresh UsernameToken nonce
        resp = await exchange(host, port, wire.request("POST", path, "HTTP/1.1",
                                                       {**headers, **session.authorization(creds, "POST", path)},
                                                       body_for()), timeout_s)
    if resp.status in (200, 400, 500) and resp.body:
        return resp.body
    raise DecodeError(f"ONVIF answered HTTP {resp.status} {resp.reason[:60]}")


class BodyMaker:
    """Makes a request body afresh for each attempt (each needs its own nonce and Created)."""

    def __init__(self, operation: str, creds: Credentials | None, camera_now: Callable[[], datetime],
                 to: str | None = None, arg: int = 0) -> None:
        self.operation, self.creds, self.camera_now, self.to, self.arg = operation, creds, camera_now, to, arg

    def __call__(self) -> bytes:
        return onvif.envelope(self.operation, creds=self.creds, created=self.camera_now(), to=self.to, arg=self.arg)



@dataclass(frozen=True, slots=True)
class StreamProbe:
    """What OPTIONS and DESCRIBE told of one stream; `status` is the RTSP status of DESCRIBE."""

    status: int
    reason: str
    video: tuple[VideoStream, ...] = ()
    error: str | None = None  # an SDP that would not parse, said once


async def probe_stream(host: str, port: int, path: str, timeout_s: float, creds: Credentials | None,
                       session: DigestSession | None = None) -> StreamProbe:
    """OPTIONS then DESCRIBE (never SETUP or PLAY: no frame is ever asked for)."""
    session = session or DigestSession()
    url = f"rtsp://{host}:{port}{path}"  # no credentials in it: they go in the Authorization header only
    base = {"User-Agent": USER_AGENT}
    opts = await exchange(host, port, wire.request("OPTIONS", url, "RTSP/1.0", {"CSeq": "1", **base}), timeout_s)
    if opts.status not in (200, 401):
        return StreamProbe(opts.status, opts.reason)
    describe = {"CSeq": "2", **base, "Accept": "application/sdp"}
    resp = await exchange(host, port, wire.request("DESCRIBE", url, "RTSP/1.0",
                                                   {**describe, **session.authorization(creds, "DESCRIBE", url)}),
                          timeout_s)
    if creds is not None and session.learn(resp):
        resp = await exchange(host, port, wire.request("DESCRIBE", url, "RTSP/1.0", {
            **describe, "CSeq": "3", **session.authorization(creds, "DESCRIBE", url)}), timeout_s)
    if resp.status != 200:
        return StreamProbe(resp.status, resp.reason)
    try:
        return StreamProbe(200, resp.reason, tuple(parse_sdp(resp.body)))
    except DecodeError as exc:
        return StreamProbe(200, resp.reason, (), str(exc))
