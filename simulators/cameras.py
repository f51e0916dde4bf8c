"""Simulated ONVIF cameras on loopback: an ONVIF device service (SOAP over HTTP) and an RTSP
responder each, with faults to inject. No image or frame exists here either: RTSP answers
OPTIONS and DESCRIBE (an SDP), and refuses SETUP and PLAY with 455.

    async with CameraSim("cam-1", user="watch", password="secret") as cam:
        cam.rtsp_status = 503          # the stream is refused
        cam.drift_s = 40               # the camera's clock runs 40 s ahead
        cam.raise_fault("tampering")   # a PullPoint notification, cleared by clear_fault
        cam.width, cam.height = 1280, 720
        await cam.go_offline(); await cam.go_online()

`citygate-sim cameras` serves N of them and prints the [[bus]] table to watch them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

import click

from drivers.cameras import digest
from drivers.errors import DecodeError
from simulators import camera_soap as soap

#: fault name -> (topic, data item) as the camera reports it
FAULTS = {
    "tampering": ("RuleEngine/TamperDetector/Tamper", "IsTamper"),
    "scene_change": ("VideoSource/GlobalSceneChange/ImagingService", "State"),
    "defocus": ("VideoSource/ImageTooBlurry/ImagingService", "State"),
    "video_loss": ("VideoSource/SignalLoss", "State"),
    "storage_failure": ("Device/HardwareFailure/StorageFailure", "Failed"),
}
MAX_REQUEST = 64 * 1024
LIFETIME_S = 600


@dataclass
class _Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    if length > MAX_REQUEST:
        return None
    body = await reader.readexactly(length) if length else b""
    return _Request(parts[0], parts[1], headers, body)


@dataclass
class _Subscription:
    queue: list[soap.SimNotification] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class CameraSim:
    def __init__(self, camera_id: str, *, user: str = "watch", password: str = "secret",
                 http_digest: bool = True, codec: str = "H264", width: int = 1920, height: int = 1080,
                 firmware: str = "V5.7.3 build 240612", host: str = "127.0.0.1") -> None:
        self.id = camera_id
        self.users = {user: password}
        self.http_digest = http_digest  # SOAP needs HTTP Digest too (else a UsernameToken is enough)
        self.codec, self.width, self.height = codec, width, height
        self.firmware = firmware
        self.host = host
        self.rtsp_status = 200  # 503, 404 ...: what OPTIONS/DESCRIBE answer instead of 200
        self.drift_s = 0.0
        self.faults: dict[str, bool] = dict.fromkeys(FAULTS, False)
        self.onvif_port = 0
        self.rtsp_port = 0
        self.requests: dict[str, int] = {}  # RTSP method or SOAP operation answered -> count (tests read it)
        self.challenged = 0  # 401s sent with a Digest challenge
        self._servers: list[asyncio.Server] = []
        self._subs: dict[int, _Subscription] = {}
        self._sub_ids = itertools.count(1)
        self._nonce = os.urandom(8).hex()
        self._conns: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[object]] = set()

    # -- lifecycle ------------------------------------------------------------------------------
    async def __aenter__(self) -> CameraSim:
        await self.go_online()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        await self.go_offline()

    async def go_online(self) -> None:
        """Listen (again, on the same ports once they are known)."""
        onvif = await asyncio.start_server(self._serve_http, self.host, self.onvif_port, reuse_address=True)
        self.onvif_port = onvif.sockets[0].getsockname()[1]
        self._servers = [onvif]
        await self.start_rtsp()

    async def start_rtsp(self) -> None:
        rtsp = await asyncio.start_server(self._serve_rtsp, self.host, self.rtsp_port, reuse_address=True)
        self.rtsp_port = rtsp.sockets[0].getsockname()[1]
        self._servers.append(rtsp)

    async def stop_rtsp(self) -> None:
        """The RTSP server dies, ONVIF still answers (the camera's streaming process crashed)."""
        rtsp = self._servers.pop()
        rtsp.close()
        await rtsp.wait_closed()

    async def go_offline(self) -> None:
        """Power cut: both ports refuse connections, open connections drop, subscriptions are lost."""
        for server in self._servers:
            server.close()
        for w in list(self._conns):
            w.close()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers = []
        for sub in self._subs.values():
            sub.wake.set()
        self._subs.clear()

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.drift_s)

    # -- fault injection ------------------------------------------------------------------------
    def raise_fault(self, name: str) -> None:
        self._set_fault(name, True)

    def clear_fault(self, name: str) -> None:
        self._set_fault(name, False)

    def _set_fault(self, name: str, active: bool) -> None:
        self.faults[name] = active
        topic, item = FAULTS[name]
        for sub in self._subs.values():
            sub.queue.append(soap.SimNotification(topic, item, active))
            sub.wake.set()

    # -- ONVIF over HTTP ------------------------------------------------------------------------
    async def _serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        me = asyncio.current_task()
        assert me is not None
        self._handlers.add(me)
        try:
            while (req := await _read_request(reader)) is not None:
                status, extra, body = await self._soap(req)
                head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
                        "Content-Type: application/soap+xml; charset=utf-8", f"Content-Length: {len(body)}", *extra]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
                await writer.drain()
                if req.headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass  # the camera goes offline: a handler cancelled then ends quietly (asyncio would log it)
        finally:
            self._conns.discard(writer)
            self._handlers.discard(me)
            writer.close()

    def _digest_ok(self, method: str, header: str | None) -> bool:
        if not header:
            return False
        try:
            p = digest.parse_authorization(header)
            password = self.users[p["username"]]
            ch = digest.Challenge(p["realm"], p["nonce"], p.get("algorithm", "MD5"), p.get("qop"), p.get("opaque"))
            want = digest.response_value(ch, p["username"], password, method, p["uri"], p.get("cnonce", ""),
                                         int(p.get("nc", "1"), 16))
        except (KeyError, ValueError, DecodeError):
            return False
        return p["nonce"] == self._nonce and p["response"] == want

    def _challenge(self) -> str:
        self.challenged += 1
        return f'WWW-Authenticate: Digest realm="{self.id}", qop="auth", nonce="{self._nonce}", algorithm=MD5'

    async def _soap(self, req: _Request) -> tuple[int, list[str], bytes]:
        try:
            r = soap.read_request(req.body, self.users, self.now())
        except (ValueError, SyntaxError):
            return 400, [], soap.fault("ter:InvalidArgVal", "not a SOAP request")
        if r.operation == "GetSystemDateAndTime":  # ONVIF: answered without authentication
            self._count(r.operation)
            return 200, [], soap.system_date_and_time(self.now())
        if self.http_digest and not self._digest_ok("POST", req.headers.get("authorization")):
            return 401, [self._challenge()], soap.fault("ter:NotAuthorized", "HTTP Digest authentication needed")
        if not r.token_ok and not self.http_digest:
            return 400, [], soap.fault("ter:NotAuthorized", "the UsernameToken is missing or wrong")
        self._count(r.operation)  # operations answered, each once whatever the authentication took
        return await self._operation(r, req.target)

    def _count(self, what: str) -> None:
        self.requests[what] = self.requests.get(what, 0) + 1

    async def _operation(self, r: soap.SoapRequest, target: str) -> tuple[int, list[str], bytes]:
        base = f"http://{self.host}:{self.onvif_port}"
        now = self.now()
        simple = {
            "GetDeviceInformation": lambda: soap.device_information("Citygate Sim", "SIM-IPC-2", self.firmware,
                                                                    f"SN-{self.id}"),
            "GetCapabilities": lambda: soap.capabilities(base),
            "GetServices": lambda: soap.services(base),
            "GetProfiles": lambda: soap.profiles(self.width, self.height, self.codec),
            "GetStreamUri": lambda: soap.stream_uri(f"rtsp://{self.host}:{self.rtsp_port}/stream1"),
        }
        if r.operation in simple:
            return 200, [], simple[r.operation]()
        if r.operation == "CreatePullPointSubscription":
            sid = next(self._sub_ids)
            new = self._subs[sid] = _Subscription()
            new.queue += [soap.SimNotification(topic, item, self.faults[name], "Initialized")
                          for name, (topic, item) in FAULTS.items()]
            return 200, [], soap.subscription(f"{base}/onvif/subscription/{sid}", now, LIFETIME_S)
        sub_id = target.rpartition("/")[2]
        sub = self._subs.get(int(sub_id)) if sub_id.isdigit() else None
        if r.operation in ("PullMessages", "Renew", "Unsubscribe") and sub is None:
            return 400, [], soap.fault("wsrf-rw:ResourceUnknownFault", "no such subscription")
        assert sub is not None or r.operation not in ("PullMessages", "Renew", "Unsubscribe")
        if r.operation == "PullMessages" and sub is not None:
            timeout = soap.duration_s(r.body.findtext("{http://www.onvif.org/ver10/events/wsdl}Timeout"), 10.0)
            if not sub.queue:
                sub.wake.clear()
                try:
                    await asyncio.wait_for(sub.wake.wait(), min(timeout, 60.0))
                except TimeoutError:
                    pass
            notes, sub.queue[:] = list(sub.queue[:32]), sub.queue[32:]
            return 200, [], soap.pull_messages(notes, self.now(), LIFETIME_S)
        if r.operation == "Renew":
            return 200, [], soap.renew(now, LIFETIME_S)
        if r.operation == "Unsubscribe":
            self._subs.pop(int(sub_id), None)
            return 200, [], soap.unsubscribe()
        return 400, [], soap.fault("ter:ActionNotSupported", f"{r.operation} is not simulated")

    # -- RTSP -----------------------------------------------------------------------------------
    def sdp(self) -> bytes:
        return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=citygate sim\r\nt=0 0\r\n"
                "m=video 0 RTP/AVP 96\r\n"
                f"a=rtpmap:96 {self.codec}/90000\r\na=framesize:96 {self.width}-{self.height}\r\n"
                "a=control:trackID=1\r\n").encode()

    async def _serve_rtsp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        me = asyncio.current_task()
        assert me is not None
        self._handlers.add(me)
        try:
            while (req := await _read_request(reader)) is not None:
                self._count(req.method)
                status, extra, body = self._rtsp(req)
                head = [f"RTSP/1.0 {status} {_REASONS.get(status, 'Error')}", f"CSeq: {req.headers.get('cseq', '0')}",
                        *extra]
                if body:
                    head += ["Content-Type: application/sdp", f"Content-Length: {len(body)}"]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass  # the camera goes offline: a handler cancelled then ends quietly (asyncio would log it)
        finally:
            self._conns.discard(writer)
            self._handlers.discard(me)
            writer.close()

    def _rtsp(self, req: _Request) -> tuple[int, list[str], bytes]:
        if self.rtsp_status != 200:
            return self.rtsp_status, [], b""
        if req.method == "OPTIONS":
            return 200, ["Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN"], b""
        if req.method != "DESCRIBE":
            return 455, [], b""  # no SETUP, no PLAY: there is no frame to give
        if not self._digest_ok("DESCRIBE", req.headers.get("authorization")):
            return 401, [self._challenge()], b""
        return 200, [], self.sdp()


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 455: "Method Not Valid in This State",
            500: "Internal Server Error", 503: "Service Unavailable"}


