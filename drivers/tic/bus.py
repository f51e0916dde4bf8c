"""The TIC bus: a Linky meter's customer output on a serial port, listened to (the meter talks, we never ask).

Config (one ``[[bus]]`` table of the agent's TOML; unknown keys are refused)::

    [[bus]]
    name = "linky"
    type = "tic"
    port = "/dev/ttyUSB0"
    mode = "historic"          # or "standard" (the supplier sets it; the meter's display shows it)
    baudrate = 1200            # default: 1200 historic, 9600 standard
    parity = "E"               # the line is 7E1; a pty refuses 7E1, so tests use parity="N", bytesize=8
    bytesize = 7
    stopbits = 1
    device = "cabinet-12-meter"   # device id of the samples (default: the bus name)
    sample_interval_s = 10     # at most one sample per interval (frames come every 1-2 s)
    silent_after_s = 30        # communication_failure when no valid frame arrives for this long
    report = { default = { strategy = "change_or_period", period_s = 900 } }   # optional (README)

Samples (device = `device`), from the last valid frame: every group of both label tables as a
typed quantity (energy_wh, energy_<index>_wh, apparent_power_va, current_a or current_l1_a ..
current_l3_a, voltage_v, max_apparent_power_yesterday_l1_va and its _time, tariff, tempo_tomorrow,
the decoded STGE ...): the full list, with units, is in drivers/tic/README.md.

Events: communication_failure (major; port cannot be opened or no valid frame for
silent_after_s) and communication_restored (info). Counters in DeviceState.errors:
tic_checksum_errors, tic_format_errors, tic_aborted_frames, tic_invalid_values. A group whose
checksum fails is never data.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from citygate_wire.common import now_ms
from drivers.base import BusContext, DeviceState
from drivers.conf import ConfigTable
from drivers.errors import ConfigError, DeviceError
from drivers.model import Event, RecordSink, Sample, Severity
from drivers.registry import Driver
from drivers.reporting import EVERY, DeviceReporter, Policy, Reporter, parse_report_table
from drivers.serial_line import LineListener, LineSettings, parse_line
from drivers.tic.codec import BAUDRATE, Frame, Mode, TicParser
from drivers.tic.values import interpret

log = logging.getLogger("citygate.tic")



@dataclass(frozen=True, slots=True)
class TicConfig:
    name: str
    line: LineSettings
    mode: Mode
    device: str
    sample_interval_s: float = 10.0
    silent_after_s: float = 30.0
    #: report by exception (drivers.reporting): the policy of quantities not named, and of those named
    report_default: Policy = EVERY
    report: Mapping[str, Policy] = field(default_factory=dict)

    @property
    def port(self) -> str:
        return self.line.port


def parse_config(raw: Mapping[str, Any], key: str) -> TicConfig:
    t = ConfigTable(dict(raw), key)
    name = t.text("name", required=True)
    t.text("type")
    mode_text = t.text("mode", "historic")
    if mode_text not in ("historic", "standard"):
        raise ConfigError(f"{key}.mode", f'expected "historic" or "standard", got {mode_text!r}')
    mode = Mode(mode_text)
    t.used.add("report")
    report_default, report = parse_report_table(raw["report"], f"{key}.report") if "report" in raw else (EVERY, {})
    cfg = TicConfig(
        name=name,
        line=parse_line(t, baudrate=BAUDRATE[mode], bytesize=7, rates=range(300, 115201)),
        mode=mode,
        device=t.text("device", name),
        sample_interval_s=t.number("sample_interval_s", 10.0, lo=0.0, hi=86400.0),
        silent_after_s=t.number("silent_after_s", 30.0, lo=0.1, hi=86400.0),
        report_default=report_default,
        report=report,
    )
    t.done()
    if not cfg.name or not cfg.device:
        raise ConfigError(f"{key}.name", "must not be empty")
    return cfg


def parse(raw: Mapping[str, Any], ctx: BusContext) -> TicConfig:
    return parse_config(raw, ctx.key)


class TicBus:
    """Listens to one TIC output; implements drivers.base.Bus."""

    def __init__(self, config: TicConfig) -> None:
        self.name = config.name
        self.config = config
        self.parser = TicParser(config.mode)
        self._state = DeviceState(device=config.device, bus=config.name, address=config.port)
        self._sink: RecordSink | None = None
        self._listener = LineListener(config.line, config.silent_after_s, self._on_data, self._fail,
                                      nothing="valid frame")
        self._last_emit_at: float | None = None
        self._failing = False

    def reporter(self) -> Reporter:
        """What of the meter's samples is journalled: its `report` policies (drivers.reporting)."""
        return Reporter({self.config.device: DeviceReporter(self.config.report, self.config.report_default)})

    def states(self) -> list[DeviceState]:
        s = self._state
        return [dataclasses.replace(s, errors=dict(s.errors), last_values=dict(s.last_values))]

    async def run(self, sink: RecordSink) -> None:
        """Listen until cancelled; reopen the port with backoff when it fails or goes away."""
        self._sink = sink
        try:
            await self._listener.listen()
        finally:
            self._sink = None

    def _on_data(self, data: bytes) -> None:
        p = self.parser
        before = (p.checksum_errors, p.format_errors, p.aborted_frames)
        frames = p.feed(data)
        errors = self._state.errors
        for name, old, new in zip(
            ("tic_checksum_errors", "tic_format_errors", "tic_aborted_frames"),
            before,
            (p.checksum_errors, p.format_errors, p.aborted_frames),
            strict=True,
        ):
            if new != old:
                errors[name] = errors.get(name, 0) + new - old
        for frame in frames:
            self._on_frame(frame)

    def _on_frame(self, frame: Frame) -> None:
        reading = interpret(frame)
        if reading.problems:
            self._state.errors["tic_invalid_values"] = self._state.errors.get("tic_invalid_values", 0) + len(
                reading.problems
            )
            self._state.last_error = reading.problems[-1]
        if not reading.values:
            return
        now = time.monotonic()
        self._listener.heard()
        ts = now_ms()
        sample = Sample(self.config.device, ts, dict(reading.values))
        st = self._state
        st.last_ts_ms, st.last_values, st.consecutive_failures = ts, sample.values, 0
        st.state = "ok"
        if self._failing:
            self._failing = False
            self._emit(
                Event(
                    self.config.device,
                    ts,
                    "communication_restored",
                    Severity.INFO,
                    {"port": self.config.port},
                )
            )
        self._listener.deliver(sample)
        if self._last_emit_at is None or now - self._last_emit_at >= self.config.sample_interval_s:
            self._last_emit_at = now
            self._emit(sample)

    def _fail(self, reason: str) -> None:
        st = self._state
        st.consecutive_failures += 1
        st.last_error = reason
        st.errors["communication"] = st.errors.get("communication", 0) + 1
        if not self._failing:
            self._failing = True
            st.state = "failing"
            log.warning("TIC bus %r (%s): %s", self.name, self.config.port, reason)
            self._emit(
                Event(
                    self.config.device,
                    now_ms(),
                    "communication_failure",
                    Severity.MAJOR,
                    {"port": self.config.port, "reason": reason},
                )
            )

    def _emit(self, record: Sample | Event) -> None:
        if self._sink is not None:
            self._sink(record)

    async def read(self, device: str) -> Sample:
        """The next complete frame's values (waits up to silent_after_s)."""
        if device != self.config.device:
            raise DeviceError(device, f"not on TIC bus {self.name!r} (its meter is {self.config.device!r})")
        sample: Sample = await self._listener.next(device)
        return sample

    async def aclose(self) -> None:
        await self._listener.aclose()


#: The `tic` entry point (pyproject.toml).
DRIVER = Driver(parse=parse, build=TicBus)
