"""TIC groups and frames: checksums, strict decoding, a resynchronising byte-stream parser, and the encoder.

Layout (Enedis-NOI-CPT_54E §5.2/§5.3)::

    frame := STX group+ ETX            (EOT aborts the frame in progress)
    group := LF label SEP [horodate SEP] data SEP checksum CR
    SEP   := SP (historic mode) | HT (standard mode)

checksum = (S1 & 0x3F) + 0x20 where S1 is the byte sum of label SP data (historic, trailing SP
excluded: CPT_02E's "mode 1") or of label HT [horodate HT] data HT (standard, trailing HT included:
"mode 2"). Some historic meters include the trailing separator; the parser accepts that form too
unless told not to. CPT_02E lets blue meters built since 2013 separate with HT: read in historic
mode, an HT group bearing a historic label and no horodate is such a group.
The checksum character can itself be SP and standard-mode data contains spaces, so groups are
parsed from their end, never by splitting on every separator.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from drivers.errors import DecodeError
from drivers.tic.labels import HISTORIC_LABELS, Mode

STX, ETX, EOT, LF, CR, HT, SP = 0x02, 0x03, 0x04, 0x0A, 0x0D, 0x09, 0x20

MAX_LABEL = 8
# §5.3.6 says a label has at most 8 characters, yet the label table of §6.2.2 defines these three
# (maximum apparent power of the previous day, per phase) and three-phase meters send them.
LONG_LABELS = frozenset({"SMAXSN1-1", "SMAXSN2-1", "SMAXSN3-1"})
HORODATE_LEN = 13
# Longest legal body: label 9 + SEP + horodate 13 + SEP + data 98 (PJOURF+1) + SEP + checksum.
MAX_BODY = 160
# A frame has a few dozen groups; this bounds memory when ETX is lost.
MAX_GROUPS = 256

_SEASONS = frozenset("HhEe ")


SEPARATOR = {Mode.HISTORIC: SP, Mode.STANDARD: HT}
BAUDRATE = {Mode.HISTORIC: 1200, Mode.STANDARD: 9600}


class TicDecodeError(DecodeError):
    """A TIC group or frame that does not decode."""


class TicChecksumError(TicDecodeError):
    def __init__(self, label: str, expected: str, got: str) -> None:
        super().__init__(f"group {label!r}: checksum {got!r} (0x{ord(got):02X}), expected {expected!r}")
        self.label = label
        self.expected = expected
        self.got = got


@dataclass(frozen=True, slots=True)
class Group:
    label: str
    data: str
    horodate: str | None
    checksum: str
    mode: Mode


@dataclass(frozen=True, slots=True)
class Frame:
    mode: Mode
    groups: tuple[Group, ...]

    @property
    def fields(self) -> dict[str, str]:
        return {g.label: g.data for g in self.groups}

    @property
    def horodates(self) -> dict[str, str]:
        return {g.label: g.horodate for g in self.groups if g.horodate is not None}


def checksum(zone: bytes) -> str:
    return chr((sum(zone) & 0x3F) + 0x20)


def _text(raw: bytes) -> str:
    return raw.decode("ascii")


def decode_body(body: bytes, mode: Mode | None = None, legacy_checksum: bool = True) -> Group:
    """Decode the bytes between LF and CR. `mode` None detects it from the separator (HT means standard)."""
    for i, b in enumerate(body):
        if not (0x20 <= b <= 0x7E or b == HT):
            raise TicDecodeError(f"byte 0x{b:02X} at offset {i} of the group is not printable ASCII or HT")
    if len(body) < 4:
        raise TicDecodeError(f"group of {len(body)} bytes is too short (label SEP data SEP checksum)")
    tabs = HT in body
    detected = Mode.STANDARD if tabs else Mode.HISTORIC
    if mode is Mode.HISTORIC and tabs and _historic_label(body):
        detected = Mode.HISTORIC  # CPT_02E: blue meters built since 2013 separate with HT
    if mode is not None and detected is not mode:
        raise TicDecodeError(f"group {body[:MAX_LABEL]!r}... is in {detected} mode, expected {mode}")
    sep = HT if tabs else SP
    got = chr(body[-1])
    if body[-2] != sep:
        raise TicDecodeError(
            f"group {body!r}: byte before the checksum is 0x{body[-2]:02X}, expected the separator 0x{sep:02X}"
        )
    fields = _split_ht(body, detected, legacy_checksum) if tabs else _split_sp(body, legacy_checksum)
    label, horodate, data, expected, ok = fields
    label_text = _text(label)
    if not valid_label(label_text):
        raise TicDecodeError(
            f"label {label_text!r}: expected 1 to {MAX_LABEL} characters without spaces, or one of "
            f"{', '.join(sorted(LONG_LABELS))}"
        )
    if not ok:
        raise TicChecksumError(label_text, expected, got)
    horodate_text = None
    if horodate is not None:
        horodate_text = _text(horodate)
        if not _valid_horodate(horodate_text):
            raise TicDecodeError(f"group {label_text!r}: horodate {horodate_text!r} is not SAAMMJJhhmmss")
    return Group(label_text, _text(data), horodate_text, got, detected)


# label, horodate, data, the checksum expected, and whether the group's checksum is one we accept
_Fields = tuple[bytes, bytes | None, bytes, str, bool]


def _split_ht(body: bytes, detected: Mode, legacy_checksum: bool) -> _Fields:
    parts = body[:-2].split(b"\t")
    horodate: bytes | None
    if len(parts) == 2:
        label, horodate, data = parts[0], None, parts[1]
    elif len(parts) == 3 and detected is Mode.STANDARD:
        label, horodate, data = parts
    else:
        raise TicDecodeError(f"group {body!r}: {len(parts)} HT-separated fields, expected 2 or 3")
    got, expected = chr(body[-1]), checksum(body[:-1])
    # A historic group with HT is "mode 2" (HT included); accept mode 1 too, as with SP.
    ok = got == expected or (detected is Mode.HISTORIC and legacy_checksum and got == checksum(body[:-2]))
    return label, horodate, data, expected, ok


def _split_sp(body: bytes, legacy_checksum: bool) -> _Fields:
    head = body[:-2]
    label, found, data = head.partition(b" ")
    if not found:
        raise TicDecodeError(f"group {body!r}: no SP between label and data")
    got, expected = chr(body[-1]), checksum(head)
    ok = got == expected or (legacy_checksum and got == checksum(body[:-1]))
    return label, None, data, expected, ok


def _historic_label(body: bytes) -> bool:
    """Whether an HT-separated group bears a label of the historic table (only then can it be historic)."""
    return body.split(b"\t", 1)[0].decode("ascii") in HISTORIC_LABELS


def valid_label(label: str) -> bool:
    """1 to 8 characters without spaces, or one of the table's 9-character labels."""
    return (1 <= len(label) <= MAX_LABEL and " " not in label) or label in LONG_LABELS


