"""Rollups computed on ingest, from the records of one batch and each device's running state.

Pure: records and device states in, bucket totals, new device states and derived events out.
The store applies the result in the same transaction as the raw insert, so rollups never
need a rescan of raw data and never count a duplicate (the store passes only new records).

Buckets: the *hour* is the UTC hour (`ts_ms - ts_ms % 3_600_000`); the *day* is the local day
in Europe/Paris ("YYYY-MM-DD"). Every UTC hour lies inside one Paris day (the offset is a
whole number of hours), so an hour's totals belong to exactly one day.

Rules, per device, over its samples in seq (journal) order:
- A reading older than the device's newest processed reading (`ts_ms < last_ts_ms`) is late:
  it is counted in `samples` but changes no counter or lamp state, its interval having been
  covered already.
- Counters (`energy_wh`, `volume_m3`): consumption is the increase since the device's previous
  reading, attributed to the bucket of the later reading. `energy_wh` is a u32 counter: a drop
  from the top sixteenth of 2^32 to the bottom sixteenth is a wrap and adds the wrapped
  difference. Any other decrease is a reset (a replaced driver or meter): it adds nothing and
  is recorded as a `counter_reset` event (severity minor) naming the quantity and both values.
  The water index never wraps. A value that is not a non-negative number is ignored.
- An increase no device could have made is not consumption: more than MAX_LAMP_POWER_W (a lamp
  controller's `energy_wh`) or MAX_FLOW_M3_PER_H (`volume_m3`) over the time since the device's
  previous reading plus COUNTER_SLACK_MS, times COUNTER_MARGIN. It adds nothing, is recorded as a
  `counter_implausible` event (severity major) naming the quantity, both values, the increase, the
  bound and the elapsed time, and the new value becomes the reference (like a reset): one glitch,
  such as a counter read as 1.7e308, costs one interval, not the hour's or the day's totals. The
  collector does not know each lamp's rated power, so the bound is a ceiling for any street lamp;
  the agent, which knows it, checks its own accounting against it.
- Burn time comes from `lamp_on` samples (the lamp controllers report it; few report an
  operating-hours counter): the time between two consecutive readings counts when the earlier
  one said the lamp was on and the gap is at most 15 minutes (a longer silence is unknown,
  not burning). It goes to the bucket of the later reading, like consumption.
- `lamps_on`: lamps with at least one `lamp_on: true` reading in the bucket; `lamps_faulty`:
  lamps with a `lamp_failure` event or a `lamp_failure: true` reading in the bucket. Each
  lamp counts once a bucket; a reading for a bucket older than the last one the lamp was
  counted in adds nothing (late data).
- `alarms`: events of severity major or critical. `samples`, `events`: records received.
Energy is the lighting's energy: the `energy_wh` of lamp controllers, known by their samples
carrying `lamp_on` or `level_pct`. A cabinet meter (the Linky's TIC index, a 9-digit counter
that does not wrap at 2^32) measures the same energy once more, so it is not added: the gateway
compares the two itself (`energy_mismatch`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo

from citygate_wire.batch import EventRecord, WireRecord

HOUR_MS = 3_600_000
MAX_BURN_GAP_MS = 15 * 60 * 1000
U32 = 2**32
_WRAP_HIGH, _WRAP_LOW = U32 - U32 // 16, U32 // 16
ALARM_SEVERITIES = frozenset({"major", "critical"})
FAULT_CODE = "lamp_failure"
COUNTER_RESET = "counter_reset"
COUNTER_IMPLAUSIBLE = "counter_implausible"
#: more than any street lamp draws (the largest high-pressure sodium lamps take 1000 W with their ballast)
MAX_LAMP_POWER_W = 2000.0
#: more than a district's water meter passes (a DN 300 main at 4 m/s carries about 1000 m3/h)
MAX_FLOW_M3_PER_H = 1000.0
#: added to the elapsed time: a reading's timestamp may lag its counter by a poll period or two
COUNTER_SLACK_MS = 15 * 60 * 1000
COUNTER_MARGIN = 2.0
_ENERGY_PER_MS = MAX_LAMP_POWER_W * COUNTER_MARGIN / HOUR_MS
_VOLUME_PER_MS = MAX_FLOW_M3_PER_H * COUNTER_MARGIN / HOUR_MS
PARIS = ZoneInfo("Europe/Paris")


@lru_cache(maxsize=4096)
def day_of_hour(hour_ms: int) -> str:
    """The Europe/Paris date of a UTC hour bucket."""
    return datetime.fromtimestamp(hour_ms / 1000, PARIS).date().isoformat()


@dataclass(slots=True)
class DeviceState:
    """What the collector remembers of one device between batches."""

    last_ts_ms: int | None = None
    energy_wh: float | None = None
    volume_m3: float | None = None
    lamp_on: bool | None = None
    on_hour: int | None = None
    on_day: str | None = None
    fault_hour: int | None = None
    fault_day: str | None = None


@dataclass(slots=True)
class Totals:
    energy_wh: float = 0.0
    burn_ms: int = 0
    lamps_on: int = 0
    lamps_faulty: int = 0
    water_m3: float = 0.0
    alarms: int = 0
    samples: int = 0
    events: int = 0

    def add(self, other: Totals) -> None:
        self.energy_wh += other.energy_wh
        self.burn_ms += other.burn_ms
        self.lamps_on += other.lamps_on
        self.lamps_faulty += other.lamps_faulty
        self.water_m3 += other.water_m3
        self.alarms += other.alarms
        self.samples += other.samples
        self.events += other.events


@dataclass(frozen=True, slots=True)
class DerivedEvent:
    device: str
    ts_ms: int
    code: str
    severity: str
    detail: dict[str, Any]


@dataclass(slots=True)
class BatchRollup:
    hours: dict[int, Totals] = field(default_factory=dict)
    days: dict[str, Totals] = field(default_factory=dict)
    changed: dict[str, DeviceState] = field(default_factory=dict)  # device -> state to save
    events: list[DerivedEvent] = field(default_factory=list)


def counter_increase(previous: float | None, current: float, wraps: bool) -> float | None:
    """Consumption between two readings of a counter; None when the counter was reset."""
    if previous is None or current >= previous:
        return 0.0 if previous is None else current - previous
    if wraps and _WRAP_HIGH <= previous < U32 and current < _WRAP_LOW:  # a u32 counter wraps below 2^32
        return current + U32 - previous
    return None


def roll_up(records: Sequence[WireRecord], states: dict[str, DeviceState]) -> BatchRollup:
    """Totals of new records (ascending seq). `states` (device -> state) is updated in place.

    The loop runs once per record on the ingest path, so it is written for CPython: constants in
    locals, the additive totals of the current hour in locals (written back when the hour
    changes), a lamp's day compared only when its hour advanced (its day cannot have otherwise)."""
    out = BatchRollup()
    hours = out.hours
    # additive totals go to the hour only and are summed into days at the end; the per-day
    # "each lamp once" counts cannot be, so they are counted here
    day_on: dict[str, int] = {}
    day_faulty: dict[str, int] = {}
    hour_ms, max_gap, fault_code = HOUR_MS, MAX_BURN_GAP_MS, FAULT_CODE
    # any increase up to the bound for no elapsed time is plausible: only a larger one needs the exact bound
    # (which also keeps an infinite value out of the sums: the wire cannot carry one anyway)
    surely_plausible = _ENERGY_PER_MS * COUNTER_SLACK_MS
    last_hour = -1
    h = Totals()
    day = ""
    energy_sum = water_sum = 0.0
    burn = n_samples = 0
    for r in records:
        ts = r.ts_ms
        hour = ts - ts % hour_ms
        if hour != last_hour:
            h, day = _next_hour(hours, hour, h, energy_sum, water_sum, burn, n_samples)
            energy_sum = water_sum = 0.0
            burn = n_samples = 0
            last_hour = hour
        device = r.device
        st = states.get(device)
        if st is None:
            st = states[device] = DeviceState()
        if r.kind == "event":
            _count_event(r, st, hour, day, h, day_faulty)
            continue
        n_samples += 1
        values = r.values
        on = values.get("lamp_on")
        last = st.last_ts_ms
        if last is None or ts >= last:
            if last is not None and st.lamp_on and ts - last <= max_gap:
                burn += ts - last
            # a counter is a non-negative number (a bool is not one); checked inline, as is a
            # lamp's sample (it carries lamp_on or level_pct): a call for each was a quarter of this loop
            energy = values.get("energy_wh")
            if (type(energy) is int or type(energy) is float) and energy >= 0 and (
                    on is not None or "lamp_on" in values or "level_pct" in values):
                energy = float(energy)
                previous = st.energy_wh
                if previous is not None and previous <= energy <= previous + surely_plausible:
                    energy_sum += energy - previous
                else:  # the first reading, a wrap, a reset or a large increase: rare, worth a call
                    energy_sum += _increase(out.events, device, ts, last, "energy_wh", previous, energy)
                st.energy_wh = energy
            volume = values.get("volume_m3")
            if (type(volume) is int or type(volume) is float) and volume >= 0:
                volume = float(volume)
                water_sum += _increase(out.events, device, ts, last, "volume_m3", st.volume_m3, volume)
                st.volume_m3 = volume
            if on is True or on is False:
                st.lamp_on = on
            st.last_ts_ms = ts
        if on is True:
            on_hour = st.on_hour
            if on_hour is None or hour > on_hour:  # once a lamp an hour: the call costs nothing
                _count_on(st, hour, day, h, day_on)
        if values.get(fault_code) is True:
            _count_fault(st, hour, day, h, day_faulty)
    _add_sums(h, energy_sum, water_sum, burn, n_samples)
    # every device of the batch has a state to save (C-speed: no per-record bookkeeping above)
    out.changed = {device: states[device] for device in dict.fromkeys(map(_device, records))}
    _sum_days(out, day_on, day_faulty)
    return out


