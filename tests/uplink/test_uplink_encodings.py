"""The collector takes a batch gzip- or zstd-compressed (the migration of issue 19), and a hostile
compressed body gets a 4xx problem document, never a 500 or a hang: real server, real HTTP."""

from __future__ import annotations

import gzip
import time

import orjson
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from uplink_kit import COMMUNE, GATEWAY, Collector

from citygate_wire.compression import MAX_WINDOW, Compressor, DecodeError, unzstd
from citygate_wire.zdict import DICTIONARY_ID


def batch(first_seq: int, n: int = 5) -> bytes:
    now = time.time_ns() // 1_000_000 - 60_000
    records = [{"seq": first_seq + i, "kind": "sample", "device": f"lamp-{i % 3:03d}", "ts_ms": now + i,
                "values": {"level_pct": 70, "power_w": 41.9, "lamp_on": True}} for i in range(n)]
    return orjson.dumps({"v": 1, "gateway": GATEWAY, "commune": COMMUNE, "records": records})


def assert_problem(reply: tuple[int, str, dict[str, object]], expected: int, *words: str) -> None:
    status, content_type, doc = reply
    assert status == expected, (status, doc)
    assert content_type == "application/problem+json", content_type
    assert doc["status"] == expected and doc["detail"], doc
    for word in words:
        assert word in str(doc["detail"]), doc


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
async def test_a_batch_is_stored_once_whichever_encoding_the_gateway_chose(collector: Collector, encoding: str) -> None:
    body = Compressor(encoding).compress([batch(100)])  # type: ignore[arg-type]
    status, _, doc = await collector.post(body, encoding)
    assert status == 200 and doc == {"ack_seq": 104, "stored": 5, "duplicates": 0}, doc
    status, _, doc = await collector.post(body, encoding)  # a retry after a lost answer
    assert status == 200 and doc == {"ack_seq": 104, "stored": 0, "duplicates": 5}, doc


async def test_both_encodings_side_by_side_during_the_migration(collector: Collector) -> None:
    assert (await collector.post(gzip.compress(batch(1)), "gzip"))[0] == 200
    assert (await collector.post(Compressor("zstd").compress([batch(6)]), "zstd"))[0] == 200
    plain = zstandard.ZstdCompressor(write_content_size=True).compress(batch(11))  # no dictionary: plain zstd
    assert (await collector.post(plain, "zstd"))[0] == 200
    counts = await collector.store.count_records()
    assert counts.samples == 15, counts


def test_the_agent_frames_name_the_shipped_dictionary_and_their_size() -> None:
    body = batch(1)
    frame = Compressor("zstd").compress([body])
    params = zstandard.get_frame_parameters(frame)
    assert params.dict_id == DICTIONARY_ID and params.content_size == len(body)
    assert unzstd(frame, 10**6) == body
    # the dictionary earns its keep on a small batch
    assert len(frame) < 0.8 * len(zstandard.ZstdCompressor(level=9).compress(body))


async def test_a_frame_naming_an_unknown_dictionary_is_refused_by_name(collector: Collector) -> None:
    other = zstandard.train_dictionary(1024, [batch(i * 10) for i in range(1, 200)], dict_id=424242)
    frame = zstandard.ZstdCompressor(dict_data=other).compress(batch(1))
    assert_problem(await collector.post(frame, "zstd"), 400, "dictionary 424242", str(DICTIONARY_ID))


async def test_a_zstd_bomb_is_refused_before_it_is_inflated(collector: Collector) -> None:
    bomb = zstandard.ZstdCompressor(level=3).compress(b"\x20" * 50_000_000)  # 50 MB of spaces in a few KB
    assert len(bomb) < 10_000
    started = time.monotonic()
    assert_problem(await collector.post(bomb, "zstd"), 413, "limit")
    assert time.monotonic() - started < 2


async def test_a_frame_that_does_not_say_its_size_or_lies_about_it_is_refused(collector: Collector) -> None:
    unsized = zstandard.ZstdCompressor(write_content_size=False).compress(batch(1))
    assert_problem(await collector.post(unsized, "zstd"), 400, "content size")
    streamed = zstandard.ZstdCompressor().compressobj()
    unknown = streamed.compress(batch(1)) + streamed.flush()
    assert_problem(await collector.post(unknown, "zstd"), 400)
    frame = Compressor("zstd").compress([batch(1)])
    assert_problem(await collector.post(frame + b"trailing", "zstd"), 400, "unused data")
    assert_problem(await collector.post(frame[:-4], "zstd"), 400)
    assert_problem(await collector.post(b"", "zstd"), 400)


def test_a_frame_asking_for_a_huge_window_is_refused_before_decoding() -> None:
    # frame header: magic; descriptor: a 4-byte content size; window 2^30 (exponent 20); size 1000; one raw block
    header = b"\x28\xb5\x2f\xfd" + bytes([0b1000_0000, (30 - 10) << 3]) + (1000).to_bytes(4, "little")
    block = (1 | 1000 << 3).to_bytes(3, "little") + b"x" * 1000
    assert zstandard.get_frame_parameters(header + block).window_size == 2**30 > MAX_WINDOW
    with pytest.raises(DecodeError, match="window"):
        unzstd(header + block, 10**9)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_the_decoder_turns_any_bytes_into_content_or_a_decode_error(data: bytes) -> None:
    try:
        out = unzstd(data, 100_000)
    except DecodeError:
        return
    assert len(out) <= 100_000


_VALID = Compressor("zstd").compress([batch(1, 40)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(
    st.binary(max_size=400),
    # a valid frame with bytes changed, cut or added: reaches the block decoder, not only the header check
    st.tuples(st.integers(0, len(_VALID) - 1), st.binary(min_size=1, max_size=8)).map(
        lambda cut: _VALID[:cut[0]] + cut[1] + _VALID[cut[0] + len(cut[1]):]),
    st.integers(1, len(_VALID) - 1).map(lambda n: _VALID[:n]),
    st.binary(min_size=1, max_size=40).map(lambda tail: _VALID + tail),
))
async def test_a_hostile_zstd_body_gets_a_4xx_problem_never_a_5xx(collector: Collector, body: bytes) -> None:
    status, content_type, doc = await collector.post(body, "zstd")
    if status == 200:  # a change that left a valid frame of a valid batch
        return
    assert 400 <= status < 500, (status, doc)
    assert content_type == "application/problem+json" and doc["status"] == status, doc