def _valid_horodate(h: str) -> bool:
    return len(h) == HORODATE_LEN and h[0] in _SEASONS and h[1:].isdigit() and h[1:].isascii()


def decode_group(raw: bytes, mode: Mode | None = None, legacy_checksum: bool = True) -> Group:
    """Decode one group including its LF and CR."""
    if len(raw) < 2 or raw[0] != LF or raw[-1] != CR:
        raise TicDecodeError("a group starts with LF (0x0A) and ends with CR (0x0D)")
    return decode_body(raw[1:-1], mode, legacy_checksum)


@dataclass(frozen=True, slots=True)
class GroupFault:
    """A group that `decode_frames(..., faults=[...])` left out: where it starts and why."""

    offset: int
    reason: str
    raw: bytes


def decode_frames(
    raw: bytes, mode: Mode | None = None, faults: list[GroupFault] | None = None
) -> list[Frame]:
    """Decode one or more whole frames (STX ... ETX, back to back).

    Strict by default: any fault raises. Given a `faults` list, a group that does not decode (bad
    checksum, bad label, stray bytes, the other mode) is recorded there and left out, as the
    byte-stream parser does; only a frame without STX/ETX, or input where no group decodes, raises.
    """
    frames: list[Frame] = []
    pos = 0
    while pos < len(raw):
        if raw[pos] != STX:
            raise TicDecodeError(f"byte 0x{raw[pos]:02X} at offset {pos}: expected STX (0x02)")
        end = raw.find(bytes([ETX]), pos + 1)
        if end < 0:
            raise TicDecodeError(f"frame starting at offset {pos} has no ETX (0x03)")
        groups = _frame_groups(raw, pos + 1, end, mode, faults)
        if groups:
            frames.append(Frame(groups[0].mode, tuple(groups)))
        elif faults is None:
            raise TicDecodeError(f"frame at offset {pos} has no group")
        pos = end + 1
    if not frames:
        if faults:
            raise TicDecodeError(
                f"no group decodes; the first fault, at offset {faults[0].offset}: {faults[0].reason}"
            )
        raise TicDecodeError("no frame: empty input")
    return frames


def _frame_groups(
    raw: bytes, i: int, end: int, mode: Mode | None, faults: list[GroupFault] | None
) -> list[Group]:
    """The groups between STX (before `i`) and ETX (at `end`)."""
    groups: list[Group] = []

    def fault(at: int, stop: int, reason: str) -> None:
        if faults is None:
            raise TicDecodeError(f"at offset {at}: {reason}")
        faults.append(GroupFault(at, reason, raw[at:stop]))

    while i < end:
        if raw[i] != LF:
            nxt = raw.find(bytes([LF]), i, end)
            stop = end if nxt < 0 else nxt
            fault(i, stop, f"byte 0x{raw[i]:02X} where LF (0x0A) or ETX (0x03) was expected")
            i = stop
            continue
        cr = raw.find(bytes([CR]), i + 1, end)
        if cr < 0:
            fault(i, end, "group has no CR (0x0D) before ETX")
            break
        nxt = raw.find(bytes([LF]), i + 1, cr)
        if nxt >= 0:  # the group was cut short: a new one starts before its CR
            fault(i, nxt, "group interrupted by LF (0x0A) before its CR")
            i = nxt
            continue
        try:
            group = decode_body(raw[i + 1 : cr], mode)
        except TicDecodeError as exc:
            fault(i, cr + 1, str(exc))
            i = cr + 1
            continue
        if groups and group.mode is not groups[0].mode:
            fault(i, cr + 1, f"group {group.label!r} is in {group.mode} mode, the frame in {groups[0].mode}")
        else:
            groups.append(group)
        i = cr + 1
    return groups


