"""Documents for `citygate-agent decode tic|mbus`: the decoded bytes as fields with units, for `cli_decode.show()`."""

from __future__ import annotations

import dataclasses
from typing import Any

from drivers.mbus.frame import C_REQ_UD2, C_SND_NKE, FCB, Ack, ShortFrame, decode_telegram, is_response
from drivers.mbus.records import Record, decode_response
from drivers.mbus.values import meter_values
from drivers.mbus.vif import MEDIUM
from drivers.tic.codec import Frame, Group, GroupFault, Mode, TicDecodeError, decode_frames, decode_group
from drivers.tic.values import Field as TicField
from drivers.tic.values import interpret

_MBUS_UNITS = {
    "WH": "Wh", "J": "J", "M3": "m³", "KG": "kg", "SECONDS": "s", "W": "W", "J_H": "J/h", "M3_H": "m³/h",
    "M3_MIN": "m³/min", "M3_S": "m³/s", "KG_H": "kg/h", "C": "°C", "K": "K", "F": "°F", "BAR": "bar",
    "V": "V", "A": "A", "DBM": "dBm", "BAUD": "Bd", "BIT_TIMES": "bit times", "MONTHS": "months",
    "YEARS": "years", "NONE": "", "DATE": "", "DATE_TIME": "", "HCA": "", "CURRENCY": "",
}  # fmt: skip


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


def _c_name(c: int) -> str:
    if c == C_SND_NKE:
        return "SND_NKE"
    if c & ~FCB == C_REQ_UD2:
        return f"REQ_UD2, FCB={1 if c & FCB else 0}"
    if c & ~FCB == 0x53:
        return "SND_UD"
    if c & ~FCB == 0x5A:
        return "REQ_UD1"
    if is_response(c):
        return "RSP_UD"
    return "unknown"


def _record_name(r: Record) -> str:
    parts = [r.quantity.lower()]
    if r.function != "INSTANTANEOUS_VALUE":
        parts.append(r.function.removesuffix("_VALUE").lower())
    for what, n in (("storage", r.storage), ("tariff", r.tariff), ("subunit", r.subunit)):
        if n:
            parts.append(f"{what} {n}")
    parts += [n.lower() for n in r.vife_names]
    return " ".join(parts)


def mbus_document(data: bytes) -> dict[str, Any]:
    """One telegram: E5, a short frame, or a long frame (RSP_UD fully decoded); raises MbusDecodeError."""
    t = decode_telegram(data)
    doc: dict[str, Any] = {"protocol": "M-Bus (EN 13757)"}
    if isinstance(t, Ack):
        doc["telegram"] = "single character E5 (ACK)"
        doc["fields"] = []
        return doc
    if isinstance(t, ShortFrame):
        doc.update(telegram="short frame", C=f"0x{t.c:02X} ({_c_name(t.c)})", A=t.a, fields=[])
        return doc
    if not is_response(t.c):
        doc.update(telegram="long frame", C=f"0x{t.c:02X} ({_c_name(t.c)})", A=t.a, CI=f"0x{t.ci:02X}")
        doc["data"] = t.data.hex(" ")
        doc["fields"] = []
        return doc
    r = decode_response(data)
    doc.update(telegram="long frame", C=f"0x{r.c:02X} (RSP_UD)", A=r.a, CI=f"0x{r.ci:02X}")
    h = r.data.header
    if h is not None:
        doc.update(
            id=h.id,
            manufacturer=h.manufacturer,
            version=h.version,
            medium=f"0x{h.medium:02X} ({MEDIUM.get(h.medium, 'reserved')})",
            access_no=h.access_no,
            status=f"0x{h.status:02X}",
        )
    doc["fields"] = [
        {
            "name": _record_name(rec),
            "value": rec.value if rec.problem is None else f"({rec.problem})",
            "unit": rec.text_unit or _MBUS_UNITS.get(rec.unit, rec.unit.lower()),
            "dif": rec.dif,
            "vif": rec.vif,
        }
        for rec in r.data.records
    ]
    unknown = [rec for rec in r.data.records if rec.quantity == "UNKNOWN_VIF"]
    if unknown:
        doc["unknown_vifs"] = [
            f"VIF 0x{rec.vif:02X}{''.join(f' {v:02X}' for v in rec.vifes)} data {rec.raw.hex(' ')}"
            for rec in unknown
        ]
    if r.data.manufacturer_data:
        doc["manufacturer_data"] = r.data.manufacturer_data.hex(" ")
    if r.data.more_records_follow:
        doc["more_records_follow"] = True
    doc["sample"] = meter_values([r])[0]
    return doc
