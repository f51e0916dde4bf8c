"""Lamp-controller simulator: many Modbus units, each one lamp, laid out by a register map from configs/.

Serves Modbus TCP on a port and Modbus RTU on a pty (the simulator holds the master side; a
client opens the slave path /dev/pts/N as a serial port). Request bytes are decoded and replies
built with pymodbus's own framers and PDU classes; the register contents come from a small
physical model per lamp: power follows the level and the rated power, energy integrates power
into a u32 Wh counter that wraps, burning hours count while lit, temperature follows power.

Faults are injected per unit: no answer, an exception code, lamp failure (commanded on, draws
almost nothing, fault bit set), slow replies. Used from tests as a library (`LampSimulator`) and
from a shell as `citygate-sim lamps`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import signal
import time
import tty
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import click
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerBase, FramerRTU, FramerSocket
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU

from drivers.errors import ConfigError
from drivers.modbus.codec import WORDS, encode_raw, raw_range, unscaled
from drivers.modbus.regmap import LEVEL_CMD, LEVEL_FEEDBACK, Register, RegisterMap, load_register_map

FAULT_KINDS = ("none", "no-answer", "exception", "lamp-failure", "slow")
HOLDING, INPUT = 3, 4
_TABLE = {3: HOLDING, 6: HOLDING, 16: HOLDING, 22: HOLDING, 23: HOLDING, 4: INPUT}
STANDBY_W = 0.4  # controller and driver with the output off
FAILED_W = 0.6  # commanded on, lamp open: well under 10 % of any rated power
DRIVER_FLOOR = 0.04  # an LED driver's losses: share of rated power drawn at the lowest level
AMBIENT_C = 12.0
THERMAL_TAU_S = 900.0


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str = "none"
    code: int = 0x04  # exception code for kind "exception"
    delay_s: float = 1.0  # reply delay for kind "slow"


class Lamp:
    """Physical state of one lamp and its controller."""

    def __init__(self, rated_power_w: float, level_pct: int, energy_wh: float, rng: random.Random, speed: float) -> None:
        self.rated_power_w = rated_power_w
        self.level_pct = float(level_pct)
        self.failed = False
        self.energy_wh = energy_wh
        self.hours = rng.uniform(0, 20_000)
        self.temperature_c = AMBIENT_C
        self._rng = rng
        self._speed = speed
        self._volt_offset = rng.uniform(-4.0, 4.0)
        self._t = time.monotonic()

    @property
    def lit(self) -> bool:
        return self.level_pct > 0

    def power_w(self) -> float:
        if not self.lit:
            return STANDBY_W
        if self.failed:
            return FAILED_W
        return self.rated_power_w * (DRIVER_FLOOR + (1 - DRIVER_FLOOR) * self.level_pct / 100)

    def advance(self) -> None:
        """Integrate energy, hours and temperature up to now at the power drawn since the last step."""
        now = time.monotonic()
        dt = (now - self._t) * self._speed
        self._t = now
        if dt <= 0:
            return
        p = self.power_w()
        self.energy_wh += p * dt / 3600
        if self.lit and not self.failed:
            self.hours += dt / 3600
        target = AMBIENT_C + 30.0 * p / self.rated_power_w
        self.temperature_c += (target - self.temperature_c) * (1 - math.exp(-dt / THERMAL_TAU_S))

    def set_level(self, level_pct: float) -> None:
        # Same level again: nothing changes, the output is never switched off in between.
        self.advance()
        self.level_pct = level_pct

    def set_failed(self, failed: bool) -> None:
        self.advance()
        self.failed = failed

    def quantities(self) -> dict[str, float | bool]:
        p = self.power_w() * (1 + self._rng.uniform(-0.004, 0.004))
        v = 230.0 + self._volt_offset + self._rng.uniform(-0.5, 0.5)
        pf = 0.95 if self.lit and not self.failed else 0.5
        return {
            "lamp_on": self.lit,
            "lamp_failure": self.lit and self.failed,
            "gear_failure": False,
            "voltage_v": v,
            "current_a": p / (v * pf),
            "power_w": p,
            "energy_wh": self.energy_wh,
            "operating_hours_h": self.hours,
            "temperature_c": self.temperature_c,
        }


class _Unit:
    """One Modbus unit: a lamp, its register image and its counters."""

    def __init__(self, number: int, lamp: Lamp, regmap: RegisterMap, served: dict[int, frozenset[int]]) -> None:
        self.number = number
        self.lamp = lamp
        self.fault = Fault()
        self.requests = 0
        self._map = regmap
        self._served = served
        self._cmd = regmap.get(LEVEL_CMD)
        self._cmd_words = self._cmd.encode(lamp.level_pct) if self._cmd else []
        self._written: dict[str, list[int]] = {}

    def image(self, table: int) -> dict[int, int]:
        """Register contents of one table (holding or input) right now."""
        self.lamp.advance()
        q = self.lamp.quantities()
        words = dict.fromkeys(self._served[table], 0)
        bits = []
        for reg in self._map.registers:
            if reg.function != table:
                continue
            if reg.bit is not None:
                bits.append(reg)
                continue
            for i, w in enumerate(self._words(reg, q)):
                words[reg.address + i] = w
        for reg in bits:
            if q.get(reg.name):
                words[reg.address] |= 1 << cast(int, reg.bit)
        return words

    def _words(self, reg: Register, q: Mapping[str, float | bool]) -> list[int]:
        if reg.name in self._written:
            return self._written[reg.name]
        if reg.name == LEVEL_CMD:
            return self._cmd_words
        if reg.name == LEVEL_FEEDBACK:
            cmd = self._cmd
            if cmd and (cmd.curve, cmd.type, cmd.scale, cmd.word_order) == (reg.curve, reg.type, reg.scale, reg.word_order):
                return self._cmd_words
            return reg.encode(round(self.lamp.level_pct))
        return _encode_reading(reg, float(q.get(reg.name, 0)))

    def set_level(self, level_pct: int) -> None:
        """Change the level at the controller itself (a local override), register image included."""
        if self._cmd is not None:
            self._cmd_words = self._cmd.encode(level_pct)
        self.lamp.set_level(float(level_pct))

    def write(self, address: int, values: list[int]) -> ExcCodes | None:
        """Apply a write of holding registers; every word must belong to a writable register, wholly."""
        end = address + len(values)
        touched = [r for r in self._map.registers if r.function == HOLDING and r.address < end and address < r.address + r.words]
        if not touched or any(not r.writable or r.address < address or r.address + r.words > end for r in touched):
            return ExcCodes.ILLEGAL_ADDRESS
        covered = sum(r.words for r in touched)
        if covered != len(values):
            return ExcCodes.ILLEGAL_ADDRESS
        for reg in touched:
            words = values[reg.address - address : reg.address - address + reg.words]
            if reg.name != LEVEL_CMD:
                self._written[reg.name] = words
                continue
            value = reg.decode(words, 0)
            if value is None:
                if reg.curve == "dali" and words[0] == 255:
                    continue  # DALI "mask": keep the current level
                return ExcCodes.ILLEGAL_VALUE
            level = float(value)
            if not 0 <= level <= 100:
                return ExcCodes.ILLEGAL_VALUE
            self._cmd_words = list(words)
            self.lamp.set_level(level)
        return None


def _encode_reading(reg: Register, value: float) -> list[int]:
    """Words for a measured value; unsigned counters wrap like the device's own, signed values saturate."""
    raw = unscaled(value, reg.scale, reg.type)
    if reg.type != "f32":
        lo, hi = raw_range(reg.type)
        raw = int(raw) % (1 << (16 * WORDS[reg.type])) if lo == 0 else max(lo, min(hi, int(raw)))
    return encode_raw(raw, reg.type, reg.word_order)


