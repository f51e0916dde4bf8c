"""Upload batch format, version 1.

A gateway POSTs the compressed JSON of::

    {"v": 1, "gateway": "gw-dijon-0001", "commune": "21231",
     "records": [
        {"seq": 41, "kind": "sample", "device": "lamp-1", "ts_ms": 1764096000000,
         "values": {"level_pct": 70, "power_w": 61.2}},
        {"seq": 42, "kind": "event", "device": "lamp-2", "ts_ms": 1764096000100,
         "code": "communication_failure", "severity": "major", "detail": {"failures": 3}}]}

to `POST /api/v1/batches` with `Authorization: Bearer <gateway token>` and
`Content-Encoding: gzip`, or `zstd` with the shipped dictionary (citygate_wire.compression: the
collector takes both; the JSON inside is the same version 1). No string (device, code, a value or
its name, the detail) holds U+0000: PostgreSQL cannot store it. A record dated ahead of the receiver's clock is refused
(`decode_batch(..., latest_ts_ms=)`, FutureTimestamp). Records are in ascending `seq` order; `seq` is the gateway's journal
sequence number, unique per gateway and never reused. The collector stores each (gateway, seq)
once and answers `{"ack_seq": <highest seq of the batch, all stored>, "stored": n, "duplicates": d}`;
the gateway then deletes everything up to `ack_seq` from its journal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Annotated, Any, ClassVar, Literal, cast, get_args

import msgspec
import orjson
from msgspec import Meta

from citygate_wire.common import PATH, VERSION, WireError, nul_pointer, pointer_token

__all__ = ["PATH", "VERSION", "Batch", "EventRecord", "FutureTimestamp", "SampleRecord", "WireError", "WireRecord",
           "decode_batch", "encode_records"]

MAX_DEVICE_LEN = 128
MAX_CODE_LEN = 64
Severity = Literal["info", "minor", "major", "critical"]
SEVERITIES: frozenset[str] = frozenset(get_args(Severity))
# 2000-01-01 .. 2100-01-01: anything outside is a broken clock or a broken encoder.
_TS_MIN, _TS_MAX = 946_684_800_000, 4_102_444_800_000
_SEQ_MAX = 2**63 - 1
#: how JSON writes U+0000 (a raw one is invalid JSON): its absence from a body proves no string has one.
#: Looked for only in a body with a backslash at all: memchr is ten times faster than the search.
_ESCAPED_NUL = b"\\u0000"


class FutureTimestamp(WireError):
    """A record dated after the latest time the receiver accepts: a clock running ahead."""

    def __init__(self, pointer: str, device: str, ts_ms: int, latest_ts_ms: int) -> None:
        super().__init__(pointer, f"{ts_ms} is {(ts_ms - latest_ts_ms) / 1000:.0f} s past the latest accepted time"
                                  f" {latest_ts_ms}: the clock that stamped it runs ahead")
        self.device = device
        self.ts_ms = ts_ms
        self.latest_ts_ms = latest_ts_ms


_Seq = Annotated[int, Meta(ge=1, le=_SEQ_MAX)]
_Device = Annotated[str, Meta(min_length=1, max_length=MAX_DEVICE_LEN)]
_Stamp = Annotated[int, Meta(ge=_TS_MIN, le=_TS_MAX)]
# orjson reads a larger integer as a float: such a value goes to the checked path, which does
_Scalar = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)] | float | str | bool | None


#: gc=False: a sample holds scalars and a dict of scalars, so it can be in no reference cycle; the
#: thousands a batch decodes to are then no work for the cyclic collector (tracked, they cost the
#: collector's ingest a full collection every nine batches: 7 % of its time)
class SampleRecord(msgspec.Struct, frozen=True, tag_field="kind", tag="sample", forbid_unknown_fields=True,
                   gc=False):
    seq: _Seq
    device: _Device
    ts_ms: _Stamp
    values: Annotated[dict[str, _Scalar], Meta(min_length=1)]
    kind: ClassVar[Literal["sample"]] = "sample"


class EventRecord(msgspec.Struct, frozen=True, tag_field="kind", tag="event", forbid_unknown_fields=True):
    seq: _Seq
    device: _Device
    ts_ms: _Stamp
    code: Annotated[str, Meta(min_length=1, max_length=MAX_CODE_LEN)]
    severity: Severity = "info"
    detail: dict[str, Any] = {}
    kind: ClassVar[Literal["event"]] = "event"


#: One record of a batch; `kind` tells which.
WireRecord = SampleRecord | EventRecord


@dataclass(frozen=True, slots=True)
class Batch:
    gateway: str
    commune: str | None
    records: Sequence[WireRecord]


class _Document(msgspec.Struct, forbid_unknown_fields=True):
    v: Literal[1]
    gateway: _Device
    records: list[WireRecord]
    commune: Annotated[str, Meta(min_length=1, max_length=5)] | None = None


#: parses and validates a well-formed batch in one pass of C (a third of the time of orjson and
#: a Python check of each record); whatever it refuses goes to the checked path below
_DECODER = msgspec.json.Decoder(_Document)


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
    if "\x00" in value:
        raise _nul(pointer)
    return value


def _nul(pointer: str) -> WireError:
    return WireError(pointer, "holds the character U+0000, which the store cannot keep")


_SCALARS = (int, float, str, bool, type(None))


def _unwritable(detail: dict[str, Any]) -> str | None:
    """Why orjson could not write `detail` back (it writes at most 254 levels deep and integers of
    64 bits), or None. Such a detail is refused: the store would fail the batch at every retry."""
    try:
        orjson.dumps(detail)
    except orjson.JSONEncodeError as exc:
        return str(exc)
    return None


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
                raise WireError(f"{p}/values/{pointer_token(name)}", "a value must be a number, string, boolean or null")
        nul = nul_pointer(values, f"{p}/values")
        if nul is not None:
            raise _nul(nul)
        extra = raw.keys() - {"seq", "kind", "device", "ts_ms", "values"}
        if extra:
            raise WireError(p, f"unknown member(s) {sorted(extra)}")
        return SampleRecord(seq, device, ts_ms, values)
    if kind == "event":
        code = _str(raw.get("code"), f"{p}/code", MAX_CODE_LEN)
        severity = raw.get("severity", "info")
        if type(severity) is not str or severity not in SEVERITIES:  # an object or array is unhashable
            raise WireError(f"{p}/severity", f"expected one of {sorted(SEVERITIES)}")
        detail = raw.get("detail", {})
        if type(detail) is not dict:
            raise WireError(f"{p}/detail", "expected an object")
        unwritable = _unwritable(detail)
        if unwritable:
            raise WireError(f"{p}/detail", f"cannot be stored as JSON: {unwritable}")
        nul = nul_pointer(detail, f"{p}/detail")  # after the depth check: the walk is bounded by it
        if nul is not None:
            raise _nul(nul)
        extra = raw.keys() - {"seq", "kind", "device", "ts_ms", "code", "severity", "detail"}
        if extra:
            raise WireError(p, f"unknown member(s) {sorted(extra)}")
        return EventRecord(seq, device, ts_ms, code, cast(Severity, severity), detail)
    raise WireError(f"{p}/kind", 'expected "sample" or "event"')


_ts_of = attrgetter("ts_ms")


def decode_batch(body: bytes, max_records: int = 100_000, *, latest_ts_ms: int = _TS_MAX) -> Batch:
    """Parse and validate a (decompressed) batch body; raise WireError naming the first bad field
    (FutureTimestamp for the first record dated after `latest_ts_ms`)."""
    if b"\\" in body and _ESCAPED_NUL in body:
        return _checked_batch(body, max_records, latest_ts_ms)
    try:
        doc = _DECODER.decode(body)
    except Exception:  # anything msgspec refuses or trips on (a RecursionError, a UnicodeDecodeError)
        return _checked_batch(body, max_records, latest_ts_ms)
    records = doc.records
    if records and max(map(_ts_of, records)) > latest_ts_ms:  # at C speed, not one more test a record below
        return _checked_batch(body, max_records, latest_ts_ms)
    previous = 0  # seq >= 1
    for record in records:
        if record.seq <= previous or (record.kind == "event" and _unwritable(record.detail)):
            return _checked_batch(body, max_records, latest_ts_ms)
        previous = record.seq
    if len(records) > max_records:
        return _checked_batch(body, max_records, latest_ts_ms)
    return Batch(doc.gateway, doc.commune, records)


def _checked_batch(body: bytes, max_records: int, latest_ts_ms: int = _TS_MAX) -> Batch:
    """The reference: orjson and a check of every member, naming the first bad one. decode_batch
    takes msgspec's result only where this would accept the same records."""
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
    out = [_checked_record(r, i) for i, r in enumerate(records)]
    previous = 0  # seq >= 1
    for i, record in enumerate(out):
        if record.seq <= previous:
            raise WireError(f"/records/{i}/seq", "records must be in strictly ascending seq order")
        if record.ts_ms > latest_ts_ms:
            raise FutureTimestamp(f"/records/{i}/ts_ms", record.device, record.ts_ms, latest_ts_ms)
        previous = record.seq
    return Batch(gateway, commune, out)
