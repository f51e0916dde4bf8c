"""M-Bus link layer (EN 13757-2): single character, short, control and long frames, and a stream splitter.

E5                                   ACK
10 C A CS 16                         short frame, CS = (C + A) mod 256
68 L L 68 C A CI data... CS 16       control (L = 3) and long frames, CS = sum of the L bytes mod 256
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.errors import DecodeError

ACK = 0xE5
SHORT_START = 0x10
LONG_START = 0x68
STOP = 0x16

# C field, master to slave (REQ_UD2 | FCB toggles between requests, stays on a repeat)
C_SND_NKE = 0x40
C_SND_UD = 0x53
C_REQ_UD2 = 0x5B
C_REQ_UD1 = 0x5A
FCB = 0x20
# C field, slave to master; ACD/DFC bits may be set (0x08, 0x18, 0x28, 0x38)
C_RSP_UD = 0x08

# A field
ADDRESS_SECONDARY = 253
ADDRESS_BROADCAST_REPLY = 254
ADDRESS_BROADCAST = 255
MAX_PRIMARY = 250

# CI field
CI_SELECT = 0x52
CI_APPLICATION_RESET = 0x50
CI_DATA_SEND = 0x51


class MbusDecodeError(DecodeError):
    """Bytes that are not a valid M-Bus telegram, or records that do not decode."""


@dataclass(frozen=True, slots=True)
class Ack:
    pass


@dataclass(frozen=True, slots=True)
class ShortFrame:
    c: int
    a: int


@dataclass(frozen=True, slots=True)
class LongFrame:
    """A long frame; a control frame is one with no data."""

    c: int
    a: int
    ci: int
    data: bytes = b""


Telegram = Ack | ShortFrame | LongFrame


def is_response(c: int) -> bool:
    """RSP_UD with any ACD/DFC bits."""
    return c & 0xCF == C_RSP_UD


def encode_short(c: int, a: int) -> bytes:
    return bytes((SHORT_START, c, a, (c + a) & 0xFF, STOP))


def encode_long(c: int, a: int, ci: int, data: bytes = b"") -> bytes:
    length = 3 + len(data)
    if length > 255:
        raise ValueError(f"{len(data)} bytes of user data, at most 252 fit in a long frame")
    body = bytes((c, a, ci)) + data
    return bytes((LONG_START, length, length, LONG_START)) + body + bytes((sum(body) & 0xFF, STOP))


def encode(t: Telegram) -> bytes:
    if isinstance(t, Ack):
        return bytes((ACK,))
    if isinstance(t, ShortFrame):
        return encode_short(t.c, t.a)
    return encode_long(t.c, t.a, t.ci, t.data)


def telegram_size(buf: bytes | bytearray, start: int = 0) -> int | None:
    """Length of the telegram starting at buf[start], or None if more bytes are needed to tell."""
    if start >= len(buf):
        return None
    first = buf[start]
    if first == ACK:
        return 1
    if first == SHORT_START:
        return 5
    if first == LONG_START:
        if len(buf) - start < 4:
            return None
        length, length2, start2 = buf[start + 1], buf[start + 2], buf[start + 3]
        if length != length2 or start2 != LONG_START:
            raise MbusDecodeError(
                f"long frame header 68 {length:02X} {length2:02X} {start2:02X}: the two L bytes differ or the second start is not 68"
            )
        if length < 3:
            raise MbusDecodeError(f"long frame L={length}: at least 3 (C, A, CI)")
        return length + 6
    raise MbusDecodeError(f"byte 0x{first:02X} starts no telegram (E5, 10 or 68)")


def decode_telegram(raw: bytes) -> Telegram:
    """Decode exactly one telegram; every byte must belong to it."""
    size = telegram_size(raw)
    if size is None or len(raw) < size:
        raise MbusDecodeError(f"telegram truncated: {len(raw)} bytes, {size or 'more'} needed")
    if len(raw) > size:
        raise MbusDecodeError(f"{len(raw) - size} byte(s) after the end of the telegram (length {size})")
    first = raw[0]
    if first == ACK:
        return Ack()
    if raw[-1] != STOP:
        raise MbusDecodeError(f"last byte 0x{raw[-1]:02X}, expected stop byte 0x16")
    if first == SHORT_START:
        c, a, cs = raw[1], raw[2], raw[3]
        if (c + a) & 0xFF != cs:
            raise MbusDecodeError(f"short frame checksum 0x{cs:02X}, expected 0x{(c + a) & 0xFF:02X}")
        return ShortFrame(c, a)
    body = raw[4:-2]
    cs = raw[-2]
    if sum(body) & 0xFF != cs:
        raise MbusDecodeError(f"long frame checksum 0x{cs:02X}, expected 0x{sum(body) & 0xFF:02X}")
    return LongFrame(body[0], body[1], body[2], bytes(body[3:]))


class TelegramReader:
    """Byte-stream splitter: `feed()` chunks, get whole telegrams. Bad bytes are skipped and counted."""

    def __init__(self) -> None:
        self.errors = 0  # checksum, stop byte or header faults
        self.skipped_bytes = 0
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Telegram]:
        buf = self._buf
        buf += data
        out: list[Telegram] = []
        i = 0
        while i < len(buf):
            try:
                size = telegram_size(buf, i)
            except MbusDecodeError:
                self.skipped_bytes += 1
                i += 1
                continue
            if size is None or len(buf) - i < size:
                break
            try:
                out.append(decode_telegram(bytes(buf[i : i + size])))
            except MbusDecodeError:
                # resynchronise one byte further: the start byte may have been noise
                self.errors += 1
                i += 1
                continue
            i += size
        del buf[:i]
        return out

    def clear(self) -> None:
        self._buf.clear()
