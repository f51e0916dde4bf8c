"""The pure Modbus frame decoder against every shared vector, the `decode` CLI, and fuzzing."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import DecodeError
from drivers.modbus.frames import crc16, decode_pdu, decode_rtu, decode_tcp
from edge_agent.cli import main as agent_cli
from tests.vectors import load_vectors

VECTORS = load_vectors("modbus.json")
RTU_VECTORS = VECTORS["vectors"]
TCP_VECTORS = VECTORS["tcp_vectors"]


def _with_crc(body: bytes) -> bytes:
    crc = crc16(body)
    return body + bytes([crc & 0xFF, crc >> 8])


def test_crc_check_value_and_spec_example() -> None:
    assert crc16(b"123456789") == 0x4B37
    assert crc16(bytes.fromhex("11 03 00 6B 00 03")) == 0x8776
    # Over a whole valid frame, CRC bytes included, the CRC is 0.
    assert crc16(bytes.fromhex("11 03 00 6B 00 03 76 87")) == 0


@pytest.mark.parametrize("vector", RTU_VECTORS, ids=[v["name"] for v in RTU_VECTORS])
def test_rtu_vector(vector: dict[str, Any]) -> None:
    frame_bytes = bytes.fromhex(vector["hex"])
    frame = decode_rtu(frame_bytes)
    assert frame.crc == int(vector["crc_value"], 16)
    assert bytes.fromhex(vector["crc_bytes"]) == frame_bytes[-2:]
    expected = vector["expected"]
    if "crc" in expected:  # the CRC placement example carries no fields to check
        assert frame.crc == int(expected["crc"], 16)
        assert expected["wire_order"] == "low byte first" and frame_bytes[-2] == frame.crc & 0xFF
        return
    assert frame.unit == expected["slave"]
    assert frame.function == expected["function"]
    for key in ("start_address", "quantity", "address", "exception_code"):
        if key in expected:
            assert frame.fields[key] == expected[key]
    if "value" in expected:
        value = expected["value"]
        assert frame.fields["value"] == value if isinstance(value, int) else str(frame.fields["value"]).startswith("ON")
    if "exception_code" in expected:
        assert frame.kind == "exception" and frame.fields["meaning"] == "illegal data address"


@pytest.mark.parametrize("vector", TCP_VECTORS, ids=[v["name"] for v in TCP_VECTORS])
def test_tcp_vector(vector: dict[str, Any]) -> None:
    frame = decode_tcp(bytes.fromhex(vector["hex"]))
    e = vector["expected"]
    assert (frame.transaction_id, frame.unit, frame.function) == (e["transaction_id"], e["unit_id"], e["function"])
    assert frame.fields == {"start_address": e["start_address"], "quantity": e["quantity"]}
    assert frame.kind == "request"


@pytest.mark.parametrize("vector", RTU_VECTORS, ids=[v["name"] for v in RTU_VECTORS])
def test_cli_decodes_every_rtu_vector(vector: dict[str, Any]) -> None:
    result = CliRunner().invoke(agent_cli, ["decode", "modbus-rtu", vector["hex"], "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["protocol"] == "Modbus RTU"
    assert doc["crc"] == f"0x{int(vector['crc_value'], 16):04X} (ok)"
    if "slave" in vector["expected"]:
        assert doc["unit"] == vector["expected"]["slave"]
        assert doc["function"].startswith(f"{vector['expected']['function']} (")


def test_cli_decodes_the_tcp_vector() -> None:
    result = CliRunner().invoke(agent_cli, ["decode", "modbus-tcp", TCP_VECTORS[0]["hex"], "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["transaction_id"] == 1 and doc["unit"] == 17
    assert {f["name"]: f["value"] for f in doc["fields"]} == {"start_address": 107, "quantity": 3}


@pytest.mark.parametrize(
    ("hex_frame", "message"),
    [
        ("11 03 00 6B 00 03 76 88", "CRC mismatch: frame carries 0x8876"),
        ("11 03", "truncated RTU frame: 2 bytes"),
        ("11 03 18 00 64 00 65 5E 2C", "truncated RTU frame: function 3 response needs 29 bytes, got 9"),
    ],
)
def test_cli_bad_frame_exits_2_with_the_reason(hex_frame: str, message: str) -> None:
    # A real process: the exit code is what scripts see.
    env = dict(os.environ, COLUMNS="200")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "citygate-agent"), "decode", "modbus-rtu", hex_frame],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr


def test_cli_refuses_non_hex() -> None:
    result = CliRunner().invoke(agent_cli, ["decode", "modbus-rtu", "zz"])
    assert result.exit_code == 2 and "not hexadecimal" in result.output


def test_response_readings() -> None:
    frame = decode_rtu(_with_crc(bytes.fromhex("11 03 06 AE 41 56 52 43 40")))
    assert frame.kind == "response" and frame.fields["registers"] == [0xAE41, 0x5652, 0x4340]
    frame = decode_rtu(_with_crc(bytes.fromhex("11 10 00 01 00 02")), "response")
    assert frame.fields == {"start_address": 1, "quantity": 2}
    frame = decode_rtu(_with_crc(bytes.fromhex("11 10 00 01 00 02 04 00 0A 01 02")))
    assert frame.kind == "request" and frame.fields["values"] == [10, 258]
    with pytest.raises(DecodeError, match="byte count 5 is odd"):
        decode_rtu(_with_crc(bytes.fromhex("11 03 05 00 01 00 02 03")), "response")
    with pytest.raises(DecodeError, match="0xFF00 or 0x0000"):
        decode_rtu(_with_crc(bytes.fromhex("11 05 00 AC 12 34")))
    with pytest.raises(DecodeError, match="reserved"):
        decode_rtu(_with_crc(bytes.fromhex("F8 03 00 00 00 01")))
    unknown = decode_rtu(_with_crc(bytes.fromhex("11 41 01 02")))
    assert unknown.kind == "unknown" and unknown.fields == {"data": "01 02"}


def test_ambiguous_frame_says_so_and_direction_settles_it() -> None:
    # FC01: an 8-byte request, or a response carrying 3 bytes of coils.
    body = bytes.fromhex("11 01 03 CD 6B 05")
    auto = decode_rtu(_with_crc(body))
    assert auto.kind == "request" and auto.note is not None
    response = decode_rtu(_with_crc(body), "response")
    assert response.kind == "response" and response.fields["byte_count"] == 3


def test_tcp_adu_errors() -> None:
    with pytest.raises(DecodeError, match="protocol id is 1"):
        decode_tcp(bytes.fromhex("00 01 00 01 00 06 11 03 00 6B 00 03"))
    with pytest.raises(DecodeError, match="MBAP length says 9 bytes follow, got 6"):
        decode_tcp(bytes.fromhex("00 01 00 00 00 09 11 03 00 6B 00 03"))
    with pytest.raises(DecodeError, match="2 bytes after the end"):
        decode_tcp(bytes.fromhex("00 01 00 00 00 06 11 03 00 6B 00 03 FF FF"))
    with pytest.raises(DecodeError, match="exception bit set"):
        decode_pdu(1, bytes([0x83, 0x02]), "request")


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_rtu_random_bytes(data: bytes) -> None:
    try:
        decode_rtu(data)
    except DecodeError:
        pass


@settings(max_examples=3000, deadline=None)
@given(st.binary(min_size=2, max_size=254), st.sampled_from(["auto", "request", "response"]))
def test_fuzz_rtu_bodies_with_a_valid_crc(body: bytes, direction: str) -> None:
    # A valid CRC gets past the first check, so this exercises every PDU decoder.
    try:
        frame = decode_rtu(_with_crc(body), direction)  # type: ignore[arg-type]
    except DecodeError:
        return
    assert frame.unit == body[0] and frame.function == body[1] & 0x7F


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=270))
def test_fuzz_tcp_random_bytes(data: bytes) -> None:
    try:
        decode_tcp(data)
    except DecodeError:
        pass


def test_fuzz_loop_of_mutated_vectors() -> None:
    """200k mutations of the shared vectors (bytes flipped, cut, extended, CRC repaired or not)."""
    rng = random.Random(20261130)
    seeds = [bytes.fromhex(v["hex"]) for v in RTU_VECTORS]
    for _ in range(200_000):
        frame = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            op = rng.random()
            if op < 0.5 and frame:
                frame[rng.randrange(len(frame))] = rng.randrange(256)
            elif op < 0.7:
                del frame[rng.randrange(len(frame) + 1) :]
            else:
                frame += bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        data = bytes(frame)
        if rng.random() < 0.5 and len(data) >= 4:
            data = _with_crc(data[:-2])
        try:
            decode_rtu(data, rng.choice(["auto", "request", "response"]))
        except DecodeError:
            pass
