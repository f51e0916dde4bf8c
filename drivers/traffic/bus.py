"""The agent's side of one signal controller on Modbus TCP (bus type "signals").

What it does, each `interval_s`: keeps central control alive (writes the backup time every
`refresh_s`; if the agent stops, the controller returns to its own tables after
`backup_time_s`), reads the controller's state, journals a Sample when mode, plan, stage or
control change, and an Event at once for each alarm that appears or clears. It uploads its
intersection's plans and tables only after `validate.py` accepted them, and only when the
controller does not already hold them. It asks for the plan and position the time-of-day
table gives (or a central override) only when the controller heads elsewhere.

What it never does: set a signal-group colour (the map has no such register), restart a
controller after a safety fault (no register for that either: it is done on site), command
a controller in failure mode, queue a command while the link is down, or carry out a command
whose validity window has passed. A central override lost with the link is dropped, not
replayed: the central must send it again.

Config keys ([[bus]] table): name, type = "signals", host, port (502), unit (1), intersection
(TOML path, relative to the agent config), timezone ("Europe/Paris"), interval_s (1),
backup_time_s (60), refresh_s (backup_time_s / 3).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drivers.base import BusContext, DeviceState
from drivers.conf import ConfigTable
from drivers.errors import ConfigError, DecodeError, DeviceError, DriverError
from drivers.modbus.link import ExceptionReply, LinkDown, LinkError, NoReply, tcp_link
from drivers.model import Event, Record, RecordSink, Sample, Severity, Value
from drivers.registry import Driver
from drivers.traffic.config import Timings, load_timings
from drivers.traffic.counter import CountReader
from drivers.traffic.model import Position
from drivers.traffic.registers import (
    HR_COMMIT,
    HR_CONTROL,
    HR_PLAN,
    HR_POSITION,
    HR_UPLOAD,
    IR_COUNT,
    MAX_TIMEOUT_S,
    POSITION_CODES,
    WRITE_CHUNK,
    Alarm,
    ControllerState,
    Mode,
    UploadStatus,
    crc32_words,
    decode_state,
    encode_timings,
    intersection_fingerprint,
)
from drivers.traffic.tables import active_at, next_switch_after, utc_now
from drivers.traffic.validate import Violation, validate_timings

log = logging.getLogger("citygate.traffic")

Clock = Callable[[], datetime]

#: Event code and severity of each alarm bit.
ALARM_EVENTS: Mapping[Alarm, tuple[str, Severity]] = {
    Alarm.HARDWARE: ("hardware_error", Severity.CRITICAL),
    Alarm.CONFIGURATION: ("configuration_error", Severity.CRITICAL),
    Alarm.SAFETY: ("safety_error", Severity.CRITICAL),
    Alarm.DEADLOCK: ("deadlock", Severity.CRITICAL),
    Alarm.DOOR_OPEN: ("door_open", Severity.MINOR),
    Alarm.LAMP_FAILURE: ("lamp_failure", Severity.MAJOR),
}
REQUEST_TIMEOUT_S = 2.0
#: Controller and agent clocks may differ this much before it matters (and is reported).
CLOCK_TOLERANCE_S = 30
BACKOFF_MAX_S = 30.0
_NOT_IN_CONTROL = 0x07
_DEVICE_FAILURE = 0x04


class CommandRefused(DriverError):
    """A central command the driver will not carry out (expired, unknown plan, controller in failure)."""


class PlanRefused(DriverError):
    """Plans or tables refused, by the agent's validator or by the controller's own check."""

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__("; ".join(v.message for v in violations))
        self.violations = violations


@dataclass(frozen=True)
class SignalsConfig:
    name: str
    host: str
    port: int
    unit: int
    intersection: Path
    timezone: ZoneInfo
    interval_s: float
    backup_time_s: int
    refresh_s: float
    timings: Timings  # the intersection file, loaded and parsed with the table
    counts_cursor: Path | None = None  # where the last journalled counting interval is kept (drivers/traffic/counter.py)


_KEYS = ("name", "type", "host", "port", "unit", "intersection", "timezone", "interval_s", "backup_time_s", "refresh_s")


def parse_config(raw: Mapping[str, Any], ctx: BusContext) -> SignalsConfig:
    t = ConfigTable(dict(raw), ctx.key)
    for key in raw:
        if key not in _KEYS:
            raise ConfigError(f"{ctx.key}.{key}", f"unknown key; known: {', '.join(_KEYS)}")
    name = t.text("name", required=True)
    if t.text("type", required=True) != "signals":
        raise ConfigError(f"{ctx.key}.type", "expected 'signals'")
    host = t.text("host", required=True)
    port = t.integer("port", 502, lo=1, hi=65535)
    unit = t.integer("unit", 1, lo=1, hi=247)
    path = Path(t.text("intersection", required=True))
    tz_name = t.text("timezone", "Europe/Paris")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{ctx.key}.timezone", f"unknown time zone {tz_name!r}") from None
    interval = t.number("interval_s", 1.0, lo=0.01, hi=60.0)
    backup = t.integer("backup_time_s", 60, lo=2, hi=MAX_TIMEOUT_S)
    refresh = t.number("refresh_s", backup / 3, lo=0.01, hi=float(MAX_TIMEOUT_S))
    if refresh >= backup:
        raise ConfigError(f"{ctx.key}.refresh_s", f"{refresh:g} s must be shorter than backup_time_s ({backup} s)")
    t.done()
    path = path if path.is_absolute() else ctx.config_dir / path
    try:
        timings = load_timings(path)
    except ConfigError as exc:
        raise ConfigError(f"{ctx.key}.intersection", f"{path}: {exc}") from None
    cursor = None if ctx.state_dir is None else ctx.state_dir / f"signals-{re.sub(r'[^A-Za-z0-9._-]', '_', name)}.counts.json"
    return SignalsConfig(name, host, port, unit, path, tz, interval, backup, refresh, timings, cursor)


def build(cfg: SignalsConfig, *, now: Clock = utc_now) -> SignalsBus:
    """The bus of a parsed `signals` table; it connects at its first poll."""
    return SignalsBus(cfg, cfg.timings, now=now)


@dataclass
class _Override:
    value: int | Position
    until: datetime


class SignalsBus:
    """drivers.base.Bus for one signal controller."""

    def __init__(self, cfg: SignalsConfig, timings: Timings, *, now: Clock = utc_now) -> None:
        self.name = cfg.name
        self.cfg = cfg
        self._now = now
        # the run loop owns the backoff (reconnect_s 0): the link connects on demand
        self._link = tcp_link(cfg.host, cfg.port, timeout_s=REQUEST_TIMEOUT_S, reconnect_s=(0.0, 0.0))
        self._lock = asyncio.Lock()  # one exchange (a poll, a command, an upload) at a time
        self._timings = timings
        self._violations = validate_timings(timings)
        self._words = encode_timings(timings) if not self._violations else []
        self._fingerprint = intersection_fingerprint(timings.intersection)
        self._state = DeviceState(device=cfg.name, bus=cfg.name, address=f"{cfg.host}:{cfg.port} unit {cfg.unit}")
        self._sink: RecordSink | None = None
        self._last: ControllerState | None = None
        self._last_key: tuple[object, ...] | None = None
        self._alarms: Alarm | None = None
        self._lamps = 0
        self._refreshed: datetime | None = None
        self._plan_override: _Override | None = None
        self._position_override: _Override | None = None
        self._in_sync = False  # the controller holds our validated tables
        self._refused_reported = False
        self._link_reported = False
        self._skew_reported = False
        self.counts = CountReader(cfg.name, timings, cfg.timezone, read=self._read_inputs, emit=self._emit,
                                   cursor_path=cfg.counts_cursor) if timings.detectors else None

    # ---- what the agent and the control plane call --------------------------------------

    def states(self) -> list[DeviceState]:
        return [self._state]

    @property
    def controller(self) -> ControllerState | None:
        """The controller's state at the last poll."""
        return self._last

    @property
    def timings(self) -> Timings:
        return self._timings

    async def read(self, device: str) -> Sample:
        if device != self.name:
            raise DeviceError(device, f"not on bus {self.name}")
        async with self._lock:
            state = await self._read_state()
        return Sample(self.name, self._ts(), _values(state))

    async def select_plan(self, plan_id: int, *, timeout_s: int, expires_at: datetime) -> None:
        """Run `plan_id` for `timeout_s` (the controller reverts by itself), unless the command has expired."""
        self._check_command(f"plan {plan_id}", timeout_s, expires_at)
        if self._timings.plan(plan_id) is None or not self._in_sync:
            raise CommandRefused(f"plan {plan_id} is not in the validated tables the controller holds")
        async with self._lock:
            now = self._check_command(f"plan {plan_id}", timeout_s, expires_at)  # still valid after waiting for the link
            await self._command(HR_PLAN, [plan_id, timeout_s], f"select plan {plan_id}", now)
        self._plan_override = _Override(plan_id, now + timedelta(seconds=timeout_s))
        self._emit(Event(self.name, self._ts(), "plan_selected", Severity.INFO, {"plan": plan_id, "timeout_s": timeout_s}))

    async def set_position(self, position: Position | str, *, timeout_s: int, expires_at: datetime) -> None:
        """Normal, yellow flash or dark for `timeout_s` (the controller reverts by itself), unless expired."""
        try:
            pos = Position(position)
        except ValueError:
            raise CommandRefused(f"unknown position {position!r}: normal, yellow_flash or dark") from None
        self._check_command(str(pos), timeout_s, expires_at)
        async with self._lock:
            now = self._check_command(str(pos), timeout_s, expires_at)  # still valid after waiting for the link
            await self._command(HR_POSITION, [POSITION_CODES[pos], timeout_s], f"position {pos}", now)
        self._position_override = _Override(pos, now + timedelta(seconds=timeout_s))
        self._emit(Event(self.name, self._ts(), "position_commanded", Severity.INFO, {"position": str(pos), "timeout_s": timeout_s}))

    async def upload(self, timings: Timings) -> None:
        """Validate, then upload plans and tables; PlanRefused (with the reasons) if the validator or the controller says no."""
        violations = validate_timings(timings)
        if intersection_fingerprint(timings.intersection) != self._fingerprint:
            violations.append(Violation(
                "intersection_mismatch",
                f"tables made for intersection {timings.intersection.id!r} (another conflict matrix), "
                f"this controller runs {self._timings.intersection.id!r}",
            ))
        if violations:
            self._emit_refused("agent", violations)
            raise PlanRefused(violations)
        words = encode_timings(timings)
        async with self._lock:
            await self._refresh(self._now())
            await self._send_block(words)
        self._timings, self._words, self._violations = timings, words, []
        self._refused_reported = False
        self._plan_override = None

    async def aclose(self) -> None:
        async with self._lock:
            await self._link.aclose()

    # ---- the poller ---------------------------------------------------------------------

    async def run(self, sink: RecordSink) -> None:
        self._sink = sink
        backoff = self.cfg.interval_s
        while True:
            try:
                async with self._lock:
                    await self._tick()
                    if self.counts is not None:
                        await self.counts.poll(self._last.clock_s if self._last is not None else None)
                self._link_ok()
                backoff = self.cfg.interval_s
            except (LinkDown, NoReply) as exc:  # no connection, or a controller that no longer answers
                self._link_lost(exc)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                await asyncio.sleep(backoff)
                continue
            except DriverError as exc:
                # The controller refused or garbled something: journalled, and the poll goes on.
                self._fault(exc)
            await asyncio.sleep(self.cfg.interval_s)

    async def _tick(self) -> None:
        now = self._now()
        await self._refresh(now)
        state = await self._read_state()
        self._observe(state)
        if state.fingerprint != self._fingerprint:
            self._in_sync = False
            self._report_refused("agent", [Violation(
                "intersection_mismatch",
                f"controller holds another intersection (fingerprint {state.fingerprint:08x}), "
                f"expected {self._timings.intersection.id!r} ({self._fingerprint:08x}): nothing uploaded or commanded",
            )])
            return
        if self._violations:
            self._in_sync = False
            self._report_refused("agent", self._violations)
            return
        if state.table_crc != crc32_words(self._words):
            self._in_sync = False
            if not self._refused_reported:
                try:
                    await self._send_block(self._words)
                except PlanRefused:
                    return
                state = await self._read_state()
            else:
                return
        self._in_sync = True
        if state.mode is not Mode.FAILURE:
            await self._follow_tables(now, state)

    async def _follow_tables(self, now: datetime, state: ControllerState) -> None:
        """Ask for what the table (or a live central override) gives, only where the controller heads elsewhere."""
        tz = self.cfg.timezone
        schedule = self._timings.schedule
        active = active_at(schedule, now, tz)
        nxt = next_switch_after(schedule, now, tz)
        table_left = _seconds(nxt - now) if nxt is not None else MAX_TIMEOUT_S

        # Around a switch point the two clocks may disagree by a few seconds: the controller's own
        # table switches then, and correcting it would flip it back and forth.
        settled = (now - active.since).total_seconds() >= CLOCK_TOLERANCE_S and table_left >= CLOCK_TOLERANCE_S
        plan = self._live(self._plan_override, now, state.plan_target, "plan")
        if plan is None and settled and active.plan is not None and state.plan_target != active.plan:
            await self._command(HR_PLAN, [active.plan, table_left], f"table plan {active.plan}", now)
        position = self._live(self._position_override, now, state.position_target, "position")
        if position is None and settled and state.position_target is not active.position:
            code = POSITION_CODES[active.position]
            await self._command(HR_POSITION, [code, table_left], f"table position {active.position}", now)

    def _live(self, override: _Override | None, now: datetime, target: object, what: str) -> _Override | None:
        """A central override still in force; one the controller no longer shows is dropped, never sent again."""
        if override is None:
            return None
        if now >= override.until:
            self._clear_override(what)
            return None
        if target != override.value:
            self._clear_override(what)
            self._emit(Event(self.name, self._ts(), "override_dropped", Severity.MINOR,
                             {"what": what, "value": str(override.value), "reason": "controller no longer runs it"}))
            return None
        return override

    def _clear_override(self, what: str) -> None:
        if what == "plan":
            self._plan_override = None
        else:
            self._position_override = None

    async def _refresh(self, now: datetime) -> None:
        if self._refreshed is None or (now - self._refreshed).total_seconds() >= self.cfg.refresh_s:
            await self._write(HR_CONTROL, [self.cfg.backup_time_s])
            self._refreshed = now

    async def _command(self, address: int, values: list[int], what: str, now: datetime) -> None:
        await self._refresh(now)
        try:
            await self._write(address, values)
        except ExceptionReply as exc:
            if exc.code == _NOT_IN_CONTROL:
                # The controller dropped our control (backup time ran out): take it again, once.
                self._refreshed = None
                await self._refresh(now)
                await self._write(address, values)
            elif exc.code == _DEVICE_FAILURE:
                raise CommandRefused(f"{what}: controller in failure mode") from None
            else:
                raise

    async def _send_block(self, words: list[int]) -> None:
        for offset in range(0, len(words), WRITE_CHUNK):
            await self._write(HR_UPLOAD + offset, words[offset : offset + WRITE_CHUNK])
        crc = crc32_words(words)
        try:
            await self._write(HR_COMMIT, [len(words), crc >> 16, crc & 0xFFFF])
        except ExceptionReply:
            state = await self._read_state()
            refusal = state.refusal if state.upload_status is UploadStatus.REFUSED else None
            detail = (
                f"code {refusal.code.name.lower()}, plan {refusal.plan}, groups {refusal.group_a}/{refusal.group_b}, "
                f"required {refusal.required}, actual {refusal.actual}" if refusal else "no detail"
            )
            violations = [Violation("controller_refused", f"the controller refused the tables: {detail}")]
            self._report_refused("controller", violations)
            raise PlanRefused(violations) from None
        self._emit(Event(self.name, self._ts(), "upload_accepted", Severity.INFO, {"words": len(words), "crc32": f"{crc:08x}"}))

    async def _read_state(self) -> ControllerState:
        registers = await self._link.read(self.cfg.unit, 4, 0, IR_COUNT)
        try:
            return decode_state(list(registers))
        except DecodeError as exc:
            raise DeviceError(self.cfg.name, f"state block: {exc}") from None

    async def _read_inputs(self, address: int, count: int) -> Sequence[int]:
        return await self._link.read(self.cfg.unit, 4, address, count)

    async def _write(self, address: int, values: list[int]) -> None:
        await self._link.write(self.cfg.unit, address, values, multiple=True)

    # ---- bookkeeping ----------------------------------------------------------------------

    def _check_command(self, what: str, timeout_s: int, expires_at: datetime) -> datetime:
        now = self._now()
        if expires_at.tzinfo is None:
            raise CommandRefused(f"{what}: expires_at must be an aware instant")
        if now >= expires_at:
            self._emit(Event(self.name, self._ts(), "command_refused", Severity.MINOR,
                             {"command": what, "reason": "expired", "expires_at": expires_at.isoformat()}))
            raise CommandRefused(f"{what}: expired at {expires_at.isoformat()}, not carried out (stale command)")
        if not 1 <= timeout_s <= MAX_TIMEOUT_S:
            raise CommandRefused(f"{what}: timeout {timeout_s} s outside 1..{MAX_TIMEOUT_S}")
        if self._last is not None and self._last.mode is Mode.FAILURE:
            raise CommandRefused(f"{what}: controller in failure mode; the safety fault is cleared on site, not by the agent")
        if not self._link.connected:
            raise LinkDown(f"{self.name}: {what}: link down; the command is not queued")
        return now

    def _observe(self, state: ControllerState) -> None:
        ts = self._ts()
        self._last = state
        values = _values(state)
        self._state.state = "ok"
        self._state.last_ts_ms = ts
        self._state.last_values = values
        self._state.consecutive_failures = 0
        skew = state.clock_s - self._now().timestamp()
        if (abs(skew) > CLOCK_TOLERANCE_S) != self._skew_reported:
            self._skew_reported = not self._skew_reported
            code = "clock_skew" if self._skew_reported else "clock_skew_cleared"
            # The controller runs its own tables on its own clock: a wrong clock runs them at wrong times.
            self._emit(Event(self.name, ts, code, Severity.MINOR if self._skew_reported else Severity.INFO,
                             {"controller_minus_agent_s": round(skew)}))
        key = (state.mode, state.plan, state.stage, state.central)
        if key != self._last_key:
            self._last_key = key
            self._emit(Sample(self.name, ts, values))
        before = self._alarms if self._alarms is not None else Alarm(0)
        for bit, (code, severity) in ALARM_EVENTS.items():
            if bit in state.alarms and bit not in before:
                detail: dict[str, Any] = {"mode": state.mode.name.lower(), "plan": state.plan}
                if bit is Alarm.LAMP_FAILURE:
                    detail["groups"] = self._groups(state.lamp_failures)
                self._emit(Event(self.name, ts, code, severity, detail))
            elif bit in before and bit not in state.alarms:
                self._emit(Event(self.name, ts, f"{code}_cleared", Severity.INFO, {}))
        new_lamps = state.lamp_failures & ~self._lamps
        if self._alarms is not None and new_lamps and Alarm.LAMP_FAILURE in before:
            self._emit(Event(self.name, ts, "lamp_failure", Severity.MAJOR, {"groups": self._groups(new_lamps)}))
        self._lamps = state.lamp_failures
        self._alarms = state.alarms

    def _groups(self, mask: int) -> list[str]:
        return [g.id for i, g in enumerate(self._timings.intersection.groups) if mask >> i & 1]

    def _report_refused(self, by: str, violations: list[Violation]) -> None:
        if not self._refused_reported:
            self._refused_reported = True
            self._emit_refused(by, violations)

    def _emit_refused(self, by: str, violations: list[Violation]) -> None:
        log.warning("%s: plans refused by the %s: %s", self.name, by, "; ".join(v.message for v in violations))
        self._emit(Event(self.name, self._ts(), "upload_refused", Severity.MAJOR,
                         {"by": by, "violations": [v.as_dict() for v in violations]}))

    def _link_lost(self, exc: LinkError) -> None:
        st = self._state
        st.state = "failing"
        st.consecutive_failures += 1
        st.errors["link"] = st.errors.get("link", 0) + 1
        st.last_error = str(exc)
        # Overrides end with the link: after it comes back the central must command again.
        for what, override in (("plan", self._plan_override), ("position", self._position_override)):
            if override is not None:
                self._clear_override(what)
                self._emit(Event(self.name, self._ts(), "override_dropped", Severity.MINOR,
                                 {"what": what, "value": str(override.value), "reason": "link lost"}))
        self._refreshed = None
        if not self._link_reported:
            self._link_reported = True
            self._emit(Event(self.name, self._ts(), "communication_failure", Severity.MINOR, {"reason": str(exc)}))

    def _link_ok(self) -> None:
        if self._link_reported:
            self._link_reported = False
            self._emit(Event(self.name, self._ts(), "communication_restored", Severity.INFO, {}))

    def _fault(self, exc: DriverError) -> None:
        st = self._state
        st.state = "failing"
        st.consecutive_failures += 1
        st.errors["exception"] = st.errors.get("exception", 0) + 1
        st.last_error = str(exc)
        log.warning("%s: %s", self.name, exc)

    def _emit(self, record: Record) -> None:
        if self._sink is not None:
            self._sink(record)

    def _ts(self) -> int:
        return int(self._now().timestamp() * 1000)


def _values(state: ControllerState) -> dict[str, Value]:
    return {
        "mode": state.mode.name.lower(),
        "plan": state.plan,
        "stage": state.stage,
        "interstage": state.interstage,
        "cycle_second": state.cycle_second,
        "central": state.central,
        "plan_target": state.plan_target,
        "position_target": str(state.position_target),
        "alarms": int(state.alarms),
    }


def _seconds(delta: timedelta) -> int:
    return max(1, min(MAX_TIMEOUT_S, math.ceil(delta.total_seconds())))


#: The `signals` entry point (pyproject.toml).
DRIVER = Driver(parse=parse_config, build=build)
