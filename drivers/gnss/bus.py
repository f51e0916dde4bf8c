"""The gnss bus: a vehicle's GNSS receiver on a serial port (NMEA 0183, listened to) and, optionally, the
digital inputs of a Modbus TCP I/O module (ignition; bin-lift or compactor cycles).

The codec (`nmea.py`) and the judging, thinning and trips (`track.py`, `trips.py`) are pure; this
module is the asyncio shell around them: it opens the port (pyserial-asyncio-fast, through
drivers.serial_line), reopens it with backoff, reports silence, polls the I/O module through
drivers.modbus.link, and turns what they decide into samples and events. See README.md for the
config keys, the quantities and the events.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from citygate_wire.common import now_ms
from drivers.base import DeviceState
from drivers.errors import DeviceError
from drivers.gnss.clock import GnssClock, register, unregister
from drivers.gnss.config import GnssConfig, IoConfig, parse
from drivers.gnss.nmea import ChecksumError, NmeaError, NmeaStream
from drivers.gnss.track import Epochs, Fix, Judge, Judged, Thinning
from drivers.gnss.trips import TripEvent, Trips
from drivers.model import Event, Record, RecordSink, Sample, Severity
from drivers.registry import Driver
from drivers.serial_line import LineListener

if TYPE_CHECKING:
    from drivers.modbus.link import ModbusLink  # imported where an I/O module is wired: pymodbus only then

log = logging.getLogger("citygate.gnss")



def position_values(j: Judged, in_trip: bool) -> dict[str, Any]:
    f = j.fix
    assert f.lat is not None and f.lon is not None
    return {
        "latitude_deg": round(f.lat, 7), "longitude_deg": round(f.lon, 7),
        "speed_kmh": None if f.speed_kmh is None else round(f.speed_kmh, 2),
        "heading_deg": None if f.course_deg is None else round(f.course_deg, 1),
        "altitude_m": f.altitude_m, "hdop": f.hdop, "satellites": f.satellites,
        "fix_quality": j.status, "in_trip": in_trip,
    }


class GnssBus:
    """Listens to one receiver; implements drivers.base.Bus."""

    def __init__(self, config: GnssConfig) -> None:
        self.name = config.name
        self.config = config
        c = config
        self.stream = NmeaStream()
        self.epochs = Epochs()
        self.judge = Judge(max_hdop=c.max_hdop, min_satellites=c.min_satellites, max_speed_kmh=c.max_speed_kmh)
        self.thinning = Thinning(heading_deg=c.thin_heading_deg, speed_kmh=c.thin_speed_kmh,
                                 max_interval_s=c.thin_interval_s, max_distance_m=c.thin_distance_m,
                                 moving_kmh=c.trip_start_kmh)
        self.trips = Trips(start_kmh=c.trip_start_kmh, start_after_s=c.trip_start_after_s,
                           stop_after_s=c.trip_stop_after_s, idle_kmh=c.idle_kmh,
                           ignition_wired=c.io is not None and c.io.ignition_bit is not None)
        self.clock = GnssClock(c.clock_holdover_s)
        self._state = DeviceState(device=c.device, bus=c.name, address=c.port)
        self._io_state = DeviceState(device=f"{c.device}-io", bus=c.name,
                                     address=f"{c.io.host}:{c.io.port}" if c.io else "")
        self._sink: RecordSink | None = None
        self._listener = LineListener(config.line, config.silent_after_s, self._on_data, self._fail,
                                      nothing="valid NMEA sentence")
        self._flags: set[str] = set()  # open faults: communication, no_fix, low_quality, checksum, outlier, clock
        self._runs = {"no_fix": 0, "low_quality": 0, "good": 0, "clean": 0, "outliers": 0}
        self._checksum_burst = 0
        self._inputs: int | None = None
        self._cycle_start: tuple[int, tuple[float, float] | None] | None = None

    # -- Bus ------------------------------------------------------------------------------------

    def states(self) -> list[DeviceState]:
        out = [self._state] + ([self._io_state] if self.config.io else [])
        return [dataclasses.replace(s, errors=dict(s.errors), last_values=dict(s.last_values)) for s in out]

    async def run(self, sink: RecordSink) -> None:
        """Listen until cancelled; reopen the port with backoff when it fails or goes away."""
        self._sink = sink
        register(self.clock)
        io_task = asyncio.create_task(self._poll_io(self.config.io)) if self.config.io else None
        try:
            await self._listener.listen()
        finally:
            if io_task is not None:
                io_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await io_task
            unregister(self.clock)
            self._sink = None

    async def read(self, device: str) -> Sample:
        """The next accepted fix (waits up to silent_after_s)."""
        if device != self.config.device:
            raise DeviceError(device, f"not on gnss bus {self.name!r} (its receiver is {self.config.device!r})")
        sample: Sample = await self._listener.next(device)
        return sample

    async def aclose(self) -> None:
        await self._listener.aclose()

    # -- the receiver ---------------------------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        for item in self.stream.feed(data):
            if isinstance(item, NmeaError):
                self._count(item.kind)
                if isinstance(item, ChecksumError):
                    self._checksum_error(item)
                elif item.kind != "nmea_ignored":
                    self._state.last_error = str(item)
                continue
            self._listener.heard()
            if "communication" in self._flags:
                self._clear("communication", "communication_restored", now_ms(), {"port": self.config.port})
            fix = self.epochs.feed(item)
            if fix is not None:
                self._on_fix(fix)

    def _count(self, kind: str) -> None:
        errors = self._state.errors
        errors[kind] = errors.get(kind, 0) + 1

    def _checksum_error(self, exc: NmeaError) -> None:
        self._checksum_burst += 1
        self._runs["clean"] = 0
        self._state.last_error = str(exc)
        if "checksum" not in self._flags:
            self._raise("checksum", "nmea_checksum_errors", self._now(), Severity.MINOR,
                        {"port": self.config.port, "line": exc.line[:100].decode("ascii", "replace")})

    def _now(self) -> int:
        return self.clock.now_ms() or now_ms()

    def _on_fix(self, fix: Fix) -> None:
        ts = fix.ts_ms if fix.ts_ms is not None else self._now()
        self._epoch_checks(ts)
        if fix.valid and fix.ts_ms is not None and self.clock.update(fix.ts_ms):
            self._check_offset(ts)
        j = self.judge.judge(fix)
        self._quality(j, ts)
        if not j.accepted:
            return
        assert fix.ts_ms is not None
        trip_events = self.trips.on_fix(j)
        for ev_ts, code, detail in trip_events:
            self._emit(Event(self.config.device, ev_ts, code, Severity.INFO, detail))
        sample = Sample(self.config.device, fix.ts_ms, position_values(j, self.trips.current is not None))
        st = self._state
        st.state, st.last_ts_ms, st.last_values, st.consecutive_failures = "ok", fix.ts_ms, sample.values, 0
        self._listener.deliver(sample)
        if self.thinning.keep(j, force=bool(trip_events)):
            self._emit(sample)

    def _epoch_checks(self, ts: int) -> None:
        """Once an epoch: a burst of checksum errors ends after debounce_epochs clean epochs."""
        if self._checksum_burst:
            self._runs["clean"] += 1
            if self._runs["clean"] >= self.config.debounce_epochs:
                self._clear("checksum", "nmea_checksum_cleared", ts, {"errors": self._checksum_burst})
                self._checksum_burst = 0

    def _check_offset(self, ts: int) -> None:
        limit = self.config.clock_offset_alarm_s
        offset = self.clock.offset_ms()
        if not limit or offset is None:
            return
        if abs(offset) > limit * 1000 and "clock" not in self._flags:
            self._raise("clock", "system_clock_offset", ts, Severity.MINOR,
                        {"offset_ms": offset, "source": "gnss"})
        elif abs(offset) <= limit * 500 and "clock" in self._flags:
            self._clear("clock", "system_clock_offset_cleared", ts, {"offset_ms": offset})

    def _quality(self, j: Judged, ts: int) -> None:
        runs, n = self._runs, self.config.debounce_epochs
        if j.status == "outlier":
            runs["outliers"] += 1
            self._count("gnss_outliers")
            if "outlier" not in self._flags:
                self._raise("outlier", "position_outlier", ts, Severity.MINOR,
                            {"jump_m": round(j.step_m, 1), "implied_kmh": round(j.implied_kmh or 0.0, 1),
                             "max_speed_kmh": self.config.max_speed_kmh})
            return
        if j.status == "no_fix":
            runs["no_fix"] += 1
            runs["good"] = 0
            if runs["no_fix"] >= n and "no_fix" not in self._flags:
                self._raise("no_fix", "gnss_no_fix", ts, Severity.MINOR,
                            {"epochs": runs["no_fix"], "time_known": j.fix.ts_ms is not None})
            return
        runs["no_fix"] = 0
        if "no_fix" in self._flags:
            self._clear("no_fix", "gnss_fix_restored", ts, {"satellites": j.fix.satellites, "hdop": j.fix.hdop})
        if "outlier" in self._flags:
            self._clear("outlier", "position_outlier_cleared", ts, {"refused": runs["outliers"]})
            runs["outliers"] = 0
        low = j.status == "low_quality"
        runs["low_quality"] = runs["low_quality"] + 1 if low else 0
        runs["good"] = 0 if low else runs["good"] + 1
        if runs["low_quality"] >= n and "low_quality" not in self._flags:
            self._raise("low_quality", "gnss_low_quality", ts, Severity.MINOR,
                        {"hdop": j.fix.hdop, "satellites": j.fix.satellites, "max_hdop": self.config.max_hdop,
                         "min_satellites": self.config.min_satellites})
        elif runs["good"] >= n and "low_quality" in self._flags:
            self._clear("low_quality", "gnss_quality_restored", ts, {"hdop": j.fix.hdop,
                                                                     "satellites": j.fix.satellites})

    # -- the I/O module ---------------------------------------------------------------------------

    async def _poll_io(self, io: IoConfig) -> None:
        from drivers.modbus.link import LinkError, tcp_link  # pymodbus only where an I/O module is wired

        link = tcp_link(io.host, io.port, timeout_s=io.timeout_s, reconnect_s=(io.poll_s, 30.0))
        st = self._io_state
        try:
            while True:
                try:
                    word = await _read_inputs(link, io)
                except LinkError as exc:
                    st.errors[exc.kind] = st.errors.get(exc.kind, 0) + 1
                    st.consecutive_failures += 1
                    st.last_error = str(exc)
                    if "io" not in self._flags:
                        st.state = "failing"
                        self._raise("io", "communication_failure", self._now(), Severity.MAJOR,
                                    {"io": st.address, "reason": str(exc)}, device=st.device)
                else:
                    if "io" in self._flags:
                        self._clear("io", "communication_restored", self._now(), {"io": st.address}, device=st.device)
                    st.state, st.consecutive_failures, st.last_ts_ms = "ok", 0, self._now()
                    self._on_inputs(io, word)
                await asyncio.sleep(io.poll_s)
        finally:
            await link.aclose()

    def _on_inputs(self, io: IoConfig, word: int) -> None:
        before, self._inputs = self._inputs, word
        ts = self._now()
        values: dict[str, Any] = {}

        def edge(bit: int | None) -> tuple[bool | None, bool]:
            if bit is None:
                return None, False
            now = bool(word >> bit & 1)
            return now, before is None or bool(before >> bit & 1) != now

        ignition, ign_changed = edge(io.ignition_bit)
        cycle, cycle_changed = edge(io.cycle_bit)
        if ignition is not None:
            values["ignition"] = ignition
            if ign_changed:
                self._trip_events(self.trips.on_ignition(ignition, ts))
        if cycle is not None:
            values[io.cycle_kind] = cycle
            if cycle_changed:
                self._cycle_edge(io, cycle, ts)
        self._io_state.last_values = values

    def _trip_events(self, events: list[TripEvent]) -> None:
        for ts, code, detail in events:
            self._emit(Event(self.config.device, ts, code, Severity.INFO, detail))

    def _cycle_edge(self, io: IoConfig, up: bool, ts: int) -> None:
        """A cycle is the input's rising edge to its falling edge; it is reported where it began."""
        if up:
            last = self.judge.last
            pos = (last.lat, last.lon) if last is not None and last.lat is not None and last.lon is not None else None
            self._cycle_start = (ts, pos)
            return
        if self._cycle_start is None:
            return  # down at the first read: no cycle seen from its start
        started, pos = self._cycle_start
        self._cycle_start = None
        detail: dict[str, Any] = {"started_ms": started, "duration_s": round((ts - started) / 1000, 1),
                                  "trip": self.trips.cycle()}
        if pos is not None:
            detail |= {"lat": round(pos[0], 6), "lon": round(pos[1], 6)}
        self._emit(Event(self.config.device, started, io.cycle_kind, Severity.INFO, detail))

    # -- events ---------------------------------------------------------------------------------

    def _raise(self, flag: str, code: str, ts: int, severity: Severity, detail: dict[str, Any],
               device: str | None = None) -> None:
        self._flags.add(flag)
        log.warning("gnss bus %r: %s %s", self.name, code, detail)
        self._emit(Event(device or self.config.device, ts, code, severity, detail))

    def _clear(self, flag: str, code: str, ts: int, detail: dict[str, Any], device: str | None = None) -> None:
        self._flags.discard(flag)
        self._emit(Event(device or self.config.device, ts, code, Severity.INFO, detail))

    def _fail(self, reason: str) -> None:
        st = self._state
        st.consecutive_failures += 1
        st.last_error = reason
        self._count("communication")
        if "communication" not in self._flags:
            st.state = "failing"
            self._raise("communication", "communication_failure", self._now(), Severity.MAJOR,
                        {"port": self.config.port, "reason": reason})

    def _emit(self, record: Record) -> None:
        if self._sink is not None:
            self._sink(record)


async def _read_inputs(link: ModbusLink, io: IoConfig) -> int:
    """The module's inputs as one integer, bit n = input n: discrete inputs (FC2) or its status word (FC3/FC4)."""
    if io.inputs == "status_word":
        return (await link.read(io.unit, io.function, io.address, 1))[0]
    bits = await link.read_bits(io.unit, io.function, io.address, io.count)
    return sum(1 << n for n, on in enumerate(bits) if on)


#: The `gnss` entry point (pyproject.toml).
DRIVER = Driver(parse=parse, build=GnssBus)
