"""Decode one Modbus RTU frame or Modbus TCP ADU into its fields. Pure: bytes in, Frame or DecodeError out.

Used by `citygate-agent decode modbus-rtu|modbus-tcp` and by the driver to say precisely what
was wrong with a reply it could not use (bad CRC, truncated, wrong protocol id ...).

An RTU frame is `unit | function | data | CRC-16/MODBUS (low byte first)`; a TCP ADU is the
7-byte MBAP header (transaction, protocol 0, length, unit) then the PDU, with no CRC. Requests
and responses share function codes, so a frame alone can be ambiguous: `direction` says which
one it is, and "auto" picks the only reading its length allows (a request when both fit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from drivers.errors import DecodeError

Fields = dict[str, int | str | list[int]]
Direction = Literal["auto", "request", "response"]
Kind = Literal["request", "response", "echo", "exception", "unknown"]

MAX_RTU_FRAME = 256
MAX_PDU = 253

FUNCTION_NAMES: dict[int, str] = {
    1: "read coils",
    2: "read discrete inputs",
    3: "read holding registers",
    4: "read input registers",
    5: "write single coil",
    6: "write single register",
    7: "read exception status",
    15: "write multiple coils",
    16: "write multiple registers",
    23: "read/write multiple registers",
}

EXCEPTION_MEANINGS: dict[int, str] = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x05: "acknowledge (long operation under way)",
    0x06: "server device busy",
    0x08: "memory parity error",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target device failed to respond",
}


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS (reflected 0xA001, init 0xFFFF, no final xor); sent on the wire low byte first."""
    crc = 0xFFFF
    for b in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ b) & 0xFF]
    return crc