def bus_table(cams: list[CameraSim], name: str = "cameras", credentials: str = "cameras.secret") -> str:
    """The agent's [[bus]] table watching these cameras (TOML)."""
    out = [f'[[bus]]\nname = "{name}"\ntype = "cameras"\ncredentials = "{credentials}"\n']
    for cam in cams:
        out.append(f'[[bus.camera]]\nid = "{cam.id}"\nhost = "{cam.host}"\nonvif_port = {cam.onvif_port}\n'
                   f'\n[[bus.camera.stream]]\npath = "/stream1"\nport = {cam.rtsp_port}\ncodec = "{cam.codec}"\n'
                   f"width = {cam.width}\nheight = {cam.height}\n")
    return "\n".join(out)


def credentials_file(cams: list[CameraSim]) -> str:
    return "".join(f'[{c.id}]\nuser = "{u}"\npassword = {json.dumps(p)}\n\n'
                   for c in cams for u, p in list(c.users.items())[:1])


def write_bus_files(out: Path, cams: list[CameraSim]) -> str:
    """The [[bus]] table and its credentials file (created 0600 before anything is written in it)."""
    out.mkdir(parents=True, exist_ok=True)
    secret = out / "cameras.secret"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(credentials_file(cams))
    (out / "cameras-bus.toml").write_text(bus_table(cams))
    return f"wrote {out / 'cameras-bus.toml'} and {secret} (mode 0600)"


