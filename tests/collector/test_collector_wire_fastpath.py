"""citygate_wire.batch validates common samples on a fast path: it must accept exactly what the
checked path accepts, build the same record, and leave every refusal (and its pointer) to it."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from citygate_wire import batch
from citygate_wire.batch import WireError, WireRecord

scalars = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=5), st.booleans(),
                    st.none())
values = st.one_of(st.dictionaries(st.text(max_size=8), st.one_of(scalars, st.lists(st.integers(), max_size=2)),
                                   max_size=4), scalars)
records = st.fixed_dictionaries(
    {},
    optional={
        "seq": st.one_of(st.integers(-5, 2**64), st.booleans(), st.floats(), st.text(max_size=3)),
        "kind": st.sampled_from(["sample", "event", "blob", 1]),
        "device": st.one_of(st.text(max_size=130), st.integers()),
        "ts_ms": st.one_of(st.integers(0, 5 * 10**12), st.just(1_764_547_200_000), st.floats()),
        "values": values,
        "code": st.text(max_size=3),
        "extra": st.integers(),
    },
)


def outcome(fn: Any, raw: Any) -> WireRecord | tuple[str, str]:
    try:
        return fn(raw, 3)
    except WireError as exc:
        return exc.pointer, exc.reason


@given(raw=st.one_of(records, scalars))
def test_fast_path_agrees_with_the_checked_path(raw: Any) -> None:
    assert outcome(batch._record, raw) == outcome(batch._checked_record, raw)


@given(seq=st.integers(1, 2**63 - 1), ts=st.integers(946_684_800_000, 4_102_444_800_000),
       vals=st.dictionaries(st.text(max_size=8), scalars, min_size=1, max_size=5))
def test_well_formed_samples_take_the_fast_path(seq: int, ts: int, vals: dict[str, Any]) -> None:
    raw = {"seq": seq, "kind": "sample", "device": "lamp-1", "ts_ms": ts, "values": vals}
    assert batch._record(raw, 0) == batch._checked_record(raw, 0) == WireRecord(seq, "sample", "lamp-1", ts,
                                                                                 values=vals)
