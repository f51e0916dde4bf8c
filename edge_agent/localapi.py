"""The running agent's local API for the technician's CLI: HTTP on a Unix socket, JSON answers.

The standard library's http.server serves it (HTTP/1.0, one request per connection): the event
loop accepts each connection, a short-lived thread reads the request and writes the reply, and
every handler runs in the agent's event loop, so the agent's state is only ever touched there.
An HTTP server library would cost the long-running agent about 11 MB of resident memory for a
few calls a day.

Access is the socket's file mode: the socket is 0660 with the configured group (`citygate`), so
only root, the agent's user and the group's members can connect. Read calls are open to them
all. Write calls (a lamp override) also need `technician = true` in `[local_api]`, otherwise
403. A live read of a device (`GET /v1/devices/{device}/live`) is a read call: it asks a device
for its registers, which changes nothing, and a technician must be able to use it on a gateway
whose write calls are locked. Every write is logged with the caller's uid (SO_PEERCRED) and
journalled as an event, so the collector learns who tested which lamp.

Endpoints (all under /v1):

    GET    status                       uptime, versions, loops, uplink, broker, clock, journal, devices,
                                        usage (uplink bytes today and this month, disk writes today, budget)
    GET    devices                      every device of every bus, with its poller's last state
    GET    devices/{device}/live        one live read (502 if the device does not answer)
    GET    journal                      counts, size, drops
    GET    events?limit=N&follow=1&samples=1   recent events; follow streams NDJSON lines
    GET    schedule                     the lighting service now: groups, levels, overrides, lamp faults
    PUT    lamps/{target}/override      {"level_pct": 0-100, "duration_s": s} (technician)
    DELETE lamps/{target}/override      end an override now (technician)

Overrides belong to the lighting package (`edge_agent.lighting.overrides`): through the lighting
service when the gateway has one (the target may then be a lamp group too; the service keeps it
across a reboot and returns to the programme at its expiry); without lighting, straight through
the lamp bus, and at its expiry (or when the agent stops) the lamp goes back to the level it had
before. Either way an expiry is journalled as `override_ended`.

The API takes a `LocalApiContext`: the few parts of the agent it reads, never the agent itself.

Errors are RFC 9457 problem documents (application/problem+json).

Each connection holds a thread, each follow stream a thread for as long as it lasts: at most
`max_connections` (32) connections are served at once and `max_follow` (8) of them may follow
events; beyond, 503 with a problem document, so a looping script cannot exhaust the gateway's
threads or memory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import grp
import http.server
import logging
import os
import platform
import re
import select
import socket
import socketserver
import stat
import struct
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

from drivers.base import Bus, LampBus
from drivers.errors import DriverError
from drivers.model import Event, Record, Sample, Severity
from edge_agent.clock import Clock, epoch_ms
from edge_agent.config import LocalApiConfig
from edge_agent.health import HealthMonitor
from edge_agent.journal import Journal
from edge_agent.lighting.model import LightingError, NotALamp, UnknownTarget
from edge_agent.lighting.overrides import LampOverrides
from edge_agent.service import Observer, Services, bus_of
from edge_agent.uploader import UplinkState

log = logging.getLogger("citygate.localapi")

API = "/v1"
RECENT_EVENTS = 200
FOLLOW_QUEUE = 1000
LIVE_READ_TIMEOUT_S = 30.0
MAX_OVERRIDE_S = 12 * 3600  # an override a technician forgets must still end the same night
REQUEST_TIMEOUT_S = 10.0  # a client that connects and sends nothing does not keep a thread
MAX_BODY_BYTES = 64 * 1024
HANGUP_CHECK_S = 1.0  # how often a stream waiting for a record checks that its client is still there
REFUSED_DRAIN_S = 2.0  # a connection refused for being one too many is read (and dropped) this long at most

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str]
    body: bytes
    peer: dict[str, int] | None
    #: the path's {parameters}, decoded
    match_info: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Stream:
    """A 200 reply whose body is written as `chunks` yields it, until it ends or the client goes away."""

    content_type: str
    chunks: AsyncGenerator[bytes, None]
    #: run in the loop once the stream is over, whether or not a chunk was ever asked for
    release: Callable[[], None] | None = None


Handler = Callable[[Request], Awaitable[Response | Stream]]


@dataclass(frozen=True)
class LocalApiContext:
    """What the local API reads and drives of the agent."""

    config: LocalApiConfig
    config_file: Path | None
    gateway_id: str
    commune: str
    uplink_url: str
    clock: Clock
    buses: Sequence[Bus]
    journal: Journal
    uplink: Callable[[], UplinkState]
    health: HealthMonitor
    services: Services
    lamps: LampOverrides
    emit: Callable[[Record], None]
    subscribe: Callable[[Observer], None]
    started_at: float


def problem(status: int, title: str, detail: str) -> Response:
    return Response(status, "application/problem+json",
                    orjson.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}))


def said(exc: LightingError) -> str:
    """What a person is told: the lamp and the reason, not the internal name of the rule it broke."""
    return f"{exc.name}: {exc.reason}"


def ok(doc: Any) -> Response:
    return Response(200, "application/json", orjson.dumps(doc, default=str))


def record_doc(record: Record) -> dict[str, Any]:
    if isinstance(record, Sample):
        return {"kind": "sample", "device": record.device, "ts_ms": record.ts_ms, "values": dict(record.values)}
    return {"kind": "event", "device": record.device, "ts_ms": record.ts_ms, "code": record.code,
            "severity": str(record.severity), "detail": dict(record.detail)}


def peer(sock: socket.socket) -> dict[str, int] | None:
    """pid, uid and gid of the process at the other end of the Unix socket."""
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    pid, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return {"pid": pid, "uid": uid, "gid": gid}


def versions() -> dict[str, str]:
    # imported when a technician asks, like timesync in status(): the running agent never needs them
    import importlib.metadata

    out = {"python": platform.python_version()}
    for dist in ("citygate", "aiohttp", "pymodbus", "aiomqtt", "bleak"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[dist] = importlib.metadata.version(dist)
    # the loop the agent runs on (edge_agent.eventloop): "uvloop" or "asyncio"
    out["event_loop"] = type(asyncio.get_running_loop()).__module__.split(".")[0]
    return out


class EventFeed:
    """Recent events kept in memory, and live followers: fed every poll and event in emit order, each once what was journalled before it is committed (edge_agent.live_feed)."""

    def __init__(self, size: int = RECENT_EVENTS) -> None:
        self.recent: deque[Record] = deque(maxlen=size)
        self.followers: set[Follower] = set()

    def observe(self, record: Record) -> None:
        if isinstance(record, Event):
            self.recent.append(record)
        for follower in self.followers:
            follower.offer(record)

    def close(self) -> None:
        for follower in self.followers:
            follower.offer(None)


class Follower:
    def __init__(self, samples: bool) -> None:
        self.samples = samples
        self.queue: asyncio.Queue[Record | None] = asyncio.Queue(FOLLOW_QUEUE)
        self.dropped = 0

    def offer(self, record: Record | None) -> None:
        if isinstance(record, Sample) and not self.samples:
            return
        try:
            self.queue.put_nowait(record)
        except asyncio.QueueFull:
            # a slow terminal must never hold back the agent: count what it missed and say so
            self.dropped += 1


class LocalApi:
    """`async with LocalApi(ctx):` serves the socket; a socket that cannot be bound is logged, not fatal."""

    def __init__(self, ctx: LocalApiContext) -> None:
        self.ctx = ctx
        self.config = ctx.config
        self.path: Path = self.config.socket
        self.feed = EventFeed()
        self._server: _Server | None = None
        ctx.subscribe(self.feed.observe)
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", _route("status"), self.status),
            ("GET", _route("devices"), self.devices),
            ("GET", _route("devices/{device}/live"), self.live_read),
            ("GET", _route("journal"), self.journal),
            ("GET", _route("events"), self.events),
            ("GET", _route("schedule"), self.schedule),
            ("PUT", _route("lamps/{device}/override"), self._writer(self.set_override)),
            ("DELETE", _route("lamps/{device}/override"), self._writer(self.clear_override)),
            ("DELETE", _route("sensors/{device}/counter"), self._writer(self.forget_counter)),
        ]

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> LocalApi:
        loop = asyncio.get_running_loop()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _remove_stale_socket(self.path)
            server = _Server(str(self.path), self, loop)
        except OSError as exc:
            log.error("local API disabled: cannot listen on %s: %s", self.path, exc.strerror or exc)
            return self
        # the loop accepts (no thread waits on the listening socket); each request gets a thread of its own
        loop.add_reader(server.fileno(), server.handle_request)
        self._server = server
        self._set_access()
        log.info("local API listening on %s (write calls %s)", self.path,
                 "enabled" if self.config.technician else "disabled: technician = false")
        return self

    def _set_access(self) -> None:
        os.chmod(self.path, 0o660)
        try:
            gid = grp.getgrnam(self.config.group).gr_gid
        except KeyError:
            current = os.stat(self.path).st_gid
            log.warning("group %r does not exist: the socket keeps group %d, so only its owner and that group can "
                        "use it", self.config.group, current)
            return
        try:
            os.chown(self.path, -1, gid)
        except PermissionError as exc:
            log.warning("cannot give %s to group %r: %s", self.path, self.config.group, exc.strerror)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self.feed.close()
        await self.ctx.lamps.aclose()
        if self._server is not None:
            asyncio.get_running_loop().remove_reader(self._server.fileno())
            self._server.server_close()
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    # -- plumbing ----------------------------------------------------------------------------

    async def dispatch(self, request: Request) -> Response | Stream:
        """The reply to one request: its route's handler, or a problem document."""
        allowed: list[str] = []
        for method, pattern, handler in self.routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            request = replace(request, match_info={k: unquote(v) for k, v in match.groupdict().items()})
            try:
                return await handler(request)
            except Exception as exc:
                log.exception("local API %s %s failed", request.method, request.path)
                return problem(500, "Internal error",
                               f"{type(exc).__name__}: {exc} (the agent's log has the details)")
        if allowed:
            return problem(405, "Method Not Allowed", f"{request.method} {request.path}: use {', '.join(allowed)}")
        return problem(404, "Not Found", f"no endpoint {request.path} (the API is under {API}/)")

    def _writer(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response | Stream:
            if not self.config.technician:
                return problem(403, "Forbidden", f"write calls need the technician role: set technician = true in "
                                                 f"[local_api] of {self.ctx.config_file} and restart the agent")
            return await handler(request)
        return guarded

    def _now_ms(self) -> int:
        return epoch_ms(self.ctx.clock.now())

    def _find(self, device: str) -> Bus | None:
        return bus_of(self.ctx.buses, device)

    # -- read calls --------------------------------------------------------------------------

    async def status(self, request: Request) -> Response:
        from edge_agent.timesync import clock_quality

        ctx = self.ctx
        stats = await ctx.journal.stats()
        up = ctx.uplink()
        states = [s for bus in ctx.buses for s in bus.states()]
        by_state: dict[str, int] = {}
        for s in states:
            by_state[s.state] = by_state.get(s.state, 0) + 1
        loops = ctx.health.verdicts()
        services = {name: dict(s.status()) for name, s in ctx.services.reporting.items()}
        return ok({
            "gateway": {"id": ctx.gateway_id, "commune": ctx.commune},
            "versions": versions(),
            "started_ms": int(ctx.started_at * 1000),
            "uptime_s": round(time.time() - ctx.started_at, 1),
            "healthy": all(v.healthy for v in loops),
            "loops": [{"name": v.name, "age_s": round(v.age_s, 1), "limit_s": v.limit_s, "healthy": v.healthy,
                       "problem": v.problem} for v in loops],
            "uplink": {"url": ctx.uplink_url, **asdict(up)},
            "broker": services.get("control", {"configured": False}),
            "services": services,
            "clock": {"now_ms": self._now_ms(), **clock_quality().to_doc()},
            "journal": {"records": stats.records, "oldest_unsent_ts_ms": stats.oldest_ts_ms,
                        "size_bytes": stats.size_bytes, "dropped_total": stats.dropped_total},
            "devices": {"total": len(states), **by_state},
            "local_api": {"socket": str(self.path), "technician": self.config.technician},
            "usage": self._usage(),
        })

    def _usage(self) -> dict[str, Any] | None:
        uploader = self.ctx.services.uploader
        if uploader is None:
            return None
        uploader.usage.sample_disk()
        return uploader.usage.doc()

    async def devices(self, request: Request) -> Response:
        doc = []
        for bus in self.ctx.buses:
            kind = "lamps" if isinstance(bus, LampBus) else "devices"
            for s in bus.states():
                doc.append({**asdict(s), "bus_kind": kind, "override": self.ctx.lamps.override_of(s.device)})
        return ok(doc)

    async def live_read(self, request: Request) -> Response:
        device = request.match_info["device"]
        bus = self._find(device)
        if bus is None:
            return problem(404, "Unknown device", f"no bus of this gateway has a device {device!r}")
        try:
            async with asyncio.timeout(LIVE_READ_TIMEOUT_S):
                sample = await bus.read(device)
        except TimeoutError:
            return problem(504, "Device timeout", f"{device} on {bus.name}: no answer in {LIVE_READ_TIMEOUT_S:.0f} s")
        except DriverError as exc:
            return problem(502, "Device error", f"{device} on {bus.name}: {exc}")
        return ok({"bus": bus.name, **record_doc(sample)})

    async def journal(self, request: Request) -> Response:
        journal = self.ctx.journal
        stats = await journal.stats()
        return ok({**asdict(stats), "records": stats.records, "path": str(journal.path),
                   "max_records": journal.max_records})

    async def events(self, request: Request) -> Response | Stream:
        try:
            limit = int(request.query.get("limit", "50"))
        except ValueError:
            return problem(400, "Bad limit", f"limit must be an integer, got {request.query['limit']!r}")
        limit = max(0, min(limit, RECENT_EVENTS))
        recent = list(self.feed.recent)[-limit:] if limit else []
        if request.query.get("follow") not in ("1", "true"):
            return ok([record_doc(r) for r in recent])
        if len(self.feed.followers) >= self.config.max_follow:
            return problem(503, "Too many follow streams",
                           f"{len(self.feed.followers)} streams already follow events (at most "
                           f"{self.config.max_follow}, [local_api] max_follow): stop one or try later")
        follower = Follower(samples=request.query.get("samples") in ("1", "true"))
        # counted from now, not from the first chunk: two requests at once cannot both take the last place
        self.feed.followers.add(follower)
        return Stream("application/x-ndjson", self._follow(follower, recent),
                      release=lambda: self.feed.followers.discard(follower))

    async def _follow(self, follower: Follower, recent: list[Record]) -> AsyncGenerator[bytes, None]:
        """NDJSON lines: the recent events, then each record as it is journalled, in chunks of what has queued."""
        try:
            if recent:
                yield b"".join(orjson.dumps(record_doc(record), default=str) + b"\n" for record in recent)
            while (live := await follower.queue.get()) is not None:
                lines = []
                while live is not None:  # what queued meanwhile (a burst of samples) goes out in one write
                    if follower.dropped:
                        lines.append(orjson.dumps({"kind": "dropped", "count": follower.dropped}) + b"\n")
                        follower.dropped = 0
                    lines.append(orjson.dumps(record_doc(live), default=str) + b"\n")
                    if follower.queue.empty():
                        break
                    live = follower.queue.get_nowait()
                yield b"".join(lines)
                if live is None:
                    return
        finally:
            self.feed.followers.discard(follower)

    async def schedule(self, request: Request) -> Response:
        lighting = self.ctx.services.lighting
        if lighting is None:
            return problem(404, "No lighting", "this gateway has no [lighting] section: no schedule to show")
        return ok(lighting.snapshot())

    # -- write calls -------------------------------------------------------------------------

    async def set_override(self, request: Request) -> Response:
        device = request.match_info["device"]
        try:
            body = orjson.loads(request.body)
            level = body["level_pct"]
            duration = body["duration_s"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return problem(400, "Bad override", 'expected {"level_pct": 0-100, "duration_s": seconds}')
        if not isinstance(level, int) or isinstance(level, bool) or not 0 <= level <= 100:
            return problem(400, "Bad level", f"level_pct must be an integer 0-100, got {level!r}")
        if not isinstance(duration, int | float) or isinstance(duration, bool) or not 1 <= duration <= MAX_OVERRIDE_S:
            return problem(400, "Bad duration", f"duration_s must be 1-{MAX_OVERRIDE_S} s, got {duration!r}")
        who = request.peer
        until = self.ctx.clock.now() + timedelta(seconds=duration)
        lamps = self.ctx.lamps
        try:
            held = await lamps.hold(device, level, until, who["uid"] if who else None)
        except UnknownTarget as exc:
            return problem(404, "Unknown device", said(exc))
        except NotALamp as exc:
            return problem(409, "Not a lamp", said(exc))
        except LightingError as exc:
            return problem(409, "Override refused", said(exc))
        except DriverError as exc:
            return problem(502, "Device error", f"{device}: {exc}")
        audit = {"level_pct": level, "until_ms": epoch_ms(until), "via": lamps.via}
        if "feedback_level_pct" in held:
            audit["feedback_level_pct"] = held["feedback_level_pct"]
        if "restore_pct" in held:
            audit["restore_level_pct"] = held["restore_pct"]
        self._audit(device, "override_set", audit, who)
        return ok({"device": device, "via": lamps.via, "level_pct": level, "until_ms": epoch_ms(until), **held})

    async def clear_override(self, request: Request) -> Response:
        device = request.match_info["device"]
        lamps = self.ctx.lamps
        try:
            released = await lamps.release(device)
        except LightingError as exc:
            return problem(409, "Override not cleared", said(exc))
        except DriverError as exc:
            return problem(502, "Device error", f"{device}: override ended but the level was not restored: {exc}")
        if released is None:
            return problem(404, "No override", f"{device} has no override to clear")
        if lamps.via == "lighting":  # a direct override's end is journalled as override_ended with the level restored
            self._audit(device, "override_cleared", {"via": lamps.via}, request.peer)
        return ok({"device": device, "via": lamps.via, **released})

    async def forget_counter(self, request: Request) -> Response:
        """A BTHome sensor whose encryption counter restarted (a battery change): accept its next one."""
        device = request.match_info["device"]
        bus = self._find(device)
        forget = getattr(bus, "forget_counter", None)
        if bus is None or not callable(forget):
            return problem(404, "No such sensor", f"{device} is no BLE sensor of this gateway")
        try:
            previous = forget(device)
        except DriverError as exc:
            return problem(409, "No counter", str(exc))
        self._audit(device, "ble_counter_forgotten", {"previous": previous}, request.peer)
        return ok({"device": device, "previous_counter": previous})

    def _audit(self, device: str, code: str, detail: dict[str, Any], who: dict[str, int] | None) -> None:
        by = f"uid {who['uid']} (pid {who['pid']})" if who else "the agent"
        log.info("%s %s by %s: %s", code, device, by, detail)
        self.ctx.emit(Event(device, self._now_ms(), code, Severity.INFO,
                              {**detail, "source": "local_api", **({"uid": who["uid"]} if who else {})}))


def _route(template: str) -> re.Pattern[str]:
    """`devices/{device}/live` -> the pattern of its raw path under API, one named group per {parameter}."""
    return re.compile("^" + API + "/" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")


def _remove_stale_socket(path: Path) -> None:
    """A socket file left by an agent that was killed would make the bind fail: remove it (never another file)."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True  # a follower still streaming never holds up the agent's exit
    timeout = 0  # handle_request is called when the socket is readable: never wait for a connection

    def __init__(self, path: str, api: LocalApi, loop: asyncio.AbstractEventLoop) -> None:
        self.api = api
        self.loop = loop
        self.max_connections = api.config.max_connections
        self._slots = threading.BoundedSemaphore(self.max_connections)
        super().__init__(path, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """In the loop: a thread for the connection if one of the `max_connections` places is free, else 503."""
        if not self._slots.acquire(blocking=False):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse(self, sock: socket.socket) -> None:
        """503 without a thread: written at once, then whatever the client sends is read and dropped until it
        hangs up (closing on unread bytes would reset the connection before the client read the reply)."""
        body = problem(503, "Too many connections",
                       f"{self.max_connections} connections are being served ([local_api] max_connections): "
                       f"try again shortly").body
        head = (f"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/problem+json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.send(head + body)  # a few hundred bytes into an empty socket buffer: never blocks
            sock.shutdown(socket.SHUT_WR)
        fd = sock.fileno()

        def finish() -> None:
            if sock.fileno() != -1:
                self.loop.remove_reader(fd)
                sock.close()

        def drain() -> None:
            try:
                if sock.recv(65536):
                    return
            except BlockingIOError:
                return
            except OSError:
                pass
            finish()

        self.loop.add_reader(fd, drain)
        self.loop.call_later(REFUSED_DRAIN_S, finish)

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """From a request thread: run `coro` in the agent's event loop."""
        try:
            return asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError:  # the loop has closed
            coro.close()
            raise

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.submit(coro).result()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("local API connection failed")


class _Handler(http.server.BaseHTTPRequestHandler):
    """One request, in its own thread: parse it, have the event loop answer it, write the answer."""

    server: _Server
    server_version = "citygate-agent"
    default_request_version = "HTTP/1.0"  # a garbled request line still gets a status line with its problem
    timeout = REQUEST_TIMEOUT_S

    def do_GET(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._send(problem(400, "Bad request", "Content-Length is not a number"))
            return
        if not 0 <= length <= MAX_BODY_BYTES:
            self._send(problem(413, "Body too large", f"request bodies are at most {MAX_BODY_BYTES} bytes"))
            return
        url = urlsplit(self.path)
        query: dict[str, str] = {}
        for key, value in parse_qsl(url.query, keep_blank_values=True):
            query.setdefault(key, value)
        request = Request(self.command, url.path, query, self.rfile.read(length), peer(self.connection))
        try:
            reply = self.server.call(self.server.api.dispatch(request))
        except (RuntimeError, concurrent.futures.CancelledError):
            self._send(problem(503, "Agent stopping", "the agent is shutting down"))
            return
        if isinstance(reply, Stream):
            self._stream(reply)
        else:
            self._send(reply)

    do_PUT = do_DELETE = do_POST = do_GET

    def _send(self, reply: Response) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def _stream(self, reply: Stream) -> None:
        try:
            self.send_response(200)
            self.send_header("Content-Type", reply.content_type)
            self.end_headers()
            self.connection.settimeout(None)  # a paused terminal misses lines (and is told so); it is not cut off
            while (chunk := self._next_chunk(reply)) is not None:
                self.wfile.write(chunk)
        except OSError:  # the technician's terminal went away
            pass
        finally:
            with contextlib.suppress(RuntimeError, concurrent.futures.CancelledError):
                self.server.call(_end(reply))

    def _next_chunk(self, reply: Stream) -> bytes | None:
        """The stream's next chunk; None at its end, or once the client has hung up while nothing was written."""
        future = self.server.submit(_next(reply.chunks))
        while True:
            try:
                return future.result(timeout=HANGUP_CHECK_S)
            except TimeoutError:
                if _hung_up(self.connection):
                    future.cancel()  # ends the follower in the loop: a quiet gateway keeps no thread per old terminal
                    return None

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """A request http.server cannot parse gets a problem document too, like every error of this API."""
        title = message or self.responses.get(code, ("Error",))[0]
        self.close_connection = True
        with contextlib.suppress(OSError):
            self._send(problem(code, title, explain or title))

    def log_message(self, format: str, *args: Any) -> None:
        """No access log: write calls are logged with the caller's uid, and journalled."""


async def _next(chunks: AsyncGenerator[bytes, None]) -> bytes | None:
    return await anext(chunks, None)


async def _end(reply: Stream) -> None:
    try:
        await reply.chunks.aclose()
    finally:
        if reply.release is not None:
            reply.release()


def _hung_up(sock: socket.socket) -> bool:
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True
