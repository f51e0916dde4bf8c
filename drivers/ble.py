"""The BLE bus: a passive bleak scan, BTHome v2 and RuuviTag RAWv2 sensors on an allow-list.

drivers/README-ble.md says it all for an operator: config keys, quantities, events, what is refused.

Config (one ``[[bus]]`` table of the agent's TOML; unknown keys are refused)::

    [[bus]]
    name = "ble0"
    type = "ble"
    backend = "os"              # the OS Bluetooth stack (BlueZ); "NAME:ARGUMENT" names a backend of the
                                # citygate.ble_backends entry points: "replay:FILE" replays a simulator
                                # scenario (simulators/ble.py), FILE relative to the config's folder
    adapter = "hci0"            # optional: BlueZ adapter (default: the system's default adapter)
    silent_after_s = 300        # sensor_silent when an allowed sensor sends no new reading this long
    min_interval_s = 60         # at most one sample per sensor per interval; a button/dimmer event
                                # or a changed on/off or text value is never held back
    [[bus.allow]]
    mac = "A4:C1:38:8D:18:B2"
    id = "bt-temp-rue-12"       # device name in samples and events
    kind = "bthome"             # or "ruuvi"
    key = "231d39c1d7cc1ab1aee224cd096db932"   # BTHome bindkey: only encrypted adverts are accepted

Samples (one per new reading; repeats of a packet id / Ruuvi sequence number are dropped):
- BTHome: every object of drivers.bthome.OBJECTS by its quantity name (temperature_c,
  humidity_pct, pressure_hpa, illuminance_lx, battery_pct, voltage_v, energy_wh, power_w,
  motion, occupancy, button ...), plus rssi_dbm, and tx_power_dbm when the advert has it.
- Ruuvi: temperature_c, humidity_pct, pressure_hpa, acceleration_{x,y,z}_g, battery_v,
  tx_power_dbm, movement_count (None where the tag says "not available"), rssi_dbm.

Encryption counters: the last accepted counter of each sensor with a bindkey is kept in
`<state_dir>/ble-<bus name>.counters.json` (written at most once a second and at stop, through a
temporary file and a rename), so an advert recorded before a restart is refused after it too.
A counter is kept with a fingerprint of its key (never the key): a re-keyed sensor starts
afresh. A sensor whose counter restarted (a battery change on some models) is refused as a
replay until a technician runs `citygate-agent ble forget-counter ID` on the gateway.

Events: sensor_silent (minor) / sensor_back (info); decode_error (minor), bthome_key_missing,
bthome_auth_failed, bthome_replay (counter did not increase), bthome_downgrade (plaintext from a
sensor that has a key) (major), at most one a minute per sensor and code;
bthome_object_error (minor, at most one a minute per sensor: an object cut short, a text not
UTF-8, a binary value not 0/1; the objects before it are kept and sampled),
bthome_unknown_object (info, once per sensor and object id; the objects before it are kept too);
both count in the sensor's `bthome_object_error` error counter; on the bus itself
ble_unavailable (major: no adapter, no D-Bus, no BlueZ; the bus keeps retrying and the agent
keeps its other buses), ble_available (info), ble_overflow (minor), ble_counters_unreadable
(major: the counters file could not be read; replays of what was sent before are not refused
until each sensor's next advert).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson
from bleak import BleakScanner
from bleak.args.bluez import BlueZScannerArgs, OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import BleakBluetoothNotAvailableError, BleakDBusError, BleakError

from citygate_wire.common import now_ms
from drivers import bthome, ruuvi
from drivers.base import BusContext, DeviceState
from drivers.conf import ConfigTable
from drivers.entry_points import entry_points
from drivers.errors import ConfigError, DecodeError, DeviceError, DriverError
from drivers.model import Event, RecordSink, Sample, Severity, Value
from drivers.registry import Driver

log = logging.getLogger("citygate.ble")

KINDS = ("bthome", "ruuvi")
COUNTERS_SAVE_S = 1.0  # the counters file is written at most this often (and at stop)
COUNTERS_VERSION = 1
QUEUE_MAX = 10_000
EVENT_INTERVAL_S = 60.0
OBJECT_ERROR = "bthome_object_error"  # counter and event of an advert decoded only up to a bad object
RETRY_FIRST_S = 5.0
RETRY_MAX_S = 60.0
# A passive listener has no polls to show it is alive: the states of silent sensors are refreshed at
# least this often (how long each has been silent), which is also what the agent's watchdog watches.
REFRESH_S = 30.0

# Passive scanning in BlueZ reports only adverts matching a pattern: BTHome service data and Ruuvi's company id.
OR_PATTERNS = [
    OrPattern(0, AdvertisementDataType.SERVICE_DATA_UUID16, bthome.UUID16_LE),
    OrPattern(0, AdvertisementDataType.MANUFACTURER_SPECIFIC_DATA, ruuvi.MANUFACTURER_ID.to_bytes(2, "little")),
]


def _start_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [BleakError, OSError]
    try:
        from dbus_fast.errors import DBusFastError
    except ImportError:  # not Linux: bleak talks to no D-Bus there
        pass
    else:
        errors.append(DBusFastError)
    return tuple(errors)


START_ERRORS = _start_errors()


class BleUnavailableError(DriverError):
    """The Bluetooth stack cannot scan (no adapter, no D-Bus, no BlueZ): one clear line, no traceback."""

    def __init__(self, bus: str, reason: str) -> None:
        super().__init__(f"BLE bus {bus!r}: Bluetooth unavailable: {reason}; other buses keep running, retrying")
        self.bus = bus
        self.reason = reason


def unavailable_reason(exc: BaseException) -> str:
    """What a person can act on, from what bleak or D-Bus raised when the scan would not start."""
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError):
        return f"no D-Bus system bus ({exc.strerror}): dbus and bluetoothd must be running"
    if isinstance(exc, BleakBluetoothNotAvailableError):
        return f"{exc.args[0]} ({exc.reason.name.lower()})"
    if isinstance(exc, BleakDBusError) and exc.dbus_error == "org.freedesktop.DBus.Error.ServiceUnknown":
        return "BlueZ (org.bluez) is not on the system bus: is bluetoothd running?"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True, slots=True)
class AllowedSensor:
    mac: str  # "AA:BB:CC:DD:EE:FF"
    id: str
    kind: str  # "bthome" | "ruuvi"
    key: bytes | None = None  # BTHome bindkey

    @property
    def mac_bytes(self) -> bytes:
        return bthome.parse_mac(self.mac)


@dataclass(frozen=True, slots=True)
class BleConfig:
    name: str
    sensors: tuple[AllowedSensor, ...]
    adapter: str | None = None
    silent_after_s: float = 300.0
    min_interval_s: float = 60.0
    retry_s: float = RETRY_FIRST_S  # first wait before trying the adapter again; doubles up to RETRY_MAX_S
    start_timeout_s: float = 30.0  # a wedged D-Bus or bluetoothd never answers: give up and report it


@dataclass
class _Sensor:
    """What the bus keeps about one allowed sensor."""

    cfg: AllowedSensor
    mac_bytes: bytes
    state: DeviceState
    last_seen: float | None = None  # monotonic time of the last new reading
    silent: bool = False
    last_dedupe: object = None  # BTHome packet id / Ruuvi sequence (or payload) of the last reading
    last_counter: int | None = None
    last_payload: bytes | None = None
    last_sample: Sample | None = None
    last_emit: float | None = None
    last_emitted: Mapping[str, Value] = field(default_factory=dict)
    event_at: dict[str, float] = field(default_factory=dict)  # code -> monotonic time of the last event
    suppressed: dict[str, int] = field(default_factory=dict)  # code -> problems since that event
    unknown_reported: set[int] = field(default_factory=set)


_Item = tuple[BLEDevice, AdvertisementData, int, float]


class BleBus:
    """Passive BLE scan on one adapter; implements drivers.base.Bus."""

    def __init__(
        self,
        config: BleConfig,
        *,
        backend: type[BaseBleakScanner] | None = None,
        backend_kwargs: Mapping[str, Any] | None = None,
        counters_path: Path | None = None,
    ) -> None:
        self.name = config.name
        self.config = config
        self._backend = backend
        self._backend_kwargs = dict(backend_kwargs or {})
        self._sensors = [
            _Sensor(s, s.mac_bytes, DeviceState(device=s.id, bus=config.name, address=s.mac)) for s in config.sensors
        ]
        self._by_mac = {s.cfg.mac: s for s in self._sensors}
        self._by_id = {s.cfg.id: s for s in self._sensors}
        self._queue: asyncio.Queue[_Item] | None = None
        self._scanner: BleakScanner | None = None
        self._unavailable: BleUnavailableError | None = None
        self._started = time.monotonic()
        self._overflow = 0
        self._overflow_event_at: float | None = None
        self.ignored = 0  # adverts from devices not on the allow-list
        self._counters_path = counters_path
        self._counters_dirty = False
        self._counters_saved_at = 0.0
        self._counters_loaded = False  # read when first needed (run, forget_counter): building a bus opens nothing
        self._counters_error: str | None = None  # why they could not be read, reported when the bus runs

    # --- Bus interface -----------------------------------------------------------------------------

    def states(self) -> list[DeviceState]:
        return [dataclasses.replace(s.state, errors=dict(s.state.errors)) for s in self._sensors]

    async def read(self, device: str) -> Sample:
        """The sensor's last reading: a BLE sensor cannot be polled, only heard."""
        s = self._by_id.get(device)
        if s is None:
            raise DeviceError(device, f"not on BLE bus {self.name!r}")
        if s.last_sample is None:
            why = f" ({self._unavailable.reason})" if self._unavailable else ""
            raise DeviceError(device, f"no advertisement received yet{why}")
        return s.last_sample

    async def run(self, sink: RecordSink) -> None:
        """Scan until cancelled. A missing adapter or D-Bus is an event and a retry, never a crash."""
        queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=QUEUE_MAX)
        self._queue = queue
        self._ensure_counters()
        if self._counters_error is not None:
            path, reason = self._counters_path, self._counters_error
            log.error("BLE bus %r: cannot read %s (%s): replays are refused again from each sensor's next advert",
                      self.name, path, reason)
            sink(Event(self.name, now_ms(), "ble_counters_unreadable", Severity.MAJOR, {"file": str(path), "reason": reason}))
            self._counters_error = None
        await self._start_scanner(sink)
        self._started = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                deadline = self._check_silence(now, sink)
                wait = REFRESH_S if deadline is None else min(REFRESH_S, deadline - now)
                if self._counters_dirty:
                    wait = min(wait, self._counters_saved_at + COUNTERS_SAVE_S - now)
                    if wait <= 0:
                        await asyncio.to_thread(self._save_counters)
                        continue
                try:
                    async with asyncio.timeout(max(0.0, wait)):
                        item = await queue.get()
                except TimeoutError:
                    continue
                self._handle(*item, sink)
                while not queue.empty():
                    self._handle(*queue.get_nowait(), sink)
                if self._overflow:
                    self._report_overflow(sink)
        finally:
            await self._stop_scanner()
            self._queue = None
            if self._counters_dirty:
                self._save_counters()

    # --- encryption counters, across restarts --------------------------------------------------------

    def forget_counter(self, device: str) -> int | None:
        """Accept whatever counter sensor `device` sends next (after a battery change restarted it);
        the counter it had. DeviceError if `device` is no sensor of this bus with a bindkey."""
        s = self._by_id.get(device)
        if s is None:
            raise DeviceError(device, f"not on BLE bus {self.name!r}")
        if s.cfg.key is None:
            raise DeviceError(device, "has no bindkey: its adverts carry no encryption counter")
        self._ensure_counters()
        previous, s.last_counter = s.last_counter, None
        self._counters_dirty = True
        return previous

    def _ensure_counters(self) -> None:
        """Read the counters file once: a run restarted by the agent keeps the counters it has, newer than the file's."""
        if not self._counters_loaded:
            self._counters_loaded = True
            self._counters_error = self._load_counters()

    def _load_counters(self) -> str | None:
        """Restore the keyed sensors' counters; why the file could not be read, or None."""
        path = self._counters_path
        if path is None:
            return None
        try:
            doc = orjson.loads(path.read_bytes())
            if not isinstance(doc, dict) or doc.get("v") != COUNTERS_VERSION or not isinstance(doc.get("sensors"), dict):
                raise ValueError(f"not a version {COUNTERS_VERSION} counters file")
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
            return exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
        saved = doc["sensors"]
        for s in self._sensors:
            entry = saved.get(s.cfg.mac)
            if s.cfg.key is None or not isinstance(entry, dict) or entry.get("key") != _fingerprint(s.cfg.key):
                continue  # no key, never seen, or seen under another key (a re-keyed or replaced sensor)
            counter = entry.get("counter")
            if type(counter) is int and 0 <= counter <= 0xFFFFFFFF:
                s.last_counter = counter
        return None

    def _save_counters(self) -> None:
        """Write every keyed sensor's last counter (a temporary file, fsync, rename)."""
        self._counters_dirty = False
        self._counters_saved_at = time.monotonic()
        path = self._counters_path
        if path is None:
            return
        doc = {"v": COUNTERS_VERSION, "sensors": {
            s.cfg.mac: {"id": s.cfg.id, "counter": s.last_counter, "key": _fingerprint(s.cfg.key)}
            for s in self._sensors if s.cfg.key is not None and s.last_counter is not None}}
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as f:
                f.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            self._counters_dirty = True  # tried again at the next save
            log.error("BLE bus %r: cannot write %s: %s", self.name, path, exc.strerror)

    async def aclose(self) -> None:
        await self._stop_scanner()

    # --- scanner ---------------------------------------------------------------------------------------

    async def _start_scanner(self, sink: RecordSink) -> None:
        delay = self.config.retry_s
        bluez: BlueZScannerArgs = {"or_patterns": list(OR_PATTERNS)}
        if self.config.adapter:
            bluez["adapter"] = self.config.adapter
        while True:
            try:
                async with asyncio.timeout(self.config.start_timeout_s):
                    scanner = BleakScanner(
                        self._on_advert, None, "passive", bluez=bluez, backend=self._backend, **self._backend_kwargs
                    )
                    await scanner.start()
            except START_ERRORS as exc:
                reason = (
                    f"the Bluetooth stack did not answer within {self.config.start_timeout_s:g} s "
                    f"(D-Bus or bluetoothd hung?)"
                    if isinstance(exc, TimeoutError)
                    else unavailable_reason(exc)
                )
                self._set_unavailable(BleUnavailableError(self.name, reason), sink)
                await asyncio.sleep(delay)
                delay = min(delay * 2, max(RETRY_MAX_S, self.config.retry_s))
                continue
            self._scanner = scanner
            if self._unavailable is not None:
                log.info("BLE bus %r: Bluetooth available again, scanning", self.name)
                sink(Event(self.name, now_ms(), "ble_available", Severity.INFO))
                self._unavailable = None
                for s in self._sensors:
                    s.state.state, s.state.last_error = "unknown", None
            return

    def _set_unavailable(self, err: BleUnavailableError, sink: RecordSink) -> None:
        if self._unavailable is None or self._unavailable.reason != err.reason:
            log.error("%s", err)
            sink(Event(self.name, now_ms(), "ble_unavailable", Severity.MAJOR, {"reason": err.reason}))
        self._unavailable = err
        for s in self._sensors:
            s.state.state, s.state.last_error = "failing", str(err)
            s.state.errors["ble_unavailable"] = s.state.errors.get("ble_unavailable", 0) + 1

    async def _stop_scanner(self) -> None:
        scanner, self._scanner = self._scanner, None
        if scanner is not None:
            try:
                await scanner.stop()
            except START_ERRORS as exc:  # the stack went away under us: nothing left to stop
                log.warning("BLE bus %r: stopping the scan: %s", self.name, unavailable_reason(exc))

    def _on_advert(self, device: BLEDevice, adv: AdvertisementData) -> None:
        # Called by bleak for every advert in range: filter here, decode in run(), so the stack never waits.
        queue = self._queue
        if queue is None:
            return
        if device.address.upper() not in self._by_mac:
            self.ignored += 1
            return
        try:
            queue.put_nowait((device, adv, now_ms(), time.monotonic()))
        except asyncio.QueueFull:
            self._overflow += 1

    # --- one advert ------------------------------------------------------------------------------------

    def _handle(self, device: BLEDevice, adv: AdvertisementData, ts_ms: int, mono: float, sink: RecordSink) -> None:
        s = self._by_mac[device.address.upper()]
        if s.cfg.kind == "bthome":
            data = adv.service_data.get(bthome.SERVICE_UUID)
            if data is None:  # another advert of the device (scan response, other service)
                return
            try:
                accepted = self._bthome(s, data, adv, ts_ms, mono, sink)
            except DecodeError as exc:
                self._failed(s, exc, data, ts_ms, mono, sink)
                return
        else:
            data = adv.manufacturer_data.get(ruuvi.MANUFACTURER_ID)
            if data is None:
                return
            try:
                accepted = self._ruuvi(s, data, adv)
            except DecodeError as exc:
                self._failed(s, exc, data, ts_ms, mono, sink)
                return
        if accepted is not None:
            values, urgent = accepted
            self._accept(s, values, urgent, ts_ms, mono, sink)

    def _bthome(
        self, s: _Sensor, data: bytes, adv: AdvertisementData, ts_ms: int, mono: float, sink: RecordSink
    ) -> tuple[dict[str, Value], bool] | None:
        frame = bthome.decode(data, key=s.cfg.key, mac=s.mac_bytes)
        if s.cfg.key is not None and not frame.encrypted:
            self._problem(s, "bthome_downgrade", "plaintext advert from a sensor configured with a key: refused",
                          data, ts_ms, mono, sink)
            return None
        if frame.counter is not None:
            if s.last_counter is not None and frame.counter <= s.last_counter:
                if data != s.last_payload:
                    self._problem(s, "bthome_replay",
                                  f"encryption counter {frame.counter} does not increase (last {s.last_counter}): "
                                  f"refused (if its battery was just changed: citygate-agent ble forget-counter "
                                  f"{s.cfg.id})", data, ts_ms, mono, sink)
                return None
            s.last_counter = frame.counter
            self._counters_dirty = self._counters_path is not None
        s.last_payload = data
        if frame.packet_id is not None:
            if frame.packet_id == s.last_dedupe:
                return None
            s.last_dedupe = frame.packet_id
        if frame.error is not None:
            self._object_error(s, frame.error, ts_ms, mono, sink)
        values = {m.name: m.value for m in frame.measurements if m.prop != "packet_id"}
        values["rssi_dbm"] = adv.rssi
        if adv.tx_power is not None:
            values.setdefault("tx_power_dbm", adv.tx_power)
        return values, frame.has_event

    def _ruuvi(self, s: _Sensor, data: bytes, adv: AdvertisementData) -> tuple[dict[str, Value], bool] | None:
        reading = ruuvi.decode(data)
        # Without a sequence number ("not available"), an identical payload is the same measurement.
        dedupe: object = reading.sequence if reading.sequence is not None else data
        if dedupe == s.last_dedupe:
            return None
        s.last_dedupe = dedupe
        values = reading.sample_values()
        values["rssi_dbm"] = adv.rssi
        return values, False

    def _accept(
        self, s: _Sensor, values: dict[str, Value], urgent: bool, ts_ms: int, mono: float, sink: RecordSink
    ) -> None:
        sample = Sample(s.cfg.id, ts_ms, values)
        s.last_sample = sample
        st = s.state
        st.state, st.last_ts_ms, st.last_values, st.consecutive_failures, st.last_error = "ok", ts_ms, values, 0, None
        if s.silent:
            s.silent = False
            quiet_s = mono - (s.last_seen if s.last_seen is not None else self._started)
            sink(Event(s.cfg.id, ts_ms, "sensor_back", Severity.INFO, {"silent_for_s": round(quiet_s, 1)}))
        s.last_seen = mono
        if urgent or self._due(s, values, mono):
            sink(sample)
            s.last_emit = mono
            s.last_emitted = values

    def _due(self, s: _Sensor, values: Mapping[str, Value], mono: float) -> bool:
        interval = self.config.min_interval_s
        if s.last_emit is None or interval <= 0 or mono - s.last_emit >= interval:
            return True
        # An on/off or text state that changed is news now, not at the next interval.
        last = s.last_emitted
        return any(isinstance(v, bool | str) and last.get(k) != v for k, v in values.items())

    def _failed(self, s: _Sensor, exc: DecodeError, data: bytes, ts_ms: int, mono: float, sink: RecordSink) -> None:
        if isinstance(exc, bthome.AuthenticationError):
            code = "bthome_auth_failed"
        elif isinstance(exc, bthome.EncryptedPayloadError):
            code = "bthome_key_missing"
        else:
            code = "decode_error"
        self._problem(s, code, str(exc), data, ts_ms, mono, sink)

    def _object_error(self, s: _Sensor, err: bthome.ObjectError, ts_ms: int, mono: float, sink: RecordSink) -> None:
        """An advert whose objects up to `err` were kept: counted per sensor, reported like a problem."""
        st = s.state
        st.errors[OBJECT_ERROR] = st.errors.get(OBJECT_ERROR, 0) + 1
        if err.code == "unknown_object":
            # a newer sensor firmware, not a fault: said once per sensor and object id
            if err.object_id not in s.unknown_reported:
                s.unknown_reported.add(err.object_id)
                sink(Event(s.cfg.id, ts_ms, "bthome_unknown_object", Severity.INFO, {
                    "object_id": f"0x{err.object_id:02x}", "offset": err.offset, "not_decoded": err.remaining.hex()}))
            return
        self._event(s, OBJECT_ERROR, Severity.MINOR, {
            "reason": err.describe(), "object_id": f"0x{err.object_id:02x}", "offset": err.offset,
            "not_decoded": err.remaining.hex()}, ts_ms, mono, sink)

    def _problem(
        self, s: _Sensor, code: str, reason: str, data: bytes, ts_ms: int, mono: float, sink: RecordSink
    ) -> None:
        st = s.state
        st.errors[code] = st.errors.get(code, 0) + 1
        st.consecutive_failures += 1
        st.last_error = reason
        st.state = "failing"
        severity = Severity.MINOR if code == "decode_error" else Severity.MAJOR
        self._event(s, code, severity, {"reason": reason, "payload": data.hex()}, ts_ms, mono, sink)

    def _event(self, s: _Sensor, code: str, severity: Severity, detail: dict[str, Any], ts_ms: int, mono: float,
               sink: RecordSink) -> None:
        """At most one event a minute per sensor and code, with how many occurrences it stands for."""
        s.suppressed[code] = s.suppressed.get(code, 0) + 1
        last = s.event_at.get(code)
        if last is not None and mono - last < EVENT_INTERVAL_S:
            return
        s.event_at[code] = mono
        count = s.suppressed.pop(code)
        sink(Event(s.cfg.id, ts_ms, code, severity, {**detail, "count": count}))

    def _check_silence(self, mono: float, sink: RecordSink) -> float | None:
        """Report sensors newly silent; return the monotonic time of the next check (None: nothing to watch)."""
        limit = self.config.silent_after_s
        nxt: float | None = None
        for s in self._sensors:
            since = s.last_seen if s.last_seen is not None else self._started
            if s.silent:
                s.state.last_error = f"no new advertisement for {mono - since:.0f} s"
                continue
            if mono - since >= limit:
                s.silent = True
                st = s.state
                st.state, st.last_error = "failing", f"no new advertisement for {mono - since:.0f} s"
                sink(Event(s.cfg.id, now_ms(), "sensor_silent", Severity.MINOR, {
                    "silent_s": round(mono - since, 1), "last_ts_ms": st.last_ts_ms}))
            else:
                nxt = since + limit if nxt is None else min(nxt, since + limit)
        return nxt

    def _report_overflow(self, sink: RecordSink) -> None:
        mono = time.monotonic()
        if self._overflow_event_at is not None and mono - self._overflow_event_at < EVENT_INTERVAL_S:
            return
        self._overflow_event_at = mono
        dropped, self._overflow = self._overflow, 0
        log.warning("BLE bus %r: %d advert(s) dropped, decoding could not keep up", self.name, dropped)
        sink(Event(self.name, now_ms(), "ble_overflow", Severity.MINOR, {"dropped": dropped}))