_device = attrgetter("device")


def _add_sums(h: Totals, energy_wh: float, water_m3: float, burn_ms: int, samples: int) -> None:
    """Write back the additive totals the loop keeps in locals while the hour lasts."""
    h.energy_wh += energy_wh
    h.water_m3 += water_m3
    h.burn_ms += burn_ms
    h.samples += samples


def _next_hour(hours: dict[int, Totals], hour: int, h: Totals, energy_wh: float, water_m3: float, burn_ms: int,
               samples: int) -> tuple[Totals, str]:
    """The totals and the day of the hour the loop enters, the one it leaves given its sums."""
    _add_sums(h, energy_wh, water_m3, burn_ms, samples)
    return hours.get(hour) or hours.setdefault(hour, Totals()), day_of_hour(hour)


def _sum_days(out: BatchRollup, day_on: dict[str, int], day_faulty: dict[str, int]) -> None:
    """The days' totals: their hours' additive totals, and the lamps counted once a day."""
    for hour, totals in out.hours.items():
        d = out.days.setdefault(day_of_hour(hour), Totals())
        d.add(totals)
        d.lamps_on -= totals.lamps_on  # hours' distinct counts do not add up to the day's
        d.lamps_faulty -= totals.lamps_faulty
    for day, n in day_on.items():
        out.days[day].lamps_on += n
    for day, n in day_faulty.items():
        out.days[day].lamps_faulty += n


