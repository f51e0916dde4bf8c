"""The M-Bus bus: a master on a serial port (through a level converter) reading meters in turn.

drivers/mbus/README.md says it all for an operator: config keys, quantities, what is decoded or refused.

Config (one ``[[bus]]`` table of the agent's TOML; unknown keys are refused)::

    [[bus]]
    name = "mbus0"
    type = "mbus"
    port = "/dev/ttyUSB1"
    baudrate = 2400            # 8E1 by default; a pty refuses even parity, so tests use parity = "N"
    parity = "E"
    bytesize = 8
    stopbits = 1
    timeout_s = 0.5            # reply timeout (a slave answers within 330 bit times + 50 ms)
    retries = 2                # repeats of a request (same FCB) after a timeout or a bad frame
    interval_s = 900           # one read of every meter per interval
    max_telegrams = 8          # multi-telegram reads (DIF 0x1F) stop here
    [[bus.device]]
    id = "water-cab-12"
    primary = 1                # primary address 1-250 ...
    [[bus.device]]
    id = "water-cab-13"
    secondary = "00182007"     # ... or the 8-digit identification number (secondary addressing)

Leaks are judged by the gateway's analytics ([analytics.water]) from volume_m3 over nights, not
by the driver, so no leak setting lives here.

Each read: primary: SND_NKE (E5 expected), then REQ_UD2, FCB toggled on each new request and
kept on a repeat, again while the meter flags more records (DIF 0x1F). Secondary: select with
SND_UD CI 0x52 on address 253 (E5 expected), then REQ_UD2 to 253; the header's id must match.

Samples: meter_id, manufacturer, medium, meter_status, and from the instantaneous records
(storage 0, tariff 0, sub-unit 0): volume_m3, flow_m3h, energy_wh, power_w, flow_temperature_c,
return_temperature_c, external_temperature_c, temperature_difference_k, pressure_bar, mass_kg,
on_time_s, operating_time_s, voltage_v, current_a, humidity_pct, error_flags, meter_time, fabrication_no.

Events: communication_failure (major, after the retries of one read) / communication_restored
(info). Counters in DeviceState.errors: timeout, frame (bad checksum or framing), decode,
unknown_vif (records whose VIF the tables do not know), communication.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from citygate_wire.common import now_ms
from drivers.base import BusContext, DeviceState
from drivers.conf import ConfigTable
from drivers.errors import ConfigError, DeviceError
from drivers.mbus.frame import (
    ADDRESS_SECONDARY,
    C_REQ_UD2,
    C_SND_NKE,
    C_SND_UD,
    CI_SELECT,
    FCB,
    MAX_PRIMARY,
    Ack,
    LongFrame,
    MbusDecodeError,
    Telegram,
    TelegramReader,
    encode_long,
    encode_short,
    is_response,
)
from drivers.mbus.records import ApplicationError, FixedData, Response, VariableData, decode_application_data
from drivers.mbus.values import meter_values
from drivers.model import Event, RecordSink, Sample, Severity
from drivers.registry import Driver
from drivers.serial_line import LineSettings, SerialLine, SerialLineError, open_line, parse_line

log = logging.getLogger("citygate.mbus")

RETRY_FIRST_S = 1.0
RETRY_MAX_S = 60.0


@dataclass(frozen=True, slots=True)
class MbusDevice:
    id: str
    primary: int | None = None
    secondary: str | None = None  # 8 digits, as printed on the meter

    @property
    def address(self) -> str:
        return f"primary:{self.primary}" if self.primary is not None else f"secondary:{self.secondary}"


@dataclass(frozen=True, slots=True)
class MbusConfig:
    name: str
    line: LineSettings
    devices: tuple[MbusDevice, ...]
    timeout_s: float = 0.5
    retries: int = 2
    interval_s: float = 900.0
    max_telegrams: int = 8


def parse_config(raw: Mapping[str, Any], key: str) -> MbusConfig:
    t = ConfigTable(dict(raw), key)
    name = t.text("name", required=True)
    t.text("type")
    line = parse_line(t, baudrate=2400, bytesize=8, rates=range(300, 38401))
    t.used.add("device")
    raw_devices = raw.get("device")
    if not isinstance(raw_devices, list) or not raw_devices:
        raise ConfigError(f"{key}.device", "expected at least one [[bus.device]] table")
    devices = tuple(_device(d, f"{key}.device[{i}]") for i, d in enumerate(raw_devices))
    seen: set[str] = set()
    for i, d in enumerate(devices):
        for what in (d.id, d.address):
            if what in seen:
                raise ConfigError(f"{key}.device[{i}]", f"{what!r} is already used by another device")
            seen.add(what)
    cfg = MbusConfig(
        name=name,
        line=line,
        devices=devices,
        timeout_s=t.number("timeout_s", 0.5, lo=0.05, hi=60.0),
        retries=t.integer("retries", 2, lo=0, hi=10),
        interval_s=t.number("interval_s", 900.0, lo=0.0, hi=86400.0),
        max_telegrams=t.integer("max_telegrams", 8, lo=1, hi=64),
    )
    t.done()
    return cfg


def _device(raw: Any, key: str) -> MbusDevice:
    t = ConfigTable(raw, key)
    dev_id = t.text("id", required=True)
    if not dev_id:
        raise ConfigError(f"{key}.id", "must not be empty")
    has_primary = "primary" in t.raw
    primary = t.integer("primary", 0, lo=1, hi=MAX_PRIMARY) if has_primary else None
    secondary = t.text("secondary")
    t.done()
    if (primary is None) == (secondary is None):
        raise ConfigError(key, "give exactly one of primary (1-250) and secondary (8 digits)")
    if secondary is not None and (len(secondary) != 8 or not secondary.isdigit() or not secondary.isascii()):
        raise ConfigError(f"{key}.secondary", f"{secondary!r}: expected the 8-digit identification number")
    return MbusDevice(dev_id, primary, secondary)


def parse(raw: Mapping[str, Any], ctx: BusContext) -> MbusConfig:
    return parse_config(raw, ctx.key)


def select_frame(secondary: str) -> bytes:
    """SND_UD CI 0x52 to address 253: id (BCD, LSB first), manufacturer, version and medium as wildcards."""
    data = bytes.fromhex(secondary)[::-1] + b"\xff\xff\xff\xff"
    return encode_long(C_SND_UD, ADDRESS_SECONDARY, CI_SELECT, data)


class MbusMaster:
    """Request/response on one line: retries, reply timeout, FCB per address. Feed it every received byte."""

    def __init__(self, timeout_s: float, retries: int) -> None:
        self.timeout_s = timeout_s
        self.retries = retries
        self.reader = TelegramReader()
        self.timeouts = 0
        self._replies: asyncio.Queue[Telegram] = asyncio.Queue()
        self._fcb: dict[int, bool] = {}
        self._write: SerialLine | None = None

    def attach(self, line: SerialLine | None) -> None:
        self._write = line

    def feed(self, data: bytes) -> None:
        for t in self.reader.feed(data):
            self._replies.put_nowait(t)

    async def _transact(self, request: bytes, want: type[Ack] | type[LongFrame], what: str) -> Telegram:
        if self._write is None:
            raise DeviceError(what, "port is not open")
        last = "no reply"
        for _ in range(self.retries + 1):
            while not self._replies.empty():  # a late answer to an earlier request is not this one's
                self._replies.get_nowait()
            self._write.write(request)
            try:
                async with asyncio.timeout(self.timeout_s):
                    reply = await self._replies.get()
            except TimeoutError:
                self.timeouts += 1
                last = f"no reply within {self.timeout_s:g} s"
                continue
            if isinstance(reply, want):
                return reply
            last = f"unexpected {type(reply).__name__}"
        raise DeviceError(what, f"{last} after {self.retries + 1} attempt(s)")

    async def reset(self, address: int) -> None:
        await self._transact(encode_short(C_SND_NKE, address), Ack, f"SND_NKE to {address}")
        self._fcb[address] = False

    async def select(self, secondary: str) -> None:
        await self._transact(select_frame(secondary), Ack, f"select {secondary}")
        self._fcb[ADDRESS_SECONDARY] = False

    async def read_data(self, address: int, max_telegrams: int) -> list[Response]:
        """REQ_UD2 until the meter has no more records; the FCB toggles per new request, not per retry."""
        out: list[Response] = []
        for _ in range(max_telegrams):
            fcb = self._fcb.get(address, False)
            t = await self._transact(
                encode_short(C_REQ_UD2 | (FCB if fcb else 0), address), LongFrame, f"REQ_UD2 to {address}"
            )
            self._fcb[address] = not fcb
            assert isinstance(t, LongFrame)
            if not is_response(t.c):
                raise MbusDecodeError(f"reply C=0x{t.c:02X} is not RSP_UD")
            data = decode_application_data(t.ci, t.data)
            if isinstance(data, ApplicationError):
                raise DeviceError(f"address {address}", f"the meter reports application error 0x{data.code:02X} ({data.name})")
            if isinstance(data, VariableData) and data.empty:
                raise DeviceError(f"address {address}", "the meter answered with no data (RSP_UD without header or records)")
            out.append(Response(t.c, t.a, t.ci, data))
            if not isinstance(data, VariableData) or not data.more_records_follow:
                return out
        raise DeviceError(f"address {address}", f"still more records after {max_telegrams} telegrams")


@dataclass
class _Meter:
    cfg: MbusDevice
    state: DeviceState
    failing: bool = False


class MbusBus:
    """An M-Bus master polling its meters; implements drivers.base.Bus."""

    def __init__(self, config: MbusConfig) -> None:
        self.name = config.name
        self.config = config
        self.master = MbusMaster(config.timeout_s, config.retries)
        self._meters = {
            d.id: _Meter(d, DeviceState(device=d.id, bus=config.name, address=d.address))
            for d in config.devices
        }
        self._line: SerialLine | None = None
        self._lock = asyncio.Lock()

    def states(self) -> list[DeviceState]:
        return [
            dataclasses.replace(m.state, errors=dict(m.state.errors), last_values=dict(m.state.last_values))
            for m in self._meters.values()
        ]

    async def run(self, sink: RecordSink) -> None:
        delay = RETRY_FIRST_S
        try:
            while True:
                started = time.monotonic()
                try:
                    async with self._lock:
                        await self._open()
                except SerialLineError as exc:
                    for m in self._meters.values():
                        self._fail(m, exc.reason, sink)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_S)
                    continue
                delay = RETRY_FIRST_S
                for m in self._meters.values():
                    try:
                        sample = await self._read(m)
                    except DeviceError as exc:
                        self._fail(m, exc.reason, sink)
                        continue
                    if m.failing:
                        m.failing = False
                        sink(Event(m.cfg.id, sample.ts_ms, "communication_restored", Severity.INFO,
                                   {"address": m.cfg.address}))  # fmt: skip
                    sink(sample)
                await asyncio.sleep(max(0.0, self.config.interval_s - (time.monotonic() - started)))
        finally:
            await self.aclose()

    async def _open(self) -> None:
        if self._line is not None and not self._line.closed.done():
            return
        self._line = await open_line(self.config.line, self.master.feed)
        self.master.attach(self._line)

    async def _read(self, m: _Meter) -> Sample:
        """One complete read of one meter (the line must be open); failures come out as DeviceError."""
        st = m.state
        reader = self.master.reader
        async with self._lock:
            frame_errors, timeouts = reader.errors + reader.skipped_bytes, self.master.timeouts
            try:
                responses = await self._exchange(m.cfg)
            except DeviceError as exc:
                raise DeviceError(m.cfg.id, exc.reason) from None
            except MbusDecodeError as exc:
                st.errors["decode"] = st.errors.get("decode", 0) + 1
                raise DeviceError(m.cfg.id, f"reply does not decode: {exc}") from None
            finally:
                if (n := reader.errors + reader.skipped_bytes - frame_errors) > 0:
                    st.errors["frame"] = st.errors.get("frame", 0) + n
                if (n := self.master.timeouts - timeouts) > 0:
                    st.errors["timeout"] = st.errors.get("timeout", 0) + n
        values, unknown = meter_values(responses)
        if unknown:
            st.errors["unknown_vif"] = st.errors.get("unknown_vif", 0) + unknown
        ts = now_ms()
        st.state, st.last_ts_ms, st.last_values, st.consecutive_failures = "ok", ts, values, 0
        return Sample(m.cfg.id, ts, values)

    async def _exchange(self, d: MbusDevice) -> list[Response]:
        if d.primary is not None:
            await self.master.reset(d.primary)
            return await self.master.read_data(d.primary, self.config.max_telegrams)
        assert d.secondary is not None
        await self.master.select(d.secondary)
        responses = await self.master.read_data(ADDRESS_SECONDARY, self.config.max_telegrams)
        first = responses[0].data
        ident = first.id if isinstance(first, FixedData) else None
        if isinstance(first, VariableData) and first.header is not None:
            ident = first.header.id
        if ident is not None and ident != d.secondary:
            raise DeviceError(d.id, f"meter {ident} answered the selection of {d.secondary}")
        return responses

    def _fail(self, m: _Meter, reason: str, sink: RecordSink) -> None:
        st = m.state
        st.consecutive_failures += 1
        st.last_error = reason
        st.errors["communication"] = st.errors.get("communication", 0) + 1
        if not m.failing:
            m.failing = True
            st.state = "failing"
            log.warning("M-Bus %r %s (%s): %s", self.name, m.cfg.id, m.cfg.address, reason)
            sink(Event(m.cfg.id, now_ms(), "communication_failure", Severity.MAJOR,
                       {"address": m.cfg.address, "reason": reason}))  # fmt: skip

    async def read(self, device: str) -> Sample:
        m = self._meters.get(device)
        if m is None:
            raise DeviceError(device, f"not on M-Bus {self.name!r}")
        opened_here = False
        async with self._lock:
            if self._line is None or self._line.closed.done():
                try:
                    await self._open()
                except SerialLineError as exc:
                    raise DeviceError(device, exc.reason) from None
                opened_here = True
        try:
            return await self._read(m)
        finally:
            if opened_here:
                await self.aclose()

    async def aclose(self) -> None:
        line, self._line = self._line, None
        self.master.attach(None)
        if line is not None:
            await line.aclose()


#: The `mbus` entry point (pyproject.toml).
DRIVER = Driver(parse=parse, build=MbusBus)