async def _serve(count: int, prefix: str, out: Path | None, faults: list[tuple[float, str, str]]) -> None:
    cams = [CameraSim(f"{prefix}-{i + 1}") for i in range(count)]
    for cam in cams:
        await cam.go_online()
    if out is not None:
        click.echo(write_bus_files(out, cams))
    else:
        click.echo(bus_table(cams))
    sys.stdout.flush()
    start = asyncio.get_running_loop().time()
    for at, which, fault in sorted(faults):
        await asyncio.sleep(max(0.0, start + at - asyncio.get_running_loop().time()))
        targets = cams if which == "*" else [c for c in cams if c.id == which]
        for cam in targets:
            await _inject(cam, fault)
        click.echo(f"{at:g} s: {fault} on {which}")
    await asyncio.Event().wait()


async def _inject(cam: CameraSim, fault: str) -> None:
    name, _, arg = fault.partition("=")
    if name == "offline":
        await cam.go_offline()
    elif name == "online":
        await cam.go_online()
    elif name == "rtsp" and arg == "down":
        await cam.stop_rtsp()
    elif name == "rtsp" and arg == "up":
        await cam.start_rtsp()
    elif name == "rtsp":
        cam.rtsp_status = int(arg or 200)
    elif name == "drift":
        cam.drift_s = float(arg or 0)
    elif name == "resolution":
        w, _, h = arg.partition("x")
        cam.width, cam.height = int(w), int(h)
    elif name in FAULTS:
        cam.raise_fault(name) if arg != "off" else cam.clear_fault(name)


