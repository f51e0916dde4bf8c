"""Per-sensor state of a bus of parking sensors, without I/O: uplinks and status events in,
Samples and Events out.

- Frame counters and network time: a frame older than the last accepted one (by the network
  server's `time`), or as old with an fCnt not above it, is a duplicate or a late re-delivery:
  dropped, reported as `uplink_duplicate`, never a second state change (a late frame from before
  a device reset is caught by its time, whatever its counter). A newer frame whose fCnt is not
  above the last one is a device reset (the counter restarted): `sensor_reset`, then accepted.
- Silence: a sensor heard of nothing for longer than its heartbeat period (plus a grace for the
  radio) makes its space `unknown` (a sample), never `free`, and `sensor_silent`; its next frame
  brings `sensor_back` and its state.
- Battery: `sensor_battery_low` when the model's own judgement says low or the network server's
  battery level is under the threshold; `sensor_battery_restored` when it is no longer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from drivers.errors import DecodeError
from drivers.lorawan.reading import Kind, Reading, SensorModel
from drivers.lorawan.uplink import DeviceStatus, Uplink
from drivers.model import Event, Record, Sample, Severity, Value

OCCUPIED, FREE, UNKNOWN = "occupied", "free", "unknown"
EVENT_INTERVAL_S = 60.0  # repeated duplicate / decode-error events of one sensor: one a minute, with a count


@dataclass(frozen=True, slots=True)
class Sensor:
    dev_eui: str  # lower-case hex
    space: str  # the device name in samples and events: the parking space it watches
    model: SensorModel
    heartbeat_s: float


@dataclass(slots=True)
class SensorState:
    sensor: Sensor
    state: str = UNKNOWN
    since_ms: int | None = None  # network time of the last change of state
    last_fcnt: int | None = None
    last_time_ms: int | None = None  # network time of the last accepted uplink
    heard_s: float | None = None  # monotonic time of the last accepted frame
    silent: bool = False
    battery_low: bool = False
    model_low: bool = False  # the model's own judgement in its last frame that had one
    battery_pct: float | None = None
    battery_v: float | None = None
    rssi_dbm: int | None = None
    snr_db: float | None = None
    counts: dict[str, int] = field(default_factory=dict)  # duplicate, reset, decode_error
    pending: dict[str, int] = field(default_factory=dict)  # repeats not yet reported, by event code
    reported_s: dict[str, float] = field(default_factory=dict)


class Tracker:
    def __init__(self, sensors: Mapping[str, Sensor], *, silence_grace_s: float, battery_low_pct: float,
                 started_s: float) -> None:
        self.states = {eui: SensorState(s, heard_s=started_s) for eui, s in sensors.items()}
        self.silence_grace_s = silence_grace_s
        self.battery_low_pct = battery_low_pct
        self.unknown_devices: dict[str, int] = {}

    # -- frames in

    def uplink(self, up: Uplink, now_s: float) -> list[Record]:
        st = self.states.get(up.dev_eui)
        if st is None:
            return self._unknown(up.dev_eui, up.time_ms)
        out: list[Record] = []
        if st.last_fcnt is not None and st.last_time_ms is not None and (
                up.time_ms < st.last_time_ms or (up.time_ms == st.last_time_ms and up.f_cnt <= st.last_fcnt)):
            return self._repeat(st, "uplink_duplicate", up.time_ms, now_s, Severity.INFO,
                                {"fcnt": up.f_cnt, "last_fcnt": st.last_fcnt})
        if st.last_fcnt is not None and up.f_cnt <= st.last_fcnt:
            _count(st, "reset")
            out.append(Event(st.sensor.space, up.time_ms, "sensor_reset", Severity.MINOR,
                             {"fcnt": up.f_cnt, "last_fcnt": st.last_fcnt}))
        try:
            reading = None if up.f_port == 0 else st.sensor.model.decode(up.f_port, up.data)
        except DecodeError as exc:
            reading = None
            out += self._repeat(st, "decode_error", up.time_ms, now_s, Severity.MINOR,
                                {"fport": up.f_port, "reason": str(exc)})
        st.last_fcnt, st.last_time_ms, st.heard_s = up.f_cnt, up.time_ms, now_s
        if up.rssi_dbm is not None:
            st.rssi_dbm, st.snr_db = up.rssi_dbm, up.snr_db
        if st.silent:
            st.silent = False
            out.append(Event(st.sensor.space, up.time_ms, "sensor_back", Severity.INFO))
        if reading is not None and reading.kind is not Kind.INFO:
            out += self._reading(st, up, reading)
        return out

    def status(self, status: DeviceStatus, now_s: float) -> list[Record]:
        st = self.states.get(status.dev_eui)
        if st is None:
            return self._unknown(status.dev_eui, status.time_ms)
        st.battery_pct = status.battery_pct
        out = self._battery(st, status.time_ms, None)
        if status.battery_pct is not None:
            out.append(Sample(st.sensor.space, status.time_ms, {"battery_pct": status.battery_pct}))
        return out

    def _reading(self, st: SensorState, up: Uplink, r: Reading) -> list[Record]:
        out: list[Record] = []
        if r.reset_cause is not None:
            out.append(Event(st.sensor.space, up.time_ms, "sensor_started", Severity.INFO,
                             {"reset_cause": r.reset_cause, "firmware": r.firmware}))
        if r.battery_v is not None:
            st.battery_v = r.battery_v
        out += self._battery(st, up.time_ms, r.battery_low)
        values: dict[str, Value] = {"uplink": r.kind.value, "fcnt": up.f_cnt}
        if r.occupied is not None:
            state = OCCUPIED if r.occupied else FREE
            if state != st.state:
                st.state, st.since_ms = state, up.time_ms
            values["parking_state"] = state
        for key, v in (("rssi_dbm", up.rssi_dbm), ("snr_db", up.snr_db), ("battery_v", r.battery_v),
                       ("temperature_c", r.temperature_c)):
            if v is not None:
                values[key] = v
        out.append(Sample(st.sensor.space, up.time_ms, values))
        return out

    def _battery(self, st: SensorState, ts_ms: int, model_low: bool | None) -> list[Record]:
        if model_low is not None:
            st.model_low = model_low
        low = st.model_low or (st.battery_pct is not None and st.battery_pct < self.battery_low_pct)
        if low == st.battery_low:
            return []
        st.battery_low = low
        detail = {"battery_pct": st.battery_pct, "battery_v": st.battery_v, "threshold_pct": self.battery_low_pct}
        code, severity = ("sensor_battery_low", Severity.MINOR) if low else ("sensor_battery_restored", Severity.INFO)
        return [Event(st.sensor.space, ts_ms, code, severity, detail)]

    def _repeat(self, st: SensorState, code: str, ts_ms: int, now_s: float, severity: Severity,
                detail: dict[str, Value]) -> list[Record]:
        """Count a repeated fault; report it at most once a minute per sensor, with the repeats since."""
        _count(st, code.removeprefix("uplink_"))
        st.pending[code] = st.pending.get(code, 0) + 1
        last = st.reported_s.get(code)
        if last is not None and now_s - last < EVENT_INTERVAL_S:
            return []
        st.reported_s[code] = now_s
        repeats = st.pending.pop(code)
        return [Event(st.sensor.space, ts_ms, code, severity, {**detail, "repeats": repeats})]

    def _unknown(self, dev_eui: str, ts_ms: int) -> list[Record]:
        seen = self.unknown_devices.get(dev_eui, 0)
        if len(self.unknown_devices) < 10_000:
            self.unknown_devices[dev_eui] = seen + 1
        if seen:
            return []
        return [Event(f"lorawan:{dev_eui}", ts_ms, "unknown_device", Severity.INFO,
                      {"dev_eui": dev_eui, "reason": "not in the bus's sensor list: ignored"})]

    # -- time passing

    def tick(self, now_s: float, now_ms: int) -> list[Record]:
        """Sensors silent longer than their heartbeat period: `unknown`, once each."""
        out: list[Record] = []
        for st in self.states.values():
            if st.silent or st.heard_s is None:
                continue
            silent_s = now_s - st.heard_s
            if silent_s <= st.sensor.heartbeat_s + self.silence_grace_s:
                continue
            st.silent = True
            detail = {"silent_s": round(silent_s, 1), "heartbeat_s": st.sensor.heartbeat_s}
            out.append(Event(st.sensor.space, now_ms, "sensor_silent", Severity.MINOR, detail))
            if st.state != UNKNOWN:
                st.state, st.since_ms = UNKNOWN, now_ms
                out.append(Sample(st.sensor.space, now_ms, {"parking_state": UNKNOWN}))
        return out


def _count(st: SensorState, name: str) -> None:
    st.counts[name] = st.counts.get(name, 0) + 1
