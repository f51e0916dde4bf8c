"""A traffic-signal controller's own logic, second by second, with no I/O and its own clock.

What a real controller does and the agent must not be trusted to do: run its plans from its
own sequencer, check its outputs every second with a conflict monitor, check uploaded tables
before adopting them, drop central commands when their timeout ends or when the central stops
refreshing its control for longer than the backup time, and latch a failure (flashing amber)
that only a technician on site clears. Coordination: a start-up waits so that stage 1 begins at
the plan's offset in the common cycle; a plan change (at the old plan's cycle boundary, as
drivers/traffic/transition.py defines it) starts the new plan's first cycle only when none of
its starts comes before an amber or an intergreen from a group that ended before, which holds
for any pair a central may ask for; the change leaves the new plan off its offset, and the
controller catches up by holding stage 1 green a few seconds a cycle (at most a fifth of the
cycle, and never past the plan's longest wait), never by shortening a green.

This code path is deliberately independent of drivers/traffic/validate.py and timeline.py:
the sequencer walks the stages each second with per-group amber counters, and the monitor
watches only the resulting aspects against the conflict matrix. The property test runs plans
the agent's validator accepted on this engine and checks what the monitor sees.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from drivers.errors import DecodeError
from drivers.traffic.config import Timings
from drivers.traffic.counting import (
    COUNTING_WORDS,
    IR_COUNTING,
    IR_INTERVALS,
    SLOT_WORDS,
    CountingHeader,
    DetectorCount,
    Interval,
    encode_header,
    encode_interval,
)
from drivers.traffic.detectors import CHATTERING, STUCK_OFF, STUCK_ON, Detector
from drivers.traffic.model import MIN_CLEARANCE_RED_S, MIN_GREEN_S, GroupKind, Intersection, Plan, Position
from drivers.traffic.registers import (
    POSITIONS,
    Alarm,
    ControllerState,
    Mode,
    Refusal,
    RefusalDetail,
    UploadStatus,
    crc32_words,
    decode_timings,
    encode_timings,
    intersection_fingerprint,
)
from drivers.traffic.tables import active_at, switch_pairs
from drivers.traffic.timeline import Aspect
from simulators.traffic_demand import DemandModel, Lane, LaneInterval

#: Seconds the sequencer may stand still while a plan runs before the monitor calls it a deadlock.
DEADLOCK_S = 3
#: Cycles of each plan the upload check runs through the sequencer and monitor.
CHECK_CYCLES = 3
NEVER = 0xFFFF


class Refused(Exception):
    """A command the controller does not take; `kind` maps to a Modbus exception code."""

    NOT_IN_CONTROL = "not under central control"
    FAILURE = "in failure mode: cleared on site only"
    BAD_VALUE = "bad value"

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Trip:
    """Why the monitor or a self-check put the controller in failure mode."""

    alarm: Alarm
    reason: str
    refusal: Refusal | None = None
    group_a: int = -1  # group index, -1 when none
    group_b: int = -1
    required: int = 0
    actual: int = 0


class Monitor:
    """Watches the outputs only: two conflicting greens, an intergreen, a green or an amber too short, a stuck sequencer."""

    def __init__(self, ix: Intersection) -> None:
        n = len(ix.groups)
        self.ids = [g.id for g in ix.groups]
        self.amber_s = [g.amber_s for g in ix.groups]
        self.min_ig: list[list[int | None]] = [[None] * n for _ in range(n)]
        for (a, b), entry in ix.matrix.items():
            self.min_ig[ix.index[a]][ix.index[b]] = entry.intergreen_s
        self.reset()

    def reset(self) -> None:
        n = len(self.ids)
        self.was_green = [False] * n
        self.green_since: list[int | None] = [None] * n
        self.left_green: list[int | None] = [None] * n
        self.last_progress: int | None = None
        self.still_for = 0

    def check(self, t: int, aspects: Sequence[Aspect], *, running: bool, progress: int | None) -> Trip | None:
        """`progress` is the seconds the sequencer has run its plan: it must grow each second while a plan runs.

        Every green shown while a plan runs lasts MIN_GREEN_S, those begun where the controller
        enters a plan (start-up, plan change: at stage 1) included."""
        green = [a is Aspect.GREEN for a in aspects]
        trip = (self._together(green) or self._ends(t, green, running) or self._ambers(t, aspects)
                or self._starts(t, green))
        if trip is not None:
            return trip
        self.was_green = green
        return self._progress(running, progress)

    def _together(self, green: list[bool]) -> Trip | None:
        n = len(green)
        for i in range(n):
            if not green[i]:
                continue
            for j in range(i + 1, n):
                if green[j] and (self.min_ig[i][j] is not None or self.min_ig[j][i] is not None):
                    return Trip(Alarm.SAFETY, f"{self.ids[i]} and {self.ids[j]} green together", Refusal.CONFLICT, i, j)
        return None

    def _ends(self, t: int, green: list[bool], running: bool) -> Trip | None:
        """Ends first: a green that ends in the very second a conflicting one starts is an intergreen of 0 s."""
        for i in range(len(green)):
            since = self.green_since[i]
            if self.was_green[i] and not green[i]:
                if running and since is not None and t - since < MIN_GREEN_S:
                    return Trip(
                        Alarm.SAFETY,
                        f"{self.ids[i]} green {t - since} s < {MIN_GREEN_S} s",
                        Refusal.MIN_GREEN, i, -1, MIN_GREEN_S, t - since,
                    )
                self.left_green[i] = t
        return None

    def _ambers(self, t: int, aspects: Sequence[Aspect]) -> Trip | None:
        """An amber runs in full after each green: not cut by the same group's next green, not replaced by red."""
        for i in range(len(aspects)):
            left = self.left_green[i]
            if left is None or self.amber_s[i] == 0 or t - left >= self.amber_s[i]:
                continue
            if aspects[i] is not Aspect.AMBER:
                return Trip(
                    Alarm.SAFETY,
                    f"{self.ids[i]} amber {t - left} s < {self.amber_s[i]} s ({aspects[i].name.lower()} too early)",
                    Refusal.AMBER, i, -1, self.amber_s[i], t - left,
                )
        return None

    def _starts(self, t: int, green: list[bool]) -> Trip | None:
        n = len(green)
        for j in range(n):
            if green[j] and not self.was_green[j]:
                for i in range(n):
                    need, left = self.min_ig[i][j], self.left_green[i]
                    if need is not None and left is not None and t - left < need:
                        return Trip(
                            Alarm.SAFETY,
                            f"intergreen {self.ids[i]}→{self.ids[j]} {t - left} s < {need} s",
                            Refusal.INTERGREEN, i, j, need, t - left,
                        )
                self.green_since[j] = t
        return None

    def _progress(self, running: bool, progress: int | None) -> Trip | None:
        if running and progress is not None:
            self.still_for = self.still_for + 1 if progress == self.last_progress else 0
            self.last_progress = progress
            if self.still_for >= DEADLOCK_S:
                return Trip(Alarm.DEADLOCK, f"sequencer stuck for {self.still_for} s")
        else:
            self.last_progress, self.still_for = None, 0
        return None

