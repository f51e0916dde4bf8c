"""The SDP of a DESCRIBE answer, sans-I/O: the video streams' codec and resolution.

Only what camera health needs is read: each `m=video` section's codec (from `a=rtpmap`) and its
resolution, from `a=framesize` (3GPP, Axis), `a=x-dimensions` (Hikvision, Dahua), `a=cliprect`,
or else the H.264 sequence parameter set carried in `a=fmtp ... sprop-parameter-sets`.
Anything malformed is a DecodeError; a field we do not need is ignored.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from drivers.errors import DecodeError

MAX_SDP = 64 * 1024

_RTPMAP = re.compile(r"(\d+) ([A-Za-z0-9._-]+)/(\d+)")
_FRAMESIZE = re.compile(r"(\d+) (\d+)-(\d+)")
_XDIM = re.compile(r"(\d+),(\d+)")
_CLIPRECT = re.compile(r"(\d+),(\d+),(\d+),(\d+)")


@dataclass(frozen=True, slots=True)
class VideoStream:
    codec: str | None  # "H264", "H265", "JPEG", ...; None when the section names no codec we can read
    width: int | None
    height: int | None
    control: str | None = None  # the a=control of the section, as given


@dataclass
class _Section:
    formats: list[str]
    codecs: dict[str, str]
    size: tuple[int, int] | None = None
    sps_size: tuple[int, int] | None = None
    control: str | None = None


def parse_sdp(body: bytes) -> list[VideoStream]:
    """Every video section of an SDP; DecodeError if it is not an SDP."""
    if len(body) > MAX_SDP:
        raise DecodeError(f"SDP of {len(body)} bytes is over the {MAX_SDP}-byte limit")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"SDP is not UTF-8 at byte {exc.start}") from None
    lines = [line.rstrip("\r") for line in text.split("\n") if line.strip()]
    if not lines or not lines[0].startswith("v="):
        raise DecodeError("SDP does not start with v=")
    sections: list[_Section] = []
    current: _Section | None = None
    for line in lines:
        if len(line) < 2 or line[1] != "=":
            raise DecodeError(f"SDP line is not <type>=<value>: {line[:40]!r}")
        kind, value = line[0], line[2:]
        if kind == "m":
            current = _media(value, sections)
        elif kind == "a" and current is not None:
            _attribute(current, value)
    return [_stream(s) for s in sections]


def _media(value: str, sections: list[_Section]) -> _Section | None:
    parts = value.split()
    if len(parts) < 4:
        raise DecodeError(f"m= line needs media, port, proto and a format: {value[:40]!r}")
    if parts[0] != "video":
        return None
    section = _Section(formats=parts[3:], codecs={})
    sections.append(section)
    return section


def _attribute(s: _Section, value: str) -> None:
    name, _, arg = value.partition(":")
    if name == "rtpmap" and (m := _RTPMAP.match(arg)):
        s.codecs[m.group(1)] = m.group(2).upper()
    elif name == "framesize" and (m := _FRAMESIZE.match(arg)):
        s.size = (int(m.group(2)), int(m.group(3)))
    elif name == "x-dimensions" and (m := _XDIM.match(arg)):
        s.size = (int(m.group(1)), int(m.group(2)))
    elif name == "cliprect" and (m := _CLIPRECT.match(arg)) and s.size is None:
        s.size = (int(m.group(4)) - int(m.group(2)), int(m.group(3)) - int(m.group(1)))
    elif name == "control":
        s.control = arg
    elif name == "fmtp":
        for param in arg.partition(" ")[2].split(";"):
            key, _, val = param.strip().partition("=")
            if key == "sprop-parameter-sets" and val:
                s.sps_size = _sps_size(val.split(",")[0])


def _stream(s: _Section) -> VideoStream:
    codec = next((s.codecs[f] for f in s.formats if f in s.codecs), None)
    if codec is None and "26" in s.formats:
        codec = "JPEG"  # static payload type 26 needs no rtpmap
    size = s.size or s.sps_size
    return VideoStream(codec, size[0] if size else None, size[1] if size else None, s.control)


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def bit(self) -> int:
        if self.pos >= len(self.data) * 8:
            raise DecodeError("H.264 SPS ends early")
        b = (self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return b

    def bits(self, n: int) -> int:
        v = 0
        for _ in range(n):
            v = (v << 1) | self.bit()
        return v

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise DecodeError("H.264 SPS: exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


def _sps_size(b64: str) -> tuple[int, int] | None:
    """Width and height from an H.264 SPS NAL unit (ITU-T H.264 section 7.3.2.1.1)."""
    try:
        nal = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError(f"sprop-parameter-sets is not base64: {b64[:30]!r}") from None
    if not nal or nal[0] & 0x1F != 7:
        return None  # not an SPS: nothing to read here
    rbsp = nal[1:].replace(b"\x00\x00\x03", b"\x00\x00")
    r = _Bits(rbsp)
    profile = r.bits(8)
    r.bits(16)  # constraint flags, level
    r.ue()  # seq_parameter_set_id
    chroma = 1
    if profile in _HIGH_PROFILES:
        chroma = r.ue()
        if chroma == 3:
            r.bit()
        r.ue()
        r.ue()
        r.bit()
        if r.bit():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma != 3 else 12):
                if r.bit():
                    _skip_scaling_list(r, 16 if i < 6 else 64)
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()
    elif poc_type == 1:
        r.bit()
        r.se()
        r.se()
        cycle = r.ue()
        if cycle > 255:
            raise DecodeError("H.264 SPS: more than 255 reference frames in a POC cycle")
        for _ in range(cycle):
            r.se()
    r.ue()  # max_num_ref_frames
    r.bit()
    mbs_w, map_h = r.ue() + 1, r.ue() + 1
    frame_mbs_only = r.bit()
    if not frame_mbs_only:
        r.bit()
    r.bit()
    crop = (r.ue(), r.ue(), r.ue(), r.ue()) if r.bit() else (0, 0, 0, 0)
    sub_w, sub_h = (1, 1) if chroma == 3 else (2, 1 if chroma == 2 else 2)
    if chroma == 0:
        sub_w, sub_h = 1, 1
    width = mbs_w * 16 - sub_w * (crop[0] + crop[1])
    height = (2 - frame_mbs_only) * map_h * 16 - sub_h * (2 - frame_mbs_only) * (crop[2] + crop[3])
    if width <= 0 or height <= 0 or width > 16384 or height > 16384:
        raise DecodeError(f"H.264 SPS gives an impossible size {width}x{height}")
    return width, height


def _skip_scaling_list(r: _Bits, size: int) -> None:
    last = nxt = 8
    for _ in range(size):
        if nxt:
            nxt = (last + r.se() + 256) % 256
        last = nxt or last
