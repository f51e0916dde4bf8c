"""TIC codec: every shared vector, the spec's traps, round trips and a byte-stream parser that survives anything."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import DecodeError
from drivers.tic.codec import (
    LONG_LABELS,
    GroupFault,
    Mode,
    TicChecksumError,
    TicDecodeError,
    TicParser,
    checksum,
    decode_frames,
    decode_group,
    encode_frame,
    encode_group,
)
from drivers.tic.labels import LABELS
from drivers.tic.values import decode_stge, interpret, parse_horodate
from edge_agent.decode_meters import tic_document
from tests.vectors import load_vectors

VECTORS = load_vectors("tic.json")
RECORDED = json.loads((Path(__file__).parent / "tic_frames.json").read_text("utf-8"))["frames"]


@pytest.mark.parametrize("vec", VECTORS["groups"], ids=lambda v: v["text"].strip())
def test_every_group_vector_decodes_to_its_fields(vec: dict) -> None:
    raw = bytes.fromhex(vec["hex"])
    for mode in (Mode(vec["mode"]), None):  # given or detected
        g = decode_group(raw, mode)
        assert g.mode is Mode(vec["mode"])
        exp = vec["expected"]
        assert (g.label, g.data, g.checksum) == (exp["label"], exp["data"], exp["checksum"])
        assert g.horodate == exp.get("horodate")
    # the encoder rebuilds the very bytes (spec checksum form)
    assert encode_group(g.label, g.data, g.mode, g.horodate) == raw


@pytest.mark.parametrize("vec", VECTORS["frames"], ids=lambda v: v["mode"])
def test_every_frame_vector_decodes_strictly_and_by_stream(vec: dict) -> None:
    raw = bytes.fromhex(vec["hex"])
    [frame] = decode_frames(raw)
    assert frame.mode is Mode(vec["mode"])
    assert frame.fields == vec["expected"]["fields"]
    assert frame.horodates == vec["expected"].get("horodates", {})
    parser = TicParser()
    streamed = [f for i in range(len(raw)) for f in parser.feed(raw[i : i + 1])]
    assert streamed == [frame]
    assert parser.checksum_errors == parser.format_errors == 0


def test_historic_checksum_excludes_the_trailing_space_but_the_legacy_form_is_accepted() -> None:
    assert checksum(b"ADCO 050022120078") == "2"
    assert checksum(b"ADCO 050022120078 ") == "R"
    assert decode_group(b"\nADCO 050022120078 R\r").data == "050022120078"
    with pytest.raises(TicChecksumError):
        decode_group(b"\nADCO 050022120078 R\r", legacy_checksum=False)


def test_standard_checksum_includes_the_trailing_tab() -> None:
    assert checksum(b"EAST\t003519702\t") == "*"
    with pytest.raises(TicChecksumError) as err:
        decode_group(b"\nEAST\t003519703\t*\r")
    assert err.value.expected == "+" and err.value.label == "EAST"


def test_space_as_checksum_and_spaces_inside_standard_data() -> None:
    g = decode_group(b"\nPTEC HP..  \r")
    assert (g.data, g.checksum) == ("HP..", " ")
    msg = "PAS DE          MESSAGE         "
    raw = encode_group("MSG1", msg, Mode.STANDARD)
    assert decode_group(raw).data == msg


def test_long_standard_data_up_to_98_characters() -> None:
    data = " ".join(["00008001", "NONUTILE"] * 11)[:98]
    assert decode_group(encode_group("PJOURF+1", data, Mode.STANDARD)).data == data


def test_mode_mismatch_and_malformed_groups_are_precise_errors() -> None:
    with pytest.raises(TicDecodeError, match="standard mode, expected historic"):
        decode_group(b"\nEAST\t003519702\t*\r", Mode.HISTORIC)
    with pytest.raises(TicDecodeError, match="starts with LF"):
        decode_group(b"EAST\t003519702\t*\r")
    with pytest.raises(TicDecodeError, match="not printable"):
        decode_group(b"\nEA\x00T\t003519702\t*\r")
    with pytest.raises(TicDecodeError, match="horodate"):
        zone = b"DATE\tQ240210121355\t\t"
        decode_group(b"\n" + zone + checksum(zone).encode() + b"\r")
    with pytest.raises(TicDecodeError, match="label"):
        decode_group(b"\nTOOLONGLABEL 1 " + checksum(b"TOOLONGLABEL 1").encode() + b"\r")


def test_stge_bits_are_decoded() -> None:
    s = decode_stge("003A0000")  # vector: standard mode, Euridis secured, CPL new/locked
    assert s.mode == "standard" and s.euridis == "enabled_secured" and s.cpl_status == "new_locked"
    assert s.breaking_device == "closed" and not s.power_exceeded
    assert s.supplier_tariff_index == 1 and s.distributor_tariff_index == 1
    t = decode_stge(f"{(2 << 1) | (1 << 7) | (3 << 10) | (1 << 14) | (3 << 24) | (1 << 26):08X}")
    assert t.breaking_device == "open_overvoltage" and t.power_exceeded
    assert (t.supplier_tariff_index, t.distributor_tariff_index) == (4, 2)
    assert (t.tempo_today, t.tempo_tomorrow) == ("red", "blue") and t.mode == "historic"
    with pytest.raises(TicDecodeError):
        decode_stge("00ZZ0000")


def test_horodate_seasons() -> None:
    assert parse_horodate("H081225223518").isoformat() == "2008-12-25T22:35:18+01:00"  # type: ignore[union-attr]
    assert parse_horodate("E240701120000").utcoffset().total_seconds() == 7200  # type: ignore[union-attr]
    assert parse_horodate(" 000000000000") is None
    with pytest.raises(TicDecodeError):
        parse_horodate("H241301000000")


def test_interpret_gives_quantities_with_units() -> None:
    hist = interpret(decode_frames(bytes.fromhex(VECTORS["frames"][0]["hex"]))[0])
    assert hist.values["energy_hchc_wh"] == 94939439 and hist.values["energy_hchp_wh"] == 127970334
    assert hist.values["energy_wh"] == 94939439 + 127970334
    assert hist.values["apparent_power_va"] == 2160 and hist.values["current_a"] == 9
    assert hist.values["tariff"] == "HP" and hist.values["meter_id"] == "050022120078"
    std = interpret(decode_frames(bytes.fromhex(VECTORS["frames"][1]["hex"]))[0])
    v = std.values
    assert (v["energy_wh"], v["energy_easf01_wh"], v["apparent_power_va"]) == (3519702, 3519702, 263)
    assert (v["voltage_v"], v["current_a"], v["tariff"], v["meter_id"]) == (242, 1, "BASE", "012345678910")
    assert v["meter_time"] == "2024-02-10T12:13:55+01:00" and v["breaking_device"] == "closed"
    bad = interpret(decode_frames(encode_frame([("PAPP", None, "0A160")], Mode.HISTORIC))[0])
    assert "apparent_power_va" not in bad.values and bad.problems


def test_parser_resynchronises_after_garbage_eot_and_lost_bytes() -> None:
    good = encode_frame([("ADCO", None, "012345678910"), ("BASE", None, "000001000")], Mode.HISTORIC)
    corrupt = good.replace(b"000001000", b"000001001")  # checksum now wrong
    partial = good[: len(good) // 2]
    stream = (
        b"\xff\x00garbage\r\n" + partial + b"\x04"  # EOT aborts the frame in progress
        + good[:20] + good  # STX before ETX: the first frame is dropped, the second kept
        + corrupt
        + b"\x02\nAD\x00CO 1 x\r\x03"  # a NUL (how a UART reports a parity error) inside a group
        + good
    )  # fmt: skip
    p = TicParser()
    frames = p.feed(stream)
    assert [f.fields for f in frames] == [
        {"ADCO": "012345678910", "BASE": "000001000"},
        {"ADCO": "012345678910"},  # the group with the bad checksum is never data
        {"ADCO": "012345678910", "BASE": "000001000"},
    ]
    assert p.checksum_errors == 1
    assert p.aborted_frames == 2
    assert p.format_errors >= 1
    assert p.skipped_bytes > 0


def test_parser_memory_is_bounded_without_terminators() -> None:
    p = TicParser()
    assert p.feed(b"\x02\n" + b"A" * 100_000) == []
    assert len(p._buf) <= 200
    p.feed(b"\x02" + b"\nX 1 " * 100_000)
    assert len(p._buf) <= 200
    assert len(p._groups) <= 256


def test_a_frame_that_mixes_modes_drops_the_odd_group() -> None:
    raw = (
        b"\x02"
        + encode_group("ADCO", "1", Mode.HISTORIC)
        + encode_group("EAST", "1", Mode.STANDARD)
        + b"\x03"
    )
    p = TicParser()
    [f] = p.feed(raw)
    assert list(f.fields) == ["ADCO"] and p.format_errors == 1
    with pytest.raises(TicDecodeError, match="mode"):
        decode_frames(raw)


labels = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-", min_size=1, max_size=8) | st.sampled_from(
    sorted(LONG_LABELS | LABELS.keys())
)
printable = st.text(alphabet=[chr(c) for c in range(0x20, 0x7F)], max_size=98)
horodates = st.builds(
    lambda s, d: s + d, st.sampled_from("HhEe "), st.text(alphabet="0123456789", min_size=12, max_size=12)
)


@given(labels, printable)
def test_historic_group_round_trip(label: str, data: str) -> None:
    g = decode_group(encode_group(label, data, Mode.HISTORIC))
    assert (g.label, g.data, g.horodate, g.mode) == (label, data, None, Mode.HISTORIC)


@given(labels, printable, st.none() | horodates)
def test_standard_group_round_trip(label: str, data: str, horodate: str | None) -> None:
    g = decode_group(encode_group(label, data, Mode.STANDARD, horodate))
    assert (g.label, g.data, g.horodate, g.mode) == (label, data, horodate, Mode.STANDARD)


@given(
    st.sampled_from(Mode),
    st.lists(
        st.lists(st.tuples(labels, st.text(alphabet="0123456789 ABC.", max_size=16)), min_size=1, max_size=6),
        min_size=1,
        max_size=4,
    ),
    st.lists(st.integers(1, 40), max_size=10),
)
def test_stream_round_trip_is_independent_of_chunking(mode: Mode, frames: list, cuts: list[int]) -> None:
    raw = b"".join(encode_frame([(lb, None, d) for lb, d in f], mode) for f in frames)
    expected = decode_frames(raw, mode)
    p = TicParser(mode)
    got, pos = [], 0
    for c in cuts:
        got += p.feed(raw[pos : pos + c])
        pos += c
    got += p.feed(raw[pos:])
    assert got == expected
    assert [[(g.label, g.data) for g in fr.groups] for fr in got] == [
        [(lb, d) for lb, d in f] for f in frames
    ]


def _only_decode_errors(raw: bytes) -> None:
    for fn in (decode_group, decode_frames, tic_document):
        try:
            fn(raw)
        except TicDecodeError:
            pass
    faults: list[GroupFault] = []
    try:
        for f in decode_frames(raw, faults=faults):
            interpret(f)
    except TicDecodeError:
        pass
    assert all(raw[x.offset : x.offset + len(x.raw)] == x.raw for x in faults)
    p = TicParser()
    for f in p.feed(raw):
        interpret(f)  # values that make no sense are problems, never exceptions
        for g in f.groups:  # whatever survives has a checksum that holds
            assert isinstance(g.label, str) and (len(g.label) <= 8 or g.label in LONG_LABELS)


@settings(max_examples=500)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(raw: bytes) -> None:
    _only_decode_errors(raw)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_with_framing(raw: bytes) -> None:
    _only_decode_errors(b"\x02\n" + raw.replace(b"\x03", b"\r") + b"\r\x03")
    _only_decode_errors(b"\n" + raw + b"\r")


def test_fuzz_mutated_vectors() -> None:
    rng = random.Random(4)
    seeds = [bytes.fromhex(v["hex"]) for v in VECTORS["frames"] + VECTORS["groups"] + RECORDED]
    for _ in range(3000):
        raw = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(3)
            pos = rng.randrange(len(raw))
            if op == 0:
                raw[pos] = rng.randrange(256)
            elif op == 1:
                del raw[pos]
            else:
                raw.insert(pos, rng.choice(b"\x02\x03\x04\n\r\t "))
        _only_decode_errors(bytes(raw))
    assert issubclass(TicDecodeError, DecodeError)


@settings(max_examples=400)
@given(st.sampled_from(sorted(LABELS)), printable, st.none() | horodates | printable.map(lambda t: t[:13]))
def test_interpret_never_raises_on_any_data_of_any_known_label(
    label: str, data: str, horodate: str | None
) -> None:
    mode = Mode.HISTORIC if horodate is None and LABELS[label].mode is Mode.HISTORIC else Mode.STANDARD
    try:
        raw = encode_frame([(label, horodate, data)], mode)
    except ValueError:  # a horodate the encoder refuses: no meter could send it
        return
    reading = interpret(decode_frames(raw)[0])
    assert bool(reading.fields) != bool(reading.problems) or label == "DATE"


def test_one_bad_group_among_good_ones_is_a_fault_not_a_refusal() -> None:
    good = encode_frame([("ADCO", None, "012345678910"), ("BASE", None, "000001000")], Mode.HISTORIC)
    bad = good.replace(b"000001000", b"000001001")
    with pytest.raises(TicDecodeError, match="checksum"):
        decode_frames(bad)  # strict by default
    faults: list[GroupFault] = []
    [frame] = decode_frames(bad, faults=faults)
    assert frame.fields == {"ADCO": "012345678910"}
    [fault] = faults
    assert (
        fault.offset == bad.index(b"\nBASE")
        and "checksum" in fault.reason
        and fault.raw.startswith(b"\nBASE")
    )


def test_historic_groups_separated_by_ht_from_post_2013_blue_meters() -> None:
    # CPT_02E: blue meters built since 2013 may separate with HT, checksum then over label HT data HT
    # ("mode 2"); the older "mode 1" (trailing separator excluded) is accepted too.
    mode2 = b"ADCO\t050022120078\t"
    mode1 = b"ADCO\t050022120078"
    for raw in (
        b"\n" + mode2 + checksum(mode2).encode() + b"\r",
        b"\n" + mode2 + checksum(mode1).encode() + b"\r",
    ):
        g = decode_group(raw, Mode.HISTORIC)
        assert (g.label, g.data, g.mode) == ("ADCO", "050022120078", Mode.HISTORIC)
    with pytest.raises(TicChecksumError):
        decode_group(b"\n" + mode2 + checksum(mode1).encode() + b"\r", Mode.HISTORIC, legacy_checksum=False)
    frame = (
        b"\x02"
        + b"".join(
            b"\n" + z + checksum(z).encode() + b"\r" for z in (mode2, b"PAPP\t00470\t", b"PTEC\tHP..\t")
        )
        + b"\x03"
    )
    [f] = TicParser(Mode.HISTORIC).feed(frame)
    assert f.mode is Mode.HISTORIC and f.fields == {"ADCO": "050022120078", "PAPP": "00470", "PTEC": "HP.."}
    assert interpret(f).values["apparent_power_va"] == 470
    # Read without a mode, HT means standard; a standard label or a horodate is never historic.
    assert decode_group(b"\n" + mode2 + checksum(mode2).encode() + b"\r").mode is Mode.STANDARD
    with pytest.raises(TicDecodeError, match="standard mode, expected historic"):
        decode_group(b"\nEAST\t003519702\t*\r", Mode.HISTORIC)
    zone = b"PAPP\tH240210121355\t00470\t"
    with pytest.raises(TicDecodeError):
        decode_group(b"\n" + zone + checksum(zone).encode() + b"\r", Mode.HISTORIC)