def stage_at(plan: Plan, c: int) -> tuple[int, bool]:
    """Stage index running at cycle second `c`, and whether it is in its interstage."""
    acc = 0
    for k, stage in enumerate(plan.stages):
        if c < acc + stage.green_s:
            return k, False
        acc += stage.green_s
        if c < acc + stage.interstage_s:
            return k, True
        acc += stage.interstage_s
    return len(plan.stages) - 1, True


class Outputs:
    """Signal-group outputs with each group's amber counter and green history."""

    def __init__(self, ix: Intersection) -> None:
        self.ix = ix
        n = len(ix.groups)
        self.amber_s = [g.amber_s for g in ix.groups]
        self.pedestrian = [g.kind is GroupKind.PEDESTRIAN for g in ix.groups]
        self.aspects = [Aspect.DARK] * n
        self.green_since: list[int | None] = [None] * n
        self.last_end: list[int | None] = [None] * n
        self.amber_until = [0] * n

    def drive(self, t: int, want_green: Sequence[bool]) -> None:
        for i, want in enumerate(want_green):
            if want:
                if self.aspects[i] is not Aspect.GREEN:
                    self.green_since[i] = t
                self.aspects[i] = Aspect.GREEN
            else:
                if self.aspects[i] is Aspect.GREEN:
                    self.last_end[i] = t
                    self.amber_until[i] = t + self.amber_s[i]
                self.aspects[i] = Aspect.AMBER if t < self.amber_until[i] else Aspect.RED

    def run_plan(self, t: int, plan: Plan, c: int) -> None:
        k, inter = stage_at(plan, c)
        here = plan.stages[k].groups
        nxt = plan.stages[(k + 1) % len(plan.stages)].groups
        self.drive(t, [g.id in here and (not inter or g.id in nxt) for g in self.ix.groups])

    def flash(self) -> None:
        self.aspects = [Aspect.DARK if p else Aspect.FLASHING_AMBER for p in self.pedestrian]

    def dark(self) -> None:
        self.aspects = [Aspect.DARK] * len(self.aspects)

    def startup_amber(self) -> None:
        self.aspects = [Aspect.RED if p else Aspect.AMBER for p in self.pedestrian]

    def all_red(self) -> None:
        self.aspects = [Aspect.RED] * len(self.aspects)


class Phase(enum.Enum):
    DARK = "dark"
    FLASH = "flash"
    SYNC = "sync"  # still flashing or dark, waiting for the point that puts stage 1 at the plan's offset
    STARTUP = "startup"  # steady amber, then all red, then stage 1
    RUN = "run"
    TRANSITION = "transition"  # plan change at a cycle boundary: clearing before the new stage 1
    LEAVING = "leaving"  # greens ended, ambers running, then flash or dark
    FAILURE = "failure"