_BODY_RUN = re.compile(rb"[\t\x20-\x7e]*")
_IN_FRAME_GARBAGE = re.compile(rb"[^\x02\x03\x04\n]+")


class TicParser:
    """Byte-stream parser: `feed()` any chunk, get the frames completed by it.

    Only groups whose checksum holds reach a frame; the others are counted. The parser
    resynchronises on the next LF (group), STX (frame) or EOT, whatever garbage came before,
    and its memory is bounded whatever the input.
    """

    def __init__(self, mode: Mode | None = None, legacy_checksum: bool = True) -> None:
        self.mode = mode
        self.legacy_checksum = legacy_checksum
        self.checksum_errors = 0
        self.format_errors = 0  # malformed or interrupted groups, stray bytes inside a frame
        self.aborted_frames = 0  # EOT, or a new STX before ETX
        self.skipped_bytes = 0  # bytes outside any frame
        self._buf = bytearray()
        self._in_frame = False
        self._groups: list[Group] = []

    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buf
        buf += data
        out: list[Frame] = []
        n = len(buf)
        i = 0
        while i < n:
            if not self._in_frame:
                j = buf.find(b"\x02", i)
                if j < 0:
                    self.skipped_bytes += n - i
                    i = n
                    break
                self.skipped_bytes += j - i
                self._start_frame()
                i = j + 1
                continue
            b = buf[i]
            if b == LF:
                end = _BODY_RUN.match(buf, i + 1).end()  # type: ignore[union-attr]  # matches the empty string
                if end - i - 1 > MAX_BODY:
                    self.format_errors += 1
                    i = end
                    continue
                if end == n:
                    break  # group incomplete: keep it for the next chunk
                if buf[end] != CR:
                    self.format_errors += 1  # a control byte cut the group short
                    i = end
                    continue
                self._add_group(bytes(buf[i + 1 : end]))
                i = end + 1
            elif b == ETX:
                if self._groups:
                    out.append(Frame(self._groups[0].mode, tuple(self._groups)))
                self._in_frame = False
                i += 1
            elif b == EOT:
                self.aborted_frames += 1
                self._in_frame = False
                i += 1
            elif b == STX:
                self.aborted_frames += 1
                self._start_frame()
                i += 1
            else:
                end = _IN_FRAME_GARBAGE.match(buf, i).end()  # type: ignore[union-attr]  # buf[i] matches
                self.format_errors += 1
                i = end
        del buf[:i]
        return out

    def _start_frame(self) -> None:
        self._in_frame = True
        self._groups = []

    def _add_group(self, body: bytes) -> None:
        try:
            group = decode_body(body, self.mode, self.legacy_checksum)
        except TicChecksumError:
            self.checksum_errors += 1
            return
        except TicDecodeError:
            self.format_errors += 1
            return
        if self._groups and group.mode is not self._groups[0].mode:
            self.format_errors += 1
            return
        self._groups.append(group)
        if len(self._groups) > MAX_GROUPS:
            self.aborted_frames += 1
            self._in_frame = False


def encode_group(label: str, data: str, mode: Mode, horodate: str | None = None) -> bytes:
    """LF ... CR of one group with its checksum. Raises ValueError on what a meter could not send."""
    if not valid_label(label) or any(not 0x21 <= ord(c) <= 0x7E for c in label):
        raise ValueError(
            f"label {label!r}: 1 to {MAX_LABEL} printable characters without spaces (or a long label)"
        )
    if any(not 0x20 <= ord(c) <= 0x7E for c in data):
        raise ValueError(f"data {data!r}: printable ASCII only")
    if mode is Mode.HISTORIC:
        if horodate is not None:
            raise ValueError("historic mode has no horodate")
        zone = f"{label} {data}".encode("ascii")
        return b"\n" + zone + b" " + checksum(zone).encode("ascii") + b"\r"
    if horodate is not None:
        if not _valid_horodate(horodate):
            raise ValueError(f"horodate {horodate!r} is not SAAMMJJhhmmss")
        zone = f"{label}\t{horodate}\t{data}\t".encode("ascii")
    else:
        zone = f"{label}\t{data}\t".encode("ascii")
    return b"\n" + zone + checksum(zone).encode("ascii") + b"\r"


def encode_frame(groups: Iterable[tuple[str, str | None, str]], mode: Mode) -> bytes:
    """STX, the groups given as (label, horodate, data), ETX."""
    return b"\x02" + b"".join(encode_group(lb, d, mode, h) for lb, h, d in groups) + b"\x03"
