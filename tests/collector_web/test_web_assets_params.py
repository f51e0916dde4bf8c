"""The asset pages' and the efficiency page's query parameters, whatever a client sends: a value in
range or a 400 problem naming the parameter, never another exception (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.dashboard.assets_api import FIRST_MS, LAST_MS, instant
from collector.efficiency import month_of
from collector.problem import Problem

TEXT = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"-?[0-9]{1,22}", fullmatch=True),
    st.from_regex(r"[0-9]{4}-[0-9]{2}(-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2})?(Z|[+-][0-9]{2}:[0-9]{2})?)?)?",
                  fullmatch=True),
)


@settings(max_examples=300, deadline=None)
@given(TEXT, st.booleans())
def test_an_instant_is_in_range_or_a_problem(raw: str, end: bool) -> None:
    try:
        ms = instant(raw, "from", end=end)
    except Problem as exc:
        assert exc.status == 400
        return
    assert FIRST_MS <= ms <= LAST_MS


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_a_month_is_a_month_or_a_problem(raw: str) -> None:
    try:
        month = month_of(raw, "to")
    except Problem as exc:
        assert exc.status == 400
        return
    assert month.day == 1 and 2000 <= month.year < 2100 and raw == month.isoformat()[:7]


def test_the_edges() -> None:
    assert instant("2026-11-28", "from", end=False) == 1_795_820_400_000  # 00:00 in Paris is 23:00 UTC the day before
    assert instant("2026-11-28", "to", end=True) == 1_795_906_800_000 - 1
    assert instant("2026-11-28T10:00:00+01:00", "from", end=False) == 1_795_856_400_000
    for raw in ("9" * 19, "0", "1999-12-31", "2100-01-01T00:00:01Z", "2026-11-28T10:00:00", "20261128"):
        try:
            value = instant(raw, "from", end=False)
        except Problem:
            continue
        assert raw == "20261128" and value == 1_795_820_400_000
