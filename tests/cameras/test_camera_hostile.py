"""A hostile or broken camera on real sockets: garbage, floods, stalls. The bus keeps polling the others."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from citygate_wire.aio import stop_tasks
from drivers.base import BusContext
from drivers.cameras.bus import CameraBus
from drivers.model import Event, Record
from drivers.registry import parse_bus
from simulators.cameras import CameraSim
from tests.cameras.camkit import bus_table

FAULT_CODES = {"camera_unreachable", "camera_onvif_failure", "camera_stream_unavailable"}
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1000)
    writer.write(b"\x00\xff<html>hello</html>\r\n\r\n" * 10)
    await writer.drain()
    writer.close()


async def _flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1000)
    writer.write(b"HTTP/1.1 200 OK\r\nRTSP/1.0 200 OK\r\n")
    with contextlib.suppress(ConnectionError):
        for _ in range(200):  # headers without end
            writer.write(b"X-Flood: " + b"y" * 1000 + b"\r\n")
            await writer.drain()
    writer.close()


async def _endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1000)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\n\r\n")  # no length: to the close
    with contextlib.suppress(ConnectionError):
        for _ in range(64):  # 64 MiB if nobody stops reading
            writer.write(b"<x>" * 349_525)
            await writer.drain()
    writer.close()


async def _stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1000)
    writer.write(b"RTSP/1.0 200 OK\r\nContent-Length: 100000\r\n\r\nv=0")  # promises more than it sends
    await writer.drain()
    with contextlib.suppress(ConnectionError):
        await reader.read()  # until the driver gives up and closes
    writer.close()


async def _xml_bomb(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(4000)
    body = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
            b"]><env:Envelope xmlns:env=\"http://www.w3.org/2003/05/soap-envelope\"><env:Body>&b;</env:Body>"
            b"</env:Envelope>")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def _server(handler: Handler) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@pytest.mark.parametrize("handler", [_garbage, _flood, _endless, _stall, _xml_bomb], ids=lambda h: h.__name__.strip("_"))
async def test_a_hostile_camera_costs_an_event_and_never_stops_the_bus(tmp_path: Path, handler: Handler) -> None:
    good = CameraSim("cam-1")
    bad = CameraSim("cam-2")
    await good.go_online()
    try:
        async with _server(handler) as port:
            bad.onvif_port = bad.rtsp_port = port
            # a timeout a good camera always meets, even when a loaded machine stalls this process for a
            # few hundred ms (0.3 s did not: the good camera was once found unreachable, then cleared)
            raw = bus_table(tmp_path, [good, bad], timeout_s=1.0, group_window_s=0.2, retries=1)
            bus = parse_bus(raw, BusContext("bus[0]", tmp_path)).build()
            assert isinstance(bus, CameraBus)
            records: list[Record] = []
            task = asyncio.create_task(bus.run(records.append))
            def bad_seen() -> bool:
                state = {s.device: s for s in bus.states()}
                codes = {e.code for e in records if isinstance(e, Event) and e.device == "cam-2"}
                return (sum(state["cam-2"].errors.values()) >= 2 and bool(codes & FAULT_CODES)
                        and state["cam-1"].state == "ok")

            try:
                for _ in range(600):  # 30 s at most; a few seconds on an idle machine
                    if bad_seen():
                        break
                    await asyncio.sleep(0.05)
                assert not task.done(), task
            finally:
                await stop_tasks([task])
    finally:
        await good.go_offline()
    states = {s.device: s for s in bus.states()}
    assert states["cam-1"].state == "ok" and states["cam-1"].consecutive_failures == 0
    assert bad_seen(), states["cam-2"]  # asked again and again, each time bounded, and an event said so
    assert [e.code for e in records if isinstance(e, Event) and e.device == "cam-1"] == ["camera_identified"]
