"""The compact sample rows give back, byte for byte, the wire record the first format stored whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from citygate_wire.batch import EventRecord, SampleRecord, decode_batch
from drivers.model import Event, Sample, Severity
from edge_agent.journal import Journal, _Template, encode

TS_MIN, TS_MAX = 946_684_800_000, 4_102_444_800_000
#: what the wire carries in a string: any character but U+0000 and a lone surrogate (not UTF-8)
chars = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
text = st.text(chars)
names = st.text(chars, min_size=1, max_size=40)
scalars = (st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False) | text
           | st.booleans() | st.none())
samples = st.builds(
    Sample,
    device=st.text(chars, min_size=1, max_size=128),
    ts_ms=st.integers(TS_MIN, TS_MAX),
    values=st.dictionaries(names, scalars, min_size=1, max_size=15),
)
json_values = st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
                           | st.floats(allow_nan=False, allow_infinity=False) | text,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                           max_leaves=12)
events = st.builds(
    Event,
    device=st.text(chars, min_size=1, max_size=128),
    ts_ms=st.integers(TS_MIN, TS_MAX),
    code=st.text(chars, min_size=1, max_size=64),
    severity=st.sampled_from(list(Severity)),
    detail=st.dictionaries(text, json_values, max_size=5),
)


def first_format(seq: int, sample: Sample) -> bytes:
    """What the journal's first format sent: the whole wire record stored, the seq spliced in."""
    body = orjson.dumps({"kind": "sample", "device": sample.device, "ts_ms": sample.ts_ms, "values": sample.values})
    return b'{"seq":%d,%s' % (seq, body[1:])


def wire_records(records: list[bytes]) -> list[Any]:
    doc = b'{"v":1,"gateway":"gw-1","records":[' + b",".join(records) + b"]}"
    return list(decode_batch(doc).records)


@settings(max_examples=150, deadline=None)
@given(samples, st.integers(1, 2**63 - 1))
def test_every_sample_the_wire_accepts_comes_back_byte_for_byte(sample: Sample, seq: int) -> None:
    _, ts_ms, key, body = encode(sample)
    assert key is not None and key[0] == sample.device
    wire = _Template(key[0], list(key[1])).wire(seq, ts_ms, body)
    assert wire == first_format(seq, sample)
    assert wire_records([wire]) == [SampleRecord(seq, sample.device, sample.ts_ms, dict(sample.values))]


def test_values_with_commas_brackets_and_quotes_take_the_careful_path() -> None:
    sample = Sample("lamp,1", TS_MIN, {"a": "x,y", "b": '["q"]', "c": "{", "d": 1.5e300, "e": -0.0, "f": None})
    _, ts_ms, key, body = encode(sample)
    assert key is not None
    assert _Template(key[0], list(key[1])).wire(7, ts_ms, body) == first_format(7, sample)


@settings(max_examples=12, deadline=None)
@given(st.lists(samples | events, min_size=1, max_size=30))
def test_a_journal_of_any_accepted_records_uploads_them_in_order_across_a_restart(
    tmp_path_factory: Any, records: list[Sample | Event],
) -> None:
    import asyncio

    path: Path = tmp_path_factory.mktemp("j") / "journal.db"

    async def scenario() -> tuple[list[bytes], list[bytes]]:
        async with Journal(path) as journal:
            journal.append_many(records)
            await journal.flush()
            live = await journal.read_pending(1000, 10**8)
        async with Journal(path) as journal:  # the schemas come back from the file
            again = await journal.read_pending(1000, 10**8)
        assert live is not None and again is not None
        return live.records, again.records

    live, again = asyncio.run(scenario())
    assert live == again
    decoded = wire_records(live)
    seqs = [r.seq for r in decoded]
    assert seqs == list(range(seqs[0], seqs[0] + len(records)))
    for record, wire in zip(records, decoded, strict=True):
        if isinstance(record, Sample):
            assert wire == SampleRecord(wire.seq, record.device, record.ts_ms, dict(record.values))
        else:
            assert isinstance(wire, EventRecord)
            assert (wire.device, wire.ts_ms, wire.code, wire.severity) == (
                record.device, record.ts_ms, record.code, str(record.severity))
            assert wire.detail == orjson.loads(orjson.dumps(record.detail))
