"""`citygate-agent decode tic` on whole three-phase frames: every group a typed field, a bad group reported, not fatal."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from click.testing import CliRunner

from drivers.tic.codec import Mode, encode_frame
from edge_agent.cli import main

FRAMES = {
    f["name"]: f for f in json.loads((Path(__file__).parent / "tic_frames.json").read_text("utf-8"))["frames"]
}


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["decode", "tic", *args])
    return result.exit_code, result.output


def test_three_phase_standard_frame_every_group_is_a_field_with_unit_and_horodate() -> None:
    vec = FRAMES["standard_three_phase_tempo"]
    code, out = run(vec["hex"], "--json")
    assert code == 0, out
    doc = orjson.loads(out)
    assert "bad_groups" not in doc and "problems" not in doc and len(doc["groups"]) == len(vec["groups"])
    labels = {f["label"] for f in doc["fields"]}
    assert labels >= {g[0] for g in vec["groups"]}
    by_name = {f["name"]: f for f in doc["fields"]}
    smax = by_name["max_apparent_power_yesterday_l2_va"]
    assert (smax["label"], smax["value"], smax["unit"], smax["horodate"], smax["time"]) == (
        "SMAXSN2-1",
        3366,
        "VA",
        "H200213101142",
        "2020-02-13T10:11:42+01:00",
    )
    assert (by_name["mean_voltage_l3_v"]["value"], by_name["mean_voltage_l3_v"]["unit"]) == (236, "V")
    assert (by_name["subscribed_power_va"]["value"], by_name["subscribed_power_va"]["unit"]) == (30000, "VA")
    assert by_name["prm"]["value"] == "07361794479930" and by_name["tic_version"]["value"] == "02"
    blocks = by_name["supplier_profile_tomorrow"]["blocks"]
    assert [(b["start"], b["tariff_index"], b["dry_contact"]) for b in blocks] == [
        ("00:00", 1, "tempo"),
        ("06:00", 2, "tempo"),
        ("22:00", 1, "tempo"),
    ]
    code, out = run(vec["hex"])  # the table form
    assert code == 0 and "3129" in out and "SMAXSN1-1" in out


def test_three_phase_historic_frame_fields() -> None:
    code, out = run(FRAMES["historic_three_phase_long"]["hex"], "--json")
    assert code == 0, out
    by_name = {f["name"]: f for f in orjson.loads(out)["fields"]}
    assert (by_name["max_current_l2_a"]["value"], by_name["max_current_l2_a"]["unit"]) == (39, "A")
    assert (by_name["max_power_w"]["value"], by_name["max_power_w"]["unit"]) == (17040, "W")
    assert by_name["phase_l3_present"]["value"] is True and by_name["hphc_schedule"]["value"] == "D"
    assert by_name["energy_wh"]["label"] == "HCHC+HCHP"


def test_one_bad_group_is_reported_and_the_rest_decoded() -> None:
    raw = bytes.fromhex(FRAMES["standard_three_phase_tempo"]["hex"])
    bad = raw.replace(b"URMS2\t238\tH", b"URMS2\t239\tH")  # checksum no longer holds
    offset = bad.index(b"\nURMS2")
    code, out = run(bad.hex(), "--json")
    assert code == 0, out
    doc = orjson.loads(out)
    [report] = doc["bad_groups"]
    assert report.startswith(f"offset {offset}:") and "checksum" in report and "URMS2" in report
    names = {f["name"] for f in doc["fields"]}
    assert "voltage_l2_v" not in names and {"voltage_l1_v", "voltage_l3_v", "max_apparent_power_va"} <= names
    assert len(doc["groups"]) == len(FRAMES["standard_three_phase_tempo"]["groups"]) - 1


def test_stray_bytes_other_mode_and_unterminated_groups_are_reported() -> None:
    good = encode_frame([("ADCO", None, "021861348497"), ("PAPP", None, "00470")], Mode.HISTORIC)
    raw = (
        good[:-1]
        + b"xx"
        + encode_frame([("EAST", None, "000000001")], Mode.STANDARD)[1:-1]
        + b"\nIINST 0"
        + b"\x03"
    )
    code, out = run(raw.hex(), "--json")
    assert code == 0, out
    doc = orjson.loads(out)
    assert len(doc["bad_groups"]) == 3
    assert {f["name"] for f in doc["fields"]} == {"meter_id", "apparent_power_va"}


def test_a_frame_where_no_group_decodes_is_still_an_error() -> None:
    raw = encode_frame([("ADCO", None, "021861348497")], Mode.HISTORIC).replace(b"0218", b"0219")
    code, out = run(raw.hex())
    assert code == 2 and "no group decodes" in out and "checksum" in out


def test_a_single_group_with_a_long_label() -> None:
    code, out = run("0a534d4158534e312d310948323030323133303835313138093033313239094a0d", "--json")
    assert code == 0, out
    doc = orjson.loads(out)
    assert (doc["label"], doc["horodate"], doc["data"]) == ("SMAXSN1-1", "H200213085118", "03129")
    [field] = doc["fields"]
    assert (field["name"], field["value"], field["unit"]) == (
        "max_apparent_power_yesterday_l1_va",
        3129,
        "VA",
    )
