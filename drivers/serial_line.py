"""A serial line: its config keys, parsed once for every serial driver, and the byte pipe of the meters.

`parse_line` reads the keys every serial bus shares (port, baudrate, parity, bytesize, stopbits)
for Modbus RTU, TIC and M-Bus alike; each driver passes only its defaults and the rates it allows.

pyserial-asyncio-fast does the I/O for the meter drivers (TIC, M-Bus); a driver gives a callback
that receives every chunk, so its sans-I/O parser sees the bytes as soon as they arrive. Opening
errors (missing port, settings the port refuses, such as 7E1 on a pty) all come out as
SerialLineError with the port and the reason.
"""

from __future__ import annotations

import asyncio
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers.conf import ConfigTable
from drivers.errors import ConfigError, DeviceError, DriverError

PARITIES = ("N", "E", "O")


class SerialLineError(DriverError):
    def __init__(self, port: str, reason: str) -> None:
        super().__init__(f"serial port {port}: {reason}")
        self.port = port
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LineSettings:
    port: str
    baudrate: int
    bytesize: int
    parity: str
    stopbits: int


def parse_line(
    t: ConfigTable,
    *,
    baudrate: int,
    bytesize: int,
    rates: range | tuple[int, ...],
    parity: str = "E",
) -> LineSettings:
    """The serial keys of a `[[bus]]` table, with the driver's defaults; `rates` are the baud rates it allows."""
    port: str = t.text("port", required=True)
    if not port.strip():
        raise ConfigError(f"{t.key}.port", "must not be empty")
    rate = t.integer("baudrate", baudrate, lo=1, hi=4_000_000)
    if isinstance(rates, range) and rate not in rates:
        raise ConfigError(f"{t.key}.baudrate", f"{rate} is out of range [{rates.start}, {rates.stop - 1}]")
    if isinstance(rates, tuple) and rate not in rates:
        raise ConfigError(f"{t.key}.baudrate", f"{rate} is not a standard rate ({', '.join(map(str, rates))})")
    par = t.text("parity", parity)
    if par not in PARITIES:
        raise ConfigError(f"{t.key}.parity", f"expected one of {', '.join(PARITIES)}, got {par!r}")
    size = t.integer("bytesize", bytesize, lo=7, hi=8)
    return LineSettings(port, rate, size, par, t.integer("stopbits", 1, lo=1, hi=2))


class SerialLine(asyncio.Protocol):
    """One open port. `closed` completes when the port goes away (unplugged adapter, closed pty)."""

    def __init__(self, settings: LineSettings, on_data: Callable[[bytes], None]) -> None:
        self.settings = settings
        self._on_data = on_data
        self._transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if self._transport is None:
            self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def write(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            raise SerialLineError(self.settings.port, "port is closed")
        self._transport.write(data)

    async def aclose(self) -> None:
        if self._transport is not None:
            self._transport.close()
        try:
            async with asyncio.timeout(2.0):
                await asyncio.shield(self.closed)
        except TimeoutError:
            pass


async def open_line(settings: LineSettings, on_data: Callable[[bytes], None]) -> SerialLine:
    # imported here: a Modbus TCP agent parses no serial line and never loads pyserial
    import serial_asyncio_fast

    loop = asyncio.get_running_loop()
    try:
        transport, line = await serial_asyncio_fast.create_serial_connection(
            loop,
            lambda: SerialLine(settings, on_data),
            settings.port,
            baudrate=settings.baudrate,
            bytesize=settings.bytesize,
            parity=settings.parity,
            stopbits=settings.stopbits,
        )
    except termios.error as exc:
        reason = exc.args[1] if len(exc.args) > 1 else str(exc)
        raise SerialLineError(
            settings.port,
            f"settings {settings.bytesize}{settings.parity}{settings.stopbits} at {settings.baudrate} baud refused ({reason})",
        ) from None
    except OSError as exc:
        raise SerialLineError(settings.port, str(exc)) from None
    assert isinstance(line, SerialLine)
    # connection_made() comes one loop turn later; a master may write before that
    line.connection_made(transport)
    return line


#: A listening bus reopens its line after this long, doubling up to RETRY_MAX_S while it fails.
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 60.0


class LineListener:
    """What a bus that listens to one serial line does with it (TIC meters, GNSS receivers): keep it
    open, reopening with backoff when it fails or goes away; say when nothing valid came for
    `silent_after_s`; hand the next valid item to readers, opening the line for one read when the bus
    is not listening. The bus gives its line settings, its bytes callback, its failure report and the
    words of its messages; it calls `heard` when something valid came (silence ends) and `deliver`
    with each item a reader may take."""

    def __init__(self, settings: LineSettings, silent_after_s: float, on_data: Callable[[bytes], None],
                 fail: Callable[[str], None], *, nothing: str) -> None:
        self.settings = settings
        self.silent_after_s = silent_after_s
        self.on_data = on_data
        self.fail = fail
        self.nothing = nothing  # "valid TIC frame", "valid NMEA sentence": what silence is the absence of
        self.line: SerialLine | None = None
        self.last_valid_at: float | None = None  # monotonic
        self._waiters: list[asyncio.Future[Any]] = []

    async def listen(self) -> None:
        """Until cancelled."""
        delay = RETRY_FIRST_S
        while True:
            try:
                self.line = await open_line(self.settings, self.on_data)
            except SerialLineError as exc:
                self.fail(exc.reason)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            delay = RETRY_FIRST_S
            try:
                await self._watch(self.line, time.monotonic())
            finally:
                await self.line.aclose()
                self.line = None
            self.fail("port closed")
            await asyncio.sleep(delay)

    async def _watch(self, line: SerialLine, opened_at: float) -> None:
        """Wait for the port to close, reporting silence after silent_after_s without a valid item."""
        silent = self.silent_after_s
        while not line.closed.done():
            since = self.last_valid_at if self.last_valid_at is not None else opened_at
            remaining = since + silent - time.monotonic()
            if remaining <= 0:
                self.fail(f"no {self.nothing} for {silent:g} s")
                remaining = silent
            try:
                async with asyncio.timeout(remaining):
                    await asyncio.shield(line.closed)
            except TimeoutError:
                continue

    def heard(self) -> None:
        """Something valid came: the line is not silent."""
        self.last_valid_at = time.monotonic()

    def deliver(self, item: Any) -> None:
        """The readers waiting get `item`."""
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(item)
        self._waiters.clear()

    async def next(self, device: str) -> Any:
        """The next item delivered (waits up to silent_after_s); DeviceError naming `device` otherwise."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        own: SerialLine | None = None
        try:
            if self.line is None:
                try:
                    own = await open_line(self.settings, self.on_data)
                except SerialLineError as exc:
                    raise DeviceError(device, exc.reason) from None
            async with asyncio.timeout(self.silent_after_s):
                return await fut
        except TimeoutError:
            raise DeviceError(device, f"no {self.nothing} within {self.silent_after_s:g} s") from None
        finally:
            if fut in self._waiters:
                self._waiters.remove(fut)
            if own is not None:
                await own.aclose()

    async def aclose(self) -> None:
        if self.line is not None:
            await self.line.aclose()
