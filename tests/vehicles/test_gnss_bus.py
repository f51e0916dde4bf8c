"""The gnss bus end to end: the simulated receiver writes NMEA into a real pty, the real driver reads it
through pyserial; the simulated I/O module answers Modbus TCP on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from drivers.base import Bus, BusContext
from drivers.errors import ConfigError
from drivers.gnss.bus import GnssBus
from drivers.gnss.nmea import encode
from drivers.gnss.track import distance_m
from drivers.model import Event, Record, Sample
from drivers.registry import make_bus
from simulators.gps import DIJON_ROUND, GpsReceiver, IoModule, Point
from tests.meters.meters_testkit import running, until

CTX = BusContext(key="bus[0]", config_dir=Path("."))
STRAIGHT = [Point(47.3000, 5.0000), Point(47.3000, 5.0400)]  # 3 km due east


def config(port: str, **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {"name": "gps", "type": "gnss", "port": port, "device": "truck-7", "silent_after_s": 0.6,
                           "debounce_epochs": 3, "trip_start_after_s": 3, "trip_stop_after_s": 5,
                           "clock_offset_alarm_s": 0}
    cfg.update(over)
    return cfg


def codes(records: list[Record]) -> list[str]:
    return [r.code for r in records if isinstance(r, Event)]


def samples(records: list[Record]) -> list[Sample]:
    return [r for r in records if isinstance(r, Sample)]


async def fault_seen(gps: GpsReceiver, records: list[Record], kind: str, epochs: int, raised: str,
                     restored: str) -> list[Event]:
    start = len(records)
    gps.inject(kind, epochs)
    await until(lambda: restored in codes(records[start:]), timeout=20)
    got = [r for r in records[start:] if isinstance(r, Event)]
    seen = [e.code for e in got]
    assert raised in seen and seen.index(raised) < seen.index(restored), seen
    assert seen.count(raised) == 1, f"{raised} once per fault, not per epoch: {seen}"
    return got


async def test_each_injected_fault_is_seen_as_its_event_and_its_restored() -> None:
    async with GpsReceiver(DIJON_ROUND, period_s=0.02, speed_kmh=30, loop=True) as gps:
        bus = make_bus(config(gps.port), CTX)
        assert isinstance(bus, GnssBus) and isinstance(bus, Bus)
        async with running(bus) as records:
            await until(lambda: len(samples(records)) >= 1)
            await fault_seen(gps, records, "no-fix", 10, "gnss_no_fix", "gnss_fix_restored")
            bad = await fault_seen(gps, records, "bad-checksum", 5, "nmea_checksum_errors", "nmea_checksum_cleared")
            assert bad[-1].detail["errors"] == 20  # 4 sentences an epoch, 5 epochs, every one refused
            start = len(records)
            jump = await fault_seen(gps, records, "jump", 2, "position_outlier", "position_outlier_cleared")
            assert jump[0].detail["jump_m"] > 5000 and jump[-1].detail["refused"] == 2
            assert all(float(str(s.values["latitude_deg"])) < 47.33 for s in samples(records[start:]))  # never a position
            await fault_seen(gps, records, "tunnel", 60, "communication_failure", "communication_restored")
            cold = await fault_seen(gps, records, "cold-start", 8, "gnss_no_fix", "gnss_quality_restored")
            cold_codes = [e.code for e in cold]
            assert cold[0].detail["time_known"] is False
            assert cold_codes.index("gnss_fix_restored") < cold_codes.index("gnss_low_quality")
    state = bus.states()[0]
    assert state.errors["nmea_checksum_errors"] == 20 and state.errors["gnss_outliers"] == 2
    low = [s for s in samples(records) if s.values["fix_quality"] == "low_quality"]
    assert low and all(s.values["hdop"] == 9.0 and s.values["satellites"] == 3 for s in low)


async def test_positions_are_thinned_and_a_trip_is_measured_from_speed() -> None:
    length = distance_m(STRAIGHT[0].lat, STRAIGHT[0].lon, STRAIGHT[1].lat, STRAIGHT[1].lon)
    async with GpsReceiver(STRAIGHT, period_s=0.01, speed_kmh=72) as gps:  # 20 m/s: 150 s of driving
        bus = make_bus(config(gps.port, thin_interval_s=30, thin_distance_m=1000, silent_after_s=5), CTX)
        async with running(bus) as records:
            await until(lambda: "trip_ended" in codes(records), timeout=30)
    ended = next(r for r in records if isinstance(r, Event) and r.code == "trip_ended")
    started = next(r for r in records if isinstance(r, Event) and r.code == "trip_started")
    assert ended.detail["trip"] == started.detail["trip"] == started.ts_ms
    d = ended.detail
    driven = distance_m(d["start_lat"], d["start_lon"], d["lat"], d["lon"])  # the bus opened a little late
    assert d["distance_m"] == pytest.approx(driven, rel=0.01) and driven == pytest.approx(length, abs=200)
    assert d["duration_s"] == pytest.approx(driven / 20, abs=1.5)
    assert ended.detail["idle_s"] <= 1
    # a straight road at constant speed: a position every 30 s or 1000 m, plus the trip's ends
    kept = [s for s in samples(records) if s.ts_ms <= ended.ts_ms]
    assert 5 <= len(kept) <= 10, len(kept)
    assert gps.epochs > 150


async def test_ignition_makes_the_trip_and_bin_lifts_are_placed(tmp_path: Path) -> None:
    io = IoModule()
    io_port = await io.start()
    try:
        street = [Point(47.3200, 5.0415), Point(47.3222, 5.0415, "Rue A"), Point(47.3250, 5.0415, "Rue B")]
        # 245 m (44 s) then 60 s at a stop: the ignition comes on while the truck drives the first street
        async with GpsReceiver(street, period_s=0.05, speed_kmh=20, stop_s=60) as gps:
            bus = make_bus(config(gps.port, io={"host": "127.0.0.1", "port": io_port, "poll_s": 0.02,
                                                "inputs": "status_word",
                                                "ignition_bit": 0, "cycle_bit": 1}), CTX)
            async with running(bus) as records:
                await until(lambda: len(samples(records)) >= 1)
                io.set_input(0, True)
                await until(lambda: "trip_started" in codes(records))
                for n in (1, 2):  # each level held until the bus has read it: a loaded machine polls late
                    io.set_input(1, True)
                    await until(lambda: bus.states()[1].last_values.get("bin_lift") is True)
                    await gps.wait_epochs(3)
                    io.set_input(1, False)
                    await until(lambda: codes(records).count("bin_lift") == n)  # noqa: B023 (awaited here)
                await until(lambda: gps.route.waiting > 0)  # at the stop of Rue A
                await gps.wait_epochs(10)
                io.set_input(0, False)
                await until(lambda: "trip_ended" in codes(records))
                await io.stop()
                await until(lambda: "communication_failure" in codes(records))
                await io.start(io_port)
                await until(lambda: "communication_restored" in codes(records))
    finally:
        await io.stop()
    lifts = [r for r in records if isinstance(r, Event) and r.code == "bin_lift"]
    started = next(r for r in records if isinstance(r, Event) and r.code == "trip_started")
    ended = next(r for r in records if isinstance(r, Event) and r.code == "trip_ended")
    assert started.detail["by"] == "ignition" and ended.detail["cycles"] == 2
    assert all(abs(e.detail["lat"] - 47.321) < 0.01 and e.detail["trip"] == started.ts_ms for e in lifts)
    # idle: the part of the stop the trip covered (when ignition came depends on the machine's load)
    assert 0 < ended.detail["idle_s"] <= 61 and ended.detail["idle_s"] < ended.detail["duration_s"]
    assert ended.detail["distance_m"] > 0
    io_failure = next(r for r in records if isinstance(r, Event) and r.code == "communication_failure")
    assert io_failure.device == "truck-7-io"


async def test_a_missing_port_is_a_failure_then_a_restored_when_it_appears(tmp_path: Path) -> None:
    link = tmp_path / "gps0"
    bus = make_bus(config(str(link)), CTX)
    async with running(bus) as records:
        await until(lambda: "communication_failure" in codes(records))
        async with GpsReceiver(DIJON_ROUND, period_s=0.02, link=link):
            await until(lambda: "communication_restored" in codes(records), timeout=20)
            sample = await bus.read("truck-7")
    assert sample.values["fix_quality"] == "ok"


@pytest.mark.parametrize("over, key", [
    ({"baudrate": 1234}, "bus[0].baudrate"),
    ({"max_hdop": 0}, "bus[0].max_hdop"),
    ({"idle_kmh": 20}, "bus[0].idle_kmh"),
    ({"io": {"host": "x"}}, "bus[0].io"),
    ({"io": {"host": "x", "cycle_bit": 1, "cycle_kind": "lift"}}, "bus[0].io.cycle_kind"),
    ({"io": {"host": "x", "cycle_bit": 1, "ignition_bit": 1}}, "bus[0].io.cycle_bit"),
    ({"thin_headng_deg": 5}, "bus[0].thin_headng_deg"),
])
def test_config_mistakes_name_their_key(over: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_bus(config("/dev/ttyS9", **over), CTX)
    assert err.value.key == key


async def test_unsupported_sentences_are_counted_not_faults() -> None:
    async with GpsReceiver(DIJON_ROUND, period_s=0.02) as gps:
        bus = make_bus(config(gps.port), CTX)
        async with running(bus) as records:
            await until(lambda: len(samples(records)) >= 1)
            for _ in range(3):
                gps._pty.write(encode("GPGSV,1,1,01,03,03,111,00"))  # type: ignore[union-attr]
                await asyncio.sleep(0.05)
            await until(lambda: bus.states()[0].errors.get("nmea_ignored", 0) == 3)
    assert not [c for c in codes(records) if c.startswith("nmea")]
