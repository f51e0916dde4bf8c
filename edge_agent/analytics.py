"""Gateway analytics on journalled records: cabinet energy balance and night-flow water leaks.

Config (the `[analytics]` section of the agent's TOML; unknown keys are refused)::

    [analytics.energy]
    tic_device = "cab-12-meter"     # the cabinet's Linky (TIC bus `device`)
    tolerance_pct = 10              # energy_mismatch beyond this share of the meter's energy
    window_s = 3600                 # compared per window (aligned on the epoch, UTC)
    lamps = []                      # lamp devices; empty: every other device that reports energy_wh
    min_energy_wh = 50              # windows where both sides used less are not judged
    grace_s = 300                   # wait this long after a window for late lamp readings

    [analytics.water]
    devices = ["water-cab-12"]      # M-Bus meters (volume_m3)
    night_start_h = 1               # local hours of the night window [start, end)
    night_end_h = 5
    threshold_m3h = 0.01            # a night whose minimum flow stays above this is a leak night
    nights = 3                      # water_leak after this many leak nights in a row
    min_interval_s = 900            # flow measured over at least this long (meter resolution)
    timezone = "Europe/Paris"

Energy: each counter's increase between two readings (never negative: a counter that goes back
was reset or replaced) is spread linearly over time and split across the windows it spans, so a
meter read every 10 s and lamps read every 15 min are compared over the very same interval. A
window is judged once the meter has read past its end and every lamp has too, or `grace_s`
later (lamps still silent are named in the event); a window in which a counter was first read
(start-up, a new lamp) is skipped, since what was used before that reading is unknown.

Events: energy_mismatch (minor, device = tic_device, detail: window, meter_wh, lamps_wh,
difference_wh, difference_pct, tolerance_pct, lamps, late_devices);
water_leak (major, device = the water meter, detail: nights, night_min_flows_m3h,
threshold_m3h) and water_leak_cleared (info) once a night's minimum falls back under the threshold.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drivers.conf import ConfigTable
from drivers.errors import ConfigError
from drivers.model import Event, Record, Sample, Severity
from edge_agent.service import AgentContext

log = logging.getLogger("citygate.analytics")

QUEUE_MAX = 100_000


def _texts(t: ConfigTable, name: str, *, required: bool) -> tuple[str, ...]:
    t.used.add(name)
    raw = t.raw.get(name)
    if raw is None:
        if required:
            raise ConfigError(f"{t.key}.{name}", "missing")
        return ()
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        raise ConfigError(f"{t.key}.{name}", "expected a list of device ids")
    if len(set(raw)) != len(raw):
        raise ConfigError(f"{t.key}.{name}", "a device is listed twice")
    return tuple(raw)


@dataclass(frozen=True, slots=True)
class EnergyBalanceConfig:
    tic_device: str
    tolerance_pct: float = 10.0
    window_s: float = 3600.0
    lamps: tuple[str, ...] = ()
    min_energy_wh: float = 50.0
    grace_s: float = 300.0

    @classmethod
    def from_config(cls, raw: Any, key: str) -> EnergyBalanceConfig:
        t = ConfigTable(raw, key)
        tic = t.text("tic_device", required=True)
        if not tic:
            raise ConfigError(f"{key}.tic_device", "must not be empty")
        cfg = cls(
            tic_device=tic,
            tolerance_pct=t.number("tolerance_pct", 10.0, lo=0.0, hi=1000.0),
            window_s=t.number("window_s", 3600.0, lo=60.0, hi=31 * 86400.0),
            lamps=_texts(t, "lamps", required=False),
            min_energy_wh=t.number("min_energy_wh", 50.0, lo=0.0, hi=1e12),
            grace_s=t.number("grace_s", 300.0, lo=0.0, hi=86400.0),
        )
        t.done()
        if tic in cfg.lamps:
            raise ConfigError(f"{key}.lamps", f"{tic!r} is the cabinet meter, not a lamp")
        return cfg


@dataclass(frozen=True, slots=True)
class WaterLeakConfig:
    devices: tuple[str, ...]
    threshold_m3h: float
    nights: int = 3
    night_start_h: int = 1
    night_end_h: int = 5
    min_interval_s: float = 900.0
    timezone: str = "Europe/Paris"

    @classmethod
    def from_config(cls, raw: Any, key: str) -> WaterLeakConfig:
        t = ConfigTable(raw, key)
        devices = _texts(t, "devices", required=True)
        if not devices:
            raise ConfigError(f"{key}.devices", "list at least one water meter")
        if "threshold_m3h" not in t.raw:
            raise ConfigError(f"{key}.threshold_m3h", "missing")
        cfg = cls(
            devices=devices,
            threshold_m3h=t.number("threshold_m3h", 0.0, lo=0.0, hi=1e6),
            nights=t.integer("nights", 3, lo=1, hi=365),
            night_start_h=t.integer("night_start_h", 1, lo=0, hi=23),
            night_end_h=t.integer("night_end_h", 5, lo=0, hi=23),
            min_interval_s=t.number("min_interval_s", 900.0, lo=1.0, hi=86400.0),
            timezone=t.text("timezone", "Europe/Paris"),
        )
        t.done()
        if cfg.night_start_h == cfg.night_end_h:
            raise ConfigError(f"{key}.night_end_h", "the night window is empty (start == end)")
        try:
            ZoneInfo(cfg.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"{key}.timezone", f"unknown time zone {cfg.timezone!r}") from None
        return cfg


@dataclass(frozen=True, slots=True)
class AnalyticsConfig:
    energy: EnergyBalanceConfig | None = None
    water: WaterLeakConfig | None = None


def parse_section(raw: Mapping[str, Any], key: str, base: Path) -> AnalyticsConfig:
    """The `[analytics]` section (agent config SECTIONS parser signature)."""
    t = ConfigTable(dict(raw), key)
    t.used.update({"energy", "water"})
    t.done()
    energy = EnergyBalanceConfig.from_config(raw["energy"], f"{key}.energy") if "energy" in raw else None
    water = WaterLeakConfig.from_config(raw["water"], f"{key}.water") if "water" in raw else None
    return AnalyticsConfig(energy, water)


# --- energy balance ------------------------------------------------------------------------------


@dataclass
class _Counter:
    first_ms: int
    last_ms: int
    last_wh: float


class EnergyBalance:
    """Pure logic: feed it every record; it returns the energy_mismatch events to emit."""

    def __init__(self, cfg: EnergyBalanceConfig) -> None:
        self.cfg = cfg
        self.window_ms = round(cfg.window_s * 1000)
        self._counters: dict[str, _Counter] = {}
        self._windows: dict[int, dict[str, float]] = {}  # window index -> device -> Wh used in it
        self.judged = 0
        self.skipped = 0  # windows that began before some counter's first reading

    def _is_lamp(self, device: str) -> bool:
        if device == self.cfg.tic_device:
            return False
        return device in self.cfg.lamps if self.cfg.lamps else True

    def observe(self, record: Record) -> list[Event]:
        if not isinstance(record, Sample):
            return []
        device = record.device
        value = record.values.get("energy_wh")
        if not isinstance(value, int | float) or isinstance(value, bool):
            return []
        if device != self.cfg.tic_device and not self._is_lamp(device):
            return []
        t, wh = record.ts_ms, float(value)
        c = self._counters.get(device)
        if c is None:
            self._counters[device] = _Counter(t, t, wh)
        elif t > c.last_ms:
            self._spread(device, c.last_ms, t, max(0.0, wh - c.last_wh))
            c.last_ms, c.last_wh = t, wh
        if device == self.cfg.tic_device:
            return self._close_windows()
        return []

    def _spread(self, device: str, t0: int, t1: int, wh: float) -> None:
        w = self.window_ms
        k = t0 // w
        while k * w < t1:
            overlap = min(t1, (k + 1) * w) - max(t0, k * w)
            if overlap > 0:
                per = self._windows.setdefault(k, {})
                per[device] = per.get(device, 0.0) + wh * overlap / (t1 - t0)
            k += 1

    def _lamps(self) -> list[str]:
        if self.cfg.lamps:
            return list(self.cfg.lamps)
        return [d for d in self._counters if self._is_lamp(d)]

    def _close_windows(self) -> list[Event]:
        meter = self._counters[self.cfg.tic_device]
        grace_ms = round(self.cfg.grace_s * 1000)
        out: list[Event] = []
        for k in sorted(self._windows):
            start, end = k * self.window_ms, (k + 1) * self.window_ms
            if meter.last_ms < end:
                break
            lamps = self._lamps()
            late = [d for d in lamps if d not in self._counters or self._counters[d].last_ms < end]
            if late and meter.last_ms < end + grace_ms:
                break
            used = self._windows.pop(k)
            # a counter first read inside the window has used energy before that nobody knows of
            if any(
                c.first_ms > start
                for d, c in self._counters.items()
                if d in lamps or d == self.cfg.tic_device
            ):
                self.skipped += 1
                continue
            self.judged += 1
            event = self._judge(start, end, used, lamps, late)
            if event is not None:
                out.append(event)
        return out

    def _judge(
        self, start: int, end: int, used: dict[str, float], lamps: list[str], late: list[str]
    ) -> Event | None:
        meter_wh = used.get(self.cfg.tic_device, 0.0)
        lamps_wh = sum(used.get(d, 0.0) for d in lamps)
        if max(meter_wh, lamps_wh) < self.cfg.min_energy_wh:
            return None
        diff = meter_wh - lamps_wh
        pct = abs(diff) / meter_wh * 100 if meter_wh > 0 else float("inf")
        if pct <= self.cfg.tolerance_pct:
            return None
        return Event(
            self.cfg.tic_device,
            end,
            "energy_mismatch",
            Severity.MINOR,
            {
                "window_start": _iso(start),
                "window_end": _iso(end),
                "meter_wh": round(meter_wh, 1),
                "lamps_wh": round(lamps_wh, 1),
                "difference_wh": round(diff, 1),
                "difference_pct": round(pct, 1) if pct != float("inf") else None,
                "tolerance_pct": self.cfg.tolerance_pct,
                "lamps": len(lamps),
                "late_devices": late,
            },
        )


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat().replace("+00:00", "Z")


# --- water leaks -----------------------------------------------------------------------------------


@dataclass
class _Meter:
    night: date | None = None  # the night being measured (local date of its start)
    anchor: tuple[int, float] | None = None  # (ts_ms, volume_m3) the current flow is measured from
    min_flow: float | None = None
    streak: list[float] = field(default_factory=list)  # minimum flow of each leak night in a row
    alerted: bool = False


class WaterLeakDetector:
    """Pure logic: feed it every record; it returns water_leak / water_leak_cleared events."""

    def __init__(self, cfg: WaterLeakConfig) -> None:
        self.cfg = cfg
        self.tz = ZoneInfo(cfg.timezone)
        self._meters = {d: _Meter() for d in cfg.devices}

    def night_of(self, ts_ms: int) -> date | None:
        """The local date the night began on, if `ts_ms` falls in the night window, else None."""
        local = datetime.fromtimestamp(ts_ms / 1000, self.tz)
        start, end, h = self.cfg.night_start_h, self.cfg.night_end_h, local.hour
        if start < end:
            return local.date() if start <= h < end else None
        if h >= start:
            return local.date()
        if h < end:
            return local.date() - timedelta(days=1)
        return None

    def observe(self, record: Record) -> list[Event]:
        if not isinstance(record, Sample) or record.device not in self._meters:
            return []
        volume = record.values.get("volume_m3")
        if not isinstance(volume, int | float) or isinstance(volume, bool):
            return []
        m = self._meters[record.device]
        t = record.ts_ms
        night = self.night_of(t)
        out: list[Event] = []
        if m.night is not None and night != m.night:
            out += self._end_night(record.device, m, t)
        if night is None:
            return out
        if m.night is None:
            m.night, m.anchor, m.min_flow = night, (t, float(volume)), None
            return out
        assert m.anchor is not None
        t0, v0 = m.anchor
        if t <= t0:
            return out
        if volume < v0:  # meter replaced or index rolled over: measure again from here
            m.anchor = (t, float(volume))
        elif (t - t0) / 1000 >= self.cfg.min_interval_s:
            flow = (float(volume) - v0) / ((t - t0) / 3_600_000)
            m.min_flow = flow if m.min_flow is None else min(m.min_flow, flow)
            m.anchor = (t, float(volume))
        return out

    def _end_night(self, device: str, m: _Meter, ts_ms: int) -> list[Event]:
        min_flow, m.night, m.anchor, m.min_flow = m.min_flow, None, None, None
        if min_flow is None:
            return []  # no flow measured that night: it neither proves nor clears a leak
        if min_flow > self.cfg.threshold_m3h:
            m.streak.append(min_flow)
            if len(m.streak) >= self.cfg.nights and not m.alerted:
                m.alerted = True
                return [
                    Event(
                        device,
                        ts_ms,
                        "water_leak",
                        Severity.MAJOR,
                        {
                            "nights": len(m.streak),
                            "night_min_flows_m3h": [round(f, 4) for f in m.streak],
                            "threshold_m3h": self.cfg.threshold_m3h,
                        },
                    )
                ]
            return []
        m.streak.clear()
        if m.alerted:
            m.alerted = False
            detail = {"night_min_flow_m3h": round(min_flow, 4), "threshold_m3h": self.cfg.threshold_m3h}
            return [Event(device, ts_ms, "water_leak_cleared", Severity.INFO, detail)]
        return []


# --- the service -----------------------------------------------------------------------------------


class AnalyticsService:
    """Runs the configured analytics on every journalled sample and emits their events."""

    name = "analytics"

    def __init__(self, cfg: AnalyticsConfig) -> None:
        self.energy = EnergyBalance(cfg.energy) if cfg.energy else None
        self.water = WaterLeakDetector(cfg.water) if cfg.water else None
        self._queue: asyncio.Queue[Sample] | None = None
        self.dropped = 0

    def _observe(self, record: Record) -> None:
        if not isinstance(record, Sample) or self._queue is None:
            return
        if "energy_wh" not in record.values and "volume_m3" not in record.values:
            return
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self.dropped += 1

    def process(self, record: Record) -> list[Event]:
        out: list[Event] = []
        if self.energy is not None:
            out += self.energy.observe(record)
        if self.water is not None:
            out += self.water.observe(record)
        return out

    async def run(self, ctx: AgentContext) -> None:
        if self._queue is None:  # subscribe once, even when the supervisor restarts run()
            self._queue = asyncio.Queue(QUEUE_MAX)
            ctx.subscribe(self._observe)
        while True:
            record = await self._queue.get()
            for event in self.process(record):
                log.info("%s on %s: %s", event.code, event.device, dict(event.detail))
                ctx.emit(event)


def service(cfg: AnalyticsConfig) -> AnalyticsService:
    """Factory for the agent's SERVICES table."""
    return AnalyticsService(cfg)
