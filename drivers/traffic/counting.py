"""The controller's traffic counts: its detectors' interval registers as a pure codec.

Per interval (60 s by default, the controller's setting) a controller counts, per detector, the
vehicles, the share of time the detector was occupied and, on a speed pair (two loops a few
metres apart in one lane), the vehicles' mean speed and their count per length class. It keeps
the last `kept` intervals in a ring of input registers, each slot stamped with the interval's
index (its start in controller seconds divided by its length), so that a reader that was away
reads what it missed, and knows when it missed more than the ring holds.

Map (configs/registermaps/signal-controller.md, input registers):

    64  counting header (5 words): detector count (0: no counting), interval length s,
        index of the last completed interval (2 words, high first; 0: none yet), slots kept
    100 ring: slot (index mod kept) at 100 + slot * SLOT_WORDS, each
        index (2), start clock Unix s (2), length s, detector count,
        then per detector: count, occupancy 0.1 %, mean speed 0.1 km/h (0xFFFF none),
        light vehicles, heavy vehicles (both 0xFFFF on a detector that does not classify)

Words in, typed values or DecodeError out: arbitrary words never raise anything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from drivers.errors import DecodeError

IR_COUNTING = 64
COUNTING_WORDS = 5
IR_INTERVALS = 100
MAX_DETECTORS = 32
DETECTOR_WORDS = 5
SLOT_HEADER_WORDS = 6
SLOT_WORDS = SLOT_HEADER_WORDS + MAX_DETECTORS * DETECTOR_WORDS
MAX_KEPT = 64
MIN_INTERVAL_S, MAX_INTERVAL_S = 10, 3600
NONE_WORD = 0xFFFF
#: the fastest mean speed a detector may report (0.1 km/h): above, the reading is garbled
MAX_SPEED_DKMH = 2500
#: Modbus reads at most 125 registers a request
READ_CHUNK = 120


@dataclass(frozen=True, slots=True)
class CountingHeader:
    detectors: int  # 0: the controller counts nothing
    interval_s: int
    last_index: int  # index of the last completed interval, 0 when none yet
    kept: int  # intervals the ring holds

    def oldest_kept(self) -> int:
        return max(1, self.last_index - self.kept + 1)

    def slot_address(self, index: int) -> int:
        return IR_INTERVALS + (index % self.kept) * SLOT_WORDS

    def slot_words(self) -> int:
        return SLOT_HEADER_WORDS + self.detectors * DETECTOR_WORDS


@dataclass(frozen=True, slots=True)
class DetectorCount:
    count: int  # vehicles
    occupancy_permille: int  # 0..1000: share of the interval the detector was occupied
    speed_dkmh: int | None  # mean speed, 0.1 km/h, on a speed pair; None elsewhere or when it saw nothing
    light: int | None  # vehicles per length class, on a detector that classifies
    heavy: int | None

    @property
    def occupancy_pct(self) -> float:
        return self.occupancy_permille / 10

    @property
    def speed_kmh(self) -> float | None:
        return None if self.speed_dkmh is None else self.speed_dkmh / 10

    def words(self) -> list[int]:
        return [self.count, self.occupancy_permille, _opt(self.speed_dkmh), _opt(self.light), _opt(self.heavy)]


@dataclass(frozen=True, slots=True)
class Interval:
    index: int
    start_s: int  # controller clock, Unix s
    length_s: int
    counts: tuple[DetectorCount, ...]  # in the order of the intersection file's detectors

    @property
    def end_s(self) -> int:
        return self.start_s + self.length_s


def _opt(value: int | None) -> int:
    return NONE_WORD if value is None else value


def _split32(value: int) -> list[int]:
    return [(value >> 16) & 0xFFFF, value & 0xFFFF]


def _words(words: Sequence[int], what: str, expected: int) -> None:
    if len(words) != expected:
        raise DecodeError(f"{what}: {len(words)} words, expected {expected}")
    if any(not 0 <= w <= 0xFFFF for w in words):
        raise DecodeError(f"{what}: a word is outside 0..65535")


def encode_header(h: CountingHeader) -> list[int]:
    return [h.detectors, h.interval_s, *_split32(h.last_index), h.kept]


def decode_header(words: Sequence[int]) -> CountingHeader:
    _words(words, "counting header", COUNTING_WORDS)
    n, interval, hi, lo, kept = words
    if n > MAX_DETECTORS:
        raise DecodeError(f"counting header: {n} detectors, at most {MAX_DETECTORS}")
    if n and not MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S:
        raise DecodeError(f"counting header: interval {interval} s outside {MIN_INTERVAL_S}..{MAX_INTERVAL_S}")
    if n and not 1 <= kept <= MAX_KEPT:
        raise DecodeError(f"counting header: {kept} intervals kept, expected 1..{MAX_KEPT}")
    return CountingHeader(n, interval, hi << 16 | lo, kept)


def encode_interval(iv: Interval) -> list[int]:
    words = [*_split32(iv.index), *_split32(iv.start_s), iv.length_s, len(iv.counts)]
    for c in iv.counts:
        words += c.words()
    return [w & 0xFFFF for w in words]


def decode_interval(words: Sequence[int], detectors: int) -> Interval:
    """One ring slot of `detectors` detectors; DecodeError names the word and why."""
    _words(words, "interval slot", SLOT_HEADER_WORDS + detectors * DETECTOR_WORDS)
    index = words[0] << 16 | words[1]
    start = words[2] << 16 | words[3]
    length, n = words[4], words[5]
    if index == 0:
        raise DecodeError("interval slot: index 0 (an empty slot)")
    if n != detectors:
        raise DecodeError(f"interval {index}: {n} detectors, the header says {detectors}")
    if not MIN_INTERVAL_S <= length <= MAX_INTERVAL_S:
        raise DecodeError(f"interval {index}: length {length} s outside {MIN_INTERVAL_S}..{MAX_INTERVAL_S}")
    if start != index * length:
        raise DecodeError(f"interval {index}: starts at {start}, not index x length ({index * length})")
    counts = []
    for d in range(n):
        base = SLOT_HEADER_WORDS + d * DETECTOR_WORDS
        counts.append(_detector(index, d, words[base:base + DETECTOR_WORDS]))
    return Interval(index, start, length, tuple(counts))


def _detector(index: int, d: int, w: Sequence[int]) -> DetectorCount:
    count, occupancy, speed, light, heavy = w
    where = f"interval {index} detector {d + 1}"
    if occupancy > 1000:
        raise DecodeError(f"{where}: occupancy {occupancy / 10} % above 100 %")
    if speed != NONE_WORD and speed > MAX_SPEED_DKMH:
        raise DecodeError(f"{where}: mean speed {speed / 10} km/h above {MAX_SPEED_DKMH / 10}")
    if (light == NONE_WORD) != (heavy == NONE_WORD):
        raise DecodeError(f"{where}: one length class given without the other")
    if light != NONE_WORD and light + heavy != count:
        raise DecodeError(f"{where}: light {light} + heavy {heavy} is not the count {count}")
    return DetectorCount(count, occupancy, None if speed == NONE_WORD else speed,
                         None if light == NONE_WORD else light, None if heavy == NONE_WORD else heavy)
