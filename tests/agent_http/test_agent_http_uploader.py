"""The uploader's HTTP connection: kept alive between batches, replaced when the collector closed it,
bounded in time when the collector says nothing, and let go at once when the agent stops.

Real sockets on 127.0.0.1: a small aiohttp collector stand-in that acknowledges batches and
notes which connection carried each, and a TCP server that reads requests and never answers.
"""

from __future__ import annotations

import asyncio
import gzip
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from collector.app import create_app, start
from collector.model import Gateway, RecordCounts, StoredEvent
from collector.store_sqlite import SqliteStore
from collector.tokens import hash_token, new_token
from drivers.model import Sample
from edge_agent.clock import SystemClock
from edge_agent.config import GatewayConfig, UplinkConfig
from edge_agent.health import UPLOADER, HealthMonitor
from edge_agent.journal import Journal
from edge_agent.uploader import Uploader

GW = GatewayConfig("gw-http-1", "21231", Path("unused"))


@pytest.fixture(autouse=True)
def _gateway_state_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GW's relative state dir lands in the test's folder: the uploader keeps its usage file there."""
    monkeypatch.chdir(tmp_path)


def samples(n: int, start: int = 0) -> list[Sample]:
    return [Sample(f"lamp-{i % 7}", 1_764_000_000_000 + i, {"level_pct": 70, "power_w": 61.2})
            for i in range(start, start + n)]


async def until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


class AckingCollector:
    """Acknowledges every batch; `peers` lists the client address of each batch's connection, in order."""

    def __init__(self) -> None:
        self.peers: list[tuple[str, int]] = []
        self.records = 0

    async def batches(self, request: web.Request) -> web.Response:
        doc = orjson.loads(gzip.decompress(await request.read()))
        assert request.headers["Authorization"] == "Bearer t" and doc["gateway"] == GW.id
        self.peers.append(request.transport.get_extra_info("peername") if request.transport else ("?", 0))
        self.records += len(doc["records"])
        return web.json_response({"ack_seq": doc["records"][-1]["seq"]})


@pytest.fixture
async def collector() -> AsyncIterator[tuple[AckingCollector, int]]:
    stand_in = AckingCollector()
    app = web.Application()
    app.router.add_post("/api/v1/batches", stand_in.batches)
    # closes an idle connection quickly; the body is read as sent (gzip), as the collector does
    runner = web.AppRunner(app, keepalive_timeout=0.3, auto_decompress=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield stand_in, port
    finally:
        await runner.cleanup()


async def test_batches_share_one_connection_and_one_the_collector_closed_is_replaced_without_a_failure(
    tmp_path: Path, collector: tuple[AckingCollector, int], caplog: pytest.LogCaptureFixture
) -> None:
    stand_in, port = collector
    up = UplinkConfig(url=f"http://127.0.0.1:{port}", token="t", interval_s=0.05, timeout_s=5, batch_max_records=10)
    async with Journal(tmp_path / "journal.db") as journal:
        uploader = Uploader(GW, up, journal, SystemClock())
        task = asyncio.create_task(uploader.run())
        try:
            journal.append_many(samples(40))
            await journal.flush()
            await until(lambda: stand_in.records == 40, 30, "the first 40 records")
            assert len(stand_in.peers) == 4 and len(set(stand_in.peers)) == 1  # 4 batches, one connection
            await asyncio.sleep(1.0)  # idle past the collector's keep-alive: it closes the connection
            journal.append_many(samples(10, start=40))
            await journal.flush()
            # the uploader's count, not the stand-in's: the last ack may still be on its way back
            await until(lambda: uploader.state.uploaded_records == 50, 30, "the records sent after the idle time")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert (await journal.stats()).records == 0
    assert stand_in.peers[-1] != stand_in.peers[0]  # a new connection...
    assert uploader.state.uploaded_records == 50
    assert "upload failed" not in caplog.text  # ...and not one failed attempt on the dead one


class SilentCollector:
    """Accepts connections and reads requests, never answers; counts the bytes and the connections closed."""

    def __init__(self) -> None:
        self.received = 0
        self.closed = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            self.received += len(chunk)
        self.closed += 1
        writer.close()


@pytest.fixture
async def silent() -> AsyncIterator[tuple[SilentCollector, int]]:
    stand_in = SilentCollector()
    server = await asyncio.start_server(stand_in.serve, "127.0.0.1", 0)
    try:
        yield stand_in, server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_a_collector_that_never_answers_costs_one_timeout_per_attempt_and_no_record(
    tmp_path: Path, silent: tuple[SilentCollector, int]
) -> None:
    stand_in, port = silent
    up = UplinkConfig(url=f"http://127.0.0.1:{port}", token="t", interval_s=0.05, timeout_s=1, backoff_max_s=0.2)
    async with Journal(tmp_path / "journal.db") as journal:
        journal.append_many(samples(20))
        await journal.flush()
        uploader = Uploader(GW, up, journal, SystemClock())
        task = asyncio.create_task(uploader.run())
        try:
            await until(lambda: uploader.state.consecutive_failures >= 2, 30, "two timed-out attempts")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert uploader.state.last_error == "TimeoutError: no answer within 1 s"
        assert (await journal.stats()).records == 20
    await until(lambda: stand_in.closed >= 2, 5, "each timed-out connection to be closed")


async def test_stopping_during_an_exchange_lets_the_connection_go_at_once(
    tmp_path: Path, silent: tuple[SilentCollector, int]
) -> None:
    stand_in, port = silent
    up = UplinkConfig(url=f"http://127.0.0.1:{port}", token="t", interval_s=0.05, timeout_s=60)
    async with Journal(tmp_path / "journal.db") as journal:
        journal.append_many(samples(20))
        await journal.flush()
        uploader = Uploader(GW, up, journal, SystemClock())
        task = asyncio.create_task(uploader.run())
        await until(lambda: stand_in.received > 0, 30, "the request to reach the collector")
        await asyncio.sleep(0.2)
        task.cancel()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 1.0)
        # the worker thread blocked on the reply must not hold the socket for the 60 s timeout
        await until(lambda: stand_in.closed == 1, 2, "the connection to be closed")
        assert (await journal.stats()).records == 20


