"""Every label of both TIC label tables decodes to a typed field with its unit, built from the specs' own tables.

The tables below are transcribed here from the documents, independently of drivers/tic/labels.py:
- historic: Enedis-NOI-CPT_02E (concentrator, CBEMM, CBEMM ICC, CBETM long and short frames),
  restated for Linky by Enedis-NOI-CPT_54E §6.1.1/§6.1.2;
- standard: Enedis-NOI-CPT_54E §6.2.2 (label, data width, unit), horodated groups per §5.3.6/§6.2.1.1.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.tic.codec import (
    Mode,
    TicDecodeError,
    checksum,
    decode_frames,
    decode_group,
    encode_frame,
    encode_group,
)
from drivers.tic.labels import LABELS
from drivers.tic.values import Reading, decode_day_profile, interpret

# label, data width, unit as the spec prints it ("" for "Sans"/none)
HISTORIC_TABLE = [
    ("ADCO", 12, ""), ("OPTARIF", 4, ""), ("ISOUSC", 2, "A"), ("BASE", 9, "Wh"), ("HCHC", 9, "Wh"),
    ("HCHP", 9, "Wh"), ("EJPHN", 9, "Wh"), ("EJPHPM", 9, "Wh"), ("BBRHCJB", 9, "Wh"), ("BBRHPJB", 9, "Wh"),
    ("BBRHCJW", 9, "Wh"), ("BBRHPJW", 9, "Wh"), ("BBRHCJR", 9, "Wh"), ("BBRHPJR", 9, "Wh"), ("PEJP", 2, "min"),
    ("PTEC", 4, ""), ("DEMAIN", 4, ""), ("IINST", 3, "A"), ("IINST1", 3, "A"), ("IINST2", 3, "A"),
    ("IINST3", 3, "A"), ("ADPS", 3, "A"), ("ADIR1", 3, "A"), ("ADIR2", 3, "A"), ("ADIR3", 3, "A"),
    ("IMAX", 3, "A"), ("IMAX1", 3, "A"), ("IMAX2", 3, "A"), ("IMAX3", 3, "A"), ("PMAX", 5, "W"),
    ("PAPP", 5, "VA"), ("HHPHC", 1, ""), ("MOTDETAT", 6, ""), ("PPOT", 2, ""), ("GAZ", 7, "dal"),
    ("AUTRE", 7, "dal"),
]  # fmt: skip
STANDARD_TABLE = [
    ("ADSC", 12, ""), ("VTIC", 2, ""), ("DATE", 0, ""), ("NGTF", 16, ""), ("LTARF", 16, ""), ("EAST", 9, "Wh"),
    *((f"EASF{i:02d}", 9, "Wh") for i in range(1, 11)), *((f"EASD{i:02d}", 9, "Wh") for i in range(1, 5)),
    ("EAIT", 9, "Wh"), ("ERQ1", 9, "VArh"), ("ERQ2", 9, "VArh"), ("ERQ3", 9, "VArh"), ("ERQ4", 9, "VArh"),
    ("IRMS1", 3, "A"), ("IRMS2", 3, "A"), ("IRMS3", 3, "A"), ("URMS1", 3, "V"), ("URMS2", 3, "V"),
    ("URMS3", 3, "V"), ("PREF", 2, "kVA"), ("PCOUP", 2, "kVA"), ("SINSTS", 5, "VA"), ("SINSTS1", 5, "VA"),
    ("SINSTS2", 5, "VA"), ("SINSTS3", 5, "VA"), ("SMAXSN", 5, "VA"), ("SMAXSN1", 5, "VA"), ("SMAXSN2", 5, "VA"),
    ("SMAXSN3", 5, "VA"), ("SMAXSN-1", 5, "VA"), ("SMAXSN1-1", 5, "VA"), ("SMAXSN2-1", 5, "VA"),
    ("SMAXSN3-1", 5, "VA"), ("SINSTI", 5, "VA"), ("SMAXIN", 5, "VA"), ("SMAXIN-1", 5, "VA"), ("CCASN", 5, "W"),
    ("CCASN-1", 5, "W"), ("CCAIN", 5, "W"), ("CCAIN-1", 5, "W"), ("UMOY1", 3, "V"), ("UMOY2", 3, "V"),
    ("UMOY3", 3, "V"), ("STGE", 8, ""), ("DPM1", 2, ""), ("FPM1", 2, ""), ("DPM2", 2, ""), ("FPM2", 2, ""),
    ("DPM3", 2, ""), ("FPM3", 2, ""), ("MSG1", 32, ""), ("MSG2", 16, ""), ("PRM", 14, ""), ("RELAIS", 3, ""),
    ("NTARF", 2, ""), ("NJOURF", 2, ""), ("NJOURF+1", 2, ""), ("PJOURF+1", 98, ""), ("PPOINTE", 98, ""),
]  # fmt: skip
HORODATED = {
    "DATE", "SMAXSN", "SMAXSN1", "SMAXSN2", "SMAXSN3", "SMAXSN-1", "SMAXSN1-1", "SMAXSN2-1", "SMAXSN3-1",
    "SMAXIN", "SMAXIN-1", "CCASN", "CCASN-1", "CCAIN", "CCAIN-1", "UMOY1", "UMOY2", "UMOY3",
    "DPM1", "DPM2", "DPM3", "FPM1", "FPM2", "FPM3",
}  # fmt: skip
# The spec's units as the samples carry them: kVA and dal are converted (see the README).
UNIT_AND_FACTOR = {"kVA": ("VA", 1000), "dal": ("m³", 0.01)}
PROFILE = " ".join(["00004001", "06004002", "22004001"] + ["NONUTILE"] * 8)
# Data a meter sends for a non-numeric group, each value taken from the spec's definition of the group.
TEXT_DATA = {
    "ADCO": "021861348497", "OPTARIF": "BBR(", "PTEC": "HPJR", "DEMAIN": "ROUG", "HHPHC": "A",
    "MOTDETAT": "000000", "PPOT": "00", "ADSC": "021861348497", "VTIC": "02", "NGTF": "     TEMPO      ",
    "LTARF": "   HC  BLANC    ", "STGE": "003A0000", "MSG1": "PAS DE          MESSAGE         ",
    "MSG2": "   POINTE MOBILE", "PRM": "07361794479930", "RELAIS": "140", "PJOURF+1": PROFILE, "PPOINTE": PROFILE,
    "DATE": "", "DPM1": "00", "FPM1": "00", "DPM2": "00", "FPM2": "00", "DPM3": "00", "FPM3": "00",
}  # fmt: skip
NUMERIC_UNITS = {"Wh", "VArh", "A", "V", "kVA", "VA", "W", "min", "dal"}
NUMERIC_WITHOUT_UNIT = {"NTARF", "NJOURF", "NJOURF+1"}


def _read(label: str, data: str, mode: Mode, horodate: str | None = None) -> Reading:
    [frame] = decode_frames(encode_frame([(label, horodate, data)], mode))
    return interpret(frame)


def test_the_transcribed_tables_have_every_label_once() -> None:
    labels = [t[0] for t in HISTORIC_TABLE + STANDARD_TABLE]
    assert len(labels) == len(set(labels)) == 36 + 71


@pytest.mark.parametrize(("label", "width", "unit"), HISTORIC_TABLE + STANDARD_TABLE, ids=lambda x: str(x))
def test_every_label_of_the_tables_is_a_typed_field_with_its_unit(label: str, width: int, unit: str) -> None:
    mode = Mode.HISTORIC if (label, width, unit) in HISTORIC_TABLE else Mode.STANDARD
    numeric = unit in NUMERIC_UNITS or label in NUMERIC_WITHOUT_UNIT
    data = "7".rjust(width, "0") if numeric else TEXT_DATA[label]
    assert len(data) == width, "the sample data has the width of the table"
    season = " " if label[1:3] == "PM" else "H"
    horodate = season + "240210121355" if label in HORODATED else None
    reading = _read(label, data, mode, horodate)
    assert not reading.problems and not reading.unknown_labels, reading
    fields = [f for f in reading.fields if f.label == label]
    assert fields, f"{label} gives no typed field"
    main = fields[0]
    assert reading.values[main.name] == main.value
    if numeric:
        want_unit, factor = UNIT_AND_FACTOR.get(unit, (unit, 1))
        assert (main.unit, main.value) == (want_unit, pytest.approx(7 * factor))
    if label in HORODATED:
        assert main.horodate == horodate
        if label == "DATE" or label[1:3] == "PM":  # the horodate is the value itself
            assert main.value == "2024-02-10T12:13:55+01:00"
        else:  # the value and when it was reached
            assert main.time == "2024-02-10T12:13:55+01:00"
            assert reading.values[main.name.rsplit("_", 1)[0] + "_time"] == main.time


def test_the_three_nine_character_labels_decode_and_others_are_still_refused() -> None:
    # CPT_54E §5.3.6 says "at most 8 characters", its own table §6.2.2 defines SMAXSN1-1 ... SMAXSN3-1.
    zone = b"SMAXSN1-1\tH200213085118\t03129\t"
    assert checksum(zone) == "J"  # as the recorded three-phase meter sent it (tests/meters/tic_frames.json)
    g = decode_group(b"\n" + zone + b"J\r")
    assert (g.label, g.horodate, g.data) == ("SMAXSN1-1", "H200213085118", "03129")
    for label in ("SMAXSN2-1", "SMAXSN3-1"):
        assert decode_group(encode_group(label, "00001", Mode.STANDARD, "E240701120000")).label == label
    for bad in ("SMAXSN4-1", "ABCDEFGHI"):
        zone = f"{bad}\t00001\t".encode()
        with pytest.raises(TicDecodeError, match="label"):
            decode_group(b"\n" + zone + checksum(zone).encode() + b"\r")
        with pytest.raises(ValueError):
            encode_group(bad, "00001", Mode.STANDARD)


def test_phase_one_is_named_per_phase_on_a_three_phase_meter_only() -> None:
    single = [("IRMS1", None, "005"), ("URMS1", None, "231"), ("UMOY1", "H240210121000", "230")]
    v = interpret(decode_frames(encode_frame(single, Mode.STANDARD))[0]).values
    assert (v["current_a"], v["voltage_v"], v["mean_voltage_v"]) == (5, 231, 230)
    three = [*single, ("IRMS2", None, "006"), ("URMS2", None, "232"), ("UMOY2", "H240210121000", "229")]
    v = interpret(decode_frames(encode_frame(three, Mode.STANDARD))[0]).values
    assert (v["current_l1_a"], v["voltage_l1_v"], v["mean_voltage_l1_v"]) == (5, 231, 230)
    assert (v["current_l2_a"], v["voltage_l2_v"], v["mean_voltage_l2_v"]) == (6, 232, 229)
    assert "current_a" not in v and "voltage_v" not in v


@pytest.mark.parametrize(
    ("bit", "field", "value"),
    [
        (0, "dry_contact_open", True), (4, "cover_open", True), (6, "overvoltage", True),
        (7, "power_exceeded", True), (8, "producer", True), (9, "injecting", True), (16, "clock_degraded", True),
        (17, "tic_mode", "standard"), (23, "cpl_synchronised", True),
    ],
)  # fmt: skip
def test_stge_single_bits(bit: int, field: str, value: object) -> None:
    # CPT_54E §6.2.3.14: 8 hexadecimal characters, most significant byte first.
    assert _read("STGE", f"{1 << bit:08X}", Mode.STANDARD).values[field] == value
    assert _read("STGE", "00000000", Mode.STANDARD).values[field] != value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (3 << 1, {"breaking_device": "open_load_shedding"}),
        (4 << 1, {"breaking_device": "open_cpl_order"}),
        (9 << 10, {"supplier_tariff_index": 10}),
        (3 << 14, {"distributor_tariff_index": 4}),
        (0b01 << 19, {"euridis": "enabled_unsecured"}),
        (0b10 << 21, {"cpl_status": "registered"}),
        ((1 << 24) | (2 << 26), {"tempo_today": "blue", "tempo_tomorrow": "white"}),
        ((3 << 28) | (2 << 30), {"mobile_peak_notice": 3, "mobile_peak": 2}),
    ],
)
def test_stge_multi_bit_fields(raw: int, expected: dict[str, object]) -> None:
    v = _read("STGE", f"{raw:08X}", Mode.STANDARD).values
    assert {k: v[k] for k in expected} == expected


def test_day_profile_blocks_follow_the_action_word() -> None:
    # CPT_54E §6.2.3.22: HHMM start, then 16 bits in hex: bits 15-14 dry contact, 4-10 virtual contacts 1-7,
    # 0-3 supplier index (0 and 11-15: no change).
    blocks = decode_day_profile(" ".join(["0000C035", "06308000", "2200000B", "23594001"] + ["NONUTILE"] * 7))
    assert [(b.start, b.tariff_index, b.virtual_contacts_closed, b.dry_contact) for b in blocks] == [
        ("00:00", 5, (1, 2), "closed"),
        ("06:30", None, (), "open"),
        ("22:00", None, (), "unchanged"),
        ("23:59", 1, (), "tempo"),
    ]
    assert decode_day_profile("1200" + f"{0x7F0:04X}")[0].virtual_contacts_closed == (1, 2, 3, 4, 5, 6, 7)
    for bad in ("2500 0001", "25000001", "0000ZZZZ", "00000001  NONUTILE", " ".join(["NONUTILE"] * 12)):
        with pytest.raises(TicDecodeError):
            decode_day_profile(bad)
    r = _read("PPOINTE", " ".join(["00004003", "06004004", "16004003"] + ["NONUTILE"] * 8), Mode.STANDARD)
    assert r.values["peak_day_profile"] == (
        "00:00 index 3, dry contact tempo; 06:00 index 4, dry contact tempo; 16:00 index 3, dry contact tempo"
    )
    [field] = r.fields
    assert field.blocks is not None and [b.tariff_index for b in field.blocks] == [3, 4, 3]
    assert _read("PJOURF+1", "25000001" + " NONUTILE" * 10, Mode.STANDARD).problems


@pytest.mark.parametrize(
    ("data", "colour"), [("----", "none"), ("BLEU", "blue"), ("BLAN", "white"), ("ROUG", "red")]
)
def test_demain_is_tomorrows_tempo_colour(data: str, colour: str) -> None:
    assert _read("DEMAIN", data, Mode.HISTORIC).values["tempo_tomorrow"] == colour


@pytest.mark.parametrize(
    ("ptec", "tariff", "period", "colour"),
    [
        ("TH..", "TH", "all_hours", None), ("HC..", "HC", "off_peak", None), ("HP..", "HP", "peak", None),
        ("HN..", "HN", "normal", None), ("PM..", "PM", "mobile_peak", None), ("HCJB", "HCJB", "off_peak", "blue"),
        ("HPJB", "HPJB", "peak", "blue"), ("HCJW", "HCJW", "off_peak", "white"), ("HPJW", "HPJW", "peak", "white"),
        ("HCJR", "HCJR", "off_peak", "red"), ("HPJR", "HPJR", "peak", "red"),
    ],
)  # fmt: skip
def test_ptec_periods_and_tempo_days(ptec: str, tariff: str, period: str, colour: str | None) -> None:
    v = _read("PTEC", ptec, Mode.HISTORIC).values
    assert (v["tariff"], v["tariff_period"], v.get("tempo_today")) == (tariff, period, colour)


@pytest.mark.parametrize(
    ("optarif", "option", "contract"),
    [
        ("BASE", "BASE", "base"),
        ("HC..", "HC", "off_peak_hours"),
        ("EJP.", "EJP", "ejp"),
        ("BBR(", "BBR(", "tempo"),
    ],
)
def test_optarif_contracts(optarif: str, option: str, contract: str) -> None:
    v = _read("OPTARIF", optarif, Mode.HISTORIC).values
    assert (v["tariff_option"], v["tariff_contract"]) == (option, contract)


@pytest.mark.parametrize(
    ("ppot", "present"), [("00", (True, True, True)), ("02", (False, True, True)), ("0A", (False, True, False)),
                          ("0E", (False, False, False)), ("01", (True, True, True))]
)  # fmt: skip
def test_ppot_bit_n_set_means_phase_n_absent(ppot: str, present: tuple[bool, bool, bool]) -> None:
    v = _read("PPOT", ppot, Mode.HISTORIC).values
    assert (v["phase_l1_present"], v["phase_l2_present"], v["phase_l3_present"]) == present


def test_relais_bit_n_minus_1_is_relay_n() -> None:
    # CPT_54E §6.2.3.19's own example: relays 3, 4 and 8 closed is 140; relay 1 alone is 001.
    v = _read("RELAIS", "140", Mode.STANDARD).values
    assert [n for n in range(1, 9) if v[f"relay_{n}_closed"]] == [3, 4, 8]
    v = _read("RELAIS", "001", Mode.STANDARD).values
    assert [n for n in range(1, 9) if v[f"relay_{n}_closed"]] == [1]


def test_mobile_peak_times_without_season_are_paris_local_time() -> None:
    # §6.2.1.1: DPMx/FPMx carry a SPACE for the season; the time is the meter's local time.
    assert _read("DPM1", "00", Mode.STANDARD, " 240710060000").values["mobile_peak_1_start"] == (
        "2024-07-10T06:00:00+02:00"
    )
    assert _read("FPM2", "00", Mode.STANDARD, " 240115060000").values["mobile_peak_2_end"] == (
        "2024-01-15T06:00:00+01:00"
    )


@pytest.mark.parametrize(
    ("label", "data", "mode"),
    [
        ("PTEC", "XX..", Mode.HISTORIC), ("DEMAIN", "VERT", Mode.HISTORIC), ("OPTARIF", "ABCD", Mode.HISTORIC),
        ("PPOT", "0G", Mode.HISTORIC), ("RELAIS", "256", Mode.STANDARD), ("STGE", "0000000Z", Mode.STANDARD),
        ("EAST", "00000A000", Mode.STANDARD), ("IINST2", "-01", Mode.HISTORIC),
    ],
)  # fmt: skip
def test_values_outside_the_definition_are_problems_not_values(label: str, data: str, mode: Mode) -> None:
    r = _read(label, data, mode)
    assert r.problems and r.problems[0].startswith(label) and not r.fields and not r.values


def test_a_label_outside_both_tables_is_reported_not_emitted() -> None:
    r = _read("FOO", "1", Mode.HISTORIC)
    assert r.unknown_labels == ["FOO"] and not r.values


def test_the_driver_readme_lists_every_label_with_its_quantity_and_unit() -> None:
    readme = (Path(__file__).resolve().parents[2] / "drivers" / "tic" / "README.md").read_text("utf-8")
    rows = {line.split("|")[1].strip(): line for line in readme.splitlines() if line.startswith("| ")}
    for label, spec in LABELS.items():
        assert label in rows, f"{label} missing from drivers/tic/README.md"
        assert f"`{spec.quantity}`" in rows[label] and f"| {spec.unit} |" in rows[label]
