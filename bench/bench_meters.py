"""Serial meters decoded per second on one core: TIC groups (byte-stream parser) and M-Bus telegrams.

TIC: N frames from the simulated Linky (historic and standard mode, distinct indexes) are fed
to TicParser in 64-byte chunks, as a serial port delivers them; the figure is groups per
second (checksums checked, values interpreted into a sample). Baselines, same run, same bytes:
(a) a bare split on CR/LF/separator with no checksum, no state machine, no interpretation, the
floor of any Python TIC reader; (b) the parser alone without interpretation.
M-Bus: N RSP_UD telegrams of the simulated water meter (distinct volumes) through
decode_response + meter_values. Baseline: the bare struct.unpack of the same fixed layout
(header and the record values at known offsets), i.e. a decoder that knows the frame in advance.
Best of 3 runs.

    python bench/bench_meters.py [--frames 3000] [--telegrams 30000] [--full]
"""

from __future__ import annotations

import argparse
import struct
import time
from collections.abc import Callable

from drivers.mbus.encode import Coding, encode_record, encode_response
from drivers.mbus.records import Header, decode_response
from drivers.mbus.values import meter_values
from drivers.tic.codec import Mode, TicParser, encode_frame
from drivers.tic.values import interpret
from simulators.tic_meter import TicMeter


def best_time(fn: Callable[[], object], runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def tic_stream(mode: Mode, frames: int) -> tuple[bytes, int]:
    meter = TicMeter(mode=mode, seed=1, option="HC")
    parts: list[bytes] = []
    groups = 0
    for i in range(frames):
        meter.indexes["HP"] += 17 * i
        g = meter.groups()
        groups += len(g)
        parts.append(encode_frame(g, mode))
    return b"".join(parts), groups


def bench_tic(mode: Mode, frames: int) -> None:
    stream, groups = tic_stream(mode, frames)
    chunks = [stream[i : i + 64] for i in range(0, len(stream), 64)]
    sep = b"\t" if mode is Mode.STANDARD else b" "

    def full() -> None:
        p = TicParser(mode)
        for c in chunks:
            for f in p.feed(c):
                interpret(f)

    def parser_only() -> None:
        p = TicParser(mode)
        for c in chunks:
            p.feed(c)

    def bare_split() -> None:
        for line in stream.split(b"\r"):
            line.strip(b"\x02\x03\n").split(sep)

    t_full, t_parse, t_bare = best_time(full), best_time(parser_only), best_time(bare_split)
    check = TicParser(mode)
    assert sum(len(f.groups) for c in chunks for f in check.feed(c)) == groups and check.checksum_errors == 0
    rate = groups / t_full
    print(
        f"TIC {mode:<8}  {groups:>8} groups  {rate:>12,.0f} groups/s decoded+interpreted "
        f"({groups / t_parse:,.0f}/s parser only; bare split {groups / t_bare:,.0f}/s)  "
        f"ratio to bare split: {t_bare / t_full:.2f}x the speed ({t_full / t_bare:.1f}x slower)"
    )


def mbus_telegrams(n: int) -> list[bytes]:
    header = Header("00182007", "GWF", 0x35, 0x07, 0, 0, 0)
    out = []
    for i in range(n):
        records = [
            encode_record(b"\x78", 182007, Coding.BCD8),
            encode_record(b"\x13", 269_000 + i, Coding.BCD8),
            encode_record(b"\x3b", i % 500, Coding.INT32),
            encode_record(b"\x6d", 0x12D30B12, Coding.INT32),
            encode_record(b"\x13", 260_000, Coding.BCD8, storage=1),
        ]
        out.append(encode_response(1, Header(header.id, "GWF", 0x35, 0x07, i % 256, 0, 0), records))
    return out


_LAYOUT = struct.Struct("<4xBBB4sHBBBBH2xI2xI2xI2xI2x4s")


def bench_mbus(n: int) -> None:
    telegrams = mbus_telegrams(n)
    assert _LAYOUT.size == len(telegrams[0]) - 2

    def full() -> None:
        for t in telegrams:
            meter_values([decode_response(t)])

    def bare() -> None:
        unpack = _LAYOUT.unpack_from
        for t in telegrams:
            unpack(t)

    t_full, t_bare = best_time(full), best_time(bare)
    values, _ = meter_values([decode_response(telegrams[-1])])
    assert values["volume_m3"] == (269_000 + n - 1) / 1000
    print(
        f"M-Bus           {n:>8} telegrams {n / t_full:>9,.0f} telegrams/s decoded to samples "
        f"(bare struct.unpack {n / t_bare:,.0f}/s)  ratio: {t_bare / t_full:.3f}x the speed "
        f"({t_full / t_bare:.0f}x slower)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=3000)
    ap.add_argument("--telegrams", type=int, default=30000)
    ap.add_argument("--full", action="store_true", help="10x the sizes")
    args = ap.parse_args()
    scale = 10 if args.full else 1
    for mode in Mode:
        bench_tic(mode, args.frames * scale)
    bench_mbus(args.telegrams * scale)


if __name__ == "__main__":
    main()
