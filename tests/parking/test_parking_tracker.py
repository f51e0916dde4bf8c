"""The bus's judgement of each sensor, without I/O: every fault the field produces is seen as its
event, and none of them is a second state change or a `free` the sensor never said."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.lorawan import bosch, nwave
from drivers.lorawan.models import MODELS
from drivers.lorawan.reading import Kind
from drivers.lorawan.tracker import Sensor, Tracker
from drivers.lorawan.uplink import DeviceStatus, Uplink
from drivers.model import Event, Record, Sample

EUI = "70b3d54b10000001"
T0 = 1_796_320_500_000


def tracker(model: str = "bosch-pls", heartbeat_s: float = 3600.0) -> Tracker:
    sensor = Sensor(EUI, "pk-1", MODELS[model], heartbeat_s)
    return Tracker({EUI: sensor}, silence_grace_s=60.0, battery_low_pct=20.0, started_s=0.0)


def up(fcnt: int, t_ms: int, frame: tuple[int, bytes], rssi: int = -100) -> Uplink:
    return Uplink(EUI, t_ms, fcnt, frame[0], frame[1], rssi, 4.5)


def codes(records: list[Record]) -> list[str]:
    return [r.code for r in records if isinstance(r, Event)]


def states(records: list[Record]) -> list[object]:
    return [r.values.get("parking_state") for r in records if isinstance(r, Sample)]


def test_a_repeated_or_late_frame_is_a_duplicate_never_a_second_change() -> None:
    t = tracker()
    assert states(t.uplink(up(5, T0, bosch.encode(Kind.STATUS, True)), 1.0)) == ["occupied"]
    repeat = t.uplink(up(5, T0, bosch.encode(Kind.STATUS, True)), 2.0)  # the same frame delivered twice
    assert states(repeat) == [] and codes(repeat) == ["uplink_duplicate"]
    assert states(t.uplink(up(6, T0 + 60_000, bosch.encode(Kind.STATUS, False)), 3.0)) == ["free"]
    late = t.uplink(up(5, T0, bosch.encode(Kind.STATUS, True)), 4.0)  # re-delivered after the next one
    assert states(late) == [] and codes(late) == []  # counted, reported at most once a minute
    assert t.states[EUI].state == "free" and t.states[EUI].counts == {"duplicate": 2}
    again = t.uplink(up(4, T0 - 1, bosch.encode(Kind.STATUS, True)), 100.0)  # a minute later: reported, with the count
    assert codes(again) == ["uplink_duplicate"]
    assert [r.detail["repeats"] for r in again if isinstance(r, Event)] == [2]


def test_a_counter_that_goes_back_in_a_newer_frame_is_a_reset_and_is_accepted() -> None:
    t = tracker()
    t.uplink(up(900, T0, bosch.encode(Kind.STATUS, True)), 1.0)
    out = t.uplink(up(0, T0 + 5_000, bosch.encode(Kind.STARTUP, False, reset_cause=1)), 2.0)
    assert codes(out) == ["sensor_reset", "sensor_started"]
    assert states(out) == ["free"]
    assert [r.detail for r in out if isinstance(r, Event)][1] == {"reset_cause": "watchdog", "firmware": "0.29.4"}
    assert states(t.uplink(up(1, T0 + 9_000, bosch.encode(Kind.STATUS, True)), 3.0)) == ["occupied"]
    # a frame from before the reset, re-delivered late: its counter is higher, its time tells
    late = t.uplink(up(901, T0 + 1_000, bosch.encode(Kind.STATUS, False)), 4.0)
    assert states(late) == [] and codes(late) == ["uplink_duplicate"]


def test_a_silent_sensor_makes_its_space_unknown_never_free_then_back() -> None:
    t = tracker(heartbeat_s=3600.0)
    t.uplink(up(1, T0, bosch.encode(Kind.STATUS, False)), 10.0)
    assert t.tick(10.0 + 3600 + 59, T0) == []  # within heartbeat + grace
    out = t.tick(10.0 + 3600 + 61, T0 + 3_661_000)
    assert codes(out) == ["sensor_silent"] and states(out) == ["unknown"]
    assert t.tick(10.0 + 9000, T0 + 9_000_000) == []  # once
    back = t.uplink(up(2, T0 + 9_100_000, bosch.encode(Kind.HEARTBEAT, False)), 9100.0)
    assert codes(back) == ["sensor_back"] and states(back) == ["free"]


def test_a_sensor_never_heard_is_reported_silent_and_stays_unknown() -> None:
    t = tracker(heartbeat_s=100.0)
    out = t.tick(200.0, T0)
    assert codes(out) == ["sensor_silent"] and states(out) == []  # already unknown: no sample
    assert t.states[EUI].state == "unknown"


def test_battery_low_from_the_models_heartbeat_and_from_the_network_server_then_restored() -> None:
    t = tracker("nwave-nps4")
    low = t.uplink(up(1, T0, nwave.encode(Kind.HEARTBEAT, True, battery_mv=2900)), 1.0)
    assert codes(low) == ["sensor_battery_low"]
    assert [r.values["battery_v"] for r in low if isinstance(r, Sample)] == [2.9]
    assert codes(t.uplink(up(2, T0 + 1, nwave.encode(Kind.HEARTBEAT, True, battery_mv=2900)), 2.0)) == []  # once
    assert codes(t.uplink(up(3, T0 + 2, nwave.encode(Kind.STATUS, False)), 3.0)) == []  # a status says nothing of it
    restored = t.uplink(up(4, T0 + 3, nwave.encode(Kind.HEARTBEAT, False, battery_mv=3600)), 4.0)
    assert codes(restored) == ["sensor_battery_restored"]
    b = tracker("bosch-pls")
    assert codes(b.status(DeviceStatus(EUI, T0, 12.0, 7), 1.0)) == ["sensor_battery_low"]
    assert codes(b.status(DeviceStatus(EUI, T0 + 1, 13.0, 7), 2.0)) == []
    assert codes(b.status(DeviceStatus(EUI, T0 + 2, 80.0, 7), 3.0)) == ["sensor_battery_restored"]


def test_a_heartbeat_repeats_the_state_and_carries_the_radio() -> None:
    t = tracker()
    t.uplink(up(1, T0, bosch.encode(Kind.STATUS, True)), 1.0)
    out = t.uplink(up(2, T0 + 10, bosch.encode(Kind.HEARTBEAT, True, temperature_c=-3), rssi=-117), 2.0)
    assert [r.values for r in out if isinstance(r, Sample)] == [
        {"uplink": "heartbeat", "fcnt": 2, "parking_state": "occupied", "rssi_dbm": -117, "snr_db": 4.5,
         "temperature_c": -3.0}]
    assert t.states[EUI].since_ms == T0  # the change was at the status frame


def test_a_bad_payload_and_an_unknown_device_are_reported_not_raised() -> None:
    t = tracker()
    out = t.uplink(up(1, T0, (1, b"\x01\x02")), 1.0)
    assert codes(out) == ["decode_error"] and states(out) == []
    stranger = Uplink("0000000000000001", T0, 1, 1, b"\x01", None, None)
    assert codes(t.uplink(stranger, 1.0)) == ["unknown_device"]
    assert t.uplink(stranger, 2.0) == []  # once per dev_eui


FRAMES = st.lists(st.tuples(st.integers(0, 30), st.integers(0, 40), st.sampled_from([0, 1, 2, 3, 6, 10, 99]),
                            st.binary(max_size=6)), max_size=60)


@given(FRAMES)
@settings(max_examples=200, deadline=None)
def test_any_sequence_of_frames_is_judged_without_an_exception_and_never_goes_back(frames: list) -> None:
    t = tracker("nwave-nps4")
    accepted: list[tuple[int, int]] = []
    for fcnt, second, port, payload in frames:
        for r in t.uplink(Uplink(EUI, T0 + second * 1000, fcnt, port, payload, -100, 1.0), 0.0):
            if isinstance(r, Sample) and "fcnt" in r.values:
                accepted.append((r.ts_ms, int(str(r.values["fcnt"]))))
    assert [ts for ts, _ in accepted] == sorted(ts for ts, _ in accepted)  # never a frame older than one taken
    assert len(accepted) == len(set(accepted))  # never the same frame twice
