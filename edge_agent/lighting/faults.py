"""Lamp faults judged from the lamps' own readings: lamp_failure, dimming_failure, day_burner.

Pure: the judge changes the lamp's fault set and returns the events to journal (a fault
raised, or `lamp_restored` when one clears).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from drivers.model import Event, Severity
from edge_agent.lighting.lamps import LampState

FAILURE_POWER_RATIO = 0.10
#: Below this commanded level a healthy lamp may itself draw under FAILURE_POWER_RATIO of its rated
#: power (5 % draws about 9 % through an LED driver's losses): there, a failure is a power under
#: half of what the level should draw (a failed lamp draws nearly nothing at any level).
LOW_LEVEL_PCT = 2 * FAILURE_POWER_RATIO * 100
READBACK_TOLERANCE_PCT = 1  # DALI's logarithmic steps round a percent by up to one point


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


class FaultJudge:
    def __init__(self, dimming_tolerance_pct: float) -> None:
        self.level_tolerance = max(READBACK_TOLERANCE_PCT, dimming_tolerance_pct)

    def judge_level(self, state: LampState, level: int | None, ts: int) -> list[Event]:
        """The read-back of a command: a controller that does not take the level is a dimming failure."""
        if level is None or state.commanded is None:
            return []
        wrong = state.commanded > 0 and abs(level - state.commanded) > self.level_tolerance
        if wrong == (Fault.DIMMING_FAILURE in state.faults):
            return []
        return [_set_fault(state, Fault.DIMMING_FAILURE, wrong, ts,
                           {"commanded_pct": state.commanded, "level_pct": level})]

    def judge(self, state: LampState, ts: int) -> list[Event]:
        """A settled lamp's reading: is it dark while commanded on, off its level, lit by day?"""
        faults = state.faults
        events = []
        commanded = state.commanded or 0
        dark = state.power_w < failure_power_w(state.rated_power_w, commanded) if state.power_w is not None \
            else not state.lit
        failure = commanded > 0 and dark
        if failure != (Fault.LAMP_FAILURE in faults):
            events.append(_set_fault(state, Fault.LAMP_FAILURE, failure, ts,
                                     {"commanded_pct": state.commanded, "power_w": state.power_w,
                                      "rated_power_w": state.rated_power_w}))
        if not failure:  # a dark lamp's level says nothing about its dimming
            wrong = commanded > 0 and state.actual is not None and abs(state.actual - commanded) > self.level_tolerance
            if wrong != (Fault.DIMMING_FAILURE in faults):
                events.append(_set_fault(state, Fault.DIMMING_FAILURE, wrong, ts,
                                         {"commanded_pct": commanded, "level_pct": state.actual}))
        burner = state.target == 0 and bool(state.lit)
        if burner != (Fault.DAY_BURNER in faults):
            events.append(_set_fault(state, Fault.DAY_BURNER, burner, ts,
                                     {"target_pct": state.target, "power_w": state.power_w, "level_pct": state.actual}))
        return events


def _set_fault(state: LampState, fault: Fault, present: bool, ts: int, detail: dict[str, Any]) -> Event:
    if present:
        state.faults.add(fault)
        return Event(state.name, ts, str(fault), _FAULT_SEVERITY[fault], {"group": state.group.name, **detail})
    state.faults.discard(fault)
    return Event(state.name, ts, "lamp_restored", Severity.INFO, {"group": state.group.name, "cleared": str(fault)})
