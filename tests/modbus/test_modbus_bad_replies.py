"""Truncated, garbled and mismatched replies, served byte for byte from a raw TCP socket and a raw pty:
each one becomes a precise error, never a crash, a hang or wrong data."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from modbus_testkit import (
    Records,
    make_bus,
    polling,
    raw_rtu_peer,
    raw_tcp_peer,
    rtu_frame,
    rtu_table,
    wait_for,
)

from drivers.modbus.link import BadReply, ExceptionReply, LinkDown, NoReply, rtu_link, tcp_link

REGS = list(range(100, 112))


def _mbap(request: bytes, pdu: bytes, *, unit: int | None = None, length: int | None = None, pid: int = 0) -> bytes:
    tid = request[:2]
    body_len = len(pdu) + 1 if length is None else length
    return tid + struct.pack(">HH", pid, body_len) + bytes([request[6] if unit is None else unit]) + pdu


def _regs_pdu(function: int, regs: list[int], byte_count: int | None = None) -> bytes:
    data = b"".join(struct.pack(">H", r) for r in regs)
    return bytes([function, len(data) if byte_count is None else byte_count]) + data


TCP_CASES = [
    pytest.param(
        lambda req: _mbap(req, _regs_pdu(3, REGS), length=40)[:20],
        BadReply,
        r"truncated Modbus TCP ADU: MBAP length says 40 bytes follow, got 14",
        id="truncated",
    ),
    pytest.param(
        lambda req: _mbap(req, _regs_pdu(3, REGS), pid=0x1234),
        BadReply,
        r"protocol id is 4660 \(0x1234\), Modbus uses 0",
        id="wrong-protocol-id",
    ),
    pytest.param(
        lambda req: _mbap(req, _regs_pdu(3, REGS[:2])),
        BadReply,
        r"unit 1 sent 2 registers for a read of 12 at 0",
        id="too-few-registers",
    ),
    pytest.param(
        lambda req: _mbap(req, _regs_pdu(4, REGS)),
        BadReply,
        r"unit 1 answered function 3 with function 4",
        id="wrong-function",
    ),
    pytest.param(
        lambda req: _mbap(req, _regs_pdu(3, REGS), unit=9),
        BadReply,
        r"a reply from unit 9 to function 3 that does not match the request",
        id="wrong-unit",
    ),
    pytest.param(
        lambda req: _mbap(req, bytes([0x83, 0x02])),
        ExceptionReply,
        r"exception 02 \(illegal data address\)",
        id="exception",
    ),
    pytest.param(
        lambda req: _mbap(req, _regs_pdu(3, REGS[:2], byte_count=24)),
        BadReply,
        r"truncated function 3 response: needs 25 data bytes, got 5",
        id="byte-count-lies",
    ),
    pytest.param(lambda req: None, NoReply, r"no reply from unit 1 within 0\.3 s", id="silence"),
]


@pytest.mark.parametrize(("reply", "error", "message"), TCP_CASES)
async def test_bad_tcp_reply_becomes_a_precise_error(
    reply: Callable[[bytes], bytes | None], error: type[Exception], message: str
) -> None:
    async with raw_tcp_peer(reply) as port:
        link = tcp_link("127.0.0.1", port, timeout_s=0.3, reconnect_s=(0.1, 1.0))
        try:
            with pytest.raises(error, match=message):
                await link.read(1, 3, 0, 12)
            # The link stays usable: the next request is made and fails the same way, no hang.
            with pytest.raises(error):
                await link.read(1, 3, 0, 12)
        finally:
            await link.aclose()


async def test_good_tcp_reply_after_a_garbled_one_is_read_correctly() -> None:
    replies = iter([lambda req: _mbap(req, _regs_pdu(3, REGS), pid=7), lambda req: _mbap(req, _regs_pdu(3, REGS))])
    async with raw_tcp_peer(lambda req: next(replies)(req)) as port:
        link = tcp_link("127.0.0.1", port, timeout_s=0.3, reconnect_s=(0.1, 1.0))
        try:
            with pytest.raises(BadReply):
                await link.read(1, 3, 0, 12)
            assert list(await link.read(1, 3, 0, 12)) == REGS
        finally:
            await link.aclose()


async def test_peer_closing_the_connection_is_reported_and_reconnected() -> None:
    calls = []

    def reply(req: bytes) -> bytes | None:
        calls.append(req)
        return None if len(calls) == 1 else _mbap(req, _regs_pdu(3, REGS))

    async with raw_tcp_peer(reply) as port:
        link = tcp_link("127.0.0.1", port, timeout_s=0.3, reconnect_s=(0.05, 1.0))
        try:
            with pytest.raises(NoReply):
                await link.read(1, 3, 0, 12)
            assert list(await link.read(1, 3, 0, 12)) == REGS
        finally:
            await link.aclose()


async def test_nothing_listening_is_link_down_with_backoff() -> None:
    async with raw_tcp_peer(lambda req: None) as port:
        pass  # the port is now closed
    link = tcp_link("127.0.0.1", port, timeout_s=0.3, reconnect_s=(5.0, 10.0))
    try:
        with pytest.raises(LinkDown, match=f"cannot connect to 127.0.0.1:{port}"):
            await link.read(1, 3, 0, 12)
        # Within the reconnect delay the next request fails at once, without a connection attempt.
        with pytest.raises(LinkDown, match="next connection attempt in"):
            await link.read(1, 3, 0, 12)
    finally:
        await link.aclose()


def _rtu_regs(unit: int, regs: list[int]) -> bytes:
    return rtu_frame(bytes([unit]) + _regs_pdu(3, regs))


RTU_CASES = [
    pytest.param(
        lambda req: _rtu_regs(req[0], REGS)[:-1] + b"\x00",
        BadReply,
        r"CRC mismatch: frame carries 0x00",
        id="bad-crc",
    ),
    pytest.param(
        lambda req: _rtu_regs(req[0], REGS)[:11],
        BadReply,
        r"truncated RTU frame: function 3 response needs 29 bytes, got 11",
        id="truncated",
    ),
    pytest.param(
        lambda req: _rtu_regs(9, REGS),
        BadReply,
        r"a reply from unit 9 to function 3 that does not match the request",
        id="wrong-unit",
    ),
    pytest.param(
        lambda req: rtu_frame(bytes([req[0], 0x83, 0x03])),
        ExceptionReply,
        r"exception 03 \(illegal data value\)",
        id="exception",
    ),
    pytest.param(lambda req: b"\xff\x00\x13\x37\x42", BadReply, r"received ff 00 13 37 42", id="noise"),
    pytest.param(lambda req: None, NoReply, r"no reply from unit 1", id="silence"),
]


@pytest.mark.parametrize(("reply", "error", "message"), RTU_CASES)
async def test_bad_rtu_reply_on_a_pty_becomes_a_precise_error(
    reply: Callable[[bytes], bytes | None], error: type[Exception], message: str
) -> None:
    async with raw_rtu_peer(reply) as path:
        link = rtu_link(path, baudrate=9600, parity="N", stopbits=1, bytesize=8, timeout_s=0.3, reconnect_s=(0.1, 1.0))
        try:
            with pytest.raises(error, match=message):
                await link.read(1, 3, 0, 12)
        finally:
            await link.aclose()


async def test_garbled_line_shows_in_the_failure_event_and_the_device_state() -> None:
    async with raw_rtu_peer(lambda req: _rtu_regs(req[0], REGS)[:-2] + b"\xde\xad") as path:
        bus = make_bus(rtu_table(path, [1], interval_s=0.2, timeout_s=0.1, retries=0, failure_threshold=2))
        records = Records()
        async with polling(bus, records):
            await wait_for(lambda: records.events("communication_failure"), what="communication_failure")
        (event,) = records.events("communication_failure")
        assert event.detail["kind"] == "garbled"
        assert "CRC mismatch: frame carries 0xADDE" in event.detail["error"]
        (state,) = bus.states()
        assert state.errors.get("garbled", 0) >= 2 and "CRC mismatch" in (state.last_error or "")


async def test_a_pty_refusing_parity_e_is_a_clear_connection_failure() -> None:
    async with raw_rtu_peer(lambda req: None) as path:
        link = rtu_link(path, baudrate=9600, parity="E", stopbits=1, bytesize=8, timeout_s=0.3, reconnect_s=(0.1, 1.0))
        try:
            with pytest.raises(LinkDown, match=f"cannot connect to {path}: .*Invalid argument"):
                await link.read(1, 3, 0, 12)
        finally:
            await link.aclose()
