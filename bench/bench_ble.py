"""BLE advertisements decoded per second on one core: BTHome v2 (plain and encrypted) and Ruuvi RAWv2.

Each decoder runs over N distinct, realistic payloads (BTHome: packet id, battery, temperature,
humidity, as ATC/Shelly sensors send; Ruuvi: a full RAWv2 record). Baseline, same run, same
bytes: the bare `struct.unpack` of the fixed layout, i.e. the floor of any Python decoder that
knows the layout in advance (ours does not: it walks the object ids, scales, names and checks).
Encrypted BTHome is also compared with the bare AES-CCM decrypt it has to do. Best of 3 runs.
Target: >= 50,000 adverts/s for each.

    python bench/bench_ble.py [--adverts 200000] [--full]
"""

from __future__ import annotations

import argparse
import struct
import time
from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from drivers import bthome, ruuvi

TARGET = 50_000
KEY = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932")
MAC = bytes.fromhex("5448E68F80A5")


def best_rate(fn: Callable[[bytes], object], payloads: Sequence[bytes], runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        for p in payloads:
            fn(p)
        best = min(best, time.perf_counter() - t0)
    return len(payloads) / best


def bthome_payloads(n: int, key: bytes | None) -> list[bytes]:
    return [
        bthome.encode([(0x00, i % 256), (0x01, 40 + i % 60), (0x02, (i % 4000 - 1000) / 100), (0x03, (i % 10000) / 100)],
                      key=key, mac=MAC, counter=i + 1)
        for i in range(n)
    ]


def ruuvi_payloads(n: int) -> list[bytes]:
    base = ruuvi.decode(bytes.fromhex("0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F"))
    return [ruuvi.encode(base._replace(temperature_c=(i % 8000 - 2000) / 200, sequence=i % 65535)) for i in range(n)]


def report(name: str, rate: float, baseline_name: str, baseline: float) -> None:
    verdict = "ok" if rate >= TARGET else "BELOW TARGET"
    print(f"{name:<22} {rate:>12,.0f} adverts/s   {baseline_name:<26} {baseline:>12,.0f}/s   "
          f"ratio {baseline / rate:5.1f}x slower   target {TARGET:,}/s: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adverts", type=int, default=200_000)
    parser.add_argument("--full", action="store_true", help="1,000,000 adverts per decoder")
    args = parser.parse_args()
    n = 1_000_000 if args.full else args.adverts

    plain = bthome_payloads(n, None)
    sealed = bthome_payloads(n, KEY)
    rv = ruuvi_payloads(n)
    bthome_layout = struct.Struct("<BBBBBBhBH")  # info, 00 id, 01 batt, 02 temp, 03 hum
    ruuvi_layout = struct.Struct(">BhHHhhhHBH6s")
    cipher = AESCCM(KEY, tag_length=4)

    def bare_decrypt(p: bytes) -> bytes:
        return cipher.decrypt(MAC + b"\xd2\xfc" + p[:1] + p[-8:-4], p[1:-8] + p[-4:], None)

    def decode_sealed(p: bytes) -> object:
        return bthome.decode(p, key=KEY, mac=MAC)

    print(f"BLE decode on one core, {n:,} distinct adverts per decoder, best of 3 runs")
    report("bthome (plain)", best_rate(bthome.decode, plain), "baseline struct.unpack", best_rate(bthome_layout.unpack, plain))
    report("bthome (AES-CCM)", best_rate(decode_sealed, sealed), "baseline bare AESCCM.decrypt",
           best_rate(bare_decrypt, sealed))
    report("ruuvi RAWv2", best_rate(ruuvi.decode, rv), "baseline struct.unpack", best_rate(ruuvi_layout.unpack, rv))


if __name__ == "__main__":
    main()