def exception_meaning(code: int) -> str:
    return EXCEPTION_MEANINGS.get(code, "not a standard exception code")


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame. `fields` are in wire order; `transaction_id` is set for TCP ADUs only."""

    unit: int
    function: int
    kind: Kind
    fields: Fields = field(default_factory=dict)
    crc: int | None = None
    transaction_id: int | None = None
    note: str | None = None

    @property
    def function_name(self) -> str:
        return FUNCTION_NAMES.get(self.function & 0x7F, "unknown function")

    @property
    def exception_code(self) -> int | None:
        code = self.fields.get("exception_code")
        return code if isinstance(code, int) else None


def _u16(data: bytes, at: int) -> int:
    return (data[at] << 8) | data[at + 1]


def _registers(data: bytes) -> list[int]:
    return [_u16(data, i) for i in range(0, len(data), 2)]


def _bits(data: bytes) -> list[int]:
    return [(b >> i) & 1 for b in data for i in range(8)]


def _need(data: bytes, size: int, what: str) -> None:
    if len(data) < size:
        raise DecodeError(f"truncated {what}: needs {size} data bytes, got {len(data)}")
    if len(data) > size:
        raise DecodeError(f"{what} has {len(data) - size} bytes too many ({len(data)} data bytes, expected {size})")


def _request(function: int, data: bytes) -> Fields:
    what = f"function {function} request"
    if function in (1, 2, 3, 4):
        _need(data, 4, what)
        return {"start_address": _u16(data, 0), "quantity": _u16(data, 2)}
    if function == 5:
        _need(data, 4, what)
        return {"address": _u16(data, 0), "value": _coil_value(_u16(data, 2))}
    if function == 6:
        _need(data, 4, what)
        return {"address": _u16(data, 0), "value": _u16(data, 2)}
    if function == 7:
        _need(data, 0, what)
        return {}
    if function in (15, 16):
        if len(data) < 5:
            raise DecodeError(f"truncated {what}: needs at least 5 data bytes, got {len(data)}")
        byte_count = data[4]
        _need(data, 5 + byte_count, what)
        payload = data[5:]
        quantity = _u16(data, 2)
        if function == 16:
            if byte_count != 2 * quantity:
                raise DecodeError(f"{what}: byte count {byte_count} does not match {quantity} registers")
            values = _registers(payload)
        else:
            if byte_count != (quantity + 7) // 8:
                raise DecodeError(f"{what}: byte count {byte_count} does not match {quantity} coils")
            values = _bits(payload)[:quantity]
        return {"start_address": _u16(data, 0), "quantity": quantity, "byte_count": byte_count, "values": values}
    if function == 23:
        if len(data) < 9:
            raise DecodeError(f"truncated {what}: needs at least 9 data bytes, got {len(data)}")
        byte_count = data[8]
        _need(data, 9 + byte_count, what)
        write_quantity = _u16(data, 6)
        if byte_count != 2 * write_quantity:
            raise DecodeError(f"{what}: byte count {byte_count} does not match {write_quantity} registers")
        return {
            "read_address": _u16(data, 0),
            "read_quantity": _u16(data, 2),
            "write_address": _u16(data, 4),
            "write_quantity": write_quantity,
            "byte_count": byte_count,
            "values": _registers(data[9:]),
        }
    raise DecodeError(f"function {function} is not decoded here")


def _response(function: int, data: bytes) -> Fields:
    what = f"function {function} response"
    if function in (1, 2, 3, 4, 23):
        if not data:
            raise DecodeError(f"truncated {what}: no byte count")
        byte_count = data[0]
        _need(data, 1 + byte_count, what)
        if function in (1, 2):
            return {"byte_count": byte_count, "bits": _bits(data[1:])}
        if byte_count % 2:
            raise DecodeError(f"{what}: byte count {byte_count} is odd, registers are 2 bytes each")
        return {"byte_count": byte_count, "registers": _registers(data[1:])}
    if function in (5, 6):
        return _request(function, data)
    if function == 7:
        _need(data, 1, what)
        return {"status": data[0]}
    if function in (15, 16):
        _need(data, 4, what)
        return {"start_address": _u16(data, 0), "quantity": _u16(data, 2)}
    raise DecodeError(f"function {function} is not decoded here")


def _coil_value(v: int) -> str:
    if v == 0xFF00:
        return "ON (0xFF00)"
    if v == 0x0000:
        return "OFF (0x0000)"
    raise DecodeError(f"write-single-coil value must be 0xFF00 or 0x0000, got 0x{v:04X}")


def decode_pdu(unit: int, pdu: bytes, direction: Direction = "auto") -> Frame:
    """Fields of one PDU (function code + data) sent to or by `unit`."""
    if not pdu:
        raise DecodeError("empty PDU: no function code")
    if len(pdu) > MAX_PDU:
        raise DecodeError(f"PDU of {len(pdu)} bytes is longer than the Modbus maximum of {MAX_PDU}")
    function, data = pdu[0], pdu[1:]
    if function & 0x7F == 0:
        raise DecodeError(f"function code 0x{function:02X} is not valid")
    if function & 0x80:
        if direction == "request":
            raise DecodeError(f"function 0x{function:02X} has the exception bit set: this is a response")
        _need(data, 1, f"exception response to function {function & 0x7F}")
        code = data[0]
        return Frame(
            unit,
            function & 0x7F,
            "exception",
            {"exception_code": code, "meaning": exception_meaning(code)},
        )
    if function not in FUNCTION_NAMES:
        return Frame(unit, function, "unknown", {"data": data.hex(" ")})
    if function in (5, 6):
        # A write-single reply echoes the request byte for byte.
        return Frame(unit, function, "echo" if direction == "auto" else direction, _request(function, data))
    if direction != "auto":
        decoder = _request if direction == "request" else _response
        return Frame(unit, function, direction, decoder(function, data))
    readings: list[tuple[Kind, Fields]] = []
    errors: list[str] = []
    attempts: tuple[tuple[Kind, Callable[[int, bytes], Fields]], ...] = (
        ("request", _request),
        ("response", _response),
    )
    for kind, attempt in attempts:
        try:
            readings.append((kind, attempt(function, data)))
        except DecodeError as exc:
            errors.append(f"as a {kind}: {exc}")
    if not readings:
        raise DecodeError("; ".join(errors))
    kind, fields = readings[0]
    note = "also reads as a valid response; give the direction to be sure" if len(readings) == 2 else None
    return Frame(unit, function, kind, fields, note=note)


def decode_rtu(frame: bytes, direction: Direction = "auto") -> Frame:
    """One whole RTU frame, CRC included."""
    if len(frame) < 4:
        raise DecodeError(f"truncated RTU frame: {len(frame)} bytes, at least 4 needed (unit, function, CRC)")
    if len(frame) > MAX_RTU_FRAME:
        raise DecodeError(f"RTU frame of {len(frame)} bytes is longer than the maximum of {MAX_RTU_FRAME}")
    short = _rtu_shortfall(frame, direction)
    if short is not None:
        raise DecodeError(short)
    sent = frame[-2] | (frame[-1] << 8)
    computed = crc16(frame[:-2])
    if sent != computed:
        raise DecodeError(
            f"CRC mismatch: frame carries 0x{sent:04X} (bytes {frame[-2]:02X} {frame[-1]:02X}), "
            f"computed 0x{computed:04X} (would be sent {computed & 0xFF:02X} {computed >> 8:02X})"
        )
    unit = frame[0]
    if unit > 247:
        raise DecodeError(f"unit address {unit} is reserved (valid: 0 broadcast, 1-247)")
    decoded = decode_pdu(unit, frame[1:-2], direction)
    return Frame(decoded.unit, decoded.function, decoded.kind, decoded.fields, crc=sent, note=decoded.note)


def _rtu_length(frame: bytes, kind: Literal["request", "response"]) -> int | None:
    """Whole-frame length its header implies, when it does (RTU frames are delimited by their content)."""
    function = frame[1]
    if function & 0x80:
        return 5 if kind == "response" else None
    if kind == "response":
        if function in (1, 2, 3, 4, 23):
            return 5 + frame[2]
        return 8 if function in (5, 6, 15, 16) else 5 if function == 7 else None
    if function in (1, 2, 3, 4, 5, 6):
        return 8
    if function == 7:
        return 4
    if function in (15, 16) and len(frame) > 6:
        return 9 + frame[6]
    if function == 23 and len(frame) > 10:
        return 13 + frame[10]
    return None


def _rtu_shortfall(frame: bytes, direction: Direction) -> str | None:
    """Why a frame is too short for every reading its header allows, or None."""
    kinds: tuple[Literal["request", "response"], ...] = ("request", "response") if direction == "auto" else (direction,)
    needs = [(kind, _rtu_length(frame, kind)) for kind in kinds]
    if any(n is None or n == len(frame) for _, n in needs):
        return None
    longer = [(n, kind) for kind, n in needs if n is not None and n > len(frame)]
    if not longer:
        return None
    n, kind = min(longer)
    return f"truncated RTU frame: function {frame[1]} {kind} needs {n} bytes, got {len(frame)}"


def decode_tcp(adu: bytes, direction: Direction = "auto") -> Frame:
    """One whole Modbus TCP ADU: MBAP header then PDU."""
    if len(adu) < 8:
        raise DecodeError(f"truncated Modbus TCP ADU: {len(adu)} bytes, at least 8 needed (MBAP header + function)")
    tid, pid, length = _u16(adu, 0), _u16(adu, 2), _u16(adu, 4)
    if pid != 0:
        raise DecodeError(f"protocol id is {pid} (0x{pid:04X}), Modbus uses 0: not a Modbus TCP ADU")
    if length < 2:
        raise DecodeError(f"MBAP length {length} is too small: it counts the unit id and the PDU (at least 2)")
    if len(adu) - 6 < length:
        raise DecodeError(f"truncated Modbus TCP ADU: MBAP length says {length} bytes follow, got {len(adu) - 6}")
    if len(adu) - 6 > length:
        raise DecodeError(f"{len(adu) - 6 - length} bytes after the end of the ADU (MBAP length {length})")
    decoded = decode_pdu(adu[6], adu[7:], direction)
    return Frame(decoded.unit, decoded.function, decoded.kind, decoded.fields, transaction_id=tid, note=decoded.note)
