"""Documents for `citygate-agent decode tic`: the decoded bytes as fields with units, for `cli_decode.show()`."""

from __future__ import annotations

from typing import Any

from drivers.model import Value
from drivers.tic.codec import Frame, Group, Mode, TicDecodeError, decode_frames, decode_group
from drivers.tic.values import interpret

# unit suffix of a quantity name -> unit as a person writes it
_SUFFIX_UNITS = {
    "_wh": "Wh", "_va": "VA", "_a": "A", "_v": "V", "_w": "W", "_m3": "m³", "_m3h": "m³/h", "_c": "°C",
    "_k": "K", "_bar": "bar", "_kg": "kg", "_kgh": "kg/h", "_s": "s",
}  # fmt: skip


def unit_of(quantity: str) -> str:
    for suffix in sorted(_SUFFIX_UNITS, key=len, reverse=True):
        if quantity.endswith(suffix):
            return _SUFFIX_UNITS[suffix]
    return ""


def _fields(values: dict[str, Value], prefix: str = "") -> list[dict[str, Any]]:
    return [{"name": f"{prefix}{k}", "value": v, "unit": unit_of(k)} for k, v in values.items()]


def _group_text(g: Group) -> str:
    return f"{g.label} {g.horodate + ' ' if g.horodate else ''}{g.data!r} [{g.checksum!r}]"


def tic_document(data: bytes, mode: str = "auto") -> dict[str, Any]:
    """One group (LF ... CR) or whole frames (STX ... ETX); raises TicDecodeError."""
    wanted = None if mode == "auto" else Mode(mode)
    if data[:1] == b"\x02":
        frames = decode_frames(data, wanted)
    elif data[:1] == b"\n":
        g = decode_group(data, wanted)
        frames = [Frame(g.mode, (g,))]
    else:
        first = f"0x{data[0]:02X}" if data else "nothing"
        raise TicDecodeError(
            f"input starts with {first}: expected STX (0x02, frames) or LF (0x0A, one group)"
        )
    doc: dict[str, Any] = {"protocol": "TIC (Linky)", "mode": str(frames[0].mode)}
    if len(frames) == 1 and len(frames[0].groups) == 1:
        g = frames[0].groups[0]
        doc.update(label=g.label, data=g.data, checksum=f"{g.checksum!r} (ok)")
        if g.horodate is not None:
            doc["horodate"] = g.horodate
    else:
        doc["frames"] = len(frames)
        doc["groups"] = [_group_text(g) for f in frames for g in f.groups]
    fields: list[dict[str, Any]] = []
    problems: list[str] = []
    for i, f in enumerate(frames):
        reading = interpret(f)
        fields += _fields(reading.values, f"[{i}] " if len(frames) > 1 else "")
        problems += reading.problems
    doc["fields"] = fields
    if problems:
        doc["problems"] = problems
    return doc
