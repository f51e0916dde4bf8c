"""The signal controller's Modbus map (configs/registermaps/signal-controller.md), as a pure codec.

Holding registers carry what a central may command: central control with its backup time,
plan selection, functional position (each with a timeout), and the plan/table upload block.
Input registers carry the controller's state. No register sets a signal-group colour: group
aspects are input registers, for monitoring only.

Everything here is words in, typed values or DecodeError out; the Modbus I/O is in bus.py
(agent) and simulators/signals.py (controller).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time
from enum import IntEnum, IntFlag
from typing import TypeVar

from drivers.errors import DecodeError
from drivers.traffic.config import MAX_STAGES, MAX_SWITCHES, Timings
from drivers.traffic.model import MAX_GROUPS, MAX_PLAN_NUMBER, Intersection, Plan, Position, Stage
from drivers.traffic.tables import DayTable, Schedule, Switch
from drivers.traffic.timeline import Aspect

MAP_VERSION = 1
FORMAT_VERSION = 1

# Holding registers (function 3 to read, 6/16 to write).
HR_CONTROL = 0  # backup time in s: each write takes or refreshes central control; 0 gives it back
HR_PLAN = 10  # [plan number (0 = back to the local table), timeout s], one write of 2 registers
HR_POSITION = 20  # [position code, timeout s], one write of 2 registers
HR_COMMIT = 100  # [length in words, crc32 high, crc32 low]: check and adopt the staged block
HR_UPLOAD = 200  # staging area of the upload block
UPLOAD_MAX_WORDS = 1000
#: Words per write request (Modbus allows 123 registers in one function 16 request).
WRITE_CHUNK = 120

# Input registers (function 4).
IR_MAP_VERSION = 0
IR_MODE = 1
IR_CONTROL = 2
IR_PLAN = 3
IR_STAGE = 4
IR_INTERSTAGE = 5
IR_CYCLE_SECOND = 6
IR_PLAN_TARGET = 7
IR_POSITION_TARGET = 8
IR_ALARMS = 9
IR_LAMP_FAILURES = 10  # 2 words, group bit i = group i of the intersection
IR_UPLOAD_STATUS = 12
IR_REFUSAL = 13  # code, plan, group a, group b, required, actual (6 words)
IR_TABLE_CRC = 19  # 2 words: crc32 of the block in force
IR_UPLOAD_GENERATION = 21
IR_PLAN_COMMAND_LEFT = 22
IR_POSITION_COMMAND_LEFT = 23
IR_CONTROL_LEFT = 24
IR_CLOCK = 25  # 2 words: controller clock, Unix seconds
IR_GROUP_COUNT = 27
IR_FINGERPRINT = 28  # 2 words: crc32 of the intersection (groups, ambers, matrix) the controller holds
IR_GROUPS = 32  # one word per group: Aspect
IR_COUNT = IR_GROUPS + MAX_GROUPS

MAX_TIMEOUT_S = 0xFFFF


class Mode(IntEnum):
    STARTUP = 0
    NORMAL = 1
    YELLOW_FLASH = 2
    DARK = 3
    FAILURE = 4  # conflict monitor or self-check tripped: flashing amber until cleared on site


POSITION_CODES: dict[Position, int] = {Position.NORMAL: 0, Position.YELLOW_FLASH: 1, Position.DARK: 2}
POSITIONS: dict[int, Position] = {v: k for k, v in POSITION_CODES.items()}


class Alarm(IntFlag):
    HARDWARE = 1  # serious hardware error
    CONFIGURATION = 2  # serious configuration error (stored tables corrupt)
    SAFETY = 4  # conflict monitor: green-green conflict, intergreen or minimum green broken
    DEADLOCK = 8  # sequencer stopped advancing
    DOOR_OPEN = 16
    LAMP_FAILURE = 32  # which groups: IR_LAMP_FAILURES


class UploadStatus(IntEnum):
    NONE = 0
    ACCEPTED = 1
    REFUSED = 2


class Refusal(IntEnum):
    """Why the controller refused an upload block (IR_REFUSAL)."""

    FORMAT = 1
    INTERSECTION = 2  # made for another intersection (fingerprint differs)
    STRUCTURE = 3  # cycle sum, offset, references
    CONFLICT = 4
    INTERGREEN = 5
    MIN_GREEN = 6
    MAX_WAIT = 7
    CHECKSUM = 8
    TRANSITION = 9  # a change between two plans the tables switch between: plan word = from * 256 + to
    AMBER = 10  # an amber cut short (by the same group's next green, or red too early)


@dataclass(frozen=True, slots=True)
class RefusalDetail:
    code: Refusal
    plan: int
    group_a: int  # 1-based group number, 0 when none
    group_b: int
    required: int
    actual: int

    def words(self) -> list[int]:
        return [int(self.code), self.plan, self.group_a, self.group_b, self.required, self.actual]


@dataclass(frozen=True, slots=True)
class ControllerState:
    mode: Mode
    central: bool  # under central control (backup-time watchdog running)
    plan: int
    stage: int  # 1-based, 0 when no plan runs
    interstage: bool
    cycle_second: int
    plan_target: int
    position_target: Position
    alarms: Alarm
    lamp_failures: int  # bit i = group i
    upload_status: UploadStatus
    refusal: RefusalDetail | None
    table_crc: int
    upload_generation: int
    plan_command_left_s: int
    position_command_left_s: int
    control_left_s: int
    clock_s: int
    fingerprint: int
    aspects: tuple[Aspect, ...]


def _u32(hi: int, lo: int) -> int:
    return (hi << 16) | lo


def _split32(value: int) -> list[int]:
    return [(value >> 16) & 0xFFFF, value & 0xFFFF]


def crc32_words(words: Sequence[int]) -> int:
    return zlib.crc32(b"".join(w.to_bytes(2, "big") for w in words))


def intersection_fingerprint(ix: Intersection) -> int:
    """crc32 of what makes the intersection safe: groups, kinds, ambers, who gives way to whom, and the matrix."""
    text = ";".join(f"{g.id}:{g.kind}:{g.amber_s}:{','.join(sorted(g.gives_way_to))}" for g in ix.groups)
    text += "|" + ";".join(f"{a}>{b}:{c.intergreen_s}" for (a, b), c in sorted(ix.matrix.items()))
    return zlib.crc32(text.encode())


_E = TypeVar("_E", bound=IntEnum)


def _enum(kind: type[_E], value: int, what: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        raise DecodeError(f"{what}: unknown code {value}") from None


def encode_state(state: ControllerState) -> list[int]:
    words = [0] * IR_COUNT
    words[IR_MAP_VERSION] = MAP_VERSION
    words[IR_MODE] = int(state.mode)
    words[IR_CONTROL] = int(state.central)
    words[IR_PLAN] = state.plan
    words[IR_STAGE] = state.stage
    words[IR_INTERSTAGE] = int(state.interstage)
    words[IR_CYCLE_SECOND] = state.cycle_second
    words[IR_PLAN_TARGET] = state.plan_target
    words[IR_POSITION_TARGET] = POSITION_CODES[state.position_target]
    words[IR_ALARMS] = int(state.alarms)
    words[IR_LAMP_FAILURES : IR_LAMP_FAILURES + 2] = _split32(state.lamp_failures)
    words[IR_UPLOAD_STATUS] = int(state.upload_status)
    if state.refusal is not None:
        words[IR_REFUSAL : IR_REFUSAL + 6] = state.refusal.words()
    words[IR_TABLE_CRC : IR_TABLE_CRC + 2] = _split32(state.table_crc)
    words[IR_UPLOAD_GENERATION] = state.upload_generation
    words[IR_PLAN_COMMAND_LEFT] = state.plan_command_left_s
    words[IR_POSITION_COMMAND_LEFT] = state.position_command_left_s
    words[IR_CONTROL_LEFT] = state.control_left_s
    words[IR_CLOCK : IR_CLOCK + 2] = _split32(state.clock_s)
    words[IR_GROUP_COUNT] = len(state.aspects)
    words[IR_FINGERPRINT : IR_FINGERPRINT + 2] = _split32(state.fingerprint)
    words[IR_GROUPS : IR_GROUPS + len(state.aspects)] = [int(a) for a in state.aspects]
    return [w & 0xFFFF for w in words]


def decode_state(words: Sequence[int]) -> ControllerState:
    if len(words) != IR_COUNT:
        raise DecodeError(f"state block: {len(words)} words, expected {IR_COUNT}")
    if any(not 0 <= w <= 0xFFFF for w in words):
        raise DecodeError("state block: a word is outside 0..65535")
    if words[IR_MAP_VERSION] != MAP_VERSION:
        raise DecodeError(f"register map version {words[IR_MAP_VERSION]}, this driver speaks {MAP_VERSION}")
    n = words[IR_GROUP_COUNT]
    if not 1 <= n <= MAX_GROUPS:
        raise DecodeError(f"group count {n} outside 1..{MAX_GROUPS}")
    if words[IR_CONTROL] > 1 or words[IR_INTERSTAGE] > 1:
        raise DecodeError(f"flags control={words[IR_CONTROL]} interstage={words[IR_INTERSTAGE]}: expected 0 or 1")
    if words[IR_ALARMS] & ~int(Alarm(63)):
        raise DecodeError(f"alarm word 0x{words[IR_ALARMS]:04x} has undefined bits")
    upload = _enum(UploadStatus, words[IR_UPLOAD_STATUS], "upload status")
    refusal = None
    if upload is UploadStatus.REFUSED:
        code, plan, a, b, req, act = words[IR_REFUSAL : IR_REFUSAL + 6]
        refusal = RefusalDetail(_enum(Refusal, code, "refusal"), plan, a, b, req, act)
    return ControllerState(
        mode=_enum(Mode, words[IR_MODE], "mode"),
        central=bool(words[IR_CONTROL]),
        plan=words[IR_PLAN],
        stage=words[IR_STAGE],
        interstage=bool(words[IR_INTERSTAGE]),
        cycle_second=words[IR_CYCLE_SECOND],
        plan_target=words[IR_PLAN_TARGET],
        position_target=POSITIONS[_position_code(words[IR_POSITION_TARGET])],
        alarms=Alarm(words[IR_ALARMS]),
        lamp_failures=_u32(words[IR_LAMP_FAILURES], words[IR_LAMP_FAILURES + 1]),
        upload_status=upload,
        refusal=refusal,
        table_crc=_u32(words[IR_TABLE_CRC], words[IR_TABLE_CRC + 1]),
        upload_generation=words[IR_UPLOAD_GENERATION],
        plan_command_left_s=words[IR_PLAN_COMMAND_LEFT],
        position_command_left_s=words[IR_POSITION_COMMAND_LEFT],
        control_left_s=words[IR_CONTROL_LEFT],
        clock_s=_u32(words[IR_CLOCK], words[IR_CLOCK + 1]),
        fingerprint=_u32(words[IR_FINGERPRINT], words[IR_FINGERPRINT + 1]),
        aspects=tuple(_enum(Aspect, w, f"group {i + 1} aspect") for i, w in enumerate(words[IR_GROUPS : IR_GROUPS + n])),
    )


def _position_code(code: int) -> int:
    if code not in POSITIONS:
        raise DecodeError(f"position: unknown code {code}")
    return code


# Upload block, one word each unless stated:
#   format version, intersection fingerprint (2), group count, plan count,
#   per plan: number, cycle_s, offset_s, flags (bit 0: priority plan), stage count,
#             per stage: green_s, interstage_s, group mask (2, high word first);
#   day-table count, per day table: switch count, per switch: minute of day, action
#             (low byte plan number, high byte position code);
#   week: 7 day-table numbers (1-based, Monday first);
#   special-day count, per special day: year, month * 256 + day, day-table number.


def encode_timings(t: Timings) -> list[int]:
    ix = t.intersection
    words = [FORMAT_VERSION, *_split32(intersection_fingerprint(ix)), len(ix.groups), len(t.plans)]
    for plan in t.plans:
        words += [plan.number, plan.cycle_s, plan.offset_s & 0xFFFF, int(plan.priority), len(plan.stages)]
        for stage in plan.stages:
            mask = sum(1 << ix.index[g] for g in stage.groups)
            words += [stage.green_s, stage.interstage_s, *_split32(mask)]
    ids = list(t.schedule.day_tables)
    words.append(len(ids))
    for tid in ids:
        table = t.schedule.day_tables[tid]
        words.append(len(table.switches))
        for s in table.switches:
            words += [s.at.hour * 60 + s.at.minute, (POSITION_CODES[s.position] << 8) | (s.plan or 0)]
    words += [ids.index(tid) + 1 for tid in t.schedule.week]
    words.append(len(t.schedule.special_days))
    for day, tid in sorted(t.schedule.special_days.items()):
        words += [day.year, day.month * 256 + day.day, ids.index(tid) + 1]
    if len(words) > UPLOAD_MAX_WORDS:
        raise ValueError(f"upload block of {len(words)} words exceeds the controller's {UPLOAD_MAX_WORDS}")
    return words


class _Reader:
    def __init__(self, words: Sequence[int]) -> None:
        self.words = words
        self.pos = 0

    def take(self, what: str, lo: int = 0, hi: int = 0xFFFF) -> int:
        if self.pos >= len(self.words):
            raise DecodeError(f"upload block ends at word {self.pos}, expected {what}")
        value = self.words[self.pos]
        if not lo <= value <= hi:
            raise DecodeError(f"upload word {self.pos} ({what}) = {value}, expected {lo}..{hi}")
        self.pos += 1
        return value


def decode_timings(words: Sequence[int], ix: Intersection) -> Timings:
    """Decode an upload block for intersection `ix`; DecodeError says which word is wrong and why."""
    r = _Reader(words)
    r.take("format version", FORMAT_VERSION, FORMAT_VERSION)
    fingerprint = _u32(r.take("fingerprint high"), r.take("fingerprint low"))
    if fingerprint != intersection_fingerprint(ix):
        raise DecodeError(f"block made for another intersection (fingerprint {fingerprint:08x})")
    n_groups = r.take("group count", len(ix.groups), len(ix.groups))
    plans: list[Plan] = []
    for _ in range(r.take("plan count", 1, MAX_PLAN_NUMBER)):
        number = r.take("plan number", 1, MAX_PLAN_NUMBER)
        if any(p.number == number for p in plans):
            raise DecodeError(f"plan {number} appears twice")
        cycle = r.take("cycle", 1, 3600)
        offset = r.take("offset")
        flags = r.take("plan flags", 0, 1)
        stages: list[Stage] = []
        for _ in range(r.take("stage count", 1, MAX_STAGES)):
            green = r.take("green", 1, 3600)
            inter = r.take("interstage", 0, 3600)
            mask = _u32(r.take("group mask high"), r.take("group mask low"))
            if mask == 0 or mask >> n_groups:
                raise DecodeError(f"plan {number}: group mask 0x{mask:08x} names no group or a group beyond {n_groups}")
            groups = frozenset(g.id for i, g in enumerate(ix.groups) if mask >> i & 1)
            stages.append(Stage(groups, green, inter))
        signed_offset = offset - 0x10000 if offset >= 0x8000 else offset
        plans.append(Plan(number, f"plan {number}", cycle, signed_offset, tuple(stages), bool(flags)))
    tables: dict[str, DayTable] = {}
    for t in range(r.take("day-table count", 1, 32)):
        switches: list[Switch] = []
        for _ in range(r.take("switch count", 1, MAX_SWITCHES)):
            minute = r.take("minute of day", 0, 1439)
            action = r.take("switch action")
            position = POSITIONS.get(action >> 8)
            plan_no = action & 0xFF
            if position is None:
                raise DecodeError(f"switch action 0x{action:04x}: unknown position")
            if (position is Position.NORMAL) != (plan_no != 0):
                raise DecodeError(f"switch action 0x{action:04x}: a normal switch names a plan, others none")
            at = time(minute // 60, minute % 60)
            if switches and at <= switches[-1].at:
                raise DecodeError(f"day table {t + 1}: switch points do not ascend at {at:%H:%M}")
            switches.append(Switch(at, plan_no or None, position))
        tables[f"table-{t + 1}"] = DayTable(f"table-{t + 1}", tuple(switches))
    week = [f"table-{r.take('week day table', 1, len(tables))}" for _ in range(7)]
    special: dict[date, str] = {}
    for _ in range(r.take("special-day count", 0, 366)):
        year = r.take("special-day year", 2000, 2199)
        md = r.take("special-day month and day")
        try:
            day = date(year, md >> 8, md & 0xFF)
        except ValueError:
            raise DecodeError(f"special day {year}-{md >> 8}-{md & 0xFF} is not a date") from None
        special[day] = f"table-{r.take('special-day table', 1, len(tables))}"
    if r.pos != len(words):
        raise DecodeError(f"upload block has {len(words) - r.pos} words after its end")
    schedule = Schedule(tables, (week[0], week[1], week[2], week[3], week[4], week[5], week[6]), special)
    return Timings(ix, tuple(plans), schedule)
