"""citygate_wire.batch decodes with msgspec and falls back to its checked path (orjson and a
check of every member) for anything msgspec refuses: the two must accept exactly the same
batches, build the same records (the same JSON once stored), and leave every refusal and its
pointer to the checked path. Well-formed batches must really take the msgspec path."""

from __future__ import annotations

import random
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from citygate_wire import batch
from citygate_wire.batch import Batch, EventRecord, SampleRecord, WireError, decode_batch

TS = 1_764_547_200_000

# number tokens as text: boundaries of int64/uint64, overflowing and underflowing floats, forms of zero
NUMBERS = ["0", "-0", "-0.0", "1", "1.0", "1e2", "1E-2", "0.1", "-1", "2.5e-308", "1e-400", "1e400", "-1e400",
           "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
           "18446744073709551615", "18446744073709551616", "1764547200000", "946684799999", "4102444800001",
           "123456789.123456789", "1.7976931348623157e308", "true", "false", "null"]
STRINGS = ['"sample"', '"event"', '"lamp-1"', '""', '"x"', '"\\ud800"', '"\\ud83d\\ude00"', '"\u00e9t\u00e9"',
           '"info"', '"major"', '"apocalyptic"', '"21231"', '"212310"', '"' + "d" * 128 + '"',
           '"' + "d" * 129 + '"', '"' + "\U0001f600" * 128 + '"', '"' + "\U0001f600" * 129 + '"', '"\\u0000"']
KEYS = ["seq", "kind", "device", "ts_ms", "values", "code", "severity", "detail", "extra", "v", "gateway",
        "commune", "records"]


def texts() -> st.SearchStrategy[str]:
    """JSON texts as gateways (or attackers) might write them: any key may repeat, numbers in any
    form, nesting deep enough to pass orjson's writing limit."""
    scalar = st.sampled_from(NUMBERS + STRINGS)

    def obj(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        member = st.tuples(st.sampled_from([*KEYS, "level_pct", "lamp_on", "a"]), children)
        return st.lists(member, max_size=7).map(lambda ms: "{" + ",".join(f'"{k}":{v}' for k, v in ms) + "}")

    return st.recursive(scalar, lambda c: obj(c) | st.lists(c, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]"),
                        max_leaves=30)


def record_texts() -> st.SearchStrategy[list[str]]:
    """Batches of records close to well-formed: members in any order, ascending seq, and now and
    then a member missing, added, or given an odd value."""
    scalar = st.sampled_from(NUMBERS + STRINGS)
    values = st.lists(st.tuples(st.sampled_from(["level_pct", "lamp_on", "x", ""]), scalar), max_size=3).map(
        lambda ms: "{" + ",".join(f'"{k}":{v}' for k, v in ms) + "}")

    @st.composite
    def record(draw: st.DrawFn, seq: int) -> str:
        kind = draw(st.sampled_from(['"sample"'] * 5 + ['"event"'] * 4 + ['"blob"']))
        members = {"kind": kind, "seq": str(seq), "device": '"lamp-1"', "ts_ms": str(TS)}
        if kind == '"sample"':
            members["values"] = draw(st.just('{"level_pct":70,"power_w":61.2}') | values)
        else:
            members["code"] = '"lamp_failure"'
            if draw(st.booleans()):
                members["severity"] = draw(st.sampled_from(['"major"', '"info"', '"apocalyptic"', "null"]))
            if draw(st.booleans()):
                members["detail"] = draw(st.just('{"failures":3}') | texts())
        if draw(st.integers(0, 9)) == 0:
            members[draw(st.sampled_from(KEYS))] = draw(texts())
        if draw(st.integers(0, 9)) == 0:
            members.pop(draw(st.sampled_from(sorted(members))))
        order = draw(st.permutations(sorted(members)))
        return "{" + ",".join(f'"{k}":{members[k]}' for k in order) + "}"

    @st.composite
    def records(draw: st.DrawFn) -> list[str]:
        seqs = sorted(draw(st.sets(st.integers(1, 40), min_size=1, max_size=4)))
        if draw(st.integers(0, 9)) == 0:
            seqs.reverse()
        return [draw(record(seq)) for seq in seqs]

    return records()


def body(records: list[str], head: str = '"v":1,"gateway":"gw-1","commune":"21231"') -> bytes:
    return ("{" + head + ',"records":[' + ",".join(records) + "]}").encode()


def outcome(fn: Any, raw: bytes) -> Any:
    """The batch as it would be stored (values and details as the store's JSON), or the refusal."""
    try:
        b: Batch = fn(raw, 100_000)
    except WireError as exc:
        return "refused", exc.pointer, exc.reason
    return b.gateway, b.commune, [
        (type(r).__name__, r.seq, r.device, r.ts_ms,
         orjson.dumps(r.values) if isinstance(r, SampleRecord) else (r.code, r.severity, orjson.dumps(r.detail)))
        for r in b.records]


@settings(max_examples=400)
@given(records=record_texts())
def test_decoders_agree_on_near_well_formed_records(records: list[str]) -> None:
    raw = body(records)
    assert outcome(decode_batch, raw) == outcome(batch._checked_batch, raw)


@settings(max_examples=300)
@given(head=texts(), records=st.lists(texts(), max_size=3))
def test_decoders_agree_on_any_json(head: str, records: list[str]) -> None:
    for raw in (head.encode(), body(records), body(records, head=head.strip("{}") or '"v":1')):
        assert outcome(decode_batch, raw) == outcome(batch._checked_batch, raw)


def test_decoders_agree_on_the_edges() -> None:
    sample = '{"seq":%s,"kind":"sample","device":"lamp-1","ts_ms":1764547200000,"values":{"x":%s}}'
    event = '{"seq":1,"kind":"event","device":"lamp-1","ts_ms":1764547200000,"code":"c","detail":%s}'
    cases = [body([sample % ("1", n)]) for n in NUMBERS]
    cases += [body([sample % (n, "1")]) for n in NUMBERS]
    cases += [body([event % ("[" * d + "]" * d)]) for d in (250, 251, 252, 253, 254, 300, 1019, 1020, 1100)]
    cases += [body([event % '{"n":18446744073709551616}']), body([event % '{"n":-9223372036854775809}'])]
    cases += [body(['{"seq":1,"kind":"sample","kind":"event","device":"d","ts_ms":1764547200000,"code":"c"}']),
              body(['{"seq":1,"kind":"event","device":"d","ts_ms":1764547200000,"code":"c","kind":"sample"}']),
              body([sample % ("2", "1"), sample % ("1", "1")]), body([sample % ("1", "1")] * 2),
              b'{"v":1.0,"gateway":"g","records":[]}', b'{"v":true,"gateway":"g","records":[]}',
              b'{"v":1,"gateway":"g","commune":null,"records":[]}', b'\xef\xbb\xbf{"v":1,"gateway":"g","records":[]}',
              b'{"v":1,"gateway":"g","records":["\xff"]}', b'{"v":1,"gateway":"g","records":[]} x', b"", b"[]"]
    for raw in cases:
        assert outcome(decode_batch, raw) == outcome(batch._checked_batch, raw), raw[:200]


def test_too_many_records_are_refused_by_either_path() -> None:
    raw = body([f'{{"seq":{s},"kind":"sample","device":"d","ts_ms":1764547200000,"values":{{"x":1}}}}'
                for s in range(1, 6)])
    assert outcome(decode_batch, raw)[0] == "gw-1"
    assert decode_batch(raw, 5).records[-1].seq == 5
    for fn in (decode_batch, batch._checked_batch):
        try:
            fn(raw, 4)
        except WireError as exc:
            assert exc.pointer == "/records"
        else:
            raise AssertionError(f"{fn.__name__} took 5 records with a limit of 4")


@given(seq=st.integers(1, 2**63 - 2), ts=st.integers(946_684_800_000, 4_102_444_800_000),
       vals=st.dictionaries(st.text(max_size=8), st.one_of(
           st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5),
           st.booleans(), st.none()), min_size=1, max_size=5),
       detail=st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**63 - 1) | st.text(max_size=3),
                              max_size=3))