# --- config ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BleBusConfig:
    """A parsed `type = "ble"` table: the bus settings, its scanner backend and its counters file."""

    config: BleConfig
    backend: type[BaseBleakScanner] | None = None  # None: the OS stack
    backend_kwargs: Mapping[str, Any] = field(default_factory=dict)
    counters_path: Path | None = None

    @property
    def name(self) -> str:
        return self.config.name


def parse(raw: Mapping[str, Any], ctx: BusContext) -> BleBusConfig:
    t = ConfigTable(dict(raw), ctx.key)
    name = t.text("name", required=True)
    if t.text("type", required=True) != "ble":
        raise ConfigError(f"{ctx.key}.type", "expected 'ble'")
    backend_spec = t.text("backend", "os")
    adapter = t.text("adapter")
    silent = t.number("silent_after_s", 300.0, lo=1.0, hi=7 * 86_400.0)
    min_interval = t.number("min_interval_s", 60.0, lo=0.0, hi=86_400.0)
    t.used.add("allow")
    sensors = _allow(raw.get("allow"), f"{ctx.key}.allow")
    t.done()
    backend, kwargs = scanner_backend(backend_spec, ctx)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    counters = None if ctx.state_dir is None else ctx.state_dir / f"ble-{safe}.counters.json"
    return BleBusConfig(BleConfig(name, sensors, adapter, silent, min_interval), backend, kwargs, counters)