# -- against the real collector: a stall shows in the health, a record dated ahead is set aside --------

@dataclass
class RealCollector:
    url: str
    store: SqliteStore
    token: str

    async def gateway(self) -> Gateway:
        gateway = await self.store.gateway(GW.id)
        assert gateway is not None
        return gateway

    async def events(self, code: str) -> list[StoredEvent]:
        return [e for e in await self.store.recent_events(await self.gateway(), 1000) if e.code == code]

    async def until_events(self, code: str, n: int, timeout: float = 20) -> list[StoredEvent]:
        deadline = time.monotonic() + timeout
        while len(found := await self.events(code)) < n:
            assert time.monotonic() < deadline, f"{n} {code} events expected, {found}"
            await asyncio.sleep(0.05)
        return found


@asynccontextmanager
async def real_collector(tmp_path: Path, busy_timeout_ms: int = 10_000) -> AsyncIterator[RealCollector]:
    async with SqliteStore(tmp_path / "collector.db", busy_timeout_ms=busy_timeout_ms) as store:
        token = new_token()
        await store.add_gateway(GW.id, GW.commune, hash_token(token))
        runner, url = await start(create_app(store), "127.0.0.1", 0)
        try:
            yield RealCollector(url, store, token)
        finally:
            await runner.cleanup()


class SettableClock:
    """A wall clock a test sets (a gateway whose time is wrong, then put right)."""

    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at

    async def sleep_until(self, when: datetime) -> None:
        raise NotImplementedError