def test_well_formed_batches_take_the_msgspec_path(seq: int, ts: int, vals: dict[str, Any],
                                                   detail: dict[str, Any]) -> None:
    records = [{"seq": seq, "kind": "event", "device": "lamp-1", "ts_ms": ts, "code": "lamp_failure",
                "detail": detail},
               {"seq": seq + 1, "kind": "sample", "device": "lamp-1", "ts_ms": ts, "values": vals}]
    raw = orjson.dumps({"v": 1, "gateway": "gw-1", "commune": None, "records": records})
    doc = batch._DECODER.decode(raw)  # raises if msgspec refused it
    assert outcome(decode_batch, raw) == outcome(batch._checked_batch, raw)
    assert [type(r) for r in doc.records] == [EventRecord, SampleRecord]
    assert isinstance(doc.records[0], EventRecord) and doc.records[0].severity == "info"


def test_mangled_bodies_get_a_wire_error_or_the_same_batch() -> None:
    rnd = random.Random(1764547200)
    good = body([f'{{"seq":{s},"kind":"sample","device":"lamp-1","ts_ms":1764547200000,"values":{{"level_pct":70}}}}'
                 for s in range(1, 4)] + [
        '{"seq":9,"kind":"event","device":"lamp-2","ts_ms":1764547200000,"code":"c","severity":"minor"}'])
    for _ in range(3000):
        raw = bytearray(good)
        for _ in range(rnd.randint(1, 4)):
            raw[rnd.randrange(len(raw))] = rnd.randrange(256)
        assert outcome(decode_batch, bytes(raw)) == outcome(batch._checked_batch, bytes(raw))


def test_events_the_store_could_not_keep_are_refused_with_their_pointer() -> None:
    event = '{"seq":1,"kind":"event","device":"lamp-1","ts_ms":1764547200000,"code":"c",%s}'
    # a severity that is an object (unhashable) once crashed the check; a detail nested 300 deep or
    # holding an integer beyond 64 bits parsed, then failed in the store at every retry
    for member, pointer in (('"severity":{}', "/records/0/severity"), ('"severity":[1]', "/records/0/severity"),
                            ('"detail":{"a":' + "[" * 300 + "]" * 300 + "}", "/records/0/detail"),
                            ('"detail":{"n":-9223372036854775809}', None)):
        raw = body([event % member])
        if pointer is None:  # orjson reads it as a float, which the store writes: accepted so
            detail = decode_batch(raw).records[0]
            assert isinstance(detail, EventRecord) and detail.detail == {"n": -9.223372036854776e18}
            continue
        try:
            decode_batch(raw)
        except WireError as exc:
            assert exc.pointer == pointer, member
        else:
            raise AssertionError(f"accepted {member}")