class _Store:
    """The datastore interface pymodbus's request PDUs call (`datastore_update`)."""

    def __init__(self, units: Mapping[int, _Unit]) -> None:
        self._units = units

    async def async_getValues(self, device_id: int, func_code: int, address: int, count: int = 1) -> list[int] | ExcCodes:
        table = _TABLE.get(func_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        image = self._units[device_id].image(table)
        try:
            return [image[a] for a in range(address, address + count)]
        except KeyError:
            return ExcCodes.ILLEGAL_ADDRESS

    async def async_setValues(self, device_id: int, func_code: int, address: int, values: list[int]) -> ExcCodes | None:
        if _TABLE.get(func_code) != HOLDING:
            return ExcCodes.ILLEGAL_FUNCTION
        return self._units[device_id].write(address, list(values))


class LampSimulator:
    """Lamp controllers on Modbus units `units`, served over TCP and/or an RTU pty. Use `async with`."""

    def __init__(
        self,
        units: Iterable[int],
        register_map: RegisterMap | Path | str,
        *,
        rated_power_w: float | Mapping[int, float] = 100.0,
        level_pct: int = 100,
        energy_wh: float | None = None,
        speed: float = 1.0,
        seed: int = 1,
    ) -> None:
        self.register_map = register_map if isinstance(register_map, RegisterMap) else load_register_map(register_map)
        served: dict[int, set[int]] = {HOLDING: set(), INPUT: set()}
        for block in self.register_map.plan():
            served[block.function].update(range(block.address, block.address + block.count))
        frozen = {t: frozenset(a) for t, a in served.items()}
        self._units: dict[int, _Unit] = {}
        for n in units:
            if not 1 <= n <= 247:
                raise ValueError(f"unit {n} is outside 1..247")
            rng = random.Random(seed * 1000 + n)
            rated = rated_power_w[n] if isinstance(rated_power_w, Mapping) else rated_power_w
            start = rng.uniform(0, 5e6) if energy_wh is None else energy_wh
            self._units[n] = _Unit(n, Lamp(rated, level_pct, start, rng, speed), self.register_map, frozen)
        self._store = _Store(self._units)
        self._servers: list[asyncio.Server] = []
        self._closers: list[Callable[[], None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> LampSimulator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def units(self) -> list[int]:
        return sorted(self._units)

    def lamp(self, unit: int) -> Lamp:
        return self._units[unit].lamp

    def set_level(self, unit: int, level_pct: int) -> None:
        """Set a lamp's level from the controller side, as a local override would."""
        self._units[unit].set_level(level_pct)

    def register_image(self, unit: int, function: int = HOLDING) -> dict[int, int]:
        """What `unit` would answer right now for each address of a table (3 holding, 4 input)."""
        return self._units[unit].image(function)

    def requests(self, unit: int) -> int:
        """Requests addressed to `unit` so far, answered or not."""
        return self._units[unit].requests

    def set_fault(self, unit: int, kind: str, *, code: int = 0x04, delay_s: float = 1.0) -> None:
        """Inject a fault: "no-answer", "exception" (with `code`), "lamp-failure", "slow" (by `delay_s`), or "none"."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        u = self._units[unit]
        u.fault = Fault(kind, code, delay_s)
        u.lamp.set_failed(kind == "lamp-failure")

    async def serve_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen for Modbus TCP; returns the port (pick 0 for a free one)."""

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._writers.add(writer)
            task = asyncio.current_task()
            if task is not None:
                self._handlers.add(task)
            try:
                await self._serve(reader, writer.write, FramerSocket(DecodePDU(True)), tcp=True)
            finally:
                self._writers.discard(writer)
                if task is not None:
                    self._handlers.discard(task)
                writer.close()

        server = await asyncio.start_server(on_client, host, port)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def serve_rtu_pty(self) -> str:
        """Serve Modbus RTU on a new pty; returns the path a client opens as its serial port."""
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line discipline: a byte-transparent line, as RS-485 is
        path = os.ttyname(slave)
        os.set_blocking(master, False)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        loop.add_reader(master, self._pty_readable, master, reader)

        is_open = True

        def write(data: bytes) -> None:
            if is_open:  # a slow reply may fall due after close, when the fd number is someone else's
                with contextlib.suppress(BlockingIOError, OSError):
                    os.write(master, data)  # a line nobody reads loses the bytes, as a real one does

        task = asyncio.create_task(self._serve(reader, write, FramerRTU(DecodePDU(True)), tcp=False))
        self._tasks.add(task)

        def close() -> None:
            nonlocal is_open
            is_open = False
            loop.remove_reader(master)
            os.close(master)
            os.close(slave)  # held open until now so the master never sees a hang-up between clients

        self._closers.append(close)
        return path

    @staticmethod
    def _pty_readable(master: int, reader: asyncio.StreamReader) -> None:
        try:
            data = os.read(master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            reader.feed_data(data)

    async def _serve(
        self, reader: asyncio.StreamReader, write: Callable[[bytes], None], framer: FramerBase, *, tcp: bool
    ) -> None:
        loop = asyncio.get_running_loop()
        buf = b""
        while data := await reader.read(4096):
            buf += data
            while buf:
                try:
                    used, pdu = framer.handleFrame(buf, 0, 0)
                except ModbusIOException as exc:
                    # A frame with a function code we do not know: the standard answer is exception 01.
                    reply = ExceptionResponse(exc.fcode or 0, ExcCodes.ILLEGAL_FUNCTION, exc.dev_id or 0, exc.transaction_id or 0)
                    write(framer.buildFrame(reply))
                    buf = b""
                    break
                if not used:
                    if len(buf) > 2 * framer.MAX_SIZE:
                        buf = b""  # never a frame: drop and resynchronise
                    break
                buf = buf[used:]
                if pdu is None:
                    continue
                answer = await self._answer(pdu, tcp)
                if answer is None:
                    continue
                frame, delay = framer.buildFrame(answer), self._delay(pdu.dev_id)
                if delay:
                    loop.call_later(delay, write, frame)
                else:
                    write(frame)

    def _delay(self, unit: int) -> float:
        u = self._units.get(unit)
        return u.fault.delay_s if u is not None and u.fault.kind == "slow" else 0.0

    async def _answer(self, pdu: ModbusPDU, tcp: bool) -> ModbusPDU | None:
        unit = self._units.get(pdu.dev_id)
        if unit is None:
            if not tcp:
                return None  # nobody on the line has that address: silence
            # A TCP gateway answers for a unit that is not there.
            answer: ModbusPDU = ExceptionResponse(pdu.function_code, ExcCodes.GATEWAY_NO_RESPONSE)
        else:
            unit.requests += 1
            if unit.fault.kind == "no-answer":
                return None
            if unit.fault.kind == "exception":
                answer = ExceptionResponse(pdu.function_code, unit.fault.code)
            else:
                answer = await pdu.datastore_update(cast(Any, self._store), pdu.dev_id)
        answer.dev_id = pdu.dev_id
        answer.transaction_id = pdu.transaction_id
        return answer

    async def aclose(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._writers):
            writer.close()  # its handler sees end of file and returns
        await asyncio.gather(*self._handlers, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for close in self._closers:
            close()
        self._closers.clear()


def parse_units(text: str) -> list[int]:
    """"1-150,200,210-212" -> unit numbers."""
    units: list[int] = []
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            first, last = (int(lo), int(hi)) if sep else (int(part), int(part))
        except ValueError:
            raise click.BadParameter(f"{part!r} is not a unit or a range like 1-150", param_hint="--units") from None
        if not 1 <= first <= last <= 247:
            raise click.BadParameter(f"{part!r}: units are 1..247, ranges ascending", param_hint="--units")
        units.extend(range(first, last + 1))
    return units


def parse_fault(text: str) -> tuple[int, str, int, float]:
    """"3=no-answer", "4=exception:2", "5=slow:0.8", "6=lamp-failure" -> (unit, kind, code, delay_s)."""
    unit_text, sep, spec = text.partition("=")
    kind, _, arg = spec.partition(":")
    if not sep or not unit_text.strip().isdigit() or kind not in FAULT_KINDS:
        raise click.BadParameter(f"{text!r}: expected UNIT=KIND[:ARG], KIND one of {', '.join(FAULT_KINDS)}", param_hint="--fault")
    try:
        code = int(arg, 16) if kind == "exception" and arg else 0x04
        delay = float(arg) if kind == "slow" and arg else 1.0
    except ValueError:
        raise click.BadParameter(f"{text!r}: bad argument {arg!r}", param_hint="--fault") from None
    return int(unit_text), kind, code, delay


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(f"{text!r} is not HOST:PORT", param_hint="--tcp")
    return host or "127.0.0.1", int(port)


@click.command("lamps")
@click.option("--tcp", "tcp", metavar="HOST:PORT", help="Serve Modbus TCP here (port 0: any free port).")
@click.option("--rtu-pty", is_flag=True, help="Serve Modbus RTU on a new pty; its path is printed.")
@click.option("--units", default="1", show_default=True, help="Unit ids, e.g. 1-150,200.")
@click.option("--register-map", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--rated-power-w", type=click.FloatRange(min=1), default=100.0, show_default=True)
@click.option("--level", type=click.IntRange(0, 100), default=100, show_default=True, help="Initial level, %.")
@click.option("--speed", type=click.FloatRange(min=0), default=1.0, show_default=True, help="Simulated seconds per real second.")
@click.option("--fault", "faults", multiple=True, metavar="UNIT=KIND[:ARG]", help="no-answer | exception:CODE | lamp-failure | slow:SECONDS")
def lamps(
    tcp: str | None,
    rtu_pty: bool,
    units: str,
    register_map: Path,
    rated_power_w: float,
    level: int,
    speed: float,
    faults: tuple[str, ...],
) -> None:
    """Simulated lamp controllers on Modbus TCP and/or RTU; runs until interrupted."""
    if not tcp and not rtu_pty:
        raise click.UsageError("give --tcp HOST:PORT and/or --rtu-pty")
    endpoint = _host_port(tcp) if tcp else None
    unit_list = parse_units(units)
    fault_list = [parse_fault(f) for f in faults]
    for unit, *_ in fault_list:
        if unit not in unit_list:
            raise click.BadParameter(f"unit {unit} is not simulated", param_hint="--fault")
    try:
        regmap = load_register_map(register_map)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--register-map") from None
    asyncio.run(_run(unit_list, regmap, endpoint, rtu_pty, rated_power_w, level, speed, fault_list))


async def _run(
    units: list[int],
    regmap: RegisterMap,
    endpoint: tuple[str, int] | None,
    rtu_pty: bool,
    rated_power_w: float,
    level: int,
    speed: float,
    faults: list[tuple[int, str, int, float]],
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with LampSimulator(units, regmap, rated_power_w=rated_power_w, level_pct=level, speed=speed) as sim:
        for unit, kind, code, delay in faults:
            sim.set_fault(unit, kind, code=code, delay_s=delay)
        if endpoint:
            port = await sim.serve_tcp(*endpoint)
            click.echo(f"lamps: {len(units)} units ({regmap.model}) on modbus-tcp {endpoint[0]}:{port}")
        if rtu_pty:
            path = await sim.serve_rtu_pty()
            click.echo(f"lamps: {len(units)} units ({regmap.model}) on modbus-rtu {path}")
        await stop.wait()
