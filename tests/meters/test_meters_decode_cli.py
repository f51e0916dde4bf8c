"""`citygate-agent decode tic|mbus`: every shared vector decodes to its fields with units; bad bytes exit 2 with the reason."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from drivers.mbus.frame import encode_long
from edge_agent.cli import main
from tests.vectors import load_vectors

TIC = load_vectors("tic.json")
MBUS = load_vectors("mbus.json")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["decode", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("vec", TIC["groups"], ids=lambda v: v["text"].strip())
def test_tic_group_vectors(vec: dict) -> None:
    code, out = run("tic", vec["hex"], "--json")
    assert code == 0, out
    doc = orjson.loads(out)
    assert (doc["label"], doc["data"], doc["mode"]) == (
        vec["expected"]["label"],
        vec["expected"]["data"],
        vec["mode"],
    )
    code, _ = run("tic", vec["hex"], "--mode", "standard" if vec["mode"] == "historic" else "historic")
    assert code == 2


@pytest.mark.parametrize("vec", TIC["frames"], ids=lambda v: v["mode"])
def test_tic_frame_vectors_with_units(vec: dict) -> None:
    code, out = run("tic", vec["hex"], "--json")
    assert code == 0, out
    doc = orjson.loads(out)
    assert doc["frames"] == 1 and len(doc["groups"]) == len(vec["expected"]["fields"])
    fields = {f["name"]: (f["value"], f["unit"]) for f in doc["fields"]}
    assert fields["apparent_power_va"][1] == "VA" and fields["energy_wh"][1] == "Wh"
    assert fields["current_a"][1] == "A"
    code, out = run("tic", vec["hex"])  # the table form
    assert code == 0 and "apparent_power_va" in out


def test_tic_errors_exit_2_with_the_reason() -> None:
    code, out = run("tic", "0a4541535409303033353139373033092a0d")  # EAST with a wrong digit
    assert code == 2 and "checksum" in out and "EAST" in out
    code, out = run("tic", "4541535409")
    assert code == 2 and "expected STX" in out
    code, out = run("tic", "020a4144434f2030353030323231323030373820320d")
    assert code == 2 and "no ETX" in out
    code, out = run("tic", "zz")
    assert code == 2 and "not hexadecimal" in out


@pytest.mark.parametrize("vec", MBUS["long_frames"], ids=lambda v: v["name"])
def test_mbus_long_frame_vectors_with_units(vec: dict) -> None:
    code, out = run("mbus", vec["hex"], "--json")
    assert code == 0, out
    doc = orjson.loads(out)
    assert doc["manufacturer"] == vec["expected"]["header"]["manufacturer"]
    assert int(doc["id"]) == vec["expected"]["header"]["id"]
    records = [r for r in vec["expected"]["records"] if "value" in r]
    assert len(doc["fields"]) == len(records)
    for f, r in zip(doc["fields"], records, strict=True):
        assert f["name"].startswith(r["type"].lower())
        if r["type"] == "DATE" and r["value"].endswith("-00"):  # day 0 is no date (EN 13757-3): no value
            assert f["value"] is None and f["invalid"] is True
            continue
        assert (
            f["value"] == pytest.approx(r["value"])
            if isinstance(r["value"], float)
            else f["value"] == r["value"]
        )
    units = {f["name"]: f["unit"] for f in doc["fields"]}
    assert "m³" in units.values() or "Wh" in units.values()


@pytest.mark.parametrize("vec", MBUS["short_frames"], ids=lambda v: v["name"])
def test_mbus_short_frame_vectors(vec: dict) -> None:
    code, out = run("mbus", vec["hex"], "--json")
    assert code == 0, out
    doc = orjson.loads(out)
    if vec["expected"].get("ack"):
        assert "E5" in doc["telegram"]
    else:
        assert doc["C"].startswith(vec["expected"]["C"]) and doc["A"] == vec["expected"]["A"]


def test_mbus_unknown_vif_is_shown_and_errors_exit_2() -> None:
    # CI 0x72 header + a record with the reserved VIF 0x6F
    hexa = encode_long(0x08, 1, 0x72, bytes.fromhex("78563412 E61E 01 07 00 00 0000" + "01 6F 2A")).hex(" ")
    code, out = run("mbus", hexa, "--json")
    assert code == 0, out
    doc = orjson.loads(out)
    assert doc["fields"][0]["name"] == "unknown_vif" and doc["unknown_vifs"] == ["VIF 0x6F data 2a"]
    code, out = run("mbus", "10 5B 01 5D 16")
    assert code == 2 and "checksum 0x5D, expected 0x5C" in out
    code, out = run("mbus", "68 03 03 68 08 01 70 79 16")  # CI 0x70 with no code: "unspecified error"
    assert code == 0 and orjson.loads(run("mbus", "68 03 03 68 08 01 70 79 16", "--json")[1])["application_error"] == {
        "code": "0x00", "name": "unspecified error"}
