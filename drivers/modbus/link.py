"""The thin shell around pymodbus's async clients: one Modbus TCP endpoint or RTU line.

Every Modbus driver goes through it (the lamp controllers' bus here, the signal controllers'
in drivers/traffic/bus.py), so pymodbus is wrapped once and its errors are one hierarchy.

pymodbus (pinned 3.16) stays behind this small interface: `read()` (registers, FC3/FC4),
`read_bits()` (coils FC1, discrete inputs FC2) and `write()` make exactly one try each and raise
one of the LinkError kinds below, so the bus owns retries, timing and backoff. When a reply
cannot be used, the bytes received are decoded by drivers.modbus.frames so the error says what
was wrong with them (bad CRC, truncated, wrong protocol id ...).
Connecting is on demand, with its own backoff, so a dead endpoint costs one connection
attempt per backoff period rather than one per device; reconnect_s (0, 0) leaves the backoff
to the caller.
"""

from __future__ import annotations

import asyncio
import termios
import time
from collections.abc import Callable, Sequence
from typing import ClassVar, Literal

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.client.base import ModbusBaseClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.pdu import ModbusPDU

from drivers.errors import DecodeError, DriverError
from drivers.modbus.frames import decode_rtu, decode_tcp, exception_meaning

Framing = Literal["tcp", "rtu"]
Trace = Callable[[bool, bytes], bytes]
CONFIG_EXCEPTIONS = frozenset({0x01, 0x02, 0x03})  # the request itself is wrong for this device
_HOLDING, _INPUT_REGISTERS = "read_holding_registers", "read_input_registers"  # the pymodbus client's reads
_BIT_READS = {1: "read_coils", 2: "read_discrete_inputs"}


class LinkError(DriverError):
    """A request got no usable answer. `kind` is the counter name in DeviceState.errors."""

    kind: ClassVar[str] = "error"


class NoReply(LinkError):
    kind = "timeout"


class BadReply(LinkError):
    kind = "garbled"


class LinkDown(LinkError):
    kind = "connection"


class ExceptionReply(LinkError):
    kind = "exception"

    def __init__(self, unit: int, function: int, code: int, address: int, count: int) -> None:
        super().__init__(
            f"unit {unit} answered function {function} at address {address} (count {count}) "
            f"with exception {code:02X} ({exception_meaning(code)})"
        )
        self.unit = unit
        self.function = function
        self.code = code
        self.address = address
        self.count = count

    @property
    def is_config_error(self) -> bool:
        """01/02/03: the map asks for a function, address or value this device does not have; retrying cannot help."""
        return self.code in CONFIG_EXCEPTIONS


