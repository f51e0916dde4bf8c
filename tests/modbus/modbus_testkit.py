"""Helpers for the Modbus tests: bus tables, a record collector, condition polling, raw Modbus peers."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import tty
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from drivers.base import BusContext
from drivers.modbus.bus import ModbusBus, build
from drivers.modbus.config import parse_bus_config
from drivers.modbus.frames import crc16
from drivers.model import Event, Record, Sample
from tests.tasks_testkit import stop

REPO = Path(__file__).resolve().parents[2]
MAPS = REPO / "configs" / "registermaps"
LC100 = MAPS / "lamp-lc100.toml"
DALI_GW = MAPS / "lamp-dali-gw.toml"


def tcp_table(port: int, units: list[int], *, regmap: Path = LC100, **keys: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "name": "cabinet-1",
        "type": "modbus-tcp",
        "host": "127.0.0.1",
        "port": port,
        "interval_s": 0.3,
        "timeout_s": 0.25,
        "retries": 1,
        "failure_threshold": 3,
        "backoff_max_s": 2.0,
        "device": [{"id": f"lamp-{u}", "unit": u, "register_map": regmap.name, "rated_power_w": 100} for u in units],
    }
    table.update(keys)
    return table


def rtu_table(path: str, units: list[int], *, regmap: Path = LC100, **keys: Any) -> dict[str, Any]:
    table = tcp_table(0, units, regmap=regmap, **keys)
    del table["host"]
    table.update({"type": "modbus-rtu", "port": path, "parity": "N"})  # a pty refuses parity E
    table.update(keys)
    return table


def make_bus(table: dict[str, Any]) -> ModbusBus:
    return build(parse_bus_config(table, BusContext("bus[0]", MAPS)))


class Records:
    """What a bus handed its sink, with timestamps taken on arrival (monotonic)."""

    def __init__(self) -> None:
        self.items: list[tuple[float, Record]] = []

    def __call__(self, record: Record) -> None:
        self.items.append((time.monotonic(), record))

    def samples(self, device: str | None = None) -> list[Sample]:
        return [r for _, r in self.items if isinstance(r, Sample) and (device is None or r.device == device)]

    def sample_times(self, device: str) -> list[float]:
        return [t for t, r in self.items if isinstance(r, Sample) and r.device == device]

    def events(self, code: str | None = None, device: str | None = None) -> list[Event]:
        return [
            r
            for _, r in self.items
            if isinstance(r, Event) and (code is None or r.code == code) and (device is None or r.device == device)
        ]


async def wait_for(condition: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll `condition` until true; generous timeout for a loaded 2-core machine."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


class Stalls:
    """How late this process's event loop ran while watched: the longest delay of a 20 ms timer."""

    def __init__(self) -> None:
        self.max_s = 0.0


@asynccontextmanager
async def loop_stalls() -> AsyncIterator[Stalls]:
    """Watch the event loop for the block: on a loaded machine the process is not scheduled for a
    while now and then, and every timing measured across that stall grows by it (a poll's gap, a
    timeout). Timing bounds add `max_s` so they tell the code's delays from the machine's."""
    stalls = Stalls()

    async def tick() -> None:
        loop = asyncio.get_running_loop()
        while True:
            planned = loop.time() + 0.02
            await asyncio.sleep(0.02)
            stalls.max_s = max(stalls.max_s, loop.time() - planned)

    task = asyncio.create_task(tick())
    try:
        yield stalls
    finally:
        task.cancel()


@asynccontextmanager
async def polling(bus: ModbusBus, records: Records) -> AsyncIterator[asyncio.Task[None]]:
    """Run the bus's poller for the duration of the block, then stop it and close the bus."""
    task = asyncio.create_task(bus.run(records))
    try:
        yield task
    finally:
        await stop(task)
        await bus.aclose()


def rtu_frame(body: bytes) -> bytes:
    crc = crc16(body)
    return body + bytes([crc & 0xFF, crc >> 8])


@asynccontextmanager
async def raw_tcp_peer(reply: Callable[[bytes], bytes | None]) -> AsyncIterator[int]:
    """A Modbus TCP "device" that answers each request ADU with whatever bytes `reply(request)` returns
    (None: stay silent). Requests are split on the MBAP length. Yields the port."""

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(6)
                body = await reader.readexactly(int.from_bytes(header[4:6], "big"))
                answer = reply(header + body)
                if answer is not None:
                    writer.write(answer)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def raw_rtu_peer(reply: Callable[[bytes], bytes | None]) -> AsyncIterator[str]:
    """An RTU "device" on a pty: each 8-byte read request (FC03/04, FC06) gets `reply(request)`. Yields the path."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    loop = asyncio.get_running_loop()
    buf = bytearray()

    def readable() -> None:
        try:
            buf.extend(os.read(master, 4096))
        except BlockingIOError:
            return
        while len(buf) >= 8:
            request = bytes(buf[:8])
            del buf[:8]
            answer = reply(request)
            if answer is not None:
                os.write(master, answer)

    loop.add_reader(master, readable)
    try:
        yield os.ttyname(slave)
    finally:
        loop.remove_reader(master)
        os.close(master)
        os.close(slave)


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]