FAULT_HELP = ("SECONDS:CAMERA:FAULT (CAMERA: an id or *). FAULT: offline, online, rtsp=503, rtsp=404, "
              "rtsp=200, rtsp=down, rtsp=up, drift=40, resolution=1280x720, tampering, tampering=off, scene_change, defocus, "
              "video_loss, storage_failure")


def _fault(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[tuple[float, str, str]]:
    out = []
    for text in values:
        parts = text.split(":", 2)
        if len(parts) != 3:
            raise click.BadParameter(f"{text!r}: expected {FAULT_HELP}", param_hint="--fault")
        try:
            at = float(parts[0])
        except ValueError:
            raise click.BadParameter(f"{text!r}: SECONDS is a number", param_hint="--fault") from None
        name = parts[2].partition("=")[0]
        if name not in {"offline", "online", "rtsp", "drift", "resolution", *FAULTS}:
            raise click.BadParameter(f"{text!r}: unknown fault {name!r}", param_hint="--fault")
        out.append((at, parts[1], parts[2]))
    return out


@click.command("cameras")
@click.option("--count", type=click.IntRange(1, 256), default=4, show_default=True, help="Cameras to simulate.")
@click.option("--prefix", default="cam", show_default=True, help="Camera ids: PREFIX-1, PREFIX-2 ...")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Write the [[bus]] table and the credentials file (0600) here instead of printing the table.")
@click.option("--fault", "faults", multiple=True, callback=_fault, metavar="S:CAM:FAULT", help=FAULT_HELP)
def cameras(count: int, prefix: str, out: Path | None, faults: list[tuple[float, str, str]]) -> None:
    """ONVIF cameras (SOAP over HTTP, Digest) and RTSP responders on loopback, with faults."""
    try:
        asyncio.run(_serve(count, prefix, out, faults))
    except KeyboardInterrupt:
        pass