class ModbusLink:
    """One request at a time over one pymodbus client (pymodbus serialises them itself)."""

    def __init__(
        self,
        label: str,
        framing: Framing,
        timeout_s: float,
        reconnect_s: tuple[float, float],
        make_client: Callable[[Trace], ModbusBaseClient],
    ) -> None:
        self._make_client = make_client
        self._client: ModbusBaseClient | None = None  # made on first use: pymodbus needs the running loop
        self._lock = asyncio.Lock()
        self.label = label
        self._framing = framing
        self._timeout_s = timeout_s
        self._reconnect_min, self._reconnect_max = reconnect_s
        self._reconnect_delay = self._reconnect_min
        self._retry_at = 0.0
        self._rx = b""

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self._rx = data
        return data

    async def _connect(self) -> ModbusBaseClient:
        if self._client is None:
            self._client = self._make_client(self._trace)
            self._client.set_max_no_responses(1 << 30)  # a dead unit must not make pymodbus drop the link its neighbours share
        client = self._client
        if client.connected:
            return client
        now = time.monotonic()
        if now < self._retry_at:
            raise LinkDown(f"{self.label} is unreachable; next connection attempt in {self._retry_at - now:.1f} s")
        try:
            connected = await client.connect()
            reason = "" if connected else "no connection"
        except (OSError, termios.error) as exc:
            # pymodbus passes on what the serial port refuses, e.g. a pty given parity E.
            connected, reason = False, f"{exc}"
        if not connected:
            self._retry_at = time.monotonic() + self._reconnect_delay
            self._reconnect_delay = min(self._reconnect_delay * 2, self._reconnect_max)
            raise LinkDown(f"cannot connect to {self.label}: {reason}")
        self._reconnect_delay = self._reconnect_min
        return client

    async def read(self, unit: int, function: int, address: int, count: int) -> Sequence[int]:
        """`count` registers from `address` (function 3 holding, 4 input) of `unit`."""
        pdu = await self._read(unit, function, address, count, _HOLDING if function == 3 else _INPUT_REGISTERS)
        registers = pdu.registers
        if len(registers) != count:
            raise BadReply(f"unit {unit} sent {len(registers)} registers for a read of {count} at {address}")
        return registers

    async def read_bits(self, unit: int, function: int, address: int, count: int) -> list[bool]:
        """`count` bits from `address` (function 1 coils, 2 discrete inputs) of `unit`: item i is address + i."""
        if function not in _BIT_READS:
            raise ValueError(f"function {function} does not read bits (1 coils, 2 discrete inputs)")
        pdu = await self._read(unit, function, address, count, _BIT_READS[function])
        bits, size = pdu.bits, (count + 7) // 8  # pymodbus unpacks the data bytes, 8 bits each
        if len(bits) != size * 8:
            raise BadReply(f"unit {unit} sent {len(bits) // 8} bytes of bits for a read of {count} at {address}")
        if self._framing == "tcp" and self._rx[8:9] != bytes([size]):
            # RTU frames are cut by their byte count; over TCP pymodbus takes the MBAP length and ignores it.
            raise BadReply(f"unit {unit} sent byte count {self._rx[8:9].hex()} with {size} bytes of bits "
                           f"for a read of {count} at {address}")
        return list(bits[:count])

    async def _read(self, unit: int, function: int, address: int, count: int, method: str) -> ModbusPDU:
        async with self._lock:
            client = self._client
            if client is None or not client.connected:  # connected: most reads, without a coroutine for it
                client = await self._connect()
            self._rx = b""
            try:
                pdu: ModbusPDU = await getattr(client, method)(address, count=count, device_id=unit)
            except ConnectionException as exc:
                raise LinkDown(f"{self.label}: {exc}") from None
            except ModbusException:
                raise self._unusable(unit, function) from None
        self._check(pdu, unit, function, address, count)
        return pdu

    async def write(self, unit: int, address: int, words: list[int], *, multiple: bool = False) -> None:
        """Write holding registers: FC06 for one word, FC16 for more, or always with `multiple`
        (devices that implement only FC16, such as the signal controllers)."""
        function = 6 if len(words) == 1 and not multiple else 16
        async with self._lock:
            client = await self._connect()
            self._rx = b""
            try:
                if function == 6:
                    pdu = await client.write_register(address, words[0], device_id=unit)
                else:
                    pdu = await client.write_registers(address, words, device_id=unit)
            except ConnectionException as exc:
                raise LinkDown(f"{self.label}: {exc}") from None
            except ModbusException:
                raise self._unusable(unit, function) from None
        self._check(pdu, unit, function, address, len(words))

    def _check(self, pdu: ModbusPDU, unit: int, function: int, address: int, count: int) -> None:
        if pdu.isError():
            raise ExceptionReply(unit, function, int(getattr(pdu, "exception_code", 0)), address, count)
        if pdu.function_code != function:
            raise BadReply(f"unit {unit} answered function {function} with function {pdu.function_code}")

    def _unusable(self, unit: int, function: int) -> LinkError:
        rx = self._rx
        if not rx:
            return NoReply(f"no reply from unit {unit} within {self._timeout_s:g} s")
        try:
            frame = decode_tcp(rx, "response") if self._framing == "tcp" else decode_rtu(rx, "response")
        except DecodeError as exc:
            problem = str(exc)
        else:
            problem = f"a reply from unit {frame.unit} to function {frame.function} that does not match the request"
            if frame.transaction_id is not None:
                problem += f" (transaction {frame.transaction_id})"
        return BadReply(f"unusable reply to unit {unit} function {function}: {problem}; received {rx[:64].hex(' ')}")

    async def aclose(self) -> None:
        if self._client is not None:
            self._client.close()


def tcp_link(host: str, port: int, *, timeout_s: float, reconnect_s: tuple[float, float]) -> ModbusLink:
    return ModbusLink(
        f"{host}:{port}",
        "tcp",
        timeout_s,
        reconnect_s,
        # reconnect_delay=0: we reconnect on demand, with our own backoff.
        lambda trace: AsyncModbusTcpClient(
            host, port=port, timeout=timeout_s, retries=0, reconnect_delay=0, trace_packet=trace
        ),
    )


def rtu_link(
    device: str,
    *,
    baudrate: int,
    parity: str,
    stopbits: int,
    bytesize: int,
    timeout_s: float,
    reconnect_s: tuple[float, float],
) -> ModbusLink:
    return ModbusLink(
        device,
        "rtu",
        timeout_s,
        reconnect_s,
        lambda trace: AsyncModbusSerialClient(
            device,
            baudrate=baudrate,
            parity=parity,
            stopbits=stopbits,
            bytesize=bytesize,
            timeout=timeout_s,
            retries=0,
            reconnect_delay=0,
            trace_packet=trace,
        ),
    )
