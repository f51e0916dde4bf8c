"""The lighting service: runs the programs on the gateway, on time, with or without an uplink.

- Wakes at each switch instant (and at override starts and expiries) through the injected
  clock and commands the lamps whose level changes, bus by bus in parallel.
- On start it goes straight to the level the program dictates now: a reboot at 23:30 in Dijon
  commands 70 %, it never replays the evening.
- Keeps overrides, a pushed program set, energy totals and open faults in
  `state_dir/lighting.json` (write to a temporary file, fsync, rename, fsync the folder), so
  they survive a power cut or a kill -9.
- Watches the lamps' samples (level_pct, power_w, lamp_on, energy_wh) for lamp_failure,
  dimming_failure, day_burner and lamp_restored, and adds up burn hours and energy per cabinet
  (a sample every `report_interval_s`, hourly) and per lamp (every `lamp_report_interval_s`,
  daily).
- Does not trust a clock before 2020 (lamps stay at 100 %: day and night are unknown) nor one
  whose time source has been lost longer than `clock_lost_after_s` (the safe all-night
  program runs); either raises an alarm event.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import orjson

from drivers.base import LampBus
from drivers.errors import DriverError
from drivers.model import Event, Record, Sample, Severity
from edge_agent.clock import Clock
from edge_agent.lighting.config import GroupConfig, LightingConfig, check_calendars
from edge_agent.lighting.engine import Engine, override_for
from edge_agent.lighting.model import (
    DEFAULT_PROGRAM,
    LightingError,
    Override,
    Program,
    ProgramSet,
    UnknownTarget,
    parse_program_set,
)
from edge_agent.lighting.overrides import override_view
from edge_agent.service import AgentContext

log = logging.getLogger("citygate.lighting")

STATE_FILE = "lighting.json"
STATE_VERSION = 1
CABINET_DEVICE = "cabinet"
EARLIEST_TRUSTED_YEAR = 2020
CLOCK_CHECK_S = 60.0
MAX_SLEEP_S = 3600.0
#: energy totals and open faults are written at least this often (and at every control change and stop);
#: a power cut loses at most this much of the local totals, the journalled reports keep every figure
STATE_SAVE_S = 6 * 3600.0
FAILURE_POWER_RATIO = 0.10
#: Below this commanded level a healthy lamp may itself draw under FAILURE_POWER_RATIO of its rated
#: power (5 % draws about 9 % through an LED driver's losses): there, a failure is a power under
#: half of what the level should draw (a failed lamp draws nearly nothing at any level).
LOW_LEVEL_PCT = 2 * FAILURE_POWER_RATIO * 100
READBACK_TOLERANCE_PCT = 1  # DALI's logarithmic steps round a percent by up to one point


class TimeSync(Protocol):
    def is_synchronized(self) -> bool:
        """Whether a time source (NTP, GPS, the CMS) disciplines the clock right now."""


class KernelTimeSync:
    """Asks the kernel (adjtimex, read only) whether NTP/chrony/timesyncd keeps the clock synchronised."""

    _TIME_ERROR = 5

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

    def is_synchronized(self) -> bool:
        timex = ctypes.create_string_buffer(512)  # struct timex, zeroed: modes = 0 reads without changing
        return bool(self._libc.adjtimex(timex) not in (-1, self._TIME_ERROR))


class ClockMode(StrEnum):
    TRUSTED = "trusted"
    UNSYNCHRONISED = "clock_unsynchronised"  # running, but no time source for too long
    INVALID = "clock_invalid"  # before 2020: the RTC lost its time


def failure_power_w(rated_power_w: float, commanded_pct: int) -> float:
    """The power under which a lamp commanded to `commanded_pct` has failed: 10 % of its rated
    power, or at low levels (under LOW_LEVEL_PCT) half of what the level should draw, so that a
    healthy lamp dimmed to 5 % is not taken for a failed one. The two meet at LOW_LEVEL_PCT."""
    if commanded_pct >= LOW_LEVEL_PCT:
        return FAILURE_POWER_RATIO * rated_power_w
    return 0.5 * commanded_pct / 100 * rated_power_w


class Fault(StrEnum):
    LAMP_FAILURE = "lamp_failure"
    DIMMING_FAILURE = "dimming_failure"
    DAY_BURNER = "day_burner"


_FAULT_SEVERITY = {
    Fault.LAMP_FAILURE: Severity.MAJOR,
    Fault.DIMMING_FAILURE: Severity.MINOR,
    Fault.DAY_BURNER: Severity.MINOR,
}


@dataclass
class LampState:
    """What the service knows of one lamp: commanded vs actual, faults, and its energy account."""

    name: str
    group: GroupConfig
    rated_power_w: float
    bus: LampBus | None = None
    target: int | None = None  # what the program (or override) wants now
    commanded: int | None = None  # last level the controller accepted
    commanded_at_ms: int = 0
    readback: int | None = None
    actual: int | None = None  # level_pct of the last poll
    power_w: float | None = None
    lit: bool | None = None
    faults: set[str] = field(default_factory=set)
    command_failing: bool = False
    retry_at: datetime | None = None
    last_ts_ms: int | None = None
    last_energy_wh: float | None = None
    last_energy_ts_ms: int | None = None
    burn_s: float = 0.0  # since the lamp's last report
    energy_wh: float = 0.0
    readings: int = 0  # since the lamp's last report: a lamp that said nothing gets no report, not a false zero
    burn_total_s: float = 0.0
    energy_total_wh: float = 0.0


def write_json_atomic(path: Path, doc: Any) -> None:
    """Replace `path` with `doc` so that a crash at any moment leaves either the old or the new file."""
    tmp = path.with_name(path.name + ".tmp")
    data = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _fingerprint(programs: ProgramSet) -> str:
    return hashlib.sha256(orjson.dumps(programs.to_doc(), option=orjson.OPT_SORT_KEYS)).hexdigest()


def _number(value: Any) -> float | None:
    """A reading's number (not a bool, not None, not a string)."""
    return float(value) if type(value) in (int, float) else None


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


