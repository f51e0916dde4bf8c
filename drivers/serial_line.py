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
from collections.abc import Callable
from dataclasses import dataclass

from drivers.conf import ConfigTable
from drivers.errors import ConfigError, DriverError

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
