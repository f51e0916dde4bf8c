"""The register-map codec: round trips, and words from outside decode or raise DecodeError, nothing else."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from traffic_testkit import DIJON, PARIS, RURAL, utc

from drivers.errors import DecodeError
from drivers.traffic.config import load_timings
from drivers.traffic.registers import (
    IR_ALARMS,
    IR_COUNT,
    IR_GROUP_COUNT,
    IR_MAP_VERSION,
    IR_MODE,
    ControllerState,
    decode_state,
    decode_timings,
    encode_state,
    encode_timings,
)
from drivers.traffic.tables import active_at
from simulators.signals_engine import SignalController, check_block

WORD = st.integers(0, 0xFFFF)


@pytest.mark.parametrize("path", [DIJON, RURAL])
def test_upload_block_round_trip_keeps_every_timing_and_every_switch(path: Path) -> None:
    timings = load_timings(path)
    back = decode_timings(encode_timings(timings), timings.intersection)
    for a, b in zip(timings.plans, back.plans, strict=True):
        assert (a.number, a.cycle_s, a.offset_s, a.priority) == (b.number, b.cycle_s, b.offset_s,
                                                                              b.priority)
        assert [(s.groups, s.green_s, s.interstage_s) for s in a.stages] == [
            (s.groups, s.green_s, s.interstage_s) for s in b.stages
        ]
    t = utc(2026, 3, 23)
    while t < utc(2026, 4, 6):  # two weeks across the spring-forward day, every 15 minutes
        x, y = active_at(timings.schedule, t, PARIS), active_at(back.schedule, t, PARIS)
        assert (x.plan, x.position, x.since) == (y.plan, y.position, y.since), t
        t += timedelta(minutes=15)


def _some_state() -> ControllerState:
    timings = load_timings(DIJON)
    ctrl = SignalController(timings.intersection, timings, start=utc(2026, 6, 1, 10), tz=PARIS)
    ctrl.steps(120)
    ctrl.set_lamp_failure("P4")
    ctrl.set_door_open(True)
    return ctrl.state()


def test_state_round_trip() -> None:
    state = _some_state()
    assert decode_state(encode_state(state)) == state


@pytest.mark.parametrize(
    ("index", "value", "reason"),
    [
        (IR_MAP_VERSION, 2, "register map version 2"),
        (IR_MODE, 9, "mode: unknown code 9"),
        (IR_ALARMS, 0x0100, "undefined bits"),
        (IR_GROUP_COUNT, 40, "group count 40"),
        (32, 7, "group 1 aspect: unknown code 7"),
    ],
)
def test_state_words_that_make_no_sense_are_refused(index: int, value: int, reason: str) -> None:
    words = encode_state(_some_state())
    words[index] = value
    with pytest.raises(DecodeError, match=reason):
        decode_state(words)
    with pytest.raises(DecodeError, match="words, expected"):
        decode_state(words[:-1])


@settings(max_examples=500, deadline=None)
@given(st.lists(WORD, min_size=IR_COUNT, max_size=IR_COUNT), st.integers(0, IR_COUNT - 1), WORD)
def test_fuzzed_state_blocks_decode_or_raise_decode_error(words: list[int], index: int, value: int) -> None:
    good = encode_state(_STATE)
    good[index] = value
    for candidate in (words, good):
        try:
            decode_state(candidate)
        except DecodeError:
            pass


_STATE = _some_state()
_IX = load_timings(DIJON).intersection
_BLOCK = encode_timings(load_timings(DIJON))


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_BLOCK) - 1), WORD), max_size=4), st.integers(-5, 5), st.lists(WORD, max_size=200))
def test_fuzzed_upload_blocks_decode_or_raise_decode_error_and_never_crash_the_controller(
    edits: list[tuple[int, int]], resize: int, noise: list[int]
) -> None:
    mutated = list(_BLOCK)
    for i, v in edits:
        mutated[i] = v
    mutated = mutated[: len(mutated) + resize] if resize < 0 else mutated + [0] * resize
    for candidate in (mutated, noise, _BLOCK[:3] + noise):
        try:
            decode_timings(candidate, _IX)
        except DecodeError:
            pass
        timings, refusal = check_block(_IX, candidate)
        assert (timings is None) != (refusal is None)