class LightingService:
    """`Service` of the agent. Control plane methods: set_override, clear_override, push_programs."""

    name = "lighting"

    def __init__(self, config: LightingConfig, *, time_sync: TimeSync | None = None) -> None:
        self.config = config
        self.time_sync = time_sync
        self.programs = config.programs
        self.engine = Engine(config.programs, config.site)
        self.overrides: dict[str, Override] = {}
        self.lamps: dict[str, LampState] = {
            lamp: LampState(lamp, g, g.rated_power_w) for g in config.groups for lamp in g.lamps
        }
        self.group_levels: dict[str, int] = {}
        self.mode = ClockMode.TRUSTED
        #: set while the service waits for its next instant; `next_wake` says which, and `cycles` counts the
        #: waits, so a test stepping a FakeClock knows when the service has finished acting on an instant
        self.idle = asyncio.Event()
        self.next_wake: datetime | None = None
        self.cycles = 0
        self._ctx: AgentContext | None = None
        self._changed = asyncio.Event()
        self._last_sync: datetime | None = None
        self._next_report: datetime | None = None
        self._next_lamp_report: datetime | None = None
        self._last_save: datetime | None = None
        self._cabinet_burn_s = 0.0  # since the cabinet's last report
        self._cabinet_energy_wh = 0.0
        self._pushed = False
        self._level_tolerance = max(READBACK_TOLERANCE_PCT, config.dimming_tolerance_pct)

    # -- control plane -------------------------------------------------------------------------

    def set_override(self, group_or_lamp: str, level: int, start: datetime | None, expiry: datetime) -> Override:
        """Hold a group or a lamp at `level` from `start` (None: now) until `expiry`; replaces the previous one."""
        ctx = self._running()
        if group_or_lamp not in self.lamps and all(g.name != group_or_lamp for g in self.config.groups):
            raise UnknownTarget("override", group_or_lamp, "unknown_target", "no such lamp group or lamp")
        now = ctx.clock.now()
        override = Override.make(group_or_lamp, level, start or now, expiry, now)
        if override.expiry <= now:
            raise LightingError("override", group_or_lamp, "override_window", "expires in the past")
        overrides = dict(self.overrides)
        if group_or_lamp not in self.lamps:
            # a group override replaces its lamps' older ones too: the newest order wins
            for lamp in self.config.group(group_or_lamp).lamps:
                overrides.pop(lamp, None)
        overrides[group_or_lamp] = override
        self._save(overrides=overrides)
        self.overrides = overrides
        self._changed.set()
        return override

    def clear_override(self, group_or_lamp: str) -> bool:
        """Return the group or lamp to its program; False if it had no override."""
        self._running()
        if group_or_lamp not in self.overrides:
            return False
        overrides = {k: v for k, v in self.overrides.items() if k != group_or_lamp}
        self._save(overrides=overrides)
        self.overrides = overrides
        self._changed.set()
        return True

    def override_of(self, lamp: str) -> Override | None:
        """The override that governs `lamp` now (its own, else its group's), if any."""
        state = self.lamps.get(lamp)
        if state is None or self._ctx is None:
            return None
        return override_for(self.overrides.values(), lamp, state.group.name, self._ctx.clock.now())

    def lamp_override(self, lamp: str) -> dict[str, Any] | None:
        override = self.override_of(lamp)
        return override_view(override, via="lighting") if override is not None else None

    def push_programs(self, doc: Mapping[str, Any]) -> None:
        """Replace the program set (and calendars) atomically; raise LightingError and keep the previous on refusal."""
        self._running()
        programs = parse_program_set(doc, "push", self.config.limits)
        check_calendars(programs, self.config.groups)
        self._save(programs=programs)
        self.programs = programs
        self.engine = Engine(programs, self.config.site)
        self._pushed = True
        self._changed.set()

    def snapshot(self) -> dict[str, Any]:
        """Groups (level now, program, override) and lamps (commanded vs actual, faults), for people and the API."""
        now = self._ctx.clock.now() if self._ctx else None
        groups = []
        for g in self.config.groups:
            program = self._group_program(g, now) if now else None
            next_switch = None
            if now is not None and self.mode is not ClockMode.INVALID:
                safe = self.config.safe_program if self.mode is ClockMode.UNSYNCHRONISED else None
                at = self.engine.next_change(g.calendar, now, program=safe)
                next_switch = {"at": at.isoformat(), "local": at.astimezone(self.config.site.timezone).isoformat(),
                               "level_pct": self.engine.program_level_at(self._group_program(g, at), at)}
            groups.append({
                "group": g.name, "level_pct": self.group_levels.get(g.name), "calendar": g.calendar,
                "program": program.name if program else None, "next_switch": next_switch,
                "override": self.overrides[g.name].to_doc() if g.name in self.overrides else None,
            })
        lamps = [
            {
                "lamp": s.name, "group": s.group.name, "target_level_pct": s.target,
                "commanded_level_pct": s.commanded, "readback_level_pct": s.readback, "level_pct": s.actual,
                "power_w": s.power_w, "faults": sorted(s.faults), "burn_total_h": round(s.burn_total_s / 3600, 3),
                "consumed_total_wh": round(s.energy_total_wh, 3),
                "override": override.to_doc() if (override := self.override_of(s.name)) is not None else None,
            }
            for s in self.lamps.values()
        ]
        return {"mode": str(self.mode), "groups": groups, "lamps": lamps}

    # -- the run loop --------------------------------------------------------------------------

    async def run(self, ctx: AgentContext) -> None:
        self._ctx = ctx
        ctx.state_dir.mkdir(parents=True, exist_ok=True)
        self._load()
        self._bind_lamps(ctx)
        ctx.subscribe(self._observe)
        now = ctx.clock.now()
        self._last_sync = self._last_sync or now
        self._next_report = now + timedelta(seconds=self.config.report_interval_s)
        self._next_lamp_report = now + timedelta(seconds=self.config.lamp_report_interval_s)
        self._last_save = now
        force = True  # after a (re)start nothing is known of the lamps: command every one once
        try:
            while True:
                self._changed.clear()
                now = ctx.clock.now()
                self._check_clock(now)
                self._prune_overrides(now)
                await self._apply(now, force=force)
                force = False
                now = ctx.clock.now()
                self._reports(now)
                await self._sleep(ctx.clock, self._next_wake_at(now))
        finally:
            self.idle.clear()
            with contextlib.suppress(OSError):
                self._save()  # a clean stop keeps the totals to the last reading
            with contextlib.suppress(ValueError):
                ctx.observers.remove(self._observe)

    def _running(self) -> AgentContext:
        if self._ctx is None:
            raise LightingError("service", self.name, "not_running", "the lighting service has not started yet")
        return self._ctx

    def _bind_lamps(self, ctx: AgentContext) -> None:
        on_bus: dict[str, LampBus] = {}
        for bus in ctx.buses.values():
            if isinstance(bus, LampBus):
                for lamp in bus.lamps():
                    on_bus[lamp] = bus
        for state in self.lamps.values():
            state.bus = on_bus.get(state.name)
            # the bus's own figure for this lamp, when it has one, beats the group's
            rated = getattr(state.bus, "rated_power_w", None)
            own = rated(state.name) if callable(rated) else None
            if isinstance(own, int | float) and own > 0:
                state.rated_power_w = float(own)
            if state.bus is None:
                ctx.emit(Event(
                    state.name, _ms(ctx.clock.now()), "lamp_unknown", Severity.MAJOR,
                    {"group": state.group.name, "reason": "no lamp bus of this gateway has this lamp"},
                ))

    async def _sleep(self, clock: Clock, when: datetime) -> None:
        if self._changed.is_set():
            return
        sleeper = asyncio.ensure_future(clock.sleep_until(when))
        changed = asyncio.ensure_future(self._changed.wait())
        try:
            await asyncio.sleep(0)  # let the sleeper register with the clock before saying we are idle
            self.next_wake = when
            self.cycles += 1
            self.idle.set()
            await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.idle.clear()
            sleeper.cancel()
            changed.cancel()

    def _next_wake_at(self, now: datetime) -> datetime:
        candidates = [now + timedelta(seconds=MAX_SLEEP_S)]
        if self.mode is ClockMode.INVALID or self.time_sync is not None:
            candidates.append(now + timedelta(seconds=CLOCK_CHECK_S))
        if self.mode is not ClockMode.INVALID:
            safe = self.config.safe_program if self.mode is ClockMode.UNSYNCHRONISED else None
            for g in self.config.groups:
                candidates.append(self.engine.next_change(g.calendar, now, program=safe))
            for o in self.overrides.values():
                candidates += [t for t in (o.start, o.expiry) if t > now]
        candidates += [s.retry_at for s in self.lamps.values() if s.retry_at is not None]
        candidates += [t for t in (self._next_report, self._next_lamp_report) if t is not None]
        return max(min(candidates), now)

    # -- clock health --------------------------------------------------------------------------

    def _check_clock(self, now: datetime) -> None:
        if now.year < EARLIEST_TRUSTED_YEAR:
            mode = ClockMode.INVALID
        elif self.time_sync is None:
            mode = ClockMode.TRUSTED
        elif self.time_sync.is_synchronized():
            self._last_sync = now
            mode = ClockMode.TRUSTED
        elif self._last_sync is not None and (now - self._last_sync).total_seconds() > self.config.clock_lost_after_s:
            mode = ClockMode.UNSYNCHRONISED
        else:
            mode = self.mode if self.mode is not ClockMode.INVALID else ClockMode.TRUSTED
        if mode is self.mode:
            return
        ctx = self._running()
        previous, self.mode = self.mode, mode
        if mode is ClockMode.TRUSTED:
            ctx.emit(Event(CABINET_DEVICE, _ms(now), "clock_restored", Severity.INFO, {"previous": str(previous)}))
            return
        detail: dict[str, Any] = {
            "clock": now.isoformat(),
            "fallback": "100 % at all times" if mode is ClockMode.INVALID else self.config.safe_program.name,
        }
        if mode is ClockMode.UNSYNCHRONISED and self._last_sync is not None:
            detail["last_sync"] = self._last_sync.isoformat()
        severity = Severity.CRITICAL if mode is ClockMode.INVALID else Severity.MAJOR
        ctx.emit(Event(CABINET_DEVICE, _ms(now), str(mode), severity, detail))
        log.warning("lighting falls back (%s): %s", mode, detail)

    # -- levels ----------------------------------------------------------------------------------

    def _group_program(self, group: GroupConfig, now: datetime) -> Program:
        if self.mode is ClockMode.INVALID:
            return DEFAULT_PROGRAM
        if self.mode is ClockMode.UNSYNCHRONISED:
            return self.config.safe_program
        return self.engine.program_for(group.calendar, self.engine.program_day(now))

    def _target(self, state: LampState, group_level: int, now: datetime) -> int:
        if self.mode is ClockMode.INVALID or not self.overrides:
            return group_level  # (overrides are windows of a clock we do not trust)
        override = override_for(self.overrides.values(), state.name, state.group.name, now)
        return override.level if override is not None else group_level

    def _prune_overrides(self, now: datetime) -> None:
        expired = [k for k, o in self.overrides.items() if o.expiry <= now]
        if expired:
            overrides = {k: v for k, v in self.overrides.items() if k not in expired}
            self._save(overrides=overrides)
            self.overrides = overrides
            ctx = self._running()
            for target in expired:
                ctx.emit(Event(target, _ms(now), "override_ended", Severity.INFO, {"via": "lighting", "reason": "expired"}))

    async def _apply(self, now: datetime, *, force: bool) -> None:
        ctx = self._running()
        per_bus: dict[int, tuple[LampBus, list[tuple[LampState, int]]]] = {}
        for g in self.config.groups:
            program = self._group_program(g, now)
            level = self.engine.program_level_at(program, now)
            previous = self.group_levels.get(g.name)
            if previous != level:
                self.group_levels[g.name] = level
                ctx.emit(Event(
                    f"group:{g.name}", _ms(now), "group_level", Severity.INFO,
                    {"level_pct": level, "previous_pct": previous, "program": program.name, "mode": str(self.mode)},
                ))
            for lamp in g.lamps:
                state = self.lamps[lamp]
                state.target = self._target(state, level, now)
                if state.bus is None:
                    continue
                retry_due = state.retry_at is not None and state.retry_at <= now
                if force or retry_due or state.target != state.commanded:
                    per_bus.setdefault(id(state.bus), (state.bus, []))[1].append((state, state.target))
        if per_bus:
            await asyncio.gather(*(self._command(bus, jobs) for bus, jobs in per_bus.values()))

    async def _command(self, bus: LampBus, jobs: list[tuple[LampState, int]]) -> None:
        """Command one bus's lamps in turn (a bus carries one transaction at a time)."""
        ctx = self._running()
        for state, level in jobs:
            try:
                readback = await bus.set_level(state.name, level)
            except (DriverError, OSError, TimeoutError) as exc:
                state.retry_at = ctx.clock.now() + timedelta(seconds=self.config.retry_s)
                if not state.command_failing:
                    state.command_failing = True
                    ctx.emit(Event(
                        state.name, _ms(ctx.clock.now()), "command_failure", Severity.MAJOR,
                        {"level_pct": level, "error": str(exc), "retry_s": self.config.retry_s},
                    ))
                continue
            at = ctx.clock.now()
            state.retry_at = None
            state.command_failing = False
            state.commanded, state.readback, state.commanded_at_ms = level, readback, _ms(at)
            ctx.emit(Sample(state.name, _ms(at), {"commanded_level_pct": level, "level_pct": readback}))
            self._judge_level(state, readback, _ms(at))

    # -- feedback --------------------------------------------------------------------------------

    def _observe(self, record: Record) -> None:
        state = self.lamps.get(record.device)
        if state is None or not isinstance(record, Sample):
            return
        values = record.values
        if "commanded_level_pct" in values or "burn_h" in values:
            return  # our own samples
        ts = record.ts_ms
        level, power, energy = _number(values.get("level_pct")), _number(values.get("power_w")), _number(
            values.get("energy_wh"))
        on = values.get("lamp_on")
        state.readings += 1
        self._account(state, ts, energy)
        if level is not None:
            state.actual = round(level)
        if power is not None:
            state.power_w = power
        if type(on) is bool:
            state.lit = on
        elif power is not None:
            state.lit = power >= FAILURE_POWER_RATIO * state.rated_power_w
        elif level is not None:
            state.lit = level > 0
        else:
            return  # nothing to judge the lamp on
        # after a command the lamp may still be fading to its new level: judge it once settled
        if ts >= state.commanded_at_ms + self.config.fault_settle_s * 1000:
            self._judge(state, ts)

    def _account(self, state: LampState, ts: int, energy: float | None) -> None:
        """Add what the lamp did since its previous reading to its burn time and energy (UTC instants).

        Burn time counts the lit state of the previous reading, and not across a silence longer than
        `max_reading_gap_s`; an energy counter's difference is exact over any gap.
        """
        last = state.last_ts_ms
        if last is not None and ts > last:
            dt = (ts - last) / 1000
            bridged = dt <= self.config.max_reading_gap_s
            if state.lit and bridged:
                state.burn_s += dt
                state.burn_total_s += dt
                self._cabinet_burn_s += dt
            used = 0.0
            if energy is not None and state.last_energy_wh is not None:
                delta = energy - state.last_energy_wh
                # a replaced driver restarts its counter: what it shows is what it used since
                used = delta if delta >= 0 else energy
                if used > self._most_energy_wh(state, ts):
                    self._running().emit(Event(state.name, ts, "counter_implausible", Severity.MAJOR, {
                        "quantity": "energy_wh", "previous": state.last_energy_wh, "current": energy,
                        "rated_power_w": state.rated_power_w, "elapsed_ms": ts - (state.last_energy_ts_ms or ts)}))
                    used = 0.0
            elif energy is None and state.power_w is not None and bridged:
                used = state.power_w * dt / 3600
            state.energy_wh += used
            state.energy_total_wh += used
            self._cabinet_energy_wh += used
        if last is None or ts >= last:
            state.last_ts_ms = ts
            if energy is not None:
                state.last_energy_wh = energy
                state.last_energy_ts_ms = ts

    @staticmethod
    def _most_energy_wh(state: LampState, ts: int) -> float:
        """The most the lamp can have drawn since its counter's previous reading: twice its rated power
        over the time, plus a minute and a watt-hour for a counter that is read late and counts whole Wh.
        More is a garbled register (a counter read as 1.7e308), not consumption."""
        elapsed_s = (ts - (state.last_energy_ts_ms or ts)) / 1000 + 60
        return 2 * state.rated_power_w * elapsed_s / 3600 + 1

    def _judge_level(self, state: LampState, level: int | None, ts: int) -> None:
        """The read-back of a command: a controller that does not take the level is a dimming failure."""
        if level is None or state.commanded is None:
            return
        wrong = state.commanded > 0 and abs(level - state.commanded) > self._level_tolerance
        if wrong != (Fault.DIMMING_FAILURE in state.faults):
            self._set_fault(state, Fault.DIMMING_FAILURE, wrong, ts, {"commanded_pct": state.commanded, "level_pct": level})

    def _judge(self, state: LampState, ts: int) -> None:
        faults = state.faults
        commanded = state.commanded or 0
        dark = state.power_w < failure_power_w(state.rated_power_w, commanded) if state.power_w is not None \
            else not state.lit
        failure = commanded > 0 and dark
        if failure != (Fault.LAMP_FAILURE in faults):
            self._set_fault(state, Fault.LAMP_FAILURE, failure, ts,
                            {"commanded_pct": state.commanded, "power_w": state.power_w,
                             "rated_power_w": state.rated_power_w})
        if not failure:  # a dark lamp's level says nothing about its dimming
            wrong = commanded > 0 and state.actual is not None and abs(state.actual - commanded) > self._level_tolerance
            if wrong != (Fault.DIMMING_FAILURE in faults):
                self._set_fault(state, Fault.DIMMING_FAILURE, wrong, ts, {"commanded_pct": commanded, "level_pct": state.actual})
        burner = state.target == 0 and bool(state.lit)
        if burner != (Fault.DAY_BURNER in faults):
            self._set_fault(state, Fault.DAY_BURNER, burner, ts,
                            {"target_pct": state.target, "power_w": state.power_w, "level_pct": state.actual})

    def _set_fault(self, state: LampState, fault: Fault, present: bool, ts: int, detail: dict[str, Any]) -> None:
        ctx = self._running()
        if present:
            state.faults.add(fault)
            ctx.emit(Event(state.name, ts, str(fault), _FAULT_SEVERITY[fault], {"group": state.group.name, **detail}))
        else:
            state.faults.discard(fault)
            ctx.emit(Event(state.name, ts, "lamp_restored", Severity.INFO, {"group": state.group.name, "cleared": str(fault)}))

    # -- reports and state -------------------------------------------------------------------------

    def _reports(self, now: datetime) -> None:
        ctx = self._running()
        ts = _ms(now)
        if self._next_lamp_report is not None and now >= self._next_lamp_report:
            for s in self.lamps.values():
                if s.readings:
                    ctx.emit(Sample(s.name, ts, {"burn_h": round(s.burn_s / 3600, 4), "consumed_wh": round(s.energy_wh, 3)}))
                s.burn_s = s.energy_wh = 0.0
                s.readings = 0
            self._next_lamp_report = now + timedelta(seconds=self.config.lamp_report_interval_s)
        if self._next_report is not None and now >= self._next_report:
            ctx.emit(Sample(CABINET_DEVICE, ts, {
                "burn_h": round(self._cabinet_burn_s / 3600, 4), "consumed_wh": round(self._cabinet_energy_wh, 3),
                "burn_total_h": round(sum(s.burn_total_s for s in self.lamps.values()) / 3600, 4),
                "consumed_total_wh": round(sum(s.energy_total_wh for s in self.lamps.values()), 3),
                "lamps": len(self.lamps),
                "lamps_failed": sum(1 for s in self.lamps.values() if Fault.LAMP_FAILURE in s.faults),
            }))
            self._cabinet_burn_s = self._cabinet_energy_wh = 0.0
            self._next_report = now + timedelta(seconds=self.config.report_interval_s)
        if self._last_save is None or (now - self._last_save).total_seconds() >= STATE_SAVE_S:
            self._save()
            self._last_save = now

    def _state_path(self) -> Path:
        return self._running().state_dir / STATE_FILE

    def _save(self, *, overrides: dict[str, Override] | None = None, programs: ProgramSet | None = None) -> None:
        """Write the whole state with the given replacements; the caller swaps them in only if this succeeded."""
        overrides = self.overrides if overrides is None else overrides
        pushed = programs if programs is not None else (self.programs if self._pushed else None)
        doc = {
            "version": STATE_VERSION,
            "config_programs": _fingerprint(self.config.programs),
            "programs": pushed.to_doc() if pushed is not None else None,
            "overrides": [o.to_doc() for o in overrides.values()],
            "last_sync": self._last_sync.isoformat() if self._last_sync else None,
            "lamps": {
                s.name: {"burn_total_s": s.burn_total_s, "energy_total_wh": s.energy_total_wh,
                         "faults": sorted(s.faults) if s.faults else []}
                for s in self.lamps.values()
            },
        }
        write_json_atomic(self._state_path(), doc)

    def _load(self) -> None:
        path = self._state_path()
        ctx = self._running()
        try:
            doc = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, orjson.JSONDecodeError) as exc:
            self._state_unreadable(path, f"cannot read: {exc}")
            return
        try:
            if doc.get("version") != STATE_VERSION:
                raise ValueError(f"version {doc.get('version')!r}, expected {STATE_VERSION}")
            self.overrides = {o.target: o for o in map(Override.from_doc, doc["overrides"]) if o.target in self._targets()}
            for name, lamp in doc.get("lamps", {}).items():
                if name in self.lamps:
                    self.lamps[name].burn_total_s = float(lamp["burn_total_s"])
                    self.lamps[name].energy_total_wh = float(lamp["energy_total_wh"])
                    self.lamps[name].faults = {f for f in lamp["faults"] if f in Fault.__members__.values()}
            if doc.get("last_sync"):
                self._last_sync = datetime.fromisoformat(doc["last_sync"]).astimezone(UTC)
        except (KeyError, TypeError, ValueError) as exc:
            self._state_unreadable(path, f"unusable: {exc}")
            return
        pushed = doc.get("programs")
        if pushed is None:
            return
        if doc.get("config_programs") != _fingerprint(self.config.programs):
            # the program files changed since the push: the technician's newer files win
            ctx.emit(Event(CABINET_DEVICE, _ms(ctx.clock.now()), "programs_push_superseded", Severity.INFO,
                           {"reason": "the configured program files changed after the last push"}))
            return
        try:
            programs = parse_program_set(pushed, "saved push", self.config.limits)
            check_calendars(programs, self.config.groups)
        except LightingError as exc:
            self._state_unreadable(path, f"saved programs refused: {exc}")
            return
        self.programs = programs
        self.engine = Engine(programs, self.config.site)
        self._pushed = True

    def _targets(self) -> set[str]:
        return set(self.lamps) | {g.name for g in self.config.groups}

    def _state_unreadable(self, path: Path, reason: str) -> None:
        ctx = self._running()
        with contextlib.suppress(OSError):
            path.replace(path.with_name(path.name + ".bad"))
        log.error("lighting state %s %s; starting from the configured programs", path, reason)
        ctx.emit(Event(CABINET_DEVICE, _ms(ctx.clock.now()), "lighting_state_lost", Severity.MAJOR,
                       {"file": str(path), "reason": reason}))


def make_service(config: LightingConfig) -> LightingService:
    """The agent's factory (edge_agent.agent.SERVICES)."""
    return LightingService(config, time_sync=KernelTimeSync() if config.time_source == "kernel" else None)
