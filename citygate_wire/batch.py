"""Upload batch format, version 1.

A gateway POSTs `gzip(JSON)` of::

    {"v": 1, "gateway": "gw-dijon-0001", "commune": "21231",
     "records": [
        {"seq": 41, "kind": "sample", "device": "lamp-1", "ts_ms": 1764096000000,
         "values": {"level_pct": 70, "power_w": 61.2}},
        {"seq": 42, "kind": "event", "device": "lamp-2", "ts_ms": 1764096000100,
         "code": "communication_failure", "severity": "major", "detail": {"failures": 3}}]}

to `POST /api/v1/batches` with `Authorization: Bearer <gateway token>` and
`Content-Encoding: gzip`. Records are in ascending `seq` order; `seq` is the gateway's journal
sequence number, unique per gateway and never reused. The collector stores each (gateway, seq)
once and answers `{"ack_seq": <highest seq of the batch, all stored>, "stored": n, "duplicates": d}`;
the gateway then deletes everything up to `ack_seq` from its journal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

VERSION = 1
PATH = "/api/v1/batches"
MAX_DEVICE_LEN = 128
MAX_CODE_LEN = 64
SEVERITIES = frozenset({"info", "minor", "major", "critical"})


class WireError(ValueError):
    """A batch that does not follow the format. `pointer` is the JSON pointer of the bad field."""

    def __init__(self, pointer: str, reason: str) -> None:
        super().__init__(f"{pointer or '/'}: {reason}")
        self.pointer = pointer
        self.reason = reason


class WireRecord(NamedTuple):
    """One record of a batch. A named tuple, not a frozen dataclass: the collector builds hundreds
    of thousands a second, and a frozen dataclass's __init__ costs twice as much."""

    seq: int
    kind: str  # "sample" | "event"
    device: str
    ts_ms: int
    values: Mapping[str, Any] | None = None  # samples
    code: str | None = None  # events
    severity: str | None = None
    detail: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    gateway: str
    commune: str | None
    records: Sequence[WireRecord]


def encode_records(gateway: str, commune: str | None, records: Sequence[Mapping[str, Any]]) -> bytes:
    """JSON bytes of a batch whose records are already wire-shaped dicts (the journal keeps them so)."""
    return orjson.dumps({"v": VERSION, "gateway": gateway, "commune": commune, "records": records})


def _int(value: Any, pointer: str, lo: int, hi: int) -> int:
    if type(value) is not int:
        raise WireError(pointer, f"expected an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise WireError(pointer, f"{value} is out of range [{lo}, {hi}]")
    return value


def _str(value: Any, pointer: str, max_len: int) -> str:
    if type(value) is not str or not value:
        raise WireError(pointer, "expected a non-empty string")
    if len(value) > max_len:
        raise WireError(pointer, f"longer than {max_len} characters")
    return value


_SCALARS = (int, float, str, bool, type(None))
# 2000-01-01 .. 2100-01-01: anything outside is a broken clock or a broken encoder.
_TS_MIN, _TS_MAX = 946_684_800_000, 4_102_444_800_000
_SEQ_MAX = 2**63 - 1


_SCALAR_TYPES = frozenset(_SCALARS)


def _record(raw: Any, i: int) -> WireRecord:
    """The common case, a well-formed sample, checked without building error pointers (the
    collector validates hundreds of thousands a second); anything else goes to _checked_record,
    which accepts exactly the same records and names the first bad field."""
    if type(raw) is dict and len(raw) == 5 and raw.get("kind") == "sample":
        seq, device, ts_ms, values = raw.get("seq"), raw.get("device"), raw.get("ts_ms"), raw.get("values")
        if (
            type(seq) is int and 1 <= seq <= _SEQ_MAX
            and type(device) is str and 0 < len(device) <= MAX_DEVICE_LEN
            and type(ts_ms) is int and _TS_MIN <= ts_ms <= _TS_MAX
            and type(values) is dict and values
        ):
            for v in values.values():
                if type(v) not in _SCALAR_TYPES:
                    break
            else:
                return WireRecord(seq, "sample", device, ts_ms, values)
    return _checked_record(raw, i)


def _checked_record(raw: Any, i: int) -> WireRecord:
    p = f"/records/{i}"
    if type(raw) is not dict:
        raise WireError(p, "expected an object")
    seq = _int(raw.get("seq"), f"{p}/seq", 1, _SEQ_MAX)
    device = _str(raw.get("device"), f"{p}/device", MAX_DEVICE_LEN)
    ts_ms = _int(raw.get("ts_ms"), f"{p}/ts_ms", _TS_MIN, _TS_MAX)
    kind = raw.get("kind")
    if kind == "sample":
        values = raw.get("values")
        if type(values) is not dict or not values:
            raise WireError(f"{p}/values", "expected a non-empty object of quantity: scalar")
        for name, v in values.items():
            if not isinstance(v, _SCALARS):
                raise WireError(f"{p}/values/{name}", "a value must be a number, string, boolean or null")
        extra = raw.keys() - {"seq", "kind", "device", "ts_ms", "values"}
        if extra:
            raise WireError(p, f"unknown member(s) {sorted(extra)}")
        return WireRecord(seq, "sample", device, ts_ms, values=values)
    if kind == "event":
        code = _str(raw.get("code"), f"{p}/code", MAX_CODE_LEN)
        severity = raw.get("severity", "info")
        if severity not in SEVERITIES:
            raise WireError(f"{p}/severity", f"expected one of {sorted(SEVERITIES)}")
        detail = raw.get("detail", {})
        if type(detail) is not dict:
            raise WireError(f"{p}/detail", "expected an object")
        extra = raw.keys() - {"seq", "kind", "device", "ts_ms", "code", "severity", "detail"}
        if extra:
            raise WireError(p, f"unknown member(s) {sorted(extra)}")
        return WireRecord(seq, "event", device, ts_ms, code=code, severity=severity, detail=detail)
    raise WireError(f"{p}/kind", 'expected "sample" or "event"')


def decode_batch(body: bytes, max_records: int = 100_000) -> Batch:
    """Parse and validate a (decompressed) batch body; raise WireError naming the first bad field."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WireError("", f"not valid JSON: {exc}") from None
    if type(doc) is not dict:
        raise WireError("", "expected a JSON object")
    if doc.get("v") != VERSION:
        raise WireError("/v", f"unsupported batch version {doc.get('v')!r}, expected {VERSION}")
    gateway = _str(doc.get("gateway"), "/gateway", MAX_DEVICE_LEN)
    commune = doc.get("commune")
    if commune is not None:
        commune = _str(commune, "/commune", 5)
    records = doc.get("records")
    if type(records) is not list:
        raise WireError("/records", "expected an array")
    if len(records) > max_records:
        raise WireError("/records", f"{len(records)} records, at most {max_records} per batch")
    extra = doc.keys() - {"v", "gateway", "commune", "records"}
    if extra:
        raise WireError("", f"unknown member(s) {sorted(extra)}")
    out = [_record(r, i) for i, r in enumerate(records)]
    previous = 0  # seq >= 1
    for i, record in enumerate(out):
        if record.seq <= previous:
            raise WireError(f"/records/{i}/seq", "records must be in strictly ascending seq order")
        previous = record.seq
    return Batch(gateway, commune, out)
