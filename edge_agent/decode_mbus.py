"""Document for `citygate-agent decode mbus`: one telegram as fields with units, for `cli_decode.show()`.

Every value comes out as JSON can carry it exactly: an integer beyond 2^53 (a 16-byte binary
record) or an exactly scaled Decimal is a decimal string, and its field says so
(`"value_is_decimal_string": true`); a record the meter marks invalid has the value null with
`"invalid": true` and the reason.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drivers.mbus.frame import C_REQ_UD2, C_SND_NKE, FCB, Ack, ShortFrame, decode_telegram, is_response
from drivers.mbus.records import (
    EXACT_FLOAT_LIMIT,
    ApplicationError,
    FixedData,
    Record,
    VariableData,
    decode_response,
)
from drivers.mbus.values import meter_values
from drivers.mbus.vif import UNKNOWN, medium_name

_MBUS_UNITS = {
    "WH": "Wh", "J": "J", "M3": "m³", "KG": "kg", "SECONDS": "s", "W": "W", "J_H": "J/h", "M3_H": "m³/h",
    "M3_MIN": "m³/min", "M3_S": "m³/s", "KG_H": "kg/h", "C": "°C", "K": "K", "F": "°F", "BAR": "bar",
    "V": "V", "A": "A", "DBM": "dBm", "BAUD": "Bd", "BIT_TIMES": "bit times", "MONTHS": "months",
    "YEARS": "years", "NONE": "", "DATE": "", "DATE_TIME": "", "HCA": "", "CURRENCY": "", "PERCENT": "%",
    "VARH": "varh", "VAH": "VAh", "VAR": "var", "VA": "VA", "CAL": "cal", "FT3": "ft³", "HZ": "Hz",
    "DEGREES": "°", "HMS": "h,m,s", "DMY": "D,M,Y", "US_GAL": "US gal", "US_GAL_MIN": "US gal/min",
    "US_GAL_H": "US gal/h",
}  # fmt: skip


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


# header status byte (EN 13757-3): bits 0-1 application status, then power low, permanent and temporary errors
_APPLICATION_STATUS = (None, "application busy", "any application error", "abnormal condition / alarm")
_STATUS_BITS = ((0x04, "power low"), (0x08, "permanent error"), (0x10, "temporary error"))


def status_flags(status: int) -> list[str]:
    flags = [name for bit, name in _STATUS_BITS if status & bit]
    application = _APPLICATION_STATUS[status & 0x03]
    if status & 0xE0:
        flags.append(f"manufacturer bits 0x{status & 0xE0:02X}")
    return ([application] if application else []) + flags


def json_value(value: object) -> tuple[object, bool]:
    """The value as JSON keeps it exactly, and whether it became a decimal string to do so."""
    if isinstance(value, Decimal) or (
        isinstance(value, int) and not isinstance(value, bool) and abs(value) > EXACT_FLOAT_LIMIT
    ):
        return str(value), True
    return value, False


def _field(rec: Record) -> dict[str, Any]:
    value, as_text = json_value(rec.value)
    f: dict[str, Any] = {
        "name": _record_name(rec),
        "value": value,
        "unit": rec.text_unit or _MBUS_UNITS.get(rec.unit, rec.unit.lower()),
        "dif": rec.dif,
        "vif": rec.vif,
        "raw": rec.raw.hex(" "),
    }
    if as_text:
        f["value_is_decimal_string"] = True
    if rec.problem is not None:
        f["problem"] = rec.problem
    if rec.invalid:
        f["invalid"] = True
    if rec.manufacturer_specific:
        f["manufacturer_specific"] = True
    return f


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
    kind = "control frame" if not t.data else "long frame"
    doc.update(telegram=kind, C=f"0x{r.c:02X} (RSP_UD)", A=r.a, CI=f"0x{r.ci:02X}")
    d = r.data
    if isinstance(d, ApplicationError):
        doc["application_error"] = {"code": f"0x{d.code:02X}", "name": d.name}
        if d.extra:
            doc["application_error"]["data"] = d.extra.hex(" ")
        doc["fields"] = []
        return doc
    if isinstance(d, FixedData):
        doc.update(structure="fixed", id=d.id, access_no=d.access_no, status=f"0x{d.status:02X}", medium=d.medium)
        doc["status_flags"] = status_flags(d.status & 0x1F)  # bits 6-7 say how the counters are coded
        doc["counters"] = "historic (stored at a fixed date)" if d.historic else "current"
    elif d.header is not None:
        h = d.header
        doc.update(
            id=h.id,
            manufacturer=h.manufacturer,
            version=h.version,
            medium=f"0x{h.medium:02X} ({medium_name(h.medium)})",
            access_no=h.access_no,
            status=f"0x{h.status:02X}",
            status_flags=status_flags(h.status),
        )
    elif d.empty:
        doc["no_data"] = "RSP_UD without header or records: the meter has no data to give"
    doc["fields"] = [_field(rec) for rec in d.records]
    unknown = [rec for rec in d.records if rec.quantity == UNKNOWN]
    if unknown:
        doc["unknown_vifs"] = [
            f"VIF 0x{rec.vif:02X}{''.join(f' {v:02X}' for v in rec.vifes)} data {rec.raw.hex(' ')}"
            for rec in unknown
        ]
    if isinstance(d, VariableData):
        if d.manufacturer_data:
            doc["manufacturer_data"] = d.manufacturer_data.hex(" ")
        if d.more_records_follow:
            doc["more_records_follow"] = True
    doc["sample"] = meter_values([r])[0]
    return doc
