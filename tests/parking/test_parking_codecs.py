"""The parking sensors' codecs and ChirpStack's JSON, on byte vectors of the documents and under
hypothesis: arbitrary bytes or JSON give a reading or a DecodeError, never another exception."""

from __future__ import annotations

import base64
import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import DecodeError
from drivers.lorawan import bosch, nwave
from drivers.lorawan.models import MODELS
from drivers.lorawan.reading import Kind, Reading
from drivers.lorawan.uplink import parse_status, parse_up, topic_parts

UP = {"deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d", "time": "2026-12-03T17:55:00.123456789+00:00",
      "deviceInfo": {"tenantId": "t", "applicationId": "a", "devEui": "70B3D54B10000001", "deviceName": "x",
                     "deviceClassEnabled": "CLASS_A", "tags": {}},
      "devAddr": "00b4a0b1", "adr": True, "dr": 5, "fCnt": 41, "fPort": 1, "confirmed": False, "data": "AQ==",
      "rxInfo": [{"gatewayId": "0016c001ff10a235", "rssi": -112, "snr": -3.5},
                 {"gatewayId": "0016c001ff10a236", "rssi": -97, "snr": 6.25}],
      "txInfo": {"frequency": 868100000}, "regionConfigId": "eu868"}


@pytest.mark.parametrize(("port", "payload", "expected"), [
    (1, "01", Reading(Kind.STATUS, True)),
    (1, "00", Reading(Kind.STATUS, False)),
    (1, "fe", Reading(Kind.STATUS, False)),  # bits 1-7 are reserved
    (2, "01", Reading(Kind.HEARTBEAT, True)),
    (2, "00f6", Reading(Kind.HEARTBEAT, False, temperature_c=-10.0)),
    (3, "000000000000000000000000" "001d04" "02" "01", Reading(Kind.STARTUP, True, firmware="0.29.4",
                                                                reset_cause="power_on")),
    (4, "0102", Reading(Kind.INFO, None)),
])
def test_bosch_frames_decode_as_the_document_says(port: int, payload: str, expected: Reading) -> None:
    assert bosch.decode(port, bytes.fromhex(payload)) == expected


@pytest.mark.parametrize(("port", "payload", "expected"), [
    (1, "85", Reading(Kind.STATUS, True)),  # bit 7: occupied; bits 0-6: 5 min in the previous state
    (1, "7f", Reading(Kind.STATUS, False)),
    (2, "80" "7d" "04", Reading(Kind.HEARTBEAT, True, battery_v=3.0, battery_low=False, temperature_c=12.0)),
    (2, "00" "7c" "04", Reading(Kind.HEARTBEAT, False, battery_v=2.996, battery_low=True, temperature_c=12.0)),
    # below -5 °C the document's low threshold is 2900 mV; at -5 °C it is still 3000 mV
    (2, "00" "64" "e2", Reading(Kind.HEARTBEAT, False, battery_v=2.9, battery_low=True, temperature_c=-5.0)),
    (2, "00" "64" "e0", Reading(Kind.HEARTBEAT, False, battery_v=2.9, battery_low=False, temperature_c=-6.0)),
    (2, "00" "63" "e0", Reading(Kind.HEARTBEAT, False, battery_v=2.896, battery_low=True, temperature_c=-6.0)),
    (3, "020409" "02" "01", Reading(Kind.STARTUP, True, firmware="2.4.9", reset_cause="power_on")),
    (10, "8512345678", Reading(Kind.STATUS, True)),  # the SDI tag id is dropped
    (10, "0012345678", Reading(Kind.INFO, None)),
])
def test_nwave_frames_decode_as_the_document_says(port: int, payload: str, expected: Reading) -> None:
    assert nwave.decode(port, bytes.fromhex(payload)) == expected


def test_nwave_previous_state_duration_is_decompressed() -> None:
    assert [nwave.previous_duration_min(c) for c in (0, 89, 90, 119, 120, 126, 127)] == [0, 89, 90, 235, 240, 600,
                                                                                         None]


