"""Sends the journal to the collector in sequence order, and deletes only what the collector acknowledged.

Compressed JSON batches (gzip, or zstd with the shipped dictionary: `[uplink] encoding`,
citygate_wire.compression), bounded in records and bytes, POSTed with the gateway's bearer token
over one keep-alive connection. Failures back off exponentially with full jitter, but a collector that
answers 503 or 429 with a Retry-After (collector.admission, busy with a fleet back from an outage) is
tried again after the time it gives. With an https:// URL
the server certificate is verified (system CAs, or the configured CA file) and a failed handshake
is an error that backs off like any other: there is no fall-back to plain HTTP.

The connection is made before a batch is read, so a collector that cannot be reached costs no
batch read, compressed and held in memory at each attempt. The HTTP exchange is the standard
library's http.client in a daemon worker thread, bounded by `timeout_s` for the connect and the
request together: an HTTP client library would cost the long-running agent about 11 MB of
resident memory for one POST every few seconds. A timed-out or cancelled exchange has its socket
shut down, which ends the worker at once; a worker stuck in a connect never delays the agent's exit.

A record the collector refuses with a pointer to it is quarantined (journal.quarantine), so it
cannot hold back every later one; one refused for a date ahead of the collector's clock is
reported as `clock_suspect` too. A batch that fails for any other reason is sent again with
back-off; once the same batch has failed for longer than `stall_limit_s`, `stall()` says so and
the uploader's health is bad (edge_agent.health): the agent's own loops all look busy while the
gateway's data no longer leaves it.

A cellular plan is paid by the byte, and each POST costs headers both ways, and a new connection a
TLS handshake, whatever it carries: with `batch_max_age_s` records wait up to that long to share one
batch (a full batch, or a major or critical event, goes at once). A collector closes a connection
idle longer than its keep-alive (75 s for aiohttp and nginx), so such batches reconnect: the TLS
session is resumed (RFC 8446 §2.2), which spares the server's certificate chain (a small POST on a
new connection: 1.5 kB instead of 2.55 kB with a two-certificate P-256 chain). Every exchange's
bytes, as the kernel counted them on the connection, go to the usage meter (edge_agent.uplink_usage)
that `citygate-agent status` reads. bench/bench_uplink.py measures a cabinet-day through a counting proxy.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import http.client
import logging
import random
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson

from citygate_wire.common import FUTURE_TIMESTAMP, PATH, VERSION
from citygate_wire.compression import Compressor, Encoding
from drivers.model import Event, Record, Severity
from edge_agent.clock import Clock, epoch_ms
from edge_agent.config import GatewayConfig, UplinkConfig
from edge_agent.journal import Journal, PendingBatch
from edge_agent.uplink_usage import TcpCount, UsageMeter, tcp_count

log = logging.getLogger("citygate.uploader")

T = TypeVar("T")

#: How long the same batch may go on failing before the uploader's health is bad: longer than any
#: back-off (backoff_max_s), short enough that a technician hears of it the same night.
STALL_LIMIT_S = 900.0
CLOCK_SUSPECT = "clock_suspect"
#: the device a `clock_suspect` names when the clock in doubt is the gateway's own
GATEWAY_CLOCK = "clock"
#: events that do not wait for the batch's age
URGENT = frozenset({Severity.MAJOR, Severity.CRITICAL})


class UploadError(Exception):
    """One failed upload attempt: says why (status and problem detail, or the connection error)."""

    def __init__(self, reason: str, status: int | None = None, problem: dict[str, Any] | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.problem = problem or {}
        #: a busy collector's Retry-After (503, 429): the next attempt waits that long, not the back-off
        self.retry_after_s = retry_after_s


@dataclass
class UplinkState:
    """What the CLI and the MQTT state message report about the uplink."""

    connected: bool = False
    last_success_ms: int | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    uploaded_records: int = 0
    #: the first seq of the batch that keeps failing, and since when (wall clock): a stall in the making
    failing_seq: int | None = None
    failing_since_ms: int | None = None


class ResumingHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS that offers the previous connection's TLS session, so a reconnection skips the certificates."""

    session: ssl.SSLSession | None = None

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)  # the TCP connection; no proxy tunnel on the uplink
        context: ssl.SSLContext = self._context  # type: ignore[attr-defined]
        self.sock = context.wrap_socket(self.sock, server_hostname=self.host, session=self.session)


