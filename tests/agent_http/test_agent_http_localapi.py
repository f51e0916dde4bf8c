"""The local API's HTTP on its Unix socket: what a client that is not the CLI meets, and what a gone one leaves.

Real sockets throughout: the agent's journal and local API run in this loop, and the client is
a raw Unix-socket connection speaking HTTP/1.1 by hand (the CLI's own calls are in tests/tech).
"""

from __future__ import annotations

import asyncio
import socket
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from edge_agent.agent import Agent
from edge_agent.config import parse_config
from edge_agent.localapi import LocalApi

CONFIG = """
[gateway]
id = "gw-http-1"
commune = "21231"
state_dir = "state"

[uplink]
url = "http://127.0.0.1:9"
token = "t"

[local_api]
socket = "run/agent.sock"
technician = true
"""


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[LocalApi]:
    agent = Agent(parse_config(tomllib.loads(CONFIG), tmp_path / "agent.toml"))
    async with agent.journal, LocalApi(agent.local_api_context()) as local_api:
        yield local_api


async def exchange(path: Path, request: bytes, timeout: float = 30) -> tuple[str, dict[str, str], bytes]:
    """Send `request` raw; the status line, headers (lower-case names) and body of the reply, read to EOF."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return status, headers, body


async def until(cond: object, timeout: float, what: str) -> None:
    assert callable(cond)
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("request_bytes", "code", "title"),
    [
        (b"GET /v1/nothing HTTP/1.1\r\nHost: agent\r\n\r\n", 404, "Not Found"),
        (b"POST /v1/status HTTP/1.1\r\nHost: agent\r\nContent-Length: 0\r\n\r\n", 405, "Method Not Allowed"),
        (b"PUT /v1/lamps/lamp-1/override HTTP/1.1\r\nContent-Length: lots\r\n\r\n", 400, "Bad request"),
        (b"PUT /v1/lamps/lamp-1/override HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n", 413, "Body too large"),
        (b"GARBLED\r\n\r\n", 400, "Bad request syntax ('GARBLED')"),
        (b"PATCH /v1/status HTTP/1.1\r\n\r\n", 501, "Unsupported method ('PATCH')"),
    ],
)
async def test_every_refusal_is_a_problem_document_with_its_status(
    api: LocalApi, request_bytes: bytes, code: int, title: str
) -> None:
    status, headers, body = await exchange(api.path, request_bytes)
    assert status.split()[1] == str(code), status
    assert headers["content-type"] == "application/problem+json"
    assert int(headers["content-length"]) == len(body)
    doc = orjson.loads(body)
    assert doc["status"] == code and doc["title"] == title and doc["detail"]


async def test_a_path_parameter_is_decoded_and_a_query_read(api: LocalApi) -> None:
    status, _, body = await exchange(api.path, b"GET /v1/devices/lamp%2F7/live HTTP/1.1\r\n\r\n")
    assert status.split()[1] == "404" and "'lamp/7'" in orjson.loads(body)["detail"]
    status, _, body = await exchange(api.path, b"GET /v1/events?limit=x&limit=3 HTTP/1.1\r\n\r\n")
    assert status.split()[1] == "400" and "'x'" in orjson.loads(body)["detail"]  # the first value counts


async def test_a_client_that_says_nothing_does_not_hold_up_others(api: LocalApi) -> None:
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(str(api.path))
    try:
        status, headers, body = await exchange(api.path, b"GET /v1/journal HTTP/1.1\r\n\r\n", timeout=10)
        assert status.split()[1] == "200" and headers["content-type"] == "application/json"
        assert orjson.loads(body)["records"] == 0
    finally:
        silent.close()


async def test_a_follower_that_hangs_up_is_forgotten_while_nothing_happens(api: LocalApi) -> None:
    reader, writer = await asyncio.open_unix_connection(str(api.path))
    writer.write(b"GET /v1/events?follow=1 HTTP/1.1\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.0 200 ") and b"application/x-ndjson" in head
    await until(lambda: len(api.feed.followers) == 1, 10, "the follower to subscribe")
    writer.close()
    # no record arrives on this gateway: the stream must notice the hang-up on its own
    await until(lambda: not api.feed.followers, 10, "the follower to be dropped")


async def test_a_follower_is_told_the_stream_ends_when_the_agent_stops(tmp_path: Path) -> None:
    agent = Agent(parse_config(tomllib.loads(CONFIG), tmp_path / "agent.toml"))
    async with agent.journal:
        async with LocalApi(agent.local_api_context()) as local_api:
            reader, writer = await asyncio.open_unix_connection(str(local_api.path))
            writer.write(b"GET /v1/events?follow=1 HTTP/1.1\r\n\r\n")
            await writer.drain()
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            await until(lambda: len(local_api.feed.followers) == 1, 10, "the follower to subscribe")
        assert await asyncio.wait_for(reader.read(), 10) == b""  # EOF: the stream ended
        writer.close()
        assert not local_api.path.exists()


async def test_a_socket_left_by_a_killed_agent_is_replaced(tmp_path: Path) -> None:
    stale = tmp_path / "run" / "agent.sock"
    stale.parent.mkdir()
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(str(stale))  # bound, never listening: what kill -9 leaves behind
    leftover.close()
    agent = Agent(parse_config(tomllib.loads(CONFIG), tmp_path / "agent.toml"))
    async with agent.journal, LocalApi(agent.local_api_context()) as local_api:
        status, _, _ = await exchange(local_api.path, b"GET /v1/journal HTTP/1.1\r\n\r\n")
        assert status.split()[1] == "200"
        assert stale.stat().st_mode & 0o777 == 0o660


async def test_a_file_in_the_way_is_left_alone_and_the_api_disabled(tmp_path: Path) -> None:
    path = tmp_path / "run" / "agent.sock"
    path.parent.mkdir()
    path.write_text("not a socket")
    agent = Agent(parse_config(tomllib.loads(CONFIG), tmp_path / "agent.toml"))
    async with agent.journal, LocalApi(agent.local_api_context()):
        assert path.read_text() == "not a socket"


async def open_follow(path: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(b"GET /v1/events?follow=1 HTTP/1.1\r\n\r\n")
    await writer.drain()
    return reader, writer, await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)


async def test_beyond_eight_follow_streams_a_ninth_gets_503_until_one_ends(api: LocalApi) -> None:
    streams = [await open_follow(api.path) for _ in range(8)]
    try:
        assert all(head.startswith(b"HTTP/1.0 200 ") for _, _, head in streams)
        await until(lambda: len(api.feed.followers) == 8, 10, "eight followers")
        status, headers, body = await exchange(api.path, b"GET /v1/events?follow=1 HTTP/1.1\r\n\r\n", timeout=10)
        assert status.split()[1] == "503" and headers["content-type"] == "application/problem+json"
        doc = orjson.loads(body)
        assert doc["title"] == "Too many follow streams" and "max_follow" in doc["detail"]
        # a plain read is still served meanwhile
        status, _, _ = await exchange(api.path, b"GET /v1/events HTTP/1.1\r\n\r\n", timeout=10)
        assert status.split()[1] == "200"
        streams.pop()[1].close()
        await until(lambda: len(api.feed.followers) == 7, 10, "the ended stream's place to be freed")
        streams.append(await open_follow(api.path))
        assert streams[-1][2].startswith(b"HTTP/1.0 200 ")
    finally:
        for _, writer, _ in streams:
            writer.close()
    await until(lambda: not api.feed.followers, 10, "every follower to be forgotten")


async def test_beyond_32_connections_the_next_gets_503_at_once_and_a_freed_place_is_served(api: LocalApi) -> None:
    # each holds a thread, waiting for a request line that does not come (connected from this loop,
    # which is also the one that accepts: a blocking connect would wait on itself past the backlog)
    silent = [(await asyncio.open_unix_connection(str(api.path)))[1] for _ in range(32)]
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        status, headers, body = await exchange(api.path, b"GET /v1/journal HTTP/1.1\r\n\r\n", timeout=10)
        assert loop.time() - started < 5  # not after a silent client's 10 s timeout
        assert status.split()[1] == "503" and headers["content-type"] == "application/problem+json"
        assert orjson.loads(body)["title"] == "Too many connections" and "max_connections" in orjson.loads(body)["detail"]
    finally:
        for writer in silent:
            writer.close()

    async def served() -> bool:
        status, _, _ = await exchange(api.path, b"GET /v1/journal HTTP/1.1\r\n\r\n", timeout=10)
        return status.split()[1] == "200"

    for _ in range(100):
        if await served():
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the places of the silent clients were not freed")
