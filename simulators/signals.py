"""`citygate-sim signals`: a traffic-signal controller on Modbus TCP (map: configs/registermaps/signal-controller.md).

A pymodbus server whose SimDevice action hands every request to the controller engine
(simulators/signals_engine.py): reads of input registers return the controller's state of
this second; writes to the command registers become commands the controller checks and may
refuse with a Modbus exception. There are no coils and no writable register for a signal
colour. The controller runs on its own clock: `run_clock(speed)` steps it in real time
(scaled), tests may instead call `controller.step()` themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.errors import ConfigError
from drivers.traffic.config import load_timings
from drivers.traffic.counting import IR_INTERVALS, MAX_KEPT, SLOT_WORDS
from drivers.traffic.registers import (
    HR_COMMIT,
    HR_CONTROL,
    HR_PLAN,
    HR_POSITION,
    HR_UPLOAD,
    IR_COUNT,
    UPLOAD_MAX_WORDS,
    Alarm,
    encode_state,
)
from simulators.signals_engine import (
    DEFAULT_INTERVAL_S,
    DEFAULT_KEPT,
    DETECTOR_FAULTS,
    CountingUnit,
    Refused,
    SignalController,
)

_REFUSAL_CODES = {
    Refused.NOT_IN_CONTROL: ExcCodes.NEGATIVE_ACKNOWLEDGE,
    Refused.FAILURE: ExcCodes.DEVICE_FAILURE,
    Refused.BAD_VALUE: ExcCodes.ILLEGAL_VALUE,
}
_READ_HR, _READ_IR = 3, 4
_WRITE_ONE, _WRITE_MANY = 6, 16
#: the input registers: the state block, the counting header and the ring of intervals
INPUT_WORDS = IR_INTERVALS + MAX_KEPT * SLOT_WORDS


class SignalControllerServer:
    """One controller behind one unit id on Modbus TCP."""

    def __init__(self, controller: SignalController, *, unit: int = 1) -> None:
        self.controller = controller
        self.unit = unit
        self.requests = 0
        self._server: ModbusTcpServer | None = None

    def _device(self) -> SimDevice:
        holding = [
            SimData(HR_CONTROL, count=1, datatype=DataType.REGISTERS),
            SimData(HR_PLAN, count=2, datatype=DataType.REGISTERS),
            SimData(HR_POSITION, count=2, datatype=DataType.REGISTERS),
            SimData(HR_COMMIT, count=3, datatype=DataType.REGISTERS),
            SimData(HR_UPLOAD, count=UPLOAD_MAX_WORDS, datatype=DataType.REGISTERS),
        ]
        inputs = [SimData(0, count=INPUT_WORDS, datatype=DataType.REGISTERS)]
        # pymodbus wants coil and discrete-input blocks; the action refuses every access to them.
        bits = [SimData(0, count=16, values=False, datatype=DataType.BITS)]
        return SimDevice(self.unit, simdata=(bits, list(bits), holding, inputs), action=self._action)

    async def serve_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on host:port (0: any free port); returns the port."""
        server = ModbusTcpServer(self._device(), address=(host, port))
        await server.serve_forever(background=True)
        self._server = server
        sockets = getattr(server.transport, "sockets", None)
        if not sockets:
            raise OSError(f"cannot listen on {host}:{port}")
        return int(sockets[0].getsockname()[1])

    async def aclose(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None

    async def __aenter__(self) -> SignalControllerServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def run_clock(self, speed: float = 1.0) -> None:
        """Step the controller once per simulated second until cancelled."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += 1.0 / speed
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            self.controller.step()

    async def _action(
        self,
        func_code: int,
        start: int,
        address: int,
        count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        self.requests += 1
        if func_code == _READ_IR:
            registers[address - start : address - start + count] = self._inputs(address, count)
            return None
        if func_code == _READ_HR:
            return None
        if func_code not in (_WRITE_ONE, _WRITE_MANY):
            return ExcCodes.ILLEGAL_FUNCTION
        if values is None:
            return None  # the read-back pymodbus does after a write
        try:
            return self._write(address, [int(v) for v in values], registers, start)
        except Refused as exc:
            return _REFUSAL_CODES[exc.kind]

    def _inputs(self, address: int, count: int) -> list[int]:
        words = encode_state(self.controller.state())[address : address + count] if address < IR_COUNT else []
        rest = count - len(words)
        if rest:
            first = address + len(words)
            unit = self.controller.counting
            words += unit.words(first, rest) if unit is not None else [0] * rest
        return words

    def _write(self, address: int, values: Sequence[int], registers: list[int], start: int) -> ExcCodes | None:
        c = self.controller
        if address == HR_CONTROL and len(values) == 1:
            c.take_control(values[0])
        elif address == HR_PLAN and len(values) == 2:
            c.command_plan(values[0], values[1])
        elif address == HR_POSITION and len(values) == 2:
            c.command_position(values[0], values[1])
        elif address == HR_COMMIT and len(values) == 3:
            length = values[0]
            if not 1 <= length <= UPLOAD_MAX_WORDS:
                return ExcCodes.ILLEGAL_VALUE
            staged = registers[HR_UPLOAD - start : HR_UPLOAD - start + length]
            if c.commit_upload(staged, values[1] << 16 | values[2]) is not None:
                return ExcCodes.ILLEGAL_VALUE
        elif HR_UPLOAD <= address and address + len(values) <= HR_UPLOAD + UPLOAD_MAX_WORDS:
            if not c.central:
                raise Refused(Refused.NOT_IN_CONTROL, "write the backup time first")
        else:
            # A command written in pieces could be half-applied: each command is one write of its registers.
            return ExcCodes.ILLEGAL_ADDRESS
        return None


def alarm_names(alarms: Alarm) -> str:
    return ",".join(a.name.lower() for a in Alarm if a in alarms and a.name) or "none"


FAULT_KINDS = ("conflict", "door", "lamp", "hardware", "deadlock", "corrupt-tables", *DETECTOR_FAULTS, "detector-ok")
#: faults that name what they hit: a lamp failure its signal group, a detector fault its detector
_NAMED = {"lamp": "group", **dict.fromkeys((*DETECTOR_FAULTS, "detector-ok"), "detector")}


def parse_fault(text: str) -> tuple[int, str, str | None]:
    """`SECONDS=KIND[:GROUP]`: inject KIND that many simulated seconds after start."""
    try:
        at_text, rest = text.split("=", 1)
        kind, _, group = rest.partition(":")
        at = int(at_text)
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected SECONDS=KIND[:GROUP]", param_hint="--fault") from None
    if kind not in FAULT_KINDS or at < 0:
        raise click.BadParameter(f"{text!r}: KIND is one of {', '.join(FAULT_KINDS)}", param_hint="--fault")
    if kind in _NAMED and not group:
        raise click.BadParameter(f"{text!r}: {kind} names its {_NAMED[kind]}, e.g. 5={kind}:D1", param_hint="--fault")
    return at, kind, group or None


def inject(controller: SignalController, kind: str, group: str | None) -> str:
    match kind:
        case "conflict" if group is not None:
            controller.force_green(group)
            return f"forced {group} green"
        case "conflict":
            return f"forced {controller.inject_conflict()} green"
        case "door":
            controller.set_door_open(True)
        case "lamp":
            assert group is not None
            controller.set_lamp_failure(group)
        case "hardware":
            controller.inject_hardware_error()
        case "deadlock":
            controller.freeze_sequencer()
        case "corrupt-tables":
            controller.corrupt_stored_tables()
        case "stuck-on" | "stuck-off" | "chattering" | "detector-ok":
            if controller.counting is None or group is None:
                raise KeyError(group)
            controller.counting.set_fault(group, None if kind == "detector-ok" else kind)
            return f"{kind} {group}"
    return kind


@click.command("signals")
@click.option("--intersection", "file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Intersection TOML (configs/intersections/): the matrix, and the tables installed with the controller.")
@click.option("--tcp", default="127.0.0.1:0", show_default=True, metavar="HOST:PORT", help="Modbus TCP endpoint (port 0: any free port).")
@click.option("--unit", type=click.IntRange(1, 247), default=1, show_default=True)
@click.option("--timezone", "tz_name", default="Europe/Paris", show_default=True)
@click.option("--speed", type=click.FloatRange(min=0.01), default=1.0, show_default=True, help="Simulated seconds per real second.")
@click.option("--start", "start_text", metavar="ISO-8601", help="Controller clock at start (default: now).")
@click.option("--no-tables", is_flag=True, help="Install only the intersection: the controller stays dark until an upload.")
@click.option("--fault", "faults", multiple=True, metavar="SECONDS=KIND[:NAME]",
              help=f"Inject a fault: {' | '.join(FAULT_KINDS)} (lamp: a group, detector faults: a detector).")
@click.option("--interval", "interval_s", type=click.IntRange(10, 3600), default=DEFAULT_INTERVAL_S, show_default=True,
              help="Counting interval of the detectors, s.")
@click.option("--kept", type=click.IntRange(1, MAX_KEPT), default=DEFAULT_KEPT, show_default=True,
              help="Counting intervals the controller keeps.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the traffic demand.")
def signals(
    file: Path, tcp: str, unit: int, tz_name: str, speed: float, start_text: str | None, no_tables: bool,
    faults: tuple[str, ...], interval_s: int, kept: int, seed: int,
) -> None:
    """A simulated signal controller on Modbus TCP; prints its mode, plan and alarm changes; runs until interrupted."""
    host, _, port_text = tcp.rpartition(":")
    if not host or not port_text.isdigit():
        raise click.BadParameter(f"{tcp!r} is not HOST:PORT", param_hint="--tcp")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"unknown time zone {tz_name!r}", param_hint="--timezone") from None
    try:
        start = datetime.fromisoformat(start_text) if start_text else datetime.now(UTC)
    except ValueError:
        raise click.BadParameter(f"{start_text!r} is not an ISO-8601 instant", param_hint="--start") from None
    if start.tzinfo is None:
        raise click.BadParameter("give the offset, e.g. 2026-03-29T06:00:00+02:00", param_hint="--start")
    try:
        timings = load_timings(file)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--intersection") from None
    fault_list = [parse_fault(f) for f in faults]
    counting = CountingUnit(timings, tz, interval_s=interval_s, kept=kept, seed=seed) if timings.detectors else None
    controller = SignalController(timings.intersection, None if no_tables else timings, start=start, tz=tz,
                                  counting=counting)
    asyncio.run(_run(controller, host, int(port_text), unit, speed, fault_list))


async def _run(
    controller: SignalController, host: str, port: int, unit: int, speed: float, faults: list[tuple[int, str, str | None]]
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with SignalControllerServer(controller, unit=unit) as server:
        bound = await server.serve_tcp(host, port)
        click.echo(f"signals: controller {controller.ix.id} on modbus-tcp {host}:{bound} unit {unit}", nl=True)
        clock = asyncio.create_task(server.run_clock(speed))
        report = asyncio.create_task(_report(controller, faults))
        await stop.wait()
        for task in (clock, report):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _report(controller: SignalController, faults: list[tuple[int, str, str | None]]) -> None:
    """Print what changes, and inject the faults when their time comes."""
    started = controller.clock_s
    pending = sorted(faults)
    last: tuple[object, ...] = ()
    while True:
        state = controller.state()
        now = (state.mode.name.lower(), state.plan, state.alarms)
        if now != last:
            when = datetime.fromtimestamp(state.clock_s, controller.tz).isoformat()
            click.echo(f"signals: {when} mode {now[0]} plan {now[1]} alarms {alarm_names(state.alarms)}")
            last = now
        while pending and controller.clock_s - started >= pending[0][0]:
            _, kind, group = pending[0]
            try:
                click.echo(f"signals: fault injected: {inject(controller, kind, group)}")
            except ValueError:
                if kind == "conflict":
                    break  # nothing green to conflict with this second: try the next one
                raise
            except KeyError:
                click.echo(f"signals: fault {kind} not injected: no {_NAMED.get(kind, 'group')} {group!r}")
            pending.pop(0)
        await asyncio.sleep(0.05)