def build(cfg: BleBusConfig) -> BleBus:
    """The bus of a parsed table; it starts scanning (and reads its counters file) only in `run`."""
    return BleBus(cfg.config, backend=cfg.backend, backend_kwargs=cfg.backend_kwargs, counters_path=cfg.counters_path)


#: The `ble` entry point (pyproject.toml).
DRIVER = Driver(parse=parse, build=build)


def _fingerprint(key: bytes | None) -> str:
    """What the counters file keeps to know a sensor's key is unchanged: never the key itself."""
    return hashlib.sha256(b"citygate bthome counter\0" + (key or b"")).hexdigest()[:16]


def _allow(raw: Any, key: str) -> tuple[AllowedSensor, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(key, "expected a non-empty list of sensors ([[bus.allow]] tables: mac, id, kind)")
    sensors: list[AllowedSensor] = []
    for i, entry in enumerate(raw):
        k = f"{key}[{i}]"
        t = ConfigTable(entry, k)
        mac_text = t.text("mac", required=True)
        try:
            mac = bthome.format_mac(bthome.parse_mac(mac_text))
        except ValueError as exc:
            raise ConfigError(f"{k}.mac", str(exc)) from None
        ident = t.text("id", required=True)
        if not ident or len(ident) > 128:
            raise ConfigError(f"{k}.id", "1 to 128 characters")
        kind = t.text("kind", required=True)
        if kind not in KINDS:
            raise ConfigError(f"{k}.kind", f"{kind!r}: expected one of {', '.join(KINDS)}")
        key_hex = t.text("key")
        bindkey = None
        if key_hex is not None:
            if kind != "bthome":
                raise ConfigError(f"{k}.key", "only BTHome sensors have a bindkey")
            try:
                bindkey = bytes.fromhex(key_hex)
            except ValueError:
                raise ConfigError(f"{k}.key", "not hexadecimal") from None
            if len(bindkey) != 16:
                raise ConfigError(f"{k}.key", f"a bindkey is 16 bytes (32 hex digits), got {len(bindkey)}")
        t.done()
        if any(s.mac == mac for s in sensors):
            raise ConfigError(f"{k}.mac", f"{mac} is listed twice")
        if any(s.id == ident for s in sensors):
            raise ConfigError(f"{k}.id", f"{ident!r} is used twice")
        sensors.append(AllowedSensor(mac, ident, kind, bindkey))
    return tuple(sensors)


#: Other scanner backends than the OS stack: name -> factory(argument, config_dir) returning the
#: BleakScanner backend class and its keyword arguments, raising ValueError with the reason.
#: citygate's own `replay` (simulators.ble.replay_backend) comes in this way, so the driver never
#: imports the simulators and a field agent never loads them.
BACKEND_GROUP = "citygate.ble_backends"

BackendFactory = Callable[[str, Path], tuple[type[BaseBleakScanner], dict[str, Any]]]


def scanner_backend(spec: str, ctx: BusContext) -> tuple[type[BaseBleakScanner] | None, dict[str, Any]]:
    """The BleakScanner backend a `backend` setting names: the OS stack, or NAME:ARGUMENT of an entry point."""
    if spec == "os":
        return None, {}
    installed = {ep.name: ep for ep in entry_points(BACKEND_GROUP)}
    name, _, argument = spec.partition(":")
    if name not in installed or not argument:
        expected = " or ".join(["'os'", *(f"'{n}:<argument>'" for n in sorted(installed))])
        raise ConfigError(f"{ctx.key}.backend", f"{spec!r}: expected {expected}")
    factory = cast(BackendFactory, installed[name].load())
    try:
        return factory(argument, ctx.config_dir)
    except ValueError as exc:
        raise ConfigError(f"{ctx.key}.backend", str(exc)) from None
