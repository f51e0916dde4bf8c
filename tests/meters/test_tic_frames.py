"""Recorded three-phase frames (tests/meters/tic_frames.json, sources cited there), checked group by group.

The checksums are the meters' own, so each frame also checks both modes' checksum ranges: historic
over label SP data, standard over label HT [horodate HT] data HT.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from drivers.tic.codec import Mode, TicParser, decode_frames, encode_frame
from drivers.tic.values import interpret

FRAMES = {
    f["name"]: f for f in json.loads((Path(__file__).parent / "tic_frames.json").read_text("utf-8"))["frames"]
}


def _frame(name: str) -> tuple[dict[str, Any], bytes]:
    vec = FRAMES[name]
    return vec, bytes.fromhex(vec["hex"])


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_recorded_frame_decodes_group_by_group_strictly_and_by_stream(name: str) -> None:
    vec, raw = _frame(name)
    [frame] = decode_frames(raw)
    assert frame.mode is Mode(vec["mode"])
    assert [[g.label, g.horodate, g.data, g.checksum] for g in frame.groups] == vec["groups"]
    parser = TicParser(Mode(vec["mode"]), legacy_checksum=False)  # the spec's checksum form only
    streamed = [f for i in range(0, len(raw), 7) for f in parser.feed(raw[i : i + 7])]
    assert streamed == [frame]
    assert parser.checksum_errors == parser.format_errors == 0


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_every_group_of_a_recorded_frame_is_a_typed_field(name: str) -> None:
    vec, raw = _frame(name)
    reading = interpret(decode_frames(raw)[0])
    assert not reading.problems and not reading.unknown_labels
    assert {f.label for f in reading.fields} >= {g[0] for g in vec["groups"]}


def test_three_phase_standard_frame_values() -> None:
    _, raw = _frame("standard_three_phase_tempo")
    v = interpret(decode_frames(raw)[0]).values
    expected = {
        "meter_id": "041776199277", "tic_version": "02", "meter_time": "2020-02-14T23:08:04+01:00",
        "tariff_option": "TEMPO", "tariff": "HC  BLANC", "energy_wh": 21849106,
        "energy_easf01_wh": 4855593, "energy_easf02_wh": 14090959, "energy_easf03_wh": 487131,
        "energy_easf04_wh": 1481464, "energy_easf05_wh": 227596, "energy_easf06_wh": 706363,
        "energy_easf07_wh": 0, "energy_easf10_wh": 0, "energy_easd01_wh": 21849106, "energy_easd04_wh": 0,
        "current_l1_a": 3, "current_l2_a": 6, "current_l3_a": 3,
        "voltage_l1_v": 237, "voltage_l2_v": 238, "voltage_l3_v": 235,
        "subscribed_power_va": 30000, "breaking_power_va": 30000,
        "apparent_power_va": 2700, "apparent_power_l1_va": 664, "apparent_power_l2_va": 1373,
        "apparent_power_l3_va": 664,
        "max_apparent_power_va": 10802, "max_apparent_power_time": "2020-02-14T17:51:35+01:00",
        "max_apparent_power_l1_va": 3411, "max_apparent_power_l2_va": 3899, "max_apparent_power_l3_va": 3512,
        "max_apparent_power_l3_time": "2020-02-14T17:51:35+01:00",
        "max_apparent_power_yesterday_va": 9562, "max_apparent_power_yesterday_time": "2020-02-13T08:51:18+01:00",
        "max_apparent_power_yesterday_l1_va": 3129, "max_apparent_power_yesterday_l2_va": 3366,
        "max_apparent_power_yesterday_l2_time": "2020-02-13T10:11:42+01:00",
        "max_apparent_power_yesterday_l3_va": 3191,
        "load_curve_power_w": 1650, "load_curve_power_time": "2020-02-14T23:00:00+01:00",
        "load_curve_power_previous_w": 786, "load_curve_power_previous_time": "2020-02-14T22:50:00+01:00",
        "mean_voltage_l1_v": 237, "mean_voltage_l2_v": 238, "mean_voltage_l3_v": 236,
        "mean_voltage_l3_time": "2020-02-14T23:00:00+01:00",
        # STGE 463A0800: index 3 (bits 10-13 = 2), Euridis secured, CPL new/locked, today white,
        # tomorrow blue, mobile peak 1 running.
        "stge": "463A0800", "breaking_device": "closed", "supplier_tariff_index": 3,
        "distributor_tariff_index": 1, "tic_mode": "standard", "euridis": "enabled_secured",
        "cpl_status": "new_locked", "tempo_today": "white", "tempo_tomorrow": "blue", "mobile_peak": 1,
        "mobile_peak_1_start": "2020-02-14T06:00:00+01:00", "mobile_peak_1_end": "2020-02-15T06:00:00+01:00",
        "message": "PAS DE          MESSAGE", "prm": "07361794479930", "relays": 1, "relay_1_closed": True,
        "relay_2_closed": False, "tariff_index": 3, "supplier_day": 0, "supplier_day_tomorrow": 0,
        "supplier_profile_tomorrow": "00:00 index 1, dry contact tempo; 06:00 index 2, dry contact tempo; "
        "22:00 index 1, dry contact tempo",
    }  # fmt: skip
    assert {k: v.get(k) for k in expected} == expected
    assert "current_a" not in v and "voltage_v" not in v  # phase 1 is named per phase on a three-phase meter


def test_three_phase_historic_long_frame_values() -> None:
    _, raw = _frame("historic_three_phase_long")
    v = interpret(decode_frames(raw)[0]).values
    assert v == {
        "meter_id": "040726006524", "tariff_option": "HC", "tariff_contract": "off_peak_hours",
        "subscribed_current_a": 25, "energy_hchc_wh": 24770643, "energy_hchp_wh": 56535914,
        "energy_wh": 24770643 + 56535914, "tariff": "HC", "tariff_period": "off_peak",
        "current_l1_a": 0, "current_l2_a": 1, "current_l3_a": 1,
        "max_current_l1_a": 33, "max_current_l2_a": 39, "max_current_l3_a": 30, "max_power_w": 17040,
        "apparent_power_va": 470, "hphc_schedule": "D", "status": "000000", "potentials": "00",
        "phase_l1_present": True, "phase_l2_present": True, "phase_l3_present": True,
    }  # fmt: skip


def test_three_phase_historic_short_frame_values() -> None:
    # Short frames (CPT_54E §6.1.2) come while a phase is over its setting: ADIRx, ADCO, IINST1..3.
    _, raw = _frame("historic_three_phase_short")
    v = interpret(decode_frames(raw)[0]).values
    assert v == {
        "meter_id": "123456789012", "overload_current_l1_a": 1,
        "current_l1_a": 1, "current_l2_a": 9, "current_l3_a": 0,
    }  # fmt: skip


def test_short_frame_with_every_phase_over_its_setting() -> None:
    # CPT_54E §6.1.2's short-frame table, in its order: ADIR1..3, ADCO, IINST1..3.
    groups = [("ADIR1", "061"), ("ADIR2", "062"), ("ADIR3", "063"), ("ADCO", "021861348497"),
              ("IINST1", "061"), ("IINST2", "062"), ("IINST3", "063")]  # fmt: skip
    v = interpret(decode_frames(encode_frame([(lb, None, d) for lb, d in groups], Mode.HISTORIC))[0]).values
    assert v == {
        "overload_current_l1_a": 61, "overload_current_l2_a": 62, "overload_current_l3_a": 63,
        "meter_id": "021861348497", "current_l1_a": 61, "current_l2_a": 62, "current_l3_a": 63,
    }  # fmt: skip
