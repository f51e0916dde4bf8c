"""The lighting service: runs the programs on the gateway, on time, with or without an uplink.

It schedules: wakes at each switch instant (and at override starts and expiries) through the
injected clock and has the lamps whose level changes commanded, bus by bus in parallel. On
start it goes straight to the level the program dictates now: a reboot at 23:30 in Dijon
commands 70 %, it never replays the evening. The rest is done by its parts:

- `lamps.py`: what is known of each lamp; `commander.py`: the commands;
- `faults.py`: lamp_failure, dimming_failure, day_burner and lamp_restored from the readings;
- `energy.py`: burn hours and energy per cabinet (hourly) and per lamp (daily);
- `state.py`: overrides, a pushed program set, totals and open faults in `state_dir/lighting.json`,
  so they survive a power cut or a kill -9;
- `clocktrust.py`: a clock before 2020 keeps the lamps at 100 %, a time source lost longer than
  `clock_lost_after_s` runs the safe all-night program;
- `pacing.py`: how it waits for its next instant.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from drivers.base import LampBus
from drivers.model import Event, Record, Sample, Severity
from edge_agent.clock import epoch_ms
from edge_agent.lighting.clocktrust import ClockMode, ClockTrust, TimeSync
from edge_agent.lighting.commander import Commander
from edge_agent.lighting.config import GroupConfig, LightingConfig, check_calendars
from edge_agent.lighting.energy import EnergyAccount
from edge_agent.lighting.engine import Engine, override_for
from edge_agent.lighting.faults import FAILURE_POWER_RATIO, FaultJudge
from edge_agent.lighting.lamps import LampState, bind_lamps
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
from edge_agent.lighting.pacing import Waiter
from edge_agent.lighting.state import STATE_FILE, StateFile
from edge_agent.service import AgentContext
from edge_agent.timesync import KernelTimeSync

MAX_SLEEP_S = 3600.0
#: energy totals and open faults are written at least this often (and at every control change and stop);
#: a power cut loses at most this much of the local totals, the journalled reports keep every figure
STATE_SAVE_S = 6 * 3600.0


def _number(value: Any) -> float | None:
    """A reading's number (not a bool, not None, not a string)."""
    return float(value) if type(value) in (int, float) else None


