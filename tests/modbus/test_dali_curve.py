"""The DALI logarithmic curve: reference points, monotonicity and round trips."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.dali import arc_to_percent, percent_to_arc


@pytest.mark.parametrize(
    ("pct", "arc"), [(100, 254), (70, 241), (50, 229), (10, 170), (1, 85), (0, 0)]
)
def test_reference_levels_from_the_standard(pct: int, arc: int) -> None:
    assert percent_to_arc(pct) == arc


def test_curve_end_points() -> None:
    assert arc_to_percent(0) == 0.0
    assert math.isclose(arc_to_percent(1), 0.1)
    assert math.isclose(arc_to_percent(254), 100.0)


def test_half_arc_is_not_half_light() -> None:
    # 127 sent for "50 %" gives about 3 %: the mistake the curve exists to prevent.
    assert 2.5 < arc_to_percent(127) < 3.5


@pytest.mark.parametrize("bad", [-1, 101, 1000])
def test_percent_out_of_range_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match=r"outside 0\.\.100"):
        percent_to_arc(bad)


@pytest.mark.parametrize("bad", [-1, 256])
def test_arc_out_of_range_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match=r"outside 0\.\.254"):
        arc_to_percent(bad)


def test_mask_is_not_a_level() -> None:
    with pytest.raises(ValueError, match="mask"):
        arc_to_percent(255)


def test_non_integers_are_refused() -> None:
    with pytest.raises(TypeError):
        percent_to_arc(50.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        arc_to_percent(True)


@given(st.integers(0, 99))
def test_percent_to_arc_is_monotonic(pct: int) -> None:
    assert percent_to_arc(pct) <= percent_to_arc(pct + 1)


@given(st.integers(0, 253))
def test_arc_to_percent_is_strictly_increasing(arc: int) -> None:
    assert arc_to_percent(arc) < arc_to_percent(arc + 1)


@given(st.integers(1, 100))
def test_percent_round_trip_within_one_arc_step(pct: int) -> None:
    # One arc step is a factor 10**(3/253) (about 2.8 %), so rounding costs at most half of it.
    back = arc_to_percent(percent_to_arc(pct))
    assert abs(back - pct) / pct <= 10 ** (1.5 / 253) - 1 + 1e-9


@given(st.integers(1, 254))
def test_arc_round_trip_through_integer_percent_stays_near(arc: int) -> None:
    # Whole percent loses up to half a percent (up to 0.9 % below 1 %, clamped to 1 %), plus half an arc step.
    pct = arc_to_percent(arc)
    back = arc_to_percent(percent_to_arc(max(1, round(pct))))
    assert abs(back - pct) <= 1.0 + pct * (10 ** (1.5 / 253) - 1)