@pytest.mark.parametrize(("model", "port", "payload", "message"), [
    ("bosch-pls", 1, "", "port 1: 0 bytes, the frame has 1"),
    ("bosch-pls", 2, "000102", "port 2: 3 bytes, the frame has 1 or 2"),
    ("bosch-pls", 3, "00", "port 3: 1 bytes, the frame has 17"),
    ("bosch-pls", 9, "00", "port 9: not a port of the Bosch"),
    ("nwave-nps4", 2, "8000", "port 2: 2 bytes, the frame has 3 (8000)"),
    ("nwave-nps4", 7, "", "port 7: not a port of the Nwave"),
])
def test_a_frame_the_model_does_not_have_is_a_decode_error(model: str, port: int, payload: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        MODELS[model].decode(port, bytes.fromhex(payload))


@pytest.mark.parametrize("kind", [Kind.STATUS, Kind.HEARTBEAT, Kind.STARTUP])
@pytest.mark.parametrize("occupied", [True, False])
def test_the_simulators_frames_decode_back(kind: Kind, occupied: bool) -> None:
    for codec in (bosch, nwave):
        port, payload = codec.encode(kind, occupied)
        r = codec.decode(port, payload)
        assert (r.kind, r.occupied) == (kind, occupied)


def test_a_chirpstack_uplink_parses_with_the_best_gateways_radio() -> None:
    up = parse_up(orjson.dumps(UP))
    assert (up.dev_eui, up.f_cnt, up.f_port, up.data) == ("70b3d54b10000001", 41, 1, b"\x01")
    assert up.time_ms == 1796320500123  # nanoseconds cut to the millisecond
    assert (up.rssi_dbm, up.snr_db) == (-97, 6.25)
    assert topic_parts("application/a/device/70B3D54B10000001/event/up") == ("a", "70b3d54b10000001", "up")
    assert topic_parts("application/a/device/x/event") is None


def test_a_chirpstack_status_event_gives_the_battery() -> None:
    doc = {"time": "2026-12-03T17:55:00Z", "deviceInfo": UP["deviceInfo"], "margin": 7, "externalPowerSource": False,
           "batteryLevelUnavailable": False, "batteryLevel": 55.5}
    assert parse_status(orjson.dumps(doc)).battery_pct == 55.5
    assert parse_status(orjson.dumps({**doc, "batteryLevelUnavailable": True})).battery_pct is None


@pytest.mark.parametrize(("change", "message"), [
    ({"fCnt": -1}, "fCnt: expected an integer"),
    ({"fCnt": 2**32}, "fCnt: expected an integer"),
    ({"fCnt": True}, "fCnt: expected an integer"),
    ({"fPort": None}, "fPort: expected an integer"),
    ({"data": "AQ="}, "data: not base64"),
    ({"data": 5}, "data: expected base64 text"),
    ({"time": "yesterday"}, "time: not an RFC 3339 time"),
    ({"time": "2026-12-03T17:55:00"}, "time: no UTC offset"),
    ({"time": "1970-01-01T00:00:00Z"}, "is not a time a network server stamps"),
    ({"deviceInfo": {"devEui": "70b3"}}, "deviceInfo.devEui: expected 16 hex digits"),
    ({"deviceInfo": None}, "deviceInfo.devEui"),
])
def test_a_malformed_uplink_names_its_field(change: dict, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        parse_up(orjson.dumps({**UP, **change}))


@given(st.sampled_from(sorted(MODELS)), st.integers(0, 255), st.binary(max_size=40))
@settings(max_examples=500, deadline=None)
def test_arbitrary_bytes_give_a_reading_or_a_decode_error(model: str, port: int, payload: bytes) -> None:
    try:
        r = MODELS[model].decode(port, payload)
    except DecodeError:
        return
    assert isinstance(r, Reading) and r.kind in Kind and r.occupied in (True, False, None)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                 max_size=6), max_leaves=10)
FIELDS = st.fixed_dictionaries({}, optional={
    "time": st.text(max_size=40) | st.just("2026-12-03T17:55:00Z") | JSON,
    "deviceInfo": st.fixed_dictionaries({}, optional={"devEui": st.text("0123456789abcdefABCDEF", min_size=15,
                                                                        max_size=17) | JSON}) | JSON,
    "fCnt": st.integers(-5, 2**33) | JSON, "fPort": st.integers(-5, 300) | JSON,
    "data": st.binary(max_size=20).map(lambda b: base64.b64encode(b).decode()) | st.text(max_size=12) | JSON,
    "rxInfo": st.lists(st.fixed_dictionaries({}, optional={"rssi": JSON | st.integers(-150, 0),
                                                           "snr": JSON}) | JSON, max_size=3) | JSON,
    "batteryLevel": JSON | st.floats(), "margin": JSON, "batteryLevelUnavailable": JSON,
})


@given(st.one_of(FIELDS.map(lambda d: json.dumps(d).encode()), JSON.map(lambda d: json.dumps(d).encode()),
                 st.binary(max_size=60)))
@settings(max_examples=200, deadline=None)
def test_arbitrary_json_or_bytes_give_an_event_or_a_decode_error(raw: bytes) -> None:
    for parse in (parse_up, parse_status):
        try:
            parse(raw)
        except DecodeError:
            pass