class LightingService:
    """`Service` of the agent. Control plane methods: set_override, clear_override, push_programs."""

    name = "lighting"

    def __init__(self, config: LightingConfig, *, time_sync: TimeSync | None = None,
                 waiter: Waiter | None = None) -> None:
        self.config = config
        self.programs = config.programs
        self.engine = Engine(config.programs, config.site)
        self.overrides: dict[str, Override] = {}
        self.lamps: dict[str, LampState] = {
            lamp: LampState(lamp, g, g.rated_power_w) for g in config.groups for lamp in g.lamps
        }
        self.group_levels: dict[str, int] = {}
        self.clock_trust = ClockTrust(time_sync, config.clock_lost_after_s, config.safe_program.name)
        self.faults = FaultJudge(config.dimming_tolerance_pct)
        self.energy = EnergyAccount(config)
        self.commander = Commander(config.retry_s, self.faults)
        self.waiter = waiter or Waiter()
        self._ctx: AgentContext | None = None
        self._state: StateFile | None = None
        self._changed = asyncio.Event()
        self._last_save: datetime | None = None
        self._pushed = False

    @property
    def mode(self) -> ClockMode:
        return self.clock_trust.mode

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
        self._use_programs(programs)
        self._changed.set()

    def snapshot(self) -> dict[str, Any]:
        """Groups (level now, program, override) and lamps (commanded vs actual, faults), for people and the API."""
        now = self._ctx.clock.now() if self._ctx else None
        groups = [self._group_doc(g, now) for g in self.config.groups]
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

    def _group_doc(self, g: GroupConfig, now: datetime | None) -> dict[str, Any]:
        program = self._group_program(g, now) if now else None
        next_switch = None
        if now is not None and self.mode is not ClockMode.INVALID:
            safe = self.config.safe_program if self.mode is ClockMode.UNSYNCHRONISED else None
            at = self.engine.next_change(g.calendar, now, program=safe)
            next_switch = {"at": at.isoformat(), "local": at.astimezone(self.config.site.timezone).isoformat(),
                           "level_pct": self.engine.program_level_at(self._group_program(g, at), at)}
        return {
            "group": g.name, "level_pct": self.group_levels.get(g.name), "calendar": g.calendar,
            "program": program.name if program else None, "next_switch": next_switch,
            "override": self.overrides[g.name].to_doc() if g.name in self.overrides else None,
        }

    # -- the run loop --------------------------------------------------------------------------

    async def run(self, ctx: AgentContext) -> None:
        self._ctx = ctx
        ctx.state_dir.mkdir(parents=True, exist_ok=True)
        self._state = StateFile(ctx.state_dir / STATE_FILE, self.config)
        self._load(ctx, self._state)
        for state in bind_lamps(self.lamps.values(), ctx.buses.values()):
            ctx.emit(Event(
                state.name, epoch_ms(ctx.clock.now()), "lamp_unknown", Severity.MAJOR,
                {"group": state.group.name, "reason": "no lamp bus of this gateway has this lamp"},
            ))
        ctx.subscribe(self._observe)
        now = ctx.clock.now()
        self.clock_trust.last_sync = self.clock_trust.last_sync or now
        self.energy.start(now)
        self._last_save = now
        force = True  # after a (re)start nothing is known of the lamps: command every one once
        try:
            while True:
                self._changed.clear()
                now = ctx.clock.now()
                if (event := self.clock_trust.check(now)) is not None:
                    ctx.emit(event)
                self._prune_overrides(now)
                await self._apply(now, force=force)
                force = False
                now = ctx.clock.now()
                self._reports(now)
                await self.waiter.wait(ctx.clock, self._next_wake_at(now), self._changed)
        finally:
            with contextlib.suppress(OSError):
                self._save()  # a clean stop keeps the totals to the last reading
            with contextlib.suppress(ValueError):
                ctx.observers.remove(self._observe)

    def _running(self) -> AgentContext:
        if self._ctx is None:
            raise LightingError("service", self.name, "not_running", "the lighting service has not started yet")
        return self._ctx

    def _next_wake_at(self, now: datetime) -> datetime:
        candidates = [now + timedelta(seconds=MAX_SLEEP_S)]
        if (check := self.clock_trust.next_check(now)) is not None:
            candidates.append(check)
        if self.mode is not ClockMode.INVALID:
            safe = self.config.safe_program if self.mode is ClockMode.UNSYNCHRONISED else None
            for g in self.config.groups:
                candidates.append(self.engine.next_change(g.calendar, now, program=safe))
            for o in self.overrides.values():
                candidates += [t for t in (o.start, o.expiry) if t > now]
        candidates += [s.retry_at for s in self.lamps.values() if s.retry_at is not None]
        candidates += self.energy.next_instants()
        return max(min(candidates), now)

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
                ctx.emit(Event(target, epoch_ms(now), "override_ended", Severity.INFO,
                               {"via": "lighting", "reason": "expired"}))

    async def _apply(self, now: datetime, *, force: bool) -> None:
        ctx = self._running()
        per_bus: dict[int, tuple[LampBus, list[tuple[LampState, int]]]] = {}
        for g in self.config.groups:
            program = self._group_program(g, now)
            level = self.engine.program_level_at(program, now)
            previous = self.group_levels.get(g.name)
            if previous != level:
                self.group_levels[g.name] = level
                # the next switch point, which only the engine can tell (calendar, sun): the control
                # centre shows it on a lamp's page from this event
                after = self.engine.next_change(None, now, program)
                ctx.emit(Event(
                    f"group:{g.name}", epoch_ms(now), "group_level", Severity.INFO,
                    {"level_pct": level, "previous_pct": previous, "program": program.name, "mode": str(self.mode),
                     "next_switch_ms": epoch_ms(after), "next_level_pct": self.engine.program_level_at(program, after)},
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
            await asyncio.gather(*(self.commander.command(bus, jobs, ctx.clock, ctx.emit)
                                   for bus, jobs in per_bus.values()))

    # -- feedback --------------------------------------------------------------------------------

    def _observe(self, record: Record) -> None:
        state = self.lamps.get(record.device)
        if state is None or not isinstance(record, Sample):
            return
        values = record.values
        if "commanded_level_pct" in values or "burn_h" in values:
            return  # our own samples
        ctx = self._running()
        ts = record.ts_ms
        level, power, energy = _number(values.get("level_pct")), _number(values.get("power_w")), _number(
            values.get("energy_wh"))
        on = values.get("lamp_on")
        state.readings += 1
        for event in self.energy.add(state, ts, energy):
            ctx.emit(event)
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
            for event in self.faults.judge(state, ts):
                ctx.emit(event)

    # -- reports and state -------------------------------------------------------------------------

    def _reports(self, now: datetime) -> None:
        ctx = self._running()
        for sample in self.energy.reports(now, self.lamps.values()):
            ctx.emit(sample)
        if self._last_save is None or (now - self._last_save).total_seconds() >= STATE_SAVE_S:
            self._save()
            self._last_save = now

    def _save(self, *, overrides: dict[str, Override] | None = None, programs: ProgramSet | None = None) -> None:
        """Write the whole state with the given replacements; the caller swaps them in only if this succeeded."""
        if self._state is None:
            raise LightingError("service", self.name, "not_running", "the lighting service has not started yet")
        pushed = programs if programs is not None else (self.programs if self._pushed else None)
        self._state.save(overrides=(self.overrides if overrides is None else overrides).values(), pushed=pushed,
                         last_sync=self.clock_trust.last_sync, lamps=self.lamps.values())

    def _load(self, ctx: AgentContext, state: StateFile) -> None:
        loaded = state.load(self.lamps, epoch_ms(ctx.clock.now()))
        self.overrides = loaded.overrides
        if loaded.last_sync is not None:
            self.clock_trust.last_sync = loaded.last_sync
        if loaded.programs is not None:
            self._use_programs(loaded.programs)
        for event in loaded.events:
            ctx.emit(event)

    def _use_programs(self, programs: ProgramSet) -> None:
        self.programs = programs
        self.engine = Engine(programs, self.config.site)
        self._pushed = True


def make_service(config: LightingConfig) -> LightingService:
    """The agent's factory (edge_agent.agent.SERVICES)."""
    return LightingService(config, time_sync=KernelTimeSync() if config.time_source == "kernel" else None)
