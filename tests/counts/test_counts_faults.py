"""The detector fault rules on their own (drivers/traffic/detectors.py): what each needs, how long, and
what does not trip them; the simulator-driven scenario is in test_counts_modbus.py."""

from __future__ import annotations

from datetime import datetime

from drivers.traffic.counting import DetectorCount
from drivers.traffic.detectors import CHATTERING, STUCK_OFF, STUCK_ON, Counting, Detector, DetectorWatch
from tests.traffic.traffic_testkit import PARIS

PAIR = (Detector("A", "V1", 1, pair="B"), Detector("B", "V1", 1, counts=False), Detector("C", "V2", 1))
NOON = int(datetime(2026, 6, 1, 12, 0, tzinfo=PARIS).timestamp())  # off peak
PEAK = int(datetime(2026, 6, 1, 8, 0, tzinfo=PARIS).timestamp())


def ok(n: int = 8) -> DetectorCount:
    return DetectorCount(n, 100, None, None, None)


def run(watch: DetectorWatch, start: int, rows: list[tuple[DetectorCount, ...]]) -> list[tuple[str, str, bool]]:
    out = []
    for k, counts in enumerate(rows):
        out += [(c.detector.id, c.code, c.restored) for c in watch.observe(start + 60 * k, 60, counts)]
    return out


def test_stuck_on_needs_its_full_duration_and_restores_after_two_healthy_intervals() -> None:
    w = DetectorWatch(PAIR, Counting(stuck_on_s=300), PARIS)
    on = DetectorCount(0, 960, None, None, None)
    assert run(w, NOON, [(ok(), ok(), on)] * 4) == []
    assert run(w, NOON + 240, [(ok(), ok(), on)]) == [("C", STUCK_ON, False)]
    assert w.faults(2) == [STUCK_ON]
    assert run(w, NOON + 300, [(ok(), ok(), ok())]) == []  # one healthy interval is not enough
    assert run(w, NOON + 360, [(ok(), ok(), ok())]) == [("C", STUCK_ON, True)]
    assert w.faults(2) == []


def test_stuck_off_against_its_pair_or_in_a_peak_hour_never_a_quiet_lane_off_peak() -> None:
    silent = DetectorCount(0, 0, None, None, None)
    w = DetectorWatch(PAIR, Counting(stuck_off_s=600), PARIS)
    assert run(w, NOON, [(ok(), silent, silent)] * 10) == [("B", STUCK_OFF, False)]  # C is alone and off peak
    w = DetectorWatch(PAIR, Counting(stuck_off_s=600), PARIS)
    assert run(w, PEAK, [(ok(), ok(), silent)] * 10) == [("C", STUCK_OFF, False)]
    # restored only by vehicles counted again: quiet intervals do not prove the loop works
    assert run(w, PEAK + 600, [(ok(), ok(), DetectorCount(0, 0, None, None, None))] * 3) == []
    assert run(w, PEAK + 780, [(ok(), ok(), ok(2))] * 2) == [("C", STUCK_OFF, True)]


def test_chattering_is_more_vehicles_than_the_occupancy_or_the_headway_allows() -> None:
    w = DetectorWatch(PAIR, Counting(chatter_intervals=2), PARIS)
    noisy = DetectorCount(60, 50, None, None, None)  # 60 vehicles in 3 s of occupancy: 0.05 s each
    assert run(w, NOON, [(ok(), ok(), noisy)] * 2) == [("C", CHATTERING, False)]
    w = DetectorWatch(PAIR, Counting(chatter_intervals=2), PARIS)
    dense = DetectorCount(80, 900, None, None, None)  # one vehicle each 0.75 s, however occupied
    assert run(w, NOON, [(ok(), ok(), dense)] * 2) == [("C", CHATTERING, False)]
    w = DetectorWatch(PAIR, Counting(chatter_intervals=2), PARIS)
    busy = DetectorCount(30, 300, None, None, None)  # saturated but plausible: 0.6 s each, one each 2 s
    assert run(w, PEAK, [(busy, busy, busy)] * 5) == []