@asynccontextmanager
async def uploading(uploader: Uploader) -> AsyncIterator[None]:
    task = asyncio.create_task(uploader.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def uplink(c: RealCollector) -> UplinkConfig:
    return UplinkConfig(url=c.url, token=c.token, interval_s=0.05, timeout_s=5, backoff_max_s=0.2)


async def test_the_same_batch_failing_past_the_limit_makes_the_uploader_unhealthy_with_the_reason(
    tmp_path: Path,
) -> None:
    async with real_collector(tmp_path, busy_timeout_ms=100) as c, Journal(tmp_path / "journal.db") as journal:
        journal.append_many(samples(20))
        await journal.flush()
        first = (await journal.read_pending(1, 10_000)).seqs[0]  # type: ignore[union-attr]
        uploader = Uploader(GW, uplink(c), journal, SystemClock())
        uploader.stall_limit_s = 1.5
        monitor = HealthMonitor({}, [], journal, {UPLOADER: 60.0})
        monitor.problems[UPLOADER] = uploader.stall
        uploader.heartbeat = lambda: monitor.beats.__setitem__(UPLOADER, time.monotonic())
        locker = sqlite3.connect(tmp_path / "collector.db", isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")  # the collector's database stays locked: every upload is a 500
        try:
            async with uploading(uploader):
                await until(lambda: uploader.state.consecutive_failures >= 1, 20, "a failed upload")
                assert uploader.stall() is None and all(v.healthy for v in monitor.verdicts())  # not yet
                await until(lambda: uploader.stall() is not None, 20, "the stall to be reported")
                [verdict] = monitor.verdicts()
                assert not verdict.healthy and not verdict.silent and monitor.stuck() == []  # the watchdog is fed
                assert verdict.problem is not None
                assert f"batch from seq {first} has failed" in verdict.problem and "500" in verdict.problem, verdict
                assert uploader.state.failing_seq == first and uploader.state.failing_since_ms is not None
                locker.execute("COMMIT")
                await until(lambda: journal.backlog == 0, 20, "the batch to go once the database is free")
                assert uploader.stall() is None and all(v.healthy for v in monitor.verdicts())
                assert uploader.state.failing_seq is None
        finally:
            locker.close()
        assert await c.store.count_records() == RecordCounts(20, 0)


async def test_a_record_dated_ahead_of_the_collector_is_set_aside_and_reported_as_clock_suspect(
    tmp_path: Path,
) -> None:
    future = 4_070_908_800_000  # 2099-01-01: a meter's clock gone wrong
    async with real_collector(tmp_path) as c, Journal(tmp_path / "journal.db") as journal:
        journal.append_many([*samples(5), Sample("meter-9", future, {"volume_m3": 12.5}), *samples(5, start=5)])
        await journal.flush()
        uploader = Uploader(GW, uplink(c), journal, SystemClock())
        async with uploading(uploader):
            [suspect] = await c.until_events("clock_suspect", 1)
            await until(lambda: journal.backlog == 0, 20, "every other record to be uploaded")
        assert suspect.device == "meter-9" and suspect.severity == "major"
        assert suspect.detail["ts_ms"] == future and suspect.detail["gateway_clock_ahead"] is False
        [rejected] = await c.events("record_rejected")
        assert "/records/5/ts_ms" in rejected.detail["reason"]
        assert await c.store.count_records() == RecordCounts(10, 2)


async def test_when_the_gateways_own_clock_is_ahead_its_records_wait_for_the_clock_not_quarantine(
    tmp_path: Path,
) -> None:
    ahead = datetime(2099, 1, 1, tzinfo=UTC)
    clock = SettableClock(ahead)
    async with real_collector(tmp_path) as c, Journal(tmp_path / "journal.db") as journal:
        journal.append_many([Sample("lamp-1", int(ahead.timestamp() * 1000), {"level_pct": 70})])
        await journal.flush()
        uploader = Uploader(GW, uplink(c), journal, clock)
        async with uploading(uploader):
            await until(lambda: uploader.state.consecutive_failures >= 4, 20, "several refusals")
            # nothing was set aside, and the suspicion was reported once, not at every attempt
            assert journal.backlog == 2  # the record and one clock_suspect (stamped by the same clock)
            with sqlite3.connect(tmp_path / "journal.db") as db:
                assert db.execute("SELECT COUNT(*) FROM rejected").fetchone() == (0,)
            clock.at = datetime.now(UTC)  # NTP puts the clock right: the records dated ahead go aside
            await c.until_events("record_rejected", 2)
            suspects = await c.until_events("clock_suspect", 2)
            await until(lambda: journal.backlog == 0, 20, "the journal to drain")
        # the record, then the clock_suspect stamped by the wrong clock, each set aside and reported
        assert sorted(e.device for e in suspects) == ["clock", "lamp-1"]
        assert not any(e.detail["gateway_clock_ahead"] for e in suspects)


async def test_a_record_with_a_nul_character_is_set_aside_and_the_rest_goes(tmp_path: Path) -> None:
    """PostgreSQL cannot store U+0000: the collector refuses it with a pointer (both stores), not a 500."""
    async with real_collector(tmp_path) as c, Journal(tmp_path / "journal.db") as journal:
        journal.append_many([*samples(3), Sample("lamp-1", 1_764_000_000_100, {"note": "a\x00b"}), *samples(3, 3)])
        await journal.flush()
        uploader = Uploader(GW, uplink(c), journal, SystemClock())
        async with uploading(uploader):
            [rejected] = await c.until_events("record_rejected", 1)
            await until(lambda: journal.backlog == 0, 20, "every other record to be uploaded")
        assert "/records/3/values/note" in rejected.detail["reason"] and "U+0000" in rejected.detail["reason"]
        assert await c.store.count_records() == RecordCounts(6, 1)
        assert uploader.stall() is None
