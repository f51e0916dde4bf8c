"""The libmbus test corpus (76 meters' frames, 20 error frames) decoded and checked against libmbus's own output.

tests/vectors/mbus_libmbus.json holds the frames and what libmbus prints for them (BSD-3-Clause,
Raditex AB; see the file's "licence"). Where EN 13757-3 says a value is no reading, citygate
differs from libmbus on purpose and the test checks the standard's answer instead:
- a BCD field holding a hex digit A-E (or F below the top digit) is an error code, not a number;
- a type F date-time with the IV bit, or a date with day 0 ("not specified"), has no value;
- data behind VIF 0x7F or VIFE 0x7F is the manufacturer's: kept raw, not read as a number;
- a VIFE "date (/time) of ..." makes the data a date (libmbus reads it as the VIF's quantity).
"""

from __future__ import annotations

import math
import random
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from drivers.mbus.frame import MbusDecodeError, encode_long
from drivers.mbus.records import ApplicationError, FixedData, Record, VariableData, decode_response
from drivers.mbus.values import meter_values
from edge_agent.cli import main
from edge_agent.decode_mbus import mbus_document
from tests.vectors import load_vectors

CORPUS = load_vectors("mbus_libmbus.json")
# libmbus lists the DIF 0x0F / 0x1F block as a record; here it is `manufacturer_data`
_BLOCKS = ("Manufacturer specific", "More records follow")


def _records(raw: bytes) -> tuple[Record, ...]:
    data = decode_response(raw).data
    assert isinstance(data, VariableData | FixedData)
    return data.records


def _agrees(ours: Record, theirs: dict[str, Any]) -> None:
    value = theirs.get("Value")
    if ours.manufacturer_specific:
        assert ours.value is None and ours.problem is None
        return
    if ours.invalid:
        assert ours.value is None and ours.problem
        return
    if any(n.startswith("DATE_OF_") or n == "START_DATE_TIME_OF" for n in ours.vife_names):
        assert ours.value is None or (isinstance(ours.value, str) and ours.value[4] == "-")
        return
    if isinstance(ours.value, str) and ours.unit in ("DATE", "DATE_TIME"):
        assert value is not None and value.removesuffix("Z").startswith(ours.value)
        return
    if isinstance(ours.value, int | float) and value is not None:
        try:
            expected = float(value)
        except ValueError:  # libmbus prints some identifiers in hex
            return
        expected *= _fixed_unit(theirs)
        # libmbus prints "%f": six decimals
        assert math.isclose(float(ours.value), expected, rel_tol=1e-6, abs_tol=1e-6) or _time_unit(
            ours, theirs, expected), (ours, theirs)


# libmbus prints a fixed-structure counter in the meter's unit ("l", "kWh * 10"); here it is in the base unit
_FIXED_BASE = {"Wh": 1, "kWh": 1e3, "MWh": 1e6, "kJ": 1e3, "MJ": 1e6, "GJ": 1e9, "W": 1, "kW": 1e3, "MW": 1e6,
               "kJ/h": 1e3, "MJ/h": 1e6, "GJ/h": 1e9, "ml": 1e-6, "l": 1e-3, "m3": 1, "ml/h": 1e-6, "l/h": 1e-3,
               "m3/h": 1}


def _fixed_unit(theirs: dict[str, Any]) -> float:
    if theirs.get("Function") != "Actual value":
        return 1.0
    base, _, times = theirs.get("Unit", "").partition(" * ")
    return _FIXED_BASE.get(base, 1.0) * (float(times) if times else 1.0)


def _time_unit(ours: Record, theirs: dict[str, Any], expected: float) -> bool:
    # libmbus keeps durations in the meter's unit (days, hours ...); here they are seconds
    unit = theirs.get("Unit", "")
    seconds = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}.get(unit)
    return seconds is not None and isinstance(ours.value, int | float) and math.isclose(ours.value, expected * seconds)


@pytest.mark.parametrize("frame", CORPUS["frames"], ids=lambda f: f["name"])
def test_every_libmbus_frame_decodes_like_libmbus_or_as_the_standard_says(frame: dict[str, Any]) -> None:
    raw = bytes.fromhex(frame["hex"])
    ours = _records(raw)
    theirs = [r for r in frame["records"] if r.get("Function") not in _BLOCKS]
    assert len(ours) == len(theirs)
    for i, (o, t) in enumerate(zip(ours, theirs, strict=True)):
        if t.get("Unit") == "reserved but historic":
            # fixed structure, unit code 0x3E: "same (as counter 1) but historic", which libmbus does not know
            assert o.storage == 1 and o.quantity == ours[i - 1].quantity
            t = {**t, "Unit": theirs[i - 1]["Unit"]}
        _agrees(o, t)
    doc = mbus_document(raw)
    orjson.dumps(doc)  # any value the frame holds is writable
    values, _ = meter_values([decode_response(raw)])
    orjson.dumps(values)
    if frame["slave"].get("Manufacturer"):
        assert doc["manufacturer"] == frame["slave"]["Manufacturer"]


@pytest.mark.parametrize("frame", CORPUS["error_frames"], ids=lambda f: f["name"])
def test_libmbus_error_frames_name_the_error_or_fail_precisely(frame: dict[str, Any]) -> None:
    raw = bytes.fromhex(frame["hex"])
    code, out = _cli("mbus", frame["hex"], "--json")
    if frame["error"] is None:  # a broken record structure: decode error, exit 2, never a traceback
        assert code == 2 and out.startswith("decode error: ")
        return
    assert code == 0, out
    data = decode_response(raw).data
    assert isinstance(data, ApplicationError)
    assert _words(data.name) == _words(frame["error"])
    assert orjson.loads(out)["application_error"]["name"] == data.name


def _words(name: str) -> list[str]:
    # libmbus writes "Unimplemented CI-Field", "More than 10 DIFE´s" (in Latin-1 read as UTF-8)
    kept = "".join(c for c in name.lower() if c.isascii())
    return kept.replace("-", " ").replace(",", " ").split()


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["decode", *args])
    return result.exit_code, result.output


@pytest.mark.timeout(120)
def test_fuzz_mutated_corpus_frames_only_raise_decode_errors_and_always_give_json() -> None:
    rng = random.Random(1375703)
    seeds = [bytes.fromhex(f["hex"]) for f in CORPUS["frames"] + CORPUS["error_frames"]]
    outcomes = {"ok": 0, "error": 0}
    for _ in range(20_000):
        raw = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(4, max(5, len(raw) - 2))
            op = rng.randrange(3)
            if op == 0 and pos < len(raw):
                raw[pos] = rng.randrange(256)
            elif op == 1 and pos < len(raw):
                del raw[pos]
            else:
                raw.insert(pos, rng.randrange(256))
        body = raw[4:-2]
        # a valid envelope around the mutated bytes, so the mutation reaches the record decoder
        frame = encode_long(body[0], body[1], body[2], bytes(body[3:252])) if len(body) >= 3 else bytes(raw)
        try:
            doc = mbus_document(frame)
        except MbusDecodeError:
            outcomes["error"] += 1
            continue
        orjson.dumps(doc)
        outcomes["ok"] += 1
    assert outcomes["ok"] > 1000 and outcomes["error"] > 1000, outcomes
