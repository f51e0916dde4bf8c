"""Admission control of batch ingest on a real collector (both stores): a bounded number of batches
at once, a fast 503 with Retry-After beyond it (before the body is read), the edge agent's uploader
waiting as told, and clients that leave before their answer: nothing stored twice, no 500."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from scaleout_kit import batch_body, sample

from citygate_wire.batch import PATH
from collector.admission import ADMISSION, Admission
from collector.app import create_app, start
from collector.metrics import METRICS
from collector.store import Store
from collector.tokens import hash_token, new_token
from drivers.model import Sample
from edge_agent.clock import SystemClock
from edge_agent.config import GatewayConfig, UplinkConfig
from edge_agent.journal import Journal
from edge_agent.uploader import Uploader


@pytest.fixture(autouse=True)
def _gateway_state_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the uploader keeps its usage file in its gateway's (relative) state dir


class Served:
    def __init__(self, store: Store, url: str, token: str, admission: Admission, app: object) -> None:
        self.store, self.url, self.token, self.admission, self.app = store, url, token, admission, app
        self.port = int(url.rsplit(":", 1)[1])


@pytest.fixture
async def served(store: Store) -> AsyncIterator[Served]:
    token = new_token()
    await store.add_gateway("gw-1", "21231", hash_token(token))
    app = create_app(store)
    admission = app[ADMISSION] = Admission(1, queue=0)
    runner, url = await start(app, "127.0.0.1", 0)
    try:
        yield Served(store, url, token, admission, app)
    finally:
        await runner.cleanup()


def request_head(port: int, token: str, length: int) -> bytes:
    return (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {length}\r\n\r\n").encode()


async def hold_the_slot(served: Served) -> tuple[asyncio.StreamWriter, bytes]:
    """A batch whose body arrives slowly: it holds the one slot until the rest is sent."""
    body = batch_body("gw-1", [sample(s) for s in range(1, 101)])
    _, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(request_head(served.port, served.token, len(body)) + body[:10])
    await writer.drain()
    deadline = time.monotonic() + 10
    while served.admission.active == 0:
        assert time.monotonic() < deadline, "the slow batch never took its slot"
        await asyncio.sleep(0.01)
    return writer, body[10:]


async def test_beyond_the_bound_a_fast_503_with_retry_after_before_the_body_is_read(served: Served) -> None:
    writer, rest = await hold_the_slot(served)
    big = batch_body("gw-1", [sample(s) for s in range(1000, 21_000)])  # 20,000 records, never read
    headers = {"Authorization": f"Bearer {served.token}", "Content-Encoding": "gzip",
               "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        started = time.monotonic()
        async with session.post(served.url + PATH, data=big, headers=headers) as resp:
            doc = orjson.loads(await resp.read())
            elapsed = time.monotonic() - started
            assert resp.status == 503, doc
            assert resp.content_type == "application/problem+json"
            assert doc["type"].endswith(":overloaded") and doc["retry_after_s"] == int(resp.headers["Retry-After"])
            assert 1 <= int(resp.headers["Retry-After"]) <= 60
        assert elapsed < 5  # no queueing behind the held slot (which holds it for as long as we like)
        writer.write(rest)
        await writer.drain()
        deadline = time.monotonic() + 10
        while served.admission.active:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        async with session.post(served.url + PATH, data=big, headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["stored"] == 20_000
    writer.close()
    counts = await served.store.count_records()
    assert counts.samples == 100 + 20_000  # the held batch and the big one, once each
    assert served.admission.refused == 1 and served.admission.peak == 1
    assert served.app[METRICS].refused.labels("503")._value.get() == 1  # type: ignore[index]


async def test_the_uploader_waits_as_long_as_retry_after_says(served: Served, tmp_path: Path) -> None:
    writer, rest = await hold_the_slot(served)
    gw = GatewayConfig("gw-1", "21231", Path("state"))
    # without Retry-After the next attempt would come within 0.2 s (the back-off's ceiling)
    up = UplinkConfig(url=served.url, token=served.token, interval_s=0.05, timeout_s=10, backoff_max_s=0.2)
    async with Journal(tmp_path / "journal.db") as journal:
        journal.append_many([Sample("lamp-1", 1_764_000_000_000 + i, {"level_pct": 70}) for i in range(50)])
        await journal.flush()
        uploader = Uploader(gw, up, journal, SystemClock())
        task = asyncio.create_task(uploader.run())
        try:
            deadline = time.monotonic() + 10
            while served.admission.refused == 0:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.005)
            refused_at = time.monotonic()
            await asyncio.sleep(0.8)  # told 1 s: no second attempt yet (the back-off alone: 4 or more)
            assert served.admission.refused == 1
            assert "503" in (uploader.state.last_error or "")
            writer.write(rest)
            await writer.drain()
            while uploader.state.uploaded_records < 50:
                assert time.monotonic() - refused_at < 20, "the uploader did not come back"
                await asyncio.sleep(0.01)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            writer.close()
    assert time.monotonic() - refused_at >= 1.0


async def test_clients_that_leave_before_their_answer_lose_nothing_double_nothing_and_cost_no_500(
        served: Served, caplog: pytest.LogCaptureFixture) -> None:
    served.admission.limit = 8
    batches = [batch_body("gw-1", [sample(s) for s in range(b * 500 + 1, (b + 1) * 500 + 1)]) for b in range(20)]

    def send_and_leave(body: bytes) -> None:
        with socket.create_connection(("127.0.0.1", served.port)) as sock:
            sock.sendall(request_head(served.port, served.token, len(body)) + body)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST

    for body in batches:  # each gateway gives up at once: its batch may or may not be stored by now
        await asyncio.to_thread(send_and_leave, body)
    await asyncio.sleep(0.5)
    headers = {"Authorization": f"Bearer {served.token}", "Content-Encoding": "gzip",
               "Content-Type": "application/json"}
    stored_again = 0
    async with aiohttp.ClientSession() as session:
        for b, body in enumerate(batches):  # and sends it again, as the agent does: it learns the outcome now
            async with session.post(served.url + PATH, data=body, headers=headers) as resp:
                doc = await resp.json()
                assert resp.status == 200 and doc["ack_seq"] == (b + 1) * 500
                assert doc["stored"] + doc["duplicates"] == 500 and doc["stored"] in (0, 500)
                stored_again += doc["stored"] // 500
    counts = await served.store.count_records()
    assert counts.samples == 20 * 500  # every record once
    print(f"of 20 batches whose client left: {served.admission.gone} not stored (client gone), "
          f"{stored_again} stored only when sent again, {20 - stored_again} stored before it was seen gone")
    assert "unhandled error" not in caplog.text
    assert served.app[METRICS].refused.labels("500")._value.get() == 0  # type: ignore[index]


async def test_a_few_wait_for_a_place_in_their_order_and_the_next_are_refused(served: Served) -> None:
    served.admission.queue, served.admission.queue_wait_s = 1, 30.0
    writer, rest = await hold_the_slot(served)
    headers = {"Authorization": f"Bearer {served.token}", "Content-Encoding": "gzip",
               "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        async def post(first: int) -> tuple[int, dict[str, Any]]:
            body = batch_body("gw-1", [sample(s) for s in range(first, first + 100)])
            async with session.post(served.url + PATH, data=body, headers=headers) as resp:
                return resp.status, orjson.loads(await resp.read())

        waiting = asyncio.create_task(post(1000))  # the queue's one place
        deadline = time.monotonic() + 10
        while not served.admission._waiters:
            assert time.monotonic() < deadline, "the second batch did not wait"
            await asyncio.sleep(0.01)
        status, doc = await post(2000)  # the queue is full: refused at once
        assert status == 503 and doc["type"].endswith(":overloaded")
        assert not waiting.done()
        writer.write(rest)  # the held batch ends: its place goes to the waiting one
        await writer.drain()
        status, doc = await waiting
        assert (status, doc["stored"]) == (200, 100)
        served.admission.queue_wait_s = 0.3
        deadline = time.monotonic() + 10
        while served.admission.active:  # the waiting batch's handler gives its place back
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        writer2, rest2 = await hold_the_slot(served)
        started = time.monotonic()
        status, doc = await post(3000)  # waits its 0.3 s, then is refused
        assert status == 503 and 0.3 <= time.monotonic() - started < 10
        writer2.write(rest2)
        await writer2.drain()
    writer.close()
    writer2.close()
    deadline = time.monotonic() + 10
    while served.admission.active:
        assert time.monotonic() < deadline, "a place was not given back"
        await asyncio.sleep(0.01)
    assert (await served.store.count_records()).samples == 100 + 100  # the held batch (sent twice), the waiting one
