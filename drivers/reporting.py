"""Report by exception: which values of each poll the journal keeps, per quantity.

A cabinet polls its lamps every few seconds so the lighting, fault and analytics logic react at
once; most readings repeat the last one. Each quantity has a report policy, in the manner of
ThingsBoard IoT Gateway's report strategies and Sparkplug's report by exception:

- `every`: every reading (no reduction);
- `change`: when the value differs from the last one reported, beyond an absolute `deadband`
  (in the quantity's unit) or a relative `deadband_pct` (of the last value reported) if one is set;
- `period`: at the first poll of each `period_s` slot of the UTC clock (900 s: at :00, :15, :30,
  :45), so a gap never exceeds `period_s` plus one poll interval, and every quantity and device
  of a gateway with the same period is reported in the same poll, in one record per device;
- `change_or_period`: on change, and at the first poll of each period slot as well (a heartbeat:
  silence then always means "unchanged", never "lost").

`counter = true` (energy, burning hours) also reports at once a reading lower than the previous
one (a reset, a replaced controller, a wrap), together with that previous reading when it was not
reported, so the consumption up to the reset is not lost. The first reading of a quantity is
always reported; a reading stamped before the last report (the clock was stepped back) is too.
The heartbeat slots are counted on the clock, not from the last change: a change does not put a
quantity out of step with its device's other quantities.

Pure: no I/O, no clock; the caller passes each poll's timestamp. `parse_policy` validates a
policy table of a register map or gateway config (ConfigError naming the key and the reason).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol, runtime_checkable

from drivers.errors import ConfigError
from drivers.model import Sample, Value

Strategy = Literal["every", "change", "period", "change_or_period"]
STRATEGIES: tuple[Strategy, ...] = ("every", "change", "period", "change_or_period")
_WITH_PERIOD = ("period", "change_or_period")
_WITH_CHANGE = ("change", "change_or_period")
POLICY_KEYS = ("strategy", "period_s", "deadband", "deadband_pct", "counter")
MAX_PERIOD_S = 7 * 86_400.0


@dataclass(frozen=True, slots=True)
class Policy:
    """How one quantity is reported (see the module docstring)."""

    strategy: Strategy = "every"
    period_s: float = 0.0
    deadband: float = 0.0
    deadband_pct: float = 0.0
    counter: bool = False


EVERY = Policy()


def parse_policy(raw: Any, key: str, base: Policy = EVERY, *, numeric: bool = True) -> Policy:
    """A policy from a TOML value: a strategy name or a table of POLICY_KEYS, laid over `base`.

    A table that names a `strategy` starts afresh (only `counter`, a property of the quantity, is
    kept from `base`); one that does not adjusts `base` (say, only its deadband: an absolute one
    then replaces a relative one, and the reverse). `numeric` is
    False for a flag or a text value, which can have neither a deadband nor a counter.
    """
    if isinstance(raw, str):
        raw = {"strategy": raw}
    if not isinstance(raw, dict):
        raise ConfigError(key, "expected a strategy name or a table of " + ", ".join(POLICY_KEYS))
    unknown = sorted(set(raw) - set(POLICY_KEYS))
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", "unknown key; a report policy has " + ", ".join(POLICY_KEYS))
    policy = Policy(counter=base.counter) if "strategy" in raw else base
    if "deadband" in raw or "deadband_pct" in raw:  # an absolute deadband replaces a relative one, and back
        policy = replace(policy, deadband=0.0, deadband_pct=0.0)
    if "strategy" in raw:
        strategy = raw["strategy"]
        if strategy not in STRATEGIES:
            raise ConfigError(f"{key}.strategy", f"{strategy!r} is not one of {', '.join(STRATEGIES)}")
        policy = replace(policy, strategy=strategy)
    policy = replace(
        policy,
        period_s=_number(raw.get("period_s", policy.period_s), f"{key}.period_s"),
        deadband=_number(raw.get("deadband", policy.deadband), f"{key}.deadband"),
        deadband_pct=_number(raw.get("deadband_pct", policy.deadband_pct), f"{key}.deadband_pct"),
    )
    if "counter" in raw:
        if not isinstance(raw["counter"], bool):
            raise ConfigError(f"{key}.counter", "expected true or false")
        policy = replace(policy, counter=raw["counter"])
    _check(policy, key, numeric)
    return policy


def parse_report_table(raw: Any, key: str) -> tuple[Policy, dict[str, Policy]]:
    """A device's `report` when its quantities are not known in advance (a TIC meter's labels):
    one strategy name for all, or a table of quantity = policy with a `default` for the others
    (each quantity's table laid over the default). Returns (default, policies by quantity)."""
    if isinstance(raw, str):
        return parse_policy(raw, key), {}
    if not isinstance(raw, dict):
        raise ConfigError(key, "expected a strategy name or a table of quantity = strategy name or table")
    default = parse_policy(raw["default"], f"{key}.default") if "default" in raw else EVERY
    return default, {name: parse_policy(given, f"{key}.{name}", default) for name, given in raw.items()
                     if name != "default"}


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(key, f"expected a number, got {value!r}")
    if value < 0:
        raise ConfigError(key, f"{value} is negative")
    return float(value)


def _check(p: Policy, key: str, numeric: bool) -> None:
    if p.strategy in _WITH_PERIOD:
        if not 1.0 <= p.period_s <= MAX_PERIOD_S:
            raise ConfigError(f"{key}.period_s", f"strategy {p.strategy!r} needs a period_s from 1 to {MAX_PERIOD_S:.0f} s")
    elif p.period_s:
        raise ConfigError(f"{key}.period_s", f"strategy {p.strategy!r} has no period; use change_or_period")
    if p.deadband or p.deadband_pct:
        if p.strategy not in _WITH_CHANGE:
            raise ConfigError(f"{key}.deadband", f"strategy {p.strategy!r} does not report on change: a deadband means nothing")
        if p.deadband and p.deadband_pct:
            raise ConfigError(f"{key}.deadband_pct", "give deadband (absolute) or deadband_pct (relative), not both")
        if not numeric:
            raise ConfigError(f"{key}.deadband", "this quantity is a flag or a text, not a number: it has no deadband")
    if p.counter and not numeric:
        raise ConfigError(f"{key}.counter", "this quantity is a flag or a text, not a number: it cannot be a counter")


def _is_number(v: Value) -> bool:
    return type(v) is int or type(v) is float


_NEVER = float("inf")
_NUMBERS = frozenset((int, float))


class _Track:
    """One quantity of one device: its policy and what was last reported and seen.

    `DeviceReporter.select` reads these fields inline: it runs for every value of every poll
    (2,200 a second for 200 lamps), so the common cases (equal, within the deadband, before
    the next period slot) cost a few comparisons and no call.
    """

    __slots__ = ("band", "change", "counter", "deadband", "every", "last", "last_ts", "next_ms", "period_ms", "rel",
                 "seen", "seen_reported", "seen_ts")

    def __init__(self, p: Policy, value: Value, ts_ms: int) -> None:
        self.every = p.strategy == "every"
        self.change = p.strategy in _WITH_CHANGE
        self.period_ms = round(p.period_s * 1000) if p.strategy in _WITH_PERIOD else 0
        self.deadband = p.deadband
        self.rel = p.deadband_pct / 100
        self.counter = p.counter
        self.seen: Value = value
        self.seen_ts = ts_ms
        self.seen_reported = True
        self.reported(value, ts_ms)

    def reported(self, v: Value, ts_ms: int) -> None:
        self.last, self.last_ts = v, ts_ms
        # the start of the next period slot of the clock; a change only ever reports sooner
        self.next_ms = (ts_ms // self.period_ms + 1) * self.period_ms if self.period_ms else _NEVER
        self.band = self.rel * abs(v) if self.rel and _is_number(v) else self.deadband  # type: ignore[arg-type]

    def changed(self, v: Value) -> bool:
        """Whether `v` differs from the last value reported by more than the deadband."""
        last = self.last
        if v == last and type(v) is type(last):
            return False
        if not (_is_number(v) and _is_number(last)):
            # None -> 3, True -> False, "a" -> "b": a change
            return True
        delta = v - last  # type: ignore[operator]
        if -self.band <= delta <= self.band:
            return False
        # NaN compares false with everything: a change, unless it was NaN already
        return not (math.isnan(v) and math.isnan(last))  # type: ignore[arg-type]


class DeviceReporter:
    """The report policies of one device's quantities and the state they need."""

    __slots__ = ("_default", "_policies", "_tracks")

    def __init__(self, policies: Mapping[str, Policy], default: Policy = EVERY) -> None:
        self._policies = policies
        self._default = default
        self._tracks: dict[str, _Track] = {}

    @property
    def reduces(self) -> bool:
        """False when every quantity is reported on every poll: the caller may skip the reporter."""
        return any(p.strategy != "every" for p in (self._default, *self._policies.values()))

    def select(self, ts_ms: int, values: Mapping[str, Value]) -> Sequence[tuple[int, dict[str, Value]]]:
        """What to report of one poll: (ts_ms, values) pairs in time order; empty when nothing.

        A counter found lower than at the previous poll adds that previous reading, at its own
        time, before this one, unless it was reported already.
        """
        out: dict[str, Value] = {}
        before: dict[str, Value] | None = None
        before_ts = 0
        tracks = self._tracks
        for name, v in values.items():
            tr = tracks.get(name)
            if tr is None:
                tracks[name] = _Track(self._policies.get(name, self._default), v, ts_ms)
                out[name] = v
                continue
            due = tr.every or ts_ms >= tr.next_ms or ts_ms < tr.last_ts
            if not due and tr.change:
                last = tr.last
                if v is last or (v == last and type(v) is type(last)):
                    pass  # the same reading: most of them
                elif type(v) in _NUMBERS and type(last) in _NUMBERS:
                    delta = v - last  # type: ignore[operator]
                    due = not -tr.band <= delta <= tr.band and tr.changed(v)
                else:
                    due = tr.changed(v)
            if tr.counter:
                seen = tr.seen
                if type(v) in _NUMBERS and type(seen) in _NUMBERS and v < seen:  # type: ignore[operator]
                    due = True
                    if not tr.seen_reported:
                        before = before if before is not None else {}
                        before[name] = seen
                        before_ts = max(before_ts, tr.seen_ts)
                tr.seen, tr.seen_ts, tr.seen_reported = v, ts_ms, due
            if due:
                out[name] = v
                tr.reported(v, ts_ms)
        if before is None:
            return ((ts_ms, out),) if out else ()
        return ((before_ts, before), (ts_ms, out)) if out else ((before_ts, before),)


class Reporter:
    """Report by exception for the devices of one bus: `select(sample)` gives the samples to journal."""

    def __init__(self, devices: Mapping[str, DeviceReporter]) -> None:
        self._devices = {name: d for name, d in devices.items() if d.reduces}

    def __bool__(self) -> bool:
        return bool(self._devices)

    def select(self, sample: Sample) -> Sequence[Sample]:
        """The samples to journal for one poll: the sample itself, fewer values, nothing, or a
        counter's reading before a reset and then this poll's."""
        device = self._devices.get(sample.device)
        if device is None:
            return (sample,)
        picked = device.select(sample.ts_ms, sample.values)
        if not picked:
            return ()  # most polls
        if len(picked) == 1 and len(picked[0][1]) == len(sample.values):
            return (sample,)
        return tuple(Sample(sample.device, ts, values) for ts, values in picked)


@runtime_checkable
class ReportsByException(Protocol):
    """A bus whose devices have report policies (the agent journals only what `reporter()` selects)."""

    def reporter(self) -> Reporter:
        """A new Reporter for this bus's devices (its state starts empty: first readings are reported)."""