def check_intersection(ix: Intersection) -> RefusalDetail | None:
    """The installed intersection's own facts: each amber for its approach's speed limit (3 s up to 50 km/h,
    5 s above or unknown, none for pedestrians), each pedestrian intergreen covering its crosswalk."""
    for i, g in enumerate(ix.groups):
        fast = g.speed_limit_kmh is None or g.speed_limit_kmh > 50
        need = 0 if g.kind is GroupKind.PEDESTRIAN else 5 if fast else 3
        if g.amber_s != need:
            return RefusalDetail(Refusal.AMBER, 0, i + 1, 0, need, g.amber_s)
    for (a, b), entry in ix.matrix.items():
        g = ix.group(a)
        if g.crossing_m is not None and entry.intergreen_s < g.crossing_m / g.clearance_speed_m_s:
            need = -int(-g.crossing_m // g.clearance_speed_m_s)
            return RefusalDetail(Refusal.INTERGREEN, 0, ix.index[a] + 1, ix.index[b] + 1, need, entry.intergreen_s)
    return None


def first_cycle_starts(ix: Intersection, plan: Plan) -> list[tuple[int, int]]:
    """(group index, cycle second) of each green start in a plan's first cycle, entered at stage 1 from all red."""
    out = Outputs(ix)
    out.all_red()
    starts: list[tuple[int, int]] = []
    for c in range(plan.cycle_s):
        out.run_plan(c, plan, c)
        starts += [(i, c) for i, since in enumerate(out.green_since) if since == c]
    return starts


def plan_change(out: Outputs, min_ig: Sequence[Sequence[int | None]], plan: Plan, t: int, *,
                stretch: bool) -> tuple[int, dict[int, int]]:
    """When `plan`'s stage 1 may start after a change at second `t`, and when each ending green ends.

    Greens stage 1 does not keep end after their minimum green. Stage 1 starts once those are over
    and every intergreen and amber into its own starting groups is met; with `stretch` (always, in
    service) it also waits until no start of the first cycle comes before the intergreen from a
    group that ended before it, whatever the tables say: a central command may ask for any pair."""
    ix = out.ix
    stage1 = {ix.index[g] for g in plan.stages[0].groups}
    green = {i for i, a in enumerate(out.aspects) if a is Aspect.GREEN}
    ends = {i: max(t, (since if (since := out.green_since[i]) is not None else t) + MIN_GREEN_S)
            for i in green - stage1}
    ended: dict[int, int] = {i: e for i in range(len(out.aspects)) if i not in green and (e := out.last_end[i]) is not None}
    ended.update(ends)
    start = max([t, *ends.values()])
    seen: set[int] = set()
    for j, c in first_cycle_starts(ix, plan):
        if (c > 0 and not stretch) or (c == 0 and j in green):
            seen.add(j)
            continue
        for i, end in ended.items():
            need = min_ig[i][j]
            if need is not None and i not in seen:
                start = max(start, end + need - c)
        if j in ended and j not in seen:
            start = max(start, ended[j] + out.amber_s[j] - c)  # its own amber first
        seen.add(j)
    return start, ends


def hold_transition(out: Outputs, plan: Plan, ends: dict[int, int], t: int) -> None:
    """A second of the transition: greens stage 1 keeps stay, the others run to their end, then amber."""
    stage1 = {out.ix.index[g] for g in plan.stages[0].groups}
    out.drive(t, [a is Aspect.GREEN and (i in stage1 or t < ends.get(i, t)) for i, a in enumerate(out.aspects)])


def wait_limits(ix: Intersection, plan: Plan) -> list[int]:
    """Longest wait per group: 240 s for a group that gives way to a tram or bus in a priority plan, else 120 s."""
    return [240 if plan.priority and g.gives_way_to else 120 for g in ix.groups]


def check_block(ix: Intersection, words: Sequence[int]) -> tuple[Timings | None, RefusalDetail | None]:
    """The controller's own check of an upload block: decode, structure, then a dry run under the monitor."""
    if len(words) >= 3 and (words[1] << 16 | words[2]) != intersection_fingerprint(ix):
        return None, RefusalDetail(Refusal.INTERSECTION, 0, 0, 0, 0, 0)
    try:
        timings = decode_timings(words, ix)
    except DecodeError:
        return None, RefusalDetail(Refusal.FORMAT, 0, 0, 0, 0, 0)
    unlawful = check_intersection(ix)
    if unlawful is not None:
        return None, unlawful
    numbers = {p.number for p in timings.plans}
    for plan in timings.plans:
        total = sum(s.green_s + s.interstage_s for s in plan.stages)
        if total != plan.cycle_s:
            return None, RefusalDetail(Refusal.STRUCTURE, plan.number, 0, 0, plan.cycle_s, total)
        if not 0 <= plan.offset_s < plan.cycle_s:
            return None, RefusalDetail(Refusal.STRUCTURE, plan.number, 0, 0, plan.cycle_s - 1, plan.offset_s & 0xFFFF)
    for table in timings.schedule.day_tables.values():
        for s in table.switches:
            if s.plan is not None and s.plan not in numbers:
                return None, RefusalDetail(Refusal.STRUCTURE, s.plan, 0, 0, 0, 0)
    for table in timings.schedule.day_tables.values():
        for s in table.switches:
            called = timings.plan(s.plan) if s.plan is not None else None
            if called is not None and called.priority:
                # a priority plan serves a tram or bus call for one cycle: a table would run it on every cycle
                return None, RefusalDetail(Refusal.STRUCTURE, called.number, 0, 0, 0, 1)
    for plan in timings.plans:
        refusal = dry_run(ix, plan)
        if refusal is not None:
            return None, refusal
    refusal = _check_changes(ix, timings)
    return (None, refusal) if refusal is not None else (timings, None)


def _check_changes(ix: Intersection, timings: Timings) -> RefusalDetail | None:
    """Dry-run every plan change the tables can make (and those into and out of a priority plan)."""
    pairs = switch_pairs(timings.schedule)
    named = {s.plan for table in timings.schedule.day_tables.values() for s in table.switches if s.plan is not None}
    for called in (p.number for p in timings.plans if p.priority):
        pairs |= {(n, called) for n in named} | {(called, n) for n in named}
    for a, b in sorted(pairs):
        old, new = timings.plan(a), timings.plan(b)
        if old is None or new is None or a == b:
            continue
        refusal = dry_run_change(ix, old, new)
        if refusal is not None:
            return refusal
    return None


def dry_run_change(ix: Intersection, old: Plan, new: Plan) -> RefusalDetail | None:
    """Run `old` for two cycles, change to `new` as written (no stretching) and run a cycle of it, under a monitor."""
    out = Outputs(ix)
    out.all_red()
    monitor = Monitor(ix)
    limits = [max(a, b) for a, b in zip(wait_limits(ix, old), wait_limits(ix, new), strict=True)]
    red_since: list[int | None] = [None] * len(ix.groups)
    change = 2 * old.cycle_s
    begin, ends = change, dict[int, int]()
    for t in range(change + old.cycle_s + new.cycle_s + 300):
        if t < change:
            out.run_plan(t, old, t % old.cycle_s)
        elif t == change:
            begin, ends = plan_change(out, monitor.min_ig, new, t, stretch=False)
        if change <= t < begin:
            hold_transition(out, new, ends, t)
        elif t >= begin and t >= change:
            if t >= begin + new.cycle_s:
                break
            out.run_plan(t, new, t - begin)
        trip = monitor.check(t, out.aspects, running=True, progress=t)
        if trip is not None and t >= change:
            return RefusalDetail(Refusal.TRANSITION, old.number << 8 | new.number, trip.group_a + 1, trip.group_b + 1,
                                 trip.required, trip.actual)
        for i, a in enumerate(out.aspects):
            since = red_since[i]
            if a is Aspect.GREEN:
                if since is not None and t >= change and t - since > limits[i]:
                    return RefusalDetail(Refusal.TRANSITION, old.number << 8 | new.number, i + 1, 0, limits[i],
                                         t - since)
                red_since[i] = None
            elif since is None:
                red_since[i] = t
    return None


def dry_run(ix: Intersection, plan: Plan, cycles: int = CHECK_CYCLES) -> RefusalDetail | None:
    """Run `plan` from all red for a few cycles under a fresh monitor; also measure the waits."""
    return _run_and_measure(ix, plan, cycles)[0]


def worst_wait_s(ix: Intersection, plan: Plan) -> int:
    """The longest a group of `plan` waits from the end of its green to its next one."""
    return max(_run_and_measure(ix, plan, CHECK_CYCLES)[1], default=0)


def _run_and_measure(ix: Intersection, plan: Plan, cycles: int) -> tuple[RefusalDetail | None, list[int]]:
    out = Outputs(ix)
    out.all_red()
    monitor = Monitor(ix)
    limits = wait_limits(ix, plan)
    red_since: list[int | None] = [None] * len(ix.groups)
    worst = [0] * len(ix.groups)
    for t in range(plan.cycle_s * cycles):
        before = [a is Aspect.GREEN for a in out.aspects]
        out.run_plan(t, plan, t % plan.cycle_s)
        trip = monitor.check(t, out.aspects, running=True, progress=t)
        if trip is not None:
            assert trip.refusal is not None
            refusal = RefusalDetail(trip.refusal, plan.number, trip.group_a + 1, trip.group_b + 1, trip.required,
                                    trip.actual)
            return refusal, worst
        for i, a in enumerate(out.aspects):
            green = a is Aspect.GREEN
            if before[i] and not green:
                red_since[i] = t
            since = red_since[i]
            if green and not before[i] and since is not None:
                worst[i] = max(worst[i], t - since)
    for i in range(len(ix.groups)):
        never = out.green_since[i] is None
        if never or worst[i] > limits[i]:
            return RefusalDetail(Refusal.MAX_WAIT, plan.number, i + 1, 0, limits[i], NEVER if never else worst[i]), worst
    return None, worst


@dataclass
class _Command:
    value: int
    until_s: int


class SignalController:
    """The controller: call `step()` once per second of its clock; commands and faults in between."""

    def __init__(self, ix: Intersection, timings: Timings | None, *, start: datetime, tz: ZoneInfo,
                 counting: CountingUnit | None = None) -> None:
        self.ix = ix
        #: the detector card (traffic counts), apart from the sequencer: it counts whatever the signals show
        self.counting = counting
        self.tz = tz
        self.n = len(ix.groups)
        self.clock_s = int(start.timestamp())
        self.out = Outputs(ix)
        self.monitor = Monitor(ix)
        self.fingerprint = intersection_fingerprint(ix)
        self.startup_amber_s = max((g.amber_s for g in ix.groups if g.kind is not GroupKind.PEDESTRIAN), default=0)
        self.startup_red_s = max(
            [MIN_CLEARANCE_RED_S] + [c.intergreen_s - ix.group(c.from_group).amber_s for c in ix.matrix.values()]
        )
        # central control and commands
        self.control_until: int | None = None
        self.plan_cmd: _Command | None = None
        self.position_cmd: _Command | None = None
        # tables in force
        self.timings: Timings | None = None
        self.block: list[int] = []
        self.block_crc = 0
        self.upload_status = UploadStatus.NONE
        self.refusal: RefusalDetail | None = None
        self.upload_generation = 0
        # sequencer
        self.phase = Phase.DARK
        self.idle = Phase.DARK  # what SYNC keeps showing
        self.plan: Plan | None = None
        self.t_ref = 0
        self.run_s = 0  # seconds the sequencer advanced: what the monitor watches grow
        #: After a plan change, stage 1 starts where the change left it; the controller brings it back
        #: to the plan's offset by holding stage 1 green a few seconds a cycle (never shortening a green).
        self.offset_error_s = 0  # seconds still to hold
        self.hold_per_cycle_s = 0  # at most this many a cycle: waits stay within the plan's limit
        self.held_s = 0  # held in this cycle
        self.sync_at = 0
        self.sync_plan: Plan | None = None
        self.next_plan: Plan | None = None
        self.transition_start = 0
        self.transition_end: dict[int, int] = {}
        self.leave_until = 0
        # faults and alarms
        self.alarms = Alarm(0)
        self.lamp_failures = 0
        self.trip: Trip | None = None
        self.forced_green: set[int] = set()
        self.frozen = False
        if timings is not None:
            self._adopt_factory(timings)

    # ---- tables -------------------------------------------------------------------------

    def _adopt_factory(self, timings: Timings) -> None:
        """Tables installed with the controller: checked like an upload; a bad one means failure at power-on."""
        words = encode_timings(timings)
        checked, refusal = check_block(self.ix, words)
        if checked is None:
            self.refusal = refusal
            self.upload_status = UploadStatus.REFUSED
            self._fail(Trip(Alarm.CONFIGURATION, f"installed tables refused: {refusal}"))
            return
        self._store(words, checked)
        self.phase = self.idle = Phase.FLASH  # power-on: flashing amber, then start-up

    def _store(self, words: list[int], timings: Timings) -> None:
        self.block = list(words)
        self.block_crc = crc32_words(words)
        self.timings = timings
        if self.plan_cmd is not None and timings.plan(self.plan_cmd.value) is None:
            self.plan_cmd = None

    def commit_upload(self, words: Sequence[int], crc: int) -> RefusalDetail | None:
        self._require_control()
        if crc32_words(words) != crc:
            refusal: RefusalDetail | None = RefusalDetail(Refusal.CHECKSUM, 0, 0, 0, 0, 0)
        else:
            timings, refusal = check_block(self.ix, words)
            if timings is not None:
                self._store(list(words), timings)
                self.upload_generation = (self.upload_generation + 1) & 0xFFFF
                self.upload_status, self.refusal = UploadStatus.ACCEPTED, None
                if self.phase is Phase.DARK and self.idle is Phase.DARK and self.trip is None:
                    self.phase = Phase.FLASH
                    self.idle = Phase.FLASH
                return None
        self.upload_status, self.refusal = UploadStatus.REFUSED, refusal
        return refusal

    # ---- central commands ---------------------------------------------------------------

    @property
    def central(self) -> bool:
        return self.control_until is not None

    def _require_control(self) -> None:
        if not self.central:
            raise Refused(Refused.NOT_IN_CONTROL, "write the backup time first")

    def take_control(self, backup_time_s: int) -> None:
        """Each write restarts the backup time; 0 hands control back to the local tables now."""
        if backup_time_s == 0:
            self._release()
        else:
            self.control_until = self.clock_s + backup_time_s

    def _release(self) -> None:
        self.control_until = None
        self.plan_cmd = None
        self.position_cmd = None

    def command_plan(self, plan: int, timeout_s: int) -> None:
        self._require_control()
        if self.trip is not None:
            raise Refused(Refused.FAILURE, self.trip.reason)
        if plan == 0:
            self.plan_cmd = None
            return
        if timeout_s < 1:
            raise Refused(Refused.BAD_VALUE, "a plan command needs a timeout of at least 1 s")
        if self.timings is None or self.timings.plan(plan) is None:
            raise Refused(Refused.BAD_VALUE, f"no plan {plan} in the tables in force")
        self.plan_cmd = _Command(plan, self.clock_s + timeout_s)

    def command_position(self, code: int, timeout_s: int) -> None:
        self._require_control()
        if self.trip is not None:
            raise Refused(Refused.FAILURE, self.trip.reason)
        if code not in POSITIONS:
            raise Refused(Refused.BAD_VALUE, f"unknown position code {code}")
        if timeout_s < 1:
            raise Refused(Refused.BAD_VALUE, "a position command needs a timeout of at least 1 s")
        self.position_cmd = _Command(code, self.clock_s + timeout_s)

    # ---- faults (simulation) and the technician -----------------------------------------

    def force_green(self, group: str) -> None:
        """A stuck output driver: `group` shows green next second, whatever the sequencer says."""
        self.forced_green.add(self.ix.index[group])

    def inject_conflict(self) -> str:
        """Force green, next second, a group that conflicts with one green now; returns its id."""
        green = [i for i, a in enumerate(self.out.aspects) if a is Aspect.GREEN]
        for j in range(self.n):
            if j not in green and any(self.monitor.min_ig[i][j] is not None for i in green):
                self.forced_green.add(j)
                return self.ix.groups[j].id
        raise ValueError("no group green now that another conflicts with")

    def set_door_open(self, is_open: bool) -> None:
        self.alarms = self.alarms | Alarm.DOOR_OPEN if is_open else self.alarms & ~Alarm.DOOR_OPEN

    def set_lamp_failure(self, group: str, failed: bool = True) -> None:
        bit = 1 << self.ix.index[group]
        self.lamp_failures = self.lamp_failures | bit if failed else self.lamp_failures & ~bit
        self.alarms = self.alarms | Alarm.LAMP_FAILURE if self.lamp_failures else self.alarms & ~Alarm.LAMP_FAILURE

    def inject_hardware_error(self) -> None:
        self._fail(Trip(Alarm.HARDWARE, "output card error"))

    def corrupt_stored_tables(self) -> None:
        """Flip a word of the stored tables: the next self-check finds it."""
        if self.block:
            self.block[-1] ^= 0x0001

    def freeze_sequencer(self) -> None:
        self.frozen = True

    def technician_reset(self) -> None:
        """On site only: clear the latched failure; the controller starts up again from flashing amber."""
        self.trip = None
        self.frozen = False
        self.forced_green.clear()
        self.alarms &= Alarm.DOOR_OPEN | Alarm.LAMP_FAILURE
        self.monitor.reset()
        self.phase = self.idle = Phase.FLASH if self.timings is not None else Phase.DARK
        self._show_idle()

    def _fail(self, trip: Trip) -> None:
        self.trip = trip
        self.alarms |= trip.alarm
        self.phase = Phase.FAILURE
        self.plan = None
        self.out.flash()

    # ---- the second ---------------------------------------------------------------------

    def step(self) -> None:
        self.clock_s += 1
        t = self.clock_s
        if self.counting is not None:
            self.counting.tick(t)
        self._expire(t)
        if self.phase is not Phase.FAILURE and self.block and crc32_words(self.block) != self.block_crc:
            self._fail(Trip(Alarm.CONFIGURATION, "stored tables fail their checksum"))
        if self.phase is Phase.FAILURE:
            self.out.flash()
        else:
            self._sequence(t)
        for j in self.forced_green:
            self.out.aspects[j] = Aspect.GREEN
        self.forced_green.clear()
        running = self.phase in (Phase.RUN, Phase.TRANSITION)
        trip = self.monitor.check(
            t, self.out.aspects, running=running,
            progress=self.run_s if self.phase is Phase.RUN else None,
        )
        if trip is not None and self.phase is not Phase.FAILURE:
            self._fail(trip)

    def steps(self, seconds: int) -> None:
        for _ in range(seconds):
            self.step()

    def _expire(self, t: int) -> None:
        if self.control_until is not None and t >= self.control_until:
            self._release()  # backup time over: back to the local tables
        if self.plan_cmd is not None and t >= self.plan_cmd.until_s:
            self.plan_cmd = None
        if self.position_cmd is not None and t >= self.position_cmd.until_s:
            self.position_cmd = None

    def desired(self) -> tuple[Position, Plan | None]:
        if self.timings is None:
            return Position.DARK, None
        active = active_at(self.timings.schedule, datetime.fromtimestamp(self.clock_s, UTC), self.tz)
        position = POSITIONS[self.position_cmd.value] if self.position_cmd is not None else active.position
        number = self.plan_cmd.value if self.plan_cmd is not None else active.plan
        plan = self.timings.plan(number) if number is not None else None
        return position, plan or min(self.timings.plans, key=lambda p: p.number)

    def cycle_second(self) -> int:
        return (self.clock_s - self.t_ref) % self.plan.cycle_s if self.plan is not None else 0

    def _sequence(self, t: int) -> None:
        position, plan = self.desired()
        if self.phase in (Phase.DARK, Phase.FLASH) and position is Position.NORMAL and plan is not None:
            self._begin_sync(t, plan)
        if self.phase in (Phase.DARK, Phase.FLASH, Phase.SYNC, Phase.STARTUP) and position is not Position.NORMAL:
            self.phase = self.idle = Phase.FLASH if position is Position.YELLOW_FLASH else Phase.DARK
        if self.phase is Phase.DARK:
            self.out.dark()
        elif self.phase is Phase.FLASH:
            self.out.flash()
        elif self.phase is Phase.SYNC:
            if t >= self.sync_at - self.startup_red_s - self.startup_amber_s:
                self.phase = Phase.STARTUP
            else:
                self._show_idle()
        if self.phase is Phase.STARTUP and self._startup_step(t):
            return
        if self.phase is Phase.RUN and self._run_step(t, position, plan):
            return
        if self.phase is Phase.TRANSITION:
            self._transition_step(t)
        elif self.phase is Phase.LEAVING:
            self._leaving_step(t)

    def _startup_step(self, t: int) -> bool:
        """Start-up amber, then all red, then the plan; True once the plan is entered."""
        if t < self.sync_at - self.startup_red_s:
            self.out.startup_amber()
        elif t < self.sync_at:
            self.out.all_red()
        else:
            assert self.sync_plan is not None
            self._enter(t, self.sync_plan)
            return True
        return False

    def _run_step(self, t: int, position: Position, plan: Plan | None) -> bool:
        """One second of the running plan; False when it begins leaving it or a plan change instead."""
        assert self.plan is not None
        if self.plan.priority and self.cycle_second() == 0 and t > self.t_ref and self.plan_cmd is not None:
            # a priority plan serves one call: one cycle, then back to the plan of the tables
            self.plan_cmd = None
            position, plan = self.desired()
        if position is not Position.NORMAL:
            self._begin_leaving(t, position)
            return False
        if self.cycle_second() == 0 and plan is not None and plan != self.plan and not self.frozen:
            self._begin_transition(t, plan)
            return False
        if self.frozen:
            self.t_ref += 1  # the fault: the sequencer stops advancing
        else:
            self.run_s += 1
            self._offset_correction()
        self.out.run_plan(t, self.plan, self.cycle_second())
        return True

    def _begin_sync(self, t: int, plan: Plan) -> None:
        """Start-up timed so that stage 1 begins at the plan's offset in the common cycle."""
        lead = self.startup_amber_s + self.startup_red_s
        earliest = t + lead
        self.sync_at = earliest + (plan.offset_s - earliest) % plan.cycle_s
        self.sync_plan = plan
        self.phase = Phase.SYNC

    def _enter(self, t: int, plan: Plan) -> None:
        self.plan = plan
        self.t_ref = t
        self.phase = Phase.RUN
        # on the plan's offset after a start-up; after a plan change, as far from it as the change left it
        self.offset_error_s = (plan.offset_s - t) % plan.cycle_s
        limit = min(wait_limits(self.ix, plan))
        self.hold_per_cycle_s = max(0, min(plan.cycle_s // 5, limit - worst_wait_s(self.ix, plan)))
        self.held_s = 0
        self.out.run_plan(t, plan, 0)

    def _offset_correction(self) -> None:
        """Hold the plan at its cycle second 0 (stage 1 green) one more second, if the offset needs it."""
        assert self.plan is not None
        second = self.cycle_second()  # where the plan would be now, unheld
        if second == 1 and self.offset_error_s > 0 and self.held_s < self.hold_per_cycle_s:
            self.t_ref += 1  # still second 0
            self.offset_error_s -= 1
            self.held_s += 1
        elif second > 1:
            self.held_s = 0

    def _begin_transition(self, t: int, plan: Plan) -> None:
        """At the old plan's cycle boundary: end what stage 1 of `plan` does not keep, clear, then start it."""
        self.next_plan = plan
        self.transition_start, self.transition_end = plan_change(self.out, self.monitor.min_ig, plan, t, stretch=True)
        self.phase = Phase.TRANSITION
        self._transition_step(t)

    def _transition_step(self, t: int) -> None:
        assert self.next_plan is not None
        if t >= self.transition_start:
            self._enter(t, self.next_plan)
            return
        hold_transition(self.out, self.next_plan, self.transition_end, t)

    def _begin_leaving(self, t: int, position: Position) -> None:
        """Out of normal: every green ends now, ambers run out, then flashing amber or dark."""
        green = [i for i, a in enumerate(self.out.aspects) if a is Aspect.GREEN]
        # an amber begun before this second runs out too, not only those of the greens ending now
        self.leave_until = max([t + self.out.amber_s[i] for i in green] + self.out.amber_until)
        self.idle = Phase.FLASH if position is Position.YELLOW_FLASH else Phase.DARK
        self.phase = Phase.LEAVING
        self.plan = None
        self._leaving_step(t)

    def _leaving_step(self, t: int) -> None:
        if t >= self.leave_until:
            self.phase = self.idle
            self._show_idle()
        else:
            self.out.drive(t, [False] * self.n)

    def _show_idle(self) -> None:
        if self.idle is Phase.FLASH:
            self.out.flash()
        else:
            self.out.dark()

    # ---- what the registers show --------------------------------------------------------

    def mode(self) -> Mode:
        match self.phase:
            case Phase.FAILURE:
                return Mode.FAILURE
            case Phase.RUN | Phase.TRANSITION | Phase.LEAVING:
                return Mode.NORMAL
            case Phase.STARTUP:
                return Mode.STARTUP
            case Phase.FLASH:
                return Mode.YELLOW_FLASH
            case Phase.DARK:
                return Mode.DARK
            case Phase.SYNC:
                return Mode.YELLOW_FLASH if self.idle is Phase.FLASH else Mode.DARK

    def state(self) -> ControllerState:
        t = self.clock_s
        running = self.phase in (Phase.RUN, Phase.TRANSITION) and self.plan is not None
        stage, inter = stage_at(self.plan, self.cycle_second()) if running and self.plan is not None else (-1, False)
        position, plan = self.desired() if self.trip is None else (Position.NORMAL, None)
        return ControllerState(
            mode=self.mode(),
            central=self.central,
            plan=self.plan.number if running and self.plan is not None else 0,
            stage=stage + 1,
            interstage=inter,
            cycle_second=self.cycle_second() if running else 0,
            plan_target=plan.number if plan is not None else 0,
            position_target=position,
            alarms=self.alarms,
            lamp_failures=self.lamp_failures,
            upload_status=self.upload_status,
            refusal=self.refusal,
            table_crc=self.block_crc,
            upload_generation=self.upload_generation,
            plan_command_left_s=_left(self.plan_cmd.until_s, t) if self.plan_cmd else 0,
            position_command_left_s=_left(self.position_cmd.until_s, t) if self.position_cmd else 0,
            control_left_s=_left(self.control_until, t) if self.control_until is not None else 0,
            clock_s=t,
            fingerprint=self.fingerprint,
            aspects=tuple(self.out.aspects),
        )


def _left(until: int, now: int) -> int:
    return max(0, min(until - now, 0xFFFF))


DETECTOR_FAULTS = {"stuck-on": STUCK_ON, "stuck-off": STUCK_OFF, "chattering": CHATTERING}
DEFAULT_INTERVAL_S = 60
DEFAULT_KEPT = 16


class CountingUnit:
    """The controller's detector card: counts each interval from the demand model, keeps the last
    `kept` intervals in its ring, and reports what a faulty detector would report."""

    def __init__(self, timings: Timings, tz: ZoneInfo, *, interval_s: int = DEFAULT_INTERVAL_S,
                 kept: int = DEFAULT_KEPT, seed: int = 1, demand: DemandModel | None = None) -> None:
        self.detectors: tuple[Detector, ...] = timings.detectors
        self.interval_s = interval_s
        self.kept = kept
        self.demand = demand or DemandModel(lanes_of(timings), tz=tz, seed=seed)
        self._lanes = {(la.approach, la.lane): la for la in self.demand.lanes}
        self.ring: dict[int, Interval] = {}
        self.last_index = 0
        self.faults: dict[str, str] = {}  # detector id -> STUCK_ON | STUCK_OFF | CHATTERING
        self.started_s: int | None = None

    def set_fault(self, detector: str, fault: str | None) -> None:
        if all(d.id != detector for d in self.detectors):
            raise KeyError(detector)
        if fault is None:
            self.faults.pop(detector, None)
        else:
            self.faults[detector] = DETECTOR_FAULTS.get(fault, fault)

    def tick(self, clock_s: int) -> None:
        """Called each second: closes the interval that ends now (not one the controller started within)."""
        if self.started_s is None:
            self.started_s = clock_s - 1  # counting since the second the controller started
        if clock_s % self.interval_s:
            return
        index = clock_s // self.interval_s - 1
        if index * self.interval_s < self.started_s:
            return
        counts = tuple(self._reading(d, index) for d in self.detectors)
        self.ring[index % self.kept] = Interval(index, index * self.interval_s, self.interval_s, counts)
        self.last_index = index

    def lane_truth(self, index: int) -> dict[tuple[str, int], LaneInterval]:
        """What really crossed each lane in interval `index` (the ground truth)."""
        return {key: self.demand.interval(la, index, self.interval_s) for key, la in self._lanes.items()}

    def _reading(self, d: Detector, index: int) -> DetectorCount:
        truth = self.demand.interval(self._lanes[(d.approach, d.lane)], index, self.interval_s)
        fault = self.faults.get(d.id)
        if fault == STUCK_ON:
            return DetectorCount(0, 1000, None, 0 if d.pair else None, 0 if d.pair else None)
        if fault == STUCK_OFF:
            return DetectorCount(0, 0, None, 0 if d.pair else None, 0 if d.pair else None)
        if fault == CHATTERING:
            noisy = truth.count * 5 + 25
            return DetectorCount(noisy, truth.occupancy_permille // 3, None,
                                 noisy if d.pair else None, 0 if d.pair else None)
        if d.pair is None:
            return DetectorCount(truth.count, truth.occupancy_permille, None, None, None)
        if d.pair in self.faults:  # the pair's other loop is faulty: no speed, no classes
            return DetectorCount(truth.count, truth.occupancy_permille, None, None, None)
        return DetectorCount(truth.count, truth.occupancy_permille, truth.speed_dkmh, truth.light, truth.heavy)

    def header(self) -> CountingHeader:
        return CountingHeader(len(self.detectors), self.interval_s, self.last_index, self.kept)

    def words(self, address: int, count: int) -> list[int]:
        """Input registers address..address+count-1 of the counting area (IR_COUNTING and up)."""
        out = []
        header = encode_header(self.header())
        slot_cache: dict[int, list[int]] = {}
        for a in range(address, address + count):
            if IR_COUNTING <= a < IR_COUNTING + COUNTING_WORDS:
                out.append(header[a - IR_COUNTING])
            elif a >= IR_INTERVALS:
                slot, offset = divmod(a - IR_INTERVALS, SLOT_WORDS)
                if slot not in slot_cache:
                    iv = self.ring.get(slot)
                    slot_cache[slot] = encode_interval(iv) if iv is not None and slot < self.kept else []
                words = slot_cache[slot]
                out.append(words[offset] if offset < len(words) else 0)
            else:
                out.append(0)
        return out


def lanes_of(timings: Timings) -> list[Lane]:
    """The demand of each counted lane: busier on the approaches of plan 1's first stage (the main road)."""
    ix = timings.intersection
    main = timings.plans[0].stages[0].groups if timings.plans else frozenset()
    approaches = list(dict.fromkeys(d.approach for d in timings.detectors))
    lanes = {}
    for d in timings.detectors:
        group = ix.group(d.approach) if d.approach in ix.index else None
        limit = (group.speed_limit_kmh if group is not None else None) or 50
        lanes[(d.approach, d.lane)] = Lane(d.approach, d.lane, 600 if d.approach in main else 250, limit,
                                           morning=approaches.index(d.approach) % 2 == 0)
    return list(lanes.values())
