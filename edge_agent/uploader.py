"""Sends the journal to the collector in sequence order, and deletes only what the collector acknowledged.

gzip JSON batches, bounded in records and bytes, POSTed with the gateway's bearer token.
Failures back off exponentially with full jitter. With an https:// URL the server certificate
is verified (system CAs, or the configured CA file) and a failed handshake is an error that
backs off like any other: there is no fall-back to plain HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import ssl
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from citygate_wire.batch import PATH, VERSION
from edge_agent.clock import Clock
from edge_agent.config import GatewayConfig, UplinkConfig
from edge_agent.journal import Journal

log = logging.getLogger("citygate.uploader")


class UploadError(Exception):
    """One failed upload attempt: says why (status and problem detail, or the connection error)."""

    def __init__(self, reason: str, status: int | None = None, problem: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.problem = problem or {}


@dataclass
class UplinkState:
    """What the CLI and the MQTT state message report about the uplink."""

    connected: bool = False
    last_success_ms: int | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    uploaded_records: int = 0


def ssl_context(uplink: UplinkConfig) -> ssl.SSLContext | None:
    if not uplink.url.startswith("https://"):
        return None
    # create_default_context verifies the certificate and the host name
    return ssl.create_default_context(cafile=str(uplink.ca_file) if uplink.ca_file else None)


def gzip_bytes(data: bytes) -> bytes:
    compressor = zlib.compressobj(level=6, wbits=31)  # wbits=31: gzip container
    return compressor.compress(data) + compressor.flush()


class Uploader:
    def __init__(self, gateway: GatewayConfig, uplink: UplinkConfig, journal: Journal, clock: Clock) -> None:
        self.gateway = gateway
        self.uplink = uplink
        self.journal = journal
        self.clock = clock
        self.state = UplinkState()
        #: called at every turn of the loop, so the watchdog can tell a stuck uploader from a patient one
        self.heartbeat: Callable[[], None] = lambda: None
        self._endpoint = uplink.url + PATH
        self._max_records = uplink.batch_max_records
        self._in_flight: list[int] = []
        self._head = b'{"v":%d,"gateway":%s,"commune":%s,"records":' % (
            VERSION, orjson.dumps(gateway.id), orjson.dumps(gateway.commune),
        )

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.uplink.timeout_s)
        connector = aiohttp.TCPConnector(ssl=ssl_context(self.uplink) or False, limit=1)
        headers = {
            "Authorization": f"Bearer {self.uplink.token}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        }
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:
            while True:
                self.heartbeat()
                try:
                    sent = await self.upload_once(session)
                except UploadError as exc:
                    self._failed(str(exc))
                    if await self._recover(exc):
                        continue
                    await asyncio.sleep(self._backoff())
                    continue
                if sent == 0:
                    await self._wait_for_data()

    async def upload_once(self, session: aiohttp.ClientSession) -> int:
        """Send the oldest pending batch; return how many records the collector acknowledged."""
        batch = await self.journal.read_pending(self._max_records, self.uplink.batch_max_bytes)
        if batch is None:
            return 0
        self._in_flight = batch.seqs
        body = gzip_bytes(self._head + batch.json_array() + b"}")
        try:
            async with session.post(self._endpoint, data=body) as resp:
                payload = await resp.read()
                if resp.status != 200:
                    problem = _problem(payload)
                    detail = problem.get("detail") or problem.get("title") or payload[:200].decode("utf-8", "replace")
                    raise UploadError(f"collector answered {resp.status}: {detail}", resp.status, problem)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise UploadError(f"{type(exc).__name__}: {exc}") from None
        try:
            ack = orjson.loads(payload)["ack_seq"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise UploadError(f"collector reply without ack_seq: {payload[:200]!r}") from None
        if not isinstance(ack, int) or ack > batch.last_seq:
            raise UploadError(f"collector acknowledged seq {ack!r}, beyond what was sent ({batch.last_seq})")
        await self.journal.ack(ack)
        self._succeeded(len(batch.records))
        return len(batch.records)

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
            reason = f"{pointer}: {exc.problem.get('detail', '')}"
            if await self.journal.quarantine(seq, reason):
                log.error("collector refused record seq %d (%s): moved aside, reported as record_rejected", seq, reason)
                return True
        return False

    def _succeeded(self, n: int) -> None:
        if self.state.consecutive_failures:
            log.info("uplink restored after %d failed attempts", self.state.consecutive_failures)
        self.state.connected = True
        self.state.consecutive_failures = 0
        self.state.last_error = None
        self.state.last_success_ms = int(self.clock.now().timestamp() * 1000)
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

    async def _wait_for_data(self) -> None:
        self.journal.new_data.clear()
        try:
            await asyncio.wait_for(self.journal.new_data.wait(), timeout=self.uplink.interval_s)
        except TimeoutError:
            return
        # let a burst of appends gather into one batch
        await asyncio.sleep(min(self.uplink.interval_s, 0.5))


_RECORD_POINTER = re.compile(r"^/records/(\d+)(/|$)")


def _problem(payload: bytes) -> dict[str, Any]:
    """The RFC 9457 problem body of an error reply, or {} if it is not one."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}
