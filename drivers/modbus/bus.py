"""A Modbus line (TCP endpoint or RTU port) of lamp controllers: the one owner of its polling rhythm.

Each cycle (every `interval_s`) first polls every healthy device, one request per read block
and a single try each; a line is sequential, so a device that has not answered must not hold
it. Devices that just failed, are in backoff or are misconfigured are then tried only in the
time left before the next cycle, each bounded to `timeout_s` x the tries that fit. So a dead
controller costs its neighbours at most the one timeout in which it is first found dead.

Failures back off exponentially (interval x 2^(n-1), up to `backoff_max_s`). After
`failure_threshold` consecutive failures the bus emits `communication_failure` (major), and
`communication_restored` at the next good read. Exception 01/02/03 means the register map asks
for something the device does not have: a `config_error` event, the device is marked
misconfigured and read again only every `backoff_max_s`, never retried in a loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from citygate_wire.common import now_ms
from drivers.base import DeviceState
from drivers.errors import DeviceError
from drivers.modbus.config import BusConfig, DeviceConfig, TcpEndpoint, parse_bus_config
from drivers.modbus.link import ExceptionReply, LinkDown, LinkError, ModbusLink, rtu_link, tcp_link
from drivers.modbus.regmap import LEVEL_CMD, ReadBlock, Register
from drivers.model import Event, RecordSink, Sample, Severity, Value
from drivers.registry import Driver
from drivers.reporting import DeviceReporter, Reporter

_T = TypeVar("_T")


class _Device:
    """A device's config, read plan and poll bookkeeping."""

    __slots__ = ("blocks", "cfg", "cmd", "down_since_ms", "due", "id", "misconfigured", "reported", "state", "unit")

    def __init__(self, cfg: DeviceConfig, bus: str) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self.unit = cfg.unit
        self.blocks: tuple[ReadBlock, ...] = cfg.register_map.plan(cfg.address_offset)
        cmd = cfg.register_map.get(LEVEL_CMD)
        assert cmd is not None  # parse_bus_config refuses lamp maps without one
        self.cmd: Register = cmd
        where = f"unit {cfg.unit}" + (f" +{cfg.address_offset}" if cfg.address_offset else "")
        self.state = DeviceState(device=cfg.id, bus=bus, address=where)
        self.due = 0.0  # monotonic time of the next try while failing or misconfigured
        self.reported = False  # communication_failure emitted, restored not yet
        self.misconfigured = False
        self.down_since_ms: int | None = None

    @property
    def healthy(self) -> bool:
        return self.state.consecutive_failures == 0 and not self.misconfigured