def ssl_context(uplink: UplinkConfig) -> ssl.SSLContext | None:
    if not uplink.url.startswith("https://"):
        return None
    # create_default_context verifies the certificate and the host name
    return ssl.create_default_context(cafile=str(uplink.ca_file) if uplink.ca_file else None)


def batch_body(compressor: Compressor, head: bytes, records: list[bytes]) -> bytes:
    """The compressed batch: `head`, the JSON array of `records`, and "}"."""
    return compressor.compress(_pieces(head, records))


def _pieces(head: bytes, records: list[bytes]) -> list[bytes]:
    out = [head + b"["]
    out += (b"," + record if i else record for i, record in enumerate(records))
    out.append(b"]}")
    return out


class Uploader:
    def __init__(self, gateway: GatewayConfig, uplink: UplinkConfig, journal: Journal, clock: Clock) -> None:
        self.gateway = gateway
        self.uplink = uplink
        self.journal = journal
        self.clock = clock
        self.state = UplinkState()
        #: called at every turn of the loop, so the watchdog can tell a stuck uploader from a patient one
        self.heartbeat: Callable[[], None] = lambda: None
        url = urlsplit(uplink.url)
        self._netloc = url.netloc.rpartition("@")[2]
        self._endpoint = url.path + PATH
        self._tls = ssl_context(uplink)
        encoding: Encoding = "zstd" if uplink.encoding == "zstd" else "gzip"
        self._compressor = Compressor(encoding)
        self._headers = {
            "Authorization": f"Bearer {uplink.token}",
            "Content-Type": "application/json",
            "Content-Encoding": encoding,
        }
        self.usage = UsageMeter(gateway.state_dir, clock, _budget_bytes(uplink))
        self._counted = TcpCount()  # the open connection's counts already added to the usage
        self._urgent = False
        journal.observers.append(self._on_record)
        self._conn: http.client.HTTPConnection | None = None
        self._tls_session: ssl.SSLSession | None = None
        self._max_records = uplink.batch_max_records
        self._in_flight: list[int] = []
        self.stall_limit_s = max(STALL_LIMIT_S, 2 * uplink.backoff_max_s)
        self._failing_since: float | None = None  # monotonic, for stall()
        self._clock_reported = False
        self._head = b'{"v":%d,"gateway":%s,"commune":%s,"records":' % (
            VERSION, orjson.dumps(gateway.id), orjson.dumps(gateway.commune),
        )

    async def run(self) -> None:
        try:
            while True:
                self.heartbeat()
                back_off = False
                wait_s: float | None = None
                try:
                    sent = await self.upload_once()
                    # without a batch age, what came in during an upload goes at once, as before
                    if sent == 0 or (self.uplink.batch_max_age_s > 0 and sent < self._max_records):
                        await self._gather()
                except UploadError as exc:
                    self._failed(str(exc))
                    back_off = not await self._recover(exc)
                    wait_s = exc.retry_after_s
                # outside the except clause: the failed attempt's batch, held by the traceback, is freed first
                if back_off:
                    await asyncio.sleep(self._backoff() if wait_s is None else wait_s)
        finally:
            self._close()
            self.usage.save()

    async def upload_once(self) -> int:
        """Send the oldest pending batch; return how many records the collector acknowledged."""
        if not self.journal.backlog:
            return 0
        deadline = asyncio.get_running_loop().time() + self.uplink.timeout_s
        try:
            conn = await self._connection(deadline)
        except (OSError, http.client.HTTPException) as exc:
            raise UploadError(self._reason(exc)) from None
        # compressed on the journal's thread: a backlog's next batch is compressed while this one is on its way
        batch = await self.journal.read_pending(self._max_records, self.uplink.batch_max_bytes, self._body)
        if batch is None:
            return 0
        self._in_flight = batch.seqs
        self._urgent = False
        try:
            ack = await self._send(conn, batch, deadline)
        except UploadError:
            self._batch_failed(batch.seqs[0])
            raise
        finally:
            self._count()
        await self.journal.ack(ack)
        self._succeeded(len(batch.records))
        return len(batch.records)

    def _body(self, batch: PendingBatch) -> bytes:
        """The compressed batch, as the journal's thread makes it (read_pending's `prepare`)."""
        return batch_body(self._compressor, self._head, batch.records)

    async def _send(self, conn: http.client.HTTPConnection, batch: PendingBatch, deadline: float) -> int:
        """POST the batch; the seq the collector acknowledged, or UploadError."""
        try:
            status, payload, retry_after = await self._in_thread(lambda: self._post(conn, batch), deadline)
        except (OSError, http.client.HTTPException) as exc:
            raise UploadError(self._reason(exc)) from None
        if status != 200:
            problem = _problem(payload)
            detail = problem.get("detail") or problem.get("title") or payload[:200].decode("utf-8", "replace")
            raise UploadError(f"collector answered {status}: {detail}", status, problem,
                              _retry_after_s(retry_after) if status in (429, 503) else None)
        try:
            ack = orjson.loads(payload)["ack_seq"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise UploadError(f"collector reply without ack_seq: {payload[:200]!r}") from None
        if not isinstance(ack, int) or ack > batch.last_seq:
            raise UploadError(f"collector acknowledged seq {ack!r}, beyond what was sent ({batch.last_seq})")
        return ack

    def stall(self) -> str | None:
        """Why the uploader is unhealthy, for a technician: the same batch failing for too long; else None."""
        since, seq = self._failing_since, self.state.failing_seq
        if since is None or seq is None:
            return None
        age = time.monotonic() - since
        if age <= self.stall_limit_s:
            return None
        return (f"the batch from seq {seq} has failed for {age:.0f} s (limit {self.stall_limit_s:.0f} s):"
                f" {self.state.last_error}")

    def _batch_failed(self, first_seq: int) -> None:
        if self.state.failing_seq != first_seq:
            self.state.failing_seq = first_seq
            self.state.failing_since_ms = epoch_ms(self.clock.now())
            self._failing_since = time.monotonic()

    async def _connection(self, deadline: float) -> http.client.HTTPConnection:
        """The open connection, or a new one: an idle connection the collector has closed is replaced, not tried."""
        conn = self._conn
        if conn is not None and conn.sock is not None and not _closed_by_peer(conn.sock):
            return conn
        self._close()
        if self._tls is not None:
            conn = ResumingHTTPSConnection(self._netloc, timeout=self.uplink.timeout_s, context=self._tls)
            conn.session = self._tls_session
        else:
            conn = http.client.HTTPConnection(self._netloc, timeout=self.uplink.timeout_s)
        self._conn = conn
        await self._in_thread(conn.connect, deadline)
        return conn

    def _post(self, conn: http.client.HTTPConnection, batch: PendingBatch) -> tuple[int, bytes, str | None]:
        """In the worker thread: POST the batch (compressed by `_body`), read the whole reply (status,
        body, Retry-After)."""
        body = batch.body if batch.body is not None else self._body(batch)
        try:
            try:
                conn.request("POST", self._endpoint, body, self._headers)
            except (BrokenPipeError, ConnectionResetError):
                # a collector may answer (413) and close without reading a body it refuses: read that answer
                pass
            resp = conn.getresponse()
            reply = resp.status, resp.read(), resp.getheader("Retry-After")
            if isinstance(conn.sock, ssl.SSLSocket) and conn.sock.session is not None:
                # TLS 1.3 sends its session tickets after the handshake: they have arrived with the reply
                self._tls_session = conn.sock.session
            return reply
        except BaseException:
            conn.close()
            raise

    async def _in_thread(self, work: Callable[[], T], deadline: float) -> T:
        """`work()` in a daemon thread, by the deadline. On a timeout or a cancellation the connection is
        abandoned: its socket is shut down, which ends a worker blocked on it, and the next attempt reconnects."""
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def worker() -> None:
            # once running, the future cannot be cancelled, so set_result never meets a cancelled one
            if not done.set_running_or_notify_cancel():
                return
            try:
                done.set_result(work())
            except Exception as exc:
                done.set_exception(exc)

        threading.Thread(target=worker, name="uploader", daemon=True).start()
        try:
            async with asyncio.timeout_at(deadline):
                return await asyncio.wrap_future(done)
        except BaseException:
            self._abandon()
            raise

    def _close(self) -> None:
        """Close the connection between exchanges (no worker holds it)."""
        self._count()
        conn, self._conn = self._conn, None
        self._counted = TcpCount()
        if conn is not None:
            conn.close()

    def _abandon(self) -> None:
        """Drop the connection a worker may still hold; the worker closes it when its call fails."""
        self._count()
        conn, self._conn = self._conn, None
        self._counted = TcpCount()
        if conn is not None and conn.sock is not None:
            with contextlib.suppress(OSError):
                # shutdown(2) of the plain socket, not SSLSocket.shutdown: it wakes a worker blocked in a read
                socket.socket.shutdown(conn.sock, socket.SHUT_RDWR)

    def _reason(self, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError):
            return f"TimeoutError: no answer within {self.uplink.timeout_s:g} s"
        return f"{type(exc).__name__}: {exc}"

    async def _recover(self, exc: UploadError) -> bool:
        """Mend what one more identical attempt would not: a batch too large, or one malformed record.
        True when the next attempt may follow at once."""
        if exc.status == 413 and self._max_records > 1:
            self._max_records = max(1, self._max_records // 2)
            log.warning("collector refused the batch size: batches now hold at most %d records", self._max_records)
            return True
        pointer = str(exc.problem.get("pointer", ""))
        if exc.status == 400 and (m := _RECORD_POINTER.match(pointer)) and int(m.group(1)) < len(self._in_flight):
            seq = self._in_flight[int(m.group(1))]
            if str(exc.problem.get("type", "")).endswith(":" + FUTURE_TIMESTAMP) and not self._future(seq, exc.problem):
                return False
            reason = f"{pointer}: {exc.problem.get('detail', '')}"
            if await self.journal.quarantine(seq, reason):
                log.error("collector refused record seq %d (%s): moved aside, reported as record_rejected", seq, reason)
                return True
        return False

    def _future(self, seq: int, problem: dict[str, Any]) -> bool:
        """Report `clock_suspect` for a record dated ahead of the collector's clock; True when it may be
        quarantined. Not when this gateway's own clock is ahead as well: every record it stamps would be
        refused, each quarantine adding a `record_rejected` refused in turn; the batch waits (its stall
        shows in the health) until the clock is right again."""
        now = epoch_ms(self.clock.now())
        latest = problem.get("latest_ts_ms")
        own = isinstance(latest, int) and now > latest
        detail = {"seq": seq, "ts_ms": problem.get("ts_ms"), "collector_ms": problem.get("collector_ms"),
                  "gateway_ms": now, "gateway_clock_ahead": own}
        device = problem.get("device")
        if not own or not self._clock_reported:
            log.error("collector refused record seq %d, dated ahead of its clock (%s)%s", seq, problem.get("detail"),
                      ": this gateway's clock is ahead too, uploads wait for it" if own else "")
            self.journal.append(Event(device if isinstance(device, str) and device and not own else GATEWAY_CLOCK,
                                      now, CLOCK_SUSPECT, Severity.MAJOR, detail))
        self._clock_reported = own
        return not own

    def _succeeded(self, n: int) -> None:
        if self.state.consecutive_failures:
            log.info("uplink restored after %d failed attempts", self.state.consecutive_failures)
        self.state.connected = True
        self.state.consecutive_failures = 0
        self.state.last_error = None
        self.state.failing_seq = self.state.failing_since_ms = None
        self._failing_since = None
        self._clock_reported = False
        self.state.last_success_ms = epoch_ms(self.clock.now())
        self.state.uploaded_records += n

    def _failed(self, reason: str) -> None:
        if self.state.consecutive_failures == 0 or reason != self.state.last_error:
            log.warning("upload failed: %s", reason)
        self.state.connected = False
        self.state.consecutive_failures += 1
        self.state.last_error = reason

    def _backoff(self) -> float:
        # full jitter: a fleet of gateways coming back after an outage does not stampede the collector
        ceiling = min(self.uplink.backoff_max_s, self.uplink.interval_s * 2 ** min(self.state.consecutive_failures, 20))
        return random.uniform(self.uplink.interval_s / 2, max(ceiling, self.uplink.interval_s))

    def _count(self) -> None:
        """Add what the open connection carried since the last count to the usage meter."""
        sock = self._conn.sock if self._conn is not None else None
        now = tcp_count(sock) if sock is not None else None
        if now is not None:
            self.usage.add_uplink(*now.since(self._counted))
            self._counted = now
        self.usage.sample_disk()
        self.usage.save(time.monotonic())

    def _on_record(self, record: Record) -> None:
        if isinstance(record, Event) and record.severity in URGENT:
            self._urgent = True

    async def _gather(self) -> None:
        """Return when the pending records make a batch worth its overhead: a full one, one that has waited
        `batch_max_age_s`, or one holding an urgent event. Ticks the heartbeat at least every `interval_s`."""
        if self.uplink.batch_max_age_s <= 0:
            await self._wait_for_data()
            return
        loop = asyncio.get_running_loop()
        # the oldest pending record may have waited already (a batch cut by its size in bytes, a restart)
        oldest_ms = (await self.journal.stats()).oldest_ts_ms
        waited_s = 0.0 if oldest_ms is None else max(0.0, (epoch_ms(self.clock.now()) - oldest_ms) / 1000)
        waiting_since = loop.time() - waited_s if oldest_ms is not None else float("inf")
        while True:
            backlog = self.journal.backlog
            if backlog >= self._max_records or self._urgent:
                return
            now = loop.time()
            if not backlog:
                waiting_since = float("inf")
            elif waiting_since > now:
                waiting_since = now
            due = waiting_since + self.uplink.batch_max_age_s
            if now >= due:
                return
            self.journal.new_data.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(self.uplink.interval_s, due - now)):
                    await self.journal.new_data.wait()
            self.heartbeat()

    async def _wait_for_data(self) -> None:
        self.journal.new_data.clear()
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that races with the event
            async with asyncio.timeout(self.uplink.interval_s):
                await self.journal.new_data.wait()
        except TimeoutError:
            return
        # let a burst of appends gather into one batch
        await asyncio.sleep(min(self.uplink.interval_s, 0.5))


def _budget_bytes(uplink: UplinkConfig) -> int | None:
    return None if uplink.monthly_budget_mb is None else int(uplink.monthly_budget_mb * 1_000_000)


_RECORD_POINTER = re.compile(r"^/records/(\d+)(/|$)")


def _closed_by_peer(sock: socket.socket) -> bool:
    """An idle keep-alive socket that is readable has been closed by the collector (EOF), or is out of step."""
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


#: the longest Retry-After honoured: a wrong header must not silence a gateway for a day
RETRY_AFTER_MAX_S = 3600.0


def _retry_after_s(value: str | None) -> float | None:
    """Retry-After in seconds (its delay-seconds form; an HTTP date, or nonsense, is None: the back-off applies)."""
    if value is None or not value.strip().isdigit():
        return None
    return min(float(value.strip()), RETRY_AFTER_MAX_S)


def _problem(payload: bytes) -> dict[str, Any]:
    """The RFC 9457 problem body of an error reply, or {} if it is not one."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}
