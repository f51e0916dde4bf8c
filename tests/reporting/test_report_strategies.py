"""Report strategies (drivers.reporting): what a stream of polls leaves in the journal, as properties."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.model import Sample, Value
from drivers.reporting import DeviceReporter, Policy, Reporter

T0 = 1_780_000_000_000  # a UTC instant in ms

# poll gaps of 0.05 s to 40 min: fast lines, slow lines and a device back after an outage
gaps_ms = st.lists(st.integers(50, 2_400_000), min_size=1, max_size=80)
periods_s = st.sampled_from([1.0, 5.0, 60.0, 900.0, 3600.0])
readings = st.floats(-1e6, 1e6, allow_nan=False)


def polls(gaps: list[int], values: Sequence[Value]) -> list[tuple[int, Value]]:
    ts, out = T0, []
    for gap, v in zip(gaps, values, strict=False):
        ts += gap
        out.append((ts, v))
    return out


def reported(policy: Policy, stream: list[tuple[int, Value]]) -> list[tuple[int, Value]]:
    """(ts, value) of each report of quantity `q` (a counter's reading before a reset included)."""
    rep = DeviceReporter({"q": policy})
    out = []
    for ts, v in stream:
        for at, values in rep.select(ts, {"q": v}):
            out.append((at, values["q"]))
    return out


@settings(max_examples=150)
@given(gaps_ms, periods_s, st.booleans(), st.data())
def test_a_quantity_on_period_is_reported_in_the_first_poll_of_every_period_slot(
    gaps: list[int], period_s: float, with_change: bool, data: st.DataObject
) -> None:
    values = data.draw(st.lists(st.integers(0, 3), min_size=len(gaps), max_size=len(gaps)))
    stream = polls(gaps, values)
    policy = Policy("change_or_period" if with_change else "period", period_s)
    times = {ts for ts, _ in reported(policy, stream)}
    period_ms = round(period_s * 1000)
    for (before, _), (ts, _) in itertools.pairwise(stream):
        if ts // period_ms != before // period_ms:
            assert ts in times, f"no heartbeat in the first poll of the slot starting {ts // period_ms * period_ms}"
    # hence no silence longer than a period plus one poll gap
    reports = sorted(times)
    for a, b in itertools.pairwise(reports):
        assert b - a <= period_ms + max(gaps)


@given(gaps_ms, st.data(), st.floats(0, 50), st.booleans())
def test_a_change_beyond_the_deadband_is_always_reported_and_what_is_not_stays_within_it(
    gaps: list[int], data: st.DataObject, deadband: float, relative: bool
) -> None:
    values = data.draw(st.lists(readings, min_size=len(gaps), max_size=len(gaps)))
    stream = polls(gaps, values)
    policy = Policy("change", deadband_pct=deadband) if relative else Policy("change", deadband=deadband)
    reports = dict(reported(policy, stream))
    last: float | None = None
    for ts, v in stream:
        assert isinstance(v, float)
        if last is None:
            assert ts in reports, "the first reading is always reported"
        else:
            band = deadband / 100 * abs(last) if relative else deadband
            if abs(v - last) > band:
                assert ts in reports, f"{last} -> {v} is beyond the deadband {band}"
            else:
                assert ts not in reports, f"{last} -> {v} is within the deadband {band}"
        if ts in reports:
            assert reports[ts] == v
            last = v


@given(gaps_ms, st.data(), st.sampled_from(["period", "change_or_period", "change", "every"]))
def test_a_counter_reset_is_reported_at_once_with_the_reading_before_it(
    gaps: list[int], data: st.DataObject, strategy: str
) -> None:
    # a counter that mostly grows and sometimes restarts from 0 or wraps
    steps = data.draw(st.lists(st.one_of(st.integers(0, 500), st.just(-1)), min_size=len(gaps), max_size=len(gaps)))
    values: list[Value] = []
    total = 10_000
    for step in steps:
        total = data.draw(st.integers(0, total - 1)) if step == -1 and total > 0 else total + max(step, 0)
        values.append(total)
    stream = polls(gaps, values)
    policy = Policy(strategy, 900.0 if "period" in strategy else 0.0, counter=True)  # type: ignore[arg-type]
    got = reported(policy, stream)
    times = [ts for ts, _ in got]
    assert times == sorted(times) and len(set(times)) == len(times), "reports in time order, each reading once"
    kept = dict(got)
    for (t_prev, prev), (ts, v) in itertools.pairwise(stream):
        assert isinstance(v, int) and isinstance(prev, int)
        if v < prev:
            assert kept.get(ts) == v, f"reset {prev} -> {v} at {ts} not reported"
            assert kept.get(t_prev) == prev, "the reading before the reset is lost"


@given(gaps_ms, st.data())
def test_every_reports_each_reading_as_read(gaps: list[int], data: st.DataObject) -> None:
    values = data.draw(st.lists(st.one_of(readings, st.booleans(), st.none(), st.text(max_size=3)),
                                min_size=len(gaps), max_size=len(gaps)))
    stream = polls(gaps, values)
    assert reported(Policy(), stream) == stream


def test_a_state_change_is_reported_in_the_poll_that_sees_it() -> None:
    rep = DeviceReporter({"lamp_on": Policy("change_or_period", 900.0), "lamp_failure": Policy("change_or_period", 900.0)})
    assert list(rep.select(T0, {"lamp_on": True, "lamp_failure": False})) == [(T0, {"lamp_on": True, "lamp_failure": False})]
    assert list(rep.select(T0 + 1000, {"lamp_on": True, "lamp_failure": False})) == []
    assert list(rep.select(T0 + 2000, {"lamp_on": True, "lamp_failure": True})) == [(T0 + 2000, {"lamp_failure": True})]
    assert list(rep.select(T0 + 3000, {"lamp_on": True, "lamp_failure": None})) == [(T0 + 3000, {"lamp_failure": None})]


def test_a_clock_stepped_back_reports_at_once() -> None:
    rep = DeviceReporter({"power_w": Policy("change_or_period", 900.0, deadband=5.0)})
    rep.select(T0, {"power_w": 60.0})
    assert list(rep.select(T0 + 1000, {"power_w": 60.0})) == []
    assert list(rep.select(T0 - 60_000, {"power_w": 60.0})) == [(T0 - 60_000, {"power_w": 60.0})]


def test_quantities_of_one_period_share_their_heartbeat_whatever_changed_between() -> None:
    rep = DeviceReporter({}, Policy("change_or_period", 60.0))
    start = T0 - T0 % 60_000  # a slot boundary
    rep.select(start, {"a": 1, "b": 1})
    assert list(rep.select(start + 20_000, {"a": 2, "b": 1})) == [(start + 20_000, {"a": 2})]
    assert list(rep.select(start + 60_500, {"a": 2, "b": 1})) == [(start + 60_500, {"a": 2, "b": 1})]


def test_a_bus_reporter_passes_unlisted_devices_and_whole_samples_as_they_are() -> None:
    reporter = Reporter({"lamp-1": DeviceReporter({"power_w": Policy("change", deadband=1.0)}),
                         "lamp-2": DeviceReporter({"power_w": Policy()})})
    first = Sample("lamp-1", T0, {"power_w": 10.0, "lamp_on": True})
    assert list(reporter.select(first)) == [first]
    # lamp_on has no policy of its own: every reading; power_w moved within its deadband
    assert list(reporter.select(Sample("lamp-1", T0 + 1, {"power_w": 10.5, "lamp_on": True}))) == [
        Sample("lamp-1", T0 + 1, {"lamp_on": True})]
    other = Sample("lamp-9", T0, {"power_w": 1.0})
    assert list(reporter.select(other)) == [other]
    assert list(reporter.select(Sample("lamp-1", T0 + 2, {"power_w": 10.6}))) == []
    assert bool(Reporter({"lamp-2": DeviceReporter({"power_w": Policy()})})) is False
