"""The uploader's HTTP connection: kept alive between batches, replaced when the collector closed it,
bounded in time when the collector says nothing, and let go at once when the agent stops.

Real sockets on 127.0.0.1: a small aiohttp collector stand-in that acknowledges batches and
notes which connection carried each, and a TCP server that reads requests and never answers.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from drivers.model import Sample
from edge_agent.clock import SystemClock
from edge_agent.config import GatewayConfig, UplinkConfig
from edge_agent.journal import Journal
from edge_agent.uploader import Uploader

GW = GatewayConfig("gw-http-1", "21231", Path("unused"))


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
            await until(lambda: stand_in.records == 50, 30, "the records sent after the idle time")
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
