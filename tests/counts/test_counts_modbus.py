"""The agent reads the controller's counting intervals over real Modbus TCP: each interval once,
one sample per detector, the detectors' faults as events, across restarts of the agent.

The controller's clock is stepped by the test (an hour takes a second or two); its detector card
counts what the demand model (simulators/traffic_demand.py) sends down each lane.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from counts_testkit import counting_rig

from drivers.model import Severity
from drivers.traffic.counter import SETTLE_S
from drivers.traffic.counting import IR_COUNTING, decode_header
from tests.traffic.traffic_testkit import until, utc

ALL = ["N1", "N1b", "N2", "S1", "S1b", "S2", "E1", "W1"]


async def test_one_sample_per_detector_per_interval_equal_to_what_crossed(tmp_path: Path) -> None:
    async with counting_rig(tmp_path) as rig:
        rig.start_agent()
        await rig.advance(10 * 60)
        samples = rig.counts()
        per = Counter((s.device, s.values["interval"]) for s in samples)
        assert set(per.values()) == {1}
        indexes = sorted({s.values["interval"] for s in samples})
        assert len(indexes) == 10 and indexes == list(range(indexes[0], indexes[0] + 10))
        assert {s.device for s in samples} == {f"signals-1.{d}" for d in ALL}
        for s in samples:
            truth = rig.unit.lane_truth(s.values["interval"])[(s.values["approach"], s.values["lane"])]
            assert s.values["count_veh"] == truth.count
            assert s.values["occupancy_pct"] == truth.occupancy_permille / 10
            assert s.ts_ms == (s.values["interval"] + 1) * 60_000
            assert s.values["junction"] == "dijon-jaures-tram" and s.values["detector_fault"] is None
            if s.device == "signals-1.N1":  # the speed pair's first loop: speed and classes
                assert s.values["speed_kmh"] == truth.speed_dkmh / 10 if truth.speed_dkmh else None
                assert s.values["light_veh"] + s.values["heavy_veh"] == truth.count
                assert s.values["lane_count"] is True
            if s.device == "signals-1.N1b":
                assert s.values["speed_kmh"] is None and s.values["lane_count"] is False
        # a peak hour on the avenue: vehicles every interval
        assert all(s.values["count_veh"] > 0 for s in samples if s.device == "signals-1.N1")


async def test_each_detector_fault_is_an_event_and_its_restored(tmp_path: Path) -> None:
    async with counting_rig(tmp_path) as rig:
        rig.start_agent()
        await rig.advance(120)
        rig.unit.set_fault("N2", "stuck-on")
        rig.unit.set_fault("N1b", "stuck-off")  # its pair N1 keeps counting
        rig.unit.set_fault("E1", "chattering")
        await rig.advance(11 * 60)
        for code, device in (("detector_stuck_on", "N2"), ("detector_stuck_off", "N1b"), ("detector_chattering", "E1")):
            [event] = rig.events(code)
            assert event.device == f"signals-1.{device}" and event.severity is Severity.MINOR
            assert event.detail["detector"] == device and event.detail["junction"] == "dijon-jaures-tram"
            assert not rig.events(code + "_restored")
        # stuck on after 300 s of full occupancy: 5 intervals of 60 s; chattering after 2
        assert rig.events("detector_stuck_on")[0].detail["for_s"] == 300
        assert rig.events("detector_chattering")[0].detail["for_s"] == 120
        flagged = {s.device for s in rig.counts() if s.values["detector_fault"]}
        assert flagged == {"signals-1.N2", "signals-1.N1b", "signals-1.E1"}
        # nothing else is faulty: the healthy detectors at the peak raise nothing
        assert {e.code for e in rig.records if getattr(e, "code", "").startswith("detector_")} == {
            "detector_stuck_on", "detector_stuck_off", "detector_chattering"}
        for d in ("N2", "N1b", "E1"):
            rig.unit.set_fault(d, None)
        await rig.advance(3 * 60)
        for code, device in (("detector_stuck_on", "N2"), ("detector_stuck_off", "N1b"), ("detector_chattering", "E1")):
            [restored] = rig.events(code + "_restored")
            assert restored.device == f"signals-1.{device}" and restored.severity is Severity.INFO
            assert len(rig.events(code)) == 1
        last = max(s.values["interval"] for s in rig.counts())
        assert all(s.values["detector_fault"] is None for s in rig.counts() if s.values["interval"] == last)


async def test_a_restart_in_the_middle_of_an_interval_neither_loses_nor_doubles_one(tmp_path: Path) -> None:
    async with counting_rig(tmp_path) as rig:
        rig.start_agent()
        await rig.advance(150)  # 2.5 intervals: the agent stops half-way through the third
        first = sorted({s.values["interval"] for s in rig.counts()})
        reader = rig.reader()
        await until(lambda: reader.saved == reader.cursor, timeout=SETTLE_S + 5, what="the cursor saved")
        await rig.stop_agent()
        rig.ctrl.steps(200)  # the controller counts on: 3 more intervals complete while the agent is away
        rig.start_agent()
        await rig.advance(130)
        seen = Counter((s.device, s.values["interval"]) for s in rig.counts())
        assert set(seen.values()) == {1}, [k for k, n in seen.items() if n > 1]
        indexes = sorted({i for _, i in seen})
        assert indexes[0] == first[0] and indexes == list(range(indexes[0], rig.unit.last_index + 1))
        assert len(indexes) == 8 and all(seen[(f"signals-1.{d}", i)] == 1 for d in ALL for i in indexes)
        assert not rig.events("counts_lost")
        saved = rig.reader().saved  # the file holds the newest interval saved as journalled
        assert saved is not None and (tmp_path / "signals-signals-1.counts.json").read_bytes() == \
            f'{{"last_interval":{saved}}}'.encode()


async def test_a_crash_right_after_reading_reads_the_unsaved_intervals_again_and_loses_none(tmp_path: Path) -> None:
    """Killed before the journal surely committed the last intervals' samples: they are read again (the
    collector stores each interval once: tests/collector_web/test_web_traffic.py), none is missed."""
    async with counting_rig(tmp_path) as rig:
        rig.start_agent()
        await rig.advance(3 * 60)
        reader = rig.reader()
        await until(lambda: reader.saved == reader.cursor, timeout=SETTLE_S + 5, what="the cursor saved")
        saved = reader.saved
        await rig.advance(2 * 60 + 30)  # two more intervals read, not yet saved: the agent dies now
        assert reader.saved == saved and reader.cursor == saved + 2
        await rig.stop_agent()
        rig.ctrl.steps(60)
        rig.start_agent()
        await rig.advance(30)
        seen = Counter(s.values["interval"] for s in rig.counts() if s.device == "signals-1.N1")
        assert sorted(seen) == list(range(min(seen), rig.unit.last_index + 1))
        assert {i for i, n in seen.items() if n > 1} == {saved + 1, saved + 2}


async def test_an_agent_away_longer_than_the_ring_reports_what_it_lost(tmp_path: Path) -> None:
    async with counting_rig(tmp_path, kept=4) as rig:
        rig.start_agent()
        await rig.advance(120)
        before = rig.unit.last_index
        reader = rig.reader()
        await until(lambda: reader.saved == before, timeout=SETTLE_S + 5, what="the cursor saved")
        await rig.stop_agent()
        rig.ctrl.steps(10 * 60)  # 10 intervals: the ring holds 4
        rig.start_agent()
        await rig.advance(30)
        [lost] = rig.events("counts_lost")
        assert (lost.detail["from_interval"], lost.detail["to_interval"], lost.detail["intervals"]) == \
            (before + 1, before + 6, 6)
        read = sorted({s.values["interval"] for s in rig.counts() if s.values["interval"] > before})
        assert read == list(range(before + 7, before + 11))


async def test_a_first_start_reads_every_interval_the_controller_still_holds() -> None:
    async with counting_rig(None, start=utc(2026, 6, 6, 10, 0), kept=8) as rig:  # a Saturday, no state folder
        rig.ctrl.steps(5 * 60)
        rig.start_agent()
        await rig.advance(1)
        assert sorted({s.values["interval"] for s in rig.counts()}) == list(range(rig.unit.last_index - 4,
                                                                                  rig.unit.last_index + 1))


async def test_the_counting_header_on_the_wire(tmp_path: Path) -> None:
    from pymodbus.client import AsyncModbusTcpClient

    async with counting_rig(tmp_path, interval_s=30, kept=10) as rig:
        rig.ctrl.steps(95)
        client = AsyncModbusTcpClient("127.0.0.1", port=rig.port, timeout=2, retries=0)
        assert await client.connect()
        try:
            reply = await client.read_input_registers(IR_COUNTING, count=5, device_id=1)
        finally:
            client.close()
        header = decode_header(reply.registers)
        assert (header.detectors, header.interval_s, header.kept) == (8, 30, 10)
        assert header.last_index == rig.ctrl.clock_s // 30 - 1
