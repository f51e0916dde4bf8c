"""Documents for `citygate-agent decode tic`: the decoded bytes as fields with units, for `cli_decode.show()`."""

from __future__ import annotations

import dataclasses
from typing import Any

from drivers.tic.codec import Frame, Group, GroupFault, Mode, TicDecodeError, decode_frames, decode_group
from drivers.tic.values import Field as TicField
from drivers.tic.values import interpret


def _group_text(g: Group) -> str:
    return f"{g.label} {g.horodate + ' ' if g.horodate else ''}{g.data!r} [{g.checksum!r}]"


def _tic_field(f: TicField, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": f"{prefix}{f.name}", "value": f.value, "unit": f.unit, "label": f.label}
    if f.horodate is not None:
        out["horodate"] = f.horodate
    if f.time is not None:
        out["time"] = f.time
    if f.blocks is not None:
        out["blocks"] = [dataclasses.asdict(b) for b in f.blocks]
    return out


def tic_document(data: bytes, mode: str = "auto") -> dict[str, Any]:
    """One group (LF ... CR) or whole frames (STX ... ETX); raises TicDecodeError.

    In whole frames a group that does not decode is reported under `bad_groups` and the others
    are decoded, as the live parser does; only input where no group decodes is an error.
    """
    wanted = None if mode == "auto" else Mode(mode)
    faults: list[GroupFault] = []
    if data[:1] == b"\x02":
        frames = decode_frames(data, wanted, faults)
    elif data[:1] == b"\n":
        g = decode_group(data, wanted)
        frames = [Frame(g.mode, (g,))]
    else:
        first = f"0x{data[0]:02X}" if data else "nothing"
        raise TicDecodeError(
            f"input starts with {first}: expected STX (0x02, frames) or LF (0x0A, one group)"
        )
    doc: dict[str, Any] = {"protocol": "TIC (Linky)", "mode": str(frames[0].mode)}
    if len(frames) == 1 and len(frames[0].groups) == 1 and not faults:
        g = frames[0].groups[0]
        doc.update(label=g.label, data=g.data, checksum=f"{g.checksum!r} (ok)")
        if g.horodate is not None:
            doc["horodate"] = g.horodate
    else:
        doc["frames"] = len(frames)
        doc["groups"] = [_group_text(g) for f in frames for g in f.groups]
    fields: list[dict[str, Any]] = []
    problems: list[str] = []
    unknown: list[str] = []
    for i, f in enumerate(frames):
        reading = interpret(f)
        fields += [_tic_field(x, f"[{i}] " if len(frames) > 1 else "") for x in reading.fields]
        problems += reading.problems
        unknown += reading.unknown_labels
    doc["fields"] = fields
    if problems:
        doc["problems"] = problems
    if unknown:
        doc["unknown_labels"] = unknown
    if faults:
        doc["bad_groups"] = [f"offset {x.offset}: {x.reason} ({x.raw!r})" for x in faults]
    return doc