class ModbusBus:
    """drivers.base.LampBus over Modbus. Build it with `build(parse_bus_config(raw, ctx))`."""

    def __init__(self, cfg: BusConfig, link: ModbusLink) -> None:
        self.name = cfg.name
        self._cfg = cfg
        self._link = link
        self._devices = [_Device(d, cfg.name) for d in cfg.devices]
        self._by_id = {d.id: d for d in self._devices}
        self._tries = cfg.retries + 1

    # -- what the rest of the agent reads and calls -------------------------------------------------

    def states(self) -> list[DeviceState]:
        """Live state of every device, in config order (read it, do not modify it)."""
        return [d.state for d in self._devices]

    def lamps(self) -> list[str]:
        """Device ids of the lamp controllers on this bus, in config order."""
        return [d.id for d in self._devices]

    def rated_power_w(self, device: str) -> float | None:
        """The configured rated power of a lamp (None when not configured)."""
        return self._device(device).cfg.rated_power_w

    def reporter(self) -> Reporter:
        """Report by exception for this bus's devices, from their maps and `report` tables (drivers.reporting)."""
        return Reporter({d.id: DeviceReporter(d.cfg.report) for d in self._devices})

    async def read(self, device: str) -> Sample:
        """One live read with the configured retries; DeviceError if it fails."""
        dev = self._device(device)
        outcome = await self._attempt(dev, self._tries)
        if isinstance(outcome, LinkError):
            raise DeviceError(device, str(outcome))
        dev.state.last_ts_ms, dev.state.last_values = outcome.ts_ms, outcome.values
        return outcome

    async def set_level(self, device: str, level_pct: int) -> int:
        """Write the commanded level, read it back, return the level read back (whole percent).

        On a DALI map the level goes through the arc-level curve, so the read-back can differ
        from the command by the curve's rounding (99 % is arc 254, read back as 100 %).
        DeviceError if the device does not answer or does not keep the value written.
        """
        dev = self._device(device)
        if isinstance(level_pct, bool) or not isinstance(level_pct, int) or not 0 <= level_pct <= 100:
            raise ValueError(f"level must be an integer 0..100, got {level_pct!r}")
        reg = dev.cmd
        address = reg.address + dev.cfg.address_offset
        words = reg.encode(level_pct)
        try:
            await self._retrying(lambda: self._link.write(dev.unit, address, words))
            back = await self._retrying(lambda: self._link.read(dev.unit, reg.function, address, reg.words))
        except LinkError as exc:
            raise DeviceError(device, f"setting level {level_pct} %: {exc}") from None
        value = reg.decode(back, 0)
        if list(back) != words or not isinstance(value, int | float):
            raise DeviceError(
                device, f"wrote level {level_pct} % (register {address} = {words}), read back {list(back)} ({value} %)"
            )
        level = round(value)
        dev.state.last_values = {**dev.state.last_values, LEVEL_CMD: value}
        return level

    async def aclose(self) -> None:
        await self._link.aclose()

    # -- the poller -----------------------------------------------------------------------------------

    async def run(self, sink: RecordSink) -> None:
        """Poll until cancelled. Device faults become events and states, never exceptions."""
        interval = self._cfg.interval_s
        start = time.monotonic()
        while True:
            deadline = start + interval
            await self._cycle(sink, deadline)
            now = time.monotonic()
            # An overrun cycle is followed at once, without trying to catch up the lost ones.
            start = deadline if deadline > now else now
            await asyncio.sleep(max(0.0, start - now))

    async def _cycle(self, sink: RecordSink, deadline: float) -> None:
        # (device, tries it may still have, error of its first try this cycle if it had one)
        backlog: list[tuple[_Device, int, LinkError | None]] = []
        for dev in self._devices:
            if dev.misconfigured or dev.state.consecutive_failures:  # not healthy (the property, inlined: every poll)
                continue
            outcome = await self._attempt(dev, 1)
            if isinstance(outcome, Sample):
                self._succeeded(dev, outcome, sink)
            elif self._tries > 1 and _retryable(outcome):
                backlog.append((dev, self._tries - 1, outcome))
            else:
                self._failed(dev, outcome, sink)
        now = time.monotonic()
        # Those just retried are still marked healthy, so they are not among the waiting.
        waiting = sorted((d for d in self._devices if not d.healthy and d.due <= now), key=lambda d: d.due)
        backlog += [(d, self._tries, None) for d in waiting]
        timeout = self._cfg.timeout_s
        for dev, tries, first_error in backlog:
            fit = int((deadline - time.monotonic()) / timeout)
            if fit < 1:
                if first_error is not None:
                    self._failed(dev, first_error, sink)  # it had its try; no time for another
                    continue
                if time.monotonic() - dev.due < self._cfg.backoff_max_s:
                    continue  # stays due: first in line next cycle
                # A line too busy to ever leave room still probes each failing device once per
                # backoff_max_s, or it would never be seen to come back.
                fit = 1
            outcome = await self._attempt(dev, min(tries, fit))
            if isinstance(outcome, Sample):
                self._succeeded(dev, outcome, sink)
            else:
                self._failed(dev, outcome, sink)

    async def _attempt(self, dev: _Device, tries: int) -> Sample | LinkError:
        """Read every block of a device; the first block that fails after `tries` ends the attempt."""
        values: dict[str, Value] | None = None
        unit = dev.unit
        link = self._link
        for block in dev.blocks:
            for n in range(tries):
                try:
                    words = await link.read(unit, block.function, block.address, block.count)
                    break
                except LinkError as exc:
                    if n + 1 == tries or not _retryable(exc):
                        dev.state.last_error = str(exc)
                        return exc
            if values is None:
                values = block.decode(words)  # most maps are one block: one dict, built at once
            else:
                block.decode_into(words, values)
        return Sample(dev.id, now_ms(), values or {})

    async def _retrying(self, op: Callable[[], Awaitable[_T]]) -> _T:
        for n in range(self._tries):
            try:
                return await op()
            except LinkError as exc:
                if n + 1 == self._tries or not _retryable(exc):
                    raise
        raise AssertionError("unreachable: the last try returns or raises")

    def _succeeded(self, dev: _Device, sample: Sample, sink: RecordSink) -> None:
        st = dev.state
        if st.state == "ok" and st.last_error is None and not dev.reported:  # all well last time too: most polls
            st.last_ts_ms, st.last_values = sample.ts_ms, sample.values
            sink(sample)
            return
        if dev.reported:
            down_s = (sample.ts_ms - (dev.down_since_ms or sample.ts_ms)) / 1000
            sink(Event(dev.id, sample.ts_ms, "communication_restored", Severity.INFO,
                       {"failures": st.consecutive_failures, "down_s": round(down_s, 3)}))
        if dev.misconfigured:
            sink(Event(dev.id, sample.ts_ms, "config_error_cleared", Severity.INFO, {"unit": dev.unit}))
        dev.reported = dev.misconfigured = False
        dev.down_since_ms = None
        st.state = "ok"
        st.consecutive_failures = 0
        st.last_error = None
        st.last_ts_ms = sample.ts_ms
        st.last_values = sample.values
        sink(sample)

    def _failed(self, dev: _Device, err: LinkError, sink: RecordSink) -> None:
        st = dev.state
        ts = now_ms()
        st.errors[err.kind] = st.errors.get(err.kind, 0) + 1
        st.last_error = str(err)
        if isinstance(err, ExceptionReply) and err.is_config_error:
            if dev.reported:
                # It answered, so the line works: what is wrong is the map, not the communication.
                sink(Event(dev.id, ts, "communication_restored", Severity.INFO, {"failures": st.consecutive_failures}))
                dev.reported = False
            st.consecutive_failures = 0
            dev.due = time.monotonic() + self._cfg.backoff_max_s
            if not dev.misconfigured:
                dev.misconfigured = True
                st.state = "misconfigured"
                sink(Event(dev.id, ts, "config_error", Severity.MAJOR, self._config_detail(dev, err)))
            return
        st.consecutive_failures += 1
        n = st.consecutive_failures
        if n == 1:
            dev.down_since_ms = ts
        st.state = "failing"
        dev.due = time.monotonic() + min(self._cfg.interval_s * 2 ** min(n - 1, 30), self._cfg.backoff_max_s)
        if n == self._cfg.failure_threshold:
            dev.reported = True
            sink(Event(dev.id, ts, "communication_failure", Severity.MAJOR,
                       {"failures": n, "error": str(err), "kind": err.kind, "unit": dev.unit}))

    def _config_detail(self, dev: _Device, err: ExceptionReply) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "error": str(err),
            "exception_code": err.code,
            "unit": dev.unit,
            "function": err.function,
            "address": err.address,
            "count": err.count,
            "register_map": str(dev.cfg.register_map.path),
        }
        block = next((b for b in dev.blocks if (b.function, b.address) == (err.function, err.address)), None)
        if block is not None:
            detail["registers"] = [r.name for r, _ in block.registers]
        return detail

    def _device(self, device: str) -> _Device:
        try:
            return self._by_id[device]
        except KeyError:
            raise DeviceError(device, f"no such device on bus {self.name!r}") from None


def _retryable(err: LinkError) -> bool:
    """Timeouts, garbled replies and busy/failure exceptions may pass; a down link or a config error will not."""
    if isinstance(err, LinkDown):
        return False
    return not (isinstance(err, ExceptionReply) and err.is_config_error)


def build(cfg: BusConfig) -> ModbusBus:
    """The bus of a parsed modbus-tcp or modbus-rtu table; it connects at its first poll."""
    reconnect = (cfg.interval_s, cfg.backoff_max_s)
    t = cfg.transport
    if isinstance(t, TcpEndpoint):
        link = tcp_link(t.host, t.port, timeout_s=cfg.timeout_s, reconnect_s=reconnect)
    else:
        link = rtu_link(
            t.port,
            baudrate=t.baudrate,
            parity=t.parity,
            stopbits=t.stopbits,
            bytesize=t.bytesize,
            timeout_s=cfg.timeout_s,
            reconnect_s=reconnect,
        )
    return ModbusBus(cfg, link)


#: The `modbus-tcp` and `modbus-rtu` entry points (pyproject.toml).
DRIVER = Driver(parse=parse_bus_config, build=build)
