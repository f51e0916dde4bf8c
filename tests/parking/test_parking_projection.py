"""The collector's occupancy projection on any sequence of states: the milliseconds it credits are the
timeline's, hour by hour, and a change is counted only between two different known states."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.parking.project import HOUR_MS, Hours, apply_sample, open_hours
from collector.parking.store import EventRow, SpaceRow

T0 = 1_796_320_500_000
STATES = st.sampled_from(["occupied", "free", "unknown"])


@given(st.lists(st.tuples(st.integers(0, 3 * HOUR_MS), STATES), min_size=1, max_size=40), st.integers(0, 3 * HOUR_MS))
@settings(max_examples=200, deadline=None)
def test_credited_time_and_changes_are_the_timelines(steps: list[tuple[int, str]], tail_ms: int) -> None:
    row = SpaceRow("pk-1", "s", "z", "gw", 47.0, 5.0)
    hours: Hours = {}
    events: list[EventRow] = []
    t = T0
    timeline: list[tuple[int, str]] = []
    for dt, state in steps:
        t += dt
        apply_sample(row, t, {"parking_state": state, "rssi_dbm": -100}, hours, 1, events)
        if not timeline or timeline[-1][1] != state:
            timeline.append((t, state))
    end = t + tail_ms
    for h in open_hours([row], end, T0):
        cell = hours.setdefault((h.space, h.bucket), [0, 0, 0])
        cell[0] += h.occupied_ms
        cell[1] += h.known_ms
    occupied = sum(c[0] for c in hours.values())
    known = sum(c[1] for c in hours.values())
    spans = [(a[0], b[0] if b else end, a[1]) for a, b in zip(timeline, [*timeline[1:], None], strict=True)]
    assert occupied == sum(t1 - t0 for t0, t1, s in spans if s == "occupied")
    assert known == sum(t1 - t0 for t0, t1, s in spans if s != "unknown")
    assert all(0 <= c[0] <= c[1] <= HOUR_MS for c in hours.values())
    known_seq = [s for _, s in timeline if s != "unknown"]
    assert sum(c[2] for c in hours.values()) == sum(a != b for a, b in pairwise(known_seq))
    assert row.rssi_dbm == -100 and events == []