def _count_event(r: EventRecord, st: DeviceState, hour: int, day: str, h: Totals, day_faulty: dict[str, int]) -> None:
    h.events += 1
    if r.severity in ALARM_SEVERITIES:
        h.alarms += 1
    if r.code == FAULT_CODE:
        _count_fault(st, hour, day, h, day_faulty)


def _count_on(st: DeviceState, hour: int, day: str, h: Totals, day_on: dict[str, int]) -> None:
    """A lamp on in an hour it was not yet counted in."""
    h.lamps_on += 1
    st.on_hour = hour
    # the day is that of the hour (a later hour never has an earlier day): only a new hour can bring a new day
    if st.on_day is None or day > st.on_day:
        day_on[day] = day_on.get(day, 0) + 1
        st.on_day = day


def _increase(events: list[DerivedEvent], device: str, ts_ms: int, last_ts_ms: int | None, quantity: str,
              previous: float | None, current: float) -> float:
    """The consumption a counter's new reading adds; 0 for a reset or an implausible increase, each
    recorded in `events`. Only `energy_wh` wraps (a u32)."""
    energy = quantity == "energy_wh"
    delta = counter_increase(previous, current, wraps=energy)
    if delta is None:
        events.append(_reset(device, ts_ms, quantity, previous, current))
        return 0.0
    if delta and (implausible := _implausible(device, ts_ms, last_ts_ms, quantity, previous, current, delta,
                                              _ENERGY_PER_MS if energy else _VOLUME_PER_MS)):
        events.append(implausible)
        return 0.0
    return delta


def _count_fault(st: DeviceState, hour: int, day: str, h: Totals, day_faulty: dict[str, int]) -> None:
    if st.fault_hour is None or hour > st.fault_hour:
        h.lamps_faulty += 1
        st.fault_hour = hour
    if st.fault_day is None or day > st.fault_day:
        day_faulty[day] = day_faulty.get(day, 0) + 1
        st.fault_day = day


def _implausible(device: str, ts_ms: int, last_ts_ms: int | None, quantity: str, previous: float | None,
                 current: float, increase: float, per_ms: float) -> DerivedEvent | None:
    """The `counter_implausible` event of an increase beyond what the device can do in the time, or None."""
    elapsed = ts_ms - (ts_ms if last_ts_ms is None else last_ts_ms)
    bound = per_ms * (elapsed + COUNTER_SLACK_MS)
    if increase <= bound:
        return None
    return DerivedEvent(device, ts_ms, COUNTER_IMPLAUSIBLE, "major",
                        {"quantity": quantity, "previous": previous, "current": current, "increase": increase,
                         "bound": round(bound, 3), "elapsed_ms": elapsed})


def _reset(device: str, ts_ms: int, quantity: str, previous: float | None, current: float) -> DerivedEvent:
    return DerivedEvent(device, ts_ms, COUNTER_RESET, "minor",
                        {"quantity": quantity, "previous": previous, "current": current})
