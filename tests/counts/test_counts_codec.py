"""The interval registers' codec: arbitrary words give a reading or a DecodeError, never another
exception; what the controller encodes decodes to itself. The detectors' file section and the
demand model's day profiles."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import ConfigError, DecodeError
from drivers.traffic.config import parse_timings
from drivers.traffic.counting import (
    COUNTING_WORDS,
    DETECTOR_WORDS,
    MAX_DETECTORS,
    NONE_WORD,
    SLOT_HEADER_WORDS,
    CountingHeader,
    DetectorCount,
    Interval,
    decode_header,
    decode_interval,
    encode_header,
    encode_interval,
)
from simulators.traffic_demand import profile
from tests.traffic.traffic_testkit import PARIS, small_doc

WORD = st.integers(0, 0xFFFF)
ANY_INT = st.integers(-10, 0x1FFFF)


@settings(max_examples=300)
@given(st.lists(ANY_INT, min_size=0, max_size=8))
def test_any_header_words_decode_or_raise_decode_error(words: list[int]) -> None:
    try:
        h = decode_header(words)
    except DecodeError:
        return
    assert len(words) == COUNTING_WORDS and 0 <= h.detectors <= MAX_DETECTORS
    assert encode_header(h) == words


@settings(max_examples=250)
@given(st.integers(0, 4), st.data())
def test_any_slot_words_decode_or_raise_decode_error(n: int, data: st.DataObject) -> None:
    size = SLOT_HEADER_WORDS + n * DETECTOR_WORDS
    words = data.draw(st.one_of(st.lists(ANY_INT, min_size=size, max_size=size),
                                st.lists(WORD, min_size=0, max_size=size + 3),
                                _plausible(n)))
    try:
        iv = decode_interval(words, n)
    except DecodeError:
        return
    assert encode_interval(iv) == words  # a reading is exactly what the words said
    for c in iv.counts:
        assert 0 <= c.occupancy_permille <= 1000
        assert (c.light is None) == (c.heavy is None)
        assert c.light is None or c.heavy is None or c.light + c.heavy == c.count


def _plausible(n: int) -> st.SearchStrategy[list[int]]:
    """Mostly valid slots with one word perturbed: the decoder's edges."""
    def build(index: int, length: int, dets: list[tuple[int, int, int, int]], at: int, value: int) -> list[int]:
        words = [index >> 16, index & 0xFFFF, (index * length) >> 16 & 0xFFFF, index * length & 0xFFFF, length, n]
        for count, occ, speed, heavy in dets:
            cls = [count - min(heavy, count), min(heavy, count)] if speed != NONE_WORD else [NONE_WORD, NONE_WORD]
            words += [count, occ, speed, *cls]
        if at < len(words):
            words[at] = value
        return words
    det = st.tuples(st.integers(0, 200), st.integers(0, 1001), st.sampled_from([NONE_WORD, 0, 420, 2500, 2501]),
                    st.integers(0, 20))
    return st.builds(build, st.integers(1, 70_000_000), st.sampled_from([9, 10, 60, 3600, 3601]),
                     st.lists(det, min_size=n, max_size=n), st.integers(0, 40), WORD)


def test_an_interval_round_trips() -> None:
    iv = Interval(29_671_560, 29_671_560 * 60, 60, (DetectorCount(12, 143, 387, 11, 1), DetectorCount(0, 0, None, None, None)))
    assert decode_interval(encode_interval(iv), 2) == iv
    assert decode_header(encode_header(CountingHeader(2, 60, 70_000_000, 16))).last_index == 70_000_000


@pytest.mark.parametrize(("detectors", "message"), [
    ([{"id": "D1", "approach": "V1"}], "detector[0].lane: missing"),
    ([{"id": "D1", "approach": "V1", "lane": 1, "pair": "D9"}], "detector[0].pair"),
    ([{"id": "D1", "approach": "V1", "lane": 1}, {"id": "D2", "approach": "V1", "lane": 1}], "two counting detectors"),
    ([{"id": "D1", "approach": "V1", "lane": 1, "colour": "red"}], "detector[0].colour: unknown key"),
    ([{"id": "D1", "approach": "V1", "lane": 0}], "detector[0].lane"),
])
def test_detector_mistakes_name_their_key(detectors: list[dict[str, object]], message: str) -> None:
    doc = small_doc()
    doc["detector"] = detectors
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_timings(doc)


def test_a_pair_s_second_loop_does_not_count_twice_and_peak_hours_parse() -> None:
    doc = small_doc()
    doc["detector"] = [{"id": "A", "approach": "V1", "lane": 1, "pair": "B"}, {"id": "B", "approach": "V1", "lane": 1}]
    doc["counting"] = {"peak_hours": ["07:00-09:00"], "stuck_on_s": 120}
    t = parse_timings(doc)
    assert [(d.id, d.counts) for d in t.detectors] == [("A", True), ("B", False)]
    assert t.counting.stuck_on_s == 120 and t.counting.in_peak(datetime(2026, 6, 1, 8, 0, tzinfo=PARIS))
    doc["counting"] = {"peak_hours": ["09:00-07:00"]}
    with pytest.raises(ConfigError, match="not after the start"):
        parse_timings(doc)


def _hourly(day: int, morning: bool = True) -> list[float]:
    return [profile(datetime(2026, 6, day, h, 30, tzinfo=PARIS), morning) for h in range(24)]


def test_the_day_profiles_weekday_two_peaks_saturday_sunday_lower() -> None:
    weekday, saturday, sunday = _hourly(1), _hourly(6), _hourly(7)  # Monday, Saturday, Sunday
    peaks = [h for h in range(1, 23) if weekday[h] > weekday[h - 1] and weekday[h] > weekday[h + 1]]
    assert peaks == [7, 17] or peaks == [8, 17], peaks
    assert weekday[3] < 0.1 and weekday[8] > 5 * weekday[3]
    assert sum(sunday) < sum(saturday) < sum(weekday)
    # inbound approaches lean to the morning, outbound ones to the evening
    outbound = _hourly(1, morning=False)
    assert weekday[8] > outbound[8] and outbound[17] > outbound[8]
