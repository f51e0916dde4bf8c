"""NMEA 0183 sentences parsed per second on one core: citygate's codec against pynmea2, same run, same lines.

The lines are a simulated receiver's (simulators/gps.py): GGA, GSA, RMC, VTG for every epoch of a
drive through Dijon, each with its checksum. Both sides verify the checksum and produce the typed
fields the gnss driver uses: for pynmea2 that is `pynmea2.parse(line, check=True)` and then
reading those fields (pynmea2 converts lazily, when a property is read: a parse alone would
compare work not done); for citygate, `parse_sentence` (which converts and validates every field
at once). A third figure is the whole stream path: bytes in 64-byte chunks through NmeaStream.
Best of N runs (default 7), the three taken in turn each round so that a burst of load from
elsewhere hits all of them alike; pinned to one core when the OS allows.

    python bench/bench_nmea.py [--epochs 20000] [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import pynmea2

from drivers.gnss.nmea import NmeaStream, parse_sentence
from simulators.gps import DIJON_ROUND, GpsReceiver


def lines(epochs: int) -> list[bytes]:
    gps = GpsReceiver(DIJON_ROUND, speed_kmh=35, stop_s=5, loop=True)
    out: list[bytes] = []
    for _ in range(epochs):
        out += gps.epoch().splitlines(keepends=True)
    return out


def pynmea2_fields(m: Any) -> tuple[object, ...]:
    kind = m.sentence_type
    if kind == "GGA":
        return (m.timestamp, m.latitude, m.longitude, m.gps_qual, m.num_sats, m.horizontal_dil, m.altitude)
    if kind == "RMC":
        return (m.timestamp, m.status, m.latitude, m.longitude, m.spd_over_grnd, m.true_course, m.datestamp)
    if kind == "VTG":
        return (m.true_track, m.spd_over_grnd_kts, m.spd_over_grnd_kmph)
    return (m.mode_fix_type, m.pdop, m.hdop, m.vdop, *(getattr(m, f"sv_id{i:02d}") for i in range(1, 13)))


def best_interleaved(fns: list[Callable[[], None]], runs: int) -> list[float]:
    """Each function's best time over `runs` rounds, every round running them all in turn."""
    best = [float("inf")] * len(fns)
    for _ in range(runs):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    data = lines(args.epochs)
    texts = [b.decode().strip() for b in data]
    stream = b"".join(data)
    chunks = [stream[i:i + 64] for i in range(0, len(stream), 64)]
    n = len(data)

    def ours() -> None:
        for line in data:
            parse_sentence(line)

    def reference() -> None:
        for text in texts:
            pynmea2_fields(pynmea2.parse(text, check=True))

    def streamed() -> None:
        s = NmeaStream()
        for c in chunks:
            s.feed(c)

    t_ref, t_ours, t_stream = best_interleaved([reference, ours, streamed], args.runs)
    print(f"{n} sentences (GGA, GSA, RMC, VTG of {args.epochs} epochs), one core, best of {args.runs}")
    print(f"pynmea2 parse + fields (baseline): {n / t_ref:>10,.0f} sentences/s")
    print(f"citygate parse_sentence:           {n / t_ours:>10,.0f} sentences/s  ratio {t_ref / t_ours:.2f}x")
    print(f"citygate NmeaStream, 64-B chunks:  {n / t_stream:>10,.0f} sentences/s  ratio {t_ref / t_stream:.2f}x")
    print(f"a 1 Hz receiver's 4 sentences/s cost {4 * t_stream / n * 1e6:.0f} us of CPU a second")


if __name__ == "__main__":
    main()
