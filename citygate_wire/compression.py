"""How an upload body is compressed: its HTTP `Content-Encoding`, the same batch JSON inside.

- `gzip` (since version 1): zlib's gzip container, level 6.
- `zstd` (since issue 19): one Zstandard frame (RFC 8878) whose header holds the content size and
  names the dictionary it was compressed with (`citygate_wire.zdict`, shipped with both halves).
  A batch's JSON repeats the same keys, device names and value shapes: for the small batches
  report-by-exception leaves (a few dozen records), the dictionary halves the body where gzip
  finds nothing to refer back to (bench/bench_uplink.py).

The collector accepts both during the migration; a gateway chooses with `[uplink] encoding`.
A frame naming a dictionary the collector does not hold is refused (DecodeError), never guessed.
The zstandard module is imported only when zstd is used: a gateway on gzip does not pay its memory.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    import zstandard

GZIP: Final = "gzip"
ZSTD: Final = "zstd"
Encoding = Literal["gzip", "zstd"]
ENCODINGS: tuple[Encoding, ...] = (GZIP, ZSTD)
#: Compression level of zstd bodies. On a 5-minute batch of 23 lamps (1,380 records, 410 kB of JSON),
#: this machine: gzip -6 21.7 kB in 4.7 ms; zstd 3 19.5 kB in 0.5 ms; zstd 9 16.2 kB in 4.5 ms with a
#: 5.8 MB context; zstd 19 13.4 kB but in 200 ms. 9: gzip's time for 0.75x its bytes.
ZSTD_LEVEL = 9
#: A frame may need at most this much memory (its window) to be decoded: a batch body is at most a
#: few MB, and a hostile frame asking for 2 GB must be refused before any is allocated.
MAX_WINDOW = 16 * 1024 * 1024


class DecodeError(ValueError):
    """A body that cannot be decompressed: `too_large` when it would exceed the limit."""

    def __init__(self, reason: str, *, too_large: bool = False) -> None:
        super().__init__(reason)
        self.too_large = too_large


class Compressor:
    """Compresses one body from pieces, so a 2 MB batch is never joined whole before it is compressed."""

    def __init__(self, encoding: Encoding) -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {encoding!r}: expected one of {', '.join(ENCODINGS)}")
        self.encoding = encoding
        self._zstd = _zstd_compressor() if encoding == ZSTD else None

    def compress(self, pieces: Iterable[bytes]) -> bytes:
        if self._zstd is not None:
            # one buffer: a frame whose header carries its content size, which the collector requires
            return self._zstd.compress(b"".join(pieces))
        gz = zlib.compressobj(level=6, wbits=31)  # wbits=31: gzip container
        out = [gz.compress(chunk) for chunk in _chunks(pieces)]
        out.append(gz.flush())
        return b"".join(out)


#: gzip is fed pieces joined up to this size. A call per record (5,000 of ~160 B) cost a batch 3 ms more
#: than one call, and in the agent each call gives up the GIL and waits to take it back from the
#: journal's thread: 36 ms a batch of 5,000 during a drain where one call took 7 (bench_drain.py)
CHUNK_BYTES = 64 * 1024


def _chunks(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """`pieces` joined into chunks of about CHUNK_BYTES (one larger piece is a chunk of its own)."""
    held: list[bytes] = []
    size = 0
    for piece in pieces:
        held.append(piece)
        size += len(piece)
        if size >= CHUNK_BYTES:
            yield b"".join(held)
            held, size = [], 0
    if held:
        yield b"".join(held)


def _zstd_compressor() -> zstandard.ZstdCompressor:
    import zstandard

    from citygate_wire.zdict import DICTIONARY, DICTIONARY_ID

    return zstandard.ZstdCompressor(
        level=ZSTD_LEVEL, dict_data=zstandard.ZstdCompressionDict(DICTIONARY), write_content_size=True,
        write_dict_id=True,
    ) if DICTIONARY_ID else zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True)


_DECOMPRESSORS: dict[int, zstandard.ZstdDecompressor] = {}


def _decompressor(dict_id: int) -> zstandard.ZstdDecompressor:
    import zstandard

    from citygate_wire.zdict import DICTIONARIES

    found = _DECOMPRESSORS.get(dict_id)
    if found is None:
        if dict_id and dict_id not in DICTIONARIES:
            known = ", ".join(str(i) for i in sorted(DICTIONARIES)) or "none"
            raise DecodeError(f"the zstd frame names dictionary {dict_id}, which this collector does not hold"
                              f" (it holds {known})")
        data = zstandard.ZstdCompressionDict(DICTIONARIES[dict_id]) if dict_id else None
        found = _DECOMPRESSORS[dict_id] = zstandard.ZstdDecompressor(dict_data=data, max_window_size=MAX_WINDOW)
    return found


def unzstd(data: bytes, limit: int) -> bytes:
    """The content of one zstd frame (no byte may follow it), at most `limit` bytes; DecodeError otherwise.

    The frame must declare its content size: the size is checked against `limit` before anything
    is allocated, and zstd refuses a frame whose content does not match what it declared."""
    import zstandard

    try:
        params = zstandard.get_frame_parameters(data)
    except zstandard.ZstdError as exc:
        raise DecodeError(f"not a zstd frame: {exc}") from None
    if params.content_size == zstandard.CONTENTSIZE_UNKNOWN:
        raise DecodeError("the zstd frame does not declare its content size")
    if params.content_size > limit:
        raise DecodeError(f"the zstd frame declares {params.content_size} bytes, over the limit of {limit}",
                          too_large=True)
    if params.window_size > MAX_WINDOW:
        raise DecodeError(f"the zstd frame needs a window of {params.window_size} bytes, at most {MAX_WINDOW}")
    decompressor = _decompressor(params.dict_id)
    try:
        out = decompressor.decompress(data, max_output_size=limit, allow_extra_data=False)
    except zstandard.ZstdError as exc:
        raise DecodeError(f"cannot decompress the zstd frame: {exc}") from None
    if len(out) != params.content_size:  # a frame of 0 declared bytes decodes to b"" whatever follows
        raise DecodeError(f"the zstd frame holds {len(out)} bytes, not the {params.content_size} it declares")
    return bytes(out)
